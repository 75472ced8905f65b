/*
 * snapshot.c -- see snapshot.h. The payload is one MessagePack map:
 *
 *   created_ms  int      when it was taken
 *   segment     uint     WAL segments <= this are in it
 *   alert_seqs  map      cluster -> last alert sequence number published there
 *                        (older snapshots: alert_seq, one global uint)
 *   stats       map      samples_applied, batches_ok, batches_duplicate
 *   streams     array of agent streams, written by streams_pack (streams.h)
 *   firms       every firm, members and former members, written by
 *               members_pack (members.h); older snapshots have none
 *   series      array of [firm, metric, last, last_ts, count,
 *                         [[year, month_mask, quarter_mask, has_annual, any,
 *                           annual, [12 months], [4 quarters]], ...]]
 *   alerts      every alert the book knows, written by alertbook_pack (alertbook.h)
 *   silences    the silences and the next id, written by silences_pack (silences.h;
 *               older snapshots: the bare array of silences)
 *   firms_seen  array of [firm, first seen ms]: when the daemon first had each
 *               firm in its registry (optional: older snapshots lack it)
 *
 * Loading reads it with msgpack_unpack: the file is ours and its CRC has been
 * checked first, and every value's type is checked before use anyway.
 */
#include "daemon/snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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

#define SNAP_MAGIC "CMSNAP\0\0"
#define SNAP_HEADER 24

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

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

/* ---- serialising ----------------------------------------------------------- */

static void serialise(server_t *srv, uint64_t segment, msgpack_sbuffer *buf)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    const agg_t *agg = srv->agg;
    const config_t *cfg = srv->cfg;
    const registry_t *reg = srv->reg;

    /* created_ms, segment, alert_seqs, stats, streams, firms, series,
     * alerts, silences, firms_seen: one more key, one more here */
    msgpack_pack_map(&pk, 10);
    pack_str(&pk, "created_ms");
    msgpack_pack_int64(&pk, calendar_now_ms());
    pack_str(&pk, "segment");
    msgpack_pack_uint64(&pk, segment);
    pack_str(&pk, "alert_seqs");
    alerts_seqs_pack(&srv->alerts, &pk);
    pack_str(&pk, "stats");
    ingest_stats_pack(srv, &pk);

    pack_str(&pk, "streams");
    streams_pack(&srv->ingest.streams, &pk);
    pack_str(&pk, "firms");
    members_pack(srv, &pk);

    pack_str(&pk, "series");
    agg_pack(agg, reg, cfg, &pk);

    pack_str(&pk, "alerts");
    alertbook_pack(&srv->book, &pk);
    pack_str(&pk, "silences");
    silences_pack(&srv->silences, &pk);
    pack_str(&pk, "firms_seen");
    members_seen_pack(reg, &pk);
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* On the thread pool: touches only s->buf, s->path and the file system. */
static void write_work(uv_work_t *req)
{
    snapshot_t *s = req->data;
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", s->path);
    unsigned char hdr[SNAP_HEADER] = {0};
    memcpy(hdr, SNAP_MAGIC, 8);
    put32(hdr + 8, SNAPSHOT_FORMAT_VERSION);
    put32(hdr + 12, (uint32_t)crc32(0L, (const Bytef *)s->buf.data, (uInt)s->buf.size));
    put32(hdr + 16, (uint32_t)s->buf.size);
    put32(hdr + 20, (uint32_t)((uint64_t)s->buf.size >> 32));
    s->result = 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        s->result = errno;
        return;
    }
    const char *parts[2] = {(const char *)hdr, s->buf.data};
    size_t lens[2] = {sizeof hdr, s->buf.size};
    for (int i = 0; i < 2 && !s->result; i++) {
        size_t off = 0;
        while (off < lens[i]) {
            ssize_t n = write(fd, parts[i] + off, lens[i] - off);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                s->result = n < 0 ? errno : EIO;
                break;
            }
            off += (size_t)n;
        }
    }
    if (!s->result && fsync(fd) != 0)
        s->result = errno;
    if (close(fd) != 0 && !s->result)
        s->result = errno;
    if (!s->result && rename(tmp, s->path) != 0)
        s->result = errno;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", s->path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    if (!s->result && fsync_dir(slash ? dir : ".") != 0)
        s->result = errno;
    if (s->result)
        unlink(tmp);
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
        log_error("snapshot %s: %s", s->path,
                  status < 0 ? uv_strerror(status) : strerror(s->result));
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
    if (n >= 2)
        wal_remove_upto(srv->cfg->state_dir, snaps[1]);
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

static bool as_u64(const msgpack_object *o, uint64_t *v)
{
    if (!o || o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return false;
    *v = o->via.u64;
    return true;
}

typedef struct {
    uint64_t unknown_firms, unknown_metrics, unknown_rules;
} load_stats_t;

#define BAD(what)                                                                                  \
    do {                                                                                           \
        snprintf(err, errlen, "%s", what);                                                         \
        return -1;                                                                                 \
    } while (0)

/* Checks (apply = false) or applies (apply = true) the payload. Checking
 * first means a damaged snapshot never leaves half its state behind. */
static int load_payload(server_t *srv, const msgpack_object *root, bool apply, load_stats_t *ls,
                        char *err, size_t errlen)
{
    const config_t *cfg = srv->cfg;
    const registry_t *reg = srv->reg;
    uint64_t u;
    const msgpack_object *o, *st = proto_obj_get(root, "stats");
    if (!as_u64(proto_obj_get(root, "segment"), &u))
        BAD("segment: missing or not an integer");
    /* The seq file is written after every publication, so it is ahead of
     * any snapshot; the snapshot's seqs only raise it (a lost file). */
    if (proto_obj_get(root, "alert_seqs")) {
        if (alerts_seqs_load(&srv->alerts, proto_obj_get(root, "alert_seqs"), apply, err,
                             errlen) != 0)
            return -1;
    } else if (as_u64(proto_obj_get(root, "alert_seq"), &u)) {
        if (apply) /* an older daemon's global seq */
            alerts_seqs_raise_floor(&srv->alerts, u);
    } else {
        BAD("alert_seqs: missing or not a map");
    }
    if (!st)
        BAD("stats: missing");
    if (ingest_stats_unpack(srv, st, apply, err, errlen) != 0)
        return -1;

    /* "agents" (a snapshot of protocol 1) held no stream an agent of
     * protocol 2 can continue: it is left behind. */
    o = proto_obj_get(root, "streams");
    if (o && streams_unpack(&srv->ingest.streams, o, apply, (int64_t)uv_now(&srv->loop), err,
                            errlen) != 0)
        return -1;

    /* the firms first: a former member's series resolve by its id */
    o = proto_obj_get(root, "firms");
    if (o && members_unpack(srv, o, apply, err, errlen) != 0)
        return -1;

    agg_dropped_t dropped = {0};
    o = proto_obj_get(root, "series");
    if (!o)
        BAD("series: missing");
    if (agg_unpack(srv->agg, reg, cfg, o, apply, &dropped, err, errlen) != 0)
        return -1;
    ls->unknown_firms += dropped.unknown_firms;
    ls->unknown_metrics += dropped.unknown_metrics;

    if (alertbook_unpack(&srv->book, proto_obj_get(root, "alerts"), apply, &ls->unknown_rules,
                         err, errlen) != 0 ||
        silences_unpack(&srv->silences, proto_obj_get(root, "silences"), apply, err, errlen) != 0)
        return -1;

    o = proto_obj_get(root, "firms_seen");
    if (o && members_seen_unpack(srv->reg, o, apply, err, errlen) != 0)
        return -1;
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
    uint32_t version = (uint32_t)get_le(hdr + 8, 4);
    uint32_t crc = (uint32_t)get_le(hdr + 12, 4);
    uint64_t len = get_le(hdr + 16, 8);
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
    load_stats_t ls = {0};
    if (msgpack_unpack(buf, (size_t)len, &off, &zone, &root) != MSGPACK_UNPACK_SUCCESS ||
        off != len || root.type != MSGPACK_OBJECT_MAP) {
        snprintf(err, errlen, "payload is not one MessagePack map");
    } else if (load_payload(srv, &root, false, &ls, err, errlen) == 0) {
        load_payload(srv, &root, true, &ls, err, errlen);
        if (ls.unknown_firms || ls.unknown_metrics || ls.unknown_rules)
            log_warnx("snapshot %s: dropped what the config no longer has: %" PRIu64
                      " series of unknown firms, %" PRIu64 " of unknown metrics, %" PRIu64
                      " alerts of unknown rules or firms",
                      path, ls.unknown_firms, ls.unknown_metrics, ls.unknown_rules);
        rc = 0;
    }
    msgpack_zone_destroy(&zone);
    free(buf);
    return rc;
}

/* A temp file is a snapshot whose writer died before the rename: never
 * complete, never read; removed. */
static void remove_temp_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (strncmp(e->d_name, "snap-", 5) == 0 && n > 9 && strcmp(e->d_name + n - 9, ".snap.tmp") == 0) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            log_warnx("%s: an unfinished snapshot (the daemon stopped while writing it): removed", path);
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
