/*
 * feed.c -- the drop folder and the periodic command (see feed.h).
 *
 * No inotify: a scan every second or so over a folder an office drops a few
 * files a month into costs nothing, works on network file systems, and the
 * settle rule needs the time anyway.
 */
#include "agents/feed.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proto/clock.h"

#define MAX_TRACKED 1024

bool feed_duration_parse(const char *s, long *ret_ms)
{
    char *end;
    long mult = 1000;

    if (*s < '0' || *s > '9')
        return false;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0)
        return false;
    if (strcmp(end, "ms") == 0)
        mult = 1;
    else if (*end == '\0' || strcmp(end, "s") == 0)
        mult = 1000;
    else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0)
        mult = 60000;
    else if (strcmp(end, "h") == 0)
        mult = 3600000;
    else if (strcmp(end, "d") == 0)
        mult = 86400000;
    else
        return false;
    if (v <= 0 || v > 400L * 86400000 / mult)
        return false;
    *ret_ms = v * mult;
    return true;
}

/* Sleeps ms, returning early when stopped. */
static void nap(const feed_t *f, long ms)
{
    while (ms > 0 && !*f->stop) {
        long step = ms < 200 ? ms : 200;
        struct timespec ts = {step / 1000, (step % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        ms -= step;
    }
}

static bool ignored_name(const char *n)
{
    size_t len = strlen(n);
    return n[0] == '.' || (len > 4 && strcmp(n + len - 4, ".tmp") == 0) ||
           (len > 5 && strcmp(n + len - 5, ".part") == 0) || strcmp(n, "done") == 0 ||
           strcmp(n, "rejected") == 0;
}

/* Moves dir/name into dir/sub/, under a new name if one is there already. */
static int move_into(const feed_t *f, const char *dir, const char *sub, const char *name,
                     char *ret_path, size_t pathlen)
{
    char from[4096];
    struct stat st;

    snprintf(from, sizeof from, "%s/%s", dir, name);
    snprintf(ret_path, pathlen, "%s/%s/%s", dir, sub, name);
    for (int i = 1; lstat(ret_path, &st) == 0 && i < 1000; i++)
        snprintf(ret_path, pathlen, "%s/%s/%s.%d", dir, sub, name, i);
    if (rename(from, ret_path) != 0) {
        f->log("%s: cannot move to %s/%s/: %s", from, dir, sub, strerror(errno));
        return -1;
    }
    return 0;
}

typedef struct {
    char name[256];
    off_t size;
    struct timespec mtime;
    int64_t stable_since; /* when this size and mtime were first seen */
    bool seen;            /* in the current scan */
} tracked_t;

static void process(const feed_t *f, const char *dir, const char *name)
{
    char path[4096], dest[4096], reason[4096], rpath[4200];

    snprintf(path, sizeof path, "%s/%s", dir, name);
    reason[0] = '\0';
    int rc = f->send(f->arg, path, reason, sizeof reason);
    for (int i = 0; i < 4 && f->retry_status[i] != 0; i++)
        if (rc == f->retry_status[i]) {
            f->log("%s: not delivered (exit %d): it stays, to be sent again", path, rc);
            return;
        }
    if (rc == 0) {
        if (move_into(f, dir, "done", name, dest, sizeof dest) == 0)
            f->log("%s: sent, moved to %s", path, dest);
        return;
    }
    if (move_into(f, dir, "rejected", name, dest, sizeof dest) != 0)
        return;
    snprintf(rpath, sizeof rpath, "%s.reason", dest);
    FILE *fp = fopen(rpath, "w");
    if (fp != NULL) {
        fprintf(fp, "%s%s(exit status %d)\n", reason,
                reason[0] && reason[strlen(reason) - 1] != '\n' ? "\n" : "", rc);
        if (fclose(fp) != 0)
            f->log("%s: %s", rpath, strerror(errno));
    } else {
        f->log("%s: %s", rpath, strerror(errno));
    }
    f->log("%s: refused (exit %d), moved to %s; the reason is in %s", path, rc, dest, rpath);
}

int feed_watch(const feed_t *f, const char *dir, long settle_ms)
{
    static tracked_t t[MAX_TRACKED];
    size_t nt = 0;
    char sub[4096];
    long poll_ms = settle_ms / 2 < 1000 ? (settle_ms / 2 > 50 ? settle_ms / 2 : 50) : 1000;

    for (int i = 0; i < 2; i++) {
        snprintf(sub, sizeof sub, "%s/%s", dir, i == 0 ? "done" : "rejected");
        if (mkdir(sub, 0750) != 0 && errno != EEXIST) {
            f->log("%s: %s", sub, strerror(errno));
            return 1;
        }
    }
    while (!*f->stop) {
        DIR *d = opendir(dir);
        struct dirent *e;
        int64_t now = clock_wall_ms();

        if (d == NULL) {
            f->log("%s: %s (trying again)", dir, strerror(errno));
            nap(f, poll_ms);
            continue;
        }
        for (size_t i = 0; i < nt; i++)
            t[i].seen = false;
        while ((e = readdir(d)) != NULL && !*f->stop) {
            struct stat st;
            char path[4096];
            size_t i;

            if (ignored_name(e->d_name) || strlen(e->d_name) >= sizeof t[0].name)
                continue;
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
                continue;
            for (i = 0; i < nt && strcmp(t[i].name, e->d_name) != 0; i++)
                ;
            if (i == nt) {
                if (nt == MAX_TRACKED)
                    continue; /* the rest wait for room */
                snprintf(t[nt].name, sizeof t[nt].name, "%s", e->d_name);
                t[nt].size = -1;
                nt++;
            }
            t[i].seen = true;
            if (t[i].size != st.st_size || t[i].mtime.tv_sec != st.st_mtim.tv_sec ||
                t[i].mtime.tv_nsec != st.st_mtim.tv_nsec) {
                t[i].size = st.st_size;
                t[i].mtime = st.st_mtim;
                t[i].stable_since = now;
                continue;
            }
            int64_t mtime_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
            if (now - t[i].stable_since < settle_ms || now - mtime_ms < settle_ms)
                continue; /* still being written, perhaps */
            process(f, dir, e->d_name);
            t[i].size = -1; /* if it stays (no ack), it settles again first */
        }
        closedir(d);
        /* forget files that are gone */
        for (size_t i = 0; i < nt;)
            if (!t[i].seen)
                t[i] = t[--nt];
            else
                i++;
        nap(f, poll_ms);
    }
    return 0;
}

/* Runs cmd with stdout into path; returns its wait status, or -1. */
static int run_command(const feed_t *f, const char *cmd, const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600), status;

    if (fd < 0) {
        f->log("%s: %s", path, strerror(errno));
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        f->log("fork: %s", strerror(errno));
        close(fd);
        return -1;
    }
    if (pid == 0) {
        dup2(fd, STDOUT_FILENO);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(fd);
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return status;
}

int feed_exec(const feed_t *f, const char *cmd, long every_ms, const char *tmpdir)
{
    unsigned long n = 0;

    while (!*f->stop) {
        int64_t started = clock_monotonic_ms();
        char path[4096], reason[4096];
        int rc = 1;

        /* a file of its own per run: the same output twice is two readings */
        snprintf(path, sizeof path, "%s/exec-%ld-%lu.csv", tmpdir, (long)getpid(), ++n);
        int st = run_command(f, cmd, path);
        if (st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0) {
            reason[0] = '\0';
            rc = f->send(f->arg, path, reason, sizeof reason);
        } else if (st >= 0 && WIFEXITED(st)) {
            f->log("--exec '%s' exited with status %d: its output is not sent%s", cmd,
                   WEXITSTATUS(st), every_ms > 0 ? "; it runs again at the next period" : "");
        } else if (st >= 0 && WIFSIGNALED(st)) {
            f->log("--exec '%s' was killed by signal %d: its output is not sent%s", cmd,
                   WTERMSIG(st), every_ms > 0 ? "; it runs again at the next period" : "");
        }
        unlink(path);
        if (every_ms == 0)
            return rc;
        long left = every_ms - (long)(clock_monotonic_ms() - started);
        nap(f, left > 0 ? left : 0);
    }
    return 0;
}
