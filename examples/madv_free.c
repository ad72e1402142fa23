/*
 * madv_free.c - field scenario 2 (released memory that stays resident) in C.
 * Like a runtime returning idle heap to the OS: arena_reserve maps 256 MiB
 * of anonymous memory and touches every page, then arena_release gives 3/4
 * of it (192 MiB) back with MADV_FREE. RSS does not drop: without memory
 * pressure the kernel keeps those pages. A small live heap (session_state:
 * 64 blocks of 16 KiB = 1 MiB) stands for what a heap profile would show.
 * Usage: madv_free [MILLISECONDS] [free|dontneed]  (how long to keep running,
 * default 200; how the arena is released, default free: dontneed is the fix,
 * RSS drops at once)
 * Expected report: mapped 256 MiB, MADV_FREE 192 MiB, released but still
 * resident ~192 MiB, heap in use ~1 MiB with session_state on top.
 */
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define NOINLINE __attribute__((noinline))
#define MIB (1024UL * 1024UL)
#define ARENA (256 * MIB)

static void *sessions[64];

NOINLINE static void session_state(void)
{
    for (int i = 0; i < 64; i++) {
        sessions[i] = malloc(16 * 1024);
        if (!sessions[i])
            abort();
        memset(sessions[i], 1, 16 * 1024);
    }
}

NOINLINE static char *arena_reserve(void)
{
    char *p = mmap(NULL, ARENA, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("madv_free: mmap");
        exit(1);
    }
    memset(p, 0x42, ARENA); /* every page resident */
    return p;
}

/* Return the top three quarters, the way Go's scavenger does by default. */
NOINLINE static void arena_release(char *arena, int advice)
{
    if (madvise(arena + ARENA / 4, ARENA - ARENA / 4, advice) != 0) {
        perror("madv_free: madvise");
        exit(1);
    }
}

int main(int argc, char **argv)
{
    long ms = argc > 1 ? strtol(argv[1], NULL, 10) : 200;
    session_state();
    char *arena = arena_reserve();
    arena_release(arena, argc > 2 && !strcmp(argv[2], "dontneed") ? MADV_DONTNEED : MADV_FREE);
    /* Sleep the whole time even when a signal (the snapshot signal, say)
     * interrupts: a handled signal makes nanosleep return early. */
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    return 0;
}
