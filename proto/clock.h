/*
 * clock.h -- the two clocks every clustermon program reads.
 *
 * Monotonic time (CLOCK_MONOTONIC) measures intervals: timeouts, back-off,
 * rate limits, fsync latency. It never jumps, and means nothing across
 * processes or reboots. Wall time (CLOCK_REALTIME) stamps what leaves the
 * process or outlives it: samples, alerts, epochs, files. It can jump when
 * the clock is set, so nothing should measure an interval with it. Naming
 * the clock in every call keeps the two from being mixed up, and one
 * module keeps the daemon, the agents and the CLI reading them the same way
 * (milliseconds truncated, not rounded).
 *
 * The daemon's loop code uses uv_now() instead, the loop's cached
 * monotonic time; these are for code outside the loop or needing the
 * current instant. Safe from any thread; they cannot fail on Linux.
 */
#ifndef CLUSTERMON_PROTO_CLOCK_H
#define CLUSTERMON_PROTO_CLOCK_H

#include <stdint.h>

/* Monotonic time in milliseconds (from an arbitrary origin: boot, on Linux). */
int64_t clock_monotonic_ms(void);

/* Monotonic time in nanoseconds. */
uint64_t clock_monotonic_ns(void);

/* Wall time: milliseconds since the Unix epoch, UTC. */
int64_t clock_wall_ms(void);

/* Wall time in nanoseconds since the Unix epoch (e.g. to seed a generator). */
uint64_t clock_wall_ns(void);

#endif
