/* testlib.c -- see testlib.h. */
#include "tests/testlib.h"

#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <ftw.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The copy of daemon/clustermond.conf compiled into libdaemon.a. */
extern const char clustermond_default_conf[];

/* A failed ck_assert ends a forked test with _exit() before its teardown
 * runs, so its directory would stay. Every directory's name carries the
 * pid of the test runner (the process that started the program; forked
 * tests inherit it), and the runner removes what is left of its own at exit. */
static pid_t runner;

static void remove_leftovers(void)
{
    if (getpid() != runner)
        return;
    char pattern[64];
    glob_t g;
    snprintf(pattern, sizeof pattern, "/tmp/check_*.%ld.*", (long)runner);
    if (glob(pattern, 0, NULL, &g) == 0)
        for (size_t i = 0; i < g.gl_pathc; i++)
            testlib_rm_rf(g.gl_pathv[i]);
    globfree(&g);
}

__attribute__((constructor)) static void testlib_init(void)
{
    runner = getpid();
    atexit(remove_leftovers);
}

void testlib_dir_make(testlib_dir_t *d, const char *name)
{
    char tmpl[sizeof d->path];
    int n = snprintf(tmpl, sizeof tmpl, "/tmp/check_%s.%ld.XXXXXX", name, (long)runner);
    d->path[0] = '\0'; /* set only once the directory exists */
    ck_assert_msg(n > 0 && (size_t)n < sizeof tmpl, "temp dir name too long: %s", name);
    ck_assert_msg(mkdtemp(tmpl) != NULL, "mkdtemp %s: %s", tmpl, strerror(errno));
    memcpy(d->path, tmpl, sizeof tmpl);
}

void testlib_dir_remove(testlib_dir_t *d)
{
    if (!d->path[0])
        return;
    int rc = testlib_rm_rf(d->path);
    ck_assert_msg(rc == 0, "rm -rf %s: %s", d->path, strerror(errno));
    d->path[0] = '\0';
}

char *testlib_dir_file(const testlib_dir_t *d, const char *file, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%s/%s", d->path, file);
    ck_assert_msg(n > 0 && (size_t)n < size, "path too long: %s/%s", d->path, file);
    return buf;
}

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

int testlib_rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -1;
    /* FTW_DEPTH: a directory after its entries; FTW_PHYS: a symlink is removed, not followed */
    return nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

void testlib_write_file(const char *path, const char *text, mode_t mode)
{
    FILE *fp = fopen(path, "w");
    ck_assert_msg(fp != NULL, "%s: %s", path, strerror(errno));
    ck_assert_msg(fputs(text, fp) >= 0, "%s: write: %s", path, strerror(errno));
    ck_assert_msg(fclose(fp) == 0, "%s: close: %s", path, strerror(errno));
    ck_assert_msg(chmod(path, mode) == 0, "%s: chmod: %s", path, strerror(errno));
}

char *testlib_read_file(const char *path, size_t *ret_len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    size_t cap = 4096, len = 0, n;
    char *buf = malloc(cap + 1);
    ck_assert_ptr_nonnull(buf);
    while ((n = fread(buf + len, 1, cap - len, fp)) > 0) {
        len += n;
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
            ck_assert_ptr_nonnull(buf);
        }
    }
    bool bad = ferror(fp);
    fclose(fp);
    if (bad) {
        free(buf);
        return NULL;
    }
    buf[len] = '\0';
    if (ret_len)
        *ret_len = len;
    return buf;
}

/* True if line (up to its newline) sets key: "key =" or "key=". */
static bool line_sets(const char *line, const char *key, size_t klen)
{
    if (strncmp(line, key, klen) != 0)
        return false;
    line += klen;
    while (*line == ' ' || *line == '\t')
        line++;
    return *line == '=';
}

char *testlib_config_text(const char *const *kv)
{
    const char *conf = clustermond_default_conf;
    const char *daemon = strstr(conf, "[daemon]\n");
    ck_assert_msg(daemon != NULL, "the default config has no [daemon] section");
    size_t extra = 0;
    for (const char *const *p = kv; p && *p; p++)
        extra += strlen(*p) + 1;
    char *out = malloc(strlen(conf) + extra + 1), *o = out;
    ck_assert_ptr_nonnull(out);
    /* everything up to and including "[daemon]\n", then the new keys ... */
    size_t head = (size_t)(daemon - conf) + strlen("[daemon]\n");
    memcpy(o, conf, head);
    o += head;
    for (const char *const *p = kv; p && *p; p++)
        o += sprintf(o, "%s\n", *p);
    /* ... then the rest, less the [daemon] lines that set a key given above */
    bool in_daemon = true;
    for (const char *line = conf + head; *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) + 1 : strlen(line);
        bool drop = false;
        if (*line == '[')
            in_daemon = false;
        for (const char *const *p = kv; in_daemon && p && *p && !drop; p++) {
            const char *eq = strchr(*p, '=');
            size_t klen = eq ? (size_t)(eq - *p) : strlen(*p);
            while (klen > 0 && ((*p)[klen - 1] == ' ' || (*p)[klen - 1] == '\t'))
                klen--;
            drop = line_sets(line, *p, klen);
        }
        if (!drop) {
            memcpy(o, line, len);
            o += len;
        }
        line += len;
    }
    *o = '\0';
    return out;
}

config_t *testlib_config_load(const char *path, const char *text)
{
    config_t *cfg = NULL;
    char err[CONFIG_ERRLEN];
    ck_assert_msg(config_load(path, text, NULL, &cfg, err, sizeof err) == 0, "%s", err);
    ck_assert_ptr_nonnull(cfg);
    return cfg;
}

config_t *testlib_config_default(const char *const *kv)
{
    char *text = testlib_config_text(kv);
    config_t *cfg = testlib_config_load("test.conf", text);
    free(text);
    return cfg;
}

int testlib_count_lines(const char *text, const char *line)
{
    int n = 0;
    size_t len = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p += len ? len : 1)
        n += (p == text || p[-1] == '\n') && (p[len] == '\n' || p[len] == '\0');
    return n;
}

Suite *testlib_suite(const char *name, void (*setup)(void), void (*teardown)(void),
                     const TTest *const *tests, size_t n)
{
    Suite *s = suite_create(name);
    TCase *tc = tcase_create(name);
    if (setup || teardown)
        tcase_add_checked_fixture(tc, setup, teardown);
    for (size_t i = 0; i < n; i++)
        tcase_add_test(tc, tests[i]);
    suite_add_tcase(s, tc);
    return s;
}

int testlib_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
