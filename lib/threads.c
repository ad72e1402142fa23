/*
 * threads.c - pthread_create tracking (see threads.h).
 *
 * A record is claimed in the parent (creation stack, start routine and
 * argument), completed by the new thread itself (tid, stack range, start
 * time) and published with a release store of `state`; the writer reads
 * it under a sequence number (odd while it changes) and skips a record
 * that changed under it. Claim and release take `pool_lock` (never held
 * by host code; pthread_create and thread exit are not the hot path).
 * The counters of the creation stack: alloc = started (by the new thread,
 * so an exit is never counted before its start), free = exited.
 */
#include "threads.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../include/lw_format.h"
#include "lw.h"
#include "snapshot.h"
#include "stack.h"
#include "stackcache.h"
#include "state.h"
#include "sys.h"
#include "trigger.h"

#define MAX_THREADS 65536u
#define RESIDENT_PAGES_MAX (UINT64_C(1) << 18) /* 1 GiB of thread stacks measured per snapshot */

enum { REC_FREE = 0, REC_CLAIMED = 1, REC_LIVE = 2 };

struct trec {
    _Atomic uint32_t seq;   /* odd while the record changes */
    _Atomic uint32_t state; /* REC_* */
    uint32_t stack;
    uint32_t tid;
    uint32_t next_free;     /* index + 1 of the next free record; 0: none */
    uint32_t pad;
    uint64_t stack_start, stack_size, start_mono;
    void *(*fn)(void *);
    void *arg;
};

static struct trec *pool;
static uint32_t pool_top; /* records ever used (under pool_lock) */
static uint32_t free_head; /* index + 1 */
static lw_mutex_t pool_lock = LW_MUTEX_INIT;
static _Atomic uint32_t started_count;
static _Atomic uint32_t high_water; /* records the writer must look at */
static LW_TLS uint32_t my_rec;      /* index + 1 of this thread's record */

bool lw_threads_init(void)
{
    if (pool)
        return true;
    pool = lw_sys_map(MAX_THREADS * sizeof(struct trec), true);
    return pool != NULL;
}

uint32_t lw_threads_started(void)
{
    return atomic_load(&started_count);
}

static struct trec *claim(void)
{
    struct trec *r = NULL;
    lw_mutex_lock(&pool_lock);
    if (free_head) {
        r = &pool[free_head - 1];
        free_head = r->next_free;
    } else if (pool_top < MAX_THREADS) {
        r = &pool[pool_top++];
        atomic_store(&high_water, pool_top);
    }
    if (r)
        atomic_store_explicit(&r->state, REC_CLAIMED, memory_order_relaxed);
    lw_mutex_unlock(&pool_lock);
    return r;
}

static void release(struct trec *r)
{
    atomic_fetch_add_explicit(&r->seq, 1, memory_order_acq_rel); /* odd: changing */
    atomic_store_explicit(&r->state, REC_FREE, memory_order_release);
    atomic_fetch_add_explicit(&r->seq, 1, memory_order_release);
    lw_mutex_lock(&pool_lock);
    r->next_free = free_head;
    free_head = (uint32_t)(r - pool) + 1;
    lw_mutex_unlock(&pool_lock);
}

static void on_exit_thread(void *p)
{
    struct trec *r = p;
    uint8_t g = lw_tls.guard;
    lw_tls.guard = 1;
    lw_trigger_heap_flush();
    if (r->stack)
        lw_stack_account_free(r->stack, r->stack_size, 1);
    my_rec = 0;
    release(r);
    lw_scache_thread_exit();
    lw_stack_thread_exit(); /* after its last count: the thread-stack free above */
    lw_tls.guard = g;
}

static void *lw_thread_start(void *p)
{
    struct trec *r = p;
    void *(*fn)(void *) = r->fn;
    void *arg = r->arg;
    int saved = errno;
    uint8_t g = lw_tls.guard, was = lw_tls.internal;
    lw_tls.guard = 1;
    lw_tls.internal = 1; /* pthread_getattr_np allocates: ours */
    pthread_attr_t a;
    void *addr = NULL;
    size_t size = 0;
    if (pthread_getattr_np(pthread_self(), &a) == 0) {
        pthread_attr_getstack(&a, &addr, &size);
        pthread_attr_destroy(&a);
    }
    lw_tls.internal = was;
    atomic_fetch_add_explicit(&r->seq, 1, memory_order_acq_rel);
    r->tid = (uint32_t)syscall(SYS_gettid);
    r->stack_start = (uint64_t)(uintptr_t)addr;
    if (size)
        r->stack_size = size;
    r->start_mono = lw_sys_monotonic_ns();
    atomic_store_explicit(&r->state, REC_LIVE, memory_order_release);
    atomic_fetch_add_explicit(&r->seq, 1, memory_order_release);
    if (r->stack)
        lw_stack_account_alloc(r->stack, r->stack_size);
    my_rec = (uint32_t)(r - pool) + 1;
    lw_tls.guard = g;
    errno = saved;

    void *ret;
    pthread_cleanup_push(on_exit_thread, r);
    ret = fn(arg);
    pthread_cleanup_pop(1);
    return ret;
}

static uint64_t configured_stack_size(const pthread_attr_t *attr)
{
    size_t sz = 0;
    if (attr) {
        void *addr = NULL;
        if (pthread_attr_getstack(attr, &addr, &sz) == 0 && addr && sz)
            return sz;
        if (pthread_attr_getstacksize(attr, &sz) == 0)
            return sz;
        return 0;
    }
    pthread_attr_t d;
    if (pthread_getattr_default_np(&d) == 0) {
        pthread_attr_getstacksize(&d, &sz);
        pthread_attr_destroy(&d);
    }
    return sz;
}

int lw_threads_create(lw_pthread_create_fn real, pthread_t *t, const pthread_attr_t *attr,
                      void *(*fn)(void *), void *arg)
{
    int saved = errno;
    uint8_t g = lw_tls.guard;
    lw_tls.guard = 1;
    struct trec *r = pool ? claim() : NULL;
    if (r) {
        r->stack = lw_stack_here(LW_KIND_THREAD, lw_state.cfg.depth, 0);
        uint8_t was = lw_tls.internal;
        lw_tls.internal = 1;
        r->stack_size = configured_stack_size(attr);
        lw_tls.internal = was;
        r->fn = fn;
        r->arg = arg;
        r->tid = 0;
        r->stack_start = 0;
    }
    atomic_fetch_add(&started_count, 1);
    lw_tls.guard = g;
    errno = saved;
    /* The real call runs as the program's: its allocations (the new
     * thread's TLS) are the program's. */
    int rc = r ? real(t, attr, lw_thread_start, r) : real(t, attr, fn, arg);
    saved = errno;
    if (rc != 0) {
        if (r) {
            lw_tls.guard = 1;
            release(r);
            lw_tls.guard = g;
        }
        atomic_fetch_sub(&started_count, 1);
    } else {
        lw_trigger_program_threaded();
    }
    errno = saved;
    return rc;
}

/* Resident bytes of [start, start+size), by mincore; *budget pages left. */
static uint64_t resident(uint64_t start, uint64_t size, unsigned char *vec, uint64_t vec_len,
                         uint64_t *budget)
{
    uint64_t page = LW_PAGE, res = 0;
    uint64_t pages = (size + page - 1) / page;
    if (!start || !size || pages > *budget)
        return UINT64_MAX;
    *budget -= pages;
    for (uint64_t a = start & ~(page - 1); a < start + size;) {
        uint64_t chunk = (start + size - a + page - 1) / page;
        if (chunk > vec_len)
            chunk = vec_len;
        if (mincore((void *)(uintptr_t)a, chunk * page, vec) != 0)
            return UINT64_MAX; /* gone meanwhile */
        for (uint64_t i = 0; i < chunk; i++)
            res += (vec[i] & 1) ? page : 0;
        a += chunk * page;
    }
    return res;
}

void lw_threads_write(struct lw_out *o, unsigned char *mincore_vec, uint64_t vec_len)
{
    if (!pool)
        return;
    uint32_t n = atomic_load(&high_water);
    uint64_t budget = RESIDENT_PAGES_MAX;
    for (uint32_t i = 0; i < n && !o->err; i++) {
        struct trec *r = &pool[i];
        uint32_t s1 = atomic_load_explicit(&r->seq, memory_order_acquire);
        if ((s1 & 1) || atomic_load_explicit(&r->state, memory_order_acquire) != REC_LIVE)
            continue;
        if (!lw_snapshot_has_stack(r->stack))
            continue; /* created while the STACK records were written: next time */
        struct lw_rec_thread t = {
            .stack = r->stack, .tid = r->tid, .stack_start = r->stack_start,
            .stack_size = r->stack_size, .start_mono_ns = r->start_mono,
        };
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&r->seq, memory_order_relaxed) != s1)
            continue; /* it exited or was reused while we read */
        t.resident_bytes = resident(t.stack_start, t.stack_size, mincore_vec, vec_len, &budget);
        lw_out_begin(o, LW_REC_THREAD, sizeof t);
        lw_out_bytes(o, &t, sizeof t);
        lw_out_end(o);
    }
}

uint64_t lw_threads_memory_bytes(void)
{
    uint64_t used = atomic_load(&high_water) * (uint64_t)sizeof(struct trec);
    return (used + LW_PAGE - 1) & ~(uint64_t)(LW_PAGE - 1);
}

void lw_threads_fork_child(void)
{
    lw_mutex_reset(&pool_lock);
    if (!pool)
        return;
    /* Every other thread is gone: count it as exited, free its record. */
    uint32_t n = atomic_load(&high_water);
    free_head = 0;
    for (uint32_t i = n; i-- > 0;) {
        struct trec *r = &pool[i];
        bool mine = my_rec == i + 1;
        uint32_t st = atomic_load(&r->state);
        if (mine && st == REC_LIVE) {
            r->tid = (uint32_t)syscall(SYS_gettid);
            continue;
        }
        if (st == REC_LIVE && r->stack)
            lw_stack_account_free(r->stack, r->stack_size, 1);
        atomic_store(&r->seq, 0);
        atomic_store(&r->state, REC_FREE);
        r->next_free = free_head;
        free_head = i + 1;
    }
    atomic_store(&started_count, my_rec ? 1 : 0);
}
