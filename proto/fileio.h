/*
 * fileio.h -- whole writes, whole reads and atomic file replacement, for
 * every program.
 *
 * The daemon (WAL, membership file), the agent (spool batches and state),
 * clustermon-sub (--state-file) and clustermonctl (keygen) all write files
 * that must survive a crash whole or not at all, and all had their own
 * loops for short writes, EINTR and fsyncing a directory. The rules live
 * here once:
 *
 *  - a write is done when every byte is written: short writes are resumed,
 *    EINTR is retried, a write of 0 bytes is an error (EIO);
 *  - a file is replaced atomically by writing a temp file beside it (same
 *    directory, so the rename cannot cross file systems), fsyncing it,
 *    giving it its mode, renaming it over the target and fsyncing the
 *    directory, so the rename itself is durable. Readers, and a restart
 *    after a crash or a power cut, see the old contents or the new, never
 *    a mix. The temp file is NAME.XXXXXX.tmp (XXXXXX random, created with
 *    O_EXCL, so two writers never share one); after a crash one may be
 *    left, which a reader of the directory can recognise by ".tmp".
 *
 * Nothing here logs. Functions return 0 (or a count) or -1 with errno set;
 * those a human will read about also write "PATH: step: reason" into the
 * caller's err buffer (err may be NULL). Blocking I/O: call from the
 * daemon's loop only where it already does such I/O (start-up, rare
 * rewrites), or from a worker. No state; any thread.
 */
#ifndef CLUSTERMON_PROTO_FILEIO_H
#define CLUSTERMON_PROTO_FILEIO_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

#define FILEIO_IOV_MAX 8 /* the most pieces fileio_writev_all takes */

/* Writes all len bytes of buf to fd. Returns 0 or -1 (errno). */
int fileio_write_all(int fd, const void *buf, size_t len);

/* Writes all iovcnt (1..FILEIO_IOV_MAX, else EINVAL) pieces to fd, in
 * order; iov is not modified. Returns 0 or -1 (errno). */
int fileio_writev_all(int fd, const struct iovec *iov, int iovcnt);

/* Reads from fd until end of file or until cap bytes are read, whichever
 * is first; EINTR is retried. Returns the count read (less than cap only
 * at end of file: a caller that wants to know whether more follows asks
 * for one byte more than it accepts), or -1 (errno). */
ssize_t fileio_read_full(int fd, void *buf, size_t cap);

/* fsyncs the directory dir, making the creations, renames and removals in
 * it durable. Returns 0 or -1 (errno). */
int fileio_sync_dir(const char *dir);

/*
 * Replaces name in the directory open as dirfd (or AT_FDCWD) with the
 * iovcnt pieces of iov (1..FILEIO_IOV_MAX), mode mode whatever the umask,
 * atomically and durably as described above; the directory is fsynced
 * through dirfd. dir names the directory in messages only ("DIR/NAME:
 * write: No space left on device"); NULL for none. Returns 0, or -1 with
 * errno and err: then no temp file is left, and name is unchanged unless
 * only the final directory fsync failed (the new contents are in place,
 * their durability in doubt). Borrows everything for the call.
 */
int fileio_write_atomic_at(int dirfd, const char *dir, const char *name, const struct iovec *iov,
                           int iovcnt, mode_t mode, char *err, size_t errlen);

/* The same for path (its directory is opened for the call); messages
 * name the path as given. */
int fileio_writev_atomic(const char *path, const struct iovec *iov, int iovcnt, mode_t mode,
                         char *err, size_t errlen);

/* Creates path and every missing parent (mode for each new one), as mkdir -p.
 * 0, or -1 with errno and err: "WHAT PATH: cannot create DIR: reason" (what
 * names the setting the path came from, e.g. "upstream.state_dir"). */
int fileio_mkdir_p(const char *path, mode_t mode, const char *what, char *err, size_t errlen);

/* fileio_writev_atomic from one buffer: len bytes of data. */
int fileio_write_atomic(const char *path, const void *data, size_t len, mode_t mode, char *err,
                        size_t errlen);

#endif
