/* Options: defaults, every kind of bad value, unknown keys, signal names. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "config.h"

static const char *get_from(const char *name, void *arg)
{
    char **env = arg;
    size_t n = strlen(name);
    for (; *env; env++)
        if (!strncmp(*env, name, n) && (*env)[n] == '=')
            return *env + n + 1;
    return NULL;
}

static char msgs[8][512];
static int nmsgs;
static void collect(const char *m, void *arg)
{
    (void)arg;
    if (nmsgs < 8)
        strncpy(msgs[nmsgs++], m, 511);
}

static int load(struct lw_config *c, char **env)
{
    nmsgs = 0;
    return lw_config_load(c, get_from, env, env, collect, NULL);
}

Test(config, defaults)
{
    char *env[] = {NULL};
    struct lw_config c;
    cr_assert_eq(load(&c, env), 0);
    cr_assert_eq(c.signo, SIGRTMIN + 7);
    cr_assert_eq(c.depth, 64);
    cr_assert(c.follow_exec && c.follow_fork && c.cmdline);
    cr_assert(c.output_default);
    cr_assert_eq(strncmp(c.output, "/tmp/leakwatch-", 15), 0);
}

Test(config, good_values)
{
    char *env[] = {"LEAKWATCH_OUTPUT=/var/tmp/x//", "LEAKWATCH_SIGNAL=SIGUSR2", "LEAKWATCH_DEPTH=12",
                   "LEAKWATCH_FOLLOW_EXEC=0", "LEAKWATCH_CMDLINE=no", "LEAKWATCH_ROOT_PID=4242", NULL};
    struct lw_config c;
    cr_assert_eq(load(&c, env), 0);
    cr_assert_str_eq(c.output, "/var/tmp/x");
    cr_assert(!c.output_default);
    cr_assert_eq(c.signo, SIGUSR2);
    cr_assert_eq(c.depth, 12);
    cr_assert(!c.follow_exec);
    cr_assert(!c.cmdline);
    cr_assert_eq(c.root_pid, 4242);
}

Test(config, bad_values_keep_defaults_and_say_why)
{
    char *env[] = {"LEAKWATCH_SIGNAL=KILL", "LEAKWATCH_DEPTH=0", "LEAKWATCH_CMDLINE=maybe",
                   "LEAKWATCH_DEPHT=3", NULL};
    struct lw_config c;
    cr_assert_eq(load(&c, env), 4);
    cr_assert_eq(c.signo, SIGRTMIN + 7);
    cr_assert_eq(c.depth, 64);
    cr_assert(c.cmdline);
    cr_assert(strstr(msgs[0], "LEAKWATCH_SIGNAL='KILL'"), "%s", msgs[0]);
    cr_assert(strstr(msgs[1], "LEAKWATCH_DEPTH='0'") && strstr(msgs[1], "1 to 256"), "%s", msgs[1]);
    cr_assert(strstr(msgs[2], "LEAKWATCH_CMDLINE='maybe'"), "%s", msgs[2]);
    cr_assert(strstr(msgs[3], "LEAKWATCH_DEPHT") && strstr(msgs[3], "unknown option"), "%s", msgs[3]);
}

Test(config, depth_limits)
{
    struct lw_config c;
    char *hi[] = {"LEAKWATCH_DEPTH=256", NULL};
    cr_assert_eq(load(&c, hi), 0);
    cr_assert_eq(c.depth, 256);
    char *over[] = {"LEAKWATCH_DEPTH=257", NULL};
    cr_assert_eq(load(&c, over), 1);
    char *junk[] = {"LEAKWATCH_DEPTH=12x", NULL};
    cr_assert_eq(load(&c, junk), 1);
}

Test(config, signal_names)
{
    cr_assert_eq(lw_config_parse_signal("USR1"), SIGUSR1);
    cr_assert_eq(lw_config_parse_signal("usr2"), SIGUSR2, "names are case-insensitive");
    cr_assert_eq(lw_config_parse_signal("sigrtmin+2"), SIGRTMIN + 2);
    cr_assert_eq(lw_config_parse_signal("INT"), -1, "Ctrl-C stays Ctrl-C");
    cr_assert_eq(lw_config_parse_signal("32"), -1, "glibc's own real-time signals");
    cr_assert_eq(lw_config_parse_signal("SIGUSR1"), SIGUSR1);
    cr_assert_eq(lw_config_parse_signal("RTMIN"), SIGRTMIN);
    cr_assert_eq(lw_config_parse_signal("SIGRTMIN+3"), SIGRTMIN + 3);
    cr_assert_eq(lw_config_parse_signal("RTMAX-1"), SIGRTMAX - 1);
    cr_assert_eq(lw_config_parse_signal("10"), 10);
    cr_assert_eq(lw_config_parse_signal("off"), LW_SIG_OFF);
    cr_assert_eq(lw_config_parse_signal("SEGV"), -1);
    cr_assert_eq(lw_config_parse_signal("9"), -1);
    cr_assert_eq(lw_config_parse_signal("RTMIN+99"), -1);
    cr_assert_eq(lw_config_parse_signal("NOPE"), -1);
    cr_assert_eq(lw_config_parse_signal(""), -1);
    char buf[32];
    lw_config_signal_name(SIGRTMIN + 7, buf, sizeof buf);
    cr_assert_str_eq(buf, "RTMIN+7");
    lw_config_signal_name(SIGUSR2, buf, sizeof buf);
    cr_assert_str_eq(buf, "USR2");
    lw_config_signal_name(LW_SIG_OFF, buf, sizeof buf);
    cr_assert_str_eq(buf, "off");
}

Test(config, option_table_lists_every_option)
{
    cr_assert_eq(lw_option_count, 16);
    cr_assert_str_eq(lw_option_table[0].name, "OUTPUT");
    const char *mine[] = {"SAMPLE", "SAMPLE_SEED", "UNWIND"};
    for (size_t k = 0; k < 3; k++) {
        bool found = false;
        for (size_t i = 0; i < lw_option_count; i++)
            found |= !strcmp(lw_option_table[i].name, mine[k]);
        cr_assert(found, "%s listed", mine[k]);
    }
    for (size_t i = 0; i < lw_option_count; i++)
        cr_assert(strlen(lw_option_table[i].help) > 10);
}

Test(config, madv_free_remedy)
{
    char *none[] = {NULL};
    struct lw_config c;
    cr_assert_eq(load(&c, none), 0);
    cr_assert_not(c.madv_free_dontneed);
    char *on[] = {"LEAKWATCH_MADV_FREE=dontneed", NULL};
    cr_assert_eq(load(&c, on), 0);
    cr_assert(c.madv_free_dontneed);
    char *keep[] = {"LEAKWATCH_MADV_FREE=keep", NULL};
    cr_assert_eq(load(&c, keep), 0);
    cr_assert_not(c.madv_free_dontneed);
    char *bad[] = {"LEAKWATCH_MADV_FREE=DONTNEED", NULL};
    cr_assert_eq(load(&c, bad), 1);
    cr_assert_not(c.madv_free_dontneed);
    cr_assert_str_eq(msgs[0], "LEAKWATCH_MADV_FREE='DONTNEED': must be keep or dontneed; using keep");
}

Test(config, sample_sizes_and_unwind)
{
    struct lw_config c;
    char *def[] = {NULL};
    load(&c, def);
    cr_assert_eq(c.sample, 0, "full tracking is the default");
    cr_assert_eq(c.unwind, LW_UNWIND_LIBUNWIND);
    cr_assert_eq(c.sample_seed, 0);
    struct {
        const char *v;
        unsigned long long want;
    } good[] = {{"0", 0}, {"524288", 524288}, {"512K", 524288}, {"512k", 524288},
                {"512KiB", 524288}, {"1M", 1048576}, {"2G", 2ULL << 30}, {"1T", 1ULL << 40},
                {"4KB", 4096}, {"1.5M", 1572864}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char opt[64];
        snprintf(opt, sizeof opt, "LEAKWATCH_SAMPLE=%s", good[i].v);
        char *env[] = {opt, "LEAKWATCH_UNWIND=fp", "LEAKWATCH_SAMPLE_SEED=42", NULL};
        cr_assert_eq(load(&c, env), 0, "%s: %s", good[i].v, msgs[0]);
        cr_assert_eq(c.sample, good[i].want, "%s", good[i].v);
        cr_assert_eq(c.unwind, LW_UNWIND_FP);
        cr_assert_eq(c.sample_seed, 42);
    }
    const char *bad[] = {"-1", "512X", "K", "1.5.M", "2T", "99999999999999999999", "512 K"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char opt[64];
        snprintf(opt, sizeof opt, "LEAKWATCH_SAMPLE=%s", bad[i]);
        char *env[] = {opt, NULL};
        cr_assert_eq(load(&c, env), 1, "%s accepted", bad[i]);
        cr_assert_eq(c.sample, 0);
        cr_assert(strstr(msgs[0], "LEAKWATCH_SAMPLE=") && strstr(msgs[0], "byte count"), "%s",
                  msgs[0]);
    }
    char *env[] = {"LEAKWATCH_UNWIND=dwarf", "LEAKWATCH_SAMPLE_SEED=x1", NULL};
    cr_assert_eq(load(&c, env), 2);
    cr_assert_eq(c.unwind, LW_UNWIND_LIBUNWIND);
    cr_assert(strstr(msgs[0], "SAMPLE_SEED"), "%s", msgs[0]);
    cr_assert(strstr(msgs[1], "libunwind, libunwind-uncached or fp"), "%s", msgs[1]);
    char *uncached[] = {"LEAKWATCH_UNWIND=libunwind-uncached", NULL};
    cr_assert_eq(load(&c, uncached), 0, "%s", msgs[0]);
    cr_assert_eq(c.unwind, LW_UNWIND_UNCACHED);
}
