/*
 * config.c -- parses clustermond's INI config with inih into a fresh
 * config_t, then validates the whole of it (cross references between rules,
 * metrics, clusters and chains need the whole file). See config.h.
 *
 * inih does not tell a handler its line number, and it never reports a
 * section that holds no keys; we feed it through our own line reader, which
 * counts lines and sees each "[section]" header itself. That also lets an
 * empty [cluster x] be caught instead of silently dropped.
 */
#include "daemon/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "daemon/http.h"
#include "daemon/ids.h"
#include "daemon/log.h"
#include "daemon/ruleconf.h"
#include "daemon/rwencode.h"
#include "daemon/xalloc.h"
#include "proto/keyfile.h"

/* ---- the [daemon] section: a table of option descriptors ----------------- */

/* OPT_MAYBE_PATH and OPT_MAYBE_STR may be empty: the feature is off. */
typedef enum {
    OPT_STR,
    OPT_PATH,
    OPT_ENDPOINT,
    OPT_NUMBER,
    OPT_LISTEN,
    OPT_MAYBE_PATH,
    OPT_MAYBE_STR
} opt_type_t;

typedef struct {
    const char *name;
    opt_type_t type;
    size_t offset;   /* into config_t */
    const char *def; /* default, NULL = required */
    const char *help;
} opt_desc_t;

#define OPT(field, type, def, help)                                                                \
    {                                                                                              \
#field, type, offsetof(config_t, field), def, help                                         \
    }

static const opt_desc_t daemon_opts[] = {
    OPT(ingest, OPT_ENDPOINT, "tcp://127.0.0.1:7601", "ROUTER endpoint agents send batches to"),
    OPT(alerts, OPT_ENDPOINT, "tcp://127.0.0.1:7602", "PUB endpoint alerts are published on"),
    OPT(control, OPT_ENDPOINT, "tcp://127.0.0.1:7603", "ROUTER endpoint for clustermonctl"),
    OPT(state_dir, OPT_PATH, "clustermon-state", "directory for state files"),
    OPT(registry, OPT_PATH, NULL, "firm registry CSV"),
    OPT(timezone, OPT_STR, "Asia/Shanghai", "time zone of calendar periods"),
    OPT(log_level, OPT_STR, "info", "error | warn | info | debug"),
    OPT(above_scale_line, OPT_NUMBER, "20000000", "annual revenue (yuan) of an above-scale firm"),
    OPT(revenue_metric, OPT_STR, "revenue", "period metric that is revenue"),
    OPT(profit_metric, OPT_STR, "profit", "period metric that is profit (may be unconfigured)"),
    OPT(fsync, OPT_STR, "interval", "always | interval | never: when the WAL is fsynced"),
    OPT(fsync_interval_ms, OPT_NUMBER, "100", "with fsync = interval: how often"),
    OPT(group_writes, OPT_STR, "no",
        "yes: one WAL write per drain of the ingest socket, answers and alerts held until it"),
    OPT(snapshot_interval_s, OPT_NUMBER, "300", "seconds between state snapshots"),
    OPT(snapshot_wal_mb, OPT_NUMBER, "64", "also snapshot once the WAL grew this many MiB"),
    OPT(alerts_hwm, OPT_NUMBER, "100000", "alerts queued per subscriber before it loses some"),
    OPT(allow_plaintext, OPT_STR, "no", "yes: allow plain TCP on addresses other than loopback"),
    OPT(http, OPT_LISTEN, "", "host:port of the dashboard, /api/v1/ and /metrics; empty = off"),
    OPT(http_users, OPT_MAYBE_PATH, "",
        "dashboard logins (name:role:hash, clustermonctl passwd); set = every request logs in"),
    OPT(curve_secret_key, OPT_MAYBE_PATH, "",
        "the daemon's CURVE key pair (clustermonctl keygen); set = CURVE on every socket"),
    OPT(access, OPT_MAYBE_PATH, "", "CSV of gateway, subscriber, viewer and admin keys"),
    OPT(rate_per_connection, OPT_NUMBER, "50000",
        "samples/s one connection may send; 0 = no limit"),
    OPT(rate_global, OPT_NUMBER, "500000", "samples/s all connections together; 0 = no limit"),
    OPT(agent_lease_s, OPT_NUMBER, "60",
        "seconds an idle agent stream keeps its agent id from another stream"),
    OPT(user, OPT_MAYBE_STR, "", "user to run as once the sockets are bound"),
    OPT(group, OPT_MAYBE_STR, "", "group to run as (default: the user's)"),
    OPT(run_as_root, OPT_STR, "warn", "warn | refuse: what to do if left running as root"),
    OPT(peer_timeout, OPT_NUMBER, "60",
        "seconds after which a peer stalled in its handshake or in a frame is dropped"),
    OPT(future_slack_days, OPT_NUMBER, "0",
        "days: periods up to the month of now + this are taken, later ones refused"),
    OPT(ts_floor, OPT_STR, "2000-01-01",
        "YYYY-MM-DD: timestamps before it are refused (Unix seconds sent as ms)"),
    OPT(tiers, OPT_STR, "leading, backbone, potential, member",
        "the tiers the registry may use (of leading, backbone, potential, member)"),
    OPT(designations, OPT_MAYBE_STR, "", "the designations the registry may use; empty = any"),
};
#define NDAEMON_OPTS (sizeof daemon_opts / sizeof daemon_opts[0])

/* ---- parse state ---------------------------------------------------------- */

typedef enum {
    SEC_NONE,
    SEC_DAEMON,
    SEC_METRIC,
    SEC_CLUSTER,
    SEC_RULE,
    SEC_ALERTING,
    SEC_UPSTREAM,
    SEC_REMOTE_WRITE
} section_kind_t;

typedef struct {
    config_t *cfg;
    const char *path;
    const char *base_dir;
    int line; /* line the reader handed to inih last */
    section_kind_t sec;
    size_t idx; /* index of the current metric/cluster/rule */
    bool daemon_seen[NDAEMON_OPTS];
    int daemon_line[NDAEMON_OPTS];
    bool metric_has_kind[CONFIG_MAX_METRICS];
    rule_raw_t *raw_rules;
    size_t raw_cap, metrics_cap, clusters_cap, rules_cap;
    char *err;
    size_t errlen;
    bool failed;
    /* the reader's source: a FILE or a string */
    FILE *fp;
    const char *text;
} parse_t;

static void perr(parse_t *p, int line, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Records the first error only: later ones are usually its consequences. */
static void perr(parse_t *p, int line, const char *field, const char *fmt, ...)
{
    if (p->failed)
        return;
    p->failed = true;
    int n = snprintf(p->err, p->errlen, "%s:%d: %s: ", p->path, line, field);
    if (n < 0 || (size_t)n >= p->errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
        *--e = '\0';
    return s;
}

/* Opens the section named by a header line's text ("metric revenue"). */
static void section_open(parse_t *p, char *name)
{
    config_t *cfg = p->cfg;
    char *kind = trim(name);
    char *id = strpbrk(kind, " \t");
    if (id) {
        *id++ = '\0';
        id = trim(id);
    }
    const char *sec_field = kind;
    if (strcmp(kind, "daemon") == 0 && !id) {
        p->sec = SEC_DAEMON;
        return;
    }
    if (strcmp(kind, "alerting") == 0 && !id) {
        p->sec = SEC_ALERTING;
        return;
    }
    if (strcmp(kind, "upstream") == 0 && !id) {
        if (cfg->up_line) {
            perr(p, p->line, "upstream", "[upstream] is defined twice (first on line %d)",
                 cfg->up_line);
            return;
        }
        cfg->up_line = p->line;
        p->sec = SEC_UPSTREAM;
        return;
    }
    if (strcmp(kind, "remote_write") == 0 && !id) {
        if (cfg->rw_line) {
            perr(p, p->line, "remote_write", "[remote_write] is defined twice (first on line %d)",
                 cfg->rw_line);
            return;
        }
        cfg->rw_line = p->line;
        p->sec = SEC_REMOTE_WRITE;
        return;
    }
    if (strcmp(kind, "metric") != 0 && strcmp(kind, "cluster") != 0 && strcmp(kind, "rule") != 0) {
        perr(p, p->line, sec_field,
             "unknown section (expected [daemon], [alerting], [upstream], [remote_write], [metric "
             "NAME], [cluster ID] or [rule ID])");
        p->sec = SEC_NONE;
        return;
    }
    if (!id || !*id) {
        perr(p, p->line, sec_field, "section needs an id, e.g. [%s my-id]", kind);
        p->sec = SEC_NONE;
        return;
    }
    char why[128];
    if (ids_validate(id, strlen(id), why, sizeof why) != 0) {
        perr(p, p->line, sec_field, "'%s': %s", id, why);
        p->sec = SEC_NONE;
        return;
    }
    if (strcmp(kind, "metric") == 0) {
        if (config_metric_find(cfg, id, strlen(id)) >= 0) {
            perr(p, p->line, "metric", "'%s' is defined twice", id);
            return;
        }
        if (cfg->nmetrics == CONFIG_MAX_METRICS) {
            perr(p, p->line, "metric", "more than %d metrics", CONFIG_MAX_METRICS);
            return;
        }
        xgrow(&cfg->metrics, &p->metrics_cap, cfg->nmetrics + 1, sizeof *cfg->metrics);
        config_metric_t *m = &cfg->metrics[cfg->nmetrics];
        memset(m, 0, sizeof *m);
        m->name = xstrdup(id);
        m->unit = xstrdup("");
        m->line = p->line;
        p->sec = SEC_METRIC;
        p->idx = cfg->nmetrics++;
    } else if (strcmp(kind, "cluster") == 0) {
        if (config_cluster_find(cfg, id, strlen(id)) >= 0) {
            perr(p, p->line, "cluster", "'%s' is defined twice", id);
            return;
        }
        xgrow(&cfg->clusters, &p->clusters_cap, cfg->nclusters + 1, sizeof *cfg->clusters);
        config_cluster_t *c = &cfg->clusters[cfg->nclusters];
        memset(c, 0, sizeof *c);
        c->id = xstrdup(id);
        c->title = xstrdup(id);
        c->line = p->line;
        p->sec = SEC_CLUSTER;
        p->idx = cfg->nclusters++;
    } else {
        for (size_t i = 0; i < cfg->nrules; i++) {
            if (strcmp(cfg->rules[i].id, id) == 0) {
                perr(p, p->line, "rule", "'%s' is defined twice", id);
                return;
            }
        }
        xgrow(&cfg->rules, &p->rules_cap, cfg->nrules + 1, sizeof *cfg->rules);
        xgrow(&p->raw_rules, &p->raw_cap, cfg->nrules + 1, sizeof *p->raw_rules);
        config_rule_t *r = &cfg->rules[cfg->nrules];
        memset(r, 0, sizeof *r);
        memset(&p->raw_rules[cfg->nrules], 0, sizeof *p->raw_rules);
        r->id = xstrdup(id);
        r->line = p->line;
        p->sec = SEC_RULE;
        p->idx = cfg->nrules++;
    }
}

/* inih's reader: one line per call; we count it and catch section headers. */
static char *reader(char *buf, int size, void *stream)
{
    parse_t *p = stream;
    char *got;
    if (p->fp) {
        got = fgets(buf, size, p->fp);
    } else {
        if (!*p->text)
            return NULL;
        const char *nl = strchr(p->text, '\n');
        size_t n = nl ? (size_t)(nl - p->text) + 1 : strlen(p->text);
        if (n > (size_t)size - 1)
            n = (size_t)size - 1;
        memcpy(buf, p->text, n);
        buf[n] = '\0';
        p->text += n;
        got = buf;
    }
    if (!got)
        return NULL;
    /* a byte order mark, as Windows editors write: not part of the first line */
    if (p->line == 0 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
        memmove(buf, buf + 3, strlen(buf + 3) + 1);
    p->line++;
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s", buf);
    char *s = trim(tmp);
    if (*s == '[') {
        char *close = strchr(s, ']');
        if (close) {
            *close = '\0';
            section_open(p, s + 1);
        }
    }
    return got;
}

int config_parse_date(const char *s, int *ret_y, int *ret_m, int *ret_d)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, m, d, n = 0;
    if (strlen(s) != 10 || sscanf(s, "%4d-%2d-%2d%n", &y, &m, &d, &n) != 3 || n != 10 ||
        s[4] != '-' || s[7] != '-')
        return -1;
    if (y < PROTO_MIN_YEAR || y > PROTO_MAX_YEAR || m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
        return -1;
    *ret_y = y;
    *ret_m = m;
    *ret_d = d;
    return 0;
}

static int parse_number(const char *v, double *ret)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (end == v || *trim(end) != '\0' || errno == ERANGE || !isfinite(d))
        return -1;
    *ret = d;
    return 0;
}

static char *resolve_path(const parse_t *p, const char *v)
{
    if (v[0] == '/' || !p->base_dir)
        return xstrdup(v);
    size_t n = strlen(p->base_dir) + strlen(v) + 2;
    char *s = xmalloc(n);
    snprintf(s, n, "%s/%s", p->base_dir, v);
    return s;
}

static void set_daemon_opt(parse_t *p, size_t i, const char *value)
{
    const opt_desc_t *o = &daemon_opts[i];
    char **slot = (char **)((char *)p->cfg + o->offset);
    char field[64];
    snprintf(field, sizeof field, "daemon.%s", o->name);
    switch (o->type) {
    case OPT_NUMBER: {
        double d;
        if (parse_number(value, &d) != 0 || d < 0) {
            perr(p, p->line, field, "'%s' is not a non-negative number", value);
            return;
        }
        *(double *)(void *)slot = d;
        return;
    }
    case OPT_ENDPOINT:
        if (strncmp(value, "tcp://", 6) != 0 && strncmp(value, "ipc://", 6) != 0 &&
            strncmp(value, "inproc://", 9) != 0) {
            perr(p, p->line, field, "'%s' is not a ZeroMQ endpoint (tcp://, ipc:// or inproc://)",
                 value);
            return;
        }
        /* ZeroMQ binds IP addresses and interface names, not host names: it
         * refuses tcp://localhost:P ("No such device"). localhost means the
         * IPv4 loopback here, as it does for daemon.http. */
        if (strncmp(value, "tcp://localhost:", 16) == 0) {
            free(*slot);
            size_t n = strlen(value) + 1;
            *slot = xmalloc(n);
            snprintf(*slot, n, "tcp://127.0.0.1:%s", value + 16);
            return;
        }
        break;
    case OPT_LISTEN: {
        char why[128];
        if (*value && http_listen_parse(value, NULL, why, sizeof why) != 0) {
            perr(p, p->line, field, "'%s': %s", value, why);
            return;
        }
        break;
    }
    case OPT_MAYBE_STR: break;
    case OPT_MAYBE_PATH:
        if (!*value) {
            free(*slot);
            *slot = xstrdup("");
            return;
        }
        break;
    case OPT_STR:
    case OPT_PATH:
        if (!*value) {
            perr(p, p->line, field, "must not be empty");
            return;
        }
        break;
    }
    free(*slot);
    *slot =
        o->type == OPT_PATH || o->type == OPT_MAYBE_PATH ? resolve_path(p, value) : xstrdup(value);
}

static void handle_daemon(parse_t *p, const char *name, const char *value)
{
    for (size_t i = 0; i < NDAEMON_OPTS; i++) {
        if (strcmp(daemon_opts[i].name, name) != 0)
            continue;
        if (p->daemon_seen[i]) {
            char field[64];
            snprintf(field, sizeof field, "daemon.%s", name);
            perr(p, p->line, field, "set twice (first on line %d)", p->daemon_line[i]);
            return;
        }
        p->daemon_seen[i] = true;
        p->daemon_line[i] = p->line;
        set_daemon_opt(p, i, value);
        return;
    }
    char field[96];
    snprintf(field, sizeof field, "daemon.%.80s", name);
    perr(p, p->line, field, "unknown option");
}

static void handle_metric(parse_t *p, const char *name, const char *value)
{
    config_metric_t *m = &p->cfg->metrics[p->idx];
    if (strcmp(name, "kind") == 0) {
        if (strcmp(value, "period") == 0)
            m->kind = METRIC_PERIOD;
        else if (strcmp(value, "reading") == 0)
            m->kind = METRIC_READING;
        else {
            perr(p, p->line, "metric.kind", "'%s' is not period or reading", value);
            return;
        }
        p->metric_has_kind[p->idx] = true;
    } else if (strcmp(name, "unit") == 0) {
        free(m->unit);
        m->unit = xstrdup(value);
    } else if (strcmp(name, "min") == 0 || strcmp(name, "max") == 0) {
        bool is_min = name[1] == 'i';
        double d;
        if (parse_number(value, &d) != 0 || d < -PROTO_MAX_ABS_VALUE || d > PROTO_MAX_ABS_VALUE) {
            perr(p, p->line, is_min ? "metric.min" : "metric.max",
                 "'%s' is not a number within +-1e14", value);
            return;
        }
        *(is_min ? &m->min : &m->max) = d;
        *(is_min ? &m->has_min : &m->has_max) = true;
        if (m->has_min && m->has_max && m->min > m->max)
            perr(p, p->line, is_min ? "metric.min" : "metric.max",
                 "[metric %s]: min %g is above max %g", m->name, m->min, m->max);
    } else {
        perr(p, p->line, "metric",
             "unknown key '%s' in [metric %s] (expected kind, unit, min, max)", name, m->name);
    }
}

static void handle_cluster(parse_t *p, const char *name, const char *value)
{
    config_cluster_t *c = &p->cfg->clusters[p->idx];
    if (strcmp(name, "title") == 0) {
        free(c->title);
        c->title = xstrdup(value);
    } else if (strcmp(name, "chains") == 0) {
        char *copy = xstrdup(value), *save = NULL;
        size_t cap = c->nchains;
        for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            char *id = trim(tok);
            char why[128];
            if (ids_validate(id, strlen(id), why, sizeof why) != 0) {
                perr(p, p->line, "cluster.chains", "'%s': %s", id, why);
                break;
            }
            if (config_chain_find(c, id, strlen(id)) >= 0) {
                perr(p, p->line, "cluster.chains", "'%s' is listed twice", id);
                break;
            }
            if (c->nchains == CONFIG_MAX_CHAINS) {
                perr(p, p->line, "cluster.chains", "more than %d chains", CONFIG_MAX_CHAINS);
                break;
            }
            xgrow(&c->chains, &cap, c->nchains + 1, sizeof *c->chains);
            c->chains[c->nchains++] = xstrdup(id);
        }
        free(copy);
    } else {
        perr(p, p->line, "cluster", "unknown key '%s' in [cluster %s] (expected title, chains)",
             name, c->id);
    }
}

static void handle_rule(parse_t *p, const char *name, const char *value)
{
    char why[256], field[96 + PROTO_MAX_ID_LEN];
    if (ruleconf_set(&p->raw_rules[p->idx], name, value, p->line, why, sizeof why) != 0) {
        snprintf(field, sizeof field, "rule.%s.%.80s", p->cfg->rules[p->idx].id, name);
        perr(p, p->line, field, "%s", why);
    }
}

static void handle_alerting(parse_t *p, const char *name, const char *value)
{
    config_t *cfg = p->cfg;
    char field[96];
    snprintf(field, sizeof field, "alerting.%.80s", name);
    double d;
    if (strcmp(name, "flap_window") == 0) {
        if (ruleconf_parse_duration(value, &cfg->flap_window_ms) != 0 || cfg->flap_window_ms <= 0)
            perr(p, p->line, field, "'%s' is not a duration (e.g. 30m, 1h)", value);
    } else if (strcmp(name, "flap_max") == 0 || strcmp(name, "group_max") == 0) {
        if (parse_number(value, &d) != 0 || d < 1 || d > 1e6 || d != (double)(uint32_t)d) {
            perr(p, p->line, field, "'%s' is not a whole number >= 1", value);
            return;
        }
        if (name[0] == 'f')
            cfg->flap_max = (uint32_t)d;
        else
            cfg->group_max = (uint32_t)d;
    } else if (strcmp(name, "history_retention") == 0) {
        if (strcmp(value, "0") == 0)
            cfg->history_retention_ms = 0;
        else if (ruleconf_parse_duration(value, &cfg->history_retention_ms) != 0 ||
                 cfg->history_retention_ms <= 0)
            perr(p, p->line, field, "'%s' is not a duration (e.g. 90d, 400d) or 0 (for ever)",
                 value);
    } else {
        perr(p, p->line, field,
             "unknown option (expected flap_window, flap_max, group_max, history_retention)");
    }
}

/* [upstream]: strings kept as given (paths resolved), checked as a whole in
 * validate_upstream once every metric is known. */
static void handle_upstream(parse_t *p, const char *name, const char *value)
{
    config_t *cfg = p->cfg;
    char field[96];
    snprintf(field, sizeof field, "upstream.%.80s", name);
    struct {
        const char *name;
        char **slot;
        bool path;
    } const strs[] = {
        {"endpoint", &cfg->up_endpoints, false},   {"city", &cfg->up_city, false},
        {"server_key", &cfg->up_server_key, true}, {"key", &cfg->up_key, true},
        {"metrics", &cfg->up_metrics, false},      {"state_dir", &cfg->up_state_dir, true},
        {"agent_id", &cfg->up_agent_id, false},
    };
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        if (strcmp(name, strs[i].name) != 0)
            continue;
        if (*strs[i].slot) {
            perr(p, p->line, field, "set twice");
            return;
        }
        if (!*value) {
            perr(p, p->line, field, "must not be empty");
            return;
        }
        /* a server key may be the Z85 text itself: only a file name is a path */
        bool path = strs[i].path && !(strs[i].slot == &cfg->up_server_key &&
                                      keyfile_z85_valid(value, strlen(value)));
        *strs[i].slot = path ? resolve_path(p, value) : xstrdup(value);
        return;
    }
    double d;
    if (strcmp(name, "timeout_ms") == 0 || strcmp(name, "window") == 0) {
        bool window = name[0] == 'w';
        if (parse_number(value, &d) != 0 || d != (double)(long)d ||
            (window ? d < 1 || d > PROTO_MAX_WINDOW : d < 100 || d > 600000)) {
            perr(p, p->line, field, "'%s' is not a whole number from %s", value,
                 window ? "1 to 64" : "100 to 600000");
            return;
        }
        *(window ? &cfg->up_window : &cfg->up_timeout_ms) = d;
        return;
    }
    perr(p, p->line, field,
         "unknown option (expected endpoint, city, server_key, key, metrics, state_dir, agent_id, "
         "timeout_ms, window)");
}

/* [remote_write]: as [upstream], checked as a whole in validate_remote_write. */
static void handle_remote_write(parse_t *p, const char *name, const char *value)
{
    config_t *cfg = p->cfg;
    char field[96];
    snprintf(field, sizeof field, "remote_write.%.80s", name);
    struct {
        const char *name;
        char **slot;
        bool path;
    } const strs[] = {
        {"url", &cfg->rw_url, false},
        {"user", &cfg->rw_user, false},
        {"password_file", &cfg->rw_password_file, true},
        {"metrics", &cfg->rw_metrics, false},
        {"state_dir", &cfg->rw_state_dir, true},
    };
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        if (strcmp(name, strs[i].name) != 0)
            continue;
        if (*strs[i].slot) {
            perr(p, p->line, field, "set twice");
            return;
        }
        if (!*value) {
            perr(p, p->line, field, "must not be empty");
            return;
        }
        *strs[i].slot = strs[i].path ? resolve_path(p, value) : xstrdup(value);
        return;
    }
    double d;
    if (strcmp(name, "batch_size") == 0 || strcmp(name, "timeout_ms") == 0) {
        bool batch = name[0] == 'b';
        if (parse_number(value, &d) != 0 || d != (double)(long)d ||
            (batch ? d < 1 || d > 100000 : d < 100 || d > 600000)) {
            perr(p, p->line, field, "'%s' is not a whole number from %s", value,
                 batch ? "1 to 100000" : "100 to 600000");
            return;
        }
        *(batch ? &cfg->rw_batch : &cfg->rw_timeout_ms) = d;
        return;
    }
    perr(p, p->line, field,
         "unknown option (expected url, user, password_file, metrics, batch_size, state_dir, "
         "timeout_ms)");
}

/* The next item of a comma-separated list at *q, blanks around it trimmed:
 * true with *item and *len set (an empty item has len 0) and *q past it;
 * false at the end of the list. */
static bool list_next(const char **q, const char **item, size_t *len)
{
    *q += strspn(*q, " \t,");
    if (**q == '\0')
        return false;
    size_t n = strcspn(*q, ",");
    size_t m = n;
    while (m > 0 && ((*q)[m - 1] == ' ' || (*q)[m - 1] == '\t'))
        m--;
    *item = *q;
    *len = m;
    *q += n;
    return true;
}

/* Whether name[0..len) is in a comma-separated list ("all" or NULL: every name). */
static bool in_list(const char *list, const char *name, size_t len)
{
    if (!list || strcmp(list, "all") == 0)
        return true;
    const char *item;
    size_t m;
    for (const char *q = list; list_next(&q, &item, &m);)
        if (m && m == len && memcmp(item, name, len) == 0)
            return true;
    return false;
}

bool config_remote_write_sends(const config_t *cfg, const char *name, size_t len)
{
    return in_list(cfg->rw_metrics, name, len);
}

/* A forwarder's `metrics = a, b, c` (or `all`, or unset): every name must be a
 * configured metric; false after reporting the first that is not. */
static bool metric_list_ok(parse_t *p, int line, const config_t *cfg, const char *list,
                           const char *field)
{
    if (!list || strcmp(list, "all") == 0)
        return true;
    const char *item;
    size_t m;
    for (const char *q = list; list_next(&q, &item, &m);) {
        if (m && config_metric_find(cfg, item, m) < 0) {
            perr(p, line, field, "'%.*s' is not a configured metric", (int)m, item);
            return false;
        }
    }
    return true;
}

static void validate_remote_write(parse_t *p)
{
    config_t *cfg = p->cfg;
    int line = cfg->rw_line;
    if (!line)
        return;
    char why[512];
    rw_url_t u;
    if (!cfg->rw_url) {
        perr(p, line, "remote_write.url",
             "required in [remote_write] (the receiver, e.g. http://127.0.0.1:9090/api/v1/write)");
        return;
    }
    if (rwencode_url(cfg->rw_url, &u, why, sizeof why) != 0) {
        perr(p, line, "remote_write.url", "%s", why);
        return;
    }
    if (!cfg->rw_user != !cfg->rw_password_file) {
        perr(p, line, cfg->rw_user ? "remote_write.password_file" : "remote_write.user",
             "basic auth needs both user and password_file");
        return;
    }
    if (!metric_list_ok(p, line, cfg, cfg->rw_metrics, "remote_write.metrics"))
        return;
    if (!cfg->rw_state_dir) {
        size_t n = strlen(cfg->state_dir) + sizeof "/remote_write";
        cfg->rw_state_dir = xmalloc(n);
        snprintf(cfg->rw_state_dir, n, "%s/remote_write", cfg->state_dir);
    }
    if (cfg->rw_batch == 0)
        cfg->rw_batch = 2000;
    if (cfg->rw_timeout_ms == 0)
        cfg->rw_timeout_ms = 10000;
}

bool config_upstream_forwards(const config_t *cfg, const char *name, size_t len)
{
    return in_list(cfg->up_metrics, name, len);
}

static void validate_upstream(parse_t *p)
{
    config_t *cfg = p->cfg;
    int line = cfg->up_line;
    if (!line)
        return;
    if (!cfg->up_endpoints) {
        perr(p, line, "upstream.endpoint",
             "required in [upstream] (the province daemon's ingest endpoint(s), comma-separated)");
        return;
    }
    for (const char *q = cfg->up_endpoints; *q;) {
        q += strspn(q, " \t,");
        size_t n = strcspn(q, ", \t");
        if (n && !(strncmp(q, "tcp://", 6) == 0 || strncmp(q, "ipc://", 6) == 0 ||
                   strncmp(q, "inproc://", 9) == 0)) {
            perr(p, line, "upstream.endpoint", "'%.*s' is not a ZeroMQ endpoint", (int)n, q);
            return;
        }
        q += n;
    }
    char why[128];
    if (!cfg->up_city || ids_validate(cfg->up_city, strlen(cfg->up_city), why, sizeof why) != 0) {
        perr(p, line, "upstream.city", "%s%s", cfg->up_city ? "" : "required: this city's id",
             cfg->up_city ? why : "");
        return;
    }
    if (!cfg->up_server_key != !cfg->up_key) {
        perr(p, line, cfg->up_key ? "upstream.server_key" : "upstream.key",
             "server_key and key go together (CURVE to the province), or neither (plain)");
        return;
    }
    if (!metric_list_ok(p, line, cfg, cfg->up_metrics, "upstream.metrics"))
        return;
    if (!cfg->up_agent_id)
        cfg->up_agent_id = xstrdup(cfg->up_city);
    if (ids_validate(cfg->up_agent_id, strlen(cfg->up_agent_id), why, sizeof why) != 0) {
        perr(p, line, "upstream.agent_id", "'%s': %s", cfg->up_agent_id, why);
        return;
    }
    if (!cfg->up_state_dir) {
        size_t n = strlen(cfg->state_dir) + sizeof "/upstream";
        cfg->up_state_dir = xmalloc(n);
        snprintf(cfg->up_state_dir, n, "%s/upstream", cfg->state_dir);
    }
    if (cfg->up_timeout_ms == 0)
        cfg->up_timeout_ms = 3000;
    if (cfg->up_window == 0)
        cfg->up_window = 16;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
    parse_t *p = user;
    (void)section; /* the reader already opened it, with its line */
    if (p->failed)
        return 1;
    switch (p->sec) {
    case SEC_DAEMON: handle_daemon(p, name, value); break;
    case SEC_METRIC: handle_metric(p, name, value); break;
    case SEC_CLUSTER: handle_cluster(p, name, value); break;
    case SEC_RULE: handle_rule(p, name, value); break;
    case SEC_ALERTING: handle_alerting(p, name, value); break;
    case SEC_UPSTREAM: handle_upstream(p, name, value); break;
    case SEC_REMOTE_WRITE: handle_remote_write(p, name, value); break;
    case SEC_NONE: perr(p, p->line, name, "key outside a known section"); break;
    }
    return 1;
}

/* ---- validation of the whole ---------------------------------------------- */

static bool timezone_known(const char *tz)
{
    if (strcmp(tz, "UTC") == 0)
        return true;
    if (tz[0] == '/' || strstr(tz, ".."))
        return false;
    char path[512];
    struct stat st;
    snprintf(path, sizeof path, "/usr/share/zoneinfo/%s", tz);
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The line a [daemon] option was set on, or fallback if it was left at its default. */
static int daemon_opt_line(const parse_t *p, const char *name, int fallback)
{
    for (size_t i = 0; i < NDAEMON_OPTS; i++)
        if (strcmp(daemon_opts[i].name, name) == 0 && p->daemon_seen[i])
            return p->daemon_line[i];
    return fallback;
}

/* True for tcp://127.x.x.x:..., tcp://localhost:..., tcp://[::1]:... and for
 * ipc:// and inproc://: endpoints nobody else on the network can read. */
static bool endpoint_private(const char *ep)
{
    if (strncmp(ep, "tcp://", 6) != 0)
        return true;
    const char *h = ep + 6;
    return strncmp(h, "127.", 4) == 0 || strncmp(h, "localhost:", 10) == 0 ||
           strncmp(h, "[::1]:", 6) == 0;
}

static bool sockaddr_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
    return ss->ss_family == AF_INET6 &&
           IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ss)->sin6_addr);
}

static void validate(parse_t *p)
{
    config_t *cfg = p->cfg;
    for (size_t i = 0; i < NDAEMON_OPTS && !p->failed; i++) {
        if (p->daemon_seen[i])
            continue;
        if (!daemon_opts[i].def) {
            char field[64];
            snprintf(field, sizeof field, "daemon.%s", daemon_opts[i].name);
            perr(p, p->line, field, "required (%s)", daemon_opts[i].help);
        } else {
            set_daemon_opt(p, i, daemon_opts[i].def);
        }
    }
    if (p->failed)
        return;
    if (strcmp(cfg->allow_plaintext, "yes") != 0 && strcmp(cfg->allow_plaintext, "no") != 0) {
        perr(p, daemon_opt_line(p, "allow_plaintext", 1), "daemon.allow_plaintext",
             "'%s' is not yes or no", cfg->allow_plaintext);
        return;
    }
    if (strcmp(cfg->group_writes, "yes") != 0 && strcmp(cfg->group_writes, "no") != 0) {
        perr(p, daemon_opt_line(p, "group_writes", 1), "daemon.group_writes",
             "'%s' is not yes or no", cfg->group_writes);
        return;
    }
    if (strcmp(cfg->run_as_root, "warn") != 0 && strcmp(cfg->run_as_root, "refuse") != 0) {
        perr(p, daemon_opt_line(p, "run_as_root", 1), "daemon.run_as_root",
             "'%s' is not warn or refuse", cfg->run_as_root);
        return;
    }
    if (*cfg->group && !*cfg->user) {
        perr(p, daemon_opt_line(p, "group", 1), "daemon.group", "needs daemon.user as well");
        return;
    }
    if (*cfg->access && !*cfg->curve_secret_key) {
        perr(p, daemon_opt_line(p, "access", 1), "daemon.access",
             "keys need CURVE: set curve_secret_key too (clustermonctl keygen makes one)");
        return;
    }
    /* With CURVE every socket is encrypted and authenticated, wherever it binds. */
    if (strcmp(cfg->allow_plaintext, "yes") != 0 && !*cfg->curve_secret_key) {
        const char *const names[] = {"ingest", "alerts", "control"};
        const char *const eps[] = {cfg->ingest, cfg->alerts, cfg->control};
        for (int k = 0; k < 3; k++) {
            if (endpoint_private(eps[k]))
                continue;
            char field[32];
            snprintf(field, sizeof field, "daemon.%s", names[k]);
            perr(p, daemon_opt_line(p, names[k], 1), field,
                 "'%s' is plain TCP that others on the network can read and write: bind "
                 "127.0.0.1 or ipc://, set curve_secret_key (CURVE), or set allow_plaintext = yes",
                 eps[k]);
            return;
        }
    }
    /* /metrics is plain HTTP whatever the sockets speak: the same rule,
     * unless logins guard it (http_users, meant behind a TLS proxy) */
    if (*cfg->http && strcmp(cfg->allow_plaintext, "yes") != 0 && !*cfg->http_users) {
        struct sockaddr_storage ss;
        char why[128];
        if (http_listen_parse(cfg->http, &ss, why, sizeof why) == 0 && !sockaddr_loopback(&ss)) {
            perr(p, daemon_opt_line(p, "http", 1), "daemon.http",
                 "'%s' is plain HTTP that others on the network can read: bind 127.0.0.1, set "
                 "http_users (logins, behind a TLS proxy), or set allow_plaintext = yes",
                 cfg->http);
            return;
        }
    }
    static const char *const fsync_names[] = {"always", "interval", "never"};
    cfg->fsync_policy = -1;
    for (int k = 0; k < 3; k++)
        if (strcmp(cfg->fsync, fsync_names[k]) == 0)
            cfg->fsync_policy = k;
    if (cfg->fsync_policy < 0) {
        perr(p, 1, "daemon.fsync", "'%s' is not always, interval or never", cfg->fsync);
        return;
    }
    if (cfg->fsync_interval_ms < 1 || cfg->snapshot_interval_s < 1 || cfg->snapshot_wal_mb < 1) {
        perr(p, 1, "daemon",
             "fsync_interval_ms, snapshot_interval_s and snapshot_wal_mb must be >= 1");
        return;
    }
    if (cfg->agent_lease_s < 1) {
        perr(p, daemon_opt_line(p, "agent_lease_s", 1), "daemon.agent_lease_s",
             "%g is below 1 second", cfg->agent_lease_s);
        return;
    }
    if (!(cfg->peer_timeout >= 1 && cfg->peer_timeout <= 3600)) {
        perr(p, daemon_opt_line(p, "peer_timeout", 1), "daemon.peer_timeout",
             "%g is not a number of seconds from 1 to 3600", cfg->peer_timeout);
        return;
    }
    if (!(cfg->future_slack_days >= 0 && cfg->future_slack_days <= 100000)) {
        perr(p, daemon_opt_line(p, "future_slack_days", 1), "daemon.future_slack_days",
             "%g is not a number of days from 0 to 100000", cfg->future_slack_days);
        return;
    }
    int fy, fm, fd;
    if (config_parse_date(cfg->ts_floor, &fy, &fm, &fd) != 0) {
        perr(p, daemon_opt_line(p, "ts_floor", 1), "daemon.ts_floor",
             "'%s' is not a date YYYY-MM-DD (year 1970..2199)", cfg->ts_floor);
        return;
    }
    log_level_t lvl;
    if (log_level_parse(cfg->log_level, &lvl) != 0) {
        perr(p, daemon_opt_line(p, "log_level", 1), "daemon.log_level",
             "'%s' is not error, warn, info or debug", cfg->log_level);
        return;
    }
    if (!timezone_known(cfg->timezone)) {
        perr(p, daemon_opt_line(p, "timezone", 1), "daemon.timezone",
             "unknown time zone '%s' (no /usr/share/zoneinfo/%s; is tzdata installed?)",
             cfg->timezone, cfg->timezone);
        return;
    }
    for (size_t i = 0; i < cfg->nmetrics; i++) {
        if (!p->metric_has_kind[i]) {
            perr(p, cfg->metrics[i].line, "metric.kind",
                 "[metric %s] needs kind = period | reading", cfg->metrics[i].name);
            return;
        }
    }
    for (size_t i = 0; i < cfg->nclusters; i++) {
        if (cfg->clusters[i].nchains == 0) {
            perr(p, cfg->clusters[i].line, "cluster.chains",
                 "[cluster %s] needs chains = a, b, ...", cfg->clusters[i].id);
            return;
        }
    }
    if (cfg->nclusters == 0) {
        perr(p, p->line, "cluster", "no [cluster ID] section: nothing to monitor");
        return;
    }
    cfg->revenue_idx = config_metric_find(cfg, cfg->revenue_metric, strlen(cfg->revenue_metric));
    if (cfg->revenue_idx < 0 || cfg->metrics[cfg->revenue_idx].kind != METRIC_PERIOD) {
        perr(p, daemon_opt_line(p, "revenue_metric", 1), "daemon.revenue_metric",
             "'%s' is not a configured period metric", cfg->revenue_metric);
        return;
    }
    cfg->profit_idx = config_metric_find(cfg, cfg->profit_metric, strlen(cfg->profit_metric));
    if (cfg->profit_idx >= 0 && cfg->metrics[cfg->profit_idx].kind != METRIC_PERIOD) {
        perr(p, daemon_opt_line(p, "profit_metric", cfg->metrics[cfg->profit_idx].line),
             "daemon.profit_metric", "'%s' is not a period metric", cfg->profit_metric);
        return;
    }
    for (size_t i = 0; i < cfg->nrules; i++) {
        char field[96 + PROTO_MAX_ID_LEN], why[256];
        int line;
        if (ruleconf_resolve(cfg, &cfg->rules[i], &p->raw_rules[i], &line, field, sizeof field, why,
                             sizeof why) != 0) {
            perr(p, line, field, "%s", why);
            return;
        }
    }
    validate_upstream(p);
    validate_remote_write(p);
}

static void free_raw_rules(parse_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ruleconf_raw_free(&p->raw_rules[i]);
    free(p->raw_rules);
}

int config_load(const char *path, const char *text, const char *base_dir, config_t **ret, char *err,
                size_t errlen)
{
    config_t *cfg = xcalloc(1, sizeof *cfg);
    cfg->path = xstrdup(path);
    cfg->revenue_idx = cfg->profit_idx = -1;
    cfg->flap_window_ms = 3600 * 1000;
    cfg->flap_max = 6;
    cfg->group_max = 5;
    cfg->history_retention_ms = 400LL * 86400 * 1000;
    parse_t p = {.cfg = cfg, .path = path, .base_dir = base_dir, .err = err, .errlen = errlen};
    err[0] = '\0';

    if (text) {
        p.text = text;
    } else {
        p.fp = fopen(path, "r");
        if (!p.fp) {
            snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
            config_destroy(&cfg);
            return -1;
        }
    }
    int rc = ini_parse_stream(reader, &p, handler, &p);
    if (p.fp)
        fclose(p.fp);
    if (rc > 0 && !p.failed)
        perr(&p, rc, "syntax", "not a [section] or key = value line");
    else if (rc < 0 && !p.failed)
        perr(&p, 0, "file", "inih could not read it (%d)", rc);
    if (!p.failed)
        validate(&p);
    free_raw_rules(&p, cfg->nrules);
    if (p.failed) {
        config_destroy(&cfg);
        return -1;
    }
    *ret = cfg;
    return 0;
}

void config_destroy(config_t **pcfg)
{
    config_t *cfg = *pcfg;
    if (!cfg)
        return;
    for (size_t i = 0; i < NDAEMON_OPTS; i++) {
        if (daemon_opts[i].type != OPT_NUMBER)
            free(*(char **)((char *)cfg + daemon_opts[i].offset));
    }
    for (size_t i = 0; i < cfg->nmetrics; i++) {
        free(cfg->metrics[i].name);
        free(cfg->metrics[i].unit);
    }
    for (size_t i = 0; i < cfg->nclusters; i++) {
        free(cfg->clusters[i].id);
        free(cfg->clusters[i].title);
        for (size_t j = 0; j < cfg->clusters[i].nchains; j++)
            free(cfg->clusters[i].chains[j]);
        free(cfg->clusters[i].chains);
    }
    for (size_t i = 0; i < cfg->nrules; i++) {
        free(cfg->rules[i].id);
        free(cfg->rules[i].city);
    }
    char *const up[] = {cfg->up_endpoints, cfg->up_city,      cfg->up_server_key, cfg->up_key,
                        cfg->up_metrics,   cfg->up_state_dir, cfg->up_agent_id};
    for (size_t i = 0; i < sizeof up / sizeof up[0]; i++)
        free(up[i]);
    char *const rw[] = {cfg->rw_url, cfg->rw_user, cfg->rw_password_file, cfg->rw_metrics,
                        cfg->rw_state_dir};
    for (size_t i = 0; i < sizeof rw / sizeof rw[0]; i++)
        free(rw[i]);
    free(cfg->metrics);
    free(cfg->clusters);
    free(cfg->rules);
    free(cfg->path);
    free(cfg);
    *pcfg = NULL;
}

static bool name_eq(const char *a, const char *b, size_t len)
{
    return strlen(a) == len && memcmp(a, b, len) == 0;
}

int config_metric_find(const config_t *cfg, const char *name, size_t len)
{
    for (size_t i = 0; i < cfg->nmetrics; i++)
        if (name_eq(cfg->metrics[i].name, name, len))
            return (int)i;
    return -1;
}

int config_cluster_find(const config_t *cfg, const char *id, size_t len)
{
    for (size_t i = 0; i < cfg->nclusters; i++)
        if (name_eq(cfg->clusters[i].id, id, len))
            return (int)i;
    return -1;
}

int config_chain_find(const config_cluster_t *cl, const char *id, size_t len)
{
    for (size_t i = 0; i < cl->nchains; i++)
        if (name_eq(cl->chains[i], id, len))
            return (int)i;
    return -1;
}

const char *config_metric_kind_name(metric_kind_t k)
{
    return k == METRIC_READING ? "reading" : "period";
}
