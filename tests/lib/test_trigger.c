/* The trigger side's pure parts: size/percentage/duration parsing, the
 * hysteresis state machine, cgroup text parsing, the allocation clock's
 * stamps, and the keep limit through the real writer. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../include/lw_format.h"
#include "age.h"
#include "kernel.h"
#include "config.h"
#include "lw.h"
#include "snapshot.h"
#include "state.h"
#include "watch.h"

Test(trigger, sizes)
{
    uint64_t v;
    cr_assert(lw_config_parse_size("1536M", &v) && v == 1536ull << 20);
    cr_assert(lw_config_parse_size("1.5G", &v) && v == 3ull << 29);
    cr_assert(lw_config_parse_size("4096", &v) && v == 4096);
    cr_assert(lw_config_parse_size("512k", &v) && v == 512ull << 10);
    cr_assert(lw_config_parse_size("2GiB", &v) && v == 2ull << 30);
    cr_assert(lw_config_parse_size("1T", &v) && v == 1ull << 40);
    cr_assert(lw_config_parse_size("0.5K", &v) && v == 512);
    cr_assert(!lw_config_parse_size("80%", &v));
    cr_assert(!lw_config_parse_size("1.5.G", &v));
    cr_assert(!lw_config_parse_size("G", &v));
    cr_assert(!lw_config_parse_size("12X", &v));
    cr_assert(!lw_config_parse_size("99999999999999999999", &v));
    cr_assert(!lw_config_parse_size("20000000T", &v), "overflow");
}

Test(trigger, percentages_and_durations)
{
    uint32_t p;
    cr_assert(lw_config_parse_pct("80%", &p) && p == 8000);
    cr_assert(lw_config_parse_pct("12.5%", &p) && p == 1250);
    cr_assert(lw_config_parse_pct("100%", &p) && p == 10000);
    cr_assert(!lw_config_parse_pct("0%", &p));
    cr_assert(!lw_config_parse_pct("101%", &p));
    cr_assert(!lw_config_parse_pct("80", &p));
    uint64_t ns;
    cr_assert(lw_config_parse_duration("2", &ns) && ns == 2000000000ull);
    cr_assert(lw_config_parse_duration("0.5", &ns) && ns == 500000000ull);
    cr_assert(lw_config_parse_duration("250ms", &ns) && ns == 250000000ull);
    cr_assert(lw_config_parse_duration("3s", &ns) && ns == 3000000000ull);
    cr_assert(!lw_config_parse_duration("5ms", &ns), "below 10 ms");
    cr_assert(!lw_config_parse_duration("1m", &ns));
    cr_assert(!lw_config_parse_duration("", &ns));
}

static const char *get_from(const char *name, void *arg)
{
    char **env = arg;
    size_t n = strlen(name);
    for (; *env; env++)
        if (!strncmp(*env, name, n) && (*env)[n] == '=')
            return *env + n + 1;
    return NULL;
}

static int nerr;
static char lasterr[512];
static void collect(const char *m, void *arg)
{
    (void)arg;
    nerr++;
    snprintf(lasterr, sizeof lasterr, "%s", m);
}

Test(trigger, options)
{
    char *env[] = {"LEAKWATCH_INTERVAL=1.5", "LEAKWATCH_THRESHOLD=80%", "LEAKWATCH_HEAP_THRESHOLD=1G",
                   "LEAKWATCH_THRESHOLD_STEP=64M", "LEAKWATCH_KEEP=10", NULL};
    struct lw_config c;
    nerr = 0;
    cr_assert_eq(lw_config_load(&c, get_from, env, env, collect, NULL), 0, "%s", lasterr);
    cr_assert_eq(c.interval_ns, 1500000000ull);
    cr_assert_eq(c.threshold_pct, 8000);
    cr_assert_eq(c.threshold_bytes, 0);
    cr_assert_eq(c.heap_threshold, 1ull << 30);
    cr_assert_eq(c.step_bytes, 64ull << 20);
    cr_assert_eq(c.keep, 10);

    char *bad[] = {"LEAKWATCH_THRESHOLD=lots", "LEAKWATCH_INTERVAL=0", "LEAKWATCH_KEEP=-1",
                   "LEAKWATCH_HEAP_THRESHOLD=0", NULL};
    nerr = 0;
    cr_assert_eq(lw_config_load(&c, get_from, bad, bad, collect, NULL), 4);
    cr_assert_eq(c.threshold_pct + c.threshold_bytes + c.interval_ns + c.heap_threshold + c.keep, 0);
    cr_assert(strstr(lasterr, "LEAKWATCH_KEEP='-1'"), "%s", lasterr);
    char *none[] = {NULL};
    cr_assert_eq(lw_config_load(&c, get_from, none, none, collect, NULL), 0);
    cr_assert_eq(c.step_pct, 1000, "default step 10%%");
}

Test(trigger, hysteresis_hovering_fires_once)
{
    struct lw_hyst h;
    uint64_t crossed;
    lw_hyst_init(&h, 1000, 100);
    cr_assert(!lw_hyst_feed(&h, 999, &crossed));
    cr_assert(lw_hyst_feed(&h, 1000, &crossed) && crossed == 1000);
    int fired = 0;
    for (int i = 0; i < 1000; i++) /* hovering: 950..1050 */
        fired += lw_hyst_feed(&h, i % 2 ? 950 : 1050, &crossed);
    cr_assert_eq(fired, 0, "inside the band nothing fires");
    /* a new high a step above the last one fires, and moves the next */
    cr_assert(!lw_hyst_feed(&h, 1099, &crossed));
    cr_assert(lw_hyst_feed(&h, 1100, &crossed) && crossed == 1100);
    cr_assert(!lw_hyst_feed(&h, 1150, &crossed));
    cr_assert(lw_hyst_feed(&h, 1300, &crossed) && crossed == 1200);
    /* below line - step: armed again at the original line */
    cr_assert(!lw_hyst_feed(&h, 899, &crossed));
    cr_assert(h.armed);
    cr_assert(lw_hyst_feed(&h, 1000, &crossed) && crossed == 1000);
}

Test(trigger, cgroup_of_this_process)
{
    static char buf[65536];
    struct lw_cgroup cg;
    if (!lw_cgroup_find("/proc/self", &cg, buf, sizeof buf))
        cr_skip_test("no memory cgroup here");
    cr_assert(cg.version == 1 || cg.version == 2);
    cr_assert_eq(access(cg.usage, R_OK), 0, "%s", cg.usage);
}

Test(trigger, age_stamps)
{
    /* one tick each for the first 8192 ticks, then 4x coarser per segment */
    cr_assert_eq(lw_age_stamp_of_tick(0), 0);
    cr_assert_eq(lw_age_stamp_of_tick(8191), 8191);
    cr_assert_eq(lw_age_stamp_of_tick(8192), 8192);
    cr_assert_eq(lw_age_stamp_of_tick(8195), 8192);
    cr_assert_eq(lw_age_stamp_of_tick(8196), 8193);
    cr_assert_eq(lw_age_stamp_of_tick(UINT64_C(1) << 40), 0xffff, "saturates");
    uint32_t prev = 0;
    for (uint64_t t = 0; t < (UINT64_C(1) << 28); t = t * 3 / 2 + 1) {
        uint32_t s = lw_age_stamp_of_tick(t);
        cr_assert_geq(s, prev, "monotonic at tick %lu", (unsigned long)t);
        prev = s;
        /* the stamp's span contains the tick */
        uint64_t mid = lw_age_stamp_mid_ns(s) >> LW_AGE_TICK_SHIFT;
        unsigned k = s >> LW_AGE_SEG_BITS;
        if (s != 0xffff)
            cr_assert(t + (UINT64_C(1) << (2 * k)) >= mid && mid + (UINT64_C(1) << (2 * k)) >= t,
                      "tick %lu stamp %u mid %lu", (unsigned long)t, s, (unsigned long)mid);
    }
}

static char dir[64];

static int count_snapshots(void)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        n += strstr(de->d_name, ".lwsnap") && de->d_name[0] != '.';
    closedir(d);
    return n;
}

Test(trigger, keep_deletes_the_oldest)
{
    strcpy(dir, "/tmp/lwtest-keep-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    static char opt[128];
    snprintf(opt, sizeof opt, "LEAKWATCH_OUTPUT=%s", dir);
    char *env[] = {opt, "LEAKWATCH_KEEP=3", NULL};
    cr_assert(lw_core_init(env));
    char first[4096], path[4096];
    lw_tls.guard = 1;
    cr_assert_eq(lw_snapshot_write(LW_TRIGGER_INTERVAL, first, sizeof first), 0);
    for (int i = 0; i < 6; i++)
        cr_assert_eq(lw_snapshot_write(LW_TRIGGER_INTERVAL, path, sizeof path), 0);
    lw_tls.guard = 0;
    cr_assert_eq(count_snapshots(), 3);
    cr_assert_neq(access(first, F_OK), 0, "the oldest is gone");
    cr_assert_eq(access(path, F_OK), 0, "the newest stays");
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}
