/* clock.c -- see clock.h. */
#include "proto/clock.h"

#include <time.h>

static uint64_t now_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int64_t clock_monotonic_ms(void)
{
    return (int64_t)(clock_monotonic_ns() / 1000000);
}

uint64_t clock_monotonic_ns(void)
{
    return now_ns(CLOCK_MONOTONIC);
}

int64_t clock_wall_ms(void)
{
    return (int64_t)(clock_wall_ns() / 1000000);
}

uint64_t clock_wall_ns(void)
{
    return now_ns(CLOCK_REALTIME);
}
