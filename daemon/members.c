/*
 * members.c -- see members.h. The snapshot's "firms" section, and the
 * payload of the membership file, is an array of
 *
 *   [id, name, cluster, chain|nil, tier, designations, left_ms]
 *
 * (left_ms 0: a member when it was written), one per firm of the registry,
 * members and former members alike. The file: magic "CMMEMB\0\0", payload
 * length (u32 LE), CRC-32 of the payload (u32 LE), payload.
 */
#include "daemon/members.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "daemon/ids.h"
#include "daemon/log.h"
#include "daemon/server.h"
#include "daemon/xalloc.h"
#include "proto/bytes.h"
#include "proto/fileio.h"

void members_format_date(int64_t ms, char *buf, size_t size)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!localtime_r(&t, &tm) || strftime(buf, size, "%Y-%m-%d", &tm) == 0)
        snprintf(buf, size, "%lld ms", (long long)ms);
}

static void pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

/* [id, name, cluster, chain|nil, tier, designations] */
static void pack_firm(msgpack_packer *pk, const config_t *cfg, const firm_t *f, bool with_left)
{
    const config_cluster_t *cl = &cfg->clusters[f->cluster];
    msgpack_pack_array(pk, with_left ? 7 : 6);
    pack_str(pk, f->id);
    pack_str(pk, f->name);
    pack_str(pk, cl->id);
    if (f->chain >= 0)
        pack_str(pk, cl->chains[f->chain]);
    else
        msgpack_pack_nil(pk);
    pack_str(pk, registry_tier_name(f->tier));
    pack_str(pk, f->designations ? f->designations : "");
    if (with_left)
        msgpack_pack_int64(pk, f->left_ms);
}

static bool is_str(const msgpack_object *o)
{
    return o && o->type == MSGPACK_OBJECT_STR;
}

/* A firm entry read back: strings copied (NUL-terminated), indexes resolved
 * against cfg. */
typedef struct {
    firm_t f;
    bool cluster_gone;
} entry_t;

static void entry_free(entry_t *e)
{
    free(e->f.id);
    free(e->f.name);
    free(e->f.designations);
    memset(e, 0, sizeof *e);
}

/* Reads [id, name, cluster, chain|nil, tier, designations(, left_ms)].
 * Returns 0, or -1 with the reason in err (malformed). A cluster cfg no longer
 * has sets cluster_gone; a chain it no longer has means no chain. */
static int entry_read(const msgpack_object *o, const config_t *cfg, bool with_left, entry_t *e,
                      char *err, size_t errlen)
{
    memset(e, 0, sizeof *e);
    uint32_t n = with_left ? 7 : 6;
    if (!o || o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != n) {
        snprintf(err, errlen, "a firm entry is not an array of %u", n);
        return -1;
    }
    const msgpack_object *v = o->via.array.ptr;
    char why[128];
    if (!is_str(&v[0]) || ids_validate(v[0].via.str.ptr, v[0].via.str.size, why, sizeof why) != 0 ||
        !is_str(&v[1]) || !is_str(&v[2]) || !(is_str(&v[3]) || v[3].type == MSGPACK_OBJECT_NIL) ||
        !is_str(&v[4]) || !is_str(&v[5]) || (with_left && !proto_obj_i64(&v[6], &e->f.left_ms))) {
        snprintf(err, errlen, "a firm entry is malformed");
        return -1;
    }
    char tier[32];
    snprintf(tier, sizeof tier, "%.*s", (int)(v[4].via.str.size < 31 ? v[4].via.str.size : 31),
             v[4].via.str.ptr);
    int t = registry_tier_parse(tier);
    if (t < 0) {
        snprintf(err, errlen, "a firm entry has an unknown tier '%s'", tier);
        return -1;
    }
    e->f.tier = (tier_t)t;
    e->f.id = xstrndup(v[0].via.str.ptr, v[0].via.str.size);
    e->f.name = xstrndup(v[1].via.str.ptr, v[1].via.str.size);
    e->f.designations = xstrndup(v[5].via.str.ptr, v[5].via.str.size);
    e->f.cluster = config_cluster_find(cfg, v[2].via.str.ptr, v[2].via.str.size);
    e->f.chain = -1;
    if (e->f.cluster < 0) {
        e->cluster_gone = true;
        return 0;
    }
    if (is_str(&v[3]))
        e->f.chain =
            config_chain_find(&cfg->clusters[e->f.cluster], v[3].via.str.ptr, v[3].via.str.size);
    return 0;
}

/* Adds e as a former member of srv's registry, growing the aggregate with it. */
static int add_former(server_t *srv, const entry_t *e, int64_t left_ms)
{
    firm_t f = e->f;
    f.known = true;
    int idx = registry_add_former(srv->reg, &f, left_ms);
    agg_grow(srv->agg, srv->reg->nall);
    return idx;
}

/* ---- reload ----------------------------------------------------------------- */

void members_carry(const server_t *srv, const config_t *cfg, registry_t *reg, members_change_t *ret)
{
    const registry_t *old = srv->reg;
    memset(ret, 0, sizeof *ret);
    for (size_t f = 0; f < old->nall; f++) {
        const firm_t *o = &old->firms[f];
        bool was_member = f < old->nfirms;
        int g = registry_find(reg, o->id, strlen(o->id));
        if (g >= 0) {
            /* still listed, or listed again */
            reg->firms[g].known = was_member && o->known;
            ret->rejoined += !was_member;
            continue;
        }
        const config_cluster_t *ocl = &srv->cfg->clusters[o->cluster];
        int cl = config_cluster_find(cfg, ocl->id, strlen(ocl->id));
        if (cl < 0) {
            log_warnx("reload: firm '%s' %s and its cluster '%s' is gone: its figures are dropped",
                      o->id, was_member ? "left the registry" : "(a former member)", ocl->id);
            ret->dropped++;
            continue;
        }
        firm_t copy = *o;
        copy.cluster = cl;
        copy.chain = o->chain >= 0 ? config_chain_find(&cfg->clusters[cl], ocl->chains[o->chain],
                                                       strlen(ocl->chains[o->chain]))
                                   : -1;
        copy.known = o->known;
        registry_add_former(reg, &copy, was_member ? 0 : o->left_ms);
        ret->left += was_member;
    }
    for (size_t f = 0; f < reg->nfirms; f++) {
        const firm_t *n = &reg->firms[f];
        ret->joined += registry_find_any(old, n->id, strlen(n->id)) < 0;
    }
}

/* ---- the membership file -------------------------------------------------------- */

#define MEMBERS_MAGIC "CMMEMB\0\0"
#define MEMBERS_HEADER 16

static void members_path(const server_t *srv, char *buf, size_t size)
{
    snprintf(buf, size, "%s/members", srv->cfg->state_dir);
}

int members_save(server_t *srv, int64_t now_ms)
{
    registry_t *reg = srv->reg;
    int changed = 0;
    for (size_t f = 0; f < reg->nfirms; f++)
        changed += !reg->firms[f].known;
    for (size_t f = reg->nfirms; f < reg->nall; f++) {
        if (reg->firms[f].left_ms == 0) {
            reg->firms[f].left_ms = now_ms;
            changed++;
        }
    }
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    unsigned char hdr[MEMBERS_HEADER] = {0};
    msgpack_sbuffer_write(&buf, (const char *)hdr, sizeof hdr);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    members_pack(srv, &pk);
    unsigned char *h = (unsigned char *)buf.data;
    memcpy(h, MEMBERS_MAGIC, 8);
    bytes_put_le32(h + 8, (uint32_t)(buf.size - MEMBERS_HEADER));
    bytes_put_le32(h + 12, (uint32_t)crc32(0L, (const Bytef *)buf.data + MEMBERS_HEADER,
                                           (uInt)(buf.size - MEMBERS_HEADER)));
    char path[4096];
    members_path(srv, path, sizeof path);
    char err[4200];
    int rc = fileio_write_atomic(path, buf.data, buf.size, 0600, err, sizeof err);
    msgpack_sbuffer_destroy(&buf);
    if (rc != 0) {
        log_warnx("%s; cannot save the membership (%d firms joined or left); the next snapshot "
                  "records it",
                  err, changed);
        return -1;
    }
    for (size_t f = 0; f < reg->nall; f++)
        reg->firms[f].known = true;
    return changed;
}

int members_load(server_t *srv)
{
    char path[4096];
    members_path(srv, path, sizeof path);
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        if (errno == ENOENT)
            return 0;
        log_warn("%s", path);
        return -1;
    }
    unsigned char hdr[MEMBERS_HEADER];
    char *buf = NULL;
    int rc = -1;
    const char *why = "not a membership file (bad header)";
    if (fread(hdr, 1, sizeof hdr, fp) == sizeof hdr && memcmp(hdr, MEMBERS_MAGIC, 8) == 0) {
        uint32_t len = bytes_get_le32(hdr + 8);
        buf = xmalloc((size_t)len + 1);
        if (fread(buf, 1, len, fp) != len || fgetc(fp) != EOF)
            why = "its length does not match its header";
        else if ((uint32_t)crc32(0L, (const Bytef *)buf, (uInt)len) != bytes_get_le32(hdr + 12))
            why = "CRC mismatch: the file is damaged";
        else {
            msgpack_zone zone;
            msgpack_zone_init(&zone, 65536);
            msgpack_object root;
            size_t off = 0;
            char err[256];
            why = "payload is not one MessagePack array";
            if (msgpack_unpack(buf, len, &off, &zone, &root) == MSGPACK_UNPACK_SUCCESS &&
                off == len && members_unpack(srv, &root, false, err, sizeof err) == 0) {
                members_unpack(srv, &root, true, err, sizeof err);
                rc = 0;
            }
            msgpack_zone_destroy(&zone);
        }
    }
    fclose(fp);
    free(buf);
    if (rc != 0)
        log_error("%s: %s; the snapshot's list of firms is used instead", path, why);
    return rc;
}

/* ---- the snapshot's "firms" ------------------------------------------------------- */

void members_pack(const server_t *srv, msgpack_packer *pk)
{
    const registry_t *reg = srv->reg;
    msgpack_pack_array(pk, reg->nall);
    for (size_t f = 0; f < reg->nall; f++)
        pack_firm(pk, srv->cfg, &reg->firms[f], true);
}

int members_unpack(server_t *srv, const msgpack_object *o, bool apply, char *err, size_t errlen)
{
    if (!o || o->type != MSGPACK_OBJECT_ARRAY) {
        snprintf(err, errlen, "firms: not an array");
        return -1;
    }
    size_t gone = 0;
    for (uint32_t i = 0; i < o->via.array.size; i++) {
        entry_t e;
        char why[128];
        if (entry_read(&o->via.array.ptr[i], srv->cfg, true, &e, why, sizeof why) != 0) {
            snprintf(err, errlen, "firms: %s", why);
            return -1;
        }
        if (apply) {
            int f = registry_find_any(srv->reg, e.f.id, strlen(e.f.id));
            if (f < 0 && e.cluster_gone)
                gone++;
            else if (f < 0)
                add_former(srv, &e, e.f.left_ms); /* 0: a member then; leaves now */
            else if (!registry_is_former(srv->reg, f))
                srv->reg->firms[f].known = e.f.left_ms == 0;
        }
        entry_free(&e);
    }
    if (gone)
        log_warnx("snapshot: %zu former firms of clusters the config no longer has: their figures "
                  "are dropped",
                  gone);
    return 0;
}

void members_seen_pack(const registry_t *reg, msgpack_packer *pk)
{
    msgpack_pack_array(pk, reg->nfirms);
    for (size_t f = 0; f < reg->nfirms; f++) {
        size_t n = strlen(reg->firms[f].id);
        msgpack_pack_array(pk, 2);
        msgpack_pack_str(pk, n);
        msgpack_pack_str_body(pk, reg->firms[f].id, n);
        msgpack_pack_int64(pk, reg->firms[f].first_seen_ms);
    }
}

/* A first-seen time: an integer that fits int64. */
static bool seen_ms(const msgpack_object *o, int64_t *v)
{
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *v = o->via.i64;
        return true;
    }
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX) {
        *v = (int64_t)o->via.u64;
        return true;
    }
    return false;
}

int members_seen_unpack(registry_t *reg, const msgpack_object *o, bool apply, char *err,
                        size_t errlen)
{
    if (!o || o->type != MSGPACK_OBJECT_ARRAY) {
        snprintf(err, errlen, "firms_seen: not an array");
        return -1;
    }
    for (uint32_t i = 0; i < o->via.array.size; i++) {
        const msgpack_object *e = &o->via.array.ptr[i];
        int64_t ms;
        if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size != 2 ||
            e->via.array.ptr[0].type != MSGPACK_OBJECT_STR || !seen_ms(&e->via.array.ptr[1], &ms)) {
            snprintf(err, errlen, "firms_seen: entry %u: malformed", i + 1);
            return -1;
        }
    }
    for (uint32_t i = 0; apply && i < o->via.array.size; i++) {
        const msgpack_object *v = o->via.array.ptr[i].via.array.ptr;
        int firm = registry_find(reg, v[0].via.str.ptr, v[0].via.str.size);
        if (firm >= 0)
            seen_ms(&v[1], &reg->firms[firm].first_seen_ms);
    }
    return 0;
}
