/*
 * check_bytes.c -- proto/bytes.h: the little-endian layout every clustermon
 * file format relies on, checked against bytes written out by hand (not
 * against the host's own byte order), at unaligned offsets, and round trips
 * of the extreme values.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/bytes.h"
#include "tests/testlib.h"

START_TEST(test_put_le32_layout)
{
    unsigned char b[5] = {0xee, 0xee, 0xee, 0xee, 0xee};
    bytes_put_le32(b, 0x04030201u);
    static const unsigned char want[5] = {0x01, 0x02, 0x03, 0x04, 0xee};
    ck_assert_mem_eq(b, want, sizeof want); /* and nothing past the 4 bytes */
}
END_TEST

START_TEST(test_put_le64_layout)
{
    unsigned char b[9];
    memset(b, 0xee, sizeof b);
    bytes_put_le64(b, 0x0807060504030201ull);
    static const unsigned char want[9] = {1, 2, 3, 4, 5, 6, 7, 8, 0xee};
    ck_assert_mem_eq(b, want, sizeof want);
}
END_TEST

START_TEST(test_get_from_bytes)
{
    static const unsigned char b[8] = {0x78, 0x56, 0x34, 0x12, 0xf0, 0xde, 0xbc, 0x9a};
    ck_assert_uint_eq(bytes_get_le32(b), 0x12345678u);
    ck_assert_uint_eq(bytes_get_le32(b + 4), 0x9abcdef0u); /* high bit set: no sign extension */
    ck_assert_uint_eq(bytes_get_le64(b), 0x9abcdef012345678ull);
}
END_TEST

/* Round trips at every offset of a buffer, so an aligned-access assumption shows. */
static const uint64_t values[] = {0,
                                  1,
                                  0xff,
                                  0x100,
                                  0x7fffffffu,
                                  0x80000000u,
                                  0xffffffffu,
                                  0x100000000ull,
                                  0x8000000000000000ull,
                                  UINT64_MAX};

START_TEST(test_round_trip_unaligned)
{
    uint64_t v = values[_i];
    unsigned char buf[16];
    for (int off = 0; off < 8; off++) {
        memset(buf, 0, sizeof buf);
        bytes_put_le64(buf + off, v);
        ck_assert_uint_eq(bytes_get_le64(buf + off), v);
        bytes_put_le32(buf + off, (uint32_t)v);
        ck_assert_uint_eq(bytes_get_le32(buf + off), (uint32_t)v);
    }
}
END_TEST

static Suite *bytes_suite(void)
{
    Suite *s = suite_create("bytes");
    TCase *tc = tcase_create("le");
    tcase_add_test(tc, test_put_le32_layout);
    tcase_add_test(tc, test_put_le64_layout);
    tcase_add_test(tc, test_get_from_bytes);
    tcase_add_loop_test(tc, test_round_trip_unaligned, 0, (int)(sizeof values / sizeof values[0]));
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return testlib_run(bytes_suite());
}
