/*
 * crc32.h -- CRC-32 (IEEE 802.3, the zlib/PNG polynomial), for the agent's
 * spool: it guards each spool file against torn or corrupted contents and
 * fingerprints the part of an input file already consumed. Bitwise tables,
 * no dependency on zlib.
 */
#ifndef CLUSTERMON_AGENTS_CRC32_H
#define CLUSTERMON_AGENTS_CRC32_H

#include <stddef.h>
#include <stdint.h>

/*
 * Returns the CRC-32 of the bytes fed so far followed by buf[0..len): start
 * with crc = 0 and feed pieces in order (crc32_update(0, "ab", 2) equals
 * crc32_update(crc32_update(0, "a", 1), "b", 1)). Pure, except that the
 * first call builds a static table: call it from one thread (the agent has
 * only one).
 */
uint32_t crc32_update(uint32_t crc, const void *buf, size_t len);

#endif
