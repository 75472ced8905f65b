/*
 * bytes.h -- little-endian integers in byte buffers.
 *
 * Every file format clustermon writes itself (the WAL, snapshots, the
 * membership file, the alert sequence file, the agent's spool) and the
 * WAL's batch records store their integers little-endian at fixed offsets,
 * whatever the host's byte order. These helpers are the one place that
 * says how; they read and write byte by byte, so p need not be aligned.
 * Header-only (static inline): the daemon, the agents and the CLI all use
 * them on hot paths. Pure functions, safe from any thread.
 */
#ifndef CLUSTERMON_PROTO_BYTES_H
#define CLUSTERMON_PROTO_BYTES_H

#include <stdint.h>

/* Stores v at p[0..4), least significant byte first. */
static inline void bytes_put_le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* Stores v at p[0..8), least significant byte first. */
static inline void bytes_put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* The value bytes_put_le32 stored at p. */
static inline uint32_t bytes_get_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The value bytes_put_le64 stored at p. */
static inline uint64_t bytes_get_le64(const unsigned char *p)
{
    return (uint64_t)bytes_get_le32(p) | (uint64_t)bytes_get_le32(p + 4) << 32;
}

#endif
