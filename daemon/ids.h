/*
 * ids.h -- the one rule for identifiers (firms, metrics, clusters, chains,
 * rules, agents): 1..PROTO_MAX_ID_LEN bytes of [A-Za-z0-9_-]. No dots, so an
 * id can sit inside an alert topic "alert.<cluster>.<severity>" unambiguously.
 */
#ifndef CLUSTERMON_IDS_H
#define CLUSTERMON_IDS_H

#include <stddef.h>

/* Returns 0 if s[0..len) is a valid id, else -1 with the reason in why. */
int ids_validate(const char *s, size_t len, char *why, size_t whylen);

/* Returns 1 if s[0..len) is well-formed UTF-8 (no overlongs, no surrogates). */
int ids_utf8_valid(const char *s, size_t len);
#endif
