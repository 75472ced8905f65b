/* history.c -- see history.h. */
#include "daemon/history.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "daemon/log.h"
#include "daemon/wal.h"
#include "daemon/xalloc.h"
#include "proto/bytes.h"
#include "proto/fileio.h"

#define REC_HEADER 8
#define REC_MAX (1u << 20)     /* no entry comes near this: a larger length is damage */
#define PRUNE_EVERY_MS 3600000 /* hourly */
#define ENTRY_FIELDS 17        /* read: entries written before n have these */
#define ENTRY_FIELDS_N 18      /* written: ... n */

static const char *const kind_names[HISTORY_KIND_COUNT] = {"alert", "ack", "silence_add",
                                                           "silence_rm"};

const char *history_kind_name(history_kind_t k)
{
    return (unsigned)k < HISTORY_KIND_COUNT ? kind_names[k] : "?";
}

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

static void entry_free(history_entry_t *e)
{
    free(e->alert_id);
    free(e->rule);
    free(e->cluster);
    free(e->firm);
    free(e->summary);
    free(e->who);
    free(e->note);
    memset(e, 0, sizeof *e);
}

static void ack_free(history_ack_t *a)
{
    free(a->alert_id);
    free(a->who);
    free(a->note);
}

/* ---- record encoding ----------------------------------------------------------- */

static void pack_str_or_nil(msgpack_packer *pk, const char *s)
{
    if (!s) {
        msgpack_pack_nil(pk);
        return;
    }
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

/* [kind, id, ts_ms, alert_id, rule, cluster, firm, state, severity, seq,
 *  since_ms, summary, who, note, ref, until_ms, version 1, n] */
static void entry_pack(msgpack_packer *pk, const history_entry_t *e)
{
    msgpack_pack_array(pk, ENTRY_FIELDS_N);
    msgpack_pack_uint8(pk, (uint8_t)e->kind);
    msgpack_pack_uint64(pk, e->id);
    msgpack_pack_int64(pk, e->ts_ms);
    pack_str_or_nil(pk, e->alert_id);
    pack_str_or_nil(pk, e->rule);
    pack_str_or_nil(pk, e->cluster);
    pack_str_or_nil(pk, e->firm);
    msgpack_pack_int(pk, e->state);
    msgpack_pack_int(pk, e->severity);
    msgpack_pack_uint64(pk, e->seq);
    msgpack_pack_int64(pk, e->since_ms);
    pack_str_or_nil(pk, e->summary);
    pack_str_or_nil(pk, e->who);
    pack_str_or_nil(pk, e->note);
    msgpack_pack_uint64(pk, e->ref);
    msgpack_pack_int64(pk, e->until_ms);
    msgpack_pack_uint8(pk, 1);
    msgpack_pack_uint64(pk, e->n);
}

static bool obj_str(const msgpack_object *o, char **ret)
{
    if (o->type == MSGPACK_OBJECT_NIL) {
        *ret = NULL;
        return true;
    }
    if (o->type != MSGPACK_OBJECT_STR)
        return false;
    *ret = xstrndup(o->via.str.ptr, o->via.str.size);
    return true;
}

/* Decodes one payload into e (zeroed first). Returns 0, or -1 with the reason. */
static int entry_unpack(const void *data, size_t len, history_entry_t *e, char *err, size_t errlen)
{
    memset(e, 0, sizeof *e);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    int rc = -1;
    if (msgpack_unpack_next(&u, data, len, &off) != MSGPACK_UNPACK_SUCCESS || off != len) {
        snprintf(err, errlen, "not one MessagePack object");
        goto out;
    }
    const msgpack_object *o = &u.data;
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < ENTRY_FIELDS) {
        snprintf(err, errlen, "expected an array of %d fields", ENTRY_FIELDS);
        goto out;
    }
    const msgpack_object *f = o->via.array.ptr;
    int64_t kind, state, sev;
    if (!proto_obj_i64(&f[0], &kind) || kind < 0 || kind >= HISTORY_KIND_COUNT ||
        !proto_obj_u64(&f[1], &e->id) || !proto_obj_i64(&f[2], &e->ts_ms) ||
        !proto_obj_i64(&f[7], &state) || !proto_obj_i64(&f[8], &sev) ||
        !proto_obj_u64(&f[9], &e->seq) || !proto_obj_i64(&f[10], &e->since_ms) ||
        !proto_obj_u64(&f[14], &e->ref) || !proto_obj_i64(&f[15], &e->until_ms)) {
        snprintf(err, errlen, "a number field is missing or of the wrong type");
        goto out;
    }
    if (o->via.array.size >= ENTRY_FIELDS_N && !proto_obj_u64(&f[17], &e->n)) {
        snprintf(err, errlen, "field n is not a number");
        goto out;
    }
    e->kind = (history_kind_t)kind;
    e->state = (int)state;
    e->severity = (int)sev;
    if (!obj_str(&f[3], &e->alert_id) || !obj_str(&f[4], &e->rule) ||
        !obj_str(&f[5], &e->cluster) || !obj_str(&f[6], &e->firm) ||
        !obj_str(&f[11], &e->summary) || !obj_str(&f[12], &e->who) || !obj_str(&f[13], &e->note)) {
        snprintf(err, errlen, "a text field is not a string");
        entry_free(e);
        goto out;
    }
    rc = 0;
out:
    msgpack_unpacked_destroy(&u);
    return rc;
}

/* ---- acknowledgements ----------------------------------------------------------- */

static size_t ack_index(const history_t *h, const char *id, size_t len)
{
    for (size_t i = 0; i < h->nacks; i++)
        if (strlen(h->acks[i].alert_id) == len && memcmp(h->acks[i].alert_id, id, len) == 0)
            return i;
    return (size_t)-1;
}

static void ack_drop(history_t *h, size_t i)
{
    ack_free(&h->acks[i]);
    h->acks[i] = h->acks[--h->nacks];
}

const history_ack_t *history_ack_find(const history_t *h, const char *alert_id, size_t len)
{
    size_t i = ack_index(h, alert_id, len);
    return i == (size_t)-1 ? NULL : &h->acks[i];
}

/* What an entry does to the acknowledgements: an ack sets one, a published
 * transition of the same alert ends it. Replay at load runs the same. */
static void acks_apply(history_t *h, const history_entry_t *e)
{
    if (!e->alert_id)
        return;
    size_t i = ack_index(h, e->alert_id, strlen(e->alert_id));
    if (e->kind == HISTORY_ALERT) {
        if (i != (size_t)-1)
            ack_drop(h, i);
        return;
    }
    if (e->kind != HISTORY_ACK)
        return;
    if (i == (size_t)-1) {
        xgrow(&h->acks, &h->acks_cap, h->nacks + 1, sizeof *h->acks);
        i = h->nacks++;
    } else {
        ack_free(&h->acks[i]);
    }
    h->acks[i] = (history_ack_t){.alert_id = xstrdup(e->alert_id),
                                 .since_ms = e->since_ms,
                                 .at_ms = e->ts_ms,
                                 .who = xstrdup(e->who ? e->who : "-"),
                                 .note = xstrdup(e->note ? e->note : ""),
                                 .entry = e->id};
}

/* ---- the file ------------------------------------------------------------------- */

static int append(history_t *h, const history_entry_t *e)
{
    if (h->fd < 0)
        return -1;
    msgpack_sbuffer_clear(&h->buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &h->buf, msgpack_sbuffer_write);
    entry_pack(&pk, e);
    unsigned char hdr[REC_HEADER];
    bytes_put_le32(hdr, (uint32_t)h->buf.size);
    bytes_put_le32(hdr + 4, (uint32_t)crc32(0L, (const Bytef *)h->buf.data, (uInt)h->buf.size));
    struct iovec iov[2] = {{hdr, sizeof hdr}, {h->buf.data, h->buf.size}};
    off_t at = lseek(h->fd, 0, SEEK_END);
    if (fileio_writev_all(h->fd, iov, 2) != 0) {
        log_warn("history: %s: entry %llu not written", h->path, (unsigned long long)e->id);
        if (at >= 0 && ftruncate(h->fd, at) != 0) /* no half record left behind */
            log_warn("history: %s: cannot cut off a partial record", h->path);
        h->failed++;
        return -1;
    }
    h->written++;
    if (h->fsync_policy == WAL_FSYNC_ALWAYS) {
        if (fdatasync(h->fd) != 0)
            log_warn("history: %s: fdatasync", h->path);
    } else {
        h->unsynced = true;
    }
    return 0;
}

/* Takes ownership of e's strings: appended to the file, then kept. Returns
 * the entry's id, or 0 if the file did not take it (e is freed then). */
static uint64_t record(history_t *h, history_entry_t *e)
{
    e->id = h->next_id;
    if (append(h, e) != 0) {
        entry_free(e);
        return 0;
    }
    h->next_id++;
    acks_apply(h, e);
    xgrow(&h->entries, &h->cap, h->n + 1, sizeof *h->entries);
    h->entries[h->n++] = *e;
    return e->id;
}

/* Rewrites the file with the entries kept, atomically. */
static int rewrite(history_t *h)
{
    msgpack_sbuffer all;
    msgpack_sbuffer_init(&all);
    for (size_t i = 0; i < h->n; i++) {
        msgpack_sbuffer_clear(&h->buf);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &h->buf, msgpack_sbuffer_write);
        entry_pack(&pk, &h->entries[i]);
        unsigned char hdr[REC_HEADER];
        bytes_put_le32(hdr, (uint32_t)h->buf.size);
        bytes_put_le32(hdr + 4, (uint32_t)crc32(0L, (const Bytef *)h->buf.data, (uInt)h->buf.size));
        msgpack_sbuffer_write(&all, (const char *)hdr, sizeof hdr);
        msgpack_sbuffer_write(&all, h->buf.data, h->buf.size);
    }
    char err[512];
    int rc =
        fileio_write_atomic(h->path, all.data ? all.data : "", all.size, 0600, err, sizeof err);
    msgpack_sbuffer_destroy(&all);
    if (rc != 0) {
        log_warnx("history: retention: %s", err);
        return -1;
    }
    int fd = open(h->path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0) {
        log_warn("history: reopen %s", h->path);
        return -1;
    }
    if (h->fd >= 0)
        close(h->fd);
    h->fd = fd;
    return 0;
}

/* Drops entries older than the retention, but never an ack in force. */
static size_t prune(history_t *h, int64_t now_ms)
{
    if (h->retention_ms <= 0)
        return 0;
    int64_t cut = now_ms - h->retention_ms;
    size_t k = 0, dropped = 0;
    for (size_t i = 0; i < h->n; i++) {
        history_entry_t *e = &h->entries[i];
        bool keep = e->ts_ms >= cut;
        for (size_t a = 0; a < h->nacks && !keep; a++)
            keep = h->acks[a].entry == e->id;
        if (keep) {
            h->entries[k++] = *e;
        } else {
            entry_free(e);
            dropped++;
        }
    }
    h->n = k;
    h->pruned += dropped;
    if (dropped && rewrite(h) == 0)
        log_info("history: %zu entries older than the retention dropped", dropped);
    return dropped;
}

static int load(history_t *h, char *err, size_t errlen)
{
    int fd = open(h->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "%s: %s", h->path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "%s: %s", h->path, strerror(errno));
        close(fd);
        return -1;
    }
    size_t size = (size_t)st.st_size;
    unsigned char *buf = xmalloc(size ? size : 1);
    ssize_t got = fileio_read_full(fd, buf, size);
    close(fd);
    if (got < 0 || (size_t)got != size) {
        snprintf(err, errlen, "%s: read: %s", h->path, strerror(errno));
        free(buf);
        return -1;
    }
    size_t off = 0;
    char why[256] = "";
    while (off < size) {
        if (size - off < REC_HEADER) {
            snprintf(why, sizeof why, "a partial record header");
            break;
        }
        uint32_t len = bytes_get_le32(buf + off), crc = bytes_get_le32(buf + off + 4);
        if (len == 0 || len > REC_MAX || len > size - off - REC_HEADER) {
            snprintf(why, sizeof why, "a record of %u bytes runs past the end", len);
            break;
        }
        if ((uint32_t)crc32(0L, buf + off + REC_HEADER, len) != crc) {
            snprintf(why, sizeof why, "a record's checksum does not match");
            break;
        }
        history_entry_t e;
        char eerr[128];
        if (entry_unpack(buf + off + REC_HEADER, len, &e, eerr, sizeof eerr) != 0) {
            snprintf(why, sizeof why, "%s", eerr);
            break;
        }
        if (e.id >= h->next_id)
            h->next_id = e.id + 1;
        acks_apply(h, &e);
        xgrow(&h->entries, &h->cap, h->n + 1, sizeof *h->entries);
        h->entries[h->n++] = e;
        off += REC_HEADER + len;
    }
    free(buf);
    if (off < size) {
        /* A torn tail is what a crash mid-append leaves; anything after it
         * was never acknowledged to anyone. Cut it off so appends go on
         * from a whole record. */
        log_warnx("history: %s: offset %zu: %s; the %zu bytes from there are cut off", h->path, off,
                  why, size - off);
        if (truncate(h->path, (off_t)off) != 0) {
            snprintf(err, errlen, "%s: cannot cut off a damaged tail: %s", h->path,
                     strerror(errno));
            return -1;
        }
    }
    return 0;
}

int history_open(history_t *h, const char *dir, int fsync_policy, int64_t retention_ms,
                 int64_t now_ms, char *err, size_t errlen)
{
    memset(h, 0, sizeof *h);
    h->fd = -1;
    h->next_id = 1;
    h->fsync_policy = fsync_policy;
    h->retention_ms = retention_ms;
    msgpack_sbuffer_init(&h->buf);
    snprintf(h->dir, sizeof h->dir, "%s", dir);
    snprintf(h->path, sizeof h->path, "%s/history", dir);
    if (load(h, err, errlen) != 0)
        return -1;
    h->fd = open(h->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (h->fd < 0) {
        snprintf(err, errlen, "%s: %s", h->path, strerror(errno));
        return -1;
    }
    prune(h, now_ms);
    return 0;
}

void history_close(history_t *h)
{
    if (h->fd >= 0) {
        if (h->unsynced && h->fsync_policy != WAL_FSYNC_NEVER)
            fdatasync(h->fd);
        close(h->fd);
    }
    h->fd = -1;
    for (size_t i = 0; i < h->n; i++)
        entry_free(&h->entries[i]);
    free(h->entries);
    for (size_t i = 0; i < h->nacks; i++)
        ack_free(&h->acks[i]);
    free(h->acks);
    h->entries = NULL;
    h->acks = NULL;
    h->n = h->nacks = h->cap = h->acks_cap = 0;
    msgpack_sbuffer_destroy(&h->buf);
    memset(&h->buf, 0, sizeof h->buf); /* a second close frees nothing twice */
}

void history_configure(history_t *h, int fsync_policy, int64_t retention_ms)
{
    h->fsync_policy = fsync_policy;
    h->retention_ms = retention_ms;
}

void history_tick(history_t *h, int64_t loop_ms, int64_t wall_ms)
{
    if (h->unsynced && h->fd >= 0 && h->fsync_policy == WAL_FSYNC_INTERVAL) {
        h->unsynced = false;
        if (fdatasync(h->fd) != 0)
            log_warn("history: %s: fdatasync", h->path);
    }
    if (loop_ms - h->last_prune_ms >= PRUNE_EVERY_MS) {
        h->last_prune_ms = loop_ms;
        prune(h, wall_ms);
    }
}

/* ---- what gets recorded ----------------------------------------------------------- */

static char *str_dup(proto_str_t s)
{
    return s.ptr && s.len ? xstrndup(s.ptr, s.len) : NULL; /* "" is none, as on the wire */
}

void history_alert_cb(void *data, const proto_alert_t *a)
{
    history_t *h = data;
    if (a->reminder)
        return; /* not a transition */
    history_entry_t e = {.ts_ms = a->ts_ms,
                         .kind = HISTORY_ALERT,
                         .alert_id = str_dup(a->id),
                         .rule = str_dup(a->rule),
                         .cluster = str_dup(a->cluster),
                         .firm = str_dup(a->firm),
                         .state = a->state,
                         .severity = a->severity,
                         .seq = a->seq,
                         .n = a->n,
                         .since_ms = a->since_ms,
                         .summary = str_dup(a->summary)};
    if (record(h, &e) == 0) {
        /* not journaled, but an acknowledgement still ends */
        history_entry_t gone = {.kind = HISTORY_ALERT, .alert_id = str_dup(a->id)};
        acks_apply(h, &gone);
        entry_free(&gone);
    }
}

bool history_hold_cb(void *data, const proto_alert_t *a)
{
    history_t *h = data;
    if (!a->reminder || !a->id.ptr)
        return false;
    size_t i = ack_index(h, a->id.ptr, a->id.len);
    if (i == (size_t)-1)
        return false;
    if (h->acks[i].since_ms != a->since_ms) {
        ack_drop(h, i); /* a new firing episode that was never published */
        return false;
    }
    h->held++;
    return true;
}

uint64_t history_ack(history_t *h, const proto_alert_t *a, const char *who, const char *note,
                     int64_t now_ms)
{
    history_entry_t e = {.ts_ms = now_ms,
                         .kind = HISTORY_ACK,
                         .alert_id = str_dup(a->id),
                         .rule = str_dup(a->rule),
                         .cluster = str_dup(a->cluster),
                         .firm = str_dup(a->firm),
                         .state = a->state,
                         .severity = a->severity,
                         .seq = a->seq,
                         .n = a->n,
                         .since_ms = a->since_ms,
                         .summary = str_dup(a->summary),
                         .who = xstrdup(who),
                         .note = xstrdup(note)};
    return record(h, &e);
}

uint64_t history_silence(history_t *h, bool add, uint64_t silence_id, const char *rule,
                         const char *cluster, const char *firm, int64_t until_ms,
                         const char *reason, const char *who, int64_t now_ms)
{
    history_entry_t e = {.ts_ms = now_ms,
                         .kind = add ? HISTORY_SILENCE_ADD : HISTORY_SILENCE_RM,
                         .rule = dup_or_null(rule),
                         .cluster = dup_or_null(cluster),
                         .firm = dup_or_null(firm),
                         .who = xstrdup(who),
                         .note = dup_or_null(reason),
                         .ref = silence_id,
                         .until_ms = until_ms};
    return record(h, &e);
}

/* ---- queries ------------------------------------------------------------------------ */

static bool eq_or_any(const char *want, const char *have)
{
    return !want || (have && strcmp(want, have) == 0);
}

static bool matches(const history_entry_t *e, const history_filter_t *f)
{
    return (!f->since_ms || e->ts_ms >= f->since_ms) && (!f->until_ms || e->ts_ms < f->until_ms) &&
           eq_or_any(f->cluster, e->cluster) && eq_or_any(f->rule, e->rule) &&
           eq_or_any(f->firm, e->firm) && eq_or_any(f->alert_id, e->alert_id);
}

size_t history_query(const history_t *h, const history_filter_t *f, const history_entry_t ***ret,
                     size_t *ret_total)
{
    size_t limit = f->limit ? f->limit : HISTORY_DEFAULT_LIMIT, total = 0;
    for (size_t i = 0; i < h->n; i++)
        total += matches(&h->entries[i], f);
    size_t skip = total > limit ? total - limit : 0, n = 0;
    const history_entry_t **out = xmalloc((total - skip + 1) * sizeof *out);
    for (size_t i = 0; i < h->n; i++) {
        if (!matches(&h->entries[i], f))
            continue;
        if (skip) {
            skip--;
            continue;
        }
        out[n++] = &h->entries[i];
    }
    *ret = out;
    if (ret_total)
        *ret_total = total;
    return n;
}

static void kv_str(msgpack_packer *pk, const char *key, const char *v)
{
    pack_str_or_nil(pk, key);
    pack_str_or_nil(pk, v);
}

static void kv_i64(msgpack_packer *pk, const char *key, int64_t v)
{
    pack_str_or_nil(pk, key);
    msgpack_pack_int64(pk, v);
}

void history_entry_pack(msgpack_packer *pk, const history_entry_t *e)
{
    /* one shape for every kind (nil where a field does not apply): a table
     * or a CSV has the same columns throughout */
    bool alertish = e->kind == HISTORY_ALERT || e->kind == HISTORY_ACK;
    bool silence = e->kind == HISTORY_SILENCE_ADD || e->kind == HISTORY_SILENCE_RM;
    msgpack_pack_map(pk, 17);
    kv_i64(pk, "id", (int64_t)e->id);
    kv_i64(pk, "ts_ms", e->ts_ms);
    kv_str(pk, "kind", history_kind_name(e->kind));
    kv_str(pk, "alert_id", e->alert_id);
    kv_str(pk, "rule", e->rule);
    kv_str(pk, "cluster", e->cluster);
    kv_str(pk, "firm", e->firm);
    kv_str(pk, "state", alertish ? proto_alert_state_name((proto_alert_state_t)e->state) : NULL);
    kv_str(pk, "severity", alertish ? proto_severity_name((proto_severity_t)e->severity) : NULL);
    pack_str_or_nil(pk, "seq");
    if (e->kind == HISTORY_ALERT)
        msgpack_pack_uint64(pk, e->seq);
    else
        msgpack_pack_nil(pk);
    pack_str_or_nil(pk, "n");
    if (e->kind == HISTORY_ALERT && e->n > 0)
        msgpack_pack_uint64(pk, e->n);
    else
        msgpack_pack_nil(pk);
    pack_str_or_nil(pk, "since_ms");
    if (alertish && e->since_ms > 0)
        msgpack_pack_int64(pk, e->since_ms);
    else
        msgpack_pack_nil(pk);
    kv_str(pk, "summary", e->summary);
    kv_str(pk, "who", e->who);
    kv_str(pk, "note", e->note);
    pack_str_or_nil(pk, "silence_id");
    if (silence)
        msgpack_pack_uint64(pk, e->ref);
    else
        msgpack_pack_nil(pk);
    pack_str_or_nil(pk, "until_ms");
    if (e->kind == HISTORY_SILENCE_ADD)
        msgpack_pack_int64(pk, e->until_ms);
    else
        msgpack_pack_nil(pk);
}
