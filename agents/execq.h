/*
 * execq.h -- runs a command once per alert, the alert as JSON on its stdin:
 * the bridge to SMS, mail or a chat webhook. At most `jobs` commands run at
 * once (a new one waits for a free slot), each at most timeout_ms (then it
 * is killed); failures and timeouts are reported on stderr and counted.
 */
#ifndef CLUSTERMON_EXECQ_H
#define CLUSTERMON_EXECQ_H

#include <stdint.h>
#include <sys/types.h>

typedef struct {
    pid_t pid;
    int64_t started_ms;
} execq_job_t;

typedef struct {
    const char *cmd;         /* run with /bin/sh -c; borrowed */
    int jobs;                /* concurrency limit */
    int64_t timeout_ms;
    execq_job_t *running;    /* jobs slots; pid 0 = free */
    uint64_t started, ok, failed, timed_out;
} execq_t;

/* Returns 0 or -1 (out of memory). */
int execq_init(execq_t *q, const char *cmd, int jobs, int64_t timeout_ms);

/* Starts cmd with input on its stdin, waiting for a free slot first (up to
 * the slot holder's timeout). Returns 0, or -1 if it could not be started
 * (counted as failed). */
int execq_run(execq_t *q, const char *input, size_t len);

/* Reaps finished jobs and kills overdue ones; never blocks. */
void execq_poll(execq_t *q);

/* Waits for every job (each bounded by the timeout), then frees q. */
void execq_finish(execq_t *q);

#endif
