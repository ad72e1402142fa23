/*
 * burst.c - scenario 3 of SCENARIOS.md: OOM in seconds. A service loads a
 * config of ids once (a large but flat table); every request rebuilds a
 * hash map of all of them (build_id_map), serves one lookup, and queues
 * the response, whose map is released only when a slow sender gets to it.
 * Under load the queue, and with it memory, climbs to the limit in a few
 * seconds. The culprit leakwatch must name: build_id_map.
 *
 * Modes (all run with the real allocator, no tricks):
 *   burst [--threads N] [--ids N] [--requests N] [--request-ms MS]
 *         [--send-ms MS] [--kill-at-rss MB]     the burst; exits 0 when the
 *         requests are done, or SIGKILLs itself past MB of RSS (what the OOM
 *         killer would do, for runs without a memory cgroup)
 *   burst --serve                                 requests forever, memory
 *         flat (the sender keeps up), until SIGTERM
 *   burst --idle                                  one map, then sleeps in
 *         pause() without allocating, until SIGTERM
 *   burst --oscillate CYCLES --base MB --swing MB heap goes base+swing,
 *         base, base+swing... every 20 ms (the hysteresis tests)
 *   burst --small-stack MB                        a thread with a 64 KiB stack
 *         allocates MB MiB in 64 KiB blocks, then frees them (a heap
 *         threshold crossed there is written by leakwatch's writer thread)
 *   burst --thread-exits                          four threads that end in
 *         each way a thread can: return, pthread_exit, cancellation, and
 *         detached; prints what join saw (the thread-tracking tests)
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct node {
    unsigned id;
    unsigned value;
    struct node *next;
};

struct id_map {
    size_t nbuckets;
    struct node **buckets;
    struct id_map *queue_next;
};

static unsigned *config_ids; /* loaded once: large, flat */
static size_t n_ids = 230000;
static int n_threads = 4, n_requests = 40, request_ms = 20, send_ms = 500;
static long kill_at_rss_mb;

static pthread_mutex_t qlock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t qcond = PTHREAD_COND_INITIALIZER;
static struct id_map *queue_head, *queue_tail;
static int queued, producers_left;
static volatile sig_atomic_t stop;

static void load_config(void)
{
    config_ids = malloc(n_ids * sizeof *config_ids);
    for (size_t i = 0; i < n_ids; i++)
        config_ids[i] = (unsigned)(i * 2654435761u);
}

/* The hot endpoint's mistake: a fresh map of every id, per request. */
static struct id_map *build_id_map(void)
{
    struct id_map *m = malloc(sizeof *m);
    m->nbuckets = n_ids / 2 + 1;
    m->buckets = calloc(m->nbuckets, sizeof *m->buckets);
    m->queue_next = NULL;
    for (size_t i = 0; i < n_ids; i++) {
        struct node *nd = malloc(sizeof *nd);
        nd->id = config_ids[i];
        nd->value = (unsigned)i;
        size_t b = nd->id % m->nbuckets;
        nd->next = m->buckets[b];
        m->buckets[b] = nd;
    }
    return m;
}

static void free_id_map(struct id_map *m)
{
    for (size_t b = 0; b < m->nbuckets; b++) {
        struct node *nd = m->buckets[b];
        while (nd) {
            struct node *next = nd->next;
            free(nd);
            nd = next;
        }
    }
    free(m->buckets);
    free(m);
}

static unsigned lookup(const struct id_map *m, unsigned id)
{
    for (const struct node *nd = m->buckets[id % m->nbuckets]; nd; nd = nd->next)
        if (nd->id == id)
            return nd->value;
    return 0;
}

static long rss_mb(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return resident * sysconf(_SC_PAGESIZE) / (1024 * 1024);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static unsigned handle_request(unsigned key)
{
    struct id_map *m = build_id_map();
    unsigned v = lookup(m, config_ids[key % n_ids]);
    pthread_mutex_lock(&qlock);
    if (queue_tail)
        queue_tail->queue_next = m;
    else
        queue_head = m;
    queue_tail = m;
    queued++;
    pthread_cond_signal(&qcond);
    pthread_mutex_unlock(&qlock);
    if (kill_at_rss_mb && rss_mb() >= kill_at_rss_mb)
        raise(SIGKILL); /* what the OOM killer does: no exit, no handler */
    return v;
}

static void *worker(void *arg)
{
    unsigned sum = 0, seed = (unsigned)(size_t)arg;
    for (int r = 0; (n_requests == 0 || r < n_requests) && !stop; r++) {
        sum += handle_request(seed * 7919u + (unsigned)r);
        sleep_ms(request_ms);
    }
    pthread_mutex_lock(&qlock);
    producers_left--;
    pthread_cond_signal(&qcond);
    pthread_mutex_unlock(&qlock);
    return (void *)(size_t)sum;
}

/* The slow part: one response out per send_ms. */
static void *sender(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&qlock);
        while (!queue_head && producers_left > 0)
            pthread_cond_wait(&qcond, &qlock);
        struct id_map *m = queue_head;
        if (m) {
            queue_head = m->queue_next;
            if (!queue_head)
                queue_tail = NULL;
            queued--;
        }
        pthread_mutex_unlock(&qlock);
        if (!m)
            return NULL; /* producers done, queue empty */
        sleep_ms(send_ms);
        free_id_map(m);
    }
}

static void on_term(int sig)
{
    (void)sig;
    stop = 1;
}

static int oscillate(int cycles, long base_mb, long swing_mb)
{
    char *base = malloc((size_t)base_mb << 20);
    memset(base, 1, (size_t)base_mb << 20);
    for (int i = 0; i < cycles; i++) {
        char *extra = malloc((size_t)swing_mb << 20);
        memset(extra, 2, (size_t)swing_mb << 20);
        sleep_ms(20);
        free(extra);
        sleep_ms(20);
    }
    free(base);
    printf("burst: %d cycles between %ld and %ld MiB\n", cycles, base_mb, base_mb + swing_mb);
    return 0;
}

static void *returns(void *a)
{
    return (char *)a + 7;
}

static void *exits(void *a)
{
    pthread_exit((char *)a + 8);
}

static pthread_key_t key;
static volatile int dtor_ran;

static void key_dtor(void *v)
{
    dtor_ran = (int)(size_t)v;
}

static void *cancelled(void *a)
{
    pthread_setspecific(key, (void *)(size_t)42);
    for (;;)
        pause(); /* a cancellation point */
    return a;
}

static void *detached(void *a)
{
    (void)a;
    return NULL;
}

static int thread_exits(void)
{
    pthread_t t[3], d;
    void *r[3];
    pthread_key_create(&key, key_dtor);
    pthread_create(&t[0], NULL, returns, NULL);
    pthread_create(&t[1], NULL, exits, NULL);
    pthread_create(&t[2], NULL, cancelled, NULL);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 1 << 20);
    int rc = pthread_create(&d, &attr, detached, NULL);
    pthread_attr_destroy(&attr);
    sleep_ms(50);
    pthread_cancel(t[2]);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], &r[i]);
    sleep_ms(50); /* the detached one is done too */
    printf("burst: joined %zu %zu %s, detached rc %d, key destructor %d\n", (size_t)r[0],
           (size_t)r[1], r[2] == PTHREAD_CANCELED ? "canceled" : "?", rc, dtor_ran);
    return 0;
}

static void *small_stack_worker(void *arg)
{
    size_t n = (size_t)arg * 16; /* 64 KiB blocks */
    void **blocks = calloc(n, sizeof *blocks);
    for (size_t i = 0; i < n; i++) {
        blocks[i] = malloc(64 << 10);
        memset(blocks[i], 3, 64 << 10);
    }
    for (size_t i = 0; i < n; i++)
        free(blocks[i]);
    free(blocks);
    return (void *)n;
}

static int small_stack(long mb)
{
    pthread_attr_t attr;
    pthread_t t;
    void *r;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 << 10);
    if (pthread_create(&t, &attr, small_stack_worker, (void *)(size_t)mb) != 0)
        return 1;
    pthread_attr_destroy(&attr);
    pthread_join(t, &r);
    printf("burst: %zu blocks on a 64 KiB stack\n", (size_t)r);
    return 0;
}

int main(int argc, char **argv)
{
    int idle = 0, serve = 0, cycles = 0;
    long base_mb = 0, swing_mb = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "0";
        if (!strcmp(a, "--threads")) n_threads = atoi(v), i++;
        else if (!strcmp(a, "--ids")) n_ids = (size_t)atol(v), i++;
        else if (!strcmp(a, "--requests")) n_requests = atoi(v), i++;
        else if (!strcmp(a, "--request-ms")) request_ms = atoi(v), i++;
        else if (!strcmp(a, "--send-ms")) send_ms = atoi(v), i++;
        else if (!strcmp(a, "--kill-at-rss")) kill_at_rss_mb = atol(v), i++;
        else if (!strcmp(a, "--oscillate")) cycles = atoi(v), i++;
        else if (!strcmp(a, "--base")) base_mb = atol(v), i++;
        else if (!strcmp(a, "--swing")) swing_mb = atol(v), i++;
        else if (!strcmp(a, "--idle")) idle = 1;
        else if (!strcmp(a, "--serve")) serve = 1;
        else if (!strcmp(a, "--thread-exits")) return thread_exits();
        else if (!strcmp(a, "--small-stack")) return small_stack(atol(v));
        else {
            fprintf(stderr, "burst: unknown option %s\n", a);
            return 2;
        }
    }
    if (cycles)
        return oscillate(cycles, base_mb, swing_mb);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    load_config();
    if (idle) {
        struct id_map *m = build_id_map();
        printf("burst: idle with one map of %zu ids (lookup %u)\n", n_ids, lookup(m, config_ids[1]));
        fflush(stdout);
        while (!stop)
            pause();
        free_id_map(m);
        return 0;
    }
    if (serve) {
        n_requests = 0;
        send_ms = 0;
    }
    printf("burst: %d threads, %zu ids per map\n", n_threads, n_ids);
    fflush(stdout);
    pthread_t w[64], s;
    if (n_threads < 1 || n_threads > 64)
        n_threads = 4;
    producers_left = n_threads;
    pthread_create(&s, NULL, sender, NULL);
    for (int i = 0; i < n_threads; i++)
        pthread_create(&w[i], NULL, worker, (void *)(size_t)(i + 1));
    unsigned long sum = 0;
    for (int i = 0; i < n_threads; i++) {
        void *r;
        pthread_join(w[i], &r);
        sum += (unsigned long)(size_t)r;
    }
    pthread_join(s, NULL);
    printf("burst: done (checksum %lu)\n", sum);
    free(config_ids);
    return 0;
}
