/*
 * check_keyfile.c -- CURVE key pair files (proto/keyfile.c): generating,
 * loading back, the secret key's file mode, refusing to replace a pair,
 * every way a key file can be wrong (each naming file:line), server keys
 * given as Z85 text or as a file, and a client socket set up with a pair
 * really completing a CURVE handshake.
 *
 * Each test works in its own mkdtemp() directory, removed at the end.
 */
#define _XOPEN_SOURCE 700
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zmq.h>

#include "tests/testlib.h"
#include "proto/keyfile.h"

static testlib_dir_t tdir;

static void setup(void)
{
    testlib_dir_make(&tdir, "keyfile");
}

static void teardown(void)
{
    testlib_dir_remove(&tdir);
}

static char *path_of(char *buf, size_t size, const char *file)
{
    return testlib_dir_file(&tdir, file, buf, size);
}

static void write_text(const char *file, const char *text, mode_t mode)
{
    char path[128];

    testlib_write_file(path_of(path, sizeof(path), file), text, mode);
}

static char *read_text(const char *file)
{
    static char buf[2048];
    char path[128];
    FILE *fp;
    size_t n;

    path_of(path, sizeof(path), file);
    fp = fopen(path, "r");
    ck_assert_ptr_nonnull(fp);
    n = fread(buf, 1, sizeof(buf) - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

static mode_t mode_of(const char *file)
{
    char path[128];
    struct stat st;

    path_of(path, sizeof(path), file);
    ck_assert_int_eq(stat(path, &st), 0);
    return st.st_mode & 07777;
}

static unsigned count_entries(void)
{
    DIR *d = opendir(tdir.path);
    struct dirent *e;
    unsigned n = 0;

    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static void generate_ok(const char *name, bool force, keyfile_t *k)
{
    char err[512];
    int rc = keyfile_generate(tdir.path, name, force, k, err, sizeof(err));

    ck_assert_msg(rc == 0, "keyfile_generate: %s", err);
}

static void load_ok(const char *file, bool need_secret, keyfile_t *k)
{
    char path[128], err[512];
    int rc;

    path_of(path, sizeof(path), file);
    rc = keyfile_load(path, need_secret, k, err, sizeof(err));
    ck_assert_msg(rc == 0, "keyfile_load %s: %s", file, err);
}

/* Loads file, expecting a failure whose message is "DIR/" + want_suffix. */
static void load_fails(const char *file, bool need_secret, const char *want_suffix)
{
    char path[128], want[512], err[512];
    keyfile_t k;
    int rc;

    path_of(path, sizeof(path), file);
    err[0] = '\0';
    rc = keyfile_load(path, need_secret, &k, err, sizeof(err));
    ck_assert_int_eq(rc, -1);
    snprintf(want, sizeof(want), "%s/%s", tdir.path, want_suffix);
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0,
                  "error '%s', expected it to start with '%s'", err, want);
    ck_assert_int_eq(k.has_secret, false);
    ck_assert_str_eq(k.secret_z85, "");
}

/* ---- generate and load ------------------------------------------------------ */

START_TEST(test_generate_then_load)
{
    keyfile_t gen, key, pub;
    char derived[KEYFILE_Z85_LEN + 1];
    const char *text;

    generate_ok("ee-001", false, &gen);
    ck_assert(gen.has_secret);
    ck_assert(keyfile_z85_valid(gen.public_z85, strlen(gen.public_z85)));
    ck_assert(keyfile_z85_valid(gen.secret_z85, strlen(gen.secret_z85)));
    ck_assert_int_eq(zmq_curve_public(derived, gen.secret_z85), 0);
    ck_assert_str_eq(derived, gen.public_z85);

    ck_assert_int_eq(mode_of("ee-001.key"), 0600);
    ck_assert_int_eq(mode_of("ee-001.pub"), 0600);
    ck_assert_uint_eq(count_entries(), 2);

    load_ok("ee-001.key", true, &key);
    ck_assert(key.has_secret);
    ck_assert_str_eq(key.public_z85, gen.public_z85);
    ck_assert_str_eq(key.secret_z85, gen.secret_z85);

    load_ok("ee-001.pub", false, &pub);
    ck_assert(!pub.has_secret);
    ck_assert_str_eq(pub.public_z85, gen.public_z85);
    ck_assert_str_eq(pub.secret_z85, "");

    text = read_text("ee-001.key");
    ck_assert_msg(
        strncmp(text, "# clustermon CURVE key pair \"ee-001\", made by clustermonctl keygen on ",
                70) == 0,
        "%s", text);
    ck_assert_ptr_nonnull(strstr(text, "# The secret key below must stay on this machine"));
    text = read_text("ee-001.pub");
    ck_assert_ptr_null(strstr(text, "secret"));
    ck_assert_ptr_nonnull(strstr(text, gen.public_z85));
}
END_TEST

START_TEST(test_generate_refuses_to_replace)
{
    keyfile_t first, second;
    char err[512], before[2048];

    generate_ok("server", false, &first);
    snprintf(before, sizeof(before), "%s", read_text("server.key"));
    errno = 0;
    ck_assert_int_eq(keyfile_generate(tdir.path, "server", false, &second, err, sizeof(err)), -1);
    ck_assert_int_eq(errno, EEXIST);
    ck_assert_msg(strstr(err, "server.key: already exists") != NULL, "%s", err);
    ck_assert_str_eq(read_text("server.key"), before);
    ck_assert_uint_eq(count_entries(), 2);
}
END_TEST

START_TEST(test_generate_pub_exists_writes_nothing)
{
    keyfile_t k;
    char err[512];

    write_text("ee-002.pub", "# someone else's\n", 0644);
    ck_assert_int_eq(keyfile_generate(tdir.path, "ee-002", false, &k, err, sizeof(err)), -1);
    ck_assert_int_eq(errno, EEXIST);
    ck_assert_msg(strstr(err, "ee-002.pub: already exists") != NULL, "%s", err);
    ck_assert_uint_eq(count_entries(), 1); /* the .key it made first was removed */
    ck_assert_str_eq(read_text("ee-002.pub"), "# someone else's\n");
}
END_TEST

START_TEST(test_generate_force_replaces)
{
    keyfile_t first, second, loaded;

    generate_ok("server", false, &first);
    write_text("server.pub", "stale\n", 0644);
    generate_ok("server", true, &second);
    ck_assert_str_ne(first.public_z85, second.public_z85);
    ck_assert_int_eq(mode_of("server.key"), 0600);
    ck_assert_int_eq(mode_of("server.pub"), 0600);
    ck_assert_uint_eq(count_entries(), 2); /* no temp file left */
    load_ok("server.key", true, &loaded);
    ck_assert_str_eq(loaded.secret_z85, second.secret_z85);
    load_ok("server.pub", false, &loaded);
    ck_assert_str_eq(loaded.public_z85, second.public_z85);
}
END_TEST

START_TEST(test_generate_force_new_pair)
{
    keyfile_t k;

    generate_ok("fresh", true, &k);
    ck_assert_uint_eq(count_entries(), 2);
    ck_assert_int_eq(mode_of("fresh.key"), 0600);
}
END_TEST

static const char *const bad_names[] = {
    "",
    ".hidden",
    "a/b",
    "../up",
    "sp ace",
    "semi;colon",
    "x2345678901234567890123456789012345678901234567890123456789012345"};

START_TEST(test_generate_bad_name)
{
    keyfile_t k;
    char err[512];

    ck_assert_int_eq(keyfile_generate(tdir.path, bad_names[_i], false, &k, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "is not a key name") != NULL, "%s", err);
    ck_assert_uint_eq(count_entries(), 0);
}
END_TEST

START_TEST(test_generate_missing_dir)
{
    keyfile_t k;
    char err[512], missing[128];

    path_of(missing, sizeof(missing), "no/such/dir");
    ck_assert_int_eq(keyfile_generate(missing, "x", false, &k, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "cannot create") != NULL, "%s", err);
}
END_TEST

/* ---- file modes --------------------------------------------------------------- */

static const mode_t loose_modes[] = {0644, 0640, 0604, 0620, 0602, 0660};

START_TEST(test_secret_mode_refused)
{
    char path[128], want[256];
    keyfile_t k;

    generate_ok("ee-001", false, &k);
    path_of(path, sizeof(path), "ee-001.key");
    ck_assert_int_eq(chmod(path, loose_modes[_i]), 0);
    snprintf(want, sizeof(want),
             "ee-001.key: mode %04o: a secret key must be readable by its owner only (chmod 600)",
             (unsigned)loose_modes[_i]);
    load_fails("ee-001.key", true, want);
    /* only its public key wanted: the mode does not matter */
    load_ok("ee-001.key", false, &k);
    ck_assert(k.has_secret);
}
END_TEST

START_TEST(test_secret_mode_owner_only_ok)
{
    char path[128];
    keyfile_t k;

    generate_ok("ee-001", false, &k);
    path_of(path, sizeof(path), "ee-001.key");
    ck_assert_int_eq(chmod(path, 0400), 0);
    load_ok("ee-001.key", true, &k);
    ck_assert(k.has_secret);
}
END_TEST

START_TEST(test_pub_file_has_no_secret)
{
    keyfile_t k;

    generate_ok("ee-001", false, &k);
    load_fails("ee-001.pub", true, "ee-001.pub: holds no secret key");
}
END_TEST

/* ---- bad files ------------------------------------------------------------------ */

/*
 * File texts with placeholders: PUB and SEC are a matching pair, OTHER the
 * public key of another pair. want is the error after "DIR/".
 */
static const struct {
    const char *text;
    const char *want;
} bad_files[] = {
    {"", "bad.key: no public key"},
    {"# only a comment\n", "bad.key: no public key"},
    {"secret = SEC\n", "bad.key: no public key"},
    {"public = PUB\nsecret = SEC\ncolour = blue\n", "bad.key:3: unknown key 'colour'"},
    {"public = PUB\npublic = PUB\nsecret = SEC\n",
     "bad.key:2: public: given twice (first on line 1)"},
    {"public = PUB\nsecret = SEC\n\nsecret = SEC\n",
     "bad.key:4: secret: given twice (first on line 2)"},
    {"public = abc\nsecret = SEC\n", "bad.key:1: public: 3 characters, a key is 40 Z85 characters"},
    {"public = PUB\nsecret =\n", "bad.key:2: secret: 0 characters"},
    {"public = PUB\nsecret = ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~\n",
     "bad.key:2: secret: not a Z85 key"},
    {"public = ########################################\nsecret = SEC\n",
     "bad.key:1: public: not a Z85 key"},
    {"# pair\npublic = OTHER\nsecret = SEC\n",
     "bad.key:3: secret: does not belong to the public key on line 2"},
    {"[keys]\npublic = PUB\nsecret = SEC\n", "bad.key:1: a key file has no [sections]"},
    {"public = PUB\nthis is not a key\nsecret = SEC\n", "bad.key:2: not a 'key = value' line"},
    {"public = PUB\nsecret = SEC x\n", "bad.key:2: secret: 42 characters"},
    {"public = PUB\nsecret = "
     "SEC\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
     "xxxxxxxxxxx"
     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
     "xxxxxxxx = 1\n",
     "bad.key:3: line too long"},
    /* the earliest error is the one reported */
    {"public = PUB\ncolour = blue\nbroken\n", "bad.key:2: unknown key 'colour'"},
    {"public = PUB\nbroken\ncolour = blue\n", "bad.key:2: not a 'key = value' line"},
};

/* Replaces the placeholders of a bad_files text. */
static void expand(const char *in, const keyfile_t *a, const keyfile_t *b, char *out, size_t size)
{
    static const char *const names[] = {"PUB", "SEC", "OTHER"};
    const char *values[] = {a->public_z85, a->secret_z85, b->public_z85};
    size_t o = 0;

    while (*in && o + 1 < size) {
        bool hit = false;

        for (size_t i = 0; i < 3 && !hit; i++) {
            size_t n = strlen(names[i]);
            if (strncmp(in, names[i], n) == 0 && o + strlen(values[i]) + 1 < size) {
                memcpy(out + o, values[i], strlen(values[i]));
                o += strlen(values[i]);
                in += n;
                hit = true;
            }
        }
        if (!hit)
            out[o++] = *in++;
    }
    out[o] = '\0';
}

START_TEST(test_bad_file)
{
    keyfile_t a, b;
    char text[1024];

    ck_assert_int_eq(zmq_curve_keypair(a.public_z85, a.secret_z85), 0);
    ck_assert_int_eq(zmq_curve_keypair(b.public_z85, b.secret_z85), 0);
    expand(bad_files[_i].text, &a, &b, text, sizeof(text));
    write_text("bad.key", text, 0600);
    load_fails("bad.key", false, bad_files[_i].want);
}
END_TEST

START_TEST(test_missing_file)
{
    load_fails("none.key", true, "none.key: cannot open: No such file or directory");
}
END_TEST

START_TEST(test_not_a_regular_file)
{
    char path[128];

    path_of(path, sizeof(path), "sub.key");
    ck_assert_int_eq(mkdir(path, 0700), 0);
    load_fails("sub.key", false, "sub.key: not a regular file");
}
END_TEST

START_TEST(test_hand_written_file_ok)
{
    keyfile_t a, k;
    char text[512];

    ck_assert_int_eq(zmq_curve_keypair(a.public_z85, a.secret_z85), 0);
    /* comments of both kinds, blank lines, CRLF, "key: value", an inline comment */
    snprintf(text, sizeof(text),
             "; mine\r\n\r\n  # indented\npublic: %s ; the public one\r\nsecret   =   %s\n",
             a.public_z85, a.secret_z85);
    write_text("hand.key", text, 0600);
    load_ok("hand.key", true, &k);
    ck_assert_str_eq(k.public_z85, a.public_z85);
    ck_assert_str_eq(k.secret_z85, a.secret_z85);
}
END_TEST

/* ---- Z85 and server keys -------------------------------------------------------- */

static const struct {
    const char *s;
    bool ok;
} z85_cases[] = {
    {"rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7", true}, /* the ZeroMQ RFC 26 test key */
    {"0000000000000000000000000000000000000000", true},
    {"%nSc0%nSc0%nSc0%nSc0%nSc0%nSc0%nSc0%nSc0", true},  /* 2^32-1 per group */
    {"%nSc1%nSc1%nSc1%nSc1%nSc1%nSc1%nSc1%nSc1", false}, /* 2^32 per group */
    {"rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf", false},  /* 39 */
    {"rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7a", false},
    {"rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf~", false},
    {"rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]y 7", false},
    {"rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]y;7", false},
    {"", false},
};

START_TEST(test_z85_valid)
{
    const char *s = z85_cases[_i].s;

    ck_assert_msg(keyfile_z85_valid(s, strlen(s)) == z85_cases[_i].ok, "'%s'", s);
}
END_TEST

START_TEST(test_public_arg_z85)
{
    char out[KEYFILE_Z85_LEN + 1], err[512];

    ck_assert_int_eq(
        keyfile_public_arg("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7", out, err, sizeof(err)), 0);
    ck_assert_str_eq(out, "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7");
}
END_TEST

START_TEST(test_public_arg_files)
{
    char out[KEYFILE_Z85_LEN + 1], err[512], path[128];
    keyfile_t k;

    generate_ok("server", false, &k);
    path_of(path, sizeof(path), "server.pub");
    ck_assert_msg(keyfile_public_arg(path, out, err, sizeof(err)) == 0, "%s", err);
    ck_assert_str_eq(out, k.public_z85);
    /* a .key file gives its public key, whatever its mode */
    path_of(path, sizeof(path), "server.key");
    ck_assert_int_eq(chmod(path, 0644), 0);
    memset(out, 0, sizeof(out));
    ck_assert_msg(keyfile_public_arg(path, out, err, sizeof(err)) == 0, "%s", err);
    ck_assert_str_eq(out, k.public_z85);
}
END_TEST

START_TEST(test_public_arg_bad)
{
    char out[KEYFILE_Z85_LEN + 1], err[512], path[128];

    ck_assert_int_eq(keyfile_public_arg("", out, err, sizeof(err)), -1);
    ck_assert_int_eq(
        keyfile_public_arg("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf", out, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "neither a 40-character Z85 public key nor a key file") != NULL, "%s",
                  err);
    write_text("bad.pub", "public = short\n", 0644);
    path_of(path, sizeof(path), "bad.pub");
    ck_assert_int_eq(keyfile_public_arg(path, out, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "bad.pub:1: public: 5 characters") != NULL, "%s", err);
}
END_TEST

/* ---- client sockets --------------------------------------------------------------- */

/*
 * A CURVE server on a loopback port, and a client set up by
 * keyfile_client_setup with the server key given: returns whether one
 * message got through within 2 s (a wrong server key makes the handshake
 * fail, so nothing does).
 */
static bool handshake(const keyfile_t *server, const char *server_key_given,
                      const keyfile_t *client)
{
    void *ctx = zmq_ctx_new();
    void *srv = zmq_socket(ctx, ZMQ_ROUTER), *cli = zmq_socket(ctx, ZMQ_DEALER);
    int one = 1, linger = 0;
    char endpoint[256], err[512], buf[16];
    size_t len = sizeof(endpoint);
    bool got;

    zmq_setsockopt(srv, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_setsockopt(cli, ZMQ_LINGER, &linger, sizeof(linger));
    ck_assert_int_eq(zmq_setsockopt(srv, ZMQ_CURVE_SERVER, &one, sizeof(one)), 0);
    ck_assert_int_eq(
        zmq_setsockopt(srv, ZMQ_CURVE_SECRETKEY, server->secret_z85, KEYFILE_Z85_LEN + 1), 0);
    ck_assert_int_eq(zmq_bind(srv, "tcp://127.0.0.1:*"), 0);
    ck_assert_int_eq(zmq_getsockopt(srv, ZMQ_LAST_ENDPOINT, endpoint, &len), 0);
    ck_assert_msg(keyfile_client_setup(cli, server_key_given, client, err, sizeof(err)) == 0, "%s",
                  err);
    ck_assert_int_eq(zmq_connect(cli, endpoint), 0);
    ck_assert_int_eq(zmq_send(cli, "hello", 5, ZMQ_DONTWAIT) == 5 || errno == EAGAIN, 1);

    zmq_pollitem_t item = {.socket = srv, .events = ZMQ_POLLIN};
    got = zmq_poll(&item, 1, 2000) == 1;
    if (got) {
        ck_assert_int_ge(zmq_recv(srv, buf, sizeof(buf), 0), 0); /* the routing id */
        ck_assert_int_eq(zmq_recv(srv, buf, sizeof(buf), 0), 5);
        ck_assert_int_eq(memcmp(buf, "hello", 5), 0);
    }
    zmq_close(cli);
    zmq_close(srv);
    zmq_ctx_term(ctx);
    return got;
}

START_TEST(test_client_setup_handshake)
{
    keyfile_t server, client;

    generate_ok("server", false, &server);
    generate_ok("client", false, &client);
    ck_assert(handshake(&server, server.public_z85, &client));
}
END_TEST

START_TEST(test_client_setup_wrong_server_key)
{
    keyfile_t server, client, other;

    generate_ok("server", false, &server);
    generate_ok("client", false, &client);
    generate_ok("other", false, &other);
    ck_assert(!handshake(&server, other.public_z85, &client));
}
END_TEST

START_TEST(test_client_setup_refuses)
{
    void *ctx = zmq_ctx_new(), *sock = zmq_socket(ctx, ZMQ_DEALER);
    keyfile_t client, pub_only;
    char err[512];

    generate_ok("client", false, &client);
    load_ok("client.pub", false, &pub_only);
    ck_assert_int_eq(keyfile_client_setup(sock, client.public_z85, &pub_only, err, sizeof(err)),
                     -1);
    ck_assert_msg(strstr(err, "no secret key") != NULL, "%s", err);
    ck_assert_int_eq(keyfile_client_setup(sock, "not a key", &client, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "server key") != NULL, "%s", err);
    zmq_close(sock);
    zmq_ctx_term(ctx);
}
END_TEST

static Suite *keyfile_suite(void)
{
    Suite *s = suite_create("keyfile");
    TCase *tc = tcase_create("files");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_generate_then_load);
    tcase_add_test(tc, test_generate_refuses_to_replace);
    tcase_add_test(tc, test_generate_pub_exists_writes_nothing);
    tcase_add_test(tc, test_generate_force_replaces);
    tcase_add_test(tc, test_generate_force_new_pair);
    tcase_add_loop_test(tc, test_generate_bad_name, 0, sizeof(bad_names) / sizeof(bad_names[0]));
    tcase_add_test(tc, test_generate_missing_dir);
    tcase_add_loop_test(tc, test_secret_mode_refused, 0,
                        sizeof(loose_modes) / sizeof(loose_modes[0]));
    tcase_add_test(tc, test_secret_mode_owner_only_ok);
    tcase_add_test(tc, test_pub_file_has_no_secret);
    tcase_add_loop_test(tc, test_bad_file, 0, sizeof(bad_files) / sizeof(bad_files[0]));
    tcase_add_test(tc, test_missing_file);
    tcase_add_test(tc, test_not_a_regular_file);
    tcase_add_test(tc, test_hand_written_file_ok);
    suite_add_tcase(s, tc);

    tc = tcase_create("keys");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_z85_valid, 0, sizeof(z85_cases) / sizeof(z85_cases[0]));
    tcase_add_test(tc, test_public_arg_z85);
    tcase_add_test(tc, test_public_arg_files);
    tcase_add_test(tc, test_public_arg_bad);
    suite_add_tcase(s, tc);

    tc = tcase_create("sockets");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_client_setup_handshake);
    tcase_add_test(tc, test_client_setup_wrong_server_key);
    tcase_add_test(tc, test_client_setup_refuses);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(keyfile_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
