/*
 * utf8.h -- UTF-8 checks shared by the agent-side programs.
 *
 * The wire protocol carries ids and text as MessagePack strings, which must
 * be UTF-8; the agent checks its input before encoding so a bad byte is
 * reported at the CSV line that holds it, and the JSON writers repair what a
 * peer sent rather than emit invalid JSON. Pure functions, no allocation.
 */
#ifndef CLUSTERMON_AGENTS_UTF8_H
#define CLUSTERMON_AGENTS_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Returns true if s[0..len) is well-formed UTF-8 (no overlong forms, no
 * surrogates, nothing above U+10FFFF). NUL bytes count as valid.
 */
bool utf8_valid(const void *s, size_t len);

/* The worst case of utf8_sanitize(): every byte becomes U+FFFD (3 bytes). */
#define UTF8_SANITIZED_MAX(len) ((len)*3)

/*
 * Copies s[0..len) into out, replacing every byte that is not part of a
 * well-formed sequence with U+FFFD. out must hold UTF8_SANITIZED_MAX(len)
 * bytes. Returns the number of bytes written (not NUL-terminated).
 */
size_t utf8_sanitize(const void *s, size_t len, char *out);

#endif
