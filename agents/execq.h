/*
 * execq.h -- runs a command once per alert, the alert as JSON on its stdin:
 * the bridge to SMS, mail or a chat webhook. At most `jobs` commands run at
 * once (a new one waits for a free slot), each at most timeout_ms (then it
 * is killed); failures and timeouts are reported on stderr and counted.
 * Each job carries the caller's tag, handed back with its outcome, so the
 * caller (agents/handoff.h) can mark that one event delivered or retry it.
 */
#ifndef CLUSTERMON_EXECQ_H
#define CLUSTERMON_EXECQ_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct {
    pid_t pid;
    int64_t started_ms;
    uint64_t tag;
} execq_job_t;

/* A job ended: ok is true if the command exited 0 within its timeout. */
typedef void (*execq_done_cb)(uint64_t tag, bool ok, void *data);

typedef struct {
    const char *cmd; /* run with /bin/sh -c; borrowed */
    int jobs;        /* concurrency limit */
    int64_t timeout_ms;
    execq_job_t *running; /* jobs slots; pid 0 = free */
    uint64_t started, ok, failed, timed_out;
} execq_t;

/* Returns 0 or -1 (out of memory). */
int execq_init(execq_t *q, const char *cmd, int jobs, int64_t timeout_ms);

/* How many more commands may start now. */
int execq_free_slots(const execq_t *q);

/* How many commands are running. */
int execq_running(const execq_t *q);

/* Starts cmd with input on its stdin, waiting for a free slot first (up to
 * the slot holder's timeout; call it when execq_free_slots() > 0 not to
 * wait); done (may be NULL) is told of jobs that end meanwhile. Returns 0,
 * or -1 if it could not be started (counted as failed; done is not called
 * for tag). input is borrowed for the call. */
int execq_run(execq_t *q, const char *input, size_t len, uint64_t tag, execq_done_cb done,
              void *data);

/* Reaps finished jobs and kills overdue ones, calling done (may be NULL)
 * for each; never blocks. */
void execq_poll(execq_t *q, execq_done_cb done, void *data);

/* Waits for every job (each bounded by the timeout), calling done for
 * each, then frees q. */
void execq_finish(execq_t *q, execq_done_cb done, void *data);

#endif
