/*
 * utf8.c -- UTF-8 validation and repair (see utf8.h).
 *
 * A hand-written decoder of one sequence at a time, following the
 * well-formed byte table of Unicode 15 (section 3.9, table 3-7): the
 * second byte's range depends on the first, which rules out overlong
 * forms, surrogates and code points past U+10FFFF in one place.
 */
#include "agents/utf8.h"

#include <string.h>

/* Returns the length of the well-formed sequence at p (1..4), or 0. */
static size_t sequence_len(const unsigned char *p, size_t left)
{
    unsigned char c = p[0];
    unsigned char lo = 0x80, hi = 0xBF;
    size_t n;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4;
    else
        return 0;
    if (left < n)
        return 0;
    if (c == 0xE0)
        lo = 0xA0;
    else if (c == 0xED)
        hi = 0x9F;
    else if (c == 0xF0)
        lo = 0x90;
    else if (c == 0xF4)
        hi = 0x8F;
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return n;
}

bool utf8_valid(const void *s, size_t len)
{
    const unsigned char *p = s;
    size_t i = 0;

    while (i < len) {
        size_t n = sequence_len(p + i, len - i);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

size_t utf8_sanitize(const void *s, size_t len, char *out)
{
    const unsigned char *p = s;
    size_t i = 0, o = 0;

    while (i < len) {
        size_t n = sequence_len(p + i, len - i);
        if (n == 0) {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
            continue;
        }
        memcpy(out + o, p + i, n);
        o += n;
        i += n;
    }
    return o;
}
