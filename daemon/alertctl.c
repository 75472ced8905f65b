/* alertctl.c -- see alertctl.h. */
#include "daemon/alertctl.h"

#include <stdio.h>
#include <string.h>

#include "daemon/calendar.h"
#include "daemon/ruleconf.h"
#include "daemon/server.h"

/* Whether the caller's key may see the alert: a subscriber key only its clusters. */
static bool visible(const server_t *srv, const access_key_t *caller, const ab_alert_t *a)
{
    return !caller || keys_may_see(caller, srv->cfg->rules[a->rule].cluster);
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
    proto_ctl_reply_begin(pk, true, "");
    msgpack_pack_map(pk, 2);
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
    proto_ctl_reply_begin(pk, true, "");
    msgpack_pack_map(pk, 1);
    control_pack_kv_i64(pk, "id", a->ival);
}
