/*
 * demo.c - a small "service" with one leak, for scripts/demo.
 * It handles 2000 requests. Each request allocates a few buffers and frees
 * them all (handle_request: lots of allocation, nothing left). Every other
 * request also stores a 1 KiB entry in a cache that is never evicted
 * (cache_insert: 1000 blocks of 1024 bytes stay live). The report's top
 * stack must be cache_insert, 1000 objects, 1024000 bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOINLINE __attribute__((noinline))
#define REQUESTS 2000
#define ENTRY_SIZE 1024

struct entry {
    struct entry *next;
    char payload[ENTRY_SIZE - sizeof(struct entry *)];
};

static struct entry *cache; /* grows forever: the leak */

/* Keep a copy of a response "for later". Nothing ever removes it. */
NOINLINE static void cache_insert(const char *response, size_t len)
{
    struct entry *e = malloc(sizeof *e);
    if (!e)
        abort();
    memset(e->payload, 0, sizeof e->payload);
    memcpy(e->payload, response, len < sizeof e->payload ? len : sizeof e->payload - 1);
    e->next = cache;
    cache = e;
}

/* Parse a request and build a response: allocates, then frees everything. */
NOINLINE static size_t handle_request(int id, char *out, size_t outlen)
{
    char *request = malloc(256);
    char *scratch = malloc(4096 + (size_t)(id % 7) * 512);
    if (!request || !scratch)
        abort();
    int n = snprintf(request, 256, "GET /items/%d HTTP/1.1", id);
    memset(scratch, ' ', 4096);
    size_t len = (size_t)snprintf(out, outlen, "200 OK item %d (%d bytes of request)", id, n);
    free(scratch);
    free(request);
    return len;
}

int main(void)
{
    char response[128];
    size_t checksum = 0;
    for (int id = 0; id < REQUESTS; id++) {
        size_t len = handle_request(id, response, sizeof response);
        checksum += len;
        if (id % 2 == 0)
            cache_insert(response, len);
    }
    size_t cached = 0;
    for (struct entry *e = cache; e; e = e->next)
        cached++;
    printf("demo: handled %d requests, %zu cached responses (checksum %zu)\n", REQUESTS, cached,
           checksum);
    return 0;
}
