/*
 * sampling_prog.c - a deterministic heap workload for test_sampling.py.
 * Every allocation's usable size is summed as it is made and freed, and the
 * sums are printed at the end (to stdout with write: stdio would allocate
 * a buffer the sums do not know). Modes:
 *   none   allocates nothing (the baseline: what the C library and the
 *          preload allocate around main)
 *   exact  one thread: kept small, varied and big blocks, churn, realloc
 *          growth chains, a mapping
 *   fp     one call chain 24 functions deep, built with frame pointers
 * Output lines: "total alloc_bytes alloc_objects free_bytes free_objects"
 * and "site NAME live_objects live_bytes size" (size: the usable size of
 * each block of a site with a single size, 0 if sizes vary) plus, for
 * varied sites, "var NAME var_bytes var_objects" at interval T (argv[2]).
 */
#include <malloc.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static uint64_t a_bytes, a_objs, f_bytes, f_objs;
static double interval;

static void out(const char *line)
{
    ssize_t r = write(1, line, strlen(line));
    (void)r;
}

static void *take(void *p)
{
    a_bytes += malloc_usable_size(p);
    a_objs++;
    return p;
}

static void give(void *p)
{
    f_bytes += malloc_usable_size(p);
    f_objs++;
    free(p);
}

struct site {
    const char *name;
    uint64_t objs, bytes, size;
    double var_b, var_o; /* variance of the estimates, sum over live blocks */
};

static void live(struct site *s, void *p)
{
    uint64_t u = malloc_usable_size(p);
    double q = u >= interval ? 1.0 : -expm1(-(double)u / interval);
    s->objs++;
    s->bytes += u;
    s->size = s->objs == 1 || s->size == u ? u : 0;
    s->var_b += (double)u * (double)u * (1 - q) / q;
    s->var_o += (1 - q) / q;
}

static void report(const struct site *s)
{
    char line[256];
    /* integers only: printf of a double may allocate */
    snprintf(line, sizeof line, "site %s %lu %lu %lu\nvar %s %lu %lu\n", s->name,
             (unsigned long)s->objs, (unsigned long)s->bytes, (unsigned long)s->size, s->name,
             (unsigned long)s->var_b, (unsigned long)s->var_o);
    out(line);
}

static struct site s_small = {.name = "keep_small"}, s_varied = {.name = "keep_varied"},
                   s_big = {.name = "keep_big"}, s_grow = {.name = "grow_chain"};
static void *keep[400000];
static int nkeep;

__attribute__((noinline)) static void keep_small(int n)
{
    for (int i = 0; i < n; i++)
        live(&s_small, keep[nkeep++] = take(malloc(100)));
}

__attribute__((noinline)) static void keep_varied(int n)
{
    for (int i = 0; i < n; i++)
        live(&s_varied, keep[nkeep++] = take(malloc(16 + (size_t)(i * 7919) % 4000)));
}

__attribute__((noinline)) static void keep_big(int n)
{
    for (int i = 0; i < n; i++)
        live(&s_big, keep[nkeep++] = take(malloc((1u << 20) + (unsigned)i * 4096)));
}

__attribute__((noinline)) static void churn(int n)
{
    for (int i = 0; i < n; i++)
        give(take(malloc(2000 + (size_t)(i % 7) * 100)));
}

/* realloc growth: each step frees the old block and allocates the new one. */
__attribute__((noinline)) static void grow_chain(int chains)
{
    for (int c = 0; c < chains; c++) {
        char *p = take(realloc(NULL, 16));
        for (size_t n = 32; n <= 65536; n *= 2) {
            uint64_t old = malloc_usable_size(p);
            char *q = realloc(p, n);
            f_bytes += old;
            f_objs++;
            p = take(q);
        }
        live(&s_grow, keep[nkeep++] = p);
    }
}

__attribute__((noinline)) static void *deep(int d)
{
    if (d == 0)
        return take(malloc(5000));
    void *p = deep(d - 1);
    __asm__ volatile("" ::: "memory");
    return p;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "none";
    interval = argc > 2 ? atof(argv[2]) : 1.0;
    if (!strcmp(mode, "exact")) {
        keep_small(200000);
        keep_varied(50000);
        keep_big(8);
        churn(300000);
        grow_chain(200);
        /* half of the small blocks go */
        for (int i = 0; i < 200000; i += 2) {
            f_bytes += malloc_usable_size(keep[i]);
            f_objs++;
            free(keep[i]);
            s_small.objs--;
            s_small.bytes -= s_small.size;
        }
        /* the variance of the small site: half as many live blocks */
        s_small.var_b /= 2;
        s_small.var_o /= 2;
        void *m = mmap(NULL, 64 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
            return 1;
        report(&s_small);
        report(&s_varied);
        report(&s_big);
        report(&s_grow);
    } else if (!strcmp(mode, "fp")) {
        for (int i = 0; i < 50; i++)
            keep[nkeep++] = deep(24);
    }
    char line[256];
    snprintf(line, sizeof line, "total %lu %lu %lu %lu\n", (unsigned long)a_bytes,
             (unsigned long)a_objs, (unsigned long)f_bytes, (unsigned long)f_objs);
    out(line);
    return 0;
}
