/*
 * toolcfg.h -- what the benchmark tools (loadgen, alertprobe) need to know
 * of a clustermond.conf: its firms (from the registry it names, with their
 * cluster and chain) and its `period` metrics, so the samples they send are
 * ones the daemon accepts. A deliberately small reader, not the daemon's
 * parser: it takes `registry =` from [daemon] (relative to the config's
 * directory, as the daemon resolves it) and `kind = period` from each
 * [metric NAME]. Header-only because every file in tests/tools/ is a program
 * of its own.
 */
#ifndef CLUSTERMON_TOOLCFG_H
#define CLUSTERMON_TOOLCFG_H

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOOLCFG_MAX 64 /* an id's longest (PROTO_MAX_ID_LEN) */

typedef struct {
    char id[TOOLCFG_MAX + 1];
    char cluster[TOOLCFG_MAX + 1];
    char chain[TOOLCFG_MAX + 1];
} toolcfg_firm_t;

typedef struct {
    toolcfg_firm_t *firms;
    int nfirms;
    char metrics[16][TOOLCFG_MAX + 1]; /* period metrics */
    int nmetrics;
} toolcfg_t;

/* Trims s in place (spaces, a trailing `; comment`); returns s. */
static inline char *toolcfg_trim(char *s)
{
    char *semi = strchr(s, ';');
    if (semi)
        *semi = '\0';
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* Copies CSV field i of line (no quoted commas: ids never hold one). */
static inline void toolcfg_field(const char *line, int i, char *out, size_t size)
{
    for (; i > 0 && line; i--) {
        line = strchr(line, ',');
        if (line)
            line++;
    }
    size_t n = line ? strcspn(line, ",\r\n") : 0;
    if (n >= size)
        n = size - 1;
    memcpy(out, line ? line : "", n);
    out[n] = '\0';
    if (n >= 2 && out[0] == '"' && out[n - 1] == '"') {
        memmove(out, out + 1, n - 2);
        out[n - 2] = '\0';
    }
}

/* Loads path into *c. Returns 0, or -1 with the reason in err. Caller owns
 * c->firms (free). */
static inline int toolcfg_load(const char *path, toolcfg_t *c, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open", path);
        return -1;
    }
    char line[1024], section[128] = "", registry[900] = "";
    int is_period = 0;
    char metric[TOOLCFG_MAX + 1] = "";
    while (fgets(line, sizeof line, f)) {
        char *s = toolcfg_trim(line);
        if (*s == '[') {
            if (is_period && c->nmetrics < 16)
                snprintf(c->metrics[c->nmetrics++], TOOLCFG_MAX + 1, "%s", metric);
            is_period = 0;
            snprintf(section, sizeof section, "%s", s);
            if (sscanf(s, "[metric %64[^]]]", metric) != 1)
                metric[0] = '\0';
            continue;
        }
        char *eq = strchr(s, '=');
        if (!eq)
            continue;
        *eq = '\0';
        char *k = toolcfg_trim(s), *v = toolcfg_trim(eq + 1);
        if (strcmp(section, "[daemon]") == 0 && strcmp(k, "registry") == 0)
            snprintf(registry, sizeof registry, "%s", v);
        if (metric[0] && strcmp(k, "kind") == 0 && strcmp(v, "period") == 0)
            is_period = 1;
    }
    if (is_period && c->nmetrics < 16)
        snprintf(c->metrics[c->nmetrics++], TOOLCFG_MAX + 1, "%s", metric);
    fclose(f);
    if (!registry[0] || c->nmetrics == 0) {
        snprintf(err, errlen, "%s: no [daemon] registry or no period metric", path);
        return -1;
    }
    char rpath[2048];
    const char *slash = strrchr(path, '/');
    if (registry[0] == '/' || !slash)
        snprintf(rpath, sizeof rpath, "%s", registry);
    else
        snprintf(rpath, sizeof rpath, "%.*s/%s", (int)(slash - path), path, registry);
    f = fopen(rpath, "r");
    if (!f) {
        snprintf(err, errlen, "%.200s: registry %.400s: cannot open", path, rpath);
        return -1;
    }
    int cap = 0, lineno = 0;
    while (fgets(line, sizeof line, f)) {
        if (lineno++ == 0 || line[0] == '\n' || line[0] == '\r')
            continue; /* the header */
        if (c->nfirms == cap) {
            cap = cap ? cap * 2 : 256;
            c->firms = realloc(c->firms, (size_t)cap * sizeof *c->firms);
            if (!c->firms)
                abort();
        }
        toolcfg_firm_t *fm = &c->firms[c->nfirms++];
        toolcfg_field(line, 0, fm->id, sizeof fm->id);
        toolcfg_field(line, 2, fm->cluster, sizeof fm->cluster);
        toolcfg_field(line, 3, fm->chain, sizeof fm->chain);
    }
    fclose(f);
    if (c->nfirms == 0) {
        snprintf(err, errlen, "%.200s: registry %.400s: no firms", path, rpath);
        return -1;
    }
    return 0;
}

#endif
