/*
 * pb.h - the few protocol-buffer wire-format primitives the pprof output
 * needs: varints, length-delimited fields and packed repeated varints,
 * appended to a growable byte buffer. Encoding only; no schema, no
 * reflection (see output_pprof.c for why this is not protobuf-c).
 */
#ifndef LW_TOOLS_PB_H
#define LW_TOOLS_PB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lw_pb {
    uint8_t *data;
    size_t len, cap;
    bool oom; /* sticky: an allocation failed; data is then incomplete */
};

/* Append raw bytes (grows the buffer; on failure sets oom and drops them). */
void lw_pb_bytes(struct lw_pb *b, const void *p, size_t n);
/* A bare varint. */
void lw_pb_varint(struct lw_pb *b, uint64_t v);
/* Field `field` as a varint (wire type 0); int64 values are passed cast to
 * uint64 (two's complement, as protobuf encodes int64). Zero is still
 * written: callers skip defaults when they want to. */
void lw_pb_uint(struct lw_pb *b, uint32_t field, uint64_t v);
/* Field `field` as length-delimited bytes (wire type 2). */
void lw_pb_lenfield(struct lw_pb *b, uint32_t field, const void *p, size_t n);
/* Field `field` as a packed repeated varint. Nothing for n == 0. */
void lw_pb_packed(struct lw_pb *b, uint32_t field, const uint64_t *v, size_t n);
/* Empty the buffer for reuse (keeps its memory and clears oom). */
void lw_pb_reset(struct lw_pb *b);
/* Free the buffer; *b is zeroed. */
void lw_pb_free(struct lw_pb *b);

#endif
