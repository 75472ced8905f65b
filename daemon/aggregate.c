/* aggregate.c -- see aggregate.h. */
#include "daemon/aggregate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/xalloc.h"

agg_t *agg_new(size_t nfirms, size_t nmetrics)
{
    agg_t *agg = xcalloc(1, sizeof *agg);
    agg->nfirms = nfirms;
    agg->nmetrics = nmetrics;
    agg->series = xcalloc(nfirms * nmetrics, sizeof *agg->series); /* xcalloc takes 0 */
    return agg;
}

void agg_destroy(agg_t **pagg)
{
    agg_t *agg = *pagg;
    if (!agg)
        return;
    for (size_t i = 0; i < agg->nfirms * agg->nmetrics; i++)
        free(agg->series[i].years);
    free(agg->series);
    free(agg);
    *pagg = NULL;
}

void agg_grow(agg_t *agg, size_t nfirms)
{
    if (nfirms <= agg->nfirms)
        return;
    size_t was = agg->nfirms * agg->nmetrics, now = nfirms * agg->nmetrics;
    agg->series = xrealloc(agg->series, (now ? now : 1) * sizeof *agg->series);
    memset(agg->series + was, 0, (now - was) * sizeof *agg->series);
    agg->nfirms = nfirms;
}

int64_t agg_to_milli(double v)
{
    return (int64_t)llround(v * 1000.0);
}

const agg_series_t *agg_series(const agg_t *agg, int firm, int metric)
{
    return &agg->series[(size_t)firm * agg->nmetrics + (size_t)metric];
}

static agg_year_t *year_find(const agg_series_t *s, int year)
{
    for (uint32_t i = 0; i < s->nyears; i++)
        if (s->years[i].year == year)
            return &s->years[i];
    return NULL;
}

agg_series_t *agg_series_mut(agg_t *agg, int firm, int metric)
{
    return &agg->series[(size_t)firm * agg->nmetrics + (size_t)metric];
}

/* Finds or inserts (sorted) the record for year; allocates only for a new year. */
agg_year_t *agg_year_get(agg_series_t *s, int year)
{
    agg_year_t *y = year_find(s, year);
    if (y)
        return y;
    size_t cap = s->cap;
    xgrow(&s->years, &cap, (size_t)s->nyears + 1, sizeof *s->years);
    s->cap = (uint32_t)cap;
    uint32_t at = 0;
    while (at < s->nyears && s->years[at].year < year)
        at++;
    memmove(&s->years[at + 1], &s->years[at], (s->nyears - at) * sizeof *s->years);
    s->nyears++;
    y = &s->years[at];
    memset(y, 0, sizeof *y);
    y->year = (uint16_t)year;
    return y;
}

void agg_put_period(agg_t *agg, int firm, int metric, proto_period_t p, int64_t milli)
{
    agg_series_t *s = &agg->series[(size_t)firm * agg->nmetrics + (size_t)metric];
    agg_year_t *y = agg_year_get(s, p.year);
    y->any = true;
    switch (p.kind) {
    case PROTO_PERIOD_YEAR:
        y->annual = milli;
        y->has_annual = true;
        break;
    case PROTO_PERIOD_QUARTER:
        y->quarter[p.index - 1] = milli;
        y->quarter_mask |= (uint8_t)(1u << (p.index - 1));
        break;
    case PROTO_PERIOD_MONTH:
        y->month[p.index - 1] = milli;
        y->month_mask |= (uint16_t)(1u << (p.index - 1));
        break;
    default:
        break;
    }
}

void agg_put_reading(agg_t *agg, int firm, int metric, int year, int month, double v,
                     int64_t ts_ms)
{
    agg_series_t *s = &agg->series[(size_t)firm * agg->nmetrics + (size_t)metric];
    agg_year_t *y = agg_year_get(s, year);
    y->any = true;
    y->month_mask |= (uint16_t)(1u << (month - 1));
    if (s->count == 0 || ts_ms >= s->last_ts) {
        s->last = v;
        s->last_ts = ts_ms;
    }
    s->count++;
}

static bool quarter_total(const agg_year_t *y, int q, int64_t *ret)
{
    if (y->quarter_mask & (1u << (q - 1))) {
        *ret = y->quarter[q - 1];
        return true;
    }
    bool any = false;
    int64_t sum = 0;
    for (int m = (q - 1) * 3; m < q * 3; m++) {
        if (y->month_mask & (1u << m)) {
            sum += y->month[m];
            any = true;
        }
    }
    *ret = sum;
    return any;
}

bool agg_firm_total(const agg_t *agg, int firm, int metric, proto_period_t p, int64_t *ret_milli)
{
    const agg_year_t *y = year_find(agg_series(agg, firm, metric), p.year);
    *ret_milli = 0;
    if (!y)
        return false;
    switch (p.kind) {
    case PROTO_PERIOD_YEAR: {
        if (y->has_annual) {
            *ret_milli = y->annual;
            return true;
        }
        bool any = false;
        for (int q = 1; q <= 4; q++) {
            int64_t v;
            if (quarter_total(y, q, &v)) {
                *ret_milli += v;
                any = true;
            }
        }
        return any;
    }
    case PROTO_PERIOD_QUARTER:
        return quarter_total(y, p.index, ret_milli);
    case PROTO_PERIOD_MONTH:
        if (y->month_mask & (1u << (p.index - 1))) {
            *ret_milli = y->month[p.index - 1];
            return true;
        }
        return false;
    default:
        return false;
    }
}

bool agg_firm_reported(const agg_t *agg, int firm, int year)
{
    for (size_t m = 0; m < agg->nmetrics; m++) {
        const agg_year_t *y = year_find(agg_series(agg, firm, (int)m), year);
        if (y && y->any)
            return true;
    }
    return false;
}
