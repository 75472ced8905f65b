/*
 * check_hash.c -- proto/hash.h: FNV-1a 64 against the published test
 * vectors, and the properties the daemon's tables use (chaining pieces,
 * the string form equal to the buffer form, bytes >= 0x80 unsigned).
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/hash.h"
#include "tests/testlib.h"

/* From the FNV reference (isthe.com/chongo/tech/comp/fnv), FNV-1a 64. */
static const struct {
    const char *in;
    uint64_t want;
} vectors[] = {
    {"", 0xcbf29ce484222325ull},
    {"a", 0xaf63dc4c8601ec8cull},
    {"foobar", 0x85944171f73967e8ull},
};

START_TEST(test_vectors)
{
    const char *in = vectors[_i].in;
    ck_assert_uint_eq(hash_fnv1a(in, strlen(in)), vectors[_i].want);
    ck_assert_uint_eq(hash_fnv1a_str(in), vectors[_i].want);
}
END_TEST

START_TEST(test_update_chains)
{
    uint64_t h = hash_fnv1a_update(HASH_FNV1A_OFFSET, "foo", 3);
    ck_assert_uint_eq(hash_fnv1a_update(h, "bar", 3), hash_fnv1a("foobar", 6));
    ck_assert_uint_ne(h, hash_fnv1a("foobar", 6));
}
END_TEST

START_TEST(test_high_bytes_unsigned)
{
    /* a signed char would xor in 0xffffffffffffff80 instead of 0x80 */
    const char s[] = "\x80\xff";
    uint64_t h = (HASH_FNV1A_OFFSET ^ 0x80) * HASH_FNV1A_PRIME;
    h = (h ^ 0xff) * HASH_FNV1A_PRIME;
    ck_assert_uint_eq(hash_fnv1a(s, 2), h);
    ck_assert_uint_eq(hash_fnv1a_str(s), h);
}
END_TEST

static Suite *hash_suite(void)
{
    Suite *s = suite_create("hash");
    TCase *tc = tcase_create("fnv1a");
    tcase_add_loop_test(tc, test_vectors, 0, (int)(sizeof vectors / sizeof vectors[0]));
    tcase_add_test(tc, test_update_chains);
    tcase_add_test(tc, test_high_bytes_unsigned);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return testlib_run(hash_suite());
}
