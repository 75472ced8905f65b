/* rules.c -- see rules.h. */
#include "daemon/rules.h"

#include <stdio.h>
#include <stdlib.h>

#include "daemon/xalloc.h"

rule_step_t rules_threshold_step(const config_rule_t *r, bool firing, double value)
{
    if (!firing && value > r->above)
        return RULE_STEP_FIRE;
    if (firing && value <= r->clear)
        return RULE_STEP_RESOLVE;
    return RULE_STEP_NONE;
}

void rules_init(rules_t *rs, const config_t *cfg, const registry_t *reg)
{
    rs->cfg = cfg;
    rs->reg = reg;
    rs->firing = 0;
    rs->state = xcalloc(cfg->nrules * reg->nfirms,
                        sizeof *rs->state);
}

void rules_free(rules_t *rs)
{
    free(rs->state);
    rs->state = NULL;
}

static void publish(rules_t *rs, alerts_t *al, const config_rule_t *r, const firm_t *f,
                    const rule_state_t *st, double value, int64_t ts_ms)
{
    const config_t *cfg = rs->cfg;
    const config_cluster_t *cl = &cfg->clusters[r->cluster];
    const config_metric_t *m = &cfg->metrics[r->metric];
    char id[PROTO_MAX_ID_LEN + 1], summary[PROTO_MAX_TEXT_LEN];
    /* The id is stable: rule, scope and firm (the metric is the rule's). */
    snprintf(id, sizeof id, "%s:%s", r->id, f->id);
    if (st->firing)
        snprintf(summary, sizeof summary, "%s %g %s at %s (%s) is above the limit %g %s", m->name,
                 value, m->unit, f->id, f->name, r->above, m->unit);
    else
        snprintf(summary, sizeof summary, "%s %g %s at %s (%s) is back at or below %g %s", m->name,
                 value, m->unit, f->id, f->name, r->clear, m->unit);
    proto_alert_t a = {
        .id = proto_str(id),
        .rule = proto_str(r->id),
        .severity = (uint8_t)r->severity,
        .state = st->firing ? PROTO_ALERT_FIRING : PROTO_ALERT_RESOLVED,
        .cluster = proto_str(cl->id),
        .chain = proto_str(f->chain >= 0 ? cl->chains[f->chain] : NULL),
        .firm = proto_str(f->id),
        .metric = proto_str(m->name),
        .observed = value,
        .expected = st->firing ? r->above : r->clear,
        .summary = proto_str(summary),
        .since_ms = st->since_ms,
        .ts_ms = ts_ms,
    };
    alerts_publish(al, &a);
}

void rules_on_reading(rules_t *rs, alerts_t *al, int firm, int metric, double value,
                      int64_t ts_ms)
{
    const config_t *cfg = rs->cfg;
    const firm_t *f = &rs->reg->firms[firm];
    for (size_t i = 0; i < cfg->nrules; i++) {
        const config_rule_t *r = &cfg->rules[i];
        if (r->metric != metric || r->cluster != f->cluster || (r->chain >= 0 && r->chain != f->chain))
            continue;
        rule_state_t *st = &rs->state[i * rs->reg->nfirms + (size_t)firm];
        switch (rules_threshold_step(r, st->firing, value)) {
        case RULE_STEP_FIRE:
            st->firing = true;
            st->since_ms = ts_ms;
            rs->firing++;
            if (al)
                publish(rs, al, r, f, st, value, ts_ms);
            break;
        case RULE_STEP_RESOLVE:
            st->firing = false;
            rs->firing--;
            if (al)
                publish(rs, al, r, f, st, value, ts_ms);
            break;
        case RULE_STEP_NONE:
            break;
        }
    }
}
