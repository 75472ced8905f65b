/*
 * testlib.h -- what the Check suites share: a temporary directory per test
 * (made with mkdtemp, removed with everything in it), small file helpers,
 * and configs built from the embedded default with [daemon] keys replaced
 * (the C twin of tests/lib.sh's make_config). Linked into every check_*
 * binary by the Makefile.
 *
 * Every helper asserts (ck_assert) instead of returning an error: a fixture
 * that cannot be built is the test's failure, with the reason in the
 * message. Call them from a test or from a checked fixture.
 */
#ifndef CLUSTERMON_TESTLIB_H
#define CLUSTERMON_TESTLIB_H

#include <check.h>
#include <stddef.h>
#include <sys/types.h>

#include "daemon/config.h"

/* A temporary directory: /tmp/check_<name>.<runner pid>.XXXXXX (short, so that paths
 * built in it fit the suites' fixed buffers). path is "" until made. */
typedef struct {
    char path[64];
} testlib_dir_t;

/* Makes a new, empty directory (mode 0700). One that a failed test left
 * (a failed ck_assert in a forked test skips the teardown) is removed when
 * the test runner exits. */
void testlib_dir_make(testlib_dir_t *d, const char *name);

/* Removes the directory and everything in it; a no-op if it was never made
 * (or already removed). Leaves d->path empty. */
void testlib_dir_remove(testlib_dir_t *d);

/* Writes "<dir>/<file>" into buf (asserts that it fits); returns buf. */
char *testlib_dir_file(const testlib_dir_t *d, const char *file, char *buf, size_t size);

/* Removes path and, if it is a directory, everything in it (rm -rf, without
 * following symlinks). Returns 0, or -1 with errno (ENOENT is not an error). */
int testlib_rm_rf(const char *path);

/* Writes text to path (created or truncated) with mode. */
void testlib_write_file(const char *path, const char *text, mode_t mode);

/* Reads a whole file, NUL-terminated; *ret_len (if not NULL) is its size.
 * Caller owns the result (free). Returns NULL if the file cannot be read. */
char *testlib_read_file(const char *path, size_t *ret_len);

/*
 * The embedded default config (daemon/clustermond.conf) with [daemon] keys
 * replaced or added: kv is a NULL-terminated list of "key = value" lines.
 * Caller owns the result (free).
 */
char *testlib_config_text(const char *const *kv);

/* Loads text (named path in messages) and asserts that it loads. Caller
 * owns the result (config_destroy). */
config_t *testlib_config_load(const char *path, const char *text);

/* The default config with [daemon] keys replaced, loaded: see above. */
config_t *testlib_config_default(const char *const *kv);

/* How many lines of text (split at '\n') are exactly line. */
int testlib_count_lines(const char *text, const char *line);

/* Asserts that text has a line exactly equal to line, naming it if not. */
#define ck_assert_line(text, line)                                                                 \
    ck_assert_msg(testlib_count_lines(text, line) > 0, "missing line: %s", line)

/* A suite of one test case named name: tests (n of them, the TTest
 * pointers START_TEST defines) each run between setup and teardown (either
 * may be NULL) as a checked fixture. A suite's registration as one table. */
Suite *testlib_suite(const char *name, void (*setup)(void), void (*teardown)(void),
                     const TTest *const *tests, size_t n);

/* Runs suite s (CK_NORMAL; CK_FORK from the environment) and frees the
 * runner: a suite's whole main(). Returns EXIT_SUCCESS or EXIT_FAILURE. */
int testlib_run(Suite *s);

#endif
