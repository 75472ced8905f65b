/* atomicfile.c -- see atomicfile.h. */
#include "agents/atomicfile.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Records which step failed, keeping errno for the caller. */
static int fail(char *err, size_t errlen, const char *what, const char *path)
{
    int e = errno;
    snprintf(err, errlen, "%s %s: %s", what, path, strerror(e));
    errno = e;
    return -1;
}

int atomicfile_write(const char *path, const void *data, size_t len, mode_t mode, char *err,
                     size_t errlen)
{
    size_t plen = strlen(path);
    char *tmp = malloc(plen + sizeof ".XXXXXX");
    char *dircopy = strdup(path);
    int fd = -1, rc = -1;
    if (!tmp || !dircopy) {
        errno = ENOMEM;
        fail(err, errlen, "allocate for", path);
        goto out;
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".XXXXXX", sizeof ".XXXXXX");
    /* mkstemp opens 0600; fchmod sets the mode asked for regardless of umask */
    if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
        fail(err, errlen, "create", tmp);
        goto out;
    }
    if (fchmod(fd, mode) != 0) {
        fail(err, errlen, "chmod", tmp);
        goto unlink;
    }
    const char *p = data;
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, p + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO;
            fail(err, errlen, "write", tmp);
            goto unlink;
        }
        off += (size_t)n;
    }
    if (fsync(fd) != 0) {
        fail(err, errlen, "fsync", tmp);
        goto unlink;
    }
    if (close(fd) != 0) {
        fd = -1;
        fail(err, errlen, "close", tmp);
        goto unlink;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        fail(err, errlen, "rename to", path);
        goto unlink;
    }
    /* the rename is durable only once the directory is */
    const char *dir = dirname(dircopy);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0) {
        fail(err, errlen, "fsync directory", dir);
        if (dfd >= 0)
            close(dfd);
        goto out; /* the new contents are in place: only their durability is in doubt */
    }
    close(dfd);
    rc = 0;
    goto out;
unlink:
    {
        int e = errno;
        if (fd >= 0)
            close(fd);
        unlink(tmp);
        errno = e;
    }
out:
    free(tmp);
    free(dircopy);
    return rc;
}
