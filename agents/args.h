/*
 * args.h -- command-line helpers shared by the client programs
 * (clustermon-agent, clustermon-sub, clustermonctl).
 */
#ifndef CLUSTERMON_ARGS_H
#define CLUSTERMON_ARGS_H

#include <stdbool.h>

/* Parses all of s as a decimal integer in [min, max]. Returns false (and
 * leaves *ret alone) on anything else. */
bool args_parse_long(const char *s, long min, long max, long *ret);

#endif
