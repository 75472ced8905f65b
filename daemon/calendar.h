/*
 * calendar.h -- maps Unix timestamps to calendar months of the configured
 * time zone (periods are local: a reading at 2022-07-01T00:30+08:00 belongs
 * to July in Asia/Shanghai). The zone is process-wide (TZ), set once at
 * start-up; a one-month cache keeps localtime_r() off the hot path, since
 * a stream of readings nearly always stays within one month.
 */
#ifndef CLUSTERMON_CALENDAR_H
#define CLUSTERMON_CALENDAR_H

#include <stdint.h>

typedef struct {
    int64_t lo_ms, hi_ms; /* the cached month is [lo_ms, hi_ms) */
    int year, month;      /* month 1..12 */
    /* calendar_midnight_ms's cache: the last date asked and its answer */
    char midnight_date[16];
    int64_t midnight_ms;
} calendar_t;

/* Sets TZ to zone and resets cal. Call before the loop runs. Returns 0 or -1. */
int calendar_init(calendar_t *cal, const char *zone);

/* Writes the local year and month (1..12) of ts_ms. Returns 0, or -1 if the
 * timestamp cannot be converted. */
int calendar_month_of(calendar_t *cal, int64_t ts_ms, int *ret_year, int *ret_month);

/* Unix ms of local midnight of (y, m, d), or 0 if mktime cannot say. The
 * last date asked, named by key (its text, under 16 bytes: else uncached),
 * is cached: a batch's judge asks for daemon.ts_floor's midnight, and
 * mktime per batch was a measurable part of a one-sample batch. */
int64_t calendar_midnight_ms(calendar_t *cal, const char *key, int y, int m, int d);

/* Unix ms of the current time (clock_wall_ms, under the name the daemon has long used). */
int64_t calendar_now_ms(void);

#endif
