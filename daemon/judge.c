/* judge.c -- see judge.h. */
#include "daemon/judge.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/aggregate.h"
#include "daemon/members.h"
#include "daemon/xalloc.h"

static const char *const kind_names[JUDGE_KIND_COUNT] = {
    [JUDGE_UNKNOWN_FIRM] = "unknown_firm",
    [JUDGE_FORMER_MEMBER] = "former_member",
    [JUDGE_FORBIDDEN] = "forbidden",
    [JUDGE_UNKNOWN_METRIC] = "unknown_metric",
    [JUDGE_PERIOD_ON_READING] = "period_on_reading",
    [JUDGE_NO_MONTH] = "no_month",
    [JUDGE_FUTURE_PERIOD] = "future_period",
    [JUDGE_OUT_OF_RANGE] = "out_of_range",
    [JUDGE_BEFORE_FLOOR] = "before_floor",
};

const char *judge_kind_name(judge_kind_t k)
{
    return (unsigned)k < JUDGE_KIND_COUNT ? kind_names[k] : "?";
}

/* Unix ms of local midnight of a YYYY-MM-DD (TZ is the daemon's zone),
 * through the calendar's cache (asked once per batch). */
static int64_t local_midnight_ms(calendar_t *cal, const char *date)
{
    int y, m, d;
    if (cal->midnight_date[0] && strcmp(date, cal->midnight_date) == 0)
        return cal->midnight_ms; /* skip the parse too */
    if (config_parse_date(date, &y, &m, &d) != 0)
        return 0; /* config.c refused it already; no floor */
    return calendar_midnight_ms(cal, date, y, m, d);
}

void judge_begin(judge_t *j, const config_t *cfg, const registry_t *reg, calendar_t *cal,
                 const access_key_t *key, bool replay, int64_t now_ms)
{
    int y = PROTO_MAX_YEAR, m = 12;
    memset(j, 0, sizeof *j);
    j->cfg = cfg;
    j->reg = reg;
    j->cal = cal;
    j->key = key;
    j->replay = replay;
    int64_t slack = (int64_t)(cfg->future_slack_days * 86400000.0);
    /* a local clock that cannot say its month judges nothing as future */
    if (calendar_month_of(cal, now_ms + slack, &y, &m) != 0) {
        y = PROTO_MAX_YEAR;
        m = 12;
    }
    j->latest_month = y * 12 + m - 1;
    j->floor_ms = local_midnight_ms(cal, cfg->ts_floor);
}

static int first_month(proto_period_t p)
{
    switch (p.kind) {
    case PROTO_PERIOD_QUARTER: return p.year * 12 + (p.index - 1) * 3;
    case PROTO_PERIOD_MONTH: return p.year * 12 + p.index - 1;
    default: return p.year * 12;
    }
}

#define REFUSE(kind, st, ...)                                                                      \
    do {                                                                                           \
        *ret_kind = (kind);                                                                        \
        int off_ = snprintf(reason, rlen, "sample %u: ", i);                                       \
        if (off_ > 0 && (size_t)off_ < rlen)                                                       \
            snprintf(reason + off_, rlen - (size_t)off_, __VA_ARGS__);                             \
        return (st);                                                                               \
    } while (0)

/* "2024-11-30" for a hint; "" if it cannot be said. */
static void format_day(int64_t ms, char *buf, size_t size)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!localtime_r(&t, &tm) || strftime(buf, size, "%Y-%m-%d", &tm) == 0)
        snprintf(buf, size, "?");
}

proto_status_t judge_sample(const judge_t *j, const proto_sample_t *s, uint32_t i,
                            judge_resolved_t *r, judge_kind_t *ret_kind, char *reason, size_t rlen)
{
    const config_t *cfg = j->cfg;
    r->refused = false;
    r->firm = registry_find_any(j->reg, s->firm.ptr, s->firm.len);
    if (r->firm < 0)
        REFUSE(JUDGE_UNKNOWN_FIRM, PROTO_STATUS_UNKNOWN_FIRM, "unknown firm '%.*s'",
               PROTO_STR_ARG(s->firm));
    /* A former member (members.h) is unknown, except in replay: its
     * batches were taken while it was a member. */
    if (!j->replay && registry_is_former(j->reg, r->firm)) {
        char date[32];
        members_format_date(j->reg->firms[r->firm].left_ms, date, sizeof date);
        REFUSE(JUDGE_FORMER_MEMBER, PROTO_STATUS_UNKNOWN_FIRM,
               "unknown firm '%.*s': it left the registry on %s (its figures until then are kept)",
               PROTO_STR_ARG(s->firm), date);
    }
    if (j->key && !keys_may_report(j->key, j->reg, r->firm))
        REFUSE(JUDGE_FORBIDDEN, PROTO_STATUS_FORBIDDEN,
               "key '%s' (%.8s...) may not report for firm '%s'", j->key->name, j->key->z85,
               j->reg->firms[r->firm].id);
    r->metric = config_metric_find(cfg, s->metric.ptr, s->metric.len);
    if (r->metric < 0) {
        char known[512];
        size_t off = 0;
        known[0] = '\0';
        for (size_t k = 0; k < cfg->nmetrics && off < sizeof known; k++)
            off += (size_t)snprintf(known + off, sizeof known - off, "%s%s", k ? ", " : "",
                                    cfg->metrics[k].name);
        REFUSE(JUDGE_UNKNOWN_METRIC, PROTO_STATUS_UNKNOWN_METRIC,
               "unknown metric '%.*s' (known: %s)", PROTO_STR_ARG(s->metric), known);
    }
    const config_metric_t *m = &cfg->metrics[r->metric];
    r->ts_ms = s->ts_ms;
    r->value = s->value;
    r->period = s->period;
    if (m->kind == METRIC_READING && s->period.kind != PROTO_PERIOD_NONE)
        REFUSE(JUDGE_PERIOD_ON_READING, PROTO_STATUS_INVALID,
               "metric '%s' is a reading: it takes a timestamp, not a period", m->name);
    if (m->kind == METRIC_READING || s->period.kind == PROTO_PERIOD_NONE) {
        /* the timestamp chooses the month: it must be a plausible one */
        if (!j->replay && s->ts_ms < j->floor_ms) {
            char day[16], hint[128] = "";
            format_day(s->ts_ms, day, sizeof day);
            if (s->ts_ms <= (PROTO_MAX_TS_MS - 1) / 1000 && s->ts_ms * 1000 >= j->floor_ms) {
                char sday[16];
                format_day(s->ts_ms * 1000, sday, sizeof sday);
                snprintf(hint, sizeof hint,
                         ": it looks like Unix seconds sent as milliseconds (as seconds it is %s)",
                         sday);
            }
            REFUSE(JUDGE_BEFORE_FLOOR, PROTO_STATUS_INVALID,
                   "timestamp %lld ms (%s) is before the floor %s (daemon.ts_floor)%s",
                   (long long)s->ts_ms, day, cfg->ts_floor, hint);
        }
        int year, month;
        if (calendar_month_of(j->cal, s->ts_ms, &year, &month) != 0 || year < PROTO_MIN_YEAR ||
            year > PROTO_MAX_YEAR)
            REFUSE(JUDGE_NO_MONTH, PROTO_STATUS_INVALID,
                   "timestamp %lld ms has no calendar month in %s", (long long)s->ts_ms,
                   cfg->timezone);
        r->period = (proto_period_t){
            .year = (uint16_t)year, .kind = PROTO_PERIOD_MONTH, .index = (uint8_t)month};
    }
    if (!j->replay && first_month(r->period) > j->latest_month) {
        char p[PROTO_PERIOD_STRLEN];
        proto_period_format(r->period, p, sizeof p);
        REFUSE(JUDGE_FUTURE_PERIOD, PROTO_STATUS_INVALID,
               "period %s is after the current month %04d-%02d in %s (daemon.future_slack_days "
               "= %g)",
               p, j->latest_month / 12, j->latest_month % 12 + 1, cfg->timezone,
               cfg->future_slack_days);
    }
    if (!j->replay && ((m->has_min && s->value < m->min) || (m->has_max && s->value > m->max)))
        REFUSE(JUDGE_OUT_OF_RANGE, PROTO_STATUS_INVALID,
               "value %.15g of metric '%s' is %s its %s %.15g ([metric %s] in the config)",
               s->value, m->name, m->has_min && s->value < m->min ? "below" : "above",
               m->has_min && s->value < m->min ? "min" : "max",
               m->has_min && s->value < m->min ? m->min : m->max, m->name);
    if (m->kind == METRIC_PERIOD)
        r->milli = agg_to_milli(s->value);
    return PROTO_STATUS_OK;
}

proto_refusal_t *judge_refusals_dup(const proto_refusal_t *r, uint32_t n)
{
    size_t text = 0;
    for (uint32_t k = 0; k < n; k++)
        text += r[k].reason.len;
    proto_refusal_t *c = xmalloc(n * sizeof *c + text + 1);
    char *p = (char *)(c + n);
    for (uint32_t k = 0; k < n; k++) {
        c[k] = r[k];
        if (r[k].reason.len)
            memcpy(p, r[k].reason.ptr, r[k].reason.len);
        c[k].reason.ptr = p;
        p += r[k].reason.len;
    }
    return c;
}
