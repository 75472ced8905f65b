/* ruleconf.c -- see ruleconf.h. */
#include "daemon/ruleconf.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/ids.h"
#include "daemon/registry.h"
#include "daemon/xalloc.h"

static const char *const key_names[RK_COUNT] = {
    [RK_TYPE] = "type",
    [RK_SEVERITY] = "severity",
    [RK_METRIC] = "metric",
    [RK_CLUSTER] = "cluster",
    [RK_CHAIN] = "chain",
    [RK_TIER] = "tier",
    [RK_REPEAT] = "repeat",
    [RK_ABOVE] = "above",
    [RK_BELOW] = "below",
    [RK_CLEAR] = "clear",
    [RK_FOR_SAMPLES] = "for_samples",
    [RK_FOR] = "for",
    [RK_YEAR] = "year",
    [RK_TARGET] = "target",
    [RK_TOLERANCE] = "tolerance",
    [RK_QUORUM] = "quorum",
    [RK_PRORATE] = "prorate",
    [RK_COMPARE] = "compare",
    [RK_DROP] = "drop",
    [RK_RISE] = "rise",
    [RK_WINDOW] = "window",
    [RK_K] = "k",
    [RK_MIN_HISTORY] = "min_history",
    [RK_SEASONAL] = "seasonal",
    [RK_MIN_SPREAD] = "min_spread",
    [RK_SCHEDULE] = "schedule",
    [RK_DUE_DAY] = "due_day",
    [RK_QUIET] = "quiet",
    [RK_CLOCK] = "clock",
    [RK_GRACE] = "grace",
    [RK_CITY] = "city",
};

static const char *const type_names[RULE_TYPE_COUNT] = {
    [RULE_THRESHOLD] = "threshold", [RULE_GROWTH] = "growth",   [RULE_CHANGE] = "change",
    [RULE_OUTLIER] = "outlier",     [RULE_SILENCE] = "silence", [RULE_ABOVE_SCALE] = "above-scale",
};

/* Which keys each type takes (beyond type, severity, cluster, chain, tier, repeat). */
#define K(x) (1ull << (x))
static const uint64_t common_keys =
    K(RK_TYPE) | K(RK_SEVERITY) | K(RK_CLUSTER) | K(RK_CHAIN) | K(RK_TIER) | K(RK_REPEAT);
static const uint64_t type_keys[RULE_TYPE_COUNT] = {
    [RULE_THRESHOLD] =
        K(RK_METRIC) | K(RK_ABOVE) | K(RK_BELOW) | K(RK_CLEAR) | K(RK_FOR_SAMPLES) | K(RK_FOR),
    [RULE_GROWTH] =
        K(RK_METRIC) | K(RK_YEAR) | K(RK_TARGET) | K(RK_TOLERANCE) | K(RK_QUORUM) | K(RK_PRORATE),
    [RULE_CHANGE] = K(RK_METRIC) | K(RK_COMPARE) | K(RK_DROP) | K(RK_RISE),
    [RULE_OUTLIER] = K(RK_METRIC) | K(RK_WINDOW) | K(RK_K) | K(RK_MIN_HISTORY) | K(RK_SEASONAL) |
                     K(RK_MIN_SPREAD),
    [RULE_SILENCE] = K(RK_METRIC) | K(RK_SCHEDULE) | K(RK_DUE_DAY) | K(RK_QUIET) | K(RK_CLOCK) |
                     K(RK_GRACE) | K(RK_CITY),
    [RULE_ABOVE_SCALE] = 0,
};

const char *ruleconf_type_name(rule_type_t t)
{
    return t < RULE_TYPE_COUNT ? type_names[t] : "?";
}

int ruleconf_set(rule_raw_t *raw, const char *key, const char *value, int line, char *why,
                 size_t whylen)
{
    for (int k = 0; k < RK_COUNT; k++) {
        if (strcmp(key, key_names[k]) != 0)
            continue;
        if (raw->val[k]) {
            snprintf(why, whylen, "set twice (first on line %d)", raw->line[k]);
            return -1;
        }
        raw->val[k] = xstrdup(value);
        raw->line[k] = line;
        return 0;
    }
    snprintf(why, whylen,
             "unknown key '%s' (rule keys: type, severity, metric, cluster, chain, "
             "tier, repeat and the type's own; see README)",
             key);
    return -1;
}

void ruleconf_raw_free(rule_raw_t *raw)
{
    for (int k = 0; k < RK_COUNT; k++)
        free(raw->val[k]);
}

int ruleconf_parse_duration(const char *s, int64_t *ret_ms)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || !isfinite(v) || v < 0)
        return -1;
    double mult;
    if (!*end || strcmp(end, "s") == 0)
        mult = 1000;
    else if (strcmp(end, "ms") == 0)
        mult = 1;
    else if (strcmp(end, "m") == 0)
        mult = 60e3;
    else if (strcmp(end, "h") == 0)
        mult = 3600e3;
    else if (strcmp(end, "d") == 0)
        mult = 86400e3;
    else
        return -1;
    if (v * mult > 1e15)
        return -1;
    *ret_ms = (int64_t)llround(v * mult);
    return 0;
}

/* ---- resolving ------------------------------------------------------------------ */

typedef struct {
    const rule_raw_t *raw;
    const char *id;
    int *line;
    char *field, *why;
    size_t fieldlen, whylen;
} res_t;

static int fail(res_t *rs, rule_key_t k, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(res_t *rs, rule_key_t k, const char *fmt, ...)
{
    if (rs->raw->val[k])
        *rs->line = rs->raw->line[k];
    snprintf(rs->field, rs->fieldlen, "rule.%s.%s", rs->id, key_names[k]);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rs->why, rs->whylen, fmt, ap);
    va_end(ap);
    return -1;
}

/* A number from key k into *ret (left as is when the key is absent). */
static int number(res_t *rs, rule_key_t k, double min, double max, double *ret)
{
    const char *v = rs->raw->val[k];
    if (!v)
        return 0;
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (end == v || *end || errno || !isfinite(d))
        return fail(rs, k, "'%s' is not a number", v);
    if (d < min || d > max)
        return fail(rs, k, "%g is outside %g..%g", d, min, max);
    *ret = d;
    return 0;
}

static int choice(res_t *rs, rule_key_t k, const char *a, const char *b, bool *ret_is_b)
{
    const char *v = rs->raw->val[k];
    if (!v)
        return 0;
    if (strcmp(v, a) == 0)
        *ret_is_b = false;
    else if (strcmp(v, b) == 0)
        *ret_is_b = true;
    else
        return fail(rs, k, "'%s' is not %s or %s", v, a, b);
    return 0;
}

static int duration(res_t *rs, rule_key_t k, int64_t *ret)
{
    const char *v = rs->raw->val[k];
    if (v && ruleconf_parse_duration(v, ret) != 0)
        return fail(rs, k, "'%s' is not a duration (e.g. 90s, 15m, 2h, 1d)", v);
    return 0;
}

/*
 * A growth target, in percent. "12" is +12 %; a bare number strictly between
 * -1 and 1 (0.12) is refused, because it is nearly always a fraction meant as
 * a percentage and would pass silently as a target of +0.12 %. Writing the
 * percent sign ("0.5%") says a sub-1 % target is meant.
 */
static int target(res_t *rs, double *ret)
{
    const char *v = rs->raw->val[RK_TARGET];
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    bool pct = *end == '%' && end[1] == '\0';
    if (end == v || (*end && !pct) || errno || !isfinite(d))
        return fail(rs, RK_TARGET, "'%s' is not a number of percent (e.g. 12 or 0.5%%)", v);
    if (d < -100 || d > 1e6)
        return fail(rs, RK_TARGET, "%g is outside -100..1e+06 %%", d);
    if (!pct && d != 0 && fabs(d) < 1)
        return fail(rs, RK_TARGET,
                    "target is in percent: 12 means +12 %% (%g here would mean "
                    "%+g %%; write %g%% if that is meant)",
                    d, d, d);
    *ret = d;
    return 0;
}

int ruleconf_resolve(const config_t *cfg, config_rule_t *r, const rule_raw_t *raw, int *ret_line,
                     char *field, size_t fieldlen, char *why, size_t whylen)
{
    res_t rs = {raw, r->id, ret_line, field, why, fieldlen, whylen};
    const char *const *v = (const char *const *)raw->val;
    *ret_line = r->line;

    /* type first: it decides which keys apply */
    if (!v[RK_TYPE])
        return fail(&rs, RK_TYPE,
                    "[rule %s] needs a type: threshold, growth, change, outlier, "
                    "silence or above-scale",
                    r->id);
    int type = -1;
    for (int t = 0; t < RULE_TYPE_COUNT; t++)
        if (strcmp(v[RK_TYPE], type_names[t]) == 0)
            type = t;
    if (type < 0)
        return fail(&rs, RK_TYPE,
                    "'%s' is not threshold, growth, change, outlier, silence or "
                    "above-scale",
                    v[RK_TYPE]);
    r->type = (rule_type_t)type;
    for (int k = 0; k < RK_COUNT; k++)
        if (v[k] && !((common_keys | type_keys[type]) & K(k)))
            return fail(&rs, (rule_key_t)k, "does not apply to a %s rule", type_names[type]);

    /* defaults */
    r->severity = PROTO_SEV_WARNING;
    r->metric = r->chain = r->tier = -1;
    r->for_samples = 1;
    r->tolerance_pp = 0;
    r->quorum_pct = 80;
    r->year = 0;
    r->prorate = PRORATE_AUTO;
    r->window = 6;
    r->min_history = 4;
    r->k = 3.5;
    r->outlier_seasonal = true;
    r->min_spread_pct = 5;
    r->due_day = 10;
    r->quiet_ms = 15 * 60 * 1000;
    r->grace_ms = -1;

    if (v[RK_SEVERITY]) {
        int s = proto_severity_from_name(proto_str(v[RK_SEVERITY]));
        if (s < 0)
            return fail(&rs, RK_SEVERITY, "'%s' is not info, warning or critical", v[RK_SEVERITY]);
        r->severity = (proto_severity_t)s;
    }
    if (!v[RK_CLUSTER])
        return fail(&rs, RK_CLUSTER, "[rule %s] needs cluster", r->id);
    r->cluster = config_cluster_find(cfg, v[RK_CLUSTER], strlen(v[RK_CLUSTER]));
    if (r->cluster < 0)
        return fail(&rs, RK_CLUSTER, "unknown cluster '%s'", v[RK_CLUSTER]);
    if (v[RK_CHAIN]) {
        r->chain = config_chain_find(&cfg->clusters[r->cluster], v[RK_CHAIN], strlen(v[RK_CHAIN]));
        if (r->chain < 0)
            return fail(&rs, RK_CHAIN, "cluster '%s' has no chain '%s'", v[RK_CLUSTER],
                        v[RK_CHAIN]);
    }
    if (v[RK_TIER]) {
        r->tier = registry_tier_parse(v[RK_TIER]);
        if (r->tier < 0)
            return fail(&rs, RK_TIER, "'%s' is not leading, backbone, potential or member",
                        v[RK_TIER]);
    }
    if (v[RK_CITY]) {
        /* a province watching a whole city go quiet (README "Province
         * deployment"): the firms the registry's city column puts there */
        char bad[128];
        if (ids_validate(v[RK_CITY], strlen(v[RK_CITY]), bad, sizeof bad) != 0)
            return fail(&rs, RK_CITY, "'%s': %s", v[RK_CITY], bad);
        r->city = xstrdup(v[RK_CITY]);
    }
    if (duration(&rs, RK_REPEAT, &r->repeat_ms) != 0)
        return -1;

    /* the metric: required except for silence (any metric) and above-scale (revenue) */
    if (v[RK_METRIC]) {
        r->metric = config_metric_find(cfg, v[RK_METRIC], strlen(v[RK_METRIC]));
        if (r->metric < 0)
            return fail(&rs, RK_METRIC, "unknown metric '%s'", v[RK_METRIC]);
    } else if (r->type != RULE_SILENCE && r->type != RULE_ABOVE_SCALE) {
        return fail(&rs, RK_METRIC, "[rule %s] needs metric", r->id);
    }
    if (r->type == RULE_ABOVE_SCALE)
        r->metric = cfg->revenue_idx;
    bool reading = r->metric >= 0 && cfg->metrics[r->metric].kind == METRIC_READING;
    if (r->type == RULE_THRESHOLD && !reading)
        return fail(&rs, RK_METRIC, "threshold rules watch readings; '%s' is a period metric",
                    v[RK_METRIC]);
    if ((r->type == RULE_GROWTH || r->type == RULE_CHANGE || r->type == RULE_OUTLIER) && reading)
        return fail(&rs, RK_METRIC, "%s rules watch period metrics; '%s' is a reading",
                    type_names[r->type], v[RK_METRIC]);

    double d;
    switch (r->type) {
    case RULE_THRESHOLD:
        if (!v[RK_ABOVE] && !v[RK_BELOW])
            return fail(&rs, RK_ABOVE, "[rule %s] needs above = LIMIT or below = LIMIT", r->id);
        if (v[RK_ABOVE] && v[RK_BELOW])
            return fail(&rs, RK_BELOW, "a threshold rule takes above or below, not both");
        r->has_above = v[RK_ABOVE] != NULL;
        r->has_below = !r->has_above;
        if (number(&rs, r->has_above ? RK_ABOVE : RK_BELOW, -1e300, 1e300,
                   r->has_above ? &r->above : &r->below) != 0)
            return -1;
        r->clear = r->has_above ? r->above : r->below;
        if (number(&rs, RK_CLEAR, -1e300, 1e300, &r->clear) != 0)
            return -1;
        if (r->has_above && r->clear > r->above)
            return fail(&rs, RK_CLEAR, "clear level %g is above the limit %g", r->clear, r->above);
        if (r->has_below && r->clear < r->below)
            return fail(&rs, RK_CLEAR, "clear level %g is below the limit %g", r->clear, r->below);
        d = 1;
        if (number(&rs, RK_FOR_SAMPLES, 1, 1e6, &d) != 0)
            return -1;
        r->for_samples = (uint32_t)d;
        if (duration(&rs, RK_FOR, &r->for_ms) != 0)
            return -1;
        break;
    case RULE_GROWTH:
        if (!v[RK_TARGET])
            return fail(&rs, RK_TARGET, "[rule %s] needs target = PERCENT (15 means +15 %%)",
                        r->id);
        if (v[RK_YEAR] && strcmp(v[RK_YEAR], "current") != 0) {
            d = 0;
            if (number(&rs, RK_YEAR, PROTO_MIN_YEAR + 1, PROTO_MAX_YEAR, &d) != 0)
                return -1;
            if (d != floor(d))
                return fail(&rs, RK_YEAR, "'%s' is not a year (YYYY or current)", v[RK_YEAR]);
            r->year = (int)d;
        }
        if (target(&rs, &r->target_pct) != 0 ||
            number(&rs, RK_TOLERANCE, 0, 1e6, &r->tolerance_pp) != 0 ||
            number(&rs, RK_QUORUM, 0, 100, &r->quorum_pct) != 0)
            return -1;
        if (v[RK_PRORATE]) {
            const char *p = v[RK_PRORATE];
            if (strcmp(p, "auto") == 0)
                r->prorate = PRORATE_AUTO;
            else if (strcmp(p, "seasonal") == 0)
                r->prorate = PRORATE_SEASONAL;
            else if (strcmp(p, "linear") == 0)
                r->prorate = PRORATE_LINEAR;
            else
                return fail(&rs, RK_PRORATE, "'%s' is not auto, seasonal or linear", p);
        }
        break;
    case RULE_CHANGE:
        if (choice(&rs, RK_COMPARE, "previous", "last-year", &r->vs_last_year) != 0 ||
            number(&rs, RK_DROP, 0, 100, &r->drop_pct) != 0 ||
            number(&rs, RK_RISE, 0, 1e6, &r->rise_pct) != 0)
            return -1;
        if (r->drop_pct == 0 && r->rise_pct == 0)
            return fail(&rs, RK_DROP, "[rule %s] needs drop = PERCENT and/or rise = PERCENT",
                        r->id);
        break;
    case RULE_OUTLIER: {
        double w = r->window, mh = r->min_history;
        bool plain = false;
        if (number(&rs, RK_WINDOW, 3, 120, &w) != 0 ||
            number(&rs, RK_MIN_HISTORY, 3, 120, &mh) != 0 ||
            number(&rs, RK_K, 0.5, 100, &r->k) != 0 ||
            number(&rs, RK_MIN_SPREAD, 0, 100, &r->min_spread_pct) != 0 ||
            choice(&rs, RK_SEASONAL, "yes", "no", &plain) != 0)
            return -1;
        r->window = (uint32_t)w;
        r->min_history = (uint32_t)mh;
        r->outlier_seasonal = !plain;
        if (r->min_history > r->window)
            return fail(&rs, RK_MIN_HISTORY, "%u is more than the window %u", r->min_history,
                        r->window);
        break;
    }
    case RULE_SILENCE: {
        d = r->due_day;
        if (choice(&rs, RK_SCHEDULE, "monthly", "continuous", &r->continuous) != 0 ||
            number(&rs, RK_DUE_DAY, 1, 28, &d) != 0 || duration(&rs, RK_QUIET, &r->quiet_ms) != 0 ||
            choice(&rs, RK_CLOCK, "wall", "data", &r->data_clock) != 0 ||
            duration(&rs, RK_GRACE, &r->grace_ms) != 0)
            return -1;
        r->due_day = (int)d;
        if (r->continuous && v[RK_DUE_DAY])
            return fail(&rs, RK_DUE_DAY, "applies to schedule = monthly only");
        if (!r->continuous && v[RK_QUIET])
            return fail(&rs, RK_QUIET, "applies to schedule = continuous only");
        if (r->continuous && r->data_clock)
            return fail(&rs, RK_CLOCK, "schedule = continuous is judged by the wall clock");
        if (r->continuous && !reading)
            return fail(&rs, RK_METRIC, "schedule = continuous needs a reading metric");
        break;
    }
    case RULE_ABOVE_SCALE:
    case RULE_TYPE_COUNT: break;
    }
    return 0;
}
