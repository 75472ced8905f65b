/*
 * spool.c -- the agent's durable spool of unacknowledged batches (see
 * spool.h for the file formats and the rules).
 *
 * Every file operation goes through the spool directory's descriptor
 * (openat, renameat, unlinkat), so the directory is fsync()ed through the
 * same descriptor after each rename or unlink and nothing depends on the
 * working directory after open. The index is a sorted array of (seq, size),
 * consumed from the front, because batches are acked in seq order.
 */
#include "agents/spool.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agents/crc32.h"
#include "proto/bytes.h"
#include "proto/clock.h"
#include "proto/fileio.h"
#include "proto/proto.h"

#define MAGIC "CMSB"
#define STATE_MAGIC "clustermon-agent-spool"
#define STATE_NAME "state"
#define LOCK_NAME "lock"
#define REJECTED_DIR "rejected"
#define CORRUPT_DIR "corrupt"
#define TMP_SUFFIX ".tmp"
#define BATCH_SUFFIX ".batch"
#define BATCH_NAME_LEN 26 /* 20 digits + ".batch" */
#define STATE_MAX 16384   /* bytes: a state file is a few hundred */

typedef struct {
    uint64_t seq;
    uint64_t size; /* file size, header included */
} entry_t;

struct spool {
    char dir[SPOOL_PATH_MAX];
    char agent[PROTO_MAX_ID_LEN + 1];
    int dirfd, lockfd;
    uint64_t max_bytes;
    uint64_t epoch;
    uint64_t next_seq;
    spool_input_t input;

    entry_t *ent; /* ent[first..n) are spooled, by seq */
    size_t first, n, cap;
    uint64_t bytes;

    proto_sample_t *samples; /* for spool_read()'s decode check, allocated on first use */
    spool_warn_cb *warn;
    void *warn_arg;
};

static void *xmalloc(size_t size)
{
    void *p = malloc(size > 0 ? size : 1);
    if (p == NULL)
        abort();
    return p;
}

static void reason(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void reason(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static void warn(spool_t *sp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(spool_t *sp, const char *fmt, ...)
{
    char msg[SPOOL_ERRLEN];
    va_list ap;

    if (sp->warn == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sp->warn(sp->warn_arg, msg);
}

/* Writes "dir/name: what: strerror(errno)" and returns SPOOL_EIO. */
static int io_fail(const spool_t *sp, const char *name, const char *what, char *err, size_t errlen)
{
    int e = errno;

    reason(err, errlen, "%s/%s: %s: %s", sp->dir, name, what, strerror(e));
    errno = e;
    return SPOOL_EIO;
}

/* ---- file primitives ------------------------------------------------------- */

static void batch_name(uint64_t seq, char *buf, size_t size)
{
    snprintf(buf, size, "%020" PRIu64 BATCH_SUFFIX, seq);
}

/* Parses a batch file name; false for anything else. */
static bool batch_name_parse(const char *name, uint64_t *ret_seq)
{
    uint64_t v = 0;

    if (strlen(name) != BATCH_NAME_LEN || strcmp(name + 20, BATCH_SUFFIX) != 0)
        return false;
    for (int i = 0; i < 20; i++) {
        if (!isdigit((unsigned char)name[i]))
            return false;
        if (v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(name[i] - '0');
    }
    *ret_seq = v;
    return v > 0;
}

static int sync_dir(spool_t *sp, char *err, size_t errlen)
{
    if (fsync(sp->dirfd) != 0)
        return io_fail(sp, ".", "fsync", err, errlen);
    return SPOOL_OK;
}

/*
 * Writes name atomically from the two pieces (proto/fileio.h: a temp file,
 * fsync, rename over name, fsync of the directory). A crash leaves either
 * the old file or the new one (and maybe a NAME.XXXXXX.tmp, which
 * spool_open() removes).
 */
static int write_atomic(spool_t *sp, const char *name, const void *a, size_t alen, const void *b,
                        size_t blen, char *err, size_t errlen)
{
    struct iovec iov[2] = {{(void *)(uintptr_t)a, alen}, {(void *)(uintptr_t)b, blen}};

    if (fileio_write_atomic_at(sp->dirfd, sp->dir, name, iov, 2, 0600, err, errlen) != 0)
        return SPOOL_EIO;
    return SPOOL_OK;
}

/* Reads a whole file of at most max bytes into a malloc()ed buffer (NUL-terminated). */
static int read_file(spool_t *sp, const char *name, size_t max, char **ret_buf, size_t *ret_len,
                     char *err, size_t errlen)
{
    struct stat st;
    ssize_t len;

    int fd = openat(sp->dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return io_fail(sp, name, "open", err, errlen);
    if (fstat(fd, &st) != 0) {
        io_fail(sp, name, "stat", err, errlen);
        close(fd);
        return SPOOL_EIO;
    }
    if ((uint64_t)st.st_size > max) {
        reason(err, errlen, "%s/%s: %lld bytes, more than a spool file can hold", sp->dir, name,
               (long long)st.st_size);
        close(fd);
        return SPOOL_ECORRUPT;
    }
    char *buf = xmalloc((size_t)st.st_size + 1);
    /* shorter than st_size if it shrank under us: the checks will say so */
    if ((len = fileio_read_full(fd, buf, (size_t)st.st_size)) < 0) {
        io_fail(sp, name, "read", err, errlen);
        free(buf);
        close(fd);
        return SPOOL_EIO;
    }
    close(fd);
    buf[len] = '\0';
    *ret_buf = buf;
    *ret_len = (size_t)len;
    return SPOOL_OK;
}

/* Moves name into subdir/ (created 0700), fsyncs; writes "dir/subdir/name" into ret_path. */
static int move_to(spool_t *sp, const char *name, const char *subdir, char *ret_path,
                   size_t pathlen, char *err, size_t errlen)
{
    char target[128];

    if (mkdirat(sp->dirfd, subdir, 0700) != 0 && errno != EEXIST)
        return io_fail(sp, subdir, "mkdir", err, errlen);
    snprintf(target, sizeof target, "%s/%s", subdir, name);
    if (renameat(sp->dirfd, name, sp->dirfd, target) != 0)
        return io_fail(sp, name, "rename", err, errlen);
    if (ret_path != NULL)
        snprintf(ret_path, pathlen, "%s/%s", sp->dir, target);
    return sync_dir(sp, err, errlen);
}

/* ---- the index ------------------------------------------------------------- */

static void index_push(spool_t *sp, uint64_t seq, uint64_t size)
{
    if (sp->first > 0 && sp->first * 2 >= sp->n) {
        memmove(sp->ent, sp->ent + sp->first, (sp->n - sp->first) * sizeof *sp->ent);
        sp->n -= sp->first;
        sp->first = 0;
    }
    if (sp->n == sp->cap) {
        sp->cap = sp->cap ? sp->cap * 2 : 64;
        sp->ent = realloc(sp->ent, sp->cap * sizeof *sp->ent);
        if (sp->ent == NULL)
            abort();
    }
    sp->ent[sp->n++] = (entry_t){seq, size};
    sp->bytes += size;
}

/* Returns the index of seq in ent[first..n), or -1. */
static ptrdiff_t index_find(const spool_t *sp, uint64_t seq)
{
    size_t lo = sp->first, hi = sp->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (sp->ent[mid].seq < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < sp->n && sp->ent[lo].seq == seq ? (ptrdiff_t)lo : -1;
}

static void index_drop(spool_t *sp, size_t i)
{
    sp->bytes -= sp->ent[i].size;
    if (i == sp->first) {
        sp->first++;
    } else {
        memmove(sp->ent + i, sp->ent + i + 1, (sp->n - i - 1) * sizeof *sp->ent);
        sp->n--;
    }
    if (sp->first == sp->n)
        sp->first = sp->n = 0;
}

static int entry_cmp(const void *a, const void *b)
{
    uint64_t x = ((const entry_t *)a)->seq, y = ((const entry_t *)b)->seq;
    return x < y ? -1 : x > y;
}

/* ---- the state file ---------------------------------------------------------- */

static void path_escape(const char *s, char *out, size_t size)
{
    size_t o = 0;

    for (; *s != '\0' && o + 3 < size; s++) {
        if (*s == '\\' || *s == '\n') {
            out[o++] = '\\';
            out[o++] = *s == '\n' ? 'n' : '\\';
        } else {
            out[o++] = *s;
        }
    }
    out[o] = '\0';
}

static bool path_unescape(const char *s, char *out, size_t size)
{
    size_t o = 0;

    for (; *s != '\0'; s++) {
        char c = *s;
        if (c == '\\') {
            s++;
            if (*s == 'n')
                c = '\n';
            else if (*s == '\\')
                c = '\\';
            else
                return false;
        }
        if (o + 1 >= size)
            return false;
        out[o++] = c;
    }
    out[o] = '\0';
    return true;
}

static int state_write(spool_t *sp, char *err, size_t errlen)
{
    char path[SPOOL_PATH_MAX * 2];
    char *buf = xmalloc(STATE_MAX);

    path_escape(sp->input.path, path, sizeof path);
    int n = snprintf(buf, STATE_MAX,
                     STATE_MAGIC " %d\n"
                                 "agent %s\n"
                                 "epoch %" PRIu64 "\n"
                                 "next_seq %" PRIu64 "\n"
                                 "input_path %s\n"
                                 "input_dev %" PRIu64 "\n"
                                 "input_ino %" PRIu64 "\n"
                                 "input_offset %" PRIu64 "\n"
                                 "input_line %" PRIu64 "\n"
                                 "input_crc %" PRIu32 "\n",
                     SPOOL_FORMAT_VERSION, sp->agent, sp->epoch, sp->next_seq, path, sp->input.dev,
                     sp->input.ino, sp->input.pos.offset, sp->input.pos.line, sp->input.pos.crc);
    if (n < 0 || n >= STATE_MAX) {
        free(buf);
        reason(err, errlen, "%s/" STATE_NAME ": the input path is too long", sp->dir);
        return SPOOL_EINVAL;
    }
    int rc = write_atomic(sp, STATE_NAME, buf, (size_t)n, NULL, 0, err, errlen);
    free(buf);
    return rc;
}

static bool parse_u64(const char *s, uint64_t *ret)
{
    uint64_t v = 0;

    if (*s == '\0')
        return false;
    for (; *s != '\0'; s++) {
        if (!isdigit((unsigned char)*s) || v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *ret = v;
    return true;
}

enum { K_AGENT, K_EPOCH, K_NEXT_SEQ, K_PATH, K_DEV, K_INO, K_OFFSET, K_LINE, K_CRC, K_COUNT };
static const char *const state_keys[K_COUNT] = {"agent",        "epoch",      "next_seq",
                                                "input_path",   "input_dev",  "input_ino",
                                                "input_offset", "input_line", "input_crc"};

/* Parses buf (NUL-terminated, modified) into sp. */
static int state_parse(spool_t *sp, char *buf, char *err, size_t errlen)
{
    unsigned seen = 0, lineno = 1;
    char *line, *save = NULL;
    uint64_t v;

#define BAD(...)                                                                                   \
    do {                                                                                           \
        char why_[256];                                                                            \
        snprintf(why_, sizeof why_, __VA_ARGS__);                                                  \
        reason(err, errlen, "%s/" STATE_NAME ":%u: %s", sp->dir, lineno, why_);                    \
        return SPOOL_EINVAL;                                                                       \
    } while (0)

    line = strtok_r(buf, "\n", &save);
    if (line == NULL || strncmp(line, STATE_MAGIC " ", sizeof STATE_MAGIC) != 0)
        BAD("not a clustermon-agent spool state file");
    if (!parse_u64(line + sizeof STATE_MAGIC, &v))
        BAD("bad format version '%.20s'", line + sizeof STATE_MAGIC);
    if (v == 1) {
        reason(
            err, errlen,
            "%s was written by an older clustermon-agent (protocol 1), whose batches "
            "this daemon protocol no longer takes: deliver them with that agent before upgrading "
            "the daemon, or move the directory aside to start a new stream",
            sp->dir);
        return SPOOL_EVERSION;
    }
    if (v != SPOOL_FORMAT_VERSION) {
        reason(err, errlen,
               "%s/" STATE_NAME ": format version %" PRIu64 "; this agent reads version %d",
               sp->dir, v, SPOOL_FORMAT_VERSION);
        return SPOOL_EVERSION;
    }
    while ((line = strtok_r(NULL, "\n", &save)) != NULL) {
        char *val = strchr(line, ' ');
        int k;

        lineno++;
        if (val == NULL)
            BAD("expected 'key value'");
        *val++ = '\0';
        for (k = 0; k < K_COUNT && strcmp(line, state_keys[k]) != 0; k++)
            ;
        if (k == K_COUNT)
            BAD("unknown key '%.40s'", line);
        if (seen & (1u << k))
            BAD("duplicate key '%s'", line);
        seen |= 1u << k;
        if (k == K_AGENT) {
            if (strcmp(val, sp->agent) != 0)
                BAD("the spool belongs to agent '%.64s', not '%s'", val, sp->agent);
            continue;
        }
        if (k == K_PATH) {
            if (!path_unescape(val, sp->input.path, sizeof sp->input.path))
                BAD("bad input_path");
            continue;
        }
        if (!parse_u64(val, &v))
            BAD("%s: '%.40s' is not a number", line, val);
        switch (k) {
        case K_EPOCH:
            if (v == 0)
                BAD("epoch: must be >= 1");
            sp->epoch = v;
            break;
        case K_NEXT_SEQ:
            if (v == 0)
                BAD("next_seq: must be >= 1");
            sp->next_seq = v;
            break;
        case K_DEV: sp->input.dev = v; break;
        case K_INO: sp->input.ino = v; break;
        case K_OFFSET: sp->input.pos.offset = v; break;
        case K_LINE: sp->input.pos.line = v; break;
        case K_CRC:
            if (v > UINT32_MAX)
                BAD("input_crc: out of range");
            sp->input.pos.crc = (uint32_t)v;
            break;
        }
    }
    for (int k = 0; k < K_COUNT; k++)
        if (!(seen & (1u << k))) {
            reason(err, errlen, "%s/" STATE_NAME ": missing key '%s'", sp->dir, state_keys[k]);
            return SPOOL_EINVAL;
        }
#undef BAD
    return SPOOL_OK;
}

/* Reads the state file; *ret_found is false if there is none. */
static int state_read(spool_t *sp, bool *ret_found, char *err, size_t errlen)
{
    char *buf;
    size_t len;
    int rc;

    *ret_found = false;
    if (faccessat(sp->dirfd, STATE_NAME, F_OK, 0) != 0) {
        if (errno == ENOENT)
            return SPOOL_OK;
        return io_fail(sp, STATE_NAME, "access", err, errlen);
    }
    if ((rc = read_file(sp, STATE_NAME, STATE_MAX, &buf, &len, err, errlen)) != SPOOL_OK)
        return rc == SPOOL_ECORRUPT ? SPOOL_EINVAL : rc;
    if (memchr(buf, '\0', len) != NULL) {
        free(buf);
        reason(err, errlen, "%s/" STATE_NAME ": not a clustermon-agent spool state file", sp->dir);
        return SPOOL_EINVAL;
    }
    rc = state_parse(sp, buf, err, errlen);
    free(buf);
    *ret_found = true;
    return rc;
}

/* ---- batch files ------------------------------------------------------------- */

/*
 * Reads and checks the batch file of seq. On success the caller owns
 * *ret_file (header + message) and may read the header's position.
 * SPOOL_ECORRUPT with the reason if a check fails (the file stays).
 */
static int batch_load(spool_t *sp, uint64_t seq, unsigned char **ret_file, size_t *ret_len,
                      char *err, size_t errlen)
{
    char name[32];
    char *buf;
    size_t len;
    char why[PROTO_ERRLEN];

    batch_name(seq, name, sizeof name);
    int rc = read_file(sp, name, SPOOL_HEADER_SIZE + (size_t)PROTO_MAX_MSG_SIZE, &buf, &len, err,
                       errlen);
    if (rc != SPOOL_OK)
        return rc;
    unsigned char *p = (unsigned char *)buf;
#define CORRUPT(...)                                                                               \
    do {                                                                                           \
        snprintf(why, sizeof why, __VA_ARGS__);                                                    \
        goto corrupt;                                                                              \
    } while (0)
    if (len < SPOOL_HEADER_SIZE)
        CORRUPT("truncated: %zu bytes, shorter than the %d-byte header", len, SPOOL_HEADER_SIZE);
    if (memcmp(p, MAGIC, 4) != 0)
        CORRUPT("not a spool batch file (bad magic)");
    if (bytes_get_le32(p + 4) != SPOOL_FORMAT_VERSION)
        CORRUPT("format version %" PRIu32 ", this agent reads %d", bytes_get_le32(p + 4),
                SPOOL_FORMAT_VERSION);
    if (bytes_get_le64(p + 8) != seq)
        CORRUPT("holds seq %" PRIu64 ", its name says %" PRIu64, bytes_get_le64(p + 8), seq);
    uint32_t mlen = bytes_get_le32(p + 36);
    if (len != SPOOL_HEADER_SIZE + (size_t)mlen)
        CORRUPT("truncated or padded: %zu bytes, the header says %zu", len,
                SPOOL_HEADER_SIZE + (size_t)mlen);
    if (crc32_update(crc32_update(0, p, 40), p + SPOOL_HEADER_SIZE, mlen) != bytes_get_le32(p + 40))
        CORRUPT("CRC-32 mismatch");
    if (sp->samples == NULL)
        sp->samples = xmalloc(PROTO_MAX_SAMPLES * sizeof *sp->samples);
    proto_batch_t b = {.samples = sp->samples, .cap = PROTO_MAX_SAMPLES};
    if (proto_batch_decode(p + SPOOL_HEADER_SIZE, mlen, &b, why, sizeof why) != PROTO_OK) {
        char tmp[PROTO_ERRLEN];
        snprintf(tmp, sizeof tmp, "%s", why);
        CORRUPT("not a valid batch message: %.200s", tmp);
    }
    if (b.seq != seq)
        CORRUPT("the message has seq %" PRIu64 ", the file %" PRIu64, b.seq, seq);
#undef CORRUPT
    *ret_file = p;
    *ret_len = len;
    return SPOOL_OK;
corrupt:
    free(buf);
    reason(err, errlen, "%s/%s: %s", sp->dir, name, why);
    return SPOOL_ECORRUPT;
}

/* Moves a corrupt batch file aside, drops it from the index and warns with why. */
static int batch_quarantine(spool_t *sp, size_t i, const char *why, char *err, size_t errlen)
{
    char name[32], path[SPOOL_PATH_MAX + 64];
    int rc;

    batch_name(sp->ent[i].seq, name, sizeof name);
    index_drop(sp, i);
    if ((rc = move_to(sp, name, CORRUPT_DIR, path, sizeof path, err, errlen)) != SPOOL_OK)
        return rc;
    warn(sp, "%s; moved to %s, not sent", why, path);
    return SPOOL_OK;
}

/*
 * Lists the directory: removes *.tmp, indexes *.batch. Sets *ret_max to the
 * highest seq seen (0 if none).
 */
static int scan(spool_t *sp, uint64_t *ret_max, char *err, size_t errlen)
{
    int fd = openat(sp->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct dirent *de;
    bool removed = false;
    DIR *d;

    *ret_max = 0;
    if (fd < 0 || (d = fdopendir(fd)) == NULL) {
        if (fd >= 0)
            close(fd);
        return io_fail(sp, ".", "opendir", err, errlen);
    }
    while ((errno = 0, de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        struct stat st;
        uint64_t seq;

        if (len > strlen(TMP_SUFFIX) &&
            strcmp(de->d_name + len - strlen(TMP_SUFFIX), TMP_SUFFIX) == 0) {
            /* A write interrupted before its rename: never part of the spool. */
            if (unlinkat(sp->dirfd, de->d_name, 0) != 0 && errno != ENOENT) {
                io_fail(sp, de->d_name, "unlink", err, errlen);
                closedir(d);
                return SPOOL_EIO;
            }
            removed = true;
            continue;
        }
        if (!batch_name_parse(de->d_name, &seq))
            continue;
        if (fstatat(sp->dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            io_fail(sp, de->d_name, "stat", err, errlen);
            closedir(d);
            return SPOOL_EIO;
        }
        if (!S_ISREG(st.st_mode))
            continue;
        index_push(sp, seq, (uint64_t)st.st_size);
        if (seq > *ret_max)
            *ret_max = seq;
    }
    if (errno != 0) {
        io_fail(sp, ".", "readdir", err, errlen);
        closedir(d);
        return SPOOL_EIO;
    }
    closedir(d);
    if (sp->n - sp->first > 1)
        qsort(sp->ent + sp->first, sp->n - sp->first, sizeof *sp->ent, entry_cmp);
    return removed ? sync_dir(sp, err, errlen) : SPOOL_OK;
}

/*
 * Takes the input position from the newest valid batch written after the
 * state file, quarantining corrupt newest files on the way.
 */
static int recover_position(spool_t *sp, uint64_t state_next_seq, char *err, size_t errlen)
{
    while (sp->n > sp->first) {
        size_t i = sp->n - 1;
        unsigned char *file;
        size_t len;
        char why[SPOOL_ERRLEN];

        if (sp->ent[i].seq < state_next_seq)
            return SPOOL_OK; /* the state file is newer than every batch */
        int rc = batch_load(sp, sp->ent[i].seq, &file, &len, why, sizeof why);
        if (rc == SPOOL_ECORRUPT) {
            if ((rc = batch_quarantine(sp, i, why, err, errlen)) != SPOOL_OK)
                return rc;
            continue;
        }
        if (rc != SPOOL_OK) {
            reason(err, errlen, "%s", why);
            return rc;
        }
        sp->input.pos.offset = bytes_get_le64(file + 16);
        sp->input.pos.line = bytes_get_le64(file + 24);
        sp->input.pos.crc = bytes_get_le32(file + 32);
        free(file);
        return SPOOL_OK;
    }
    return SPOOL_OK;
}

/* ---- public ------------------------------------------------------------------ */

bool spool_agent_id_ok(const char *id)
{
    size_t len = strlen(id);

    if (len == 0 || len > PROTO_MAX_ID_LEN || id[0] == '.')
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)id[i]) && strchr("_.-", id[i]) == NULL)
            return false;
    return true;
}

/* A new stream's epoch: random, so two spools (two machines, a copied
 * config) never share one; below 2^53 so any client language holds it
 * exactly. The clock and pid stand in if the kernel has no randomness. */
static uint64_t new_epoch(void)
{
    uint64_t e = 0;
    if (getrandom(&e, sizeof e, 0) != (ssize_t)sizeof e)
        e = clock_wall_ns() ^ ((uint64_t)getpid() << 32);
    e &= (1ull << 53) - 1;
    return e ? e : 1;
}

int spool_open(const char *root, const char *agent_id, uint64_t max_bytes, uint64_t first_seq,
               spool_warn_cb *warn_cb, void *warn_arg, spool_t **ret, char *err, size_t errlen)
{
    uint64_t max_seq;
    bool found;
    int rc;

    *ret = NULL;
    if (!spool_agent_id_ok(agent_id)) {
        reason(err, errlen, "agent id '%.64s' cannot name a spool directory", agent_id);
        return SPOOL_EINVAL;
    }
    if (strlen(root) + 1 + strlen(agent_id) >= SPOOL_PATH_MAX) {
        reason(err, errlen, "%.200s...: path too long", root);
        return SPOOL_EINVAL;
    }
    spool_t *sp = calloc(1, sizeof *sp);
    if (sp == NULL)
        abort();
    sp->dirfd = sp->lockfd = -1;
    sp->max_bytes = max_bytes;
    sp->warn = warn_cb;
    sp->warn_arg = warn_arg;
    memcpy(sp->agent, agent_id, strlen(agent_id) + 1); /* checked: <= PROTO_MAX_ID_LEN */
    if (snprintf(sp->dir, sizeof sp->dir, "%s/%s", root, agent_id) >= (int)sizeof sp->dir)
        abort(); /* checked above */

    if (mkdir(root, 0700) != 0 && errno != EEXIST) {
        reason(err, errlen, "%s: mkdir: %s", root, strerror(errno));
        rc = SPOOL_EIO;
        goto fail;
    }
    if (mkdir(sp->dir, 0700) != 0 && errno != EEXIST) {
        reason(err, errlen, "%s: mkdir: %s", sp->dir, strerror(errno));
        rc = SPOOL_EIO;
        goto fail;
    }
    sp->dirfd = open(sp->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (sp->dirfd < 0) {
        reason(err, errlen, "%s: %s", sp->dir, strerror(errno));
        rc = SPOOL_EIO;
        goto fail;
    }
    sp->lockfd = openat(sp->dirfd, LOCK_NAME, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (sp->lockfd < 0) {
        rc = io_fail(sp, LOCK_NAME, "open", err, errlen);
        goto fail;
    }
    if (flock(sp->lockfd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK) {
            reason(err, errlen, "%s: in use by another clustermon-agent with agent id '%s'",
                   sp->dir, agent_id);
            rc = SPOOL_ELOCKED;
        } else {
            rc = io_fail(sp, LOCK_NAME, "flock", err, errlen);
        }
        goto fail;
    }

    if ((rc = state_read(sp, &found, err, errlen)) != SPOOL_OK)
        goto fail;
    if ((rc = scan(sp, &max_seq, err, errlen)) != SPOOL_OK)
        goto fail;
    if (!found && sp->n > sp->first) {
        /* Never happens by itself: the state is written before the first batch. */
        reason(err, errlen,
               "%s: %zu batch files but no state file: refusing to guess the input position "
               "(restore the state file or move the batch files away)",
               sp->dir, sp->n - sp->first);
        rc = SPOOL_EINVAL;
        goto fail;
    }
    if (!found) {
        sp->epoch = new_epoch();
        sp->next_seq = first_seq > 0 ? first_seq : 1;
        sp->input.pos.line = 1;
        if ((rc = state_write(sp, err, errlen)) != SPOOL_OK)
            goto fail;
    }
    uint64_t state_next = sp->next_seq;
    if ((rc = recover_position(sp, state_next, err, errlen)) != SPOOL_OK)
        goto fail;
    /* Seqs never go back, not even past a batch that was just quarantined. */
    if (max_seq >= sp->next_seq)
        sp->next_seq = max_seq + 1;
    *ret = sp;
    return SPOOL_OK;
fail:
    spool_close(&sp);
    return rc;
}

void spool_close(spool_t **spp)
{
    spool_t *sp = *spp;

    if (sp == NULL)
        return;
    if (sp->lockfd >= 0)
        close(sp->lockfd); /* releases the flock */
    if (sp->dirfd >= 0)
        close(sp->dirfd);
    free(sp->ent);
    free(sp->samples);
    free(sp);
    *spp = NULL;
}

const char *spool_dir(const spool_t *sp)
{
    return sp->dir;
}

uint64_t spool_epoch(const spool_t *sp)
{
    return sp->epoch;
}

uint64_t spool_next_seq(const spool_t *sp)
{
    return sp->next_seq;
}

size_t spool_count(const spool_t *sp)
{
    return sp->n - sp->first;
}

uint64_t spool_bytes(const spool_t *sp)
{
    return sp->bytes;
}

bool spool_first(const spool_t *sp, uint64_t *ret_seq)
{
    if (sp->n == sp->first)
        return false;
    *ret_seq = sp->ent[sp->first].seq;
    return true;
}

bool spool_next_after(const spool_t *sp, uint64_t seq, uint64_t *ret_seq)
{
    size_t lo = sp->first, hi = sp->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (sp->ent[mid].seq <= seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo >= sp->n)
        return false;
    *ret_seq = sp->ent[lo].seq;
    return true;
}

const spool_input_t *spool_input(const spool_t *sp)
{
    return &sp->input;
}

int spool_input_set(spool_t *sp, const spool_input_t *in, char *err, size_t errlen)
{
    spool_input_t old = sp->input;
    int rc;

    sp->input = *in;
    if ((rc = state_write(sp, err, errlen)) != SPOOL_OK)
        sp->input = old;
    return rc;
}

int spool_append(spool_t *sp, uint64_t seq, const void *msg, size_t len, const spool_pos_t *pos,
                 char *err, size_t errlen)
{
    unsigned char h[SPOOL_HEADER_SIZE];
    uint64_t size = SPOOL_HEADER_SIZE + (uint64_t)len;
    char name[32];
    int rc;

    if (seq != sp->next_seq) {
        reason(err, errlen, "batch seq %" PRIu64 " is not the next one (%" PRIu64 ")", seq,
               sp->next_seq);
        return SPOOL_EINVAL;
    }
    if (len > PROTO_MAX_MSG_SIZE) {
        reason(err, errlen, "batch %" PRIu64 ": %zu bytes, over the message limit", seq, len);
        return SPOOL_EINVAL;
    }
    if (spool_count(sp) > 0 && sp->bytes + size > sp->max_bytes) {
        reason(err, errlen, "spool full (%" PRIu64 " bytes)", sp->bytes);
        return SPOOL_EFULL;
    }
    memcpy(h, MAGIC, 4);
    bytes_put_le32(h + 4, SPOOL_FORMAT_VERSION);
    bytes_put_le64(h + 8, seq);
    bytes_put_le64(h + 16, pos->offset);
    bytes_put_le64(h + 24, pos->line);
    bytes_put_le32(h + 32, pos->crc);
    bytes_put_le32(h + 36, (uint32_t)len);
    bytes_put_le32(h + 40, crc32_update(crc32_update(0, h, 40), msg, len));
    batch_name(seq, name, sizeof name);
    if ((rc = write_atomic(sp, name, h, sizeof h, msg, len, err, errlen)) != SPOOL_OK)
        return rc;
    index_push(sp, seq, size);
    sp->next_seq = seq + 1;
    sp->input.pos = *pos;
    return SPOOL_OK;
}

int spool_read(spool_t *sp, uint64_t seq, void **ret_msg, size_t *ret_len, char *err, size_t errlen)
{
    ptrdiff_t i = index_find(sp, seq);
    unsigned char *file;
    size_t len;
    char why[SPOOL_ERRLEN];

    if (i < 0) {
        reason(err, errlen, "batch %" PRIu64 " is not in the spool", seq);
        return SPOOL_EINVAL;
    }
    int rc = batch_load(sp, seq, &file, &len, why, sizeof why);
    if (rc == SPOOL_ECORRUPT) {
        if ((rc = batch_quarantine(sp, (size_t)i, why, err, errlen)) != SPOOL_OK)
            return rc;
        reason(err, errlen, "%s", why);
        return SPOOL_ECORRUPT;
    }
    if (rc != SPOOL_OK) {
        reason(err, errlen, "%s", why);
        return rc;
    }
    /* Hand out the message alone: shift it over the header. */
    memmove(file, file + SPOOL_HEADER_SIZE, len - SPOOL_HEADER_SIZE);
    *ret_msg = file;
    *ret_len = len - SPOOL_HEADER_SIZE;
    return SPOOL_OK;
}

/* ---- source lines ---------------------------------------------------------- */

static void lines_name(uint64_t seq, char *buf, size_t size)
{
    snprintf(buf, size, "%020" PRIu64 ".lines", seq);
}

int spool_lines_write(spool_t *sp, uint64_t seq, const char *input, const unsigned long *lines,
                      size_t n, char *err, size_t errlen)
{
    char name[48];
    size_t cap = strlen(input) + 2 + n * 21, len = 0;
    char *buf = xmalloc(cap);

    /* the input's name on the first line (a newline in it would end it early: cut there) */
    len += (size_t)snprintf(buf, cap, "%.*s\n", (int)strcspn(input, "\n"), input);
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%lu\n", lines[i]);
    lines_name(seq, name, sizeof name);
    int rc = write_atomic(sp, name, buf, len, NULL, 0, err, errlen);
    free(buf);
    return rc;
}

int spool_lines_read(spool_t *sp, uint64_t seq, char *ret_input, size_t inputlen,
                     unsigned long **ret_lines, size_t *ret_n)
{
    char name[48], err[SPOOL_ERRLEN], *buf, *p, *nl;
    size_t len, n = 0, cap = 0;
    unsigned long *lines = NULL;

    *ret_lines = NULL;
    *ret_n = 0;
    lines_name(seq, name, sizeof name);
    if (read_file(sp, name, 64u << 20, &buf, &len, err, sizeof err) != SPOOL_OK)
        return -1;
    if ((nl = strchr(buf, '\n')) == NULL) {
        free(buf);
        return -1;
    }
    snprintf(ret_input, inputlen, "%.*s", (int)(nl - buf), buf);
    for (p = nl + 1; *p != '\0'; p = nl + 1) {
        if ((nl = strchr(p, '\n')) == NULL)
            break;
        if (n == cap) {
            cap = cap ? cap * 2 : 1024;
            lines = realloc(lines, cap * sizeof *lines);
            if (lines == NULL)
                abort();
        }
        lines[n++] = strtoul(p, NULL, 10);
    }
    free(buf);
    *ret_lines = lines;
    *ret_n = n;
    return 0;
}

/* Drops seq from the spool: unlinks it, or moves it to subdir. */
static int drop(spool_t *sp, uint64_t seq, const char *subdir, char *ret_path, size_t pathlen,
                char *err, size_t errlen)
{
    ptrdiff_t i = index_find(sp, seq);
    char name[32];
    int rc;

    if (i < 0) {
        reason(err, errlen, "batch %" PRIu64 " is not in the spool", seq);
        return SPOOL_EINVAL;
    }
    /* The newest batch file carries the input position: save it first. */
    if ((size_t)i == sp->n - 1 && (rc = state_write(sp, err, errlen)) != SPOOL_OK)
        return rc;
    batch_name(seq, name, sizeof name);
    if (subdir != NULL) {
        if ((rc = move_to(sp, name, subdir, ret_path, pathlen, err, errlen)) != SPOOL_OK)
            return rc;
    } else {
        if (unlinkat(sp->dirfd, name, 0) != 0 && errno != ENOENT)
            return io_fail(sp, name, "unlink", err, errlen);
        /*
         * No directory fsync: if the unlink is lost in a crash, the batch is
         * resent and the daemon acks it as a duplicate.
         */
    }
    /* its source lines go with it (absent for a batch spooled without them) */
    lines_name(seq, name, sizeof name);
    (void)unlinkat(sp->dirfd, name, 0);
    index_drop(sp, (size_t)i);
    return SPOOL_OK;
}

int spool_remove(spool_t *sp, uint64_t seq, char *err, size_t errlen)
{
    return drop(sp, seq, NULL, NULL, 0, err, errlen);
}

int spool_reject(spool_t *sp, uint64_t seq, char *ret_path, size_t pathlen, char *err,
                 size_t errlen)
{
    return drop(sp, seq, REJECTED_DIR, ret_path, pathlen, err, errlen);
}
