/* ids.c -- see ids.h. */
#include "daemon/ids.h"

#include <stdio.h>

#include "proto/proto.h"

int ids_validate(const char *s, size_t len, char *why, size_t whylen)
{
    if (len == 0) {
        snprintf(why, whylen, "empty id");
        return -1;
    }
    if (len > PROTO_MAX_ID_LEN) {
        snprintf(why, whylen, "id of %zu bytes exceeds %d", len, PROTO_MAX_ID_LEN);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-')) {
            snprintf(why, whylen, "character %zu of the id is not a letter, digit, '_' or '-'",
                     i + 1);
            return -1;
        }
    }
    return 0;
}

int ids_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        unsigned c = *p;
        size_t n;
        unsigned min;
        if (c < 0x80) {
            p++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            n = 1, min = 0x80, c &= 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2, min = 0x800, c &= 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3, min = 0x10000, c &= 0x07;
        } else {
            return 0;
        }
        if ((size_t)(end - p) <= n)
            return 0;
        for (size_t i = 1; i <= n; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return 0;
            c = (c << 6) | (p[i] & 0x3f);
        }
        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
            return 0;
        p += n + 1;
    }
    return 1;
}
