/* calendar.c -- see calendar.h. */
#include "daemon/calendar.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/clock.h"

int calendar_init(calendar_t *cal, const char *zone)
{
    if (setenv("TZ", zone, 1) != 0)
        return -1;
    tzset();
    cal->lo_ms = cal->hi_ms = 0;
    cal->year = cal->month = 0;
    cal->midnight_date[0] = '\0';
    cal->midnight_ms = 0;
    return 0;
}

int64_t calendar_midnight_ms(calendar_t *cal, const char *key, int y, int m, int d)
{
    if (cal->midnight_date[0] && strcmp(key, cal->midnight_date) == 0)
        return cal->midnight_ms;
    struct tm tm = {.tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d, .tm_isdst = -1};
    time_t t = mktime(&tm);
    int64_t ms = t == (time_t)-1 ? 0 : (int64_t)t * 1000;
    if (strlen(key) < sizeof cal->midnight_date) {
        strcpy(cal->midnight_date, key);
        cal->midnight_ms = ms;
    }
    return ms;
}

/* Unix seconds of local midnight on the first of (year, month 1..13). */
static int64_t month_start(int year, int month)
{
    struct tm tm = {0};
    tm.tm_year = year - 1900 + (month - 1) / 12;
    tm.tm_mon = (month - 1) % 12;
    tm.tm_mday = 1;
    tm.tm_isdst = -1;
    return (int64_t)mktime(&tm);
}

/* s * 1000, clamped: a month at the very ends of int64 ms is cut short, not wrapped. */
static int64_t sec_to_ms(int64_t s)
{
    if (s > INT64_MAX / 1000)
        return INT64_MAX;
    if (s < INT64_MIN / 1000)
        return INT64_MIN;
    return s * 1000;
}

int calendar_month_of(calendar_t *cal, int64_t ts_ms, int *ret_year, int *ret_month)
{
    if (ts_ms >= cal->lo_ms && ts_ms < cal->hi_ms) {
        *ret_year = cal->year;
        *ret_month = cal->month;
        return 0;
    }
    /* floor division: a negative ts must not round toward zero (nor be negated: INT64_MIN) */
    time_t secs = (time_t)(ts_ms / 1000 - (ts_ms % 1000 < 0));
    struct tm tm;
    if (!localtime_r(&secs, &tm))
        return -1;
    cal->year = tm.tm_year + 1900;
    cal->month = tm.tm_mon + 1;
    cal->lo_ms = sec_to_ms(month_start(cal->year, cal->month));
    cal->hi_ms = sec_to_ms(month_start(cal->year, cal->month + 1));
    *ret_year = cal->year;
    *ret_month = cal->month;
    return 0;
}

int64_t calendar_now_ms(void)
{
    return clock_wall_ms();
}
