/* aggregate.c -- see aggregate.h. */
#include "daemon/aggregate.h"

#include <math.h>
#include <stdio.h>
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

/* The index of the first year record >= year (nyears if none): years are
 * sorted, and a series can hold decades of them, so this is a binary search
 * (rules ask for years per sample; a linear scan was most of ingest's time). */
static uint32_t year_lower_bound(const agg_series_t *s, int year)
{
    uint32_t lo = 0, hi = s->nyears;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (s->years[mid].year < year)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Where year is if the series' years have no gaps (the usual case: a firm
 * reports year after year), else nyears. One probe instead of a search's
 * log2(years) cache misses. */
static uint32_t year_dense_index(const agg_series_t *s, int year)
{
    if (!s->nyears || year < s->first_year)
        return s->nyears;
    uint32_t at = (uint32_t)(year - s->first_year);
    return at < s->nyears && s->years[at].year == year ? at : s->nyears;
}

const agg_year_t *agg_series_year(const agg_series_t *s, int year)
{
    uint32_t at = year_dense_index(s, year);
    if (at < s->nyears)
        return &s->years[at];
    at = year_lower_bound(s, year);
    return at < s->nyears && s->years[at].year == year ? &s->years[at] : NULL;
}

/* Finds or inserts (sorted) the record for year; allocates only for a new year. */
static agg_year_t *year_get(agg_series_t *s, int year)
{
    uint32_t at = year_dense_index(s, year);
    if (at < s->nyears)
        return &s->years[at];
    at = year_lower_bound(s, year);
    if (at < s->nyears && s->years[at].year == year)
        return &s->years[at];
    if (s->nyears == s->cap) {
        /* room for 4 years at first (three years of history and the current
         * one: most series never grow again), then doubling. xgrow's first 8
         * made a province's 200,000 series hold twice the memory they use. */
        s->cap = s->cap ? s->cap * 2 : 4;
        s->years = xrealloc(s->years, (size_t)s->cap * sizeof *s->years);
    }
    memmove(&s->years[at + 1], &s->years[at], (s->nyears - at) * sizeof *s->years);
    s->nyears++;
    agg_year_t *y = &s->years[at];
    memset(y, 0, sizeof *y);
    y->year = (uint16_t)year;
    s->first_year = s->years[0].year;
    return y;
}

void agg_put_period(agg_t *agg, int firm, int metric, proto_period_t p, int64_t milli)
{
    agg_series_t *s = &agg->series[(size_t)firm * agg->nmetrics + (size_t)metric];
    agg_year_t *y = year_get(s, p.year);
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
    case PROTO_PERIOD_MONTH: {
        unsigned bit = 1u << (p.index - 1);
        int64_t old = (y->month_mask & bit) ? y->month[p.index - 1] : 0;
        y->month_sum[(p.index - 1) / 3] += milli - old;
        y->month[p.index - 1] = milli;
        y->month_mask |= (uint16_t)bit;
        break;
    }
    default: break;
    }
}

void agg_put_reading(agg_t *agg, int firm, int metric, int year, int month, double v, int64_t ts_ms)
{
    agg_series_t *s = &agg->series[(size_t)firm * agg->nmetrics + (size_t)metric];
    agg_year_t *y = year_get(s, year);
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
    *ret = y->month_sum[q - 1];
    return (y->month_mask >> ((q - 1) * 3)) & 7u;
}

bool agg_firm_total(const agg_t *agg, int firm, int metric, proto_period_t p, int64_t *ret_milli)
{
    const agg_year_t *y = agg_series_year(agg_series(agg, firm, metric), p.year);
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
    case PROTO_PERIOD_QUARTER: return quarter_total(y, p.index, ret_milli);
    case PROTO_PERIOD_MONTH:
        if (y->month_mask & (1u << (p.index - 1))) {
            *ret_milli = y->month[p.index - 1];
            return true;
        }
        return false;
    default: return false;
    }
}

bool agg_firm_reported(const agg_t *agg, int firm, int year)
{
    for (size_t m = 0; m < agg->nmetrics; m++) {
        const agg_year_t *y = agg_series_year(agg_series(agg, firm, (int)m), year);
        if (y && y->any)
            return true;
    }
    return false;
}

/* ---- durable state ------------------------------------------------------------ */

static void pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

void agg_pack(const agg_t *agg, const registry_t *reg, const config_t *cfg, msgpack_packer *pk)
{
    size_t nseries = 0;
    for (size_t i = 0; i < agg->nfirms * agg->nmetrics; i++)
        nseries += agg->series[i].nyears > 0;
    msgpack_pack_array(pk, nseries);
    for (size_t f = 0; f < agg->nfirms; f++) {
        for (size_t m = 0; m < agg->nmetrics; m++) {
            const agg_series_t *s = agg_series(agg, (int)f, (int)m);
            if (!s->nyears)
                continue;
            msgpack_pack_array(pk, 6);
            pack_str(pk, reg->firms[f].id);
            pack_str(pk, cfg->metrics[m].name);
            msgpack_pack_double(pk, s->last);
            msgpack_pack_int64(pk, s->last_ts);
            msgpack_pack_uint64(pk, s->count);
            msgpack_pack_array(pk, s->nyears);
            for (uint32_t y = 0; y < s->nyears; y++) {
                const agg_year_t *yr = &s->years[y];
                msgpack_pack_array(pk, 8);
                msgpack_pack_uint16(pk, yr->year);
                msgpack_pack_uint16(pk, yr->month_mask);
                msgpack_pack_uint8(pk, yr->quarter_mask);
                msgpack_pack_uint8(pk, yr->has_annual);
                msgpack_pack_uint8(pk, yr->any);
                msgpack_pack_int64(pk, yr->annual);
                msgpack_pack_array(pk, 12);
                for (int k = 0; k < 12; k++)
                    msgpack_pack_int64(pk, yr->month[k]);
                msgpack_pack_array(pk, 4);
                for (int k = 0; k < 4; k++)
                    msgpack_pack_int64(pk, yr->quarter[k]);
            }
        }
    }
}

static bool is_array(const msgpack_object *o, uint32_t n)
{
    return o->type == MSGPACK_OBJECT_ARRAY && (n == 0 || o->via.array.size == n);
}

/* Checks one series entry; NULL if it is well formed, else what is wrong. */
static const char *entry_check(const msgpack_object *s)
{
    int64_t i64;
    uint64_t count;
    if (!is_array(s, 6))
        return "malformed entry";
    const msgpack_object *v = s->via.array.ptr, *years = &v[5];
    if (v[0].type != MSGPACK_OBJECT_STR || v[1].type != MSGPACK_OBJECT_STR ||
        (v[2].type != MSGPACK_OBJECT_FLOAT64 && v[2].type != MSGPACK_OBJECT_FLOAT32) ||
        !proto_obj_i64(&v[3], &i64) || !proto_obj_u64(&v[4], &count) || !is_array(years, 0))
        return "malformed entry";
    for (uint32_t y = 0; y < years->via.array.size; y++) {
        const msgpack_object *yr = &years->via.array.ptr[y];
        if (!is_array(yr, 8) || !is_array(&yr->via.array.ptr[6], 12) ||
            !is_array(&yr->via.array.ptr[7], 4))
            return "malformed year";
        for (int k = 0; k < 6; k++)
            if (!proto_obj_i64(&yr->via.array.ptr[k], &i64))
                return "malformed year";
        proto_obj_i64(&yr->via.array.ptr[0], &i64);
        if (i64 < PROTO_MIN_YEAR || i64 > PROTO_MAX_YEAR)
            return "year out of range";
        for (int k = 0; k < 12; k++)
            if (!proto_obj_i64(&yr->via.array.ptr[6].via.array.ptr[k], &i64))
                return "malformed month";
        for (int k = 0; k < 4; k++)
            if (!proto_obj_i64(&yr->via.array.ptr[7].via.array.ptr[k], &i64))
                return "malformed quarter";
    }
    return NULL;
}

/* Gives series the state of a checked entry's fields v. */
static void entry_load(agg_series_t *series, const msgpack_object *v)
{
    const msgpack_object *years = &v[5];
    series->last = v[2].via.f64;
    proto_obj_i64(&v[3], &series->last_ts);
    proto_obj_u64(&v[4], &series->count);
    for (uint32_t y = 0; y < years->via.array.size; y++) {
        const msgpack_object *f = years->via.array.ptr[y].via.array.ptr;
        int64_t fields[6];
        for (int k = 0; k < 6; k++)
            proto_obj_i64(&f[k], &fields[k]);
        agg_year_t *yr = year_get(series, (int)fields[0]);
        yr->month_mask = (uint16_t)(fields[1] & 0xfff);
        yr->quarter_mask = (uint8_t)(fields[2] & 0xf);
        yr->has_annual = fields[3] != 0;
        yr->any = fields[4] != 0;
        yr->annual = fields[5];
        for (int k = 0; k < 12; k++)
            proto_obj_i64(&f[6].via.array.ptr[k], &yr->month[k]);
        for (int k = 0; k < 4; k++)
            proto_obj_i64(&f[7].via.array.ptr[k], &yr->quarter[k]);
        memset(yr->month_sum, 0, sizeof yr->month_sum); /* derived: rebuilt */
        for (int k = 0; k < 12; k++)
            if (yr->month_mask & (1u << k))
                yr->month_sum[k / 3] += yr->month[k];
    }
}

int agg_unpack(agg_t *agg, const registry_t *reg, const config_t *cfg, const msgpack_object *o,
               bool apply, agg_dropped_t *ret_dropped, char *err, size_t errlen)
{
    if (!o || !is_array(o, 0)) {
        snprintf(err, errlen, "series: missing or not an array");
        return -1;
    }
    for (uint32_t i = 0; i < o->via.array.size; i++) {
        const char *why = entry_check(&o->via.array.ptr[i]);
        if (why) {
            snprintf(err, errlen, "series: %s", why);
            return -1;
        }
    }
    for (uint32_t i = 0; apply && i < o->via.array.size; i++) {
        const msgpack_object *v = o->via.array.ptr[i].via.array.ptr;
        int firm = registry_find_any(reg, v[0].via.str.ptr, v[0].via.str.size);
        int metric = config_metric_find(cfg, v[1].via.str.ptr, v[1].via.str.size);
        /* the aggregate is sized for reg and cfg: the bounds only guard */
        bool no_firm = firm < 0 || (size_t)firm >= agg->nfirms;
        bool no_metric = metric < 0 || (size_t)metric >= agg->nmetrics;
        if (no_firm || no_metric) {
            if (ret_dropped) {
                ret_dropped->unknown_firms += no_firm;
                ret_dropped->unknown_metrics += !no_firm && no_metric;
            }
            continue;
        }
        entry_load(&agg->series[(size_t)firm * agg->nmetrics + (size_t)metric], v);
    }
    return 0;
}
