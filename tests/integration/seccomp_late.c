/* seccomp_late: a threaded program that installs a seccomp filter after it
 * started (as OpenSSH's preauth child or a libseccomp user does), then
 * makes leakwatch's live-block table grow many times and forks.
 *
 *   seccomp_late prctl|syscall|none|check
 *
 * The filter kills the process (SECCOMP_RET_KILL_PROCESS, SIGSYS) on
 * membarrier and allows every other system call. It is installed with
 * prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER) or syscall(SYS_seccomp,
 * SECCOMP_SET_MODE_FILTER), each through the C library; "none" installs
 * nothing. Two churn threads run across the installation; the filter
 * covers the main thread and the four threads started after it, which
 * keep 2,000,000 blocks of 24 bytes (keep_blocks). A child then keeps
 * 1000 blocks of 40 bytes (child_blocks) and exits 0. Prints "done".
 * "check" installs the filter with prctl, then calls membarrier itself:
 * it must die of SIGSYS (the proof that the filter does kill). */
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define KEEPERS 4
#define PER_KEEPER 500000
#define CHILD_BLOCKS 1000

static void *kept[KEEPERS][PER_KEEPER];
static _Atomic int stop;

static __attribute__((noinline)) void *keep_blocks(void)
{
    return malloc(24);
}

static __attribute__((noinline)) void *child_blocks(void)
{
    return malloc(40);
}

static void *keeper(void *arg)
{
    void **out = arg;
    for (int i = 0; i < PER_KEEPER; i++)
        if (!(out[i] = keep_blocks()))
            return (void *)1;
    return NULL;
}

/* Short-lived blocks from a thread that never ends an operation early. */
static void *churn(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop)) {
        void *p[64];
        for (int i = 0; i < 64; i++)
            p[i] = malloc(16 + (size_t)i);
        for (int i = 0; i < 64; i++)
            free(p[i]);
    }
    return NULL;
}

static void filter(struct sock_fprog *prog)
{
    static struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW), /* another ABI: not ours to judge */
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_membarrier, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    prog->len = sizeof f / sizeof f[0];
    prog->filter = f;
}

static int fail(const char *what)
{
    perror(what);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 2 || (strcmp(argv[1], "prctl") && strcmp(argv[1], "syscall") && strcmp(argv[1], "none") &&
                      strcmp(argv[1], "check"))) {
        fprintf(stderr, "usage: seccomp_late prctl|syscall|none|check\n");
        return 2;
    }
    pthread_t churners[2], keepers[KEEPERS];
    for (int i = 0; i < 2; i++)
        if (pthread_create(&churners[i], NULL, churn, NULL))
            return fail("pthread_create");
    usleep(20000); /* the churners are inside the allocator when the filter comes */

    struct sock_fprog prog;
    filter(&prog);
    if (strcmp(argv[1], "none")) {
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
            return fail("PR_SET_NO_NEW_PRIVS");
        if (strcmp(argv[1], "syscall") ? prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)
                                      : syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog))
            return fail("installing the seccomp filter");
    }
    if (!strcmp(argv[1], "check")) {
        syscall(SYS_membarrier, 0 /* MEMBARRIER_CMD_QUERY */, 0, 0);
        printf("membarrier was allowed\n");
        return 1;
    }

    for (int t = 0; t < KEEPERS; t++)
        if (pthread_create(&keepers[t], NULL, keeper, kept[t]))
            return fail("pthread_create");
    for (int t = 0; t < KEEPERS; t++) {
        void *r;
        pthread_join(keepers[t], &r);
        if (r)
            return fail("malloc");
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(churners[i], NULL);

    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return fail("fork");
    if (pid == 0) {
        static void *mine[CHILD_BLOCKS];
        for (int i = 0; i < CHILD_BLOCKS; i++)
            if (!(mine[i] = child_blocks()))
                _exit(1);
        exit(0);
    }
    int st;
    if (waitpid(pid, &st, 0) != pid)
        return fail("waitpid");
    if (!WIFEXITED(st) || WEXITSTATUS(st)) {
        fprintf(stderr, "child: %s %d\n", WIFSIGNALED(st) ? "signal" : "exit status",
                WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
        return 1;
    }
    printf("done\n");
    return 0;
}
