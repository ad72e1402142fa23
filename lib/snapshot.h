/*
 * snapshot.h - writes one .lwsnap file: process, module map, stacks,
 * regions, totals. Atomic (a dot-named temporary, then rename), one sticky
 * error, buffers reserved at start: it never allocates through the host and
 * never uses stdio. One writer at a time (a mutex taken only by writers).
 */
#ifndef LW_SNAPSHOT_H
#define LW_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Buffered record output with a sticky error. */
struct lw_out {
    int fd;
    char *buf;
    size_t cap, len;
    uint64_t offset;  /* bytes written before buf */
    uint64_t records;
    uint32_t rec_left; /* payload bytes the open record still expects */
    uint32_t rec_len;
    bool err;
    int err_no;
};

void lw_out_begin(struct lw_out *o, uint32_t tag, uint32_t len);
void lw_out_bytes(struct lw_out *o, const void *p, size_t n);
void lw_out_end(struct lw_out *o);

/* Map and pre-touch the writer's buffers. false: no memory. */
bool lw_snapshot_init(void);

/* Write a snapshot now (trigger: enum lw_trigger). Returns 0, or -1 after
 * one warning (the file is then not left behind). On success copies the
 * final path into path_out if given. Must run with the thread's guard set. */
int lw_snapshot_write(uint32_t trigger, char *path_out, size_t path_len);

/* Write a threshold snapshot: the same, plus the TRIGGER record *t
 * (t->trigger is the trigger). */
struct lw_rec_trigger;
int lw_snapshot_write_trigger(const struct lw_rec_trigger *t, char *path_out, size_t path_len);

/* Grow the writer's reserves ahead of need (the age scan's scratch) if
 * the stack table outgrew them; skipped while a write is in progress.
 * Cheap when there is nothing to do. Guard set. */
void lw_snapshot_reserve(void);

/* During a write, after the STACK records: whether stack id is in the
 * file (records written later must name only those). Writer only. */
bool lw_snapshot_has_stack(uint32_t id);

/* Snapshots this process has written. */
uint32_t lw_snapshot_count(void);

void lw_snapshot_fork_child(void);

/* Name of a trigger as used in file names and reports ("exit", ...). */
const char *lw_snapshot_trigger_name(uint32_t trigger);

#endif
