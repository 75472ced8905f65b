/*
 * crc32.c -- table-driven CRC-32 (reflected polynomial 0xEDB88320), the
 * checksum zlib, PNG and gzip use, so a spool file can be checked with any
 * standard tool if need be.
 */
#include "agents/crc32.h"

#include <stdbool.h>

static uint32_t table[256];
static bool table_ready;

static void table_build(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
    table_ready = true;
}

uint32_t crc32_update(uint32_t crc, const void *buf, size_t len)
{
    const unsigned char *p = buf;

    if (!table_ready)
        table_build();
    crc = ~crc;
    while (len-- > 0)
        crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}
