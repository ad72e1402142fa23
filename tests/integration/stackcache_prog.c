/*
 * stackcache_prog - call stacks built to confuse a stack cache: 64 paths of
 * six calls each through step_a or step_b (the same frame size) all reach
 * leaf() at the same depth, so every allocation has the same stack
 * pointer and return address at malloc and differs only further out. Path p
 * allocates 16 + p bytes, (p % 5) + 1 times per round, in a scrambled order
 * each round, and keeps every block: its stack must hold exactly that.
 *
 * Modes (argv[1]):
 *   paths   the 64 paths from main, then again from a second thread
 *           (each thread has its own cache)
 *   alloca  each path under a frame whose size changes with alloca (its
 *           callees' stack pointers move round to round)
 *   signal  every allocation made by a SIGUSR1 handler, raised at the leaf
 *   deep    each path under 40 more frames (beyond what the cache holds)
 *   alloca2 two callers reach one leaf at the same stack pointer through a
 *           function whose alloca size differs (a stale return address
 *           lies where the other caller's frame ended): 100 from
 *           via_short, 1000 from via_padded
 *   sigpc   a signal handler allocates; the signal lands after a bare
 *           syscall in two functions, one of which leaves its own pc just
 *           below the stack pointer: 10 from raise_f, 1000 from raise_g
 *   lastword  tail_body allocates at one stack pointer, entered with a
 *           return address of 0 (the outermost frame, as coroutine
 *           switchers make it) 10 times, then 1000 times with a return
 *           address into tail_outer: the stacks end at tail_body and at
 *           tail_outer, and differ only in that one word
 *   ucontext  two coroutines (makecontext) on stacks inside main's frame
 *           allocate 1000 times each, switched by swapcontext: their stacks
 *           end at co_a and co_b
 * It prints "path P BYTES OBJECTS" for each path (paths, alloca, signal,
 * deep) or "site NAME OBJECTS" (the others), the truth; for lastword and
 * ucontext NAME is the outermost function of the site's stack.
 */
#include <alloca.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <signal.h>
#include <setjmp.h>
#include <ucontext.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOINLINE __attribute__((noinline))
#define LEVELS 6
#define PATHS (1u << LEVELS)
#define ROUNDS 20

static void *volatile sink;
static unsigned long long objects[PATHS];
static unsigned pending_path; /* for the signal handler */

static NOINLINE void alloc_for(unsigned path)
{
    void *p = malloc(16 + path);
    if (!p)
        abort();
    memset(p, (int)path, 16 + path);
    sink = p; /* kept: never freed */
    objects[path]++;
}

static NOINLINE void leaf(unsigned path, int raise_it)
{
    if (raise_it) {
        pending_path = path;
        raise(SIGUSR1);
    } else {
        alloc_for(path);
    }
    __asm__ volatile("" ::: "memory");
}

static NOINLINE void step_a(unsigned path, int level, int raise_it);
static NOINLINE void step_b(unsigned path, int level, int raise_it);

/* Two functions, one body: the same frame, different return addresses. */
#define STEP(name)                                                                                 \
    static NOINLINE void name(unsigned path, int level, int raise_it)                              \
    {                                                                                              \
        if (level == LEVELS)                                                                       \
            leaf(path, raise_it);                                                                  \
        else if ((path >> level) & 1)                                                              \
            step_a(path, level + 1, raise_it);                                                     \
        else                                                                                       \
            step_b(path, level + 1, raise_it);                                                     \
        __asm__ volatile("" ::: "memory");                                                         \
    }
STEP(step_a)
STEP(step_b)

static NOINLINE void with_alloca(unsigned path, unsigned round)
{
    size_t n = 32 + 48 * ((path + round) % 9);
    char *b = alloca(n);
    memset(b, 1, n);
    sink = b;
    step_a(path, 0, 0);
    __asm__ volatile("" ::: "memory");
}

static NOINLINE void deep(unsigned path, int more)
{
    if (more)
        deep(path, more - 1);
    else
        step_a(path, 0, 0);
    __asm__ volatile("" ::: "memory");
}

static void on_usr1(int sig)
{
    (void)sig;
    alloc_for(pending_path);
}

/* ---- alloca2: one leaf, one stack pointer, two frames of another size ---- */
static int calibrating;
static uintptr_t leaf_frame;
static unsigned long long n_short, n_padded, *counting;
static size_t short_pad;

static NOINLINE void leaf2(void)
{
    if (calibrating) {
        leaf_frame = (uintptr_t)__builtin_frame_address(0);
        return;
    }
    sink = malloc(24);
    ++*counting;
    __asm__ volatile("" ::: "memory");
}

static NOINLINE void grows(size_t n)
{
    char *p = alloca(n);
    __asm__ volatile("" ::"r"(p) : "memory");
    leaf2();
    __asm__ volatile("" ::: "memory");
}

static NOINLINE void via_short(void)
{
    counting = &n_short;
    grows(short_pad);
    __asm__ volatile("" ::: "memory");
}

static NOINLINE void via_padded(void)
{
    char pad[256]; /* never written below its top: old words stay */
    __asm__ volatile("" ::"r"(pad) : "memory");
    counting = &n_padded;
    grows(0);
    __asm__ volatile("" ::: "memory");
}

static int run_alloca2(void)
{
    /* Find the alloca size that puts leaf2 at the same stack pointer from
     * both callers. */
    calibrating = 1;
    via_padded();
    uintptr_t want = leaf_frame;
    for (short_pad = 0; short_pad <= 4096; short_pad += 8) {
        via_short();
        if (leaf_frame == want)
            break;
    }
    calibrating = 0;
    if (short_pad > 4096) {
        fprintf(stderr, "stackcache_prog: alloca2: no alloca size matches the frames\n");
        return 3;
    }
    static void (*const call[2])(void) = {via_short, via_padded};
    for (int i = 0; i < 1100; i++) {
        int k = i >= 100;
        __asm__ volatile("" : "+r"(k)); /* one indirect call site for both */
        call[k]();
    }
    printf("site via_short %llu\nsite via_padded %llu\n", n_short, n_padded);
    return 0;
}

/* ---- sigpc: the interrupted pc is not on the stack ---- */
/* raise_f and raise_g: tgkill(rdi, rsi, rdx) by a bare syscall; the signal
 * is handled when it returns, at the instruction after it. raise_f first
 * puts that instruction's address just below its stack pointer. */
__asm__(".text\n"
        ".p2align 4\n"
        ".type raise_f, @function\n"
        "raise_f:\n"
        "  .cfi_startproc\n"
        "  lea 1f(%rip), %r11\n"
        "  push %r11\n"
        "  .cfi_adjust_cfa_offset 8\n"
        "  pop %r11\n"
        "  .cfi_adjust_cfa_offset -8\n"
        "  mov $234, %eax\n"
        "  syscall\n"
        "1: ret\n"
        "  .cfi_endproc\n"
        ".size raise_f, .-raise_f\n"
        ".p2align 4\n"
        ".type raise_g, @function\n"
        "raise_g:\n"
        "  .cfi_startproc\n"
        "  mov $234, %eax\n"
        "  syscall\n"
        "  ret\n"
        "  .cfi_endproc\n"
        ".size raise_g, .-raise_g\n");
void raise_f(long tgid, long tid, long sig);
void raise_g(long tgid, long tid, long sig);

static unsigned long long n_f, n_g, *sig_counting;

static NOINLINE void sig_alloc(void)
{
    sink = malloc(40);
    ++*sig_counting;
    __asm__ volatile("" ::: "memory");
}

static void on_usr2(int sig)
{
    (void)sig;
    sig_alloc();
}

static int run_sigpc(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr2;
    sigaction(SIGUSR2, &sa, NULL);
    long pid = getpid(), tid = syscall(SYS_gettid);
    static void (*const call[2])(long, long, long) = {raise_f, raise_g};
    for (int i = 0; i < 1010; i++) {
        int k = i >= 10;
        sig_counting = k ? &n_g : &n_f;
        __asm__ volatile("" : "+r"(k)); /* one indirect call site for both */
        call[k](pid, tid, SIGUSR2);
    }
    printf("site raise_f %llu\nsite raise_g %llu\n", n_f, n_g);
    return 0;
}

/* ---- lastword: the word that ended a stack ---- */
/* enter(fn, ra): run fn as if called from ra, with a 0 above that (the
 * outermost frame whatever ra's function is). fn never returns. */
__asm__(".text\n"
        ".p2align 4\n"
        ".type enter, @function\n"
        "enter:\n"
        "  push $0\n"
        "  push %rsi\n"
        "  jmp *%rdi\n"
        ".size enter, .-enter\n"
        ".p2align 4\n"
        ".type tail_outer, @function\n"
        "tail_outer:\n"
        "  .cfi_startproc\n"
        "  nop\n"
        "  ret\n"
        "  .cfi_endproc\n"
        ".size tail_outer, .-tail_outer\n");
void enter(void (*fn)(void), uintptr_t ra);
void tail_outer(void);

static jmp_buf back;
static unsigned long long n_body, n_outer, *tail_counting;

static NOINLINE void tail_body(void)
{
    sink = malloc(56);
    ++*tail_counting;
    __asm__ volatile("" ::: "memory");
    longjmp(back, 1);
}

static NOINLINE void one_tail(uintptr_t ra)
{
    if (!setjmp(back))
        enter(tail_body, ra);
}

static int run_lastword(void)
{
    for (int i = 0; i < 1010; i++) {
        /* tail_outer + 1: its ret, inside it, with its unwind tables */
        tail_counting = i < 10 ? &n_body : &n_outer;
        one_tail(i < 10 ? 0 : (uintptr_t)tail_outer + 1);
    }
    printf("site tail_body %llu\nsite tail_outer %llu\n", n_body, n_outer);
    return 0;
}

/* ---- ucontext: coroutines on stacks carved out of main's ---- */
static ucontext_t main_ctx, co_ctx[2];
static unsigned long long n_co[2];

static NOINLINE void co_alloc(int k)
{
    sink = malloc(k ? 80 : 48);
    n_co[k]++;
    __asm__ volatile("" ::: "memory");
}

static NOINLINE void co_a(void)
{
    for (int i = 0; i < 1000; i++) {
        co_alloc(0);
        swapcontext(&co_ctx[0], &main_ctx);
    }
}

static NOINLINE void co_b(void)
{
    for (int i = 0; i < 1000; i++) {
        co_alloc(1);
        swapcontext(&co_ctx[1], &main_ctx);
    }
}

static NOINLINE void make_co(int k, char *stack, void (*fn)(void))
{
    if (getcontext(&co_ctx[k]))
        abort();
    co_ctx[k].uc_stack.ss_sp = stack;
    co_ctx[k].uc_stack.ss_size = 65536;
    co_ctx[k].uc_link = &main_ctx; /* each returns here once done */
    makecontext(&co_ctx[k], fn, 0);
}

static int run_ucontext(void)
{
    char stacks[2][65536];
    memset(stacks, 0x5a, sizeof stacks);
    make_co(0, stacks[0], co_a);
    make_co(1, stacks[1], co_b);
    /* 1000 turns each, and one more to let each return */
    for (int i = 0; i < 2002; i++)
        if (swapcontext(&main_ctx, &co_ctx[i & 1]))
            return 1;
    printf("site co_a %llu\nsite co_b %llu\n", n_co[0], n_co[1]);
    return 0;
}

static const char *mode;

static NOINLINE void one(unsigned path, unsigned round)
{
    if (!strcmp(mode, "alloca"))
        with_alloca(path, round);
    else if (!strcmp(mode, "deep"))
        deep(path, 40);
    else
        step_a(path, 0, !strcmp(mode, "signal"));
}

static void *run_rounds(void *arg)
{
    (void)arg;
    unsigned long long x = 12345;
    for (unsigned round = 0; round < ROUNDS; round++) {
        /* every path (p % 5) + 1 times, visited in a scrambled order */
        unsigned order[PATHS * 5], n = 0;
        for (unsigned p = 0; p < PATHS; p++)
            for (unsigned k = 0; k <= p % 5; k++)
                order[n++] = p;
        for (unsigned i = n - 1; i > 0; i--) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            unsigned j = (unsigned)((x >> 33) % (i + 1));
            unsigned t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        for (unsigned i = 0; i < n; i++)
            one(order[i], round);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    mode = argc > 1 ? argv[1] : "paths";
    if (!strcmp(mode, "alloca2"))
        return run_alloca2();
    if (!strcmp(mode, "sigpc"))
        return run_sigpc();
    if (!strcmp(mode, "lastword"))
        return run_lastword();
    if (!strcmp(mode, "ucontext"))
        return run_ucontext();
    if (strcmp(mode, "paths") && strcmp(mode, "alloca") && strcmp(mode, "signal") &&
        strcmp(mode, "deep")) {
        fprintf(stderr, "usage: stackcache_prog paths|alloca|signal|deep|alloca2|sigpc|lastword|ucontext\n");
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    run_rounds(NULL);
    if (!strcmp(mode, "paths")) {
        pthread_t t;
        if (pthread_create(&t, NULL, run_rounds, NULL) || pthread_join(t, NULL))
            return 1;
    }
    for (unsigned p = 0; p < PATHS; p++)
        printf("path %u %llu %llu\n", p, objects[p] * (16 + p), objects[p]);
    return 0;
}
