/*
 * period.c -- accounting periods: "YYYY", "YYYY-Qn", "YYYY-MM".
 *
 * Periods name the year, quarter or month a period metric's amount belongs
 * to. The grammar is deliberately exact (four-digit year, two-digit month,
 * no signs or spaces) so that each period has exactly one spelling and the
 * daemon can use the string as a key.
 */
#include <stdio.h>

#include "proto/proto.h"

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

int proto_period_parse(const char *s, size_t len, proto_period_t *ret_period)
{
    proto_period_t p = {0, PROTO_PERIOD_NONE, 0};
    unsigned year = 0;

    if (!s || (len != 4 && len != 7))
        return PROTO_EVALUE;
    for (size_t i = 0; i < 4; i++) {
        if (!is_digit(s[i]))
            return PROTO_EVALUE;
        year = year * 10 + (unsigned)(s[i] - '0');
    }
    if (year < PROTO_MIN_YEAR || year > PROTO_MAX_YEAR)
        return PROTO_EVALUE;
    p.year = (uint16_t)year;
    if (len == 4) {
        p.kind = PROTO_PERIOD_YEAR;
    } else if (s[4] != '-') {
        return PROTO_EVALUE;
    } else if (s[5] == 'Q') {
        if (s[6] < '1' || s[6] > '4')
            return PROTO_EVALUE;
        p.kind = PROTO_PERIOD_QUARTER;
        p.index = (uint8_t)(s[6] - '0');
    } else {

        if (!is_digit(s[5]) || !is_digit(s[6]))
            return PROTO_EVALUE;
        unsigned month = (unsigned)(s[5] - '0') * 10 + (unsigned)(s[6] - '0');
        if (month < 1 || month > 12)
            return PROTO_EVALUE;
        p.kind = PROTO_PERIOD_MONTH;
        p.index = (uint8_t)month;
    }
    *ret_period = p;
    return PROTO_OK;
}

size_t proto_period_format(proto_period_t p, char *buf, size_t bufsize)
{
    int n;

    if (!buf || bufsize == 0)
        return 0;
    buf[0] = '\0';
    if (p.year < PROTO_MIN_YEAR || p.year > PROTO_MAX_YEAR)
        return 0;
    switch (p.kind) {
    case PROTO_PERIOD_YEAR: n = snprintf(buf, bufsize, "%04u", (unsigned)p.year); break;
    case PROTO_PERIOD_QUARTER:
        if (p.index < 1 || p.index > 4)
            return 0;
        n = snprintf(buf, bufsize, "%04u-Q%u", (unsigned)p.year, (unsigned)p.index);
        break;
    case PROTO_PERIOD_MONTH:
        if (p.index < 1 || p.index > 12)
            return 0;
        n = snprintf(buf, bufsize, "%04u-%02u", (unsigned)p.year, (unsigned)p.index);
        break;
    default: return 0;
    }
    if (n < 0 || (size_t)n >= bufsize) {
        buf[0] = '\0';
        return 0;
    }
    return (size_t)n;
}
