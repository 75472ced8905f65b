/*
 * keyfile.c -- CURVE key pair files (see keyfile.h for the format).
 *
 * A key file is read whole into memory (it is a few lines; anything over
 * KEYFILE_MAX_SIZE is refused) and handed to inih through a reader that
 * counts lines, so every error can name its line, and that refuses what
 * inih would quietly accept ([sections], over-long lines). Secret key text
 * is wiped from every buffer this file fills, and never echoed in an error.
 */
#include "proto/keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <ini.h>
#include <zmq.h>

#include "proto/fileio.h"

#define KEYFILE_MAX_SIZE 4096
#define FILE_TEXT_MAX 512 /* a generated file: two comment lines and two keys */

static const char z85_chars[] = "0123456789abcdefghijklmnopqrstuvwxyz"
                                "ABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

bool keyfile_z85_valid(const char *s, size_t len)
{
    if (s == NULL || len != KEYFILE_Z85_LEN)
        return false;
    for (size_t g = 0; g < len; g += 5) {
        uint64_t v = 0;

        for (size_t i = g; i < g + 5; i++) {
            const char *c = s[i] != '\0' ? strchr(z85_chars, s[i]) : NULL;

            if (c == NULL)
                return false;
            v = v * 85 + (uint64_t)(c - z85_chars);
        }
        if (v > UINT32_MAX)
            return false;
    }
    return true;
}

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- parsing ------------------------------------------------------------------ */

typedef struct {
    const char *path;
    const char *text; /* what the reader has not handed out yet */
    int line;         /* the line the reader handed out last */
    bool failed;
    int err_line; /* the line of the error in err, 0 = the file as a whole */
    char *err;
    size_t errlen;
    keyfile_t *k;
    int public_line, secret_line; /* where each key was given, 0 = not yet */
} parse_t;

static void perr(parse_t *p, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * Records an error at line (0: the file as a whole). The earliest line wins:
 * inih reports its syntax errors only at the end, and a later error is
 * usually a consequence of an earlier one.
 */
static void perr(parse_t *p, int line, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (p->failed && (line == 0 || (p->err_line != 0 && p->err_line <= line)))
        return;
    p->failed = true;
    p->err_line = line;
    if (line > 0)
        n = snprintf(p->err, p->errlen, "%s:%d: ", p->path, line);
    else
        n = snprintf(p->err, p->errlen, "%s: ", p->path);
    if (n < 0 || (size_t)n >= p->errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

/* inih's fgets: one line per call, so p->line is inih's line number too. */
static char *reader(char *buf, int size, void *stream)
{
    parse_t *p = stream;
    const char *s;

    if (*p->text == '\0' || size < 2)
        return NULL;
    const char *nl = strchr(p->text, '\n');
    size_t len = nl != NULL ? (size_t)(nl - p->text) + 1 : strlen(p->text);
    size_t n = len < (size_t)size - 1 ? len : (size_t)size - 1;
    memcpy(buf, p->text, n);
    buf[n] = '\0';
    p->text += len; /* the rest of an over-long line is dropped */
    p->line++;

    for (s = buf; *s == ' ' || *s == '\t' || *s == '\r'; s++)
        ;
    if (*s == '[')
        perr(p, p->line, "a key file has no [sections]");
    else if (n < len && *s != '#' && *s != ';')
        perr(p, p->line, "line too long (over %d bytes)", size - 2);
    return buf;
}

/* Checks and stores one key's value; *line is where it was first given. */
static void take_key(parse_t *p, const char *name, const char *value, char dst[KEYFILE_Z85_LEN + 1],
                     int *line)
{
    size_t len = strlen(value);

    if (*line != 0) {
        perr(p, p->line, "%s: given twice (first on line %d)", name, *line);
        return;
    }
    *line = p->line;
    if (len != KEYFILE_Z85_LEN)
        perr(p, p->line, "%s: %zu characters, a key is %d Z85 characters", name, len,
             KEYFILE_Z85_LEN);
    else if (!keyfile_z85_valid(value, len))
        perr(p, p->line,
             "%s: not a Z85 key (a character outside the Z85 alphabet, or a group over 2^32)",
             name);
    else
        memcpy(dst, value, KEYFILE_Z85_LEN + 1);
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
    parse_t *p = user;

    (void)section; /* the reader refused the [section] line itself */
    if (strcmp(name, "public") == 0)
        take_key(p, "public", value, p->k->public_z85, &p->public_line);
    else if (strcmp(name, "secret") == 0)
        take_key(p, "secret", value, p->k->secret_z85, &p->secret_line);
    else
        perr(p, p->line, "unknown key '%.64s' (a key file holds public and secret)", name);
    return 1; /* errors are ours to report, with their lines */
}

/* Checks what the parse as a whole must give. */
static void check_pair(parse_t *p, bool need_secret)
{
    char derived[KEYFILE_Z85_LEN + 1];

    if (p->failed)
        return;
    if (p->public_line == 0) {
        perr(p, 0, "no public key (a 'public = ...' line)");
        return;
    }
    if (p->secret_line == 0) {
        if (need_secret)
            perr(p, 0, "holds no secret key (a .pub file? give the .key file made with it)");
        return;
    }
    if (zmq_curve_public(derived, p->k->secret_z85) != 0) {
        perr(p, p->secret_line, "secret: cannot derive its public key: %s", zmq_strerror(errno));
        return;
    }
    if (strcmp(derived, p->k->public_z85) != 0)
        perr(p, p->secret_line, "secret: does not belong to the public key on line %d",
             p->public_line);
    else
        p->k->has_secret = true;
    explicit_bzero(derived, sizeof derived);
}

/*
 * Reads all of path into buf (NUL-terminated), checking the mode first when
 * it must hold a secret. Returns 0 or -1 with err.
 */
static int read_file(const char *path, bool need_secret, char buf[KEYFILE_MAX_SIZE + 1], char *err,
                     size_t errlen)
{
    struct stat st;
    ssize_t n = 0;
    size_t got = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

    if (fd < 0) {
        seterr(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0) {
        seterr(err, errlen, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        seterr(err, errlen, "%s: not a regular file", path);
        goto fail;
    }
    if (need_secret && (st.st_mode & (S_IRGRP | S_IWGRP | S_IROTH | S_IWOTH)) != 0) {
        seterr(err, errlen,
               "%s: mode %04o: a secret key must be readable by its owner only (chmod 600)", path,
               (unsigned)(st.st_mode & 07777));
        goto fail;
    }
    /* one byte more than a key file may hold, to see whether more follows */
    if ((n = fileio_read_full(fd, buf, KEYFILE_MAX_SIZE + 1)) < 0) {
        seterr(err, errlen, "%s: read: %s", path, strerror(errno));
        goto fail;
    }
    got = (size_t)n;
    if (got > KEYFILE_MAX_SIZE) {
        seterr(err, errlen, "%s: over %d bytes: not a key file", path, KEYFILE_MAX_SIZE);
        goto fail;
    }
    close(fd);
    buf[got] = '\0';
    if (memchr(buf, '\0', got) != NULL) {
        seterr(err, errlen, "%s: holds a NUL byte: not a key file", path);
        explicit_bzero(buf, got);
        return -1;
    }
    return 0;
fail:
    close(fd);
    explicit_bzero(buf, got);
    return -1;
}

int keyfile_load(const char *path, bool need_secret, keyfile_t *k, char *err, size_t errlen)
{
    char text[KEYFILE_MAX_SIZE + 1];
    parse_t p = {.path = path, .text = text, .err = err, .errlen = errlen, .k = k};

    memset(k, 0, sizeof *k);
    if (read_file(path, need_secret, text, err, errlen) != 0)
        return -1;
    int rc = ini_parse_stream(reader, &p, handler, &p);
    if (rc > 0)
        perr(&p, rc, "not a 'key = value' line");
    else if (rc < 0)
        perr(&p, 0, "inih could not parse it (%d)", rc);
    check_pair(&p, need_secret);
    explicit_bzero(text, sizeof text);
    if (p.failed) {
        explicit_bzero(k, sizeof *k);
        return -1;
    }
    return 0;
}

int keyfile_public_arg(const char *arg, char out[KEYFILE_Z85_LEN + 1], char *err, size_t errlen)
{
    keyfile_t k;
    struct stat st;
    size_t len = strlen(arg);

    if (keyfile_z85_valid(arg, len)) {
        memcpy(out, arg, KEYFILE_Z85_LEN + 1);
        return 0;
    }
    if (len == 0) {
        seterr(err, errlen, "empty server key");
        return -1;
    }
    if (stat(arg, &st) != 0 && errno == ENOENT) {
        seterr(err, errlen, "'%.200s' is neither a 40-character Z85 public key nor a key file",
               arg);
        return -1;
    }
    if (keyfile_load(arg, false, &k, err, errlen) != 0)
        return -1;
    memcpy(out, k.public_z85, KEYFILE_Z85_LEN + 1);
    explicit_bzero(&k, sizeof k);
    return 0;
}

/* ---- generating ------------------------------------------------------------------ */

static bool name_ok(const char *name)
{
    size_t len = strlen(name);

    if (len == 0 || len > KEYFILE_NAME_MAX || name[0] == '.')
        return false;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '.' || *c == '_' || *c == '-'))
            return false;
    return true;
}

/* The text of NAME.key (with_secret) or NAME.pub. Returns its length, or -1. */
static int format_file(char buf[FILE_TEXT_MAX], const char *name, const keyfile_t *k,
                       bool with_secret)
{
    char date[32] = "an unknown day";
    time_t now = time(NULL);
    struct tm tm;
    int n;

    if (localtime_r(&now, &tm) != NULL)
        strftime(date, sizeof date, "%Y-%m-%d", &tm);
    if (with_secret)
        n = snprintf(
            buf, FILE_TEXT_MAX,
            "# clustermon CURVE key pair \"%s\", made by clustermonctl keygen on %s\n"
            "# The secret key below must stay on this machine, readable only by its owner.\n"
            "public = %s\n"
            "secret = %s\n",
            name, date, k->public_z85, k->secret_z85);
    else
        n = snprintf(buf, FILE_TEXT_MAX,
                     "# clustermon CURVE key pair \"%s\", made by clustermonctl keygen on %s\n"
                     "public = %s\n",
                     name, date, k->public_z85);
    return n < 0 || n >= FILE_TEXT_MAX ? -1 : n;
}

/* Writes all of buf to fd, sets mode 0600 whatever the umask, and syncs it. */
static int write_fd(int fd, const char *buf, size_t len)
{
    return fileio_write_all(fd, buf, len) == 0 && fchmod(fd, 0600) == 0 && fsync(fd) == 0 ? 0 : -1;
}

/*
 * Writes text to path: created with O_EXCL, or (force) through a temp file
 * beside it that is renamed over path only by commit_file(). tmp receives
 * the temp file's name ("" without force). Returns 0 or -1 with err.
 */
static int write_file(const char *dir, const char *path, const char *base, const char *text,
                      bool force, char tmp[PATH_MAX], char *err, size_t errlen)
{
    int fd, saved;

    tmp[0] = '\0';
    if (force) {
        if (snprintf(tmp, PATH_MAX, "%s/.%s.XXXXXX", dir, base) >= PATH_MAX) {
            seterr(err, errlen, "%s: path too long", dir);
            tmp[0] = '\0';
            return -1;
        }
        fd = mkostemp(tmp, O_CLOEXEC);
    } else {
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    }
    if (fd < 0) {
        saved = errno;
        if (saved == EEXIST)
            seterr(err, errlen, "%s: already exists", path);
        else
            seterr(err, errlen, "%s: cannot create: %s", force ? tmp : path, strerror(saved));
        tmp[0] = '\0';
        errno = saved;
        return -1;
    }
    if (write_fd(fd, text, strlen(text)) != 0) {
        saved = errno;
        seterr(err, errlen, "%s: write: %s", force ? tmp : path, strerror(saved));
        close(fd);
        unlink(force ? tmp : path);
        tmp[0] = '\0';
        errno = saved;
        return -1;
    }
    if (close(fd) != 0) {
        saved = errno;
        seterr(err, errlen, "%s: close: %s", force ? tmp : path, strerror(saved));
        unlink(force ? tmp : path);
        tmp[0] = '\0';
        errno = saved;
        return -1;
    }
    return 0;
}

int keyfile_generate(const char *dir, const char *name, bool force, keyfile_t *k, char *err,
                     size_t errlen)
{
    char key_path[PATH_MAX], pub_path[PATH_MAX], key_tmp[PATH_MAX], pub_tmp[PATH_MAX];
    char key_text[FILE_TEXT_MAX], pub_text[FILE_TEXT_MAX], base[KEYFILE_NAME_MAX + 8];
    int rc = -1, saved = 0;

    memset(k, 0, sizeof *k);
    key_tmp[0] = pub_tmp[0] = '\0';
    if (!name_ok(name)) {
        seterr(err, errlen,
               "'%.80s' is not a key name: 1..%d letters, digits, '.', '_' and '-', not starting "
               "with '.'",
               name, KEYFILE_NAME_MAX);
        return -1;
    }
    if (snprintf(key_path, sizeof key_path, "%s/%s.key", dir, name) >= (int)sizeof key_path ||
        snprintf(pub_path, sizeof pub_path, "%s/%s.pub", dir, name) >= (int)sizeof pub_path) {
        seterr(err, errlen, "%s: path too long", dir);
        return -1;
    }
    if (!zmq_has("curve")) {
        seterr(err, errlen, "this libzmq was built without CURVE support");
        return -1;
    }
    if (zmq_curve_keypair(k->public_z85, k->secret_z85) != 0) {
        seterr(err, errlen, "zmq_curve_keypair: %s", zmq_strerror(errno));
        goto out;
    }
    k->has_secret = true;
    if (format_file(key_text, name, k, true) < 0 || format_file(pub_text, name, k, false) < 0) {
        seterr(err, errlen, "cannot format the key files");
        goto out;
    }

    snprintf(base, sizeof base, "%s.key", name);
    if (write_file(dir, key_path, base, key_text, force, key_tmp, err, errlen) != 0) {
        saved = errno;
        goto out;
    }
    snprintf(base, sizeof base, "%s.pub", name);
    if (write_file(dir, pub_path, base, pub_text, force, pub_tmp, err, errlen) != 0) {
        saved = errno;
        if (!force)
            unlink(key_path); /* ours: created a moment ago with O_EXCL */
        goto out;
    }
    if (force) {
        if (rename(key_tmp, key_path) != 0) {
            saved = errno;
            seterr(err, errlen, "%s: cannot replace it: %s", key_path, strerror(saved));
            goto out;
        }
        key_tmp[0] = '\0';
        if (rename(pub_tmp, pub_path) != 0) {
            saved = errno;
            seterr(err, errlen, "%s: cannot replace it: %s (%s holds the new pair)", pub_path,
                   strerror(saved), key_path);
            goto out;
        }
        pub_tmp[0] = '\0';
    }
    /* the renames and new files durable; best effort (the keys are already written) */
    (void)fileio_sync_dir(dir);
    rc = 0;
out:
    if (key_tmp[0] != '\0')
        unlink(key_tmp);
    if (pub_tmp[0] != '\0')
        unlink(pub_tmp);
    explicit_bzero(key_text, sizeof key_text);
    if (rc != 0) {
        explicit_bzero(k, sizeof *k);
        errno = saved;
    }
    return rc;
}

/* ---- sockets ---------------------------------------------------------------------- */

int keyfile_client_setup(void *sock, const char *server_public_z85, const keyfile_t *client,
                         char *err, size_t errlen)
{
    static const struct {
        int opt;
        const char *name;
    } opts[] = {
        {ZMQ_CURVE_SERVERKEY, "ZMQ_CURVE_SERVERKEY"},
        {ZMQ_CURVE_PUBLICKEY, "ZMQ_CURVE_PUBLICKEY"},
        {ZMQ_CURVE_SECRETKEY, "ZMQ_CURVE_SECRETKEY"},
    };
    const char *values[3] = {server_public_z85, client->public_z85, client->secret_z85};

    if (server_public_z85 == NULL ||
        !keyfile_z85_valid(server_public_z85, strlen(server_public_z85))) {
        seterr(err, errlen, "the server key is not a 40-character Z85 public key");
        return -1;
    }
    if (!client->has_secret || !keyfile_z85_valid(client->public_z85, strlen(client->public_z85))) {
        seterr(err, errlen, "the client's key pair has no secret key");
        return -1;
    }
    if (!zmq_has("curve")) {
        seterr(err, errlen, "this libzmq was built without CURVE support");
        return -1;
    }
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
        /* Z85 text with its NUL: 41 bytes, which libzmq decodes itself. */
        if (zmq_setsockopt(sock, opts[i].opt, values[i], KEYFILE_Z85_LEN + 1) != 0) {
            seterr(err, errlen, "zmq_setsockopt(%s): %s", opts[i].name, zmq_strerror(errno));
            return -1;
        }
    }
    return 0;
}
