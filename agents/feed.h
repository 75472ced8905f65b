/*
 * feed.h -- the agent's unattended inputs: a drop folder (--watch DIR) and
 * a command run periodically (--exec CMD --every DURATION).
 *
 * Both hand each finished input, a regular file, to a send callback (the
 * agent's whole run: spool, deliver, wait for the acks), so a file from a
 * drop folder or a command's output is checked, sent and settled exactly
 * as a FILE argument is.
 *
 * Drop folder: a file is taken once it is finished, which the agent cannot
 * be told by a writer that just writes, so it judges: the file's size and
 * mtime are unchanged between two scans at least settle_ms apart, and its
 * mtime is at least settle_ms old. A writer that pauses longer than that
 * (a slow network copy) should write under a name that is ignored (starting
 * with '.', or ending in .tmp or .part) and rename the file in when done:
 * a rename is atomic, and the agent never sees half a file. A sent file
 * moves to DIR/done/; a refused one (a bad row, a nack) to DIR/rejected/
 * with NAME.reason beside it, holding what the agent said. A file whose
 * delivery got no ack stays and is tried again (the spool resends it).
 *
 * Periodic command: run with /bin/sh -c every every_ms, its stdout written
 * to a file of its own in tmpdir; only a command that exits 0 has its
 * output sent. A failure is logged with its exit status (or signal) and the
 * command runs again at the next period.
 */
#ifndef CLUSTERMON_AGENTS_FEED_H
#define CLUSTERMON_AGENTS_FEED_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

/*
 * Sends one input file; returns the agent's exit status for it (0 sent and
 * acked). reason (reasonlen bytes) receives, on a failure, what went wrong.
 */
typedef int (*feed_send_fn)(void *arg, const char *path, char *reason, size_t reasonlen);

/* Exit statuses of a send after which the file is set aside (not retried). */
typedef struct {
    feed_send_fn send;
    void *arg;
    int retry_status[4];         /* statuses that leave a drop-folder file to retry, 0-terminated */
    volatile sig_atomic_t *stop; /* set by a signal handler: return after the current file */
    void (*log)(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
} feed_t;

/* Parses "90", "90s", "500ms", "5m", "1h", "1d" into ms (> 0). Returns false otherwise. */
bool feed_duration_parse(const char *s, long *ret_ms);

/*
 * Watches dir until *f->stop; creates dir/done and dir/rejected. Returns 0
 * when stopped, or 1 if dir cannot be read at the start.
 */
int feed_watch(const feed_t *f, const char *dir, long settle_ms);

/*
 * Runs cmd every every_ms (the first run at once) until *f->stop, or just
 * once if every_ms is 0 (then returns the send's status, or 1 if the
 * command failed). Returns 0 when stopped.
 */
int feed_exec(const feed_t *f, const char *cmd, long every_ms, const char *tmpdir);

#endif
