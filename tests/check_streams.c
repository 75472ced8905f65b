/*
 * check_streams.c -- the per-agent-stream sequence discipline (daemon/streams.c).
 *
 * The table is pure state with the loop time passed in, so every case here
 * is a script of (epoch, seq, now) -> verdict steps against one table, with
 * streams_settle() run after each step that says so, the way ingest.c does
 * after applying or refusing a batch. Then the pieces the scripts do not
 * reach: independence of keys, the snapshot round trip and its refusals,
 * and growth of the open-addressing table up to STREAMS_MAX.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/streams.h"

#define W PROTO_MAX_WINDOW
#define LEASE INT64_C(30000)
#define T0 INT64_C(1000000)                            /* loop time */
#define WALL INT64_C(1700000000000)                    /* wall clock */
#define KEY "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7" /* a Z85 public key */

static streams_t t;

static void setup(void)
{
    streams_init(&t, LEASE);
    ck_assert_uint_eq(t.count, 0);
    ck_assert_int_eq(t.lease_ms, LEASE);
}

static void teardown(void)
{
    streams_free(&t);
    ck_assert_ptr_null(t.slots);
    ck_assert_uint_eq(t.count, 0);
}

static stream_t *get(const char *key, const char *agent)
{
    stream_t *s = streams_get(&t, key, proto_str(agent));

    ck_assert_ptr_nonnull(s);
    return s;
}

static const char *verdict_name(stream_verdict_t v)
{
    switch (v) {
    case STREAM_TAKE: return "take";
    case STREAM_DUPLICATE: return "duplicate";
    case STREAM_GAP: return "gap";
    case STREAM_FORGOTTEN: return "forgotten";
    case STREAM_CONFLICT: return "conflict";
    case STREAM_SUPERSEDED: return "superseded";
    }
    return "?";
}

/* ---- scripts ----------------------------------------------------------------- */

enum { NONE = 0, SETTLE, TOUCH, ALL_LIVE };

/*
 * One step: at loop time now, batch (epoch, seq) gets verdict want; a
 * duplicate's stored outcome must be (dup_status, dup_accepted). Then the
 * step's action: SETTLE records the batch as (status, accepted) at wall
 * clock now + WALL; TOUCH marks the owner live; ALL_LIVE runs
 * streams_all_live at now. epoch 0 skips the check (an action only).
 */
typedef struct {
    uint64_t epoch, seq;
    int64_t now;
    stream_verdict_t want;
    uint8_t dup_status;
    uint32_t dup_accepted;
    int action;
    uint8_t status;
    uint32_t accepted;
} step_t;

#define OK PROTO_STATUS_OK
#define FIRM PROTO_STATUS_UNKNOWN_FIRM
/* take and settle ok with n samples */
#define TAKE_OK(e, q, t_, n)                                                                       \
    {                                                                                              \
        e, q, t_, STREAM_TAKE, 0, 0, SETTLE, OK, n                                                 \
    }
#define EXPECT(e, q, t_, v)                                                                        \
    {                                                                                              \
        e, q, t_, v, 0, 0, NONE, 0, 0                                                              \
    }
#define DUP(e, q, t_, st, n)                                                                       \
    {                                                                                              \
        e, q, t_, STREAM_DUPLICATE, st, n, NONE, 0, 0                                              \
    }
#define END                                                                                        \
    {                                                                                              \
        0, 0, 0, STREAM_TAKE, 0, 0, -1, 0, 0                                                       \
    }

typedef struct {
    const char *name;
    step_t steps[24];
} script_t;

static const script_t scripts[] = {
    {"a free id takes seq 1 only, of any epoch",
     {EXPECT(5, 2, T0, STREAM_GAP), EXPECT(5, 1000, T0, STREAM_GAP), EXPECT(5, 1, T0, STREAM_TAKE),
      EXPECT(6, 1, T0, STREAM_TAKE), TAKE_OK(5, 1, T0, 3), EXPECT(5, 2, T0, STREAM_TAKE), END}},
    {"contiguous seqs settle one after another",
     {TAKE_OK(5, 1, T0, 1), TAKE_OK(5, 2, T0 + 1, 2), TAKE_OK(5, 3, T0 + 2, 3),
      TAKE_OK(5, 4, T0 + 3, 4), EXPECT(5, 5, T0 + 4, STREAM_TAKE), END}},
    {"a duplicate inside the window gets the stored outcome",
     {TAKE_OK(5, 1, T0, 7),
      {5, 2, T0, STREAM_TAKE, 0, 0, SETTLE, FIRM, 0}, /* refused for good: settled too */
      TAKE_OK(5, 3, T0, 9),
      DUP(5, 1, T0, OK, 7),
      DUP(5, 2, T0, FIRM, 0),
      DUP(5, 3, T0, OK, 9),
      EXPECT(5, 4, T0, STREAM_TAKE),
      END}},
    {"a gap is not taken and not remembered",
     {TAKE_OK(5, 1, T0, 1), EXPECT(5, 3, T0, STREAM_GAP), EXPECT(5, UINT64_MAX, T0, STREAM_GAP),
      EXPECT(5, 2, T0, STREAM_TAKE), TAKE_OK(5, 2, T0, 1), EXPECT(5, 3, T0, STREAM_TAKE), END}},
    {"another epoch is refused while the owner is live, up to the lease",
     {TAKE_OK(5, 1, T0, 1), EXPECT(6, 1, T0, STREAM_CONFLICT),
      EXPECT(6, 1, T0 + LEASE - 1, STREAM_CONFLICT), EXPECT(6, 7, T0 + LEASE - 1, STREAM_CONFLICT),
      EXPECT(6, 1, T0 + LEASE, STREAM_TAKE), END}},
    {"a duplicate of the owner keeps it live (touch)",
     {TAKE_OK(5, 1, T0, 1),
      DUP(5, 1, T0 + LEASE - 1, OK, 1),
      {0, 0, T0 + LEASE - 1, 0, 0, 0, TOUCH, 0, 0},
      EXPECT(6, 1, T0 + LEASE, STREAM_CONFLICT),
      EXPECT(6, 1, T0 + 2 * LEASE - 2, STREAM_CONFLICT),
      EXPECT(6, 1, T0 + 2 * LEASE - 1, STREAM_TAKE),
      END}},
    {"after the lease seq 1 of a new epoch takes over; the old epoch is then fenced",
     {TAKE_OK(5, 1, T0, 1), TAKE_OK(5, 2, T0, 1), EXPECT(6, 2, T0 + LEASE, STREAM_GAP),
      TAKE_OK(6, 1, T0 + LEASE, 4),
      /* the new owner's stream goes on from 2, its seq 1 is a duplicate */
      DUP(6, 1, T0 + LEASE, OK, 4), EXPECT(6, 2, T0 + LEASE, STREAM_TAKE),
      /* the superseded epoch: refused while the new owner is live, fenced after */
      EXPECT(5, 3, T0 + LEASE, STREAM_CONFLICT), EXPECT(5, 3, T0 + 2 * LEASE, STREAM_SUPERSEDED),
      EXPECT(5, 1, T0 + 2 * LEASE, STREAM_SUPERSEDED),
      EXPECT(5, 2, T0 + 2 * LEASE, STREAM_SUPERSEDED), END}},
    {"an unknown third epoch must start at seq 1",
     {TAKE_OK(5, 1, T0, 1), TAKE_OK(6, 1, T0 + LEASE, 1), EXPECT(7, 2, T0 + 2 * LEASE, STREAM_GAP),
      EXPECT(7, 9, T0 + 2 * LEASE, STREAM_GAP), EXPECT(7, 1, T0 + 2 * LEASE, STREAM_TAKE),
      TAKE_OK(7, 1, T0 + 2 * LEASE, 1), EXPECT(6, 2, T0 + 3 * LEASE, STREAM_SUPERSEDED), END}},
    {"streams_all_live makes every stream live again (after a restart)",
     {TAKE_OK(5, 1, T0, 1),
      EXPECT(6, 1, T0 + 10 * LEASE, STREAM_TAKE),
      {0, 0, T0 + 10 * LEASE, 0, 0, 0, ALL_LIVE, 0, 0},
      EXPECT(6, 1, T0 + 10 * LEASE, STREAM_CONFLICT),
      EXPECT(6, 1, T0 + 11 * LEASE - 1, STREAM_CONFLICT),
      EXPECT(6, 1, T0 + 11 * LEASE, STREAM_TAKE),
      /* the owner itself is unaffected */
      EXPECT(5, 2, T0 + 10 * LEASE, STREAM_TAKE),
      END}},
};

START_TEST(test_script)
{
    const script_t *sc = &scripts[_i];
    stream_t *s = get(KEY, "agent-7");

    for (int i = 0; sc->steps[i].action >= 0; i++) {
        const step_t *st = &sc->steps[i];
        const stream_outcome_t *o = (const stream_outcome_t *)&o; /* must be overwritten */

        if (st->epoch) {
            stream_verdict_t v = streams_check(&t, s, st->epoch, st->seq, st->now, &o);

            ck_assert_msg(v == st->want, "%s: step %d (epoch %llu seq %llu): %s, want %s", sc->name,
                          i, (unsigned long long)st->epoch, (unsigned long long)st->seq,
                          verdict_name(v), verdict_name(st->want));
            if (v == STREAM_DUPLICATE) {
                ck_assert_ptr_nonnull(o);
                ck_assert_msg(o->status == st->dup_status && o->accepted == st->dup_accepted,
                              "%s: step %d: duplicate outcome %u/%u, want %u/%u", sc->name, i,
                              o->status, o->accepted, st->dup_status, st->dup_accepted);
            } else {
                ck_assert_ptr_null(o);
            }
        }
        switch (st->action) {
        case SETTLE:
            streams_settle(&t, s, st->epoch, st->seq, st->status, st->accepted, st->now,
                           WALL + st->now);
            ck_assert_uint_eq(s->epoch, st->epoch);
            ck_assert_uint_eq(s->next, st->seq + 1);
            ck_assert_int_eq(s->last_ms, st->now);
            break;
        case TOUCH: streams_touch(s, st->now); break;
        case ALL_LIVE: streams_all_live(&t, st->now); break;
        }
    }
}
END_TEST

static void assert_stream_eq(const stream_t *a, const stream_t *b)
{
    ck_assert_uint_eq(a->epoch, b->epoch);
    ck_assert_uint_eq(a->prev_epoch, b->prev_epoch);
    ck_assert_uint_eq(a->next, b->next);
    ck_assert_int_eq(a->last_ms, b->last_ms);
    ck_assert_int_eq(a->since_wall_ms, b->since_wall_ms);
    for (int k = 0; k < W; k++) {
        ck_assert_uint_eq(a->ring[k].status, b->ring[k].status);
        ck_assert_uint_eq(a->ring[k].accepted, b->ring[k].accepted);
    }
}

/* streams_check decides and changes nothing. */
START_TEST(test_check_is_pure)
{
    stream_t *s = get(KEY, "agent-7"), before;
    const stream_outcome_t *o;

    streams_settle(&t, s, 5, 1, OK, 1, T0, WALL);
    streams_settle(&t, s, 5, 2, FIRM, 0, T0, WALL);
    before = *s;
    for (uint64_t e = 4; e <= 6; e++)
        for (uint64_t q = 1; q <= 4; q++) {
            streams_check(&t, s, e, q, T0, &o);
            streams_check(&t, s, e, q, T0 + 100 * LEASE, &o);
        }
    assert_stream_eq(s, &before);
    ck_assert_uint_eq(t.count, 1);
}
END_TEST

/* Settling records the takeover: prev_epoch, since, and a cleared ring. */
START_TEST(test_settle_takeover_fields)
{
    stream_t *s = get(KEY, "agent-7");
    const stream_outcome_t *o;

    streams_settle(&t, s, 5, 1, OK, 11, T0, WALL);
    ck_assert_uint_eq(s->prev_epoch, 0);
    ck_assert_int_eq(s->since_wall_ms, WALL);
    streams_settle(&t, s, 5, 2, OK, 12, T0 + 1, WALL + 1);
    ck_assert_int_eq(s->since_wall_ms, WALL); /* the claim's time, not the last batch's */

    streams_settle(&t, s, 9, 1, OK, 21, T0 + LEASE + 1, WALL + 5000);
    ck_assert_uint_eq(s->epoch, 9);
    ck_assert_uint_eq(s->prev_epoch, 5);
    ck_assert_uint_eq(s->next, 2);
    ck_assert_int_eq(s->since_wall_ms, WALL + 5000);
    /* nothing of epoch 5 answers for epoch 9 */
    ck_assert_int_eq(streams_check(&t, s, 9, 1, T0 + LEASE + 1, &o), STREAM_DUPLICATE);
    ck_assert_uint_eq(o->accepted, 21);
    ck_assert_uint_eq(s->ring[2 % W].accepted, 0);
}
END_TEST

/* The window holds exactly the last PROTO_MAX_WINDOW settled seqs. */
START_TEST(test_window_edges)
{
    stream_t *s = get(KEY, "agent-7");
    const stream_outcome_t *o;
    uint64_t q, n = 3 * W + 5;

    for (q = 1; q <= n; q++) {
        ck_assert_int_eq(streams_check(&t, s, 5, q, T0, &o), STREAM_TAKE);
        streams_settle(&t, s, 5, q, q % 7 ? OK : FIRM, q % 7 ? (uint32_t)q : 0, T0, WALL);
    }
    ck_assert_uint_eq(s->next, n + 1);
    for (q = n + 1 - W; q <= n; q++) {
        ck_assert_msg(streams_check(&t, s, 5, q, T0, &o) == STREAM_DUPLICATE, "seq %llu",
                      (unsigned long long)q);
        ck_assert_uint_eq(o->status, q % 7 ? OK : FIRM);
        ck_assert_uint_eq(o->accepted, q % 7 ? q : 0);
    }
    ck_assert_int_eq(streams_check(&t, s, 5, n - W, T0, &o), STREAM_FORGOTTEN);
    ck_assert_ptr_null(o);
    ck_assert_int_eq(streams_check(&t, s, 5, 1, T0, &o), STREAM_FORGOTTEN);
    ck_assert_int_eq(streams_check(&t, s, 5, n + 1, T0, &o), STREAM_TAKE);
    ck_assert_int_eq(streams_check(&t, s, 5, n + 2, T0, &o), STREAM_GAP);
}
END_TEST

/* ---- keys -------------------------------------------------------------------- */

/* The same agent id under two keys (or without CURVE) is two streams. */
START_TEST(test_same_id_two_keys)
{
    const stream_outcome_t *o;
    stream_t *a, *b;

    a = get(KEY, "agent-7");
    streams_settle(&t, a, 5, 1, OK, 1, T0, WALL);
    b = get("", "agent-7");
    ck_assert_ptr_ne(a, b);
    ck_assert_uint_eq(b->epoch, 0);
    /* another key's stream neither conflicts nor shares seqs */
    ck_assert_int_eq(streams_check(&t, b, 6, 1, T0, &o), STREAM_TAKE);
    streams_settle(&t, b, 6, 1, OK, 2, T0, WALL);
    ck_assert_int_eq(streams_check(&t, b, 5, 2, T0, &o), STREAM_CONFLICT);
    ck_assert_uint_eq(t.count, 2);

    a = get(KEY, "agent-7");
    b = get("", "agent-7");
    ck_assert_uint_eq(a->epoch, 5);
    ck_assert_uint_eq(b->epoch, 6);
    ck_assert_str_eq(a->key, KEY);
    ck_assert_str_eq(b->key, "");
    ck_assert_str_eq(a->agent, "agent-7");

    /* the boundary between key and id is not lost: ("ab", "c") is not ("a", "bc") */
    a = get("ab", "c");
    streams_settle(&t, a, 1, 1, OK, 1, T0, WALL);
    b = get("a", "bc");
    ck_assert_ptr_ne(a, b);
    ck_assert_uint_eq(b->epoch, 0);
    ck_assert_uint_eq(t.count, 4);

    /* an id is compared by length too: "agent-7" is not "agent-70" nor "agent-" */
    ck_assert_uint_eq(get(KEY, "agent-70")->epoch, 0);
    ck_assert_uint_eq(get(KEY, "agent-")->epoch, 0);
    ck_assert_uint_eq(get(KEY, "agent-7")->epoch, 5);
    ck_assert_uint_eq(t.count, 6);
}
END_TEST

/* A proto_str_t agent id borrowed from a message is not NUL-terminated. */
START_TEST(test_agent_not_nul_terminated)
{
    static const char msg[] = "agent-7agent-8";
    stream_t *s = streams_get(&t, KEY, (proto_str_t){msg, 7});

    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s->agent, "agent-7");
    streams_settle(&t, s, 3, 1, OK, 1, T0, WALL);
    ck_assert_uint_eq(get(KEY, "agent-7")->epoch, 3);
    ck_assert_uint_eq(streams_get(&t, KEY, (proto_str_t){msg + 7, 7})->epoch, 0);
    ck_assert_uint_eq(t.count, 2);
}
END_TEST

/* ---- growth ---------------------------------------------------------------------- */

static void name_of(unsigned i, char *key, size_t ksize, char *agent, size_t asize)
{
    snprintf(key, ksize, "key-%u", i % 7);
    snprintf(agent, asize, "agent-%u", i);
}

/* Past 64 entries the table grows, and every stream keeps its state. */
START_TEST(test_growth)
{
    enum { N = 1000 };
    char key[32], agent[32];

    for (unsigned i = 0; i < N; i++) {
        stream_t *s;

        name_of(i, key, sizeof key, agent, sizeof agent);
        s = get(key, agent);
        ck_assert_uint_eq(s->epoch, 0);
        streams_settle(&t, s, 100 + i, 1 + i % 50, OK, i, T0 + i, WALL + i);
        /* everything settled so far is still there (the table may have just grown) */
        if (i == 63 || i == 64 || i == 65 || i == 127 || i == 128 || i == 511 || i == 512)
            for (unsigned j = 0; j <= i; j++) {
                name_of(j, key, sizeof key, agent, sizeof agent);
                ck_assert_msg(get(key, agent)->epoch == 100 + j, "after %u: stream %u lost", i, j);
            }
    }
    ck_assert_uint_eq(t.count, N);
    ck_assert_uint_ge(t.mask + 1, 2 * N); /* at most half full */
    for (unsigned i = 0; i < N; i++) {
        stream_t *s;
        const stream_outcome_t *o;

        name_of(i, key, sizeof key, agent, sizeof agent);
        s = get(key, agent);
        ck_assert_str_eq(s->key, key);
        ck_assert_str_eq(s->agent, agent);
        ck_assert_uint_eq(s->epoch, 100 + i);
        ck_assert_uint_eq(s->next, 2 + i % 50);
        ck_assert_int_eq(s->last_ms, T0 + i);
        ck_assert_int_eq(streams_check(&t, s, 100 + i, 1 + i % 50, T0 + i, &o), STREAM_DUPLICATE);
        ck_assert_uint_eq(o->accepted, i);
    }
    ck_assert_uint_eq(t.count, N);
}
END_TEST

/* At STREAMS_MAX streams a new one is refused (NULL) and the known ones are still found. */
START_TEST(test_full)
{
    char agent[32];

    for (unsigned i = 0; i < STREAMS_MAX; i++) {
        snprintf(agent, sizeof agent, "a%u", i);
        ck_assert_ptr_nonnull(streams_get(&t, "", proto_str(agent)));
    }
    ck_assert_uint_eq(t.count, STREAMS_MAX);
    ck_assert_ptr_null(streams_get(&t, "", proto_str("one-too-many")));
    ck_assert_ptr_null(streams_get(&t, KEY, proto_str("a0")));
    ck_assert_uint_eq(t.count, STREAMS_MAX);
    for (unsigned i = 0; i < STREAMS_MAX; i += 997) {
        snprintf(agent, sizeof agent, "a%u", i);
        stream_t *s = streams_get(&t, "", proto_str(agent));
        ck_assert_ptr_nonnull(s);
        ck_assert_str_eq(s->agent, agent);
    }
}
END_TEST

/* ---- snapshot -------------------------------------------------------------------- */

/* Packs t, unpacks it into zone; returns the object. */
static msgpack_object pack_table(const streams_t *from, msgpack_sbuffer *sb, msgpack_zone *zone)
{
    msgpack_packer pk;
    msgpack_object obj;
    size_t off = 0;

    msgpack_sbuffer_init(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    streams_pack(from, &pk);
    ck_assert(msgpack_zone_init(zone, 4096));
    ck_assert_int_eq(msgpack_unpack(sb->data, sb->size, &off, zone, &obj), MSGPACK_UNPACK_SUCCESS);
    ck_assert_uint_eq(off, sb->size);
    return obj;
}

/* A partial answer's refused samples are kept per seq, replaced when the
 * ring slot is reused, and survive the snapshot (its 8th element). */
START_TEST(test_refusals_kept)
{
    const uint32_t list[3] = {1u << 8 | PROTO_STATUS_UNKNOWN_FIRM, 7u << 8 | PROTO_STATUS_INVALID,
                              9999u << 8 | PROTO_STATUS_FORBIDDEN};
    const stream_outcome_t *o;
    msgpack_sbuffer sb;
    msgpack_zone zone;
    msgpack_object obj;
    streams_t t2;
    char err[256] = "";
    stream_t *s = get(KEY, "partial"), *d;

    streams_settle_refused(&t, s, 3, 1, PROTO_STATUS_PARTIAL, 5, list, 3, T0, WALL);
    streams_settle(&t, s, 3, 2, OK, 1, T0, WALL);
    ck_assert_int_eq(streams_check(&t, s, 3, 1, T0, &o), STREAM_DUPLICATE);
    ck_assert_uint_eq(o->status, PROTO_STATUS_PARTIAL);
    ck_assert_uint_eq(o->accepted, 5);
    ck_assert_uint_eq(o->nrefused, 3);
    ck_assert_uint_eq(o->refused[2], list[2]);
    ck_assert_int_eq(streams_check(&t, s, 3, 2, T0, &o), STREAM_DUPLICATE);
    ck_assert_uint_eq(o->nrefused, 0);

    obj = pack_table(&t, &sb, &zone);
    streams_init(&t2, LEASE);
    ck_assert_int_eq(streams_unpack(&t2, &obj, true, T0, err, sizeof err), 0);
    d = streams_get(&t2, KEY, proto_str("partial"));
    ck_assert_int_eq(streams_check(&t2, d, 3, 1, T0, &o), STREAM_DUPLICATE);
    ck_assert_uint_eq(o->status, PROTO_STATUS_PARTIAL);
    ck_assert_uint_eq(o->nrefused, 3);
    ck_assert_uint_eq(o->refused[0], list[0]);
    ck_assert_uint_eq(o->refused[2], list[2]);
    streams_free(&t2);
    msgpack_zone_destroy(&zone);
    msgpack_sbuffer_destroy(&sb);

    /* seq 1 + W reuses the slot: the old list goes (no leak, no stale answer) */
    for (uint64_t q = 3; q <= 1 + W; q++)
        streams_settle(&t, s, 3, q, OK, 1, T0, WALL);
    ck_assert_int_eq(streams_check(&t, s, 3, 1 + W, T0, &o), STREAM_DUPLICATE);
    ck_assert_uint_eq(o->nrefused, 0);
    ck_assert_ptr_null(o->refused);
}
END_TEST

START_TEST(test_pack_round_trip)
{
    static const char id64[] = "0123456789012345678901234567890123456789012345678901234567890123";
    msgpack_sbuffer sb;
    msgpack_zone zone;
    msgpack_object obj;
    streams_t t2;
    stream_t *s, *d;
    char err[256] = "";

    /* a stream that took over, with a full ring of mixed outcomes */
    s = get(KEY, "agent-7");
    streams_settle(&t, s, 5, 1, OK, 1, T0, WALL);
    for (uint64_t q = 1; q <= W + 10; q++)
        streams_settle(&t, s, UINT64_MAX, q, q % 3 ? OK : FIRM, q % 3 ? (uint32_t)(q * 100000) : 0,
                       T0 + 1, WALL + 777);
    /* one with a long id and a negative wall clock, one unclaimed (not written) */
    streams_settle(&t, get("", id64), 2, 1, PROTO_STATUS_TOO_LARGE, 0, T0, -5);
    get("", "never-settled");
    ck_assert_uint_eq(t.count, 3);

    obj = pack_table(&t, &sb, &zone);
    ck_assert_int_eq(obj.type, MSGPACK_OBJECT_ARRAY);
    ck_assert_uint_eq(obj.via.array.size, 2);

    streams_init(&t2, LEASE);
    /* checking changes nothing */
    ck_assert_int_eq(streams_unpack(&t2, &obj, false, T0 + 99, err, sizeof err), 0);
    ck_assert_uint_eq(t2.count, 0);
    ck_assert_int_eq(streams_unpack(&t2, &obj, true, T0 + 99, err, sizeof err), 0);
    ck_assert_uint_eq(t2.count, 2);

    s = get(KEY, "agent-7");
    d = streams_get(&t2, KEY, proto_str("agent-7"));
    ck_assert_ptr_nonnull(d);
    ck_assert_uint_eq(d->epoch, UINT64_MAX);
    ck_assert_uint_eq(d->prev_epoch, 5);
    ck_assert_uint_eq(d->next, W + 11);
    ck_assert_int_eq(d->since_wall_ms, WALL + 777);
    ck_assert_int_eq(d->last_ms, T0 + 99); /* the owner counts as live from the load */
    for (int k = 0; k < W; k++) {
        ck_assert_uint_eq(d->ring[k].status, s->ring[k].status);
        ck_assert_uint_eq(d->ring[k].accepted, s->ring[k].accepted);
    }
    ck_assert_uint_eq(d->ring[(W + 10) % W].accepted, (W + 10) * 100000);

    d = streams_get(&t2, "", proto_str(id64));
    ck_assert_ptr_nonnull(d);
    ck_assert_uint_eq(d->epoch, 2);
    ck_assert_uint_eq(d->prev_epoch, 0);
    ck_assert_uint_eq(d->next, 2);
    ck_assert_int_eq(d->since_wall_ms, -5);
    ck_assert_uint_eq(d->ring[1].status, PROTO_STATUS_TOO_LARGE);

    /* the unpacked table answers like the original */
    {
        const stream_outcome_t *o;

        d = streams_get(&t2, KEY, proto_str("agent-7"));
        ck_assert_int_eq(streams_check(&t2, d, UINT64_MAX, W + 10, T0 + 99, &o), STREAM_DUPLICATE);
        ck_assert_uint_eq(o->accepted, (W + 10) * 100000);
        ck_assert_int_eq(streams_check(&t2, d, UINT64_MAX, 10, T0 + 99, &o), STREAM_FORGOTTEN);
        ck_assert_int_eq(streams_check(&t2, d, 5, 1, T0 + 99 + LEASE, &o), STREAM_SUPERSEDED);
    }
    streams_free(&t2);
    msgpack_zone_destroy(&zone);
    msgpack_sbuffer_destroy(&sb);

    /* an empty table packs as an empty array */
    streams_init(&t2, LEASE);
    obj = pack_table(&t2, &sb, &zone);
    ck_assert_int_eq(obj.type, MSGPACK_OBJECT_ARRAY);
    ck_assert_uint_eq(obj.via.array.size, 0);
    ck_assert_int_eq(streams_unpack(&t2, &obj, true, T0, err, sizeof err), 0);
    ck_assert_uint_eq(t2.count, 0);
    streams_free(&t2);
    msgpack_zone_destroy(&zone);
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

/* Malformed snapshot entries: which field is broken, and how. */
enum {
    B_NOT_ARRAY,
    B_ENTRY_NOT_ARRAY,
    B_SIX,
    B_EIGHT,
    B_KEY_NOT_STR,
    B_KEY_65,
    B_AGENT_EMPTY,
    B_AGENT_65,
    B_AGENT_NOT_STR,
    B_EPOCH_0,
    B_EPOCH_NEG,
    B_EPOCH_STR,
    B_NEXT_0,
    B_SINCE_FLOAT,
    B_RING_SHORT,
    B_RING_STR,
    B_PREV_NEG,
    B_SECOND_BAD,
    B_COUNT
};

static void pack_entry(msgpack_packer *pk, int bad)
{
    static const char s65[] = "01234567890123456789012345678901234567890123456789012345678901234";
    unsigned char ring[W * 5 + 1] = {0};

    if (bad == B_ENTRY_NOT_ARRAY) {
        msgpack_pack_map(pk, 0);
        return;
    }
    msgpack_pack_array(pk, bad == B_SIX ? 6 : bad == B_EIGHT ? 8 : 7);
    if (bad == B_KEY_NOT_STR)
        msgpack_pack_bin_with_body(pk, "k", 1);
    else if (bad == B_KEY_65)
        msgpack_pack_str_with_body(pk, s65, 65);
    else
        msgpack_pack_str_with_body(pk, "", 0);
    if (bad == B_AGENT_EMPTY)
        msgpack_pack_str_with_body(pk, "", 0);
    else if (bad == B_AGENT_65)
        msgpack_pack_str_with_body(pk, s65, 65);
    else if (bad == B_AGENT_NOT_STR)
        msgpack_pack_int(pk, 7);
    else
        msgpack_pack_str_with_body(pk, "agent-7", 7);
    if (bad == B_EPOCH_0)
        msgpack_pack_uint64(pk, 0);
    else if (bad == B_EPOCH_NEG)
        msgpack_pack_int64(pk, -1);
    else if (bad == B_EPOCH_STR)
        msgpack_pack_str_with_body(pk, "5", 1);
    else
        msgpack_pack_uint64(pk, 5);
    msgpack_pack_uint64(pk, bad == B_NEXT_0 ? 0 : 3);
    if (bad == B_SINCE_FLOAT)
        msgpack_pack_double(pk, 1.5);
    else
        msgpack_pack_int64(pk, WALL);
    if (bad == B_RING_STR)
        msgpack_pack_str_with_body(pk, (const char *)ring, W * 5);
    else
        msgpack_pack_bin_with_body(pk, ring, bad == B_RING_SHORT ? W * 5 - 1 : W * 5);
    if (bad == B_SIX)
        return;
    if (bad == B_PREV_NEG)
        msgpack_pack_int64(pk, -2);
    else
        msgpack_pack_uint64(pk, 0);
    if (bad == B_EIGHT)
        msgpack_pack_nil(pk);
}

START_TEST(test_unpack_rejects)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_zone zone;
    msgpack_object obj;
    size_t off = 0;
    char err[256] = "";
    const char *want = _i == B_NOT_ARRAY    ? "streams: not an array"
                       : _i == B_SECOND_BAD ? "streams: entry 1 malformed"
                                            : "streams: entry 0 malformed";

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    if (_i == B_NOT_ARRAY) {
        msgpack_pack_map(&pk, 0);
    } else if (_i == B_SECOND_BAD) {
        msgpack_pack_array(&pk, 2);
        pack_entry(&pk, -1);
        pack_entry(&pk, B_EPOCH_0);
    } else {
        msgpack_pack_array(&pk, 1);
        pack_entry(&pk, _i);
    }
    ck_assert(msgpack_zone_init(&zone, 4096));
    ck_assert_int_eq(msgpack_unpack(sb.data, sb.size, &off, &zone, &obj), MSGPACK_UNPACK_SUCCESS);
    ck_assert_int_eq(streams_unpack(&t, &obj, false, T0, err, sizeof err), -1);
    ck_assert_msg(strcmp(err, want) == 0, "case %d: reason \"%s\", want \"%s\"", _i, err, want);
    /* checked before anything is applied: the table is untouched */
    ck_assert_uint_eq(t.count, 0);
    msgpack_zone_destroy(&zone);
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

/* The valid entry pack_entry writes is valid (so each case above breaks one thing). */
START_TEST(test_unpack_entry_ok)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_zone zone;
    msgpack_object obj;
    size_t off = 0;
    char err[256] = "";

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 1);
    pack_entry(&pk, -1);
    ck_assert(msgpack_zone_init(&zone, 4096));
    ck_assert_int_eq(msgpack_unpack(sb.data, sb.size, &off, &zone, &obj), MSGPACK_UNPACK_SUCCESS);
    ck_assert_int_eq(streams_unpack(&t, &obj, true, T0, err, sizeof err), 0);
    ck_assert_uint_eq(t.count, 1);
    ck_assert_uint_eq(get("", "agent-7")->next, 3);
    msgpack_zone_destroy(&zone);
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

/* ---- suite ----------------------------------------------------------------------- */

static Suite *streams_suite(void)
{
    Suite *s = suite_create("streams");
    TCase *tc;

    tc = tcase_create("discipline");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_script, 0, (int)(sizeof(scripts) / sizeof(scripts[0])));
    tcase_add_test(tc, test_check_is_pure);
    tcase_add_test(tc, test_settle_takeover_fields);
    tcase_add_test(tc, test_window_edges);
    suite_add_tcase(s, tc);

    tc = tcase_create("table");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60); /* test_full: 65536 streams, longer under valgrind */
    tcase_add_test(tc, test_same_id_two_keys);
    tcase_add_test(tc, test_agent_not_nul_terminated);
    tcase_add_test(tc, test_growth);
    tcase_add_test(tc, test_full);
    suite_add_tcase(s, tc);

    tc = tcase_create("snapshot");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_pack_round_trip);
    tcase_add_test(tc, test_refusals_kept);
    tcase_add_loop_test(tc, test_unpack_rejects, 0, B_COUNT);
    tcase_add_test(tc, test_unpack_entry_ok);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(streams_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
