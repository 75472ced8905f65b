/* reload.c -- see reload.h. */
#include "daemon/reload.h"

#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/log.h"
#include "daemon/members.h"
#include "daemon/server.h"
#include "daemon/source.h"
#include "daemon/xalloc.h"

/* Settings that belong to what is already open, or that were used once at
 * start-up: kept until a restart. */
#define LIVE(field, number)                                                                        \
    {                                                                                              \
#field, offsetof(config_t, field), number                                                  \
    }
static const struct {
    const char *name;
    size_t offset;
    bool number; /* a double, else a string */
} live_settings[] = {
    LIVE(ingest, false),      LIVE(alerts, false),           LIVE(control, false),
    LIVE(state_dir, false),   LIVE(timezone, false),         LIVE(fsync, false),
    LIVE(http, false),        LIVE(curve_secret_key, false), LIVE(user, false),
    LIVE(group, false),       LIVE(run_as_root, false),      LIVE(alerts_hwm, true),
    LIVE(peer_timeout, true), LIVE(http_users, false),
};
#undef LIVE

/* Puts the running values back into cfg and lists what differed in rs. */
static void keep_live_settings(const config_t *old, config_t *cfg, reload_status_t *rs)
{
    rs->npending = 0;
    for (size_t i = 0; i < sizeof live_settings / sizeof live_settings[0]; i++) {
        size_t off = live_settings[i].offset;
        char was_s[RELOAD_VALUE_LEN], now_s[RELOAD_VALUE_LEN];
        if (live_settings[i].number) {
            double *now = (double *)((char *)cfg + off);
            double was = *(const double *)((const char *)old + off);
            if (*now == was)
                continue;
            snprintf(was_s, sizeof was_s, "%g", was);
            snprintf(now_s, sizeof now_s, "%g", *now);
            *now = was;
        } else {
            char **now = (char **)((char *)cfg + off);
            char *const *was = (char *const *)((const char *)old + off);
            if (!*was || !*now || strcmp(*now, *was) == 0)
                continue;
            snprintf(was_s, sizeof was_s, "%s", *was);
            snprintf(now_s, sizeof now_s, "%s", *now);
            free(*now);
            *now = xstrdup(*was);
        }
        log_warnx("reload: [daemon] %s changed from '%s' to '%s': it takes effect after a restart",
                  live_settings[i].name, was_s, now_s);
        if (rs->npending < RELOAD_MAX_PENDING) {
            reload_change_t *c = &rs->pending[rs->npending++];
            snprintf(c->setting, sizeof c->setting, "daemon.%s", live_settings[i].name);
            memcpy(c->running, was_s, sizeof c->running);
            memcpy(c->configured, now_s, sizeof c->configured);
        }
    }
    cfg->fsync_policy = old->fsync_policy;
    /* [upstream]: the forwarder runs as it started (upstream.h) */
    struct {
        const char *name;
        size_t offset;
    } const up[] = {
        {"endpoint", offsetof(config_t, up_endpoints)},
        {"city", offsetof(config_t, up_city)},
        {"server_key", offsetof(config_t, up_server_key)},
        {"key", offsetof(config_t, up_key)},
        {"metrics", offsetof(config_t, up_metrics)},
        {"state_dir", offsetof(config_t, up_state_dir)},
        {"agent_id", offsetof(config_t, up_agent_id)},
    };
    for (size_t i = 0; i < sizeof up / sizeof up[0]; i++) {
        char **now = (char **)((char *)cfg + up[i].offset);
        char *const *was = (char *const *)((const char *)old + up[i].offset);
        if ((!*now && !*was) || (*now && *was && strcmp(*now, *was) == 0))
            continue;
        log_warnx("reload: [upstream] %s changed from '%s' to '%s': it takes effect after a "
                  "restart",
                  up[i].name, *was ? *was : "", *now ? *now : "");
        if (rs->npending < RELOAD_MAX_PENDING) {
            reload_change_t *c = &rs->pending[rs->npending++];
            snprintf(c->setting, sizeof c->setting, "upstream.%s", up[i].name);
            snprintf(c->running, sizeof c->running, "%s", *was ? *was : "");
            snprintf(c->configured, sizeof c->configured, "%s", *now ? *now : "");
        }
        free(*now);
        *now = *was ? xstrdup(*was) : NULL;
    }
    cfg->up_timeout_ms = old->up_timeout_ms;
    cfg->up_window = old->up_window;
    cfg->up_line = old->up_line;
}

/* Moves firm figures to the new registry's and config's indexes; former
 * members' too (members_carry put them in reg). */
static agg_t *carry_figures(const server_t *srv, const config_t *cfg, const registry_t *reg,
                            size_t *ret_dropped)
{
    const agg_t *old = srv->agg;
    agg_t *agg = agg_new(reg->nall, cfg->nmetrics);
    size_t dropped = 0;
    for (size_t f = 0; f < old->nfirms; f++) {
        const char *id = srv->reg->firms[f].id;
        int g = registry_find_any(reg, id, strlen(id));
        for (size_t m = 0; m < old->nmetrics; m++) {
            agg_series_t *s = &old->series[f * old->nmetrics + m];
            if (!s->nyears && !s->count)
                continue;
            const config_metric_t *om = &srv->cfg->metrics[m];
            int k = config_metric_find(cfg, om->name, strlen(om->name));
            if (g < 0 || k < 0 || cfg->metrics[k].kind != om->kind) {
                dropped++;
                continue; /* freed with the old aggregate */
            }
            agg->series[(size_t)g * agg->nmetrics + (size_t)k] = *s;
            memset(s, 0, sizeof *s); /* handed over */
        }
    }
    *ret_dropped = dropped;
    return agg;
}

/* The reload proper; see reload.h. pending receives what waits for a restart. */
static int reload_apply(server_t *srv, reload_status_t *pending, char *err, size_t errlen)
{
    const server_source_t *src = &srv->source;
    config_t *cfg = NULL;
    registry_t *reg = NULL;

    /* phase 1: the whole new configuration, or nothing; loaded and checked
     * as at start-up (daemon/source.h), so a reload takes no file that
     * start-up would refuse */
    if (source_load_config(src, &cfg, err, errlen) != 0)
        return -1;
    if (source_load_registry(cfg, true, &reg, err, errlen) != 0) {
        config_destroy(&cfg);
        return -1;
    }
    keep_live_settings(srv->cfg, cfg, pending);
    keys_t *keys = NULL;
    if (srv->curve && keys_load(cfg->access, cfg, reg, &keys, err, errlen) != 0) {
        registry_destroy(&reg);
        config_destroy(&cfg);
        return -1;
    }

    /* phase 2: carry the state over by name */
    size_t dropped_series;
    members_change_t chg;
    members_carry(srv, cfg, reg, &chg);
    agg_t *agg = carry_figures(srv, cfg, reg, &dropped_series);

    /* alerts by rule and firm id; the book resolves (and journals) the ones
     * whose rule or firm is gone */
    alertbook_t book;
    alertbook_carry_t carried;
    int64_t now = calendar_now_ms();
    alertbook_init(&book, cfg, reg, &srv->alerts, &srv->silences);
    alertbook_carry_over(&book, &srv->book, now, &carried);

    /* swap: a connection whose key is unchanged goes on; a removed key's
     * next message is refused (the sockets look keys up per message) */
    size_t old_keys = srv->keys ? srv->keys->nkeys : 0;
    bool rebind = srv->curve && keys_alerts_narrowed(srv->keys, srv->cfg, keys, cfg);
    keys_destroy(&srv->keys);
    srv->keys = keys;
    rules_free(&srv->rules);
    alertbook_free(&srv->book);
    srv->book = book;
    agg_destroy(&srv->agg);
    srv->agg = agg;
    size_t old_firms = srv->reg->nfirms, old_rules = srv->cfg->nrules;
    /* when each firm was first seen carries over; a new firm is first seen now */
    for (size_t f = 0; f < reg->nfirms; f++) {
        int o = registry_find(srv->reg, reg->firms[f].id, strlen(reg->firms[f].id));
        reg->firms[f].first_seen_ms = o >= 0 ? srv->reg->firms[o].first_seen_ms : now;
        srv->snapshot_wanted |= o < 0;
    }
    registry_destroy(&srv->reg);
    config_destroy(&srv->cfg);
    srv->cfg = cfg;
    srv->reg = reg;
    history_configure(&srv->history, cfg->fsync_policy, cfg->history_retention_ms);
    rules_init(&srv->rules, cfg, reg, agg, &srv->cal, &srv->book);
    /* who joined and left is saved before any batch of the new registry */
    members_save(srv, now);
    log_level_t level;
    if (!srv->source.log_level_fixed && log_level_parse(cfg->log_level, &level) == 0)
        log_set_level(level);

    /* open alert subscriptions were admitted under the old keys: a removed
     * or narrowed key's must go (they reconnect through ZAP) */
    if (rebind)
        alerts_rebind(&srv->alerts);

    /* new and changed rules take effect now, on the data kept */
    rules_evaluate_all(&srv->rules, now);
    alertbook_flush(&srv->book, now);
    srv->reloads++;
    log_info("reloaded %s: %zu firms (was %zu), %zu rules (was %zu); %zu alerts kept, %zu ended; "
             "%zu firm series dropped (firm or metric gone); %zu keys (was %zu); firms joined %zu, "
             "rejoined %zu, left %zu (their figures kept), %zu former members in all",
             cfg->path, reg->nfirms, old_firms, cfg->nrules, old_rules, carried.kept, carried.ended,
             dropped_series, keys ? keys->nkeys : 0, old_keys, chg.joined, chg.rejoined, chg.left,
             reg->nall - reg->nfirms);
    return 0;
}

void reload_status_init(reload_status_t *rs, int64_t now_ms)
{
    memset(rs, 0, sizeof *rs);
    rs->last_ok = true;
    rs->last_success_ms = now_ms;
}

int reload_run(server_t *srv, char *err, size_t errlen)
{
    reload_status_t *rs = &srv->reload;
    /* the list is built aside: a rejected reload leaves the last good one's */
    reload_status_t *next = xcalloc(1, sizeof *next);
    notify_reloading(&srv->notify);
    int rc = reload_apply(srv, next, err, errlen);
    if (rc == 0) {
        rs->last_ok = true;
        rs->last_success_ms = calendar_now_ms();
        rs->last_error[0] = '\0';
        memcpy(rs->pending, next->pending, sizeof rs->pending);
        rs->npending = next->npending;
    } else {
        rs->last_ok = false;
        rs->failed++;
        snprintf(rs->last_error, sizeof rs->last_error, "%s", err);
        log_error("reload rejected, still running on the previous config: %s", err);
    }
    free(next);
    notify_reloaded(&srv->notify, srv);
    return rc;
}
