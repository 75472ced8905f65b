/*
 * snapshot.c -- see snapshot.h. This file owns the file format only: the
 * header, the checksum, the atomic write, the rotation and the fallback. The
 * payload is one MessagePack map of sections, each written and read by the
 * module that owns that state (the table `sections` below):
 *
 *   created_ms  int      when it was taken (for people; not read back)
 *   segment     uint     WAL segments <= this are in it
 *   alert_seqs  map      cluster -> last alert seq published there
 *                        (alerts_seqs_pack; older snapshots: alert_seq, one global uint)
 *   stats       map      the lifetime counters (ingest_stats_pack)
 *   streams     array    agent streams (streams_pack; optional: older snapshots lack it)
 *   firms       array    every firm, members and former members (members_pack; optional)
 *   series      array    the aggregate's figures (agg_pack)
 *   alerts      array    every alert the book knows (alertbook_pack)
 *   silences    map      the silences and the next id (silences_pack; older
 *                        snapshots: the bare array of silences)
 *   firms_seen  array    when each firm was first seen (members_seen_pack; optional)
 *
 * Loading reads it with msgpack_unpack: the file is ours and its CRC has been
 * checked first, and every value's type is checked before use anyway.
 */
#include "daemon/snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "daemon/log.h"
#include "daemon/members.h"
#include "daemon/server.h"
#include "daemon/wal.h"
#include "daemon/xalloc.h"
#include "proto/bytes.h"
#include "proto/fileio.h"

#define SNAP_MAGIC "CMSNAP\0\0"
#define SNAP_HEADER 24

static void snap_path(const char *dir, uint64_t n, char *buf, size_t size)
{
    snprintf(buf, size, "%s/snap-%016" PRIu64 ".snap", dir, n);
}

static void pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

/* ---- the sections ------------------------------------------------------------ */

/* What a section's functions get: the server, and for writing the segment,
 * for loading the pass and what was dropped. */
typedef struct {
    server_t *srv;
    uint64_t segment; /* writing: WAL segments <= this are in it */
    bool apply;       /* loading: false checks only, true applies */
    bool older;       /* loading: the section was found under its older key */
    uint64_t unknown_firms, unknown_metrics, unknown_rules; /* loading: dropped */
    char *err;
    size_t errlen;
} section_ctx_t;

/* One key of the top-level map. pack writes exactly one value; load checks
 * or applies it (o is never NULL) and returns 0 or -1 with c->err. */
typedef struct {
    const char *key;
    const char *older_key; /* what older snapshots called it, or NULL */
    bool optional;         /* older snapshots may lack it: then not loaded */
    void (*pack)(const section_ctx_t *c, msgpack_packer *pk);
    int (*load)(section_ctx_t *c, const msgpack_object *o); /* NULL: not read back */
} section_t;

static void pack_created(const section_ctx_t *c, msgpack_packer *pk)
{
    (void)c;
    msgpack_pack_int64(pk, calendar_now_ms());
}

static void pack_segment(const section_ctx_t *c, msgpack_packer *pk)
{
    msgpack_pack_uint64(pk, c->segment);
}

static int load_segment(section_ctx_t *c, const msgpack_object *o)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        snprintf(c->err, c->errlen, "segment: not an unsigned integer");
        return -1;
    }
    return 0;
}

static void pack_alert_seqs(const section_ctx_t *c, msgpack_packer *pk)
{
    alerts_seqs_pack(&c->srv->alerts, pk);
}

/* The seq file is written after every publication, so it is ahead of any
 * snapshot; the snapshot's seqs only raise it (a lost file). */
static int load_alert_seqs(section_ctx_t *c, const msgpack_object *o)
{
    if (!c->older)
        return alerts_seqs_load(&c->srv->alerts, o, c->apply, c->err, c->errlen);
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        snprintf(c->err, c->errlen, "alert_seqs: missing or not a map");
        return -1;
    }
    if (c->apply) /* an older daemon's one global seq */
        alerts_seqs_raise_floor(&c->srv->alerts, o->via.u64);
    return 0;
}

static void pack_stats(const section_ctx_t *c, msgpack_packer *pk)
{
    ingest_stats_pack(c->srv, pk);
}

static int load_stats(section_ctx_t *c, const msgpack_object *o)
{
    return ingest_stats_unpack(c->srv, o, c->apply, c->err, c->errlen);
}

static void pack_streams(const section_ctx_t *c, msgpack_packer *pk)
{
    streams_pack(&c->srv->ingest.streams, pk);
}

static int load_streams(section_ctx_t *c, const msgpack_object *o)
{
    return streams_unpack(&c->srv->ingest.streams, o, c->apply, (int64_t)uv_now(&c->srv->loop),
                          c->err, c->errlen);
}

static void pack_firms(const section_ctx_t *c, msgpack_packer *pk)
{
    members_pack(c->srv, pk);
}

static int load_firms(section_ctx_t *c, const msgpack_object *o)
{
    return members_unpack(c->srv, o, c->apply, c->err, c->errlen);
}

static void pack_series(const section_ctx_t *c, msgpack_packer *pk)
{
    agg_pack(c->srv->agg, c->srv->reg, c->srv->cfg, pk);
}

static int load_series(section_ctx_t *c, const msgpack_object *o)
{
    agg_dropped_t dropped = {0};
    if (agg_unpack(c->srv->agg, c->srv->reg, c->srv->cfg, o, c->apply, &dropped, c->err,
                   c->errlen) != 0)
        return -1;
    c->unknown_firms += dropped.unknown_firms;
    c->unknown_metrics += dropped.unknown_metrics;
    return 0;
}

static void pack_alerts(const section_ctx_t *c, msgpack_packer *pk)
{
    alertbook_pack(&c->srv->book, pk);
}

static int load_alerts(section_ctx_t *c, const msgpack_object *o)
{
    return alertbook_unpack(&c->srv->book, o, c->apply, &c->unknown_rules, c->err, c->errlen);
}

static void pack_silences(const section_ctx_t *c, msgpack_packer *pk)
{
    silences_pack(&c->srv->silences, pk);
}

static int load_silences(section_ctx_t *c, const msgpack_object *o)
{
    return silences_unpack(&c->srv->silences, o, c->apply, c->err, c->errlen);
}

static void pack_firms_seen(const section_ctx_t *c, msgpack_packer *pk)
{
    members_seen_pack(c->srv->reg, pk);
}

static int load_firms_seen(section_ctx_t *c, const msgpack_object *o)
{
    return members_seen_unpack(c->srv->reg, o, c->apply, c->err, c->errlen);
}

/*
 * The payload, in the order written and loaded. A new piece of durable state
 * is one more line here: the map's size is this table's length, so a
 * section cannot be written without being counted. Order matters for
 * loading: the firms before the series (a former member's series resolve by
 * its id). "agents" (a snapshot of protocol 1) held no stream an agent of
 * protocol 2 can continue: it is not a section, and is left behind.
 */
static const section_t sections[] = {
    {"created_ms", NULL, true, pack_created, NULL},
    {"segment", NULL, false, pack_segment, load_segment},
    {"alert_seqs", "alert_seq", false, pack_alert_seqs, load_alert_seqs},
    {"stats", NULL, false, pack_stats, load_stats},
    {"streams", NULL, true, pack_streams, load_streams},
    {"firms", NULL, true, pack_firms, load_firms},
    {"series", NULL, false, pack_series, load_series},
    {"alerts", NULL, false, pack_alerts, load_alerts},
    {"silences", NULL, false, pack_silences, load_silences},
    {"firms_seen", NULL, true, pack_firms_seen, load_firms_seen},
};
#define NSECTIONS (sizeof sections / sizeof sections[0])

/* ---- serialising ----------------------------------------------------------- */

static void serialise(server_t *srv, uint64_t segment, msgpack_sbuffer *buf)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    section_ctx_t c = {.srv = srv, .segment = segment};
    msgpack_pack_map(&pk, NSECTIONS);
    for (size_t i = 0; i < NSECTIONS; i++) {
        pack_str(&pk, sections[i].key);
        sections[i].pack(&c, &pk);
    }
}

/* On the thread pool: touches only s->buf, s->path, s->err and the file
 * system. The steps (temp file, fsync, rename, directory fsync) are
 * proto/fileio.h's; the temp file it leaves after a crash is swept by
 * remove_temp_files. */
static void write_work(uv_work_t *req)
{
    snapshot_t *s = req->data;
    unsigned char hdr[SNAP_HEADER] = {0};
    memcpy(hdr, SNAP_MAGIC, 8);
    bytes_put_le32(hdr + 8, SNAPSHOT_FORMAT_VERSION);
    bytes_put_le32(hdr + 12, (uint32_t)crc32(0L, (const Bytef *)s->buf.data, (uInt)s->buf.size));
    bytes_put_le64(hdr + 16, (uint64_t)s->buf.size);
    struct iovec iov[2] = {{hdr, sizeof hdr}, {s->buf.data, s->buf.size}};
    s->result = 0;
    s->err[0] = '\0';
    if (fileio_writev_atomic(s->path, iov, 2, 0600, s->err, sizeof s->err) != 0)
        s->result = errno ? errno : EIO;
}

static int u64_desc(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x > y ? -1 : x < y;
}

/* Snapshot numbers in dir, newest first; caller frees. */
static size_t list_snapshots(const char *dir, uint64_t **ret)
{
    *ret = NULL;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        uint64_t num;
        char tail[8];
        if (strlen(e->d_name) != 26 ||
            sscanf(e->d_name, "snap-%16" SCNu64 "%5s", &num, tail) != 2 ||
            strcmp(tail, ".snap") != 0)
            continue;
        xgrow(ret, &cap, n + 1, sizeof **ret);
        (*ret)[n++] = num;
    }
    closedir(d);
    if (n > 1)
        qsort(*ret, n, sizeof **ret, u64_desc);
    return n;
}

static void write_done(uv_work_t *req, int status)
{
    snapshot_t *s = req->data;
    server_t *srv = s->srv;
    s->running = false;
    s->last_ms = (int64_t)uv_now(&srv->loop);
    if (status < 0 || s->result) {
        s->failed++;
        if (status < 0)
            log_error("snapshot %s: %s", s->path, uv_strerror(status));
        else
            log_error("snapshot: %s", s->err);
        msgpack_sbuffer_clear(&s->buf);
        if (s->result == ENOSPC || s->result == EDQUOT || s->result == EFBIG)
            srv->wal.full = true; /* no room to snapshot: the reserve is for this */
        return;
    }
    s->written++;
    s->last_bytes = s->buf.size;
    s->last_segment = s->segment;
    msgpack_sbuffer_clear(&s->buf);
    log_debug("snapshot %s written (%" PRIu64 " bytes)", s->path, s->last_bytes);

    /* Keep this one and the previous; the WAL after the previous stays. */
    uint64_t *snaps;
    size_t n = list_snapshots(srv->cfg->state_dir, &snaps);
    for (size_t i = 2; i < n; i++) {
        char path[4096];
        snap_path(srv->cfg->state_dir, snaps[i], path, sizeof path);
        if (unlink(path) != 0)
            log_warn("%s: unlink", path);
    }
    /* ... and what a forwarder has not yet sent on (server_wal_hold). */
    if (n >= 2)
        wal_remove_upto(srv->cfg->state_dir, wal_holds_trim_upto(&srv->wal_holds, snaps[1]));
    free(snaps);
}

static void prepare(snapshot_t *s, server_t *srv, uint64_t segment)
{
    s->srv = srv;
    if (!s->buf.data)
        msgpack_sbuffer_init(&s->buf);
    msgpack_sbuffer_clear(&s->buf);
    serialise(srv, segment, &s->buf);
    s->segment = segment;
    snap_path(srv->cfg->state_dir, segment, s->path, sizeof s->path);
    s->work.data = s;
}

int snapshot_write_now(snapshot_t *s, server_t *srv, uint64_t segment)
{
    if (s->running)
        return -1;
    prepare(s, srv, segment);
    write_work(&s->work); /* the same steps as on the pool, on this thread */
    write_done(&s->work, 0);
    return s->result ? -1 : 0;
}

int snapshot_start(snapshot_t *s, server_t *srv, uint64_t segment)
{
    if (s->running)
        return -1;
    prepare(s, srv, segment);
    int rc = uv_queue_work(&srv->loop, &s->work, write_work, write_done);
    if (rc < 0) {
        s->failed++;
        log_error("snapshot: uv_queue_work: %s", uv_strerror(rc));
        return -1;
    }
    s->running = true;
    return 0;
}

void snapshot_free(snapshot_t *s)
{
    msgpack_sbuffer_destroy(&s->buf);
    s->buf.data = NULL;
}

/* ---- loading ----------------------------------------------------------------- */

/* Checks (apply = false) or applies (apply = true) every section of the
 * payload, in the table's order. Checking first means a damaged snapshot
 * never leaves half its state behind. */
static int load_payload(section_ctx_t *c, const msgpack_object *root, bool apply)
{
    c->apply = apply;
    for (size_t i = 0; i < NSECTIONS; i++) {
        const section_t *sec = &sections[i];
        const msgpack_object *o = proto_obj_get(root, sec->key);
        c->older = false;
        if (!o && sec->older_key) {
            o = proto_obj_get(root, sec->older_key);
            c->older = o != NULL;
        }
        if (!o && !sec->optional) {
            snprintf(c->err, c->errlen, "%s: missing", sec->key);
            return -1;
        }
        if (o && sec->load && sec->load(c, o) != 0)
            return -1;
    }
    return 0;
}

/* Reads and checks one snapshot file; on success applies it to srv. */
static int load_one(server_t *srv, const char *path, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        snprintf(err, errlen, "%s", strerror(errno));
        return -1;
    }
    unsigned char hdr[SNAP_HEADER];
    if (fread(hdr, 1, sizeof hdr, fp) != sizeof hdr || memcmp(hdr, SNAP_MAGIC, 8) != 0) {
        fclose(fp);
        snprintf(err, errlen, "not a clustermon snapshot (bad header)");
        return -1;
    }
    uint32_t version = bytes_get_le32(hdr + 8);
    uint32_t crc = bytes_get_le32(hdr + 12);
    uint64_t len = bytes_get_le64(hdr + 16);
    if (version != SNAPSHOT_FORMAT_VERSION) {
        fclose(fp);
        snprintf(err, errlen, "format version %u; this clustermond reads version %d", version,
                 SNAPSHOT_FORMAT_VERSION);
        return -1;
    }
    if (len > (uint64_t)1 << 36) {
        fclose(fp);
        snprintf(err, errlen, "implausible payload length %" PRIu64, len);
        return -1;
    }
    char *buf = xmalloc((size_t)len + 1);
    size_t got = fread(buf, 1, (size_t)len, fp);
    int extra = fgetc(fp);
    fclose(fp);
    if (got != len || extra != EOF) {
        free(buf);
        snprintf(err, errlen, "payload is %zu bytes%s, the header says %" PRIu64, got,
                 extra != EOF ? " or more" : "", len);
        return -1;
    }
    if ((uint32_t)crc32(0L, (const Bytef *)buf, (uInt)len) != crc) {
        free(buf);
        snprintf(err, errlen, "CRC mismatch: the file is damaged");
        return -1;
    }
    msgpack_zone zone;
    msgpack_zone_init(&zone, 65536);
    msgpack_object root;
    size_t off = 0;
    int rc = -1;
    section_ctx_t c = {.srv = srv, .err = err, .errlen = errlen};
    if (msgpack_unpack(buf, (size_t)len, &off, &zone, &root) != MSGPACK_UNPACK_SUCCESS ||
        off != len || root.type != MSGPACK_OBJECT_MAP) {
        snprintf(err, errlen, "payload is not one MessagePack map");
    } else if (load_payload(&c, &root, false) == 0) {
        load_payload(&c, &root, true);
        if (c.unknown_firms || c.unknown_metrics || c.unknown_rules)
            log_warnx("snapshot %s: dropped what the config no longer has: %" PRIu64
                      " series of unknown firms, %" PRIu64 " of unknown metrics, %" PRIu64
                      " alerts of unknown rules or firms",
                      path, c.unknown_firms, c.unknown_metrics, c.unknown_rules);
        rc = 0;
    }
    msgpack_zone_destroy(&zone);
    free(buf);
    return rc;
}

/* A temp file is a snapshot whose writer died before the rename: never
 * complete, never read; removed. fileio names it snap-N.snap.XXXXXX.tmp;
 * daemons before it, snap-N.snap.tmp: both are swept. */
static void remove_temp_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (strncmp(e->d_name, "snap-", 5) == 0 && n > 9 &&
            strcmp(e->d_name + n - 4, ".tmp") == 0 && strstr(e->d_name, ".snap.") != NULL) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            log_warnx("%s: an unfinished snapshot (the daemon stopped while writing it): removed",
                      path);
            unlink(path);
        }
    }
    closedir(d);
}

/* Renames snaps[0..n-1] *.damaged: they must never count as "the previous
 * snapshot" when the next one is written. */
static void set_aside(const char *dir, const uint64_t *snaps, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        char bad[4096], aside[4200];
        snap_path(dir, snaps[k], bad, sizeof bad);
        snprintf(aside, sizeof aside, "%s.damaged", bad);
        if (rename(bad, aside) != 0)
            log_warn("%s: rename", bad);
    }
}

int snapshot_load(server_t *srv, const uint64_t *segs, size_t nsegs, snapshot_loaded_t *ret,
                  char *err, size_t errlen)
{
    const char *dir = srv->cfg->state_dir;
    remove_temp_files(dir);
    memset(ret, 0, sizeof *ret);
    uint64_t *snaps;
    size_t n = list_snapshots(dir, &snaps);
    size_t dlen = 0;
    for (size_t i = 0; i < n; i++) {
        char path[4096], why[320];
        snap_path(dir, snaps[i], path, sizeof path);
        /* An older snapshot is a fallback only if the WAL after it is all
         * there; the newest is used even so (replay reports the gap). */
        uint64_t gap = i > 0 ? wal_first_gap(segs, nsegs, snaps[i]) : 0;
        int r;
        if (gap) {
            snprintf(why, sizeof why, "intact or not, WAL segment %" PRIu64 " after it is missing",
                     gap);
            r = -1;
        } else {
            r = load_one(srv, path, why, sizeof why);
        }
        if (r == 0) {
            struct stat sb;
            ret->segment = snaps[i];
            ret->bytes = stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
            set_aside(dir, snaps, i);
            free(snaps);
            return 0;
        }
        if (!gap) {
            log_error("snapshot %s is damaged: %s%s", path, why,
                      i + 1 < n ? "; falling back to the previous one" : "");
            ret->ndamaged++;
        }
        if (dlen < sizeof ret->damaged)
            dlen += (size_t)snprintf(ret->damaged + dlen, sizeof ret->damaged - dlen,
                                     "%ssnapshot %s %s (%s)", dlen ? "; " : "", path,
                                     gap ? "not usable" : "damaged", why);
    }
    if (n == 0) {
        free(snaps);
        return 0;
    }
    /* No usable snapshot: the WAL alone is the whole state if nothing of it
     * was ever trimmed. */
    uint64_t gap = wal_first_gap(segs, nsegs, 0);
    if (!gap) {
        set_aside(dir, snaps, n);
        free(snaps);
        return 0;
    }
    snprintf(err, errlen,
             "%s; no usable snapshot is left and the WAL no longer reaches back to its start "
             "(segment %016" PRIu64 " is gone), so starting would give wrong totals. Nothing was "
             "changed: keep the WAL. Restore an intact snapshot from a backup into %s, or, to "
             "accept the loss, move only the damaged snapshot files aside: the daemon then "
             "starts from the WAL segments it has and reports the missing ones",
             ret->damaged, gap, dir);
    free(snaps);
    return -1;
}
