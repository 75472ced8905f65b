/* alertctl.c -- see alertctl.h. */
#include "daemon/alertctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/calendar.h"
#include "daemon/ruleconf.h"
#include "daemon/server.h"

/* Whether the caller's key may see the alert: a subscriber key only its clusters. */
static bool visible(const server_t *srv, const access_key_t *caller, const ab_alert_t *a)
{
    return !caller || keys_may_see(caller, srv->cfg->rules[a->rule].cluster);
}

/* The acknowledgement in force for a, or NULL (by its public id, as
 * published). */
static const history_ack_t *ack_of(const server_t *srv, const ab_alert_t *a)
{
    proto_alert_t p;
    alertbook_to_proto(&srv->book, a, PROTO_ALERT_FIRING, &p);
    return history_ack_find(&srv->history, p.id.ptr, p.id.len);
}

void alertctl_alerts(server_t *srv, msgpack_packer *pk, const proto_ctl_request_t *req)
{
    (void)req;
    alertbook_t *b = &srv->book;
    const access_key_t *caller = srv->control.caller; /* NULL: no CURVE, or checked already */
    size_t n = 0;
    for (size_t i = 0; i < b->nalerts; i++)
        n += (b->alerts[i]->firing || b->alerts[i]->flapping) && visible(srv, caller, b->alerts[i]);
    /* each visible cluster's seq, and no other: a key learns nothing of
     * the clusters it may not see, not even how many alerts they had */
    const config_t *cfg = srv->cfg;
    size_t nseqs = 0;
    for (size_t c = 0; c < cfg->nclusters; c++)
        nseqs += !caller || keys_may_see(caller, (int)c);
    size_t nacks = 0;
    for (size_t i = 0; i < b->nalerts; i++)
        nacks += (b->alerts[i]->firing || b->alerts[i]->flapping) &&
                 visible(srv, caller, b->alerts[i]) && ack_of(srv, b->alerts[i]);
    proto_ctl_reply_begin(pk, true, "");
    msgpack_pack_map(pk, 3);
    /* the acknowledgements of the alerts listed: who, when, why */
    control_pack_str(pk, "acks");
    msgpack_pack_array(pk, nacks);
    for (size_t i = 0; i < b->nalerts; i++) {
        const ab_alert_t *a = b->alerts[i];
        const history_ack_t *k;
        if ((!a->firing && !a->flapping) || !visible(srv, caller, a) || !(k = ack_of(srv, a)))
            continue;
        msgpack_pack_map(pk, 5);
        control_pack_kv_str(pk, "alert_id", k->alert_id);
        control_pack_kv_str(pk, "who", k->who);
        control_pack_kv_i64(pk, "at_ms", k->at_ms);
        control_pack_kv_str(pk, "note", k->note);
        control_pack_kv_i64(pk, "since_ms", k->since_ms);
    }
    control_pack_str(pk, "seqs");
    msgpack_pack_map(pk, nseqs);
    for (size_t c = 0; c < cfg->nclusters; c++)
        if (!caller || keys_may_see(caller, (int)c))
            control_pack_kv_u64(pk, cfg->clusters[c].id,
                                alerts_seq(&srv->alerts, cfg->clusters[c].id));
    control_pack_str(pk, "alerts");
    msgpack_pack_array(pk, n);
    msgpack_sbuffer one;
    msgpack_sbuffer_init(&one);
    for (size_t i = 0; i < b->nalerts; i++) {
        const ab_alert_t *a = b->alerts[i];
        if ((!a->firing && !a->flapping) || !visible(srv, caller, a))
            continue;
        proto_alert_t p;
        char err[PROTO_ERRLEN];
        alertbook_to_proto(b, a, a->flapping ? PROTO_ALERT_FLAPPING : PROTO_ALERT_FIRING, &p);
        msgpack_sbuffer_clear(&one);
        if (proto_alert_encode(&p, &one, err, sizeof err) != PROTO_OK) {
            msgpack_pack_nil(pk); /* keeps the count right; clients skip it */
            continue;
        }
        msgpack_pack_bin(pk, one.size);
        msgpack_pack_bin_body(pk, one.data, one.size);
    }
    msgpack_sbuffer_destroy(&one);
}

/* Who is asking, for the audit trail: the CURVE key's name, or "local"
 * without CURVE (only the control socket's own access rules apply then). */
/* Who is running the command, for what it records: the CURVE key's name on
 * the control socket, the dashboard login's name from the HTTP API
 * (control_run), "local" on a socket without CURVE. */
static const char *caller_name(const server_t *srv)
{
    return srv->control.who ? srv->control.who : "local";
}

/* A string argument copied into buf, or NULL if absent / not a string. */
static const char *arg_str(const proto_ctl_request_t *req, const char *key, char *buf, size_t size)
{
    const proto_ctl_arg_t *a = proto_ctl_arg(req, key);
    if (!a || a->kind != PROTO_ARG_STR)
        return NULL;
    snprintf(buf, size, "%.*s", (int)a->sval.len, a->sval.ptr);
    return buf;
}

void alertctl_silence_add(server_t *srv, msgpack_packer *pk, const proto_ctl_request_t *req)
{
    const config_t *cfg = srv->cfg;
    char rule[PROTO_MAX_ID_LEN + 1], cluster[PROTO_MAX_ID_LEN + 1], firm[PROTO_MAX_ID_LEN + 1];
    char dur[32], reason[PROTO_MAX_TEXT_LEN], why[256];
    const char *r = arg_str(req, "rule", rule, sizeof rule);
    const char *c = arg_str(req, "cluster", cluster, sizeof cluster);
    const char *f = arg_str(req, "firm", firm, sizeof firm);
    const char *d = arg_str(req, "for", dur, sizeof dur);
    const char *why_text = arg_str(req, "reason", reason, sizeof reason);
    int64_t ms;
    if (!r || !c || !d || !why_text) {
        control_reply_error(pk, "silence_add needs rule, cluster, for and reason");
        return;
    }
    size_t ri = 0;
    while (ri < cfg->nrules && strcmp(cfg->rules[ri].id, r) != 0)
        ri++;
    if (ri == cfg->nrules) {
        snprintf(why, sizeof why, "rule: unknown rule '%s'", r);
        control_reply_error(pk, why);
        return;
    }
    if (config_cluster_find(cfg, c, strlen(c)) < 0) {
        snprintf(why, sizeof why, "cluster: unknown cluster '%s'", c);
        control_reply_error(pk, why);
        return;
    }
    if (f && registry_find(srv->reg, f, strlen(f)) < 0) {
        snprintf(why, sizeof why, "firm: unknown firm '%s'", f);
        control_reply_error(pk, why);
        return;
    }
    if (ruleconf_parse_duration(d, &ms) != 0 || ms <= 0) {
        snprintf(why, sizeof why, "for: '%s' is not a duration (e.g. 30m, 2h, 1d)", d);
        control_reply_error(pk, why);
        return;
    }
    if (!*why_text) {
        control_reply_error(pk, "reason: say why (it is shown with the silence)");
        return;
    }
    int64_t now = calendar_now_ms();
    uint64_t id = silences_add(&srv->silences, r, c, f, now, now + ms, why_text);
    if (id == 0) {
        control_reply_error(pk, "the silence could not be journaled (state_dir full?): not added; "
                                "retry once the daemon has room");
        return;
    }
    history_silence(&srv->history, true, id, r, c, f, now + ms, why_text, caller_name(srv), now);
    proto_ctl_reply_begin(pk, true, "");
    msgpack_pack_map(pk, 2);
    control_pack_kv_u64(pk, "id", id);
    control_pack_kv_i64(pk, "until_ms", now + ms);
}

void alertctl_silence_list(server_t *srv, msgpack_packer *pk, const proto_ctl_request_t *req)
{
    (void)req;
    silences_expire(&srv->silences, calendar_now_ms());
    proto_ctl_reply_begin(pk, true, "");
    msgpack_pack_array(pk, srv->silences.n);
    for (size_t i = 0; i < srv->silences.n; i++) {
        const silence_t *s = &srv->silences.items[i];
        msgpack_pack_map(pk, 7);
        control_pack_kv_u64(pk, "id", s->id);
        control_pack_kv_str(pk, "rule", s->rule);
        control_pack_kv_str(pk, "cluster", s->cluster);
        control_pack_str(pk, "firm");
        if (s->firm)
            control_pack_str(pk, s->firm);
        else
            msgpack_pack_nil(pk);
        control_pack_kv_i64(pk, "created_ms", s->created_ms);
        control_pack_kv_i64(pk, "until_ms", s->until_ms);
        control_pack_kv_str(pk, "reason", s->reason);
    }
}

void alertctl_silence_rm(server_t *srv, msgpack_packer *pk, const proto_ctl_request_t *req)
{
    const proto_ctl_arg_t *a = proto_ctl_arg(req, "id");
    if (!a || a->kind != PROTO_ARG_INT || a->ival <= 0) {
        control_reply_error(pk, "id: expected a silence id (see silence list)");
        return;
    }
    silence_t gone = {0};
    for (size_t i = 0; i < srv->silences.n; i++)
        if (srv->silences.items[i].id == (uint64_t)a->ival)
            gone = srv->silences.items[i];
    char rule[PROTO_MAX_ID_LEN + 1] = "", cluster[PROTO_MAX_ID_LEN + 1] = "",
                                 firm[PROTO_MAX_ID_LEN + 1] = "";
    if (gone.id) { /* copied: the removal frees them */
        snprintf(rule, sizeof rule, "%s", gone.rule);
        snprintf(cluster, sizeof cluster, "%s", gone.cluster);
        snprintf(firm, sizeof firm, "%s", gone.firm ? gone.firm : "");
    }
    int rc = silences_remove(&srv->silences, (uint64_t)a->ival);
    if (rc != 0) {
        char why[160];
        if (rc == -2)
            snprintf(why, sizeof why,
                     "the removal of silence %lld could not be journaled "
                     "(state_dir full?): it stays; retry once the daemon has room",
                     (long long)a->ival);
        else
            snprintf(why, sizeof why, "id: no silence %lld", (long long)a->ival);
        control_reply_error(pk, why);
        return;
    }
    history_silence(&srv->history, false, (uint64_t)a->ival, rule, cluster, *firm ? firm : NULL, 0,
                    NULL, caller_name(srv), calendar_now_ms());
    proto_ctl_reply_begin(pk, true, "");
    msgpack_pack_map(pk, 1);
    control_pack_kv_i64(pk, "id", a->ival);
}

/* ---- history and acknowledgements ---------------------------------------------- */

int alertctl_parse_time(const char *s, int64_t now_ms, int64_t *ret_ms)
{
    int y, mo, d, h = 0, mi = 0, sec = 0, n = 0;
    size_t len = strlen(s);
    char *end;
    int64_t dur;
    long long ms = strtoll(s, &end, 10);
    if (len >= 12 && *end == '\0' && ms > 0) { /* Unix ms */
        *ret_ms = ms;
        return 0;
    }
    if (len > 0 && len < 20 && s[0] >= '0' && s[0] <= '9' && strchr(s, '-') == NULL &&
        ruleconf_parse_duration(s, &dur) == 0 && dur > 0) {
        *ret_ms = now_ms - dur; /* "7d": seven days ago */
        return 0;
    }
    if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 ||
        (n != (int)len && (s[n] != 'T' && s[n] != ' ')))
        return -1;
    if (n != (int)len) {
        int m = 0;
        if (sscanf(s + n + 1, "%2d:%2d%n", &h, &mi, &m) != 2)
            return -1;
        n += 1 + m;
        if (s[n] == ':') {
            if (sscanf(s + n + 1, "%2d%n", &sec, &m) != 1)
                return -1;
            n += 1 + m;
        }
        if (n != (int)len)
            return -1;
    }
    if (y < PROTO_MIN_YEAR || y > PROTO_MAX_YEAR || mo < 1 || mo > 12 || d < 1 || d > 31 ||
        h > 23 || mi > 59 || sec > 60)
        return -1;
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = sec,
                    .tm_isdst = -1};
    time_t t = mktime(&tm); /* TZ is the daemon's time zone (calendar.h) */
    if (t == (time_t)-1 || tm.tm_mday != d)
        return -1;
    *ret_ms = (int64_t)t * 1000;
    return 0;
}

void alertctl_history(server_t *srv, msgpack_packer *pk, const proto_ctl_request_t *req)
{
    char cluster[PROTO_MAX_ID_LEN + 1], rule[PROTO_MAX_ID_LEN + 1], firm[PROTO_MAX_ID_LEN + 1];
    char alert[PROTO_MAX_ALERT_ID_LEN + 1], tbuf[64], why[160];
    const access_key_t *caller = srv->curve ? srv->control.caller : NULL;
    int64_t now = calendar_now_ms();
    history_filter_t f = {.cluster = arg_str(req, "cluster", cluster, sizeof cluster),
                          .rule = arg_str(req, "rule", rule, sizeof rule),
                          .firm = arg_str(req, "firm", firm, sizeof firm),
                          .alert_id = arg_str(req, "alert", alert, sizeof alert)};
    static const char *const bounds[2] = {"since", "until"};
    int64_t *at[2] = {&f.since_ms, &f.until_ms};
    for (int i = 0; i < 2; i++) {
        const char *t = arg_str(req, bounds[i], tbuf, sizeof tbuf);
        if (t && alertctl_parse_time(t, now, at[i]) != 0) {
            snprintf(why, sizeof why,
                     "%s: '%.40s' is not a time (YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS] in the "
                     "daemon's time zone, Unix ms, or 7d / 24h ago)",
                     bounds[i], t);
            control_reply_error(pk, why);
            return;
        }
    }
    const proto_ctl_arg_t *al = proto_ctl_arg(req, "limit");
    if (al && al->kind == PROTO_ARG_INT) {
        if (al->ival < 1 || al->ival > 100000) {
            control_reply_error(pk, "limit: expected 1..100000");
            return;
        }
        f.limit = (size_t)al->ival;
    }
    if (f.cluster && config_cluster_find(srv->cfg, f.cluster, strlen(f.cluster)) < 0) {
        snprintf(why, sizeof why, "cluster: unknown cluster '%s'", f.cluster);
        control_reply_error(pk, why);
        return;
    }
    const history_entry_t **es;
    size_t total, n = history_query(&srv->history, &f, &es, &total);
    size_t shown = 0;
    for (size_t i = 0; i < n; i++) {
        int ci = es[i]->cluster
                     ? config_cluster_find(srv->cfg, es[i]->cluster, strlen(es[i]->cluster))
                     : -1;
        /* a key limited to some clusters sees only their history */
        if (caller && !(ci >= 0 && keys_may_see(caller, ci)))
            es[i] = NULL;
        else
            shown++;
    }
    proto_ctl_reply_begin(pk, true, "");
    msgpack_pack_map(pk, 4);
    control_pack_kv_str(pk, "timezone", srv->cfg->timezone);
    control_pack_kv_u64(pk, "matched", caller ? shown : total);
    control_pack_kv_i64(pk, "retention_ms", srv->cfg->history_retention_ms);
    control_pack_str(pk, "entries");
    msgpack_pack_array(pk, shown);
    for (size_t i = 0; i < n; i++)
        if (es[i])
            history_entry_pack(pk, es[i]);
    free(es);
}

void alertctl_ack(server_t *srv, msgpack_packer *pk, const proto_ctl_request_t *req)
{
    char id[PROTO_MAX_ALERT_ID_LEN + 1], note[PROTO_MAX_TEXT_LEN],
        why[PROTO_MAX_ALERT_ID_LEN + 128];
    const char *want = arg_str(req, "id", id, sizeof id);
    const char *text = arg_str(req, "note", note, sizeof note);
    const access_key_t *caller = srv->curve ? srv->control.caller : NULL;
    if (!want || !text || !*text) {
        control_reply_error(pk, "ack needs id (an alert id, see alerts) and note (why: it is "
                                "shown with the alert and in the history)");
        return;
    }
    alertbook_t *b = &srv->book;
    for (size_t i = 0; i < b->nalerts; i++) {
        const ab_alert_t *a = b->alerts[i];
        proto_alert_t p;
        alertbook_to_proto(b, a, a->flapping ? PROTO_ALERT_FLAPPING : PROTO_ALERT_FIRING, &p);
        if (!proto_str_eq(p.id, want) || !visible(srv, caller, a))
            continue;
        if (!a->firing && !a->flapping) {
            snprintf(why, sizeof why, "id: alert '%s' is not firing: nothing to acknowledge", want);
            control_reply_error(pk, why);
            return;
        }
        int64_t now = calendar_now_ms();
        const char *who = caller_name(srv);
        uint64_t entry = history_ack(&srv->history, &p, who, text, now);
        if (entry == 0) {
            control_reply_error(pk, "the acknowledgement could not be journaled (state_dir "
                                    "full?): not recorded; retry once the daemon has room");
            return;
        }
        log_info("alert %s acknowledged by %s: %s", want, who, text);
        proto_ctl_reply_begin(pk, true, "");
        msgpack_pack_map(pk, 5);
        control_pack_kv_u64(pk, "entry", entry);
        control_pack_kv_str(pk, "alert_id", want);
        control_pack_kv_str(pk, "who", who);
        control_pack_kv_i64(pk, "at_ms", now);
        control_pack_kv_str(pk, "note", text);
        return;
    }
    snprintf(why, sizeof why, "id: no alert '%s' (see clustermonctl alerts)", want);
    control_reply_error(pk, why);
}
