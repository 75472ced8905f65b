/* fileio.c -- see fileio.h. */
#include "proto/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto/clock.h"

#define TMP_SUFFIX ".tmp"
#define TMP_TRIES 100 /* names tried before giving up: each collision is 1 in 62^6 */

int fileio_write_all(int fd, const void *buf, size_t len)
{
    struct iovec iov = {(void *)(uintptr_t)buf, len};
    return fileio_writev_all(fd, &iov, 1);
}

int fileio_writev_all(int fd, const struct iovec *iov, int iovcnt)
{
    struct iovec v[FILEIO_IOV_MAX], *p = v;
    if (iovcnt < 1 || iovcnt > FILEIO_IOV_MAX) {
        errno = EINVAL;
        return -1;
    }
    memcpy(v, iov, (size_t)iovcnt * sizeof *iov);
    while (iovcnt > 0) {
        /* skip empty pieces: a writev of nothing returns 0, which means no progress */
        if (p->iov_len == 0) {
            p++;
            iovcnt--;
            continue;
        }
        ssize_t n = writev(fd, p, iovcnt);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO;
            return -1;
        }
        while (iovcnt > 0 && (size_t)n >= p->iov_len) {
            n -= (ssize_t)p->iov_len;
            p++;
            iovcnt--;
        }
        if (iovcnt > 0) {
            p->iov_base = (char *)p->iov_base + n;
            p->iov_len -= (size_t)n;
        }
    }
    return 0;
}

ssize_t fileio_read_full(int fd, void *buf, size_t cap)
{
    size_t got = 0;
    while (got < cap) {
        ssize_t n = read(fd, (char *)buf + got, cap - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

int fileio_sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

/* "DIR/NAME: what: strerror(errno)" into err; keeps errno; returns -1. */
static int fail(char *err, size_t errlen, const char *dir, const char *name, const char *what)
{
    int e = errno;
    if (err && errlen)
        snprintf(err, errlen, "%s%s%s: %s: %s", dir ? dir : "", dir ? "/" : "", name, what,
                 strerror(e));
    errno = e;
    return -1;
}

/* Creates NAME.XXXXXX.tmp in dirfd with O_EXCL; its name goes to tmp. */
static int create_tmp(int dirfd, const char *name, char *tmp, size_t size)
{
    static const char chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    for (int t = 0; t < TMP_TRIES; t++) {
        unsigned char r[6];
        if (getrandom(r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r) {
            /* no entropy yet (early boot): O_EXCL keeps this safe, only less unique */
            uint64_t x = clock_monotonic_ns() ^ ((uint64_t)getpid() << 20) ^ (uint64_t)t;
            for (size_t i = 0; i < sizeof r; i++, x >>= 8)
                r[i] = (unsigned char)x;
        }
        char suffix[7];
        for (size_t i = 0; i < sizeof r; i++)
            suffix[i] = chars[r[i] % (sizeof chars - 1)];
        suffix[6] = '\0';
        if ((size_t)snprintf(tmp, size, "%s.%s" TMP_SUFFIX, name, suffix) >= size) {
            errno = ENAMETOOLONG;
            return -1;
        }
        int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    return -1; /* errno is EEXIST */
}

int fileio_write_atomic_at(int dirfd, const char *dir, const char *name, const struct iovec *iov,
                           int iovcnt, mode_t mode, char *err, size_t errlen)
{
    char tmp[4096];
    int fd = create_tmp(dirfd, name, tmp, sizeof tmp);
    if (fd < 0)
        return fail(err, errlen, dir, name, "create a temp file beside it");
    /* created 0600; the mode asked for is set whatever the umask */
    const char *step = NULL;
    if (fchmod(fd, mode) != 0)
        step = "chmod";
    else if (fileio_writev_all(fd, iov, iovcnt) != 0)
        step = "write";
    else if (fsync(fd) != 0)
        step = "fsync";
    if (step) {
        fail(err, errlen, dir, tmp, step);
        goto unlink;
    }
    if (close(fd) != 0) {
        fd = -1;
        fail(err, errlen, dir, tmp, "close");
        goto unlink;
    }
    fd = -1;
    if (renameat(dirfd, tmp, dirfd, name) != 0) {
        fail(err, errlen, dir, name, "rename");
        goto unlink;
    }
    /* the rename is durable only once the directory is */
    if (fsync(dirfd) != 0)
        return fail(err, errlen, NULL, !dir ? "." : *dir ? dir : "/", "fsync");
    return 0;
unlink : {
    int e = errno;
    if (fd >= 0)
        close(fd);
    unlinkat(dirfd, tmp, 0);
    errno = e;
    return -1;
}
}

int fileio_writev_atomic(const char *path, const struct iovec *iov, int iovcnt, mode_t mode,
                         char *err, size_t errlen)
{
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else if ((size_t)(slash - path) < sizeof dir)
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    else {
        errno = ENAMETOOLONG;
        return fail(err, errlen, NULL, path, "open its directory");
    }
    int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0)
        return fail(err, errlen, NULL, dir, "open the directory");
    /* messages name the path as given: "state.XXXXXX.tmp" or "/run/x/state.XXXXXX.tmp" */
    const char *label = !slash ? NULL : slash == path ? "" : dir;
    int rc = fileio_write_atomic_at(dirfd, label, slash ? slash + 1 : path, iov, iovcnt, mode, err,
                                    errlen);
    int e = errno;
    close(dirfd);
    errno = e;
    return rc;
}

int fileio_write_atomic(const char *path, const void *data, size_t len, mode_t mode, char *err,
                        size_t errlen)
{
    struct iovec iov = {(void *)(uintptr_t)data, len};
    return fileio_writev_atomic(path, &iov, 1, mode, err, errlen);
}

int fileio_mkdir_p(const char *path, mode_t mode, const char *what, char *err, size_t errlen)
{
    char buf[4096];
    if ((size_t)snprintf(buf, sizeof buf, "%s", path) >= sizeof buf) {
        errno = ENAMETOOLONG;
        snprintf(err, errlen, "%s %s: path too long", what, path);
        return -1;
    }
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(buf, mode) != 0 && errno != EEXIST) {
            int e = errno;
            snprintf(err, errlen, "%s %s: cannot create %s: %s", what, path, buf, strerror(e));
            errno = e;
            return -1;
        }
        if (!c)
            return 0;
        *p = c;
    }
}
