/*
 * forkstorm.c - fork, vfork+exec and posix_spawn from a multi-threaded
 * parent whose busy thread allocates and frees without pause, so a fork can
 * land in the middle of a tracked malloc/free.
 * Usage: forkstorm [--pids] [CHILDREN]   (default 8 children)
 * Known live blocks:
 *   parent_keep  7 x 333 bytes = 2331, allocated before any fork: live in
 *                the parent and, inherited, in every fork child
 *   child_keep   10 x 1000 bytes = 10000, in each fork child only; the child
 *                then returns from main (exit(), so its exit snapshot runs)
 *   busy_loop    nothing live in the parent once the thread is joined;
 *                --pids prints how many blocks it allocated
 * Plus one vfork+execv and one posix_spawn of /bin/true.
 * --pids prints "parent P", "child P" (each), "exec P", "spawn P", "busy N".
 */
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))
#define MAX_CHILDREN 256

extern char **environ;

static void *parent_blocks[7];
static void *child_blocks[10];
static atomic_bool stop;
static unsigned long busy_count;

NOINLINE static void parent_keep(void)
{
    for (int i = 0; i < 7; i++) {
        parent_blocks[i] = malloc(333);
        if (!parent_blocks[i])
            abort();
        memset(parent_blocks[i], 3, 333);
    }
}

NOINLINE static void child_keep(void)
{
    for (int i = 0; i < 10; i++) {
        child_blocks[i] = malloc(1000);
        if (!child_blocks[i])
            abort();
        memset(child_blocks[i], 7, 1000);
    }
}

NOINLINE static void *busy_loop(void *arg)
{
    (void)arg;
    unsigned long n = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        size_t len = 32 + (n % 16) * 8;
        char *volatile p = malloc(len);
        if (!p)
            abort();
        p[0] = (char)n;
        free(p);
        n++;
    }
    busy_count = n;
    return NULL;
}

/* vfork + execv("/bin/true"): the child only execs or _exits. */
NOINLINE static pid_t vfork_exec_true(void)
{
    static char *true_argv[] = {"true", NULL};
    pid_t pid = vfork();
    if (pid == 0) {
        execv("/bin/true", true_argv);
        _exit(127);
    }
    return pid;
}

static void wait_ok(pid_t pid, const char *what)
{
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "forkstorm: %s %d did not exit cleanly (status 0x%x)\n", what, (int)pid,
                status);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    int print_pids = 0, children = 8;
    for (int a = 1; a < argc; a++) {
        if (strcmp(argv[a], "--pids") == 0)
            print_pids = 1;
        else
            children = atoi(argv[a]);
    }
    if (children < 0 || children > MAX_CHILDREN) {
        fprintf(stderr, "forkstorm: 0-%d children\n", MAX_CHILDREN);
        return 2;
    }

    parent_keep();
    pthread_t busy;
    if (pthread_create(&busy, NULL, busy_loop, NULL) != 0)
        return 1;

    pid_t pids[MAX_CHILDREN];
    for (int i = 0; i < children; i++) {
        pids[i] = fork();
        if (pids[i] < 0) {
            perror("forkstorm: fork");
            return 1;
        }
        if (pids[i] == 0) {
            child_keep();
            return 0; /* exit(), not _exit(): the child's exit snapshot runs */
        }
    }

    pid_t vpid = vfork_exec_true();
    if (vpid < 0) {
        perror("forkstorm: vfork");
        return 1;
    }

    char *true_argv[] = {"true", NULL};
    pid_t spid;
    int err = posix_spawn(&spid, "/bin/true", NULL, NULL, true_argv, environ);
    if (err != 0) {
        fprintf(stderr, "forkstorm: posix_spawn: %s\n", strerror(err));
        return 1;
    }

    for (int i = 0; i < children; i++)
        wait_ok(pids[i], "child");
    wait_ok(vpid, "vfork child");
    wait_ok(spid, "spawned child");

    atomic_store(&stop, 1);
    pthread_join(busy, NULL);

    if (print_pids) {
        printf("parent %d\n", (int)getpid());
        for (int i = 0; i < children; i++)
            printf("child %d\n", (int)pids[i]);
        printf("exec %d\nspawn %d\nbusy %lu\n", (int)vpid, (int)spid, busy_count);
    }
    return 0;
}
