/*
 * check_proto.c -- the wire protocol's unit suite (proto/).
 *
 * Round trips of every message, the hex vectors of proto/PROTOCOL.md (byte for
 * byte, both directions), a table of accepted alternative encodings, a table
 * of rejections (each asserting the error code and a piece of the reason),
 * truncation at every byte, and a cross-check of our encoders against
 * msgpack-c's own unpacker.
 *
 * Hostile messages are written in a small test-only notation turned into
 * MessagePack by mp() below, so that each table row reads like the message:
 *   {v:2, type:"batch", seq:f32(1.5), x:[nil, true, bin("ab")], y:<c1>}
 * Maps are {key:value,...} with bare or quoted keys, arrays [...], strings
 * "..." with \" \\ \xNN escapes, numbers (a '.' or 'e' makes a float64), the
 * words nil true false nan inf -inf, the typed forms f32(x) i8(n) i64(n)
 * u64(n) s16("...") bin("...") ext(n), and <hex> for raw bytes.
 */
#include <check.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"

/* ---- helpers --------------------------------------------------------- */

static proto_sample_t g_samples[PROTO_MAX_SAMPLES + 1];

static void mp_value(const char **s, msgpack_sbuffer *out);

static void mp_ws(const char **s)
{
    while (isspace((unsigned char)**s))
        (*s)++;
}

static size_t mp_strlit(const char **s, char *buf, size_t cap)
{
    size_t n = 0;

    ck_assert_msg(**s == '"', "mp: expected a string at \"%s\"", *s);
    (*s)++;
    while (**s && **s != '"') {
        char ch = *(*s)++;

        if (ch == '\\') {
            ch = *(*s)++;
            if (ch == 'x') {
                unsigned v = 0;

                ck_assert(sscanf(*s, "%2x", &v) == 1);
                *s += 2;
                ch = (char)v;
            }
        }
        ck_assert(n < cap);
        buf[n++] = ch;
    }
    ck_assert_msg(**s == '"', "mp: unterminated string");
    (*s)++;
    return n;
}

/* Parses one container's children into a scratch buffer, then writes the header and them. */
static void mp_container(const char **s, msgpack_sbuffer *out, bool is_map)
{
    msgpack_sbuffer kids;
    msgpack_packer pk;
    char close = is_map ? '}' : ']';
    uint32_t n = 0;

    msgpack_sbuffer_init(&kids);
    msgpack_packer_init(&pk, &kids, msgpack_sbuffer_write);
    (*s)++;
    mp_ws(s);
    while (**s != close) {
        if (is_map) {
            char key[256];
            size_t klen = 0;

            if (**s == '"') {
                klen = mp_strlit(s, key, sizeof(key));
            } else {
                while (isalnum((unsigned char)**s) || **s == '_')
                    key[klen++] = *(*s)++;
                ck_assert_msg(klen > 0, "mp: expected a key at \"%s\"", *s);
            }
            msgpack_pack_str(&pk, klen);
            msgpack_pack_str_body(&pk, key, klen);
            mp_ws(s);
            ck_assert_msg(**s == ':', "mp: expected ':' at \"%s\"", *s);
            (*s)++;
        }
        mp_value(s, &kids);
        n++;
        mp_ws(s);
        if (**s == ',') {
            (*s)++;
            mp_ws(s);
        } else {
            ck_assert_msg(**s == close, "mp: expected '%c' at \"%s\"", close, *s);
        }
    }
    (*s)++;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    if (is_map)
        msgpack_pack_map(&pk, n);
    else
        msgpack_pack_array(&pk, n);
    msgpack_sbuffer_write(out, kids.data, kids.size);
    msgpack_sbuffer_destroy(&kids);
}

static void mp_value(const char **s, msgpack_sbuffer *out)
{
    msgpack_packer pk;
    char buf[4096], word[16];
    size_t n = 0;

    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    mp_ws(s);
    if (**s == '{' || **s == '[') {
        mp_container(s, out, **s == '{');
    } else if (**s == '"') {
        n = mp_strlit(s, buf, sizeof(buf));
        msgpack_pack_str(&pk, n);
        msgpack_pack_str_body(&pk, buf, n);
    } else if (**s == '<') {
        for ((*s)++; **s != '>'; *s += 2) {
            unsigned v;

            ck_assert(sscanf(*s, "%2x", &v) == 1);
            buf[n++] = (char)v;
        }
        (*s)++;
        msgpack_sbuffer_write(out, buf, n);
    } else if (isdigit((unsigned char)**s) || (**s == '-' && isdigit((unsigned char)(*s)[1]))) {
        const char *start = *s;
        bool fp = false;

        while (isdigit((unsigned char)**s) || (**s && strchr("-+.eE", **s))) {
            fp |= **s == '.' || **s == 'e' || **s == 'E';
            (*s)++;
        }
        if (fp)
            msgpack_pack_double(&pk, strtod(start, NULL));
        else if (*start == '-')
            msgpack_pack_int64(&pk, strtoll(start, NULL, 10));
        else
            msgpack_pack_uint64(&pk, strtoull(start, NULL, 10));
    } else {
        bool neg = **s == '-';

        if (neg)
            (*s)++;
        while (isalnum((unsigned char)**s) && n < sizeof(word) - 1)
            word[n++] = *(*s)++;
        word[n] = '\0';
        if (!strcmp(word, "nil")) {
            msgpack_pack_nil(&pk);
        } else if (!strcmp(word, "true")) {
            msgpack_pack_true(&pk);
        } else if (!strcmp(word, "false")) {
            msgpack_pack_false(&pk);
        } else if (!strcmp(word, "nan")) {
            msgpack_pack_double(&pk, NAN);
        } else if (!strcmp(word, "inf")) {
            msgpack_pack_double(&pk, neg ? -INFINITY : INFINITY);
        } else {
            char arg[4096];
            size_t alen = 0;
            unsigned char raw[9];

            ck_assert_msg(**s == '(', "mp: unknown word \"%s\"", word);
            (*s)++;
            if (**s == '"') {
                alen = mp_strlit(s, arg, sizeof(arg));
            } else {
                while (**s != ')')
                    arg[alen++] = *(*s)++;
                arg[alen] = '\0';
            }
            ck_assert(**s == ')');
            (*s)++;
            if (!strcmp(word, "f32")) {
                msgpack_pack_float(&pk, strtof(arg, NULL));
            } else if (!strcmp(word, "i8")) {
                raw[0] = 0xd0;
                raw[1] = (unsigned char)strtol(arg, NULL, 10);
                msgpack_sbuffer_write(out, (char *)raw, 2);
            } else if (!strcmp(word, "i64") || !strcmp(word, "u64")) {
                uint64_t u =
                    word[0] == 'i' ? (uint64_t)strtoll(arg, NULL, 10) : strtoull(arg, NULL, 10);
                int k;

                raw[0] = word[0] == 'i' ? 0xd3 : 0xcf;
                for (k = 0; k < 8; k++)
                    raw[1 + k] = (unsigned char)(u >> (56 - 8 * k));
                msgpack_sbuffer_write(out, (char *)raw, 9);
            } else if (!strcmp(word, "s16")) {
                raw[0] = 0xda;
                raw[1] = (unsigned char)(alen >> 8);
                raw[2] = (unsigned char)alen;
                msgpack_sbuffer_write(out, (char *)raw, 3);
                msgpack_sbuffer_write(out, arg, alen);
            } else if (!strcmp(word, "bin")) {
                msgpack_pack_bin(&pk, alen);
                msgpack_pack_bin_body(&pk, arg, alen);
            } else if (!strcmp(word, "ext")) {
                msgpack_pack_ext(&pk, 1, (int8_t)atoi(arg));
                msgpack_pack_ext_body(&pk, "x", 1);
            } else {
                ck_abort_msg("mp: unknown word \"%s\"", word);
            }
        }
    }
}

/* Appends the MessagePack for spec (one value) to out. */
static void mp(msgpack_sbuffer *out, const char *spec)
{
    const char *s = spec;

    mp_value(&s, out);
    mp_ws(&s);
    ck_assert_msg(*s == '\0', "mp: junk after value: \"%s\"", s);
}

/* Appends a sequence of values (e.g. a message and trailing bytes). */
static void mps(msgpack_sbuffer *out, const char *spec)
{
    const char *s = spec;

    for (mp_ws(&s); *s; mp_ws(&s))
        mp_value(&s, out);
}

static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = 0;

    for (; *hex; hex++) {
        unsigned v;

        if (isspace((unsigned char)*hex))
            continue;
        ck_assert(sscanf(hex, "%2x", &v) == 1);
        ck_assert(n < cap);
        out[n++] = (uint8_t)v;
        hex++;
    }
    return n;
}

static bool str_is(proto_str_t s, const char *want)
{
    return proto_str_eq(s, want);
}

#define assert_str_is(s, want)                                                                     \
    ck_assert_msg(str_is((s), (want)), "got \"%.*s\", want \"%s\"", PROTO_STR_ARG(s), (want))

static int decode_batch(const void *buf, size_t len, proto_batch_t *b, char *err)
{
    memset(b, 0, sizeof(*b));
    b->samples = g_samples;
    b->cap = PROTO_MAX_SAMPLES;
    err[0] = '\0';
    return proto_batch_decode(buf, len, b, err, PROTO_ERRLEN);
}

/* Asserts that msgpack-c's unpacker reads buf as exactly one map. */
static void assert_msgpack_c_accepts(const msgpack_sbuffer *sb)
{
    msgpack_zone zone;
    msgpack_object obj;
    size_t off = 0;

    ck_assert(msgpack_zone_init(&zone, 2048));
    ck_assert_int_eq(msgpack_unpack(sb->data, sb->size, &off, &zone, &obj), MSGPACK_UNPACK_SUCCESS);
    ck_assert_uint_eq(off, sb->size);
    ck_assert_int_eq(obj.type, MSGPACK_OBJECT_MAP);
    ck_assert_uint_ge(obj.via.map.size, 2);
    msgpack_zone_destroy(&zone);
}

/* ---- hex vectors (the same strings are in proto/PROTOCOL.md) ---------- */

static const char HEX_BATCH[] = "86a17602a474797065a56261746368a37365712aa565706f636809a56167656e"
                                "74a76167656e742d37a773616d706c65739295a461636d65a7726576656e7565"
                                "cb40934a0000000000cf0000018bcfe56800a7323032332d313194a461636d65"
                                "a86370755f6c6f6164cb3fe8000000000000cf0000018bcfe5687b";

static const char HEX_ACK[] = "88a17602a474797065a361636ba37365712aa6737461747573a26f6ba8616363"
                              "657074656402a865787065637465642bab6d61785f76657273696f6e02a67265"
                              "61736f6ea0";

static const char HEX_NACK[] = "88a17602a474797065a361636ba37365712ba6737461747573ac756e6b6e6f77"
                               "6e5f6669726da8616363657074656400a865787065637465642cab6d61785f76"
                               "657273696f6e02a6726561736f6ebf73616d706c6520313a20756e6b6e6f776e"
                               "206669726d2027676c6f62657827";

static const char HEX_ALERT[] = "de0010a17602a474797065a5616c657274a26964ad7265762d64726f703a6163"
                                "6d65a472756c65a87265762d64726f70a87365766572697479a77761726e696e"
                                "67a57374617465a6666972696e67a7636c7573746572a465617374a563686169"
                                "6ec0a46669726da461636d65a66d6574726963a7726576656e7565a86f627365"
                                "72766564cb40934a0000000000a86578706563746564cb409f400000000000a7"
                                "73756d6d617279d92161636d6520726576656e756520313233342e3520697320"
                                "62656c6f772032303030a573696e6365cf0000018bcfe56800a27473cf000001"
                                "8bcfe65260a373657107";

static const char HEX_CTL[] = "84a17602a474797065a363746ca3636d64a67265706f7274a46172677381a479"
                              "656172cd07e7";

/* the daemon's answer to 8.5 as it stood before arguments were checked */
#define CTL_REPLY_REASON "firm: unknown argument for 'report' (allowed: year)"
static const char HEX_CTL_REPLY[] =
    "86a17602a474797065a963746c5f7265706c79a26f6bc2a6726561736f6ed933"
    "6669726d3a20756e6b6e6f776e20617267756d656e7420666f7220277265706f"
    "7274272028616c6c6f7765643a207965617229ab6d61785f76657273696f6e02"
    "a4626f6479c0";

static proto_sample_t vec_samples[2];

static proto_batch_t vec_batch(void)
{
    proto_batch_t b;

    vec_samples[0] = (proto_sample_t){proto_str("acme"),
                                      proto_str("revenue"),
                                      1234.5,
                                      1700000000000LL,
                                      {2023, PROTO_PERIOD_MONTH, 11}};
    vec_samples[1] = (proto_sample_t){
        proto_str("acme"), proto_str("cpu_load"), 0.75, 1700000000123LL, {0, PROTO_PERIOD_NONE, 0}};
    b = (proto_batch_t){proto_str("agent-7"), 9, 42, 2, vec_samples, 2, false, false};
    return b;
}

static const char NACK_REASON[] = "sample 1: unknown firm 'globex'";

static proto_alert_t vec_alert(void)
{
    proto_alert_t a = {
        .id = proto_str("rev-drop:acme"),
        .rule = proto_str("rev-drop"),
        .severity = PROTO_SEV_WARNING,
        .state = PROTO_ALERT_FIRING,
        .cluster = proto_str("east"),
        .chain = proto_str(NULL),
        .firm = proto_str("acme"),
        .metric = proto_str("revenue"),
        .observed = 1234.5,
        .expected = 2000,
        .summary = proto_str("acme revenue 1234.5 is below 2000"),
        .since_ms = 1700000000000LL,
        .ts_ms = 1700000060000LL,
        .seq = 7,
    };
    return a;
}

static void assert_bytes_eq_hex(const msgpack_sbuffer *sb, const char *hex)
{
    uint8_t want[1024];
    size_t n = unhex(hex, want, sizeof(want));

    ck_assert_uint_eq(sb->size, n);
    ck_assert_mem_eq(sb->data, want, n);
}

START_TEST(test_vector_batch)
{
    msgpack_sbuffer sb;
    proto_batch_t b = vec_batch(), d;
    uint8_t buf[1024];
    size_t n = unhex(HEX_BATCH, buf, sizeof(buf));
    char err[PROTO_ERRLEN];

    msgpack_sbuffer_init(&sb);
    ck_assert_int_eq(proto_batch_encode(&b, &sb, err, sizeof(err)), PROTO_OK);
    assert_bytes_eq_hex(&sb, HEX_BATCH);
    msgpack_sbuffer_destroy(&sb);

    ck_assert_int_eq(decode_batch(buf, n, &d, err), PROTO_OK);
    assert_str_is(d.agent, "agent-7");
    ck_assert_uint_eq(d.seq, 42);
    ck_assert_uint_eq(d.epoch, 9);
    ck_assert_uint_eq(d.nsamples, 2);
    assert_str_is(d.samples[0].firm, "acme");
    assert_str_is(d.samples[0].metric, "revenue");
    ck_assert(d.samples[0].value == 1234.5);
    ck_assert_int_eq(d.samples[0].ts_ms, 1700000000000LL);
    ck_assert_uint_eq(d.samples[0].period.kind, PROTO_PERIOD_MONTH);
    ck_assert_uint_eq(d.samples[0].period.year, 2023);
    ck_assert_uint_eq(d.samples[0].period.index, 11);
    assert_str_is(d.samples[1].metric, "cpu_load");
    ck_assert(d.samples[1].value == 0.75);
    ck_assert_int_eq(d.samples[1].ts_ms, 1700000000123LL);
    ck_assert_uint_eq(d.samples[1].period.kind, PROTO_PERIOD_NONE);
    /* decoded strings borrow from the buffer */
    ck_assert_ptr_eq(d.agent.ptr, (const char *)buf + 34);
}
END_TEST

START_TEST(test_vector_ack)
{
    msgpack_sbuffer sb;
    proto_ack_t a = {42, 43, PROTO_STATUS_OK, 2, 2, proto_str(""), false, 0, NULL, 0}, d;
    uint8_t buf[1024];
    size_t n = unhex(HEX_ACK, buf, sizeof(buf));
    char err[PROTO_ERRLEN];

    msgpack_sbuffer_init(&sb);
    ck_assert_int_eq(proto_ack_encode(&a, &sb), PROTO_OK);
    assert_bytes_eq_hex(&sb, HEX_ACK);
    msgpack_sbuffer_destroy(&sb);

    ck_assert_int_eq(proto_ack_decode(buf, n, &d, err, sizeof(err)), PROTO_OK);
    ck_assert_uint_eq(d.seq, 42);
    ck_assert_uint_eq(d.expected, 43);
    ck_assert_uint_eq(d.status, PROTO_STATUS_OK);
    ck_assert_uint_eq(d.accepted, 2);
    ck_assert_uint_eq(d.max_version, 2);
    ck_assert_uint_eq(d.reason.len, 0);
}
END_TEST

START_TEST(test_vector_nack)
{
    msgpack_sbuffer sb;
    proto_ack_t a = {43,   44, PROTO_STATUS_UNKNOWN_FIRM, 2, 0, proto_str(NACK_REASON), false, 0,
                     NULL, 0},
                d;
    uint8_t buf[1024];
    size_t n = unhex(HEX_NACK, buf, sizeof(buf));
    char err[PROTO_ERRLEN];

    msgpack_sbuffer_init(&sb);
    ck_assert_int_eq(proto_ack_encode(&a, &sb), PROTO_OK);
    assert_bytes_eq_hex(&sb, HEX_NACK);
    msgpack_sbuffer_destroy(&sb);

    ck_assert_int_eq(proto_ack_decode(buf, n, &d, err, sizeof(err)), PROTO_OK);
    ck_assert_uint_eq(d.seq, 43);
    ck_assert_uint_eq(d.expected, 44);
    ck_assert_uint_eq(d.status, PROTO_STATUS_UNKNOWN_FIRM);
    ck_assert_uint_eq(d.accepted, 0);
    ck_assert_uint_eq(d.max_version, 2);
    assert_str_is(d.reason, NACK_REASON);
}
END_TEST

static void assert_alert_eq(const proto_alert_t *x, const proto_alert_t *y)
{
    ck_assert(x->id.len == y->id.len && memcmp(x->id.ptr, y->id.ptr, x->id.len) == 0);
    ck_assert(x->rule.len == y->rule.len && memcmp(x->rule.ptr, y->rule.ptr, x->rule.len) == 0);
    ck_assert_uint_eq(x->severity, y->severity);
    ck_assert_uint_eq(x->state, y->state);
    ck_assert(x->cluster.len == y->cluster.len &&
              memcmp(x->cluster.ptr, y->cluster.ptr, x->cluster.len) == 0);
    ck_assert(x->chain.len == y->chain.len &&
              memcmp(x->chain.ptr, y->chain.ptr, x->chain.len) == 0);
    ck_assert(x->firm.len == y->firm.len && memcmp(x->firm.ptr, y->firm.ptr, x->firm.len) == 0);
    ck_assert(x->metric.len == y->metric.len &&
              memcmp(x->metric.ptr, y->metric.ptr, x->metric.len) == 0);
    ck_assert(x->observed == y->observed);
    ck_assert(x->expected == y->expected);
    ck_assert(x->summary.len == y->summary.len &&
              memcmp(x->summary.ptr, y->summary.ptr, x->summary.len) == 0);
    ck_assert_int_eq(x->since_ms, y->since_ms);
    ck_assert_int_eq(x->ts_ms, y->ts_ms);
    ck_assert_uint_eq(x->seq, y->seq);
}

START_TEST(test_vector_alert)
{
    msgpack_sbuffer sb;
    proto_alert_t a = vec_alert(), d;
    uint8_t buf[1024];
    size_t n = unhex(HEX_ALERT, buf, sizeof(buf));
    char err[PROTO_ERRLEN], topic[96];

    msgpack_sbuffer_init(&sb);
    ck_assert_int_eq(proto_alert_encode(&a, &sb, err, sizeof(err)), PROTO_OK);
    assert_bytes_eq_hex(&sb, HEX_ALERT);
    msgpack_sbuffer_destroy(&sb);

    ck_assert_int_eq(proto_alert_decode(buf, n, &d, err, sizeof(err)), PROTO_OK);
    assert_alert_eq(&a, &d);
    ck_assert_ptr_nonnull(d.chain.ptr); /* nil decodes to a printable empty string */
    ck_assert_int_eq(proto_alert_topic(d.cluster, d.severity, topic, sizeof(topic)), 18);
    ck_assert_str_eq(topic, "alert.east.warning");
}
END_TEST

START_TEST(test_vector_ctl)
{
    msgpack_sbuffer sb;
    proto_ctl_request_t r = {.cmd = proto_str("report"), .nargs = 1}, d;
    uint8_t buf[1024];
    size_t n = unhex(HEX_CTL, buf, sizeof(buf));
    char err[PROTO_ERRLEN];
    const proto_ctl_arg_t *a;

    r.args[0] = (proto_ctl_arg_t){proto_str("year"), PROTO_ARG_INT, 2023, proto_str(NULL)};
    msgpack_sbuffer_init(&sb);
    ck_assert_int_eq(proto_ctl_request_encode(&r, &sb), PROTO_OK);
    assert_bytes_eq_hex(&sb, HEX_CTL);
    msgpack_sbuffer_destroy(&sb);

    ck_assert_int_eq(proto_ctl_request_decode(buf, n, &d, err, sizeof(err)), PROTO_OK);
    assert_str_is(d.cmd, "report");
    ck_assert_uint_eq(d.nargs, 1);
    ck_assert_ptr_null(proto_ctl_arg(&d, "firm"));
    ck_assert_ptr_nonnull(a = proto_ctl_arg(&d, "year"));
    ck_assert_uint_eq(a->kind, PROTO_ARG_INT);
    ck_assert_int_eq(a->ival, 2023);
}
END_TEST

START_TEST(test_vector_ctl_reply)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_zone zone;
    msgpack_object body;
    proto_str_t reason;
    bool ok = true;
    uint8_t buf[1024];
    size_t n = unhex(HEX_CTL_REPLY, buf, sizeof(buf));
    char err[PROTO_ERRLEN];

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    ck_assert_int_eq(proto_ctl_reply_begin(&pk, false, CTL_REPLY_REASON), PROTO_OK);
    msgpack_pack_nil(&pk);
    assert_bytes_eq_hex(&sb, HEX_CTL_REPLY);
    msgpack_sbuffer_destroy(&sb);

    ck_assert(msgpack_zone_init(&zone, 1024));
    ck_assert_int_eq(proto_ctl_reply_decode(buf, n, &zone, &ok, &reason, &body, err, sizeof(err)),
                     PROTO_OK);
    ck_assert(!ok);
    assert_str_is(reason, CTL_REPLY_REASON);
    {
        /* max_version: an unknown key to older clients, there for a version refusal */
        msgpack_object o;
        size_t off = 0;
        msgpack_zone z2;
        ck_assert(msgpack_zone_init(&z2, 1024));
        ck_assert_int_eq(msgpack_unpack((const char *)buf, n, &off, &z2, &o),
                         MSGPACK_UNPACK_SUCCESS);
        const msgpack_object *mv = proto_obj_get(&o, "max_version");
        ck_assert_ptr_nonnull(mv);
        ck_assert_uint_eq(mv->via.u64, PROTO_VERSION);
        msgpack_zone_destroy(&z2);
    }
    ck_assert_int_eq(body.type, MSGPACK_OBJECT_NIL);
    msgpack_zone_destroy(&zone);
}
END_TEST

/* ---- round trips ------------------------------------------------------ */

START_TEST(test_batch_round_trip)
{
    static const char id64[] = "0123456789012345678901234567890123456789012345678901234567890123";
    proto_sample_t s[] = {
        {proto_str(id64),
         proto_str("m"),
         -PROTO_MAX_ABS_VALUE,
         0,
         {PROTO_MIN_YEAR, PROTO_PERIOD_YEAR, 0}},
        {proto_str("\xe5\x8c\x97\xe4\xba\xac"),
         proto_str(id64),
         PROTO_MAX_ABS_VALUE,
         PROTO_MAX_TS_MS - 1,
         {PROTO_MAX_YEAR, PROTO_PERIOD_QUARTER, 4}},
        {proto_str("f"), proto_str("m2"), 0.1, 1, {2021, PROTO_PERIOD_MONTH, 1}},
        {proto_str("f"), proto_str("m3"), -0.0, 12345, {0, PROTO_PERIOD_NONE, 0}},
        {proto_str("f"), proto_str("m4"), 5e-324, 1700000000000LL, {2021, PROTO_PERIOD_MONTH, 12}},
    };
    proto_batch_t b = {proto_str("agent-\xc3\xa9"), UINT64_MAX, UINT64_MAX, 5, s, 5, false, false},
                  d;
    msgpack_sbuffer sb;
    char err[PROTO_ERRLEN];
    uint32_t i;

    msgpack_sbuffer_init(&sb);
    ck_assert_int_eq(proto_batch_encode(&b, &sb, err, sizeof(err)), PROTO_OK);
    assert_msgpack_c_accepts(&sb);
    ck_assert_int_eq(decode_batch(sb.data, sb.size, &d, err), PROTO_OK);
    assert_str_is(d.agent, "agent-\xc3\xa9");
    ck_assert_uint_eq(d.seq, UINT64_MAX);
    ck_assert_uint_eq(d.nsamples, 5);
    for (i = 0; i < 5; i++) {
        ck_assert(d.samples[i].firm.len == s[i].firm.len &&
                  !memcmp(d.samples[i].firm.ptr, s[i].firm.ptr, s[i].firm.len));
        ck_assert(d.samples[i].metric.len == s[i].metric.len &&
                  !memcmp(d.samples[i].metric.ptr, s[i].metric.ptr, s[i].metric.len));
        ck_assert(memcmp(&d.samples[i].value, &s[i].value, sizeof(double)) ==
                  0); /* bit exact, -0.0 too */
        ck_assert_int_eq(d.samples[i].ts_ms, s[i].ts_ms);
        ck_assert_uint_eq(d.samples[i].period.kind, s[i].period.kind);
        if (s[i].period.kind != PROTO_PERIOD_NONE) {
            ck_assert_uint_eq(d.samples[i].period.year, s[i].period.year);
            ck_assert_uint_eq(d.samples[i].period.index, s[i].period.index);
        }
    }
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

START_TEST(test_batch_round_trip_max)
{
    proto_sample_t *s = calloc(PROTO_MAX_SAMPLES, sizeof(*s));
    proto_batch_t b = {proto_str("a"), 1, 1, PROTO_MAX_SAMPLES, s, PROTO_MAX_SAMPLES, false, false},
                  d;
    msgpack_sbuffer sb;
    char err[PROTO_ERRLEN];
    uint32_t i;

    ck_assert_ptr_nonnull(s);
    for (i = 0; i < PROTO_MAX_SAMPLES; i++)
        s[i] =
            (proto_sample_t){proto_str("firm"), proto_str("metric"), i * 1.5, 1000 + i, {0, 0, 0}};
    msgpack_sbuffer_init(&sb);
    ck_assert_int_eq(proto_batch_encode(&b, &sb, err, sizeof(err)), PROTO_OK);
    ck_assert_uint_le(sb.size, PROTO_MAX_MSG_SIZE);
    ck_assert_int_eq(decode_batch(sb.data, sb.size, &d, err), PROTO_OK);
    ck_assert_uint_eq(d.nsamples, PROTO_MAX_SAMPLES);
    ck_assert(d.samples[9999].value == 9999 * 1.5);
    ck_assert_int_eq(d.samples[9999].ts_ms, 1000 + 9999);
    msgpack_sbuffer_destroy(&sb);
    free(s);
}
END_TEST

START_TEST(test_ack_round_trip)
{
    msgpack_sbuffer sb;
    char err[PROTO_ERRLEN];
    int st;

    msgpack_sbuffer_init(&sb);
    for (st = 0; st < PROTO_STATUS_COUNT; st++) {
        proto_ack_t a = {(uint64_t)st * 1000003u,
                         (uint64_t)st * 7u,
                         (uint8_t)st,
                         PROTO_VERSION,
                         (uint32_t)st,
                         proto_str(st ? "why \xe2\x80\x94 because" : ""),
                         false,
                         0,
                         NULL,
                         0},
                    d;

        msgpack_sbuffer_clear(&sb);
        ck_assert_int_eq(proto_ack_encode(&a, &sb), PROTO_OK);
        assert_msgpack_c_accepts(&sb);
        ck_assert_int_eq(proto_ack_decode(sb.data, sb.size, &d, err, sizeof(err)), PROTO_OK);
        ck_assert_uint_eq(d.seq, a.seq);
        ck_assert_uint_eq(d.expected, a.expected);
        ck_assert_uint_eq(d.status, a.status);
        ck_assert_uint_eq(d.max_version, a.max_version);
        ck_assert_uint_eq(d.accepted, a.accepted);
        ck_assert(d.reason.len == a.reason.len &&
                  !memcmp(d.reason.ptr, a.reason.ptr, a.reason.len));
    }
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

START_TEST(test_alert_round_trip)
{
    msgpack_sbuffer sb;
    proto_alert_t a = vec_alert(), d;
    char err[PROTO_ERRLEN];

    a.chain = proto_str("chain-1");
    a.firm = proto_str(NULL);
    a.severity = PROTO_SEV_CRITICAL;
    a.state = PROTO_ALERT_RESOLVED;
    a.observed = -1e300;
    a.expected = 0;
    a.summary = proto_str("");
    msgpack_sbuffer_init(&sb);
    ck_assert_int_eq(proto_alert_encode(&a, &sb, err, sizeof(err)), PROTO_OK);
    assert_msgpack_c_accepts(&sb);
    ck_assert_int_eq(proto_alert_decode(sb.data, sb.size, &d, err, sizeof(err)), PROTO_OK);
    assert_alert_eq(&a, &d);
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

START_TEST(test_ctl_request_round_trip)
{
    proto_ctl_request_t r = {.cmd = proto_str("report"), .nargs = 4}, d;
    msgpack_sbuffer sb;
    char err[PROTO_ERRLEN];
    const proto_ctl_arg_t *a;

    r.args[0] = (proto_ctl_arg_t){proto_str("firm"), PROTO_ARG_STR, 0, proto_str("acme")};
    r.args[1] = (proto_ctl_arg_t){proto_str("min"), PROTO_ARG_INT, INT64_MIN, proto_str(NULL)};
    r.args[2] = (proto_ctl_arg_t){proto_str("max"), PROTO_ARG_INT, INT64_MAX, proto_str(NULL)};
    r.args[3] = (proto_ctl_arg_t){proto_str("chain"), PROTO_ARG_NIL, 0, proto_str(NULL)};
    msgpack_sbuffer_init(&sb);
    ck_assert_int_eq(proto_ctl_request_encode(&r, &sb), PROTO_OK);
    assert_msgpack_c_accepts(&sb);
    ck_assert_int_eq(proto_ctl_request_decode(sb.data, sb.size, &d, err, sizeof(err)), PROTO_OK);
    assert_str_is(d.cmd, "report");
    ck_assert_uint_eq(d.nargs, 4);
    ck_assert_ptr_nonnull(a = proto_ctl_arg(&d, "firm"));
    ck_assert_uint_eq(a->kind, PROTO_ARG_STR);
    assert_str_is(a->sval, "acme");
    ck_assert_ptr_nonnull(a = proto_ctl_arg(&d, "min"));
    ck_assert_uint_eq(a->kind, PROTO_ARG_INT);
    ck_assert(a->ival == INT64_MIN);
    ck_assert_ptr_nonnull(a = proto_ctl_arg(&d, "max"));
    ck_assert(a->ival == INT64_MAX);
    ck_assert_ptr_nonnull(a = proto_ctl_arg(&d, "chain"));
    ck_assert_uint_eq(a->kind, PROTO_ARG_NIL);
    ck_assert_ptr_null(proto_ctl_arg(&d, "nope"));

    /* no args at all: "args" may be absent */
    msgpack_sbuffer_clear(&sb);
    mp(&sb, "{v:2,type:\"ctl\",cmd:\"status\"}");
    ck_assert_int_eq(proto_ctl_request_decode(sb.data, sb.size, &d, err, sizeof(err)), PROTO_OK);
    assert_str_is(d.cmd, "status");
    ck_assert_uint_eq(d.nargs, 0);
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

START_TEST(test_ctl_reply_round_trip)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_zone zone;
    msgpack_object body;
    proto_str_t reason;
    bool ok;
    char err[PROTO_ERRLEN];

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    ck_assert(msgpack_zone_init(&zone, 1024));

    ck_assert_int_eq(proto_ctl_reply_begin(&pk, true, NULL), PROTO_OK);
    msgpack_pack_array(&pk, 2); /* body */
    msgpack_pack_int64(&pk, -5);
    msgpack_pack_map(&pk, 0);
    assert_msgpack_c_accepts(&sb);
    ck_assert_int_eq(
        proto_ctl_reply_decode(sb.data, sb.size, &zone, &ok, &reason, &body, err, sizeof(err)),
        PROTO_OK);
    ck_assert(ok);
    ck_assert_uint_eq(reason.len, 0);
    ck_assert_int_eq(body.type, MSGPACK_OBJECT_ARRAY);
    ck_assert_uint_eq(body.via.array.size, 2);
    ck_assert_int_eq(body.via.array.ptr[0].via.i64, -5);

    msgpack_sbuffer_clear(&sb);
    msgpack_zone_clear(&zone);
    ck_assert_int_eq(proto_ctl_reply_begin(&pk, false, "no such firm"), PROTO_OK);
    msgpack_pack_nil(&pk);
    ck_assert_int_eq(
        proto_ctl_reply_decode(sb.data, sb.size, &zone, &ok, &reason, &body, err, sizeof(err)),
        PROTO_OK);
    ck_assert(!ok);
    assert_str_is(reason, "no such firm");
    ck_assert_int_eq(body.type, MSGPACK_OBJECT_NIL);

    msgpack_zone_destroy(&zone);
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

static const struct {
    const char *msg;
    int rc;
    const char *why;
} ctl_reply_rejects[] = {
    {"{v:2,type:\"ctl_reply\",ok:true,reason:\"\",body:nil} <00>", PROTO_EMALFORMED,
     "trailing bytes"},
    {"{v:2,type:\"ctl_reply\",ok:true,reason:\"\"}", PROTO_EMALFORMED, "missing key \"body\""},
    {"{v:3,type:\"ctl_reply\",ok:true,reason:\"\",body:nil}", PROTO_EVERSION,
     "unsupported version"},
    {"{type:\"ctl_reply\",v:2,ok:true,reason:\"\",body:nil}", PROTO_EMALFORMED,
     "\"v\" must be the first key"},
    {"{v:2,type:\"ack\",ok:true,reason:\"\",body:nil}", PROTO_ETYPE, "unexpected type"},
    {"{v:2,type:\"ctl_reply\",ok:1,reason:\"\",body:nil}", PROTO_EMALFORMED, "ok: expected bool"},
    {"{v:2,type:\"ctl_reply\",ok:true,reason:\"\\xff\",body:nil}", PROTO_EVALUE, "invalid UTF-8"},
    {"{v:2,type:\"ctl_reply\",ok:true,ok:true,reason:\"\",body:nil}", PROTO_EMALFORMED,
     "duplicate key \"ok\""},
    {"[1]", PROTO_EMALFORMED, "expected map"},
    {"<85a176>", PROTO_EMALFORMED, "truncated"},
};

START_TEST(test_ctl_reply_reject)
{
    msgpack_sbuffer sb;
    msgpack_zone zone;
    msgpack_object body;
    proto_str_t reason;
    bool ok;
    char err[PROTO_ERRLEN] = "";

    msgpack_sbuffer_init(&sb);
    mps(&sb, ctl_reply_rejects[_i].msg);
    ck_assert(msgpack_zone_init(&zone, 1024));
    ck_assert_int_eq(
        proto_ctl_reply_decode(sb.data, sb.size, &zone, &ok, &reason, &body, err, sizeof(err)),
        ctl_reply_rejects[_i].rc);
    ck_assert_msg(strstr(err, ctl_reply_rejects[_i].why), "reason \"%s\" lacks \"%s\"", err,
                  ctl_reply_rejects[_i].why);
    msgpack_zone_destroy(&zone);
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

/* ---- periods, names --------------------------------------------------- */

static const struct {
    const char *s;
    int rc;
    uint16_t year;
    uint8_t kind, index;
} periods[] = {
    {"2021", PROTO_OK, 2021, PROTO_PERIOD_YEAR, 0},
    {"1970", PROTO_OK, 1970, PROTO_PERIOD_YEAR, 0},
    {"2199", PROTO_OK, 2199, PROTO_PERIOD_YEAR, 0},
    {"2021-Q1", PROTO_OK, 2021, PROTO_PERIOD_QUARTER, 1},
    {"2021-Q4", PROTO_OK, 2021, PROTO_PERIOD_QUARTER, 4},
    {"2021-01", PROTO_OK, 2021, PROTO_PERIOD_MONTH, 1},
    {"2021-12", PROTO_OK, 2021, PROTO_PERIOD_MONTH, 12},
    {"2021-13", PROTO_EVALUE, 0, 0, 0},
    {"2021-00", PROTO_EVALUE, 0, 0, 0},
    {"2021-Q5", PROTO_EVALUE, 0, 0, 0},
    {"2021-Q0", PROTO_EVALUE, 0, 0, 0},
    {"2021-q1", PROTO_EVALUE, 0, 0, 0},
    {"2021-1", PROTO_EVALUE, 0, 0, 0},
    {"2021-001", PROTO_EVALUE, 0, 0, 0},
    {"2021/01", PROTO_EVALUE, 0, 0, 0},
    {"1969", PROTO_EVALUE, 0, 0, 0},
    {"1900", PROTO_EVALUE, 0, 0, 0},
    {"2200", PROTO_EVALUE, 0, 0, 0},
    {"3000", PROTO_EVALUE, 0, 0, 0},
    {"21", PROTO_EVALUE, 0, 0, 0},
    {"", PROTO_EVALUE, 0, 0, 0},
    {" 2021", PROTO_EVALUE, 0, 0, 0},
    {"+021", PROTO_EVALUE, 0, 0, 0},
    {"20x1", PROTO_EVALUE, 0, 0, 0},
    {"2021-1a", PROTO_EVALUE, 0, 0, 0},
};

START_TEST(test_period_table)
{
    proto_period_t p = {0, 0, 0};
    char buf[PROTO_PERIOD_STRLEN];
    size_t len = strlen(periods[_i].s);

    ck_assert_msg(proto_period_parse(periods[_i].s, len, &p) == periods[_i].rc, "period \"%s\"",
                  periods[_i].s);
    if (periods[_i].rc != PROTO_OK)
        return;
    ck_assert_uint_eq(p.year, periods[_i].year);
    ck_assert_uint_eq(p.kind, periods[_i].kind);
    ck_assert_uint_eq(p.index, periods[_i].index);
    ck_assert_uint_eq(proto_period_format(p, buf, sizeof(buf)), len);
    ck_assert_str_eq(buf, periods[_i].s);
}
END_TEST

START_TEST(test_period_format_edges)
{
    char buf[PROTO_PERIOD_STRLEN], small[7];
    proto_period_t q = {2021, PROTO_PERIOD_QUARTER, 3};

    ck_assert_uint_eq(
        proto_period_format((proto_period_t){2021, PROTO_PERIOD_NONE, 0}, buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "");
    ck_assert_uint_eq(
        proto_period_format((proto_period_t){2021, PROTO_PERIOD_MONTH, 13}, buf, sizeof(buf)), 0);
    ck_assert_uint_eq(
        proto_period_format((proto_period_t){1969, PROTO_PERIOD_YEAR, 0}, buf, sizeof(buf)), 0);
    ck_assert_uint_eq(proto_period_format(q, small, sizeof(small)), 0); /* "2021-Q3" needs 8 */
    ck_assert_str_eq(small, "");
    ck_assert_uint_eq(proto_period_format(q, buf, sizeof(buf)), 7);
    ck_assert_str_eq(buf, "2021-Q3");
    ck_assert_int_eq(proto_period_parse("2021-Q3xyz", 7, &q),
                     PROTO_OK); /* length, not NUL, bounds it */
    ck_assert_int_eq(proto_period_parse(NULL, 0, &q), PROTO_EVALUE);
}
END_TEST

START_TEST(test_names)
{
    int i;

    for (i = 0; i < PROTO_STATUS_COUNT; i++)
        ck_assert_int_eq(proto_status_from_name(proto_str(proto_status_name((proto_status_t)i))),
                         i);
    for (i = 0; i < PROTO_SEV_COUNT; i++)
        ck_assert_int_eq(
            proto_severity_from_name(proto_str(proto_severity_name((proto_severity_t)i))), i);
    for (i = 0; i < PROTO_ALERT_STATE_COUNT; i++)
        ck_assert_int_eq(
            proto_alert_state_from_name(proto_str(proto_alert_state_name((proto_alert_state_t)i))),
            i);
    ck_assert_str_eq(proto_status_name(PROTO_STATUS_UNKNOWN_METRIC), "unknown_metric");
    ck_assert_str_eq(proto_status_name(PROTO_STATUS_TOO_LARGE), "too_large");
    ck_assert_int_eq(proto_status_from_name(proto_str("OK")), -1);
    ck_assert_int_eq(proto_status_from_name(proto_str("")), -1);
    ck_assert_int_eq(proto_severity_from_name(proto_str("fatal")), -1);
    ck_assert_int_eq(proto_alert_state_from_name(proto_str("fire")), -1);
    ck_assert_str_eq(proto_strerror(PROTO_EVERSION), "unsupported protocol version");
    ck_assert_str_eq(proto_strerror(-99), "unknown error");
    ck_assert(proto_str_eq(proto_str(NULL), ""));
    ck_assert(proto_str_eq(proto_str(""), NULL));
    ck_assert(!proto_str_eq(proto_str("ab"), "abc"));
}
END_TEST

START_TEST(test_alert_topic)
{
    char buf[32];

    ck_assert_int_eq(proto_alert_topic(proto_str("east"), PROTO_SEV_CRITICAL, buf, sizeof(buf)),
                     19);
    ck_assert_str_eq(buf, "alert.east.critical");
    ck_assert_int_eq(proto_alert_topic(proto_str("east"), PROTO_SEV_CRITICAL, buf, 19), -1);
    ck_assert_int_eq(proto_alert_topic(proto_str("east"), PROTO_SEV_CRITICAL, buf, 20), 19);
    ck_assert_int_eq(proto_alert_topic(proto_str("east"), PROTO_SEV_COUNT, buf, sizeof(buf)), -1);
}
END_TEST

/* ---- decoders accept what the spec allows ---------------------------- */

#define HB0 "v:2,type:\"batch\","
#define HB HB0 "epoch:1,"
#define S0 "[\"acme\",\"revenue\",1.5,1700000000000]"

static const struct {
    const char *name;
    const char *msg;
    double value; /* of sample 0 */
    uint64_t seq;
    int64_t ts;
    uint8_t kind; /* period kind of sample 0 */
} batch_accepts[] = {
    {"plain", "{" HB "agent:\"a\",seq:1,samples:[" S0 "]}", 1.5, 1, 1700000000000LL, 0},
    {"keys in any order", "{" HB "samples:[" S0 "],seq:9,agent:\"a\"}", 1.5, 9, 1700000000000LL, 0},
    {"value as uint", "{" HB "agent:\"a\",seq:1,samples:[[\"f\",\"m\",5,0]]}", 5, 1, 0, 0},
    {"value as negative int", "{" HB "agent:\"a\",seq:1,samples:[[\"f\",\"m\",-300,0]]}", -300, 1,
     0, 0},
    {"value as int64", "{" HB "agent:\"a\",seq:1,samples:[[\"f\",\"m\",i64(-7),0]]}", -7, 1, 0, 0},
    {"value as float32", "{" HB "agent:\"a\",seq:1,samples:[[\"f\",\"m\",f32(0.5),0]]}", 0.5, 1, 0,
     0},
    {"seq as int8", "{" HB "agent:\"a\",seq:i8(5),samples:[" S0 "]}", 1.5, 5, 1700000000000LL, 0},
    {"seq as uint64", "{" HB "agent:\"a\",seq:u64(3),samples:[" S0 "]}", 1.5, 3, 1700000000000LL,
     0},
    {"ts as int64", "{" HB "agent:\"a\",seq:1,samples:[[\"f\",\"m\",1.0,i64(77)]]}", 1, 1, 77, 0},
    {"nil period", "{" HB "agent:\"a\",seq:1,samples:[[\"f\",\"m\",1.0,0,nil]]}", 1, 1, 0, 0},
    {"quarter period", "{" HB "agent:\"a\",seq:1,samples:[[\"f\",\"m\",1.0,0,\"2021-Q2\"]]}", 1, 1,
     0, PROTO_PERIOD_QUARTER},
    {"str16 id", "{" HB "agent:s16(\"a\"),seq:1,samples:[[s16(\"f\"),\"m\",1.0,0]]}", 1, 1, 0, 0},
    {"unknown keys skipped",
     "{" HB "x:{a:[1,2,{b:nil}]},agent:\"a\",y:bin(\"zz\"),seq:1,z:ext(3),samples:[" S0
     "],w:[-1,f32(2),\"s\"]}",
     1.5, 1, 1700000000000LL, 0},
    {"unknown key nested to the limit", "{" HB "x:[[[1]]],agent:\"a\",seq:1,samples:[" S0 "]}", 1.5,
     1, 1700000000000LL, 0},
    {"map16 header",
     "<de0006a17602a474797065a56261746368a565706f636801a56167656e74a161a373657101"
     "a773616d706c65739194a166a16dcb3ff800000000000000>",
     1.5, 1, 0, 0},
};

/* The epoch in any integer width and in any place among the keys. */
static const struct {
    const char *msg;
    uint64_t epoch;
} epoch_accepts[] = {
    {"{" HB0 "epoch:u64(7),agent:\"a\",seq:1,samples:[" S0 "]}", 7},
    {"{" HB0 "epoch:i8(3),agent:\"a\",seq:1,samples:[" S0 "]}", 3},
    {"{" HB0 "epoch:i64(1),agent:\"a\",seq:1,samples:[" S0 "]}", 1},
    {"{" HB0 "agent:\"a\",seq:1,samples:[" S0 "],epoch:18446744073709551615}", UINT64_MAX},
};

START_TEST(test_batch_accept)
{
    msgpack_sbuffer sb;
    proto_batch_t b;
    char err[PROTO_ERRLEN];
    int rc;

    msgpack_sbuffer_init(&sb);
    mp(&sb, batch_accepts[_i].msg);
    rc = decode_batch(sb.data, sb.size, &b, err);
    ck_assert_msg(rc == PROTO_OK, "%s: rc %d: %s", batch_accepts[_i].name, rc, err);
    ck_assert_uint_eq(b.nsamples, 1);
    ck_assert(b.samples[0].value == batch_accepts[_i].value);
    ck_assert_uint_eq(b.seq, batch_accepts[_i].seq);
    ck_assert_uint_eq(b.epoch, 1);
    ck_assert_int_eq(b.samples[0].ts_ms, batch_accepts[_i].ts);
    ck_assert_uint_eq(b.samples[0].period.kind, batch_accepts[_i].kind);
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

START_TEST(test_batch_accept_epoch)
{
    msgpack_sbuffer sb;
    proto_batch_t b;
    char err[PROTO_ERRLEN];
    int rc;

    msgpack_sbuffer_init(&sb);
    mp(&sb, epoch_accepts[_i].msg);
    rc = decode_batch(sb.data, sb.size, &b, err);
    ck_assert_msg(rc == PROTO_OK, "%s: rc %d: %s", epoch_accepts[_i].msg, rc, err);
    ck_assert_uint_eq(b.epoch, epoch_accepts[_i].epoch);
    ck_assert_uint_eq(b.seq, 1);
    ck_assert_uint_eq(b.nsamples, 1);
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

/* ---- rejections -------------------------------------------------------- */

enum { M_BATCH, M_ACK, M_ALERT, M_CTL };

#define HA0 "v:2,type:\"ack\","
#define HA HA0 "expected:0,"
#define ACK_REST "status:\"ok\",accepted:1,max_version:1,reason:\"\""
#define HL "v:2,type:\"alert\","
#define ALERT_REST                                                                                 \
    "rule:\"r\",severity:\"info\",state:\"firing\",cluster:\"c\",chain:nil,firm:nil,metric:\"m\"," \
    "observed:1.0,"                                                                                \
    "expected:2.0,summary:\"s\",since:0,ts:1,seq:1"
#define HC "v:2,type:\"ctl\","
#define F65 "\"0123456789012345678901234567890123456789012345678901234567890123X\""

static const struct reject {
    int msg_type;
    const char *msg;
    int rc;
    const char *why;
} rejects[] = {
    /* envelope */
    {M_BATCH, "[1,2]", PROTO_EMALFORMED, "expected map, got array"},
    {M_BATCH, "\"batch\"", PROTO_EMALFORMED, "expected map, got str"},
    {M_BATCH, "<c1>", PROTO_EMALFORMED, "invalid MessagePack byte 0xc1"},
    {M_BATCH, "{}", PROTO_EMALFORMED, "\"v\" must be the first key"},
    {M_BATCH, "{type:\"batch\",v:2,agent:\"a\",seq:1,samples:[" S0 "]}", PROTO_EMALFORMED,
     "\"v\" must be the first key"},
    {M_BATCH, "<810102>", PROTO_EMALFORMED, "key: expected str, got int"},
    {M_BATCH, "{v:2,agent:\"a\",type:\"batch\",seq:1,samples:[" S0 "]}", PROTO_EMALFORMED,
     "\"type\" must be the second key"},
    {M_BATCH, "{v:2}", PROTO_EMALFORMED, "missing key \"type\""},
    {M_BATCH, "{v:0,type:\"batch\",agent:\"a\",seq:1,samples:[" S0 "]}", PROTO_EVERSION,
     "unsupported version 0"},
    {M_BATCH, "{v:3,type:\"batch\",agent:\"a\",seq:1,samples:[" S0 "]}", PROTO_EVERSION,
     "unsupported version 3"},
    /* a future version is refused before its fields are looked at */
    {M_BATCH, "{v:3,type:\"batch2\",agent:1}", PROTO_EVERSION, "unsupported version 3"},
    {M_BATCH, "{v:-1,type:\"batch\"}", PROTO_EVERSION, "unsupported version"},
    {M_BATCH, "{v:18446744073709551615,type:\"batch\"}", PROTO_EVERSION, "unsupported version"},
    {M_BATCH, "{v:\"1\",type:\"batch\"}", PROTO_EMALFORMED, "v: expected int, got str"},
    {M_BATCH, "{v:1.0,type:\"batch\"}", PROTO_EMALFORMED, "v: expected int, got float"},
    {M_BATCH, "{v:2,type:\"bogus\",agent:\"a\",seq:1,samples:[" S0 "]}", PROTO_ETYPE,
     "unexpected type \"bogus\" (want \"batch\" or \"check\")"},
    {M_BATCH, "{" HA "seq:1," ACK_REST "}", PROTO_ETYPE, "unexpected type \"ack\""},
    {M_BATCH, "{v:2,type:5}", PROTO_EMALFORMED, "type: expected str, got int"},
    {M_BATCH, "{v:2,type:\"\\xff\\xfe\"}", PROTO_ETYPE, "unexpected type (2 bytes)"},
    /* missing, duplicate, trailing */
    {M_BATCH, "{" HB "seq:1,samples:[" S0 "]}", PROTO_EMALFORMED, "missing key \"agent\""},
    {M_BATCH, "{" HB "agent:\"a\",samples:[" S0 "]}", PROTO_EMALFORMED, "missing key \"seq\""},
    {M_BATCH, "{" HB "agent:\"a\",seq:1}", PROTO_EMALFORMED, "missing key \"samples\""},
    {M_BATCH, "{" HB "agent:\"a\",seq:1,seq:2,samples:[" S0 "]}", PROTO_EMALFORMED,
     "duplicate key \"seq\""},
    {M_BATCH, "{" HB "agent:\"a\",seq:1,samples:[" S0 "],v:1}", PROTO_EMALFORMED,
     "duplicate key \"v\""},
    {M_BATCH, "{" HB "agent:\"a\",seq:1,samples:[" S0 "],type:\"batch\"}", PROTO_EMALFORMED,
     "duplicate key \"type\""},
    {M_BATCH, "{" HB "agent:\"a\",seq:1,samples:[" S0 "]} <00>", PROTO_EMALFORMED,
     "trailing bytes (1)"},
    {M_BATCH, "{" HB "agent:\"a\",seq:1,samples:[" S0 "]} {}", PROTO_EMALFORMED, "trailing bytes"},
    /* wrong types */
    {M_BATCH, "{" HB "agent:1,seq:1,samples:[" S0 "]}", PROTO_EMALFORMED,
     "agent: expected str, got int"},
    {M_BATCH, "{" HB "agent:bin(\"a\"),seq:1,samples:[" S0 "]}", PROTO_EMALFORMED,
     "agent: expected str, got bin"},
    {M_BATCH, "{" HB "agent:ext(1),seq:1,samples:[" S0 "]}", PROTO_EMALFORMED,
     "agent: expected str, got ext"},
    {M_BATCH, "{" HB "agent:nil,seq:1,samples:[" S0 "]}", PROTO_EMALFORMED,
     "agent: expected str, got nil"},
    {M_BATCH, "{" HB "agent:\"a\",seq:\"1\",samples:[" S0 "]}", PROTO_EMALFORMED,
     "seq: expected int, got str"},
    {M_BATCH, "{" HB "agent:\"a\",seq:1.0,samples:[" S0 "]}", PROTO_EMALFORMED,
     "seq: expected int, got float"},
    {M_BATCH, "{" HB "agent:\"a\",seq:true,samples:[" S0 "]}", PROTO_EMALFORMED,
     "seq: expected int, got bool"},
    {M_BATCH, "{" HB "agent:\"a\",seq:1,samples:{}}", PROTO_EMALFORMED,
     "samples: expected array, got map"},
    {M_BATCH, "{" HB "agent:\"a\",seq:1,samples:[\"x\"]}", PROTO_EMALFORMED,
     "sample 0: expected array, got str"},
    {M_BATCH, "{" HB "agent:\"a\",seq:1,samples:[[1,\"m\",1.0,0]]}", PROTO_EMALFORMED,
     "sample 0: firm: expected str, got int"},
    {M_BATCH, "{" HB "agent:\"a\",seq:1,samples:[[\"f\",bin(\"m\"),1.0,0]]}", PROTO_EMALFORMED,
     "sample 0: metric: expected str, got bin"},
    {M_BATCH, "{" HB "agent:\"a\",seq:1,samples:[[\"f\",\"m\",\"1.0\",0]]}", PROTO_EMALFORMED,
     "sample 0: value: expected float, got str"},
    {M_BATCH, "{" HB "agent:\"a\",seq:1,samples:[[\"f\",\"m\",nil,0]]}", PROTO_EMALFORMED,
     "sample 0: value: expected float, got nil"},
    {M_BATCH, "{" HB "agent:\"a\",seq:1,samples:[[\"f\",\"m\",1.0,1.5]]}", PROTO_EMALFORMED,
     "sample 0: ts_ms: expected int, got float"},
    {M_BATCH, "{" HB "agent:\"a\",seq:1,samples:[[\"f\",\"m\",1.0,\"0\"]]}", PROTO_EMALFORMED,
     "sample 0: ts_ms: expected int, got str"},
    {M_BATCH, "{" HB "agent:\"a\",seq:1,samples:[" S0 ",[\"f\",\"m\",1.0,0,2021]]}",
     PROTO_EMALFORMED, "sample 1: period: expected str, got int"},
    {M_BATCH, "{" HB "agent:\"a\",seq:1,samples:[[\"f\",\"m\",1.0,0,false]]}", PROTO_EMALFORMED,
     "sample 0: period: expected str, got bool"},
    {M_BATCH, "{" HB "agent:\"a\",seq:1,samples:[[\"f\",\"m\",1.0]]}", PROTO_EMALFORMED,
     "sample 0: array of 3 elements (want 4 or 5)"},
    {M_BATCH, "{" HB "agent:\"a\",seq:1,samples:[[\"f\",\"m\",1.0,0,nil,1]]}", PROTO_EMALFORMED,
     "sample 0: array of 6 elements (want 4 or 5)"},
    /* limits */
    {M_BATCH, "{" HB "agent:\"a\",seq:1,samples:[[" F65 ",\"m\",1.0,0]]}", PROTO_ELIMIT,
     "sample 0: firm: string of 65 bytes exceeds 64"},
    {M_BATCH, "{" HB "agent:" F65 ",seq:1,samples:[" S0 "]}", PROTO_ELIMIT,
     "agent: string of 65 bytes exceeds 64"},
    {M_BATCH, "{" HB "agent:\"a\",seq:1,samples:<dd000f4240>}", PROTO_ELIMIT,
     "samples: 1000000 samples exceed the limit 10000"},
    {M_BATCH, "{" HB "agent:\"a\",seq:1,samples:<ddffffffff>}", PROTO_ELIMIT,
     "4294967295 samples exceed"},
    {M_BATCH, "{" HB "x:[[[[1]]]],agent:\"a\",seq:1,samples:[" S0 "]}", PROTO_ELIMIT,
     "nesting deeper than 4"},
    {M_BATCH, "{" HB "x:{a:{b:{c:{}}}},agent:\"a\",seq:1,samples:[" S0 "]}", PROTO_ELIMIT,
     "nesting deeper than 4"},
    {M_BATCH, "{" HB "x:<ddffffffff>}", PROTO_EMALFORMED,
     "truncated: array of 4294967295 elements"},
    {M_BATCH, "{" HB "x:<dbffffffff00>}", PROTO_EMALFORMED, "truncated: str of 4294967295 bytes"},
    {M_BATCH, "{" HB "x:<c7ff01>}", PROTO_EMALFORMED, "truncated: ext of 255 bytes"},
    /* values */
    {M_BATCH, "{" HB "agent:\"\",seq:1,samples:[" S0 "]}", PROTO_EVALUE, "agent: empty string"},
    {M_BATCH, "{" HB "agent:\"a\",seq:1,samples:[[\"f\",\"\",1.0,0]]}", PROTO_EVALUE,
     "sample 0: metric: empty string"},
    {M_BATCH, "{" HB "agent:\"a\",seq:1,samples:[[\"f\",\"m\",nan,0]]}", PROTO_EVALUE,
     "sample 0: value is NaN"},
    {M_BATCH, "{" HB "agent:\"a\",seq:1,samples:[" S0 "," S0 ",[\"f\",\"m\",inf,0]]}", PROTO_EVALUE,
     "sample 2: value is +Inf"},
    {M_BATCH, "{" HB "agent:\"a\",seq:1,samples:[[\"f\",\"m\",-inf,0]]}", PROTO_EVALUE,
     "sample 0: value is -Inf"},
    {M_BATCH, "{" HB "agent:\"a\",seq:1,samples:[[\"f\",\"m\",<ca7fc00000>,0]]}", PROTO_EVALUE,
     "sample 0: value is NaN"},
    {M_BATCH, "{" HB "agent:\"a\",seq:1,samples:[[\"f\",\"m\",1e300,0]]}", PROTO_EVALUE,
     "in magnitude"},
    {M_BATCH, "{" HB "agent:\"a\",seq:1,samples:[[\"f\",\"m\",-1e300,0]]}", PROTO_EVALUE,
     "in magnitude"},
    {M_BATCH, "{" HB "agent:\"a\",seq:1,samples:[[\"f\",\"m\",u64(18446744073709551615),0]]}",
     PROTO_EVALUE, "in magnitude"},
    {M_BATCH, "{" HB "agent:\"a\",seq:1,samples:[[\"f\",\"m\",1.0,-1]]}", PROTO_EVALUE,
     "sample 0: ts_ms: -1 outside [0, 7258118400000)"},
    {M_BATCH, "{" HB "agent:\"a\",seq:1,samples:[[\"f\",\"m\",1.0,i64(-9223372036854775808)]]}",
     PROTO_EVALUE, "sample 0: ts_ms: -9223372036854775808 outside"},
    {M_BATCH, "{" HB "agent:\"a\",seq:1,samples:[[\"f\",\"m\",1.0,7258118400000]]}", PROTO_EVALUE,
     "sample 0: ts_ms: 7258118400000 outside"},
    {M_BATCH, "{" HB "agent:\"a\",seq:1,samples:[[\"f\",\"m\",1.0,18446744073709551615]]}",
     PROTO_EVALUE, "sample 0: ts_ms: integer 18446744073709551615 out of range"},
    {M_BATCH, "{" HB "agent:\"a\",seq:0,samples:[" S0 "]}", PROTO_EVALUE, "seq: 0 (must be >= 1)"},
    {M_BATCH, "{" HB "agent:\"a\",seq:-3,samples:[" S0 "]}", PROTO_EVALUE,
     "seq: negative integer -3"},
    /* epoch: required, an uint >= 1 */
    {M_BATCH, "{" HB0 "agent:\"a\",seq:1,samples:[" S0 "]}", PROTO_EMALFORMED,
     "missing key \"epoch\""},
    {M_BATCH, "{" HB0 "epoch:0,agent:\"a\",seq:1,samples:[" S0 "]}", PROTO_EVALUE,
     "epoch: 0 (must be >= 1)"},
    {M_BATCH, "{" HB0 "epoch:-3,agent:\"a\",seq:1,samples:[" S0 "]}", PROTO_EVALUE,
     "epoch: negative integer -3"},
    {M_BATCH, "{" HB0 "epoch:i64(-1),agent:\"a\",seq:1,samples:[" S0 "]}", PROTO_EVALUE,
     "epoch: negative"},
    {M_BATCH, "{" HB0 "epoch:\"1\",agent:\"a\",seq:1,samples:[" S0 "]}", PROTO_EMALFORMED,
     "epoch: expected int, got str"},
    {M_BATCH, "{" HB0 "epoch:1.0,agent:\"a\",seq:1,samples:[" S0 "]}", PROTO_EMALFORMED,
     "epoch: expected int, got float"},
    {M_BATCH, "{" HB0 "epoch:nil,agent:\"a\",seq:1,samples:[" S0 "]}", PROTO_EMALFORMED,
     "epoch: expected int, got nil"},
    {M_BATCH, "{" HB "epoch:2,agent:\"a\",seq:1,samples:[" S0 "]}", PROTO_EMALFORMED,
     "duplicate key \"epoch\""},
    {M_BATCH, "{" HB "agent:\"a\",seq:1,samples:[[\"f\",\"m\",1.0,0,\"2021-13\"]]}", PROTO_EVALUE,
     "sample 0: period: \"2021-13\" is not YYYY, YYYY-Qn or YYYY-MM"},
    {M_BATCH, "{" HB "agent:\"a\",seq:1,samples:[[\"f\",\"m\",1.0,0,\"2021-Q5\"]]}", PROTO_EVALUE,
     "period: \"2021-Q5\""},
    {M_BATCH, "{" HB "agent:\"a\",seq:1,samples:[[\"f\",\"m\",1.0,0,\"1900\"]]}", PROTO_EVALUE,
     "period: \"1900\""},
    {M_BATCH, "{" HB "agent:\"a\",seq:1,samples:[[\"f\",\"m\",1.0,0,\"3000\"]]}", PROTO_EVALUE,
     "period: \"3000\""},
    {M_BATCH, "{" HB "agent:\"a\",seq:1,samples:[[\"f\",\"m\",1.0,0,\"21\"]]}", PROTO_EVALUE,
     "period: \"21\""},
    {M_BATCH, "{" HB "agent:\"a\",seq:1,samples:[[\"f\",\"m\",1.0,0,\"\"]]}", PROTO_EVALUE,
     "period: \"\""},
    {M_BATCH, "{" HB "agent:\"a\",seq:1,samples:[[\"f\",\"m\",1.0,0,\"2021\\x00\\xff\"]]}",
     PROTO_EVALUE, "period: (6 bytes)"},
    /* UTF-8 */
    {M_BATCH, "{" HB "agent:\"a\\xff\",seq:1,samples:[" S0 "]}", PROTO_EVALUE,
     "agent: invalid UTF-8 at byte 1"},
    {M_BATCH, "{" HB "agent:\"a\",seq:1,samples:[[\"\\xc0\\xaf\",\"m\",1.0,0]]}", PROTO_EVALUE,
     "sample 0: firm: invalid UTF-8 at byte 0"},
    {M_BATCH, "{" HB "agent:\"a\",seq:1,samples:[[\"f\",\"\\xed\\xa0\\x80\",1.0,0]]}", PROTO_EVALUE,
     "metric: invalid UTF-8"},
    {M_BATCH, "{" HB "agent:\"\\xe5\\x8c\",seq:1,samples:[" S0 "]}", PROTO_EVALUE,
     "agent: invalid UTF-8"},
    {M_BATCH, "{" HB "agent:\"\\xf4\\x90\\x80\\x80\",seq:1,samples:[" S0 "]}", PROTO_EVALUE,
     "invalid UTF-8"},
    {M_BATCH, "{" HB "agent:\"a\\x00b\",seq:1,samples:[" S0 "]}", PROTO_EVALUE,
     "agent: NUL at byte 1"},

    /* ack */
    {M_ACK, "{" HA "seq:1,status:\"ok\",accepted:1,max_version:1}", PROTO_EMALFORMED,
     "missing key \"reason\""},
    {M_ACK, "{" HA "status:\"ok\",accepted:1,max_version:1,reason:\"\"}", PROTO_EMALFORMED,
     "missing key \"seq\""},
    {M_ACK, "{" HA "seq:1,status:\"fine\",accepted:1,max_version:1,reason:\"\"}", PROTO_EVALUE,
     "status: unknown status \"fine\""},
    {M_ACK, "{" HA "seq:1,status:1,accepted:1,max_version:1,reason:\"\"}", PROTO_EMALFORMED,
     "status: expected str, got int"},
    {M_ACK, "{" HA "seq:1,status:\"ok\",accepted:1,max_version:300,reason:\"\"}", PROTO_EVALUE,
     "max_version: 300 exceeds 255"},
    {M_ACK, "{" HA "seq:1,status:\"ok\",accepted:10001,max_version:1,reason:\"\"}", PROTO_EVALUE,
     "accepted: 10001 exceeds 10000"},
    {M_ACK, "{" HA "seq:-1," ACK_REST "}", PROTO_EVALUE, "seq: negative"},
    {M_ACK, "{" HA0 "seq:1," ACK_REST "}", PROTO_EMALFORMED, "missing key \"expected\""},
    {M_ACK, "{" HA0 "seq:1,expected:-1," ACK_REST "}", PROTO_EVALUE,
     "expected: negative integer -1"},
    {M_ACK, "{" HA0 "seq:1,expected:\"2\"," ACK_REST "}", PROTO_EMALFORMED,
     "expected: expected int, got str"},
    {M_ACK, "{" HA "seq:1,expected:2," ACK_REST "}", PROTO_EMALFORMED,
     "duplicate key \"expected\""},
    {M_ACK, "{" HA "seq:1,seq:1," ACK_REST "}", PROTO_EMALFORMED, "duplicate key \"seq\""},
    {M_ACK, "{v:2,type:\"batch\",seq:1," ACK_REST "}", PROTO_ETYPE,
     "unexpected type \"batch\" (want \"ack\")"},
    {M_ACK, "{v:3,type:\"ack\"}", PROTO_EVERSION, "unsupported version 3"},

    /* alert */
    {M_ALERT, "{" HL "id:\"i\"," ALERT_REST "}", PROTO_OK, ""},
    {M_ALERT, "{" HL ALERT_REST "}", PROTO_EMALFORMED, "missing key \"id\""},
    {M_ALERT, "{" HL "id:\"i\",severity:\"fatal\",rule:\"r\"}", PROTO_EVALUE,
     "severity: unknown severity \"fatal\""},
    {M_ALERT, "{" HL "id:\"i\",state:\"gone\"}", PROTO_EVALUE, "state: unknown state \"gone\""},
    {M_ALERT, "{" HL "id:\"i\",chain:\"\"}", PROTO_EVALUE, "chain: empty string"},
    {M_ALERT, "{" HL "id:\"i\",firm:1}", PROTO_EMALFORMED, "firm: expected str, got int"},
    {M_ALERT, "{" HL "id:\"i\",observed:nan}", PROTO_EVALUE, "observed: is NaN"},
    {M_ALERT, "{" HL "id:\"i\",expected:-inf}", PROTO_EVALUE, "expected: is -Inf"},
    {M_ALERT, "{" HL "id:\"i\",seq:0}", PROTO_EVALUE, "seq: 0"},
    {M_ALERT, "{" HL "id:\"i\",since:-5}", PROTO_EVALUE, "since: -5 outside"},
    {M_ALERT, "{" HL "id:\"i\",summary:\"\\xff\"}", PROTO_EVALUE, "summary: invalid UTF-8"},
    {M_ALERT, "{v:2,type:\"alarm\"}", PROTO_ETYPE, "unexpected type \"alarm\""},

    /* ctl */
    {M_CTL, "{" HC "args:{}}", PROTO_EMALFORMED, "missing key \"cmd\""},
    {M_CTL, "{" HC "cmd:\"\"}", PROTO_EVALUE, "cmd: empty string"},
    {M_CTL, "{" HC "cmd:\"x\",args:[]}", PROTO_EMALFORMED, "args: expected map, got array"},
    {M_CTL, "{" HC "cmd:\"x\",args:{a:1.5}}", PROTO_EMALFORMED,
     "args: \"a\": expected int, str or nil, got float"},
    {M_CTL, "{" HC "cmd:\"x\",args:{a:[1]}}", PROTO_EMALFORMED, "got array"},
    {M_CTL, "{" HC "cmd:\"x\",args:{a:1,a:2}}", PROTO_EMALFORMED,
     "args: \"a\": duplicate argument"},
    {M_CTL, "{" HC "cmd:\"x\",args:{a:18446744073709551615}}", PROTO_EVALUE, "out of range"},
    {M_CTL, "{" HC "cmd:\"x\",args:{" F65 ":1}}", PROTO_ELIMIT,
     "args: string of 65 bytes exceeds 64"},
    {M_CTL,
     "{" HC "cmd:\"x\",args:{a:1,b:1,c:1,d:1,e:1,f:1,g:1,h:1,i:1,j:1,k:1,l:1,m:1,n:1,o:1,p:1,q:1}}",
     PROTO_ELIMIT, "args: 17 arguments exceed 16"},
    {M_CTL, "{v:2,type:\"ctl_reply\",cmd:\"x\"}", PROTO_ETYPE, "unexpected type"},
};

static int decode_any(int msg_type, const void *buf, size_t len, char *err)
{
    proto_batch_t b;
    proto_ack_t a;
    proto_alert_t al;
    proto_ctl_request_t r;

    err[0] = '\0';
    switch (msg_type) {
    case M_BATCH: return decode_batch(buf, len, &b, err);
    case M_ACK: return proto_ack_decode(buf, len, &a, err, PROTO_ERRLEN);
    case M_ALERT: return proto_alert_decode(buf, len, &al, err, PROTO_ERRLEN);
    default: return proto_ctl_request_decode(buf, len, &r, err, PROTO_ERRLEN);
    }
}

START_TEST(test_reject)
{
    const struct reject *t = &rejects[_i];
    msgpack_sbuffer sb;
    char err[PROTO_ERRLEN];
    int rc;

    msgpack_sbuffer_init(&sb);
    mps(&sb, t->msg);
    rc = decode_any(t->msg_type, sb.data, sb.size, err);
    ck_assert_msg(rc == t->rc, "%s: rc %d (%s), want %d", t->msg, rc, err, t->rc);
    if (t->rc == PROTO_OK) {
        ck_assert_msg(err[0] == '\0', "%s: accepted, yet a reason \"%s\"", t->msg, err);
    } else {
        /* strstr(err, "") would pass whatever the reason: every refusal names one */
        ck_assert_msg(t->why[0] != '\0', "%s: the table names no reason", t->msg);
        ck_assert_msg(strstr(err, t->why) != NULL, "%s: reason \"%s\" lacks \"%s\"", t->msg, err,
                      t->why);
    }
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

/* Every proper prefix of a valid message fails cleanly (and ASan/valgrind watch the reads). */
START_TEST(test_truncated_everywhere)
{
    static const char *const hexes[] = {HEX_BATCH, HEX_ACK, HEX_NACK, HEX_ALERT};
    static const int types[] = {M_BATCH, M_ACK, M_ACK, M_ALERT};
    uint8_t full[1024];
    size_t n = unhex(hexes[_i], full, sizeof(full)), cut;
    char err[PROTO_ERRLEN];

    ck_assert_int_eq(decode_any(types[_i], full, n, err), PROTO_OK);
    for (cut = 0; cut < n; cut++) {
        /* copy to an exact-size heap block so an over-read is caught */
        uint8_t *p = malloc(cut ? cut : 1);
        int rc;

        memcpy(p, full, cut);
        rc = decode_any(types[_i], p, cut, err);
        ck_assert_msg(rc == PROTO_EMALFORMED, "cut at %zu: rc %d (%s)", cut, rc, err);
        ck_assert_msg(err[0] != '\0', "cut at %zu: no reason", cut);
        free(p);
    }
}
END_TEST

START_TEST(test_truncated_ctl)
{
    proto_ctl_request_t r = {.cmd = proto_str("report"), .nargs = 2}, d;
    msgpack_sbuffer sb;
    char err[PROTO_ERRLEN];
    size_t cut;

    r.args[0] = (proto_ctl_arg_t){proto_str("firm"), PROTO_ARG_STR, 0, proto_str("acme")};
    r.args[1] = (proto_ctl_arg_t){proto_str("n"), PROTO_ARG_INT, -70000, proto_str(NULL)};
    msgpack_sbuffer_init(&sb);
    ck_assert_int_eq(proto_ctl_request_encode(&r, &sb), PROTO_OK);
    for (cut = 0; cut < sb.size; cut++) {
        uint8_t *p = malloc(cut ? cut : 1);

        memcpy(p, sb.data, cut);
        ck_assert_int_eq(proto_ctl_request_decode(p, cut, &d, err, sizeof(err)), PROTO_EMALFORMED);
        free(p);
    }
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

/* Builds {v,type,agent,seq,epoch,samples:[n x S0]} with a real body of n samples. */
static void build_batch_n(msgpack_sbuffer *sb, uint32_t n)
{
    msgpack_packer pk;
    uint32_t i;

    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    mps(sb, "<86> \"v\" 2 \"type\" \"batch\" \"agent\" \"a\" \"seq\" 1 \"epoch\" 1 \"samples\"");
    msgpack_pack_array(&pk, n);
    for (i = 0; i < n; i++)
        mp(sb, S0);
}

START_TEST(test_reject_10001_samples)
{
    msgpack_sbuffer sb;
    proto_batch_t b;
    char err[PROTO_ERRLEN];

    msgpack_sbuffer_init(&sb);
    build_batch_n(&sb, PROTO_MAX_SAMPLES);
    ck_assert_int_eq(decode_batch(sb.data, sb.size, &b, err), PROTO_OK);
    ck_assert_uint_eq(b.nsamples, PROTO_MAX_SAMPLES);
    msgpack_sbuffer_clear(&sb);
    build_batch_n(&sb, PROTO_MAX_SAMPLES + 1);
    ck_assert_int_eq(decode_batch(sb.data, sb.size, &b, err), PROTO_ELIMIT);
    ck_assert_str_eq(err, "samples: 10001 samples exceed the limit 10000");
    ck_assert_uint_eq(b.nsamples, 0);
    ck_assert_uint_eq(b.seq, 1); /* decoded before the failure: a nack can name it */
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

START_TEST(test_reject_capacity)
{
    msgpack_sbuffer sb;
    proto_batch_t b = {.samples = g_samples, .cap = 2};
    char err[PROTO_ERRLEN];

    msgpack_sbuffer_init(&sb);
    build_batch_n(&sb, 3);
    ck_assert_int_eq(proto_batch_decode(sb.data, sb.size, &b, err, sizeof(err)), PROTO_ELIMIT);
    ck_assert_str_eq(err, "samples: 3 samples exceed the capacity 2");
    b.cap = 3;
    ck_assert_int_eq(proto_batch_decode(sb.data, sb.size, &b, err, sizeof(err)), PROTO_OK);
    b.samples = NULL;
    ck_assert_int_eq(proto_batch_decode(sb.data, sb.size, &b, err, sizeof(err)), PROTO_ELIMIT);
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

START_TEST(test_reject_huge_strings)
{
    size_t big = 1u << 20;
    char *s = malloc(big);
    msgpack_sbuffer sb;
    msgpack_packer pk;
    proto_batch_t b;
    char err[PROTO_ERRLEN];

    ck_assert_ptr_nonnull(s);
    memset(s, 'x', big);
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);

    /* a 1 MiB agent id */
    mps(&sb,
        "<86> \"v\" 2 \"type\" \"batch\" \"seq\" 1 \"epoch\" 1 \"samples\" [" S0 "] \"agent\"");
    msgpack_pack_str(&pk, big);
    msgpack_pack_str_body(&pk, s, big);
    ck_assert_int_eq(decode_batch(sb.data, sb.size, &b, err), PROTO_ELIMIT);
    ck_assert_str_eq(err, "agent: string of 1048576 bytes exceeds 64");

    /* a 1 MiB value under an unknown key is skipped (the frame is under PROTO_MAX_MSG_SIZE) */
    msgpack_sbuffer_clear(&sb);
    mps(&sb,
        "<87> \"v\" 2 \"type\" \"batch\" \"agent\" \"a\" \"seq\" 1 \"epoch\" 1 \"samples\" [" S0
        "] \"junk\"");
    msgpack_pack_str(&pk, big);
    msgpack_pack_str_body(&pk, s, big);
    ck_assert_int_eq(decode_batch(sb.data, sb.size, &b, err), PROTO_OK);

    /* a frame over PROTO_MAX_MSG_SIZE is refused whatever it holds */
    ck_assert_int_eq(decode_batch(sb.data, PROTO_MAX_MSG_SIZE + 1, &b, err), PROTO_ELIMIT);
    ck_assert_str_eq(err, "message of 4194305 bytes exceeds 4194304");

    /* a 1 MiB alert summary */
    msgpack_sbuffer_clear(&sb);
    mps(&sb, "<83> \"v\" 2 \"type\" \"alert\" \"summary\"");
    msgpack_pack_str(&pk, big);
    msgpack_pack_str_body(&pk, s, big);
    {
        proto_alert_t a;

        ck_assert_int_eq(proto_alert_decode(sb.data, sb.size, &a, err, sizeof(err)), PROTO_ELIMIT);
        ck_assert_str_eq(err, "summary: string of 1048576 bytes exceeds 1024");
    }
    msgpack_sbuffer_destroy(&sb);
    free(s);
}
END_TEST

START_TEST(test_reject_deep_nesting)
{
    char spec[512];
    msgpack_sbuffer sb;
    proto_batch_t b;
    char err[PROTO_ERRLEN];
    size_t n = 0;
    int i;

    n += (size_t)snprintf(spec + n, sizeof(spec) - n,
                          "{" HB "agent:\"a\",seq:1,samples:[" S0 "],deep:");
    for (i = 0; i < 100; i++)
        spec[n++] = '[';
    for (i = 0; i < 100; i++)
        spec[n++] = ']';
    spec[n++] = '}';
    spec[n] = '\0';
    msgpack_sbuffer_init(&sb);
    mp(&sb, spec);
    ck_assert_int_eq(decode_batch(sb.data, sb.size, &b, err), PROTO_ELIMIT);
    ck_assert_str_eq(err, "unknown key \"deep\": nesting deeper than 4");
    ck_assert_uint_eq(b.seq, 1);
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

START_TEST(test_seq_kept_on_failure)
{
    msgpack_sbuffer sb;
    proto_batch_t b;
    char err[PROTO_ERRLEN];

    msgpack_sbuffer_init(&sb);
    mp(&sb, "{" HB "agent:\"a\",seq:77,samples:[" S0 ",[\"f\",\"m\",nan,0]]}");
    ck_assert_int_eq(decode_batch(sb.data, sb.size, &b, err), PROTO_EVALUE);
    ck_assert_str_eq(err, "sample 1: value is NaN");
    ck_assert_uint_eq(b.seq, 77);
    ck_assert_uint_eq(b.nsamples, 0);

    msgpack_sbuffer_clear(&sb);
    mp(&sb, "{" HB "agent:\"a\",samples:[[\"f\",\"m\",nan,0]],seq:77}");
    ck_assert_int_eq(decode_batch(sb.data, sb.size, &b, err), PROTO_EVALUE);
    ck_assert_uint_eq(b.seq, 0);   /* not reached */
    ck_assert_uint_eq(b.epoch, 1); /* reached */
    assert_str_is(b.agent, "a");

    /* a bad agent id is not kept half-read */
    msgpack_sbuffer_clear(&sb);
    mp(&sb, "{" HB0 "seq:5,epoch:6,agent:\"a\\xff\",samples:[" S0 "]}");
    ck_assert_int_eq(decode_batch(sb.data, sb.size, &b, err), PROTO_EVALUE);
    ck_assert_uint_eq(b.seq, 5);
    ck_assert_uint_eq(b.epoch, 6);
    ck_assert_uint_eq(b.agent.len, 0);

    msgpack_sbuffer_clear(&sb);
    mp(&sb, "{v:3,type:\"batch\",agent:\"a\",seq:77,samples:[" S0 "]}");
    ck_assert_int_eq(decode_batch(sb.data, sb.size, &b, err), PROTO_EVERSION);
    ck_assert_uint_eq(b.seq, 0); /* a future version's fields are not interpreted */
    ck_assert_uint_eq(b.epoch, 0);
    ck_assert_uint_eq(b.agent.len, 0);
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

START_TEST(test_null_err_buffer)
{
    uint8_t junk[] = {0xc1};
    proto_batch_t b = {.samples = g_samples, .cap = 1};

    ck_assert_int_eq(proto_batch_decode(junk, sizeof(junk), &b, NULL, 0), PROTO_EMALFORMED);
    ck_assert_int_eq(proto_batch_decode(NULL, 0, &b, NULL, 0), PROTO_EMALFORMED);
}
END_TEST

/* The encoder writes seq, epoch and agent before the samples, so a batch
 * whose sample fails to decode still names its stream and seq (the daemon
 * settles that seq with the nack). The vector with sample 0's value made NaN. */
START_TEST(test_header_kept_on_sample_failure)
{
    static const uint8_t v1234_5[] = {0xcb, 0x40, 0x93, 0x4a, 0, 0, 0, 0, 0};
    static const uint8_t nan[] = {0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0};
    uint8_t buf[1024], *at;
    size_t n = unhex(HEX_BATCH, buf, sizeof(buf));
    proto_batch_t b;
    char err[PROTO_ERRLEN];

    ck_assert_ptr_nonnull(at = memmem(buf, n, v1234_5, sizeof(v1234_5)));
    memcpy(at, nan, sizeof(nan));
    ck_assert_int_eq(decode_batch(buf, n, &b, err), PROTO_EVALUE);
    ck_assert_str_eq(err, "sample 0: value is NaN");
    ck_assert_uint_eq(b.seq, 42);
    ck_assert_uint_eq(b.epoch, 9);
    assert_str_is(b.agent, "agent-7");
    ck_assert_uint_eq(b.nsamples, 0);

    /* the same for a sample cut short: the header was read */
    ck_assert_int_eq(decode_batch(buf, (size_t)(at - buf) + 3, &b, err), PROTO_EMALFORMED);
    ck_assert_uint_eq(b.seq, 42);
    ck_assert_uint_eq(b.epoch, 9);
    assert_str_is(b.agent, "agent-7");
}
END_TEST

/* 0 samples is a valid batch: it settles its seq with nothing. */
START_TEST(test_batch_empty)
{
    proto_batch_t b = {proto_str("agent-7"), 3, 12, 0, NULL, 0, false, false}, d;
    msgpack_sbuffer sb;
    char err[PROTO_ERRLEN];

    msgpack_sbuffer_init(&sb);
    mp(&sb, "{" HB "agent:\"a\",seq:5,samples:[]}");
    ck_assert_int_eq(decode_batch(sb.data, sb.size, &d, err), PROTO_OK);
    ck_assert_uint_eq(d.nsamples, 0);
    ck_assert_uint_eq(d.seq, 5);
    ck_assert_uint_eq(d.epoch, 1);
    assert_str_is(d.agent, "a");

    /* a decoder with no sample storage at all takes it too */
    d = (proto_batch_t){.samples = NULL, .cap = 0};
    ck_assert_int_eq(proto_batch_decode(sb.data, sb.size, &d, err, sizeof(err)), PROTO_OK);
    ck_assert_uint_eq(d.nsamples, 0);
    /* ... but not a sample more */
    msgpack_sbuffer_clear(&sb);
    mp(&sb, "{" HB "agent:\"a\",seq:5,samples:[" S0 "]}");
    ck_assert_int_eq(proto_batch_decode(sb.data, sb.size, &d, err, sizeof(err)), PROTO_ELIMIT);
    ck_assert_str_eq(err, "samples: 1 samples exceed the capacity 0");

    /* the encoder writes it (samples may be NULL with 0 of them) and it round-trips */
    msgpack_sbuffer_clear(&sb);
    ck_assert_int_eq(proto_batch_encode(&b, &sb, err, sizeof(err)), PROTO_OK);
    assert_msgpack_c_accepts(&sb);
    ck_assert_int_eq(decode_batch(sb.data, sb.size, &d, err), PROTO_OK);
    ck_assert_uint_eq(d.nsamples, 0);
    ck_assert_uint_eq(d.seq, 12);
    ck_assert_uint_eq(d.epoch, 3);
    assert_str_is(d.agent, "agent-7");
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

/* A partial answer carries its refused samples; a check's answer says dry_run;
 * a batch says partial, a check is type "check"; a decoder with too little
 * room refuses the list, one with none counts it. */
START_TEST(test_partial_round_trip)
{
    proto_refusal_t r[2] = {{1, PROTO_STATUS_UNKNOWN_FIRM, proto_str("sample 1: unknown firm 'x'")},
                            {9999, PROTO_STATUS_INVALID, proto_str("")}},
                    got[2];
    proto_ack_t a = {.seq = 5,
                     .expected = 6,
                     .status = PROTO_STATUS_PARTIAL,
                     .max_version = PROTO_VERSION,
                     .accepted = 3,
                     .reason = proto_str(""),
                     .dry_run = true,
                     .nrefused = 2,
                     .refused = r};
    proto_ack_t d = {.refused = got, .refused_cap = 2};
    msgpack_sbuffer sb;
    char err[PROTO_ERRLEN];

    msgpack_sbuffer_init(&sb);
    ck_assert_int_eq(proto_ack_encode(&a, &sb), PROTO_OK);
    ck_assert_msg(proto_ack_decode(sb.data, sb.size, &d, err, sizeof(err)) == PROTO_OK, "%s", err);
    ck_assert_int_eq(d.status, PROTO_STATUS_PARTIAL);
    ck_assert(d.dry_run);
    ck_assert_uint_eq(d.accepted, 3);
    ck_assert_uint_eq(d.nrefused, 2);
    ck_assert_uint_eq(got[0].index, 1);
    ck_assert_int_eq(got[0].status, PROTO_STATUS_UNKNOWN_FIRM);
    ck_assert(proto_str_eq(got[0].reason, "sample 1: unknown firm 'x'"));
    ck_assert_uint_eq(got[1].index, 9999);
    ck_assert_int_eq(got[1].status, PROTO_STATUS_INVALID);
    /* too little room: refused; no room: counted */
    d = (proto_ack_t){.refused = got, .refused_cap = 1};
    ck_assert_int_eq(proto_ack_decode(sb.data, sb.size, &d, err, sizeof(err)), PROTO_ELIMIT);
    d = (proto_ack_t){0};
    ck_assert_int_eq(proto_ack_decode(sb.data, sb.size, &d, err, sizeof(err)), PROTO_OK);
    ck_assert_uint_eq(d.nrefused, 2);
    /* a plain ok has neither key: the bytes of 8.2 are unchanged (test_vector_ack) */
    msgpack_sbuffer_clear(&sb);
    a = (proto_ack_t){
        .seq = 5, .status = PROTO_STATUS_OK, .max_version = 2, .reason = proto_str("")};
    ck_assert_int_eq(proto_ack_encode(&a, &sb), PROTO_OK);
    ck_assert_ptr_null(memmem(sb.data, sb.size, "refused", 7));
    ck_assert_ptr_null(memmem(sb.data, sb.size, "dry_run", 7));
    /* a sample's status must be one a sample can have */
    msgpack_sbuffer_clear(&sb);
    r[0].status = PROTO_STATUS_BUSY;
    a = (proto_ack_t){.seq = 5,
                      .status = PROTO_STATUS_PARTIAL,
                      .max_version = 2,
                      .reason = proto_str(""),
                      .nrefused = 1,
                      .refused = r};
    ck_assert_int_eq(proto_ack_encode(&a, &sb), PROTO_EVALUE);
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

START_TEST(test_batch_flags_round_trip)
{
    proto_sample_t s[1] =
        {{proto_str("acme"), proto_str("revenue"), 1.5, 0, {2024, PROTO_PERIOD_MONTH, 3}}},
                   ds[1];
    char err[PROTO_ERRLEN];

    for (int k = 0; k < 4; k++) {
        proto_batch_t b = {.agent = proto_str("a"),
                           .epoch = 1,
                           .seq = 1,
                           .nsamples = 1,
                           .samples = s,
                           .cap = 1,
                           .partial = k & 1,
                           .dry_run = k & 2};
        proto_batch_t d = {.samples = ds, .cap = 1};
        msgpack_sbuffer sb;

        msgpack_sbuffer_init(&sb);
        ck_assert_int_eq(proto_batch_encode(&b, &sb, err, sizeof(err)), PROTO_OK);
        ck_assert_msg(proto_batch_decode(sb.data, sb.size, &d, err, sizeof(err)) == PROTO_OK, "%s",
                      err);
        ck_assert_int_eq(d.partial, b.partial);
        ck_assert_int_eq(d.dry_run, b.dry_run);
        ck_assert_int_eq(memmem(sb.data, sb.size,
                                "\xa5"
                                "check",
                                6) != NULL,
                         b.dry_run);
        ck_assert_uint_eq(d.nsamples, 1);
        msgpack_sbuffer_destroy(&sb);
    }
}
END_TEST

START_TEST(test_ack_expected_round_trip)
{
    static const uint64_t values[] = {
        0, 1, 127, 128, 65536, UINT32_MAX, (uint64_t)UINT32_MAX + 1, UINT64_MAX};
    msgpack_sbuffer sb;
    char err[PROTO_ERRLEN];

    msgpack_sbuffer_init(&sb);
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        proto_ack_t a = {7,
                         values[i],
                         PROTO_STATUS_OUT_OF_ORDER,
                         PROTO_VERSION,
                         0,
                         proto_str("gap"),
                         false,
                         0,
                         NULL,
                         0},
                    d;

        msgpack_sbuffer_clear(&sb);
        ck_assert_int_eq(proto_ack_encode(&a, &sb), PROTO_OK);
        ck_assert_int_eq(proto_ack_decode(sb.data, sb.size, &d, err, sizeof(err)), PROTO_OK);
        ck_assert_uint_eq(d.expected, values[i]);
        ck_assert_uint_eq(d.status, PROTO_STATUS_OUT_OF_ORDER);
    }
    /* a failed decode leaves expected at "not known" */
    msgpack_sbuffer_clear(&sb);
    mp(&sb, "{" HA0 "seq:1,expected:9," ACK_REST ",x:<c1>}");
    {
        proto_ack_t d;

        ck_assert_int_ne(proto_ack_decode(sb.data, sb.size, &d, err, sizeof(err)), PROTO_OK);
        ck_assert_uint_eq(d.expected, 9);
    }
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

/* What a sender does after each status (PROTOCOL.md 5): every status has a row. */
static const struct {
    proto_status_t status;
    const char *name;
    proto_next_t next;
} status_next[] = {
    {PROTO_STATUS_OK, "ok", PROTO_NEXT_DONE},
    {PROTO_STATUS_MALFORMED, "malformed", PROTO_NEXT_FINAL},
    {PROTO_STATUS_VERSION, "version", PROTO_NEXT_FINAL},
    {PROTO_STATUS_UNKNOWN_FIRM, "unknown_firm", PROTO_NEXT_FINAL},
    {PROTO_STATUS_UNKNOWN_METRIC, "unknown_metric", PROTO_NEXT_FINAL},
    {PROTO_STATUS_INVALID, "invalid", PROTO_NEXT_FINAL},
    {PROTO_STATUS_TOO_LARGE, "too_large", PROTO_NEXT_FINAL},
    {PROTO_STATUS_BUSY, "busy", PROTO_NEXT_RETRY},
    {PROTO_STATUS_INTERNAL, "internal", PROTO_NEXT_RETRY},
    {PROTO_STATUS_FORBIDDEN, "forbidden", PROTO_NEXT_FINAL},
    {PROTO_STATUS_RATE_LIMITED, "rate_limited", PROTO_NEXT_RETRY},
    {PROTO_STATUS_OUT_OF_ORDER, "out_of_order", PROTO_NEXT_REWIND},
    {PROTO_STATUS_AGENT_CONFLICT, "agent_conflict", PROTO_NEXT_STOP},
    {PROTO_STATUS_PARTIAL, "partial", PROTO_NEXT_DONE},
};

START_TEST(test_status_next)
{
    ck_assert_int_eq((int)(sizeof(status_next) / sizeof(status_next[0])), PROTO_STATUS_COUNT);
    for (int i = 0; i < PROTO_STATUS_COUNT; i++) {
        ck_assert_int_eq(status_next[i].status, i);
        ck_assert_str_eq(proto_status_name(status_next[i].status), status_next[i].name);
        ck_assert_int_eq(proto_status_from_name(proto_str(status_next[i].name)), i);
        ck_assert_msg(proto_status_next(status_next[i].status) == status_next[i].next,
                      "%s: next %d, want %d", status_next[i].name,
                      (int)proto_status_next(status_next[i].status), (int)status_next[i].next);
    }
}
END_TEST

/* ---- encoders refuse what decoders would refuse ---------------------- */

/* Packs {v,type:"ack",seq:1,expected:0,status,accepted,max_version:2,reason}
 * by hand (the encoder would refuse the values under test) and decodes it;
 * the reason goes to err. */
static int decode_raw_ack(const char *status, uint64_t accepted, const char *reason, size_t rlen,
                          char *err)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    proto_ack_t a;
    int rc;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    mps(&sb, "<88> \"v\" 2 \"type\" \"ack\" \"seq\" 1 \"expected\" 0 \"max_version\" 2 \"status\"");
    msgpack_pack_str(&pk, strlen(status));
    msgpack_pack_str_body(&pk, status, strlen(status));
    mps(&sb, "\"accepted\"");
    msgpack_pack_uint64(&pk, accepted);
    mps(&sb, "\"reason\"");
    msgpack_pack_str(&pk, rlen);
    msgpack_pack_str_body(&pk, reason, rlen);
    err[0] = '\0';
    rc = proto_ack_decode(sb.data, sb.size, &a, err, PROTO_ERRLEN);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

/* The same for {v,type:"ctl_reply",ok:false,reason,body:nil}. */
static int decode_raw_ctl_reply(const char *reason, size_t rlen, char *err)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_zone zone;
    msgpack_object body;
    proto_str_t why;
    bool ok;
    int rc;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    mps(&sb, "<85> \"v\" 2 \"type\" \"ctl_reply\" \"ok\" false \"reason\"");
    msgpack_pack_str(&pk, rlen);
    msgpack_pack_str_body(&pk, reason, rlen);
    mps(&sb, "\"body\" nil");
    ck_assert(msgpack_zone_init(&zone, 1024));
    err[0] = '\0';
    rc = proto_ctl_reply_decode(sb.data, sb.size, &zone, &ok, &why, &body, err, PROTO_ERRLEN);
    msgpack_zone_destroy(&zone);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

/* Decodes a control request written in mp() notation; the reason to err. */
static int decode_raw_ctl(const char *spec, char *err)
{
    msgpack_sbuffer sb;
    proto_ctl_request_t r;
    int rc;

    msgpack_sbuffer_init(&sb);
    mp(&sb, spec);
    err[0] = '\0';
    rc = proto_ctl_request_decode(sb.data, sb.size, &r, err, PROTO_ERRLEN);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

START_TEST(test_encode_rejects)
{
    static const char id65[] = "01234567890123456789012345678901234567890123456789012345678901234";
    proto_sample_t s;
    proto_batch_t b = {proto_str("a"), 1, 1, 1, &s, 1, false, false};
    msgpack_sbuffer sb;
    char err[PROTO_ERRLEN];

    msgpack_sbuffer_init(&sb);
    msgpack_sbuffer_write(&sb, "xyz", 3); /* encoders append; a failure leaves this alone */

#define RESET() (s = (proto_sample_t){proto_str("f"), proto_str("m"), 1.0, 0, {0, 0, 0}})
#define EXPECT(call, code, text)                                                                   \
    do {                                                                                           \
        err[0] = '\0';                                                                             \
        ck_assert_int_eq((call), (code));                                                          \
        ck_assert((text)[0] != '\0');                                                              \
        ck_assert_msg(strstr(err, (text)), "reason \"%s\"", err);                                  \
        ck_assert_uint_eq(sb.size, 3);                                                             \
    } while (0)

    RESET();
    s.value = NAN;
    EXPECT(proto_batch_encode(&b, &sb, err, sizeof(err)), PROTO_EVALUE, "sample 0: value is NaN");
    RESET();
    s.value = -INFINITY;
    EXPECT(proto_batch_encode(&b, &sb, err, sizeof(err)), PROTO_EVALUE, "sample 0: value is -Inf");
    RESET();
    s.value = PROTO_MAX_ABS_VALUE * 2;
    EXPECT(proto_batch_encode(&b, &sb, err, sizeof(err)), PROTO_EVALUE, "in magnitude");
    RESET();
    s.firm = proto_str(id65);
    EXPECT(proto_batch_encode(&b, &sb, err, sizeof(err)), PROTO_ELIMIT,
           "sample 0: firm: string of 65 bytes");
    RESET();
    s.metric = proto_str("\xff");
    EXPECT(proto_batch_encode(&b, &sb, err, sizeof(err)), PROTO_EVALUE,
           "sample 0: metric: invalid UTF-8");
    RESET();
    s.ts_ms = -1;
    EXPECT(proto_batch_encode(&b, &sb, err, sizeof(err)), PROTO_EVALUE,
           "sample 0: ts_ms: -1 outside");
    RESET();
    s.period = (proto_period_t){2021, PROTO_PERIOD_MONTH, 13};
    EXPECT(proto_batch_encode(&b, &sb, err, sizeof(err)), PROTO_EVALUE,
           "sample 0: period: invalid period");
    RESET();
    s.period = (proto_period_t){2021, 9, 1};
    EXPECT(proto_batch_encode(&b, &sb, err, sizeof(err)), PROTO_EVALUE, "period");
    RESET();
    b.seq = 0;
    EXPECT(proto_batch_encode(&b, &sb, err, sizeof(err)), PROTO_EVALUE, "seq: 0");
    b.seq = 1;
    b.agent = proto_str("");
    EXPECT(proto_batch_encode(&b, &sb, err, sizeof(err)), PROTO_EVALUE, "agent: empty string");
    b.agent = proto_str("a");
    b.epoch = 0;
    EXPECT(proto_batch_encode(&b, &sb, err, sizeof(err)), PROTO_EVALUE, "epoch: 0 (must be >= 1)");
    b.epoch = 1;
    b.samples = NULL; /* samples with no storage */
    EXPECT(proto_batch_encode(&b, &sb, err, sizeof(err)), PROTO_EVALUE,
           "samples: NULL with 1 samples");
    b.samples = &s;
    b.nsamples = PROTO_MAX_SAMPLES + 1;
    EXPECT(proto_batch_encode(&b, &sb, err, sizeof(err)), PROTO_ELIMIT, "exceed the limit");

    {
        proto_alert_t a = vec_alert();

        a.severity = PROTO_SEV_COUNT;
        EXPECT(proto_alert_encode(&a, &sb, err, sizeof(err)), PROTO_EVALUE,
               "severity: unknown severity 3");
        a = vec_alert();
        a.seq = 0;
        EXPECT(proto_alert_encode(&a, &sb, err, sizeof(err)), PROTO_EVALUE, "seq: 0");
        a = vec_alert();
        a.observed = NAN;
        EXPECT(proto_alert_encode(&a, &sb, err, sizeof(err)), PROTO_EVALUE, "observed: is NaN");
        a = vec_alert();
        a.cluster = proto_str("");
        EXPECT(proto_alert_encode(&a, &sb, err, sizeof(err)), PROTO_EVALUE,
               "cluster: empty string");
    }
    /* The ack, ctl reply and ctl request encoders take no reason buffer:
     * each refusal below asserts its code, that the output is untouched,
     * that the one field changed is the cause (put it back: PROTO_OK), and
     * that the decoder refuses the same value on the wire for the reason
     * named. */
#define EXPECT_RC(call, code)                                                                      \
    do {                                                                                           \
        ck_assert_int_eq((call), (code));                                                          \
        ck_assert_uint_eq(sb.size, 3);                                                             \
    } while (0)
    {
        proto_ack_t a = {1, 0, PROTO_STATUS_COUNT, 2, 0, proto_str(""), false, 0, NULL, 0};
        char *longtext = malloc(PROTO_MAX_TEXT_LEN + 2);

        /* no name to put on the wire: the decoder's side is an unknown name */
        EXPECT_RC(proto_ack_encode(&a, &sb), PROTO_EVALUE);
        ck_assert_int_eq(decode_raw_ack("fine", 0, "", 0, err), PROTO_EVALUE);
        ck_assert_str_eq(err, "status: unknown status \"fine\"");
        a.status = PROTO_STATUS_OK;
        ck_assert_int_eq(proto_ack_encode(&a, &sb), PROTO_OK);
        sb.size = 3;

        a.accepted = PROTO_MAX_SAMPLES + 1;
        EXPECT_RC(proto_ack_encode(&a, &sb), PROTO_EVALUE);
        ck_assert_int_eq(decode_raw_ack("ok", PROTO_MAX_SAMPLES + 1, "", 0, err), PROTO_EVALUE);
        ck_assert_str_eq(err, "accepted: 10001 exceeds 10000");
        a.accepted = PROTO_MAX_SAMPLES;
        ck_assert_int_eq(proto_ack_encode(&a, &sb), PROTO_OK);
        sb.size = 3;

        a.accepted = 0;
        memset(longtext, 'r', PROTO_MAX_TEXT_LEN + 1);
        longtext[PROTO_MAX_TEXT_LEN + 1] = '\0';
        a.reason = proto_str(longtext);
        EXPECT_RC(proto_ack_encode(&a, &sb), PROTO_ELIMIT);
        ck_assert_int_eq(decode_raw_ack("ok", 0, longtext, PROTO_MAX_TEXT_LEN + 1, err),
                         PROTO_ELIMIT);
        ck_assert_str_eq(err, "reason: string of 1025 bytes exceeds 1024");
        longtext[PROTO_MAX_TEXT_LEN] = '\0';
        a.reason = proto_str(longtext);
        ck_assert_int_eq(proto_ack_encode(&a, &sb), PROTO_OK);
        sb.size = 3;

        {
            msgpack_packer pk;

            longtext[PROTO_MAX_TEXT_LEN] = 'r';
            msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
            EXPECT_RC(proto_ctl_reply_begin(&pk, false, longtext), PROTO_ELIMIT);
            ck_assert_int_eq(decode_raw_ctl_reply(longtext, PROTO_MAX_TEXT_LEN + 1, err),
                             PROTO_ELIMIT);
            ck_assert_str_eq(err, "reason: string of 1025 bytes exceeds 1024");
            EXPECT_RC(proto_ctl_reply_begin(&pk, false, "\xc3"), PROTO_EVALUE);
            ck_assert_int_eq(decode_raw_ctl_reply("\xc3", 1, err), PROTO_EVALUE);
            ck_assert_str_eq(err, "reason: invalid UTF-8 at byte 0");
            longtext[PROTO_MAX_TEXT_LEN] = '\0';
            ck_assert_int_eq(proto_ctl_reply_begin(&pk, false, longtext), PROTO_OK);
            sb.size = 3;
        }
        free(longtext);
    }
    {
        proto_ctl_request_t r = {.cmd = proto_str("x"), .nargs = PROTO_MAX_CTL_ARGS + 1};
        uint32_t i;

        /* nargs past the array: refused on the count, before any is read */
        for (i = 0; i < PROTO_MAX_CTL_ARGS; i++)
            r.args[i] = (proto_ctl_arg_t){proto_str("k"), PROTO_ARG_NIL, 0, proto_str(NULL)};
        EXPECT_RC(proto_ctl_request_encode(&r, &sb), PROTO_ELIMIT);
        ck_assert_int_eq(decode_raw_ctl("{" HC
                                        "cmd:\"x\",args:{a:1,b:1,c:1,d:1,e:1,f:1,g:1,h:1,i:1,j:1,"
                                        "k:1,l:1,m:1,n:1,o:1,p:1,q:1}}",
                                        err),
                         PROTO_ELIMIT);
        ck_assert_str_eq(err, "args: 17 arguments exceed 16");
        r.nargs = 2; /* two "k" */
        EXPECT_RC(proto_ctl_request_encode(&r, &sb), PROTO_EMALFORMED);
        ck_assert_int_eq(decode_raw_ctl("{" HC "cmd:\"x\",args:{k:nil,k:nil}}", err),
                         PROTO_EMALFORMED);
        ck_assert_str_eq(err, "args: \"k\": duplicate argument");
        r.args[1].key = proto_str("k2");
        ck_assert_int_eq(proto_ctl_request_encode(&r, &sb), PROTO_OK);
        sb.size = 3;
        r.nargs = 1;
        r.cmd = proto_str("");
        EXPECT_RC(proto_ctl_request_encode(&r, &sb), PROTO_EVALUE);
        ck_assert_int_eq(decode_raw_ctl("{" HC "cmd:\"\",args:{k:nil}}", err), PROTO_EVALUE);
        ck_assert_str_eq(err, "cmd: empty string");
        r.cmd = proto_str("x");
        ck_assert_int_eq(proto_ctl_request_encode(&r, &sb), PROTO_OK);
    }
#undef EXPECT_RC
#undef EXPECT
#undef RESET
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

/* ---- suite --------------------------------------------------------------- */

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static Suite *proto_suite(void)
{
    Suite *s = suite_create("proto");
    TCase *tc;

    tc = tcase_create("vectors");
    tcase_add_test(tc, test_vector_batch);
    tcase_add_test(tc, test_vector_ack);
    tcase_add_test(tc, test_vector_nack);
    tcase_add_test(tc, test_vector_alert);
    tcase_add_test(tc, test_vector_ctl);
    tcase_add_test(tc, test_vector_ctl_reply);
    suite_add_tcase(s, tc);

    tc = tcase_create("round_trip");
    tcase_add_test(tc, test_batch_round_trip);
    tcase_add_test(tc, test_batch_round_trip_max);
    tcase_add_test(tc, test_ack_round_trip);
    tcase_add_test(tc, test_ack_expected_round_trip);
    tcase_add_test(tc, test_partial_round_trip);
    tcase_add_test(tc, test_batch_flags_round_trip);
    tcase_add_test(tc, test_batch_empty);
    tcase_add_test(tc, test_alert_round_trip);
    tcase_add_test(tc, test_ctl_request_round_trip);
    tcase_add_test(tc, test_ctl_reply_round_trip);
    suite_add_tcase(s, tc);

    tc = tcase_create("period_names");
    tcase_add_loop_test(tc, test_period_table, 0, N(periods));
    tcase_add_test(tc, test_period_format_edges);
    tcase_add_test(tc, test_names);
    tcase_add_test(tc, test_status_next);
    tcase_add_test(tc, test_alert_topic);
    suite_add_tcase(s, tc);

    tc = tcase_create("accept");
    tcase_add_loop_test(tc, test_batch_accept, 0, N(batch_accepts));
    tcase_add_loop_test(tc, test_batch_accept_epoch, 0, N(epoch_accepts));
    suite_add_tcase(s, tc);

    tc = tcase_create("reject");
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, test_reject, 0, N(rejects));
    tcase_add_loop_test(tc, test_ctl_reply_reject, 0, N(ctl_reply_rejects));
    tcase_add_loop_test(tc, test_truncated_everywhere, 0, 4);
    tcase_add_test(tc, test_truncated_ctl);
    tcase_add_test(tc, test_reject_10001_samples);
    tcase_add_test(tc, test_reject_capacity);
    tcase_add_test(tc, test_reject_huge_strings);
    tcase_add_test(tc, test_reject_deep_nesting);
    tcase_add_test(tc, test_seq_kept_on_failure);
    tcase_add_test(tc, test_header_kept_on_sample_failure);
    tcase_add_test(tc, test_null_err_buffer);
    tcase_add_test(tc, test_encode_rejects);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(proto_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
