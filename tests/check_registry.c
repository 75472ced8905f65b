/*
 * check_registry.c -- the firm registry loader and index (daemon/registry.c).
 *
 * The demo registry (daemon/demo/registry.csv, 243 fictional firms) must
 * load against the default config with every awkward name intact and every
 * firm findable by a (ptr, len) key. Broken registries are written into a
 * mkdtemp() directory, one table row each, and must fail with the exact
 * "file:line: field: reason" a user needs: lines are physical lines, so a
 * quoted name spanning two lines must not shift the blame for the next one.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/registry.h"

#define DEFAULT_CONF "daemon/clustermond.conf"
#define DEMO_REGISTRY "daemon/demo/registry.csv"
#define HEADER "id,name,cluster,chain,tier,designations\n"

static config_t *cfg;
static char tmpdir[64];
static char csv_path[128];

/* The temporary directory lives for the whole test case and is made and
 * removed in the runner's own process (an unchecked fixture), so a failing
 * test cannot leave it behind; each test removes its file before asserting. */
static void tmpdir_make(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/check_registry.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        abort();
    }
    snprintf(csv_path, sizeof csv_path, "%s/firms.csv", tmpdir);
}

static void tmpdir_remove(void)
{
    unlink(csv_path);
    rmdir(tmpdir);
}

static void setup(void)
{
    char err[CONFIG_ERRLEN];

    ck_assert_msg(config_load(DEFAULT_CONF, NULL, NULL, &cfg, err, sizeof err) == 0, "%s", err);
    /* the fixtures' designations are their own (test_declared checks the list) */
    free(cfg->designations);
    cfg->designations = strdup("");
}

static void teardown(void)
{
    config_destroy(&cfg);
}

/* Writes len bytes of text (strlen if len is 0) to csv_path, loads it and
 * removes it again. Returns registry_load's result. */
static int load_text(const char *text, size_t len, registry_t **ret, char *err, size_t errlen)
{
    FILE *fp = fopen(csv_path, "wb");

    ck_assert_ptr_nonnull(fp);
    if (len == 0)
        len = strlen(text);
    size_t written = fwrite(text, 1, len, fp);
    int closed = fclose(fp);
    int rc = registry_load(csv_path, cfg, ret, err, errlen);
    ck_assert_int_eq(unlink(csv_path), 0);
    ck_assert_uint_eq(written, len);
    ck_assert_int_eq(closed, 0);
    return rc;
}

static registry_t *load_text_ok(const char *text)
{
    registry_t *reg = NULL;
    char err[CONFIG_ERRLEN];

    ck_assert_msg(load_text(text, 0, &reg, err, sizeof err) == 0, "%s", err);
    ck_assert_ptr_nonnull(reg);
    return reg;
}

static registry_t *load_ok(const char *path)
{
    registry_t *reg = NULL;
    char err[CONFIG_ERRLEN];

    ck_assert_msg(registry_load(path, cfg, &reg, err, sizeof err) == 0, "%s", err);
    ck_assert_ptr_nonnull(reg);
    return reg;
}

/* Tiers and designations the config does not declare are refused, by line. */
START_TEST(test_declared)
{
    registry_t *reg = NULL;
    char err[CONFIG_ERRLEN];

    free(cfg->designations);
    cfg->designations = strdup("high-tech, specialized-new");
    free(cfg->tiers);
    cfg->tiers = strdup("leading,backbone");
    reg = load_text_ok("id,name,cluster,chain,tier,designations\n"
                       "a,A,energy-env,,leading,high-tech;specialized-new\n"
                       "b,B,energy-env,,backbone,\n");
    registry_destroy(&reg);
    ck_assert_int_eq(load_text("id,name,cluster,chain,tier,designations\n"
                               "a,A,energy-env,,leading,high-tech;gazelle\n",
                               0, &reg, err, sizeof err),
                     -1);
    ck_assert_msg(strstr(err, ":2: designations: firm 'a': 'gazelle' is not declared in the "
                              "config") != NULL,
                  "%s", err);
    ck_assert_int_eq(load_text("id,name,cluster,chain,tier,designations\n"
                               "a,A,energy-env,,member,\n",
                               0, &reg, err, sizeof err),
                     -1);
    ck_assert_msg(strstr(err, ":2: tier: firm 'a': tier 'member' is not declared") != NULL, "%s",
                  err);
}
END_TEST

static const firm_t *firm_by_id(const registry_t *reg, const char *id)
{
    int f = registry_find(reg, id, strlen(id));

    ck_assert_msg(f >= 0, "firm %s not found", id);
    ck_assert_str_eq(reg->firms[f].id, id);
    return &reg->firms[f];
}

/* ---- the demo registry ------------------------------------------------------ */

START_TEST(test_demo_loads)
{
    registry_t *reg = load_ok(DEMO_REGISTRY);
    size_t per_cluster[2] = {0, 0};

    ck_assert_uint_eq(reg->nfirms, 243);
    for (size_t i = 0; i < reg->nfirms; i++) {
        ck_assert_int_ge(reg->firms[i].cluster, 0);
        ck_assert_int_lt(reg->firms[i].cluster, 2);
        per_cluster[reg->firms[i].cluster]++;
        /* every firm is found again through the index, at its own line */
        ck_assert_int_eq(registry_find(reg, reg->firms[i].id, strlen(reg->firms[i].id)), (int)i);
        ck_assert_int_eq(reg->firms[i].line, (int)i + 2);
    }
    ck_assert_uint_eq(per_cluster[0], 197);
    ck_assert_uint_eq(per_cluster[1], 46);
    registry_destroy(&reg);
    ck_assert_ptr_null(reg);
}
END_TEST

START_TEST(test_demo_first_and_last)
{
    registry_t *reg = load_ok(DEMO_REGISTRY);
    const firm_t *f = firm_by_id(reg, "ee-001");

    ck_assert_str_eq(f->name, "泗水康岳环境工程股份有限公司（示例）");
    ck_assert_int_eq(f->cluster, 0);
    ck_assert_int_eq(f->chain, 0); /* water-pollution-control */
    ck_assert_int_eq(f->tier, TIER_LEADING);
    ck_assert_str_eq(f->designations, "provincial-tech-demo");
    ck_assert_int_eq(f->line, 2);

    f = firm_by_id(reg, "ne-046");
    ck_assert_str_eq(f->name, "嘉祥德霖电力储能有限公司（示例）");
    ck_assert_int_eq(f->cluster, 1);
    ck_assert_int_eq(f->chain, 1); /* energy-storage */
    ck_assert_int_eq(f->tier, TIER_POTENTIAL);
    ck_assert_str_eq(f->designations, "");
    ck_assert_int_eq(f->line, 244);
    registry_destroy(&reg);
}
END_TEST

/* RFC 4180 quoting: commas and doubled quotes inside a name. */
START_TEST(test_demo_quoted_names)
{
    registry_t *reg = load_ok(DEMO_REGISTRY);
    const firm_t *f = firm_by_id(reg, "ee-045");

    ck_assert_str_eq(f->name, "Sample Firm EE-045, Water \"Clearwave\" Services (fictional)");
    ck_assert_int_eq(f->chain, -1); /* an empty chain: on no key chain */
    ck_assert_int_eq(f->tier, TIER_MEMBER);
    ck_assert_int_eq(f->line, 46);

    f = firm_by_id(reg, "ee-009");
    ck_assert_str_eq(f->name, "济宁\"碧水\"环境工程有限公司,第二分公司（示例）");
    ck_assert_int_eq(f->tier, TIER_BACKBONE);

    f = firm_by_id(reg, "ne-020");
    ck_assert_str_eq(f->name, "Sample Firm NE-020 \"SunBridge\", Storage Unit (fictional)");
    ck_assert_int_eq(f->cluster, 1);
    ck_assert_int_eq(f->chain, 0); /* solar-pv */
    registry_destroy(&reg);
}
END_TEST

/* Keys come off the wire as (ptr, len), not NUL-terminated. */
START_TEST(test_find_bounded)
{
    registry_t *reg = load_ok(DEMO_REGISTRY);
    const char wire[] = "ee-001ne-046";
    static const char nul_inside[] = {'e', 'e', '-', '0', '0', '1', '\0', 'x'};

    ck_assert_int_eq(registry_find(reg, wire, 6), firm_by_id(reg, "ee-001")->line - 2);
    ck_assert_int_eq(registry_find(reg, wire + 6, 6), firm_by_id(reg, "ne-046")->line - 2);
    ck_assert_int_eq(registry_find(reg, wire, 5), -1); /* "ee-00": a prefix */
    ck_assert_int_eq(registry_find(reg, wire, 7), -1); /* "ee-001n" */
    ck_assert_int_eq(registry_find(reg, wire, 0), -1);
    ck_assert_int_eq(registry_find(reg, "ee-999", 6), -1);
    ck_assert_int_eq(registry_find(reg, "EE-001", 6), -1); /* ids are case-sensitive */
    /* a stored id must not match a longer key that holds a NUL where it ends */
    ck_assert_int_eq(registry_find(reg, nul_inside, sizeof nul_inside), -1);
    ck_assert_int_eq(registry_find(reg, nul_inside, 7), -1);
    registry_destroy(&reg);
}
END_TEST

/* A former member (a firm that left the file) is found by registry_find_any
 * only, after the members, and many of them rebuild the index without
 * losing one. */
START_TEST(test_former_members)
{
    registry_t *reg = load_ok(DEMO_REGISTRY);
    size_t members = reg->nfirms;
    char id[32];

    for (int i = 0; i < 1000; i++) {
        firm_t f = *firm_by_id(reg, "ee-001");
        snprintf(id, sizeof id, "gone-%04d", i);
        f.id = id;
        ck_assert_int_eq(registry_add_former(reg, &f, 1000 + i), (int)(members + (size_t)i));
    }
    ck_assert_uint_eq(reg->nfirms, members);
    ck_assert_uint_eq(reg->nall, members + 1000);
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof id, "gone-%04d", i);
        int f = registry_find_any(reg, id, strlen(id));
        ck_assert_int_eq(f, (int)(members + (size_t)i));
        ck_assert(registry_is_former(reg, f));
        ck_assert_int_eq(reg->firms[f].left_ms, 1000 + i);
        ck_assert_str_eq(reg->firms[f].name, firm_by_id(reg, "ee-001")->name);
        ck_assert_int_eq(reg->firms[f].line, 0);
        ck_assert_ptr_null(reg->firms[f].key);
        ck_assert_int_eq(registry_find(reg, id, strlen(id)), -1); /* not a member */
    }
    /* members are still found, by both */
    int ee = registry_find(reg, "ee-001", 6);
    ck_assert_int_ge(ee, 0);
    ck_assert_int_eq(registry_find_any(reg, "ee-001", 6), ee);
    ck_assert(!registry_is_former(reg, ee));
    ck_assert(!registry_is_former(reg, -1));
    registry_destroy(&reg);
}
END_TEST

START_TEST(test_tier_names)
{
    static const char *const names[TIER_COUNT] = {"leading", "backbone", "potential", "member"};

    for (int t = 0; t < TIER_COUNT; t++) {
        ck_assert_str_eq(registry_tier_name((tier_t)t), names[t]);
        ck_assert_int_eq(registry_tier_parse(names[t]), t);
    }
    ck_assert_int_eq(registry_tier_parse("Leading"), -1);
    ck_assert_int_eq(registry_tier_parse(""), -1);
    ck_assert_str_eq(registry_tier_name(TIER_COUNT), "?");
}
END_TEST

START_TEST(test_missing_file)
{
    registry_t *reg = NULL;
    char err[CONFIG_ERRLEN], want[256];

    ck_assert_int_eq(registry_load(csv_path, cfg, &reg, err, sizeof err), -1);
    ck_assert_ptr_null(reg);
    snprintf(want, sizeof want, "%s: cannot open firm registry: No such file or directory",
             csv_path);
    ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(test_destroy_null)
{
    registry_t *reg = NULL;

    registry_destroy(&reg);
    ck_assert_ptr_null(reg);
}
END_TEST

/*
 * A key with a NUL inside must not match a shorter stored id, nor read past
 * its end. With one firm in 16 slots, about one key in 16 below probes the
 * slot of "a": the loop over every byte makes sure some do.
 */
START_TEST(test_find_nul_inside)
{
    registry_t *reg = load_text_ok(HEADER "a,A,energy-env,,member,\n");
    char key[3] = {'a', '\0', 0};

    ck_assert_int_eq(registry_find(reg, key, 1), 0);
    for (int c = 0; c < 256; c++) {
        key[2] = (char)c;
        ck_assert_int_eq(registry_find(reg, key, 3), -1);
        ck_assert_int_eq(registry_find(reg, key, 2), -1);
    }
    registry_destroy(&reg);
}
END_TEST

/* ---- registries that load ---------------------------------------------------- */

/* The small fixture the rules suite uses, too. */
START_TEST(test_fixture)
{
    registry_t *reg = load_ok("tests/data/registry/good.csv");

    ck_assert_uint_eq(reg->nfirms, 5);
    ck_assert_str_eq(firm_by_id(reg, "wp-2")->name, "Water Plant Two, \"Clearwave\" (fictional)");
    ck_assert_str_eq(firm_by_id(reg, "gb-1")->designations, "specialized-new;gazelle");
    ck_assert_int_eq(firm_by_id(reg, "gb-1")->chain, 1);
    ck_assert_int_eq(firm_by_id(reg, "pv-1")->cluster, 1);
    registry_destroy(&reg);
}
END_TEST

START_TEST(test_header_only)
{
    registry_t *reg = load_text_ok(HEADER);

    ck_assert_uint_eq(reg->nfirms, 0);
    ck_assert_int_eq(registry_find(reg, "ee-001", 6), -1);
    registry_destroy(&reg);
}
END_TEST

/* Columns in any order; chain and designations may be left out entirely. */
START_TEST(test_column_order)
{
    registry_t *reg = load_text_ok("tier,id,cluster,name\nmember,x-1,new-energy,Firm X\n");
    const firm_t *f = firm_by_id(reg, "x-1");

    ck_assert_str_eq(f->name, "Firm X");
    ck_assert_int_eq(f->cluster, 1);
    ck_assert_int_eq(f->chain, -1);
    ck_assert_int_eq(f->tier, TIER_MEMBER);
    ck_assert_str_eq(f->designations, "");
    registry_destroy(&reg);
}
END_TEST

/* status: active by default (column absent or empty), inactive when it says so. */
START_TEST(test_status)
{
    registry_t *reg = load_text_ok("id,name,cluster,tier,status\n"
                                   "a,A,energy-env,member,active\n"
                                   "b,B,energy-env,member,inactive\n"
                                   "c,C,energy-env,member,\n");

    ck_assert(!firm_by_id(reg, "a")->inactive);
    ck_assert(firm_by_id(reg, "b")->inactive);
    ck_assert(!firm_by_id(reg, "c")->inactive);
    registry_destroy(&reg);

    reg = load_text_ok(HEADER "d,D,energy-env,,member,\n");
    ck_assert(!firm_by_id(reg, "d")->inactive);
    registry_destroy(&reg);
}
END_TEST

/* A spreadsheet's BOM and CRLF line ends; a blank line; no final newline. */
START_TEST(test_bom_crlf)
{
    registry_t *reg = load_text_ok("\xef\xbb\xbf"
                                   "id,name,cluster,chain,tier,designations\r\n"
                                   "a,Firm A,energy-env,,member,\r\n"
                                   "\r\n"
                                   "b,Firm B,new-energy,solar-pv,leading,x");

    ck_assert_uint_eq(reg->nfirms, 2);
    ck_assert_str_eq(firm_by_id(reg, "a")->name, "Firm A");
    ck_assert_int_eq(firm_by_id(reg, "a")->line, 2);
    ck_assert_str_eq(firm_by_id(reg, "b")->designations, "x");
    ck_assert_int_eq(firm_by_id(reg, "b")->line, 4);
    registry_destroy(&reg);
}
END_TEST

/* A quoted name may span lines; the record is named by the line it starts on. */
START_TEST(test_multiline_name)
{
    registry_t *reg =
        load_text_ok(HEADER "a,\"Two\nLines\",energy-env,,member,\nb,Firm B,energy-env,,member,\n");

    ck_assert_str_eq(firm_by_id(reg, "a")->name, "Two\nLines");
    ck_assert_int_eq(firm_by_id(reg, "a")->line, 2);
    ck_assert_int_eq(firm_by_id(reg, "b")->line, 4);
    registry_destroy(&reg);
}
END_TEST

/* ---- registries that do not ---------------------------------------------------- */

static const struct {
    const char *name;
    const char *text;
    size_t len;       /* 0: strlen(text) */
    const char *want; /* the message after the path */
} bad[] = {
    {"empty file", "", 0, ":1: header: the file is empty (expected a header row)"},
    {"blank lines only", "\n\n", 0, ":1: header: the file is empty"},
    {"missing required column", "id,name,chain,tier\n", 0,
     ":1: header: required column 'cluster' is missing"},
    {"missing tier column", "id,name,cluster\n", 0,
     ":1: header: required column 'tier' is missing"},
    {"unknown column", "id,name,cluster,chain,tier,region\n", 0,
     ":1: header: unknown column 'region' (expected id, name, cluster, chain, tier, designations, "
     "status, key, city)"},
    {"bad city", "id,name,cluster,tier,city\na,A,energy-env,member,bad city\n", 0,
     ":2: city: firm 'a': 'bad city'"},
    {"column twice", "id,name,cluster,tier,id\n", 0, ":1: header: column 'id' appears twice"},
    {"bad status", "id,name,cluster,tier,status\na,A,energy-env,member,retired\n", 0,
     ":2: status: firm 'a': 'retired' is not active or inactive"},
    {"status is case-sensitive", "id,name,cluster,tier,status\na,A,energy-env,member,Active\n", 0,
     ":2: status: firm 'a': 'Active' is not active or inactive"},
    {"BOM, then an unknown column",
     "\xef\xbb\xbf"
     "id,nom,cluster,tier\n",
     0, ":1: header: unknown column 'nom'"},
    {"duplicate id",
     HEADER "a,A,energy-env,,member,\nb,B,energy-env,,member,\na,C,new-energy,,member,\n", 0,
     ":4: id: firm 'a' is already defined on line 2"},
    {"invalid id", HEADER "a.b,A,energy-env,,member,\n", 0,
     ":2: id: 'a.b': character 2 of the id is not a letter, digit, '_' or '-'"},
    {"empty id", HEADER ",A,energy-env,,member,\n", 0, ":2: id: '': empty id"},
    {"empty name", HEADER "a,,energy-env,,member,\n", 0, ":2: name: firm 'a' has an empty name"},
    {"unknown cluster", HEADER "a,A,moon-base,,member,\n", 0,
     ":2: cluster: firm 'a': unknown cluster 'moon-base'"},
    {"chain of another cluster", HEADER "a,A,energy-env,solar-pv,leading,\n", 0,
     ":2: chain: firm 'a': cluster 'energy-env' has no chain 'solar-pv'"},
    {"bad tier", HEADER "a,A,energy-env,,gold,\n", 0,
     ":2: tier: firm 'a': 'gold' is not leading, backbone, potential or member"},
    {"too few fields", HEADER "a,A,energy-env,,member,\nb,B,energy-env,member\n", 0,
     ":3: record: 4 fields, the header has 6"},
    {"too many fields", HEADER "a,A,energy-env,,member,,extra\n", 0,
     ":2: record: 7 fields, the header has 6"},
    {"invalid UTF-8 name", HEADER "a,Caf\xe9,energy-env,,member,\n", 0,
     ":2: name: firm 'a': name is not valid UTF-8"},
    {"truncated UTF-8 name", HEADER "a,\"\xe6\x94\",energy-env,,member,\n", 0,
     ":2: name: firm 'a': name is not valid UTF-8"},
    {"overlong UTF-8 name", HEADER "a,\xc0\xaf,energy-env,,member,\n", 0,
     ":2: name: firm 'a': name is not valid UTF-8"},
    {"invalid UTF-8 designations", HEADER "a,A,energy-env,,member,\xff\n", 0,
     ":2: designations: firm 'a': not valid UTF-8"},
    {"NUL byte", HEADER "a,A\0B,energy-env,,member,\n",
     sizeof(HEADER "a,A\0B,energy-env,,member,\n") - 1, ":2: record: field 2 holds a NUL byte"},
    {"unterminated quote", HEADER "a,A,energy-env,,member,\nb,\"Open,energy-env,,member,\n", 0,
     ":3: csv: error parsing data while strict checking enabled (an unterminated quoted field?)"},
    /* a quote left open in the last field would otherwise swallow the rest of the file */
    {"unterminated quote in the last field",
     HEADER "a,A,energy-env,,member,\"x;y\nb,B,energy-env,,member,\n", 0,
     ":3: csv: error parsing data while strict checking enabled (an unterminated quoted field?)"},
    {"stray quote", HEADER "a,A\"B,energy-env,,member,\n", 0, ":2: csv: "},
    {"error after a two-line name",
     HEADER "a,\"Two\nLines\",energy-env,,member,\nb,B,energy-env,,gold,\n", 0,
     ":4: tier: firm 'b': 'gold' is not"},
    /* the record starts where its first field does, not where that field ends */
    {"two-line first field", HEADER "a,A,energy-env,,member,\n\"b\nc\",B,energy-env,,member,\n", 0,
     ":3: id: 'b\nc': character 2 of the id"},
    {"error after a blank line", HEADER "a,A,energy-env,,member,\n\nb,B,energy-env,,gold,\n", 0,
     ":4: tier: firm 'b'"},
    {"error after a BOM", "\xef\xbb\xbf" HEADER "a,A,energy-env,,member,\nb,B,energy-env,,gold,\n",
     0, ":3: tier: firm 'b'"},
};

START_TEST(test_bad_registry)
{
    registry_t *reg = NULL;
    char err[CONFIG_ERRLEN], want[256];

    snprintf(want, sizeof want, "%s%s", csv_path, bad[_i].want);
    ck_assert_msg(load_text(bad[_i].text, bad[_i].len, &reg, err, sizeof err) == -1, "%s: loaded",
                  bad[_i].name);
    ck_assert_ptr_null(reg);
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0,
                  "%s:\n got      \"%s\"\n expected \"%s...\"", bad[_i].name, err, want);
}
END_TEST

/* A field longer than the limit is refused, not truncated. */
START_TEST(test_long_field)
{
    char text[2200], want[256], err[CONFIG_ERRLEN];
    registry_t *reg = NULL;
    size_t n = (size_t)snprintf(text, sizeof text, HEADER "a,");

    memset(text + n, 'n', 2000);
    n += 2000;
    snprintf(text + n, sizeof text - n, ",energy-env,,member,\n");
    snprintf(want, sizeof want, "%s:2: record: field 2 is 2000 bytes long (limit 1024)", csv_path);
    ck_assert_int_eq(load_text(text, 0, &reg, err, sizeof err), -1);
    ck_assert_str_eq(err, want);
}
END_TEST

static Suite *registry_suite(void)
{
    Suite *s = suite_create("registry");
    TCase *tc = tcase_create("load");

    tcase_add_unchecked_fixture(tc, tmpdir_make, tmpdir_remove);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_demo_loads);
    tcase_add_test(tc, test_demo_first_and_last);
    tcase_add_test(tc, test_demo_quoted_names);
    tcase_add_test(tc, test_find_bounded);
    tcase_add_test(tc, test_former_members);
    tcase_add_test(tc, test_find_nul_inside);
    tcase_add_test(tc, test_tier_names);
    tcase_add_test(tc, test_missing_file);
    tcase_add_test(tc, test_destroy_null);
    tcase_add_test(tc, test_fixture);
    tcase_add_test(tc, test_declared);
    tcase_add_test(tc, test_header_only);
    tcase_add_test(tc, test_column_order);
    tcase_add_test(tc, test_status);
    tcase_add_test(tc, test_bom_crlf);
    tcase_add_test(tc, test_multiline_name);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_unchecked_fixture(tc, tmpdir_make, tmpdir_remove);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_bad_registry, 0, (int)(sizeof bad / sizeof bad[0]));
    tcase_add_test(tc, test_long_field);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(registry_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
