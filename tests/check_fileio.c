/*
 * check_fileio.c -- proto/fileio.c: whole writes and reads, directory
 * fsync, and atomic replacement: the contents and mode asked for whatever
 * the umask, no temp file left behind on success or failure, the target
 * unchanged when a step fails, and errors that name the path and the step.
 * Each test works in its own testlib temp directory.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto/fileio.h"
#include "tests/testlib.h"

static testlib_dir_t tdir;

static void setup(void)
{
    testlib_dir_make(&tdir, "fileio");
}

static void teardown(void)
{
    testlib_dir_remove(&tdir);
}

/* Entries in the test directory, "." and ".." aside. */
static int entries(void)
{
    DIR *d = opendir(tdir.path);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

/* ---- atomic replacement --------------------------------------------------- */

/* The mode asked for whatever the umask, in both directions. */
static const struct {
    mode_t umask, mode;
} modes[] = {{0, 0600}, {077, 0644}, {022, 0600}, {0, 0640}};

START_TEST(test_atomic_mode_and_contents)
{
    char path[128], err[256];
    testlib_dir_file(&tdir, "state", path, sizeof path);
    mode_t old = umask(modes[_i].umask);
    int rc = fileio_write_atomic(path, "one", 3, modes[_i].mode, err, sizeof err);
    umask(old);
    ck_assert_msg(rc == 0, "%s", err);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, modes[_i].mode);
    ck_assert_int_eq(fileio_write_atomic(path, "two!", 4, modes[_i].mode, err, sizeof err), 0);
    char *back = testlib_read_file(path, NULL);
    ck_assert_str_eq(back, "two!");
    free(back);
    ck_assert_int_eq(entries(), 1); /* no temp file left */
}
END_TEST

START_TEST(test_atomic_missing_directory)
{
    char path[128], err[256];
    testlib_dir_file(&tdir, "no/such/state", path, sizeof path);
    errno = 0;
    ck_assert_int_eq(fileio_write_atomic(path, "x", 1, 0600, err, sizeof err), -1);
    ck_assert_int_eq(errno, ENOENT);
    ck_assert_msg(strstr(err, "/no/such: open the directory: ") != NULL, "%s", err);
}
END_TEST

/* A step that fails (the target is a non-empty directory: the rename
 * cannot replace it) leaves the target as it was and no temp file. */
START_TEST(test_atomic_failure_leaves_nothing)
{
    char path[128], inner[160], err[256];
    testlib_dir_file(&tdir, "target", path, sizeof path);
    ck_assert_int_eq(mkdir(path, 0700), 0);
    snprintf(inner, sizeof inner, "%s/keep", path);
    testlib_write_file(inner, "kept", 0600);
    ck_assert_int_eq(fileio_write_atomic(path, "new", 3, 0600, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "/target: rename: ") != NULL, "%s", err);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert(S_ISDIR(st.st_mode));
    ck_assert_int_eq(entries(), 1);
}
END_TEST

/* The *_at form: pieces (an empty one among them) through a directory fd;
 * messages name the directory given for them. */
START_TEST(test_atomic_at_pieces)
{
    int dfd = open(tdir.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ck_assert_int_ge(dfd, 0);
    char err[256];
    struct iovec iov[3] = {{(void *)"head|", 5}, {(void *)"", 0}, {(void *)"body", 4}};
    int rc = fileio_write_atomic_at(dfd, "SPOOL", "b.batch", iov, 3, 0600, err, sizeof err);
    ck_assert_msg(rc == 0, "%s", err);
    char path[128];
    char *back = testlib_read_file(testlib_dir_file(&tdir, "b.batch", path, sizeof path), NULL);
    ck_assert_str_eq(back, "head|body");
    free(back);
    ck_assert_int_eq(entries(), 1);
    /* too many pieces: refused before anything is created */
    struct iovec many[FILEIO_IOV_MAX + 1];
    for (size_t i = 0; i < FILEIO_IOV_MAX + 1; i++)
        many[i] = (struct iovec){(void *)"x", 1};
    ck_assert_int_eq(
        fileio_write_atomic_at(dfd, "SPOOL", "c", many, FILEIO_IOV_MAX + 1, 0600, err, sizeof err),
        -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_msg(strncmp(err, "SPOOL/c.", 8) == 0 && strstr(err, ".tmp: write: ") != NULL, "%s",
                  err);
    ck_assert_int_eq(entries(), 1);
    close(dfd);
}
END_TEST

/* The path form of the pieces (the snapshot's header and payload): one
 * file, no temp file left, messages name the path as given. */
START_TEST(test_atomic_path_pieces)
{
    char path[128], err[256];
    testlib_dir_file(&tdir, "snap-1.snap", path, sizeof path);
    struct iovec iov[2] = {{(void *)"HDR", 3}, {(void *)"payload", 7}};
    int rc = fileio_writev_atomic(path, iov, 2, 0600, err, sizeof err);
    ck_assert_msg(rc == 0, "%s", err);
    char *back = testlib_read_file(path, NULL);
    ck_assert_str_eq(back, "HDRpayload");
    free(back);
    ck_assert_int_eq(entries(), 1);
    testlib_dir_file(&tdir, "gone/snap-2.snap", path, sizeof path);
    ck_assert_int_eq(fileio_writev_atomic(path, iov, 2, 0600, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "/gone: open the directory: ") != NULL, "%s", err);
}
END_TEST

/* ---- whole writes and reads ------------------------------------------------- */

START_TEST(test_writev_all_and_read_full)
{
    char path[128];
    testlib_dir_file(&tdir, "f", path, sizeof path);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ck_assert_int_ge(fd, 0);
    /* 200 KiB in pieces: more than one write() moves for some file systems */
    static char big[200 * 1024];
    memset(big, 'b', sizeof big);
    struct iovec iov[3] = {{(void *)"<", 1}, {big, sizeof big}, {(void *)">", 1}};
    ck_assert_int_eq(fileio_writev_all(fd, iov, 3), 0);
    ck_assert_int_eq(fileio_write_all(fd, "!", 1), 0);
    ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
    static char back[sizeof big + 16];
    /* asking for more than there is: the whole file, then end of file */
    ck_assert_int_eq(fileio_read_full(fd, back, sizeof back), (ssize_t)sizeof big + 3);
    ck_assert_int_eq(back[0], '<');
    ck_assert_int_eq(back[sizeof big + 1], '>');
    ck_assert_int_eq(back[sizeof big + 2], '!');
    ck_assert_int_eq(memcmp(back + 1, big, sizeof big), 0);
    /* asking for less: exactly that much */
    ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
    ck_assert_int_eq(fileio_read_full(fd, back, 10), 10);
    close(fd);
}
END_TEST

/* A pipe hands data over in the pieces it was written in: read_full
 * gathers them until end of file. */
START_TEST(test_read_full_gathers_pieces)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(fileio_write_all(p[1], "ab", 2), 0);
    ck_assert_int_eq(fileio_write_all(p[1], "cd", 2), 0);
    close(p[1]);
    char buf[16];
    ck_assert_int_eq(fileio_read_full(p[0], buf, sizeof buf), 4);
    ck_assert_int_eq(memcmp(buf, "abcd", 4), 0);
    close(p[0]);
}
END_TEST

START_TEST(test_errors_keep_errno)
{
    char path[128];
    testlib_dir_file(&tdir, "ro", path, sizeof path);
    testlib_write_file(path, "x", 0600);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ck_assert_int_eq(fileio_write_all(fd, "y", 1), -1);
    ck_assert_int_eq(errno, EBADF);
    close(fd);
    ck_assert_int_eq(fileio_sync_dir(tdir.path), 0);
    ck_assert_int_eq(fileio_sync_dir(path), -1); /* a file, not a directory */
    ck_assert_int_eq(errno, ENOTDIR);
    ck_assert_int_eq(fileio_writev_all(1, NULL, 0), -1);
    ck_assert_int_eq(errno, EINVAL);
}
END_TEST

/* mkdir -p: every missing parent made, an existing one fine, and a
 * failure names the setting, the path and the directory it stopped at. */
START_TEST(test_mkdir_p)
{
    char path[128], err[256] = "";
    struct stat st;
    testlib_dir_file(&tdir, "a/b/c", path, sizeof path);
    ck_assert_int_eq(fileio_mkdir_p(path, 0700, "x.state_dir", err, sizeof err), 0);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert(S_ISDIR(st.st_mode));
    ck_assert_int_eq(st.st_mode & 0777, 0700);
    ck_assert_int_eq(fileio_mkdir_p(path, 0700, "x.state_dir", err, sizeof err), 0);

    char file[128], under[160];
    testlib_dir_file(&tdir, "plain", file, sizeof file);
    ck_assert_int_eq(fileio_write_atomic(file, "x", 1, 0600, err, sizeof err), 0);
    snprintf(under, sizeof under, "%s/d", file);
    errno = 0;
    ck_assert_int_eq(fileio_mkdir_p(under, 0700, "x.state_dir", err, sizeof err), -1);
    ck_assert_int_eq(errno, ENOTDIR);
    ck_assert_msg(strncmp(err, "x.state_dir ", 12) == 0 && strstr(err, ": cannot create ") != NULL,
                  "%s", err);
}
END_TEST

static Suite *fileio_suite(void)
{
    Suite *s = suite_create("fileio");
    TCase *tc = tcase_create("atomic");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_atomic_mode_and_contents, 0,
                        (int)(sizeof modes / sizeof modes[0]));
    tcase_add_test(tc, test_atomic_missing_directory);
    tcase_add_test(tc, test_atomic_failure_leaves_nothing);
    tcase_add_test(tc, test_atomic_at_pieces);
    tcase_add_test(tc, test_atomic_path_pieces);
    suite_add_tcase(s, tc);
    tc = tcase_create("io");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_writev_all_and_read_full);
    tcase_add_test(tc, test_read_full_gathers_pieces);
    tcase_add_test(tc, test_errors_keep_errno);
    tcase_add_test(tc, test_mkdir_p);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return testlib_run(fileio_suite());
}
