/*
 * pb.c - protocol-buffer wire-format encoding into a growable buffer
 * (see pb.h). Wire types used: 0 (varint) and 2 (length-delimited).
 */
#include "pb.h"

#include <stdlib.h>
#include <string.h>

void lw_pb_bytes(struct lw_pb *b, const void *p, size_t n)
{
    if (b->oom || n == 0)
        return;
    if (n > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < n) {
            if (cap > SIZE_MAX / 2) {
                b->oom = true;
                return;
            }
            cap *= 2;
        }
        uint8_t *d = realloc(b->data, cap);
        if (!d) {
            b->oom = true;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void lw_pb_varint(struct lw_pb *b, uint64_t v)
{
    uint8_t buf[10];
    size_t n = 0;
    do {
        buf[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v)
            buf[n] |= 0x80;
        n++;
    } while (v);
    lw_pb_bytes(b, buf, n);
}

void lw_pb_uint(struct lw_pb *b, uint32_t field, uint64_t v)
{
    lw_pb_varint(b, (uint64_t)field << 3 | 0);
    lw_pb_varint(b, v);
}

void lw_pb_lenfield(struct lw_pb *b, uint32_t field, const void *p, size_t n)
{
    lw_pb_varint(b, (uint64_t)field << 3 | 2);
    lw_pb_varint(b, n);
    lw_pb_bytes(b, p, n);
}

void lw_pb_packed(struct lw_pb *b, uint32_t field, const uint64_t *v, size_t n)
{
    if (n == 0)
        return;
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t x = v[i];
        do {
            len++;
            x >>= 7;
        } while (x);
    }
    lw_pb_varint(b, (uint64_t)field << 3 | 2);
    lw_pb_varint(b, len);
    for (size_t i = 0; i < n; i++)
        lw_pb_varint(b, v[i]);
}

void lw_pb_reset(struct lw_pb *b)
{
    b->len = 0;
    b->oom = false;
}

void lw_pb_free(struct lw_pb *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}
