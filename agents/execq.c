/* execq.c -- see execq.h. */
#include "agents/execq.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proto/clock.h"

int execq_init(execq_t *q, const char *cmd, int jobs, int64_t timeout_ms)
{
    memset(q, 0, sizeof *q);
    q->cmd = cmd;
    q->jobs = jobs > 0 ? jobs : 1;
    q->timeout_ms = timeout_ms;
    q->running = calloc((size_t)q->jobs, sizeof *q->running);
    return q->running ? 0 : -1;
}

static void finished(execq_t *q, execq_job_t *j, int status, execq_done_cb done, void *data)
{
    bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (ok) {
        q->ok++;
    } else {
        q->failed++;
        if (WIFEXITED(status))
            fprintf(stderr, "clustermon-sub: --exec command (pid %d) exited with status %d\n",
                    (int)j->pid, WEXITSTATUS(status));
        else if (WIFSIGNALED(status))
            fprintf(stderr, "clustermon-sub: --exec command (pid %d) killed by signal %d\n",
                    (int)j->pid, WTERMSIG(status));
    }
    j->pid = 0;
    if (done)
        done(j->tag, ok, data);
}

int execq_free_slots(const execq_t *q)
{
    return q->jobs - execq_running(q);
}

int execq_running(const execq_t *q)
{
    int busy = 0;
    for (int i = 0; i < q->jobs; i++)
        busy += q->running[i].pid != 0;
    return busy;
}

void execq_poll(execq_t *q, execq_done_cb done, void *data)
{
    int64_t now = clock_monotonic_ms();
    for (int i = 0; i < q->jobs; i++) {
        execq_job_t *j = &q->running[i];
        if (!j->pid)
            continue;
        int status;
        pid_t r = waitpid(j->pid, &status, WNOHANG);
        if (r == j->pid) {
            finished(q, j, status, done, data);
        } else if (now - j->started_ms >= q->timeout_ms) {
            kill(j->pid, SIGKILL);
            waitpid(j->pid, &status, 0);
            q->timed_out++;
            q->failed++;
            fprintf(stderr, "clustermon-sub: --exec command (pid %d) ran over %lld ms: killed\n",
                    (int)j->pid, (long long)q->timeout_ms);
            j->pid = 0;
            if (done)
                done(j->tag, false, data);
        }
    }
}

static execq_job_t *free_slot(execq_t *q, execq_done_cb done, void *data)
{
    for (;;) {
        execq_poll(q, done, data);
        for (int i = 0; i < q->jobs; i++)
            if (!q->running[i].pid)
                return &q->running[i];
        struct timespec ts = {0, 10 * 1000000}; /* 10 ms: a slot frees or times out */
        nanosleep(&ts, NULL);
    }
}

int execq_run(execq_t *q, const char *input, size_t len, uint64_t tag, execq_done_cb done,
              void *data)
{
    execq_job_t *slot = free_slot(q, done, data);
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        q->failed++;
        fprintf(stderr, "clustermon-sub: --exec: pipe: %s\n", strerror(errno));
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        q->failed++;
        fprintf(stderr, "clustermon-sub: --exec: fork: %s\n", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(fds[0], STDIN_FILENO);
        signal(SIGPIPE, SIG_DFL);
        execl("/bin/sh", "sh", "-c", q->cmd, (char *)NULL);
        _exit(127);
    }
    close(fds[0]);
    /* An alert is a few KiB at most: it fits the pipe, so this never blocks
     * for long; a command that does not read its stdin gets EPIPE here. */
    void (*old)(int) = signal(SIGPIPE, SIG_IGN);
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fds[1], input + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    signal(SIGPIPE, old);
    close(fds[1]);
    slot->pid = pid;
    slot->started_ms = clock_monotonic_ms();
    slot->tag = tag;
    q->started++;
    return 0;
}

void execq_finish(execq_t *q, execq_done_cb done, void *data)
{
    for (;;) {
        execq_poll(q, done, data);
        if (!execq_running(q))
            break;
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    free(q->running);
    q->running = NULL;
}
