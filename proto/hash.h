/*
 * hash.h -- 64-bit FNV-1a, the hash of clustermon's in-memory tables.
 *
 * The daemon's open-addressing tables (firms by id, access keys by Z85,
 * agent streams, alerts, the per-connection rate buckets) all hash short
 * identifiers. FNV-1a is small, fast on such keys and good enough for
 * tables whose keys come from configuration or are limited in number; it
 * is not a defence against chosen collisions, and no table relies on it
 * for that. The values are never stored on disk or sent, so the function
 * may change, but then for every table at once, here. (The copies this
 * replaced started from 1469598103934665603, the offset basis with its
 * last digit lost; being in memory only, nothing depended on it.)
 *
 * Header-only (static inline). hash_fnv1a_update chains pieces:
 * hashing "ab" is the same as hashing "a" then "b" from its result.
 * Pure functions, safe from any thread.
 */
#ifndef CLUSTERMON_PROTO_HASH_H
#define CLUSTERMON_PROTO_HASH_H

#include <stddef.h>
#include <stdint.h>

#define HASH_FNV1A_OFFSET 14695981039346656037ull /* 0xcbf29ce484222325, the hash of nothing */
#define HASH_FNV1A_PRIME 1099511628211ull

/* Hashes data[0..len) on from h (HASH_FNV1A_OFFSET to start). */
static inline uint64_t hash_fnv1a_update(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * HASH_FNV1A_PRIME;
    return h;
}

/* FNV-1a of data[0..len). */
static inline uint64_t hash_fnv1a(const void *data, size_t len)
{
    return hash_fnv1a_update(HASH_FNV1A_OFFSET, data, len);
}

/* FNV-1a of a NUL-terminated string (without its NUL). */
static inline uint64_t hash_fnv1a_str(const char *s)
{
    uint64_t h = HASH_FNV1A_OFFSET;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * HASH_FNV1A_PRIME;
    return h;
}

#endif
