/*
 * session_leak.c - the C analogue of scenario 4 (a proxy whose memory rises
 * under load and never returns): every session starts a reader thread that
 * waits on a ticker. Closing a session stops the ticker, but only the
 * fixed code path (two sessions in six here) also tells the reader to end;
 * the other readers wait forever, and the session's buffers with them.
 * Beside it: heavy malloc/free churn whose live bytes go up and down
 * (requests in flight), and a route table allocated once at start (flat).
 * The culprit is session_open: it allocates the session and its 64 KiB
 * buffer and starts the thread.
 *
 *   session_leak [--rounds N] [--step]
 * --step: after each round print "round K" and wait for a line on stdin
 * (the integration test takes a snapshot there); otherwise sleep 200 ms.
 */
#include <pthread.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))
#define SESSIONS_PER_ROUND 6
#define BUFFER_SIZE 65536
#define INFLIGHT 512
#define ROUTES (16u << 20)

struct session {
    int id;
    char *buffer;       /* what the reader reads into */
    pthread_mutex_t mu;
    pthread_cond_t tick;
    int ticker_running; /* cleared by session_close */
    int done;           /* set only by the fixed close path */
    pthread_t reader;
};

static unsigned long rng = 12345;
static char *routes;
static void *inflight[INFLIGHT];

static unsigned next_rand(void)
{
    rng = rng * 6364136223846793005ul + 1442695040888963407ul;
    return (unsigned)(rng >> 33);
}

/* The reader loop: waits for ticks until told it is done. */
static void *session_reader(void *arg)
{
    struct session *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!s->done) /* the bug: stopping the ticker does not set done */
        pthread_cond_wait(&s->tick, &s->mu);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

NOINLINE static struct session *session_open(int id)
{
    struct session *s = malloc(sizeof *s);
    if (!s)
        abort();
    memset(s, 0, sizeof *s);
    s->id = id;
    s->buffer = malloc(BUFFER_SIZE);
    if (!s->buffer)
        abort();
    memset(s->buffer, 0, BUFFER_SIZE);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->tick, NULL);
    s->ticker_running = 1;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    if (pthread_create(&s->reader, &attr, session_reader, s) != 0)
        abort();
    pthread_attr_destroy(&attr);
    return s;
}

/* Stop the ticker and forget the session: the reader keeps waiting. */
NOINLINE static void session_close(struct session *s)
{
    pthread_mutex_lock(&s->mu);
    s->ticker_running = 0;
    pthread_mutex_unlock(&s->mu);
}

/* The fixed path: tell the reader it is done, join it, free everything. */
NOINLINE static void session_close_done(struct session *s)
{
    pthread_mutex_lock(&s->mu);
    s->ticker_running = 0;
    s->done = 1;
    pthread_cond_signal(&s->tick);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->reader, NULL);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->tick);
    free(s->buffer);
    free(s);
}

/* Requests in flight: replace a random part of them with new ones of
 * random sizes. Many calls; live bytes go up and down. */
NOINLINE static void handle_traffic(void)
{
    for (int i = 0; i < 20000; i++) {
        unsigned k = next_rand() % INFLIGHT;
        free(inflight[k]);
        inflight[k] = (next_rand() % 3) ? malloc(64 + next_rand() % 16384) : NULL;
        if (inflight[k])
            memset(inflight[k], 1, 64);
    }
}

/* A new session, or NULL in round 0 (a function of its own, so that
 * handle_traffic below has one call site: one stack). */
NOINLINE static struct session *next_session(int round, int *id)
{
    return round ? session_open((*id)++) : NULL;
}

/* One round: SESSIONS_PER_ROUND sessions (none in round 0), each with
 * traffic; two in six are closed the fixed way. */
NOINLINE static void serve_round(int round, int *id, int *leaked)
{
    for (int k = 0; k < SESSIONS_PER_ROUND; k++) {
        struct session *s = next_session(round, id);
        handle_traffic();
        if (!s)
            continue;
        if (k % 4 == 0) {
            session_close_done(s);
        } else {
            session_close(s);
            (*leaked)++;
        }
    }
}

NOINLINE static void load_routes(void)
{
    routes = malloc(ROUTES);
    if (!routes)
        abort();
    memset(routes, 7, ROUTES);
}

NOINLINE static void *idle_tick(void)
{
    return malloc(16);
}

static void pause_step(int step, int round)
{
    if (!step) {
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
        return;
    }
    /* Wait for a line, with a timer tick every 20 ms that allocates, as a
     * service's timers do: the snapshot asked for meanwhile is written
     * whether or not the library needs an allocation call to start its
     * writer (leakwatch before its idle-program fix did). */
    char line[64];
    printf("round %d\n", round);
    fflush(stdout);
    struct pollfd pfd = {.fd = 0, .events = POLLIN};
    while (poll(&pfd, 1, 20) == 0)
        free(idle_tick());
    if (!fgets(line, sizeof line, stdin))
        exit(0);
}

int main(int argc, char **argv)
{
    int rounds = 10, step = 0, id = 0, leaked = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--step"))
            step = 1;
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
            rounds = atoi(argv[++i]);
    }
    printf("session_leak: pid %d\n", (int)getpid());
    fflush(stdout);
    load_routes();
    /* Round 0 is traffic without sessions: the requests in flight reach
     * their usual level before the first snapshot. */
    for (int r = 0; r <= rounds; r++) {
        serve_round(r, &id, &leaked);
        pause_step(step, r);
    }
    printf("session_leak: %d sessions, %d readers still waiting\n", id, leaked);
    return 0;
}
