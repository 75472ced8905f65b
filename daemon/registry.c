/*
 * registry.c -- loads the firm registry CSV with libcsv and indexes firm ids
 * in an open-addressing hash table. See registry.h.
 *
 * libcsv does not count lines; we feed it one physical line at a time and
 * note the line where each record starts, so errors can name it even when a
 * quoted name spans lines.
 */
#include "daemon/registry.h"

#include <csv.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/ids.h"
#include "daemon/xalloc.h"

enum { COL_ID, COL_NAME, COL_CLUSTER, COL_CHAIN, COL_TIER, COL_DESIGNATIONS, COL_STATUS, NCOLS };
static const char *const col_names[NCOLS] = {"id", "name", "cluster", "chain", "tier",
                                             "designations", "status"};
static const bool col_required[NCOLS] = {true, true, true, false, true, false, false};

#define MAX_FIELD 1024

typedef struct {
    const config_t *cfg;
    registry_t *reg;
    const char *path;
    size_t firms_cap;
    int line;             /* physical line being fed */
    int record_line;      /* line where the current record started */
    bool in_record;
    bool header_done;
    int col_of[NCOLS];    /* column position of each known field, -1 if absent */
    int ncols;            /* columns in the header */
    int field;            /* field index within the current record */
    char *fields[NCOLS];  /* the current record's known fields */
    char *err;
    size_t errlen;
    bool failed;
} load_t;

static void lerr(load_t *l, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void lerr(load_t *l, const char *field, const char *fmt, ...)
{
    if (l->failed)
        return;
    l->failed = true;
    int n = snprintf(l->err, l->errlen, "%s:%d: %s: ", l->path, l->record_line, field);
    if (n < 0 || (size_t)n >= l->errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->err + n, l->errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

static uint64_t hash_id(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

int registry_find(const registry_t *reg, const char *id, size_t len)
{
    if (!reg->slots)
        return -1;
    for (size_t i = hash_id(id, len) & reg->mask;; i = (i + 1) & reg->mask) {
        uint32_t s = reg->slots[i];
        if (s == 0)
            return -1;
        const char *fid = reg->firms[s - 1].id;
        /* id may hold a NUL: bound the length check so fid is never read past its end */
        if (strnlen(fid, len + 1) == len && memcmp(fid, id, len) == 0)
            return (int)(s - 1);
    }
}

static void index_build(registry_t *reg)
{
    size_t n = 16;
    while (n < reg->nfirms * 2)
        n *= 2;
    reg->slots = xcalloc(n, sizeof *reg->slots);
    reg->mask = n - 1;
    for (size_t f = 0; f < reg->nfirms; f++) {
        size_t i = hash_id(reg->firms[f].id, strlen(reg->firms[f].id)) & reg->mask;
        while (reg->slots[i])
            i = (i + 1) & reg->mask;
        reg->slots[i] = (uint32_t)(f + 1);
    }
}

const char *registry_tier_name(tier_t t)
{
    static const char *const names[TIER_COUNT] = {"leading", "backbone", "potential", "member"};
    return t < TIER_COUNT ? names[t] : "?";
}

int registry_tier_parse(const char *s)
{
    for (int t = 0; t < TIER_COUNT; t++)
        if (strcmp(s, registry_tier_name((tier_t)t)) == 0)
            return t;
    return -1;
}

static void header_field(load_t *l, const char *v)
{
    int pos = l->field;
    for (int c = 0; c < NCOLS; c++) {
        if (strcmp(v, col_names[c]) == 0) {
            if (l->col_of[c] >= 0) {
                lerr(l, "header", "column '%s' appears twice", v);
                return;
            }
            l->col_of[c] = pos;
            return;
        }
    }
    lerr(l, "header",
         "unknown column '%s' (expected id, name, cluster, chain, tier, designations, status)", v);
}

static void record_finish(load_t *l)
{
    const config_t *cfg = l->cfg;
    registry_t *reg = l->reg;
    char why[128];
    char *const *f = l->fields;

    if (l->field != l->ncols) {
        lerr(l, "record", "%d fields, the header has %d", l->field, l->ncols);
        return;
    }
    const char *id = f[COL_ID] ? f[COL_ID] : "";
    if (ids_validate(id, strlen(id), why, sizeof why) != 0) {
        lerr(l, "id", "'%s': %s", id, why);
        return;
    }
    for (size_t i = 0; i < reg->nfirms; i++) {
        if (strcmp(reg->firms[i].id, id) == 0) {
            lerr(l, "id", "firm '%s' is already defined on line %d", id, reg->firms[i].line);
            return;
        }
    }
    const char *name = f[COL_NAME] ? f[COL_NAME] : "";
    if (!*name) {
        lerr(l, "name", "firm '%s' has an empty name", id);
        return;
    }
    if (!ids_utf8_valid(name, strlen(name))) {
        lerr(l, "name", "firm '%s': name is not valid UTF-8", id);
        return;
    }
    const char *cl = f[COL_CLUSTER] ? f[COL_CLUSTER] : "";
    int cluster = config_cluster_find(cfg, cl, strlen(cl));
    if (cluster < 0) {
        lerr(l, "cluster", "firm '%s': unknown cluster '%s'", id, cl);
        return;
    }
    const char *ch = f[COL_CHAIN] ? f[COL_CHAIN] : "";
    int chain = -1;
    if (*ch) {
        chain = config_chain_find(&cfg->clusters[cluster], ch, strlen(ch));
        if (chain < 0) {
            lerr(l, "chain", "firm '%s': cluster '%s' has no chain '%s'", id, cl, ch);
            return;
        }
    }
    int tier = registry_tier_parse(f[COL_TIER] ? f[COL_TIER] : "");
    if (tier < 0) {
        lerr(l, "tier", "firm '%s': '%s' is not leading, backbone, potential or member", id,
             f[COL_TIER] ? f[COL_TIER] : "");
        return;
    }
    const char *des = f[COL_DESIGNATIONS] ? f[COL_DESIGNATIONS] : "";
    if (!ids_utf8_valid(des, strlen(des))) {
        lerr(l, "designations", "firm '%s': not valid UTF-8", id);
        return;
    }
    const char *status = f[COL_STATUS] ? f[COL_STATUS] : "";
    if (*status && strcmp(status, "active") != 0 && strcmp(status, "inactive") != 0) {
        lerr(l, "status", "firm '%s': '%s' is not active or inactive", id, status);
        return;
    }
    xgrow(&reg->firms, &l->firms_cap, reg->nfirms + 1, sizeof *reg->firms);
    reg->firms[reg->nfirms++] = (firm_t){
        .id = xstrdup(id),
        .name = xstrdup(name),
        .cluster = cluster,
        .chain = chain,
        .tier = (tier_t)tier,
        .designations = xstrdup(des),
        .inactive = strcmp(status, "inactive") == 0,
        .line = l->record_line,
    };
}

static void field_cb(void *data, size_t len, void *user)
{
    load_t *l = user;
    if (l->failed)
        return;
    if (!l->in_record) {
        l->in_record = true;
        l->record_line = l->line;
        l->field = 0;
    }
    if (len > MAX_FIELD) {
        lerr(l, "record", "field %d is %zu bytes long (limit %d)", l->field + 1, len, MAX_FIELD);
        return;
    }
    const char *v = data ? data : "";
    if (memchr(v, '\0', len)) {
        lerr(l, "record", "field %d holds a NUL byte", l->field + 1);
        return;
    }
    if (!l->header_done) {
        header_field(l, v);
    } else {
        for (int c = 0; c < NCOLS; c++) {
            if (l->col_of[c] == l->field) {
                free(l->fields[c]);
                l->fields[c] = xstrndup(v, len);
            }
        }
    }
    l->field++;
}

static void record_cb(int c, void *user)
{
    load_t *l = user;
    (void)c;
    if (l->failed)
        return;
    if (!l->in_record) /* a blank line */
        return;
    l->in_record = false;
    if (!l->header_done) {
        l->header_done = true;
        l->ncols = l->field;
        for (int k = 0; k < NCOLS; k++) {
            if (col_required[k] && l->col_of[k] < 0) {
                lerr(l, "header", "required column '%s' is missing", col_names[k]);
                return;
            }
        }
        return;
    }
    record_finish(l);
    for (int k = 0; k < NCOLS; k++) {
        free(l->fields[k]);
        l->fields[k] = NULL;
    }
}

int registry_load(const char *path, const config_t *cfg, registry_t **ret, char *err,
                  size_t errlen)
{
    registry_t *reg = xcalloc(1, sizeof *reg);
    load_t l = {.cfg = cfg, .reg = reg, .path = path, .err = err, .errlen = errlen};
    for (int c = 0; c < NCOLS; c++)
        l.col_of[c] = -1;
    err[0] = '\0';

    FILE *fp = fopen(path, "r");
    if (!fp) {
        snprintf(err, errlen, "%s: cannot open firm registry: %s", path, strerror(errno));
        registry_destroy(&reg);
        return -1;
    }
    struct csv_parser csv;
    if (csv_init(&csv, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL) != 0) {
        snprintf(err, errlen, "%s: cannot initialise the CSV parser", path);
        fclose(fp);
        registry_destroy(&reg);
        return -1;
    }
    char *linebuf = NULL;
    size_t linecap = 0;
    ssize_t n;
    while (!l.failed && (n = getline(&linebuf, &linecap, fp)) > 0) {
        l.line++;
        if (l.line == 1 && n >= 3 && memcmp(linebuf, "\xef\xbb\xbf", 3) == 0) {
            memmove(linebuf, linebuf + 3, (size_t)n - 3); /* a BOM from a spreadsheet */
            n -= 3;
        }
        if (csv_parse(&csv, linebuf, (size_t)n, field_cb, record_cb, &l) != (size_t)n) {
            l.record_line = l.line;
            lerr(&l, "csv", "%s", csv_strerror(csv_error(&csv)));
        }
    }
    if (!l.failed && ferror(fp)) {
        l.record_line = l.line;
        lerr(&l, "file", "read error: %s", strerror(errno));
    }
    if (!l.failed && csv_fini(&csv, field_cb, record_cb, &l) != 0) {
        l.record_line = l.line;
        lerr(&l, "csv", "%s (an unterminated quoted field?)", csv_strerror(csv_error(&csv)));
    }
    csv_free(&csv);
    free(linebuf);
    fclose(fp);
    for (int k = 0; k < NCOLS; k++)
        free(l.fields[k]);
    if (!l.failed && !l.header_done) {
        l.record_line = 1;
        lerr(&l, "header", "the file is empty (expected a header row)");
    }
    if (l.failed) {
        registry_destroy(&reg);
        return -1;
    }
    index_build(reg);
    *ret = reg;
    return 0;
}

void registry_destroy(registry_t **preg)
{
    registry_t *reg = *preg;
    if (!reg)
        return;
    for (size_t i = 0; i < reg->nfirms; i++) {
        free(reg->firms[i].id);
        free(reg->firms[i].name);
        free(reg->firms[i].designations);
    }
    free(reg->firms);
    free(reg->slots);
    free(reg);
    *preg = NULL;
}
