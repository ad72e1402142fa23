/*
 * fuzz_reader.c - libFuzzer target for the snapshot reader and what the
 * report does with a parsed snapshot. Any byte string must give either a
 * snapshot or one "NAME: problem" message, never a crash, an out-of-bounds
 * read (ASan), undefined behaviour (UBSan) or an allocation out of
 * proportion to the input. Accepted snapshots then go through the whole
 * report path without a symbolizer (ranking, text and JSON output to
 * /dev/null) and the header peek used to pick files in a directory.
 * Built with clang -fsanitize=fuzzer (tests/fuzz/meson.build); with other
 * compilers replay_main.c drives it over the corpus and regression files.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "analysis.h"
#include "output.h"
#include "reader.h"

/* AddressSanitizer's allocator statistics (gcc and clang builds). */
#if defined(__SANITIZE_ADDRESS__)
#define HAVE_ALLOC_STATS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_ALLOC_STATS 1
#endif
#endif
#ifdef HAVE_ALLOC_STATS
int __sanitizer_get_ownership(const volatile void *p);
size_t __sanitizer_get_allocated_size(const volatile void *p);
#endif

#define NAME "fuzz-input"

/* Abort with a message: libFuzzer saves the input as a crash. */
#define REQUIRE(cond, ...)                                                     \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "fuzz_reader: %s: ", #cond);                      \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
            abort();                                                           \
        }                                                                      \
    } while (0)

static FILE *devnull(void)
{
    static FILE *f;
    if (!f && !(f = fopen("/dev/null", "w"))) {
        perror("fuzz_reader: /dev/null");
        abort();
    }
    return f;
}

/* The same bytes through lw_reader_peek_process, which reads a path:
 * a memfd named through /proc/self/fd. */
static void peek(const uint8_t *data, size_t size, const struct lw_snapshot *s)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("fuzz_reader", MFD_CLOEXEC);
        if (fd < 0)
            return; /* no memfd: the peek is skipped, the rest still runs */
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || (size && pwrite(fd, data, size, 0) != (ssize_t)size))
        return;
    struct lw_rec_process proc;
    char exe[32], err[LW_READER_ERRLEN];
    err[0] = '\0';
    bool ok = lw_reader_peek_process(path, &proc, exe, sizeof exe, err);
    REQUIRE(ok || err[0], "peek failed without a message");
    REQUIRE(strlen(exe) < sizeof exe || !ok, "exe not terminated");
    /* Whatever parses in full must peek too, with the same process. */
    if (s) {
        REQUIRE(ok, "the snapshot parses but its peek fails: %s", err);
        REQUIRE(proc.pid == s->proc.pid && proc.seq == s->proc.seq, "peek disagrees");
        REQUIRE(strncmp(exe, s->exe, sizeof exe - 1) == 0, "peek exe '%s' vs '%s'", exe, s->exe);
    }
}

static void report(const struct lw_snapshot *s)
{
    /* Invariants the report relies on. */
    for (size_t i = 0; i < s->nstacks; i++)
        REQUIRE(lw_reader_find_stack(s, s->stacks[i].id) == &s->stacks[i], "stack %zu", i);
    for (size_t i = 0; i < s->nregions; i++)
        REQUIRE(lw_reader_find_stack(s, s->regions[i].stack), "region %zu", i);
    for (size_t i = 0; i < s->argc; i++)
        REQUIRE(s->argv[i] != NULL, "argv[%zu]", i);

    size_t n = 0;
    struct lw_ranked *ranked = lw_analysis_rank(s, &n);
    REQUIRE(ranked != NULL, "rank: out of memory");
    REQUIRE(n == s->nstacks, "rank lost stacks");
    for (size_t i = 1; i < n; i++)
        REQUIRE(ranked[i - 1].inuse_bytes >= ranked[i].inuse_bytes, "not ranked");
    struct lw_report r = {
        .path = s->name, .snap = s, .stacks = ranked, .nstacks = n, .top = 0, .sym = NULL,
        .sel = NULL,
    };
    FILE *f = devnull();
    REQUIRE(lw_output_json.write(f, &r) == 0, "json write failed");
    r.top = SIZE_MAX;
    REQUIRE(lw_output_text.write(f, &r) == 0, "text write failed");
    free(ranked);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[LW_READER_ERRLEN];
    memset(err, 'x', sizeof err);
    struct lw_snapshot *s = lw_reader_parse(data, size, NAME, err);
#ifdef HAVE_ALLOC_STATS
    /* The one block a snapshot holds is bounded by the input: the worst
     * case is a command line of NULs, 9 bytes per input byte (an argv
     * pointer and the copied byte; regress/argv-all-nul.bin), plus the
     * fixed part. More would let a small file exhaust memory. Measured on
     * that block itself: the process-wide allocated-bytes counter also
     * moves with libFuzzer's own threads (it once went down across a
     * parse, and the difference wrapped). A failed parse frees all it
     * allocated (LeakSanitizer checks that at exit). */
    if (s) {
        REQUIRE(__sanitizer_get_ownership(s->mem), "the snapshot's block is not one allocation");
        size_t held = __sanitizer_get_allocated_size(s->mem);
        REQUIRE(held <= 16 * size + 4096, "%zu bytes held for a %zu-byte input", held, size);
    }
#endif
    if (!s) {
        REQUIRE(memchr(err, '\0', sizeof err) != NULL, "message not terminated");
        REQUIRE(strncmp(err, NAME ": ", strlen(NAME) + 2) == 0, "message '%.200s'", err);
        REQUIRE(strlen(err) > strlen(NAME) + 2, "empty message");
        REQUIRE(strchr(err, '\n') == NULL, "message of more than one line: '%s'", err);
    } else {
        report(s);
    }
    peek(data, size, s);
    lw_reader_free(s);
    return 0;
}
