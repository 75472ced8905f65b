/*
 * check_alertbook.c -- the alert lifecycle (daemon/alertbook.c).
 *
 * Every test drives the book with hand-made evaluations and reads what a
 * subscriber would: a real alerts_t whose PUB is bound on inproc:// and a
 * SUB connected to it. "Nothing was published" is proved, not waited for:
 * the test sends a numbered probe on the same PUB socket and the probe must
 * be the very next message the SUB receives (one pipe keeps order).
 *
 * The config has four rules (one with a 10 min reminder), flap_max = 4 in
 * 1 h and group_max = 2, and the registry six firms on one chain, so
 * flapping and grouping are reached in a few steps.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "daemon/alertbook.h"
#include "daemon/log.h"

#define ENDPOINT "inproc://check-alertbook"
#define T0 INT64_C(1656604800000) /* 2022-06-30T16:00:00Z */
#define SEC INT64_C(1000)
#define MINUTE (60 * SEC)
#define HOUR (60 * MINUTE)

static const char conf_text[] =
    "[daemon]\n"
    "registry = unused.csv\n"
    "alerts = " ENDPOINT "\n"
    "[metric revenue]\nkind = period\nunit = yuan\n"
    "[metric cod]\nkind = reading\nunit = mg/L\n"
    "[cluster energy-env]\nchains = water-pollution-control, green-building-materials\n"
    "[cluster new-energy]\nchains = solar-pv, energy-storage\n"
    "[rule cod-limit]\ntype = threshold\nmetric = cod\ncluster = energy-env\n"
    "chain = water-pollution-control\nabove = 50\nclear = 40\n"
    "[rule cod-remind]\ntype = threshold\nmetric = cod\ncluster = energy-env\nabove = 100\n"
    "repeat = 10m\nseverity = critical\n"
    "[rule ne-growth]\ntype = growth\nmetric = revenue\ncluster = new-energy\nyear = 2022\n"
    "target = 15\nseverity = critical\n"
    "[rule report]\ntype = silence\ncluster = energy-env\nschedule = monthly\nseverity = info\n"
    "[alerting]\nflap_window = 1h\nflap_max = 4\ngroup_max = 2\n";

enum { R_COD, R_REMIND, R_GROWTH, R_REPORT };

static const char registry_csv[] =
    "id,name,cluster,chain,tier,designations,status\n"
    "wp-1,Water Plant One,energy-env,water-pollution-control,leading,,\n"
    "wp-2,Water Plant Two,energy-env,water-pollution-control,backbone,,\n"
    "wp-3,Water Plant Three,energy-env,water-pollution-control,potential,,\n"
    "wp-4,Water Plant Four,energy-env,water-pollution-control,member,,\n"
    "wp-5,Water Plant Five,energy-env,water-pollution-control,member,,\n"
    "wp-6,Water Plant Six,energy-env,water-pollution-control,member,,\n"
    "gb-1,Green Bricks,energy-env,green-building-materials,potential,,\n"
    "ee-m,Member Without Chain,energy-env,,member,,\n"
    "pv-1,Solar One,new-energy,solar-pv,leading,,\n";

static char tmpdir[64], csv_path[128], seq_path[128], old_seq_path[128];
static config_t *cfg;
static registry_t *reg;
static void *zctx, *sub;
static alerts_t al;
static silences_t sil;
static alertbook_t b;
static unsigned probes;

/* ---- fixtures ----------------------------------------------------------------------- */

/* The directory (registry CSV, alert-seqs) is made and removed in the
 * runner's own process, so a failing test cannot leave it behind. */
static void tmpdir_make(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/check_alertbook.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        abort();
    }
    snprintf(csv_path, sizeof csv_path, "%s/firms.csv", tmpdir);
    snprintf(seq_path, sizeof seq_path, "%s/alert-seqs", tmpdir);
    snprintf(old_seq_path, sizeof old_seq_path, "%s/alert-seq", tmpdir);
    FILE *fp = fopen(csv_path, "w");
    if (!fp || fputs(registry_csv, fp) < 0 || fclose(fp) != 0) {
        perror(csv_path);
        abort();
    }
}

static void tmpdir_remove(void)
{
    unlink(csv_path);
    unlink(seq_path);
    unlink(old_seq_path);
    rmdir(tmpdir);
}

/* Receives one frame into buf (NUL-terminated), waiting at most 5 s. */
static size_t recv_frame(char *buf, size_t size, bool *ret_more)
{
    zmq_pollitem_t item = {.socket = sub, .events = ZMQ_POLLIN};
    int more = 0;
    size_t len = sizeof more;

    ck_assert_msg(zmq_poll(&item, 1, 5000) == 1, "nothing received within 5 s");
    int n = zmq_recv(sub, buf, size - 1, ZMQ_DONTWAIT);
    ck_assert_int_ge(n, 0);
    ck_assert_uint_lt((size_t)n, size - 1); /* not truncated */
    buf[n] = '\0';
    ck_assert_int_eq(zmq_getsockopt(sub, ZMQ_RCVMORE, &more, &len), 0);
    *ret_more = more != 0;
    return (size_t)n;
}

static void send_probe(unsigned n)
{
    char probe[32];
    int len = snprintf(probe, sizeof probe, "probe.%u", n);

    ck_assert_int_eq(zmq_send(al.zs.sock, probe, (size_t)len, ZMQ_DONTWAIT), len);
}

/* Proves that the SUB has seen everything published before this call and
 * that none of it was an alert. Earlier probes are skipped. */
static void expect_nothing(void)
{
    char buf[8192], want[32];
    bool more;
    unsigned n = ++probes;

    snprintf(want, sizeof want, "probe.%u", n);
    send_probe(n);
    for (;;) {
        recv_frame(buf, sizeof buf, &more);
        ck_assert_msg(strncmp(buf, "probe.", 6) == 0, "unexpected message, topic \"%s\"", buf);
        ck_assert(!more);
        if (strcmp(buf, want) == 0)
            return;
    }
}

/* One received alert: the decoded message borrows from body. */
typedef struct {
    char topic[128];
    char body[16384];
    proto_alert_t a;
} msg_t;

/* Receives the next alert. Stale probes are skipped. */
static void recv_alert(msg_t *m)
{
    char err[PROTO_ERRLEN];
    bool more;

    do {
        recv_frame(m->topic, sizeof m->topic, &more);
    } while (!more && strncmp(m->topic, "probe.", 6) == 0);
    ck_assert_msg(more, "topic \"%s\" without a body", m->topic);
    size_t n = recv_frame(m->body, sizeof m->body, &more);
    ck_assert(!more);
    ck_assert_msg(proto_alert_decode(m->body, n, &m->a, err, sizeof err) == PROTO_OK, "%s", err);
}

static void assert_str(proto_str_t s, const char *want)
{
    ck_assert_msg(proto_str_eq(s, want), "\"%.*s\" is not \"%s\"", PROTO_STR_ARG(s), want);
}

/* Receives the next alert and checks its id, state and seq. */
static void expect_alert(msg_t *m, const char *id, proto_alert_state_t state, uint64_t seq)
{
    recv_alert(m);
    assert_str(m->a.id, id);
    ck_assert_msg(m->a.state == state, "%s: state %s, want %s", id,
                  proto_alert_state_name((proto_alert_state_t)m->a.state),
                  proto_alert_state_name(state));
    ck_assert_uint_eq(m->a.seq, seq);
}

static void setup(void)
{
    char err[CONFIG_ERRLEN];
    int linger = 0;

    log_set_level(LOG_LVL_WARN); /* every published alert is logged at info */
    unlink(seq_path);            /* each test starts at seq 0 */
    unlink(old_seq_path);
    ck_assert_msg(config_load("alertbook.conf", conf_text, NULL, &cfg, err, sizeof err) == 0, "%s",
                  err);
    ck_assert_msg(registry_load(csv_path, cfg, &reg, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(reg->nfirms, 9);

    ck_assert_msg(alerts_init(&al, tmpdir, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(alerts_seq(&al, "energy-env"), 0);
    ck_assert_uint_eq(alerts_seq(&al, "new-energy"), 0);
    zctx = zmq_ctx_new();
    ck_assert_ptr_nonnull(zctx);
    ck_assert_msg(alerts_open(&al, zctx, cfg->alerts, 100000, 0, err, sizeof err) == 0, "%s", err);
    sub = zmq_socket(zctx, ZMQ_SUB);
    ck_assert_ptr_nonnull(sub);
    zmq_setsockopt(sub, ZMQ_LINGER, &linger, sizeof linger);
    ck_assert_int_eq(zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "alert.", 6), 0);
    ck_assert_int_eq(zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "probe.", 6), 0);
    ck_assert_int_eq(zmq_connect(sub, cfg->alerts), 0);

    /* PUB drops what it sends before the subscription reaches it: probe,
     * every 10 ms, until one arrives (at most 5 s). */
    zmq_pollitem_t item = {.socket = sub, .events = ZMQ_POLLIN};
    probes = 0;
    for (int i = 0; i < 500; i++) {
        send_probe(++probes);
        if (zmq_poll(&item, 1, 10) == 1)
            break;
    }
    ck_assert_msg(item.revents & ZMQ_POLLIN, "the subscription never reached the PUB socket");
    expect_nothing(); /* drains the probes */

    silences_init(&sil);
    alertbook_init(&b, cfg, reg, &al, &sil);
}

static void teardown(void)
{
    alertbook_free(&b);
    ck_assert_ptr_null(b.alerts);
    silences_free(&sil);
    alerts_close(&al);
    zmq_close(sub);
    ck_assert_int_eq(zmq_ctx_term(zctx), 0);
    registry_destroy(&reg);
    config_destroy(&cfg);
}

/* ---- driving the book --------------------------------------------------------------- */

static int firm(const char *id)
{
    if (!id)
        return -1;
    int f = registry_find(reg, id, strlen(id));
    ck_assert_msg(f >= 0, "no firm %s", id);
    return f;
}

/* One evaluation of (rule, firm): data time one second before now; the
 * basis is the observed value and a note (a string detail). */
static void eval_note(int rule, const char *firm_id, bool active, bool revisable, double observed,
                      const char *note, int64_t now)
{
    ab_eval_t ev;

    ab_eval_reset(&ev);
    ev.active = active;
    ev.revisable = revisable;
    ev.observed = observed;
    ev.expected = 50;
    ev.ts_ms = now - SEC;
    snprintf(ev.summary, sizeof ev.summary, "%s %g", active ? "breach" : "clear", observed);
    ab_eval_num(&ev, "value", observed);
    ab_eval_str(&ev, "note", "%s", note);
    alertbook_eval(&b, rule, firm(firm_id), &ev, now);
}

static void eval(int rule, const char *firm_id, bool active, double observed, int64_t now)
{
    eval_note(rule, firm_id, active, true, observed, "n", now);
}

static ab_alert_t *alert(int rule, const char *firm_id)
{
    ab_alert_t *a = alertbook_get(&b, rule, firm(firm_id), false);
    ck_assert_ptr_nonnull(a);
    return a;
}

/* ---- transitions ----------------------------------------------------------------------- */

START_TEST(test_fire_publishes_firing)
{
    msg_t m;

    eval(R_COD, "wp-1", true, 55, T0);
    ck_assert_uint_eq(b.nevents, 1);
    ck_assert_uint_eq(al.published, 0); /* queued until the flush */
    alertbook_flush(&b, T0);
    recv_alert(&m);
    ck_assert_str_eq(m.topic, "alert.energy-env.warning");
    assert_str(m.a.id, "cod-limit:wp-1");
    assert_str(m.a.rule, "cod-limit");
    ck_assert_uint_eq(m.a.severity, PROTO_SEV_WARNING);
    ck_assert_uint_eq(m.a.state, PROTO_ALERT_FIRING);
    assert_str(m.a.cluster, "energy-env");
    assert_str(m.a.chain, "water-pollution-control");
    assert_str(m.a.firm, "wp-1");
    assert_str(m.a.metric, "cod");
    ck_assert_double_eq(m.a.observed, 55);
    ck_assert_double_eq(m.a.expected, 50);
    assert_str(m.a.summary, "breach 55");
    ck_assert_int_eq(m.a.since_ms, T0 - SEC); /* data time */
    ck_assert_int_eq(m.a.ts_ms, T0);          /* publication time */
    ck_assert_uint_eq(m.a.seq, 1);
    ck_assert(!m.a.reminder);
    ck_assert_uint_eq(m.a.count, 0);
    ck_assert_uint_eq(m.a.ndetails, 2);
    assert_str(m.a.details[0].key, "value");
    ck_assert(!m.a.details[0].is_str);
    ck_assert_double_eq(m.a.details[0].num, 55);
    assert_str(m.a.details[1].key, "note");
    ck_assert(m.a.details[1].is_str);
    assert_str(m.a.details[1].str, "n");
    expect_nothing();

    ab_alert_t *a = alert(R_COD, "wp-1");
    ck_assert(a->firing);
    ck_assert_uint_eq(a->seq, 1);
    ck_assert_int_eq(a->published_ms, T0);
    ck_assert_uint_eq(b.firing, 1);
    ck_assert_uint_eq(b.nevents, 0);
    ck_assert_uint_eq(b.by_state[PROTO_ALERT_FIRING], 1);
    ck_assert_uint_eq(al.published, 1);
    ck_assert_uint_eq(alerts_seq(&al, "energy-env"), 1);
    ck_assert_uint_eq(alerts_seq(&al, "new-energy"), 0); /* each cluster counts its own */
}
END_TEST

/* An inactive evaluation of an alert never seen does not even create it. */
/* While the WAL records an alert stems from are staged (a drain's group
 * write), its publication is held -- and every later one, in order -- until
 * alerts_release(): then each goes out with its seq, callbacks and
 * counters, as if sent at once. */
static bool hold_on;
static int published_seen;
static bool hold_fn(void *data)
{
    (void)data;
    return hold_on;
}
static void seen_cb(void *data, const proto_alert_t *a)
{
    (void)data;
    (void)a;
    published_seen++;
}

START_TEST(test_held_until_released)
{
    msg_t m;

    al.must_hold = hold_fn;
    al.published_cb = seen_cb;
    published_seen = 0;
    hold_on = true;
    eval(R_COD, "wp-1", true, 55, T0);
    alertbook_flush(&b, T0);
    ck_assert_uint_eq(al.held, 1);
    ck_assert_uint_eq(al.published, 0);
    ck_assert_int_eq(published_seen, 0);
    expect_nothing();
    hold_on = false; /* still held: one is waiting before it */
    eval(R_COD, "wp-2", true, 60, T0);
    alertbook_flush(&b, T0);
    ck_assert_uint_eq(al.held, 2);
    expect_nothing();
    alerts_heartbeat(&al, cfg, T0); /* none while held: its seq would run ahead */
    expect_nothing();
    alerts_release(&al);
    expect_alert(&m, "cod-limit:wp-1", PROTO_ALERT_FIRING, 1);
    ck_assert_double_eq(m.a.observed, 55);
    expect_alert(&m, "cod-limit:wp-2", PROTO_ALERT_FIRING, 2);
    assert_str(m.a.summary, "breach 60");
    ck_assert_uint_eq(al.published, 2);
    ck_assert_int_eq(published_seen, 2);
    ck_assert_uint_eq(al.outbox.size, 0);
    eval(R_COD, "wp-3", true, 70, T0); /* nothing held, nothing to hold: at once */
    alertbook_flush(&b, T0);
    expect_alert(&m, "cod-limit:wp-3", PROTO_ALERT_FIRING, 3);
    ck_assert_uint_eq(al.held, 2);
    al.must_hold = NULL;
    al.published_cb = NULL;
}
END_TEST

START_TEST(test_inactive_creates_nothing)
{
    eval(R_COD, "wp-1", false, 10, T0);
    alertbook_flush(&b, T0);
    ck_assert_ptr_null(alertbook_get(&b, R_COD, firm("wp-1"), false));
    ck_assert_uint_eq(b.nalerts, 0);
    expect_nothing();
}
END_TEST

START_TEST(test_same_basis_publishes_nothing)
{
    msg_t m;

    eval(R_COD, "wp-1", true, 55, T0);
    alertbook_flush(&b, T0);
    expect_alert(&m, "cod-limit:wp-1", PROTO_ALERT_FIRING, 1);
    eval(R_COD, "wp-1", true, 55, T0 + SEC); /* revisable, but nothing changed */
    alertbook_flush(&b, T0 + SEC);
    expect_nothing();
    ck_assert_uint_eq(b.firing, 1);
    ck_assert_uint_eq(al.published, 1);
}
END_TEST

START_TEST(test_changed_basis_revisable_publishes_revised)
{
    msg_t m;

    eval(R_COD, "wp-1", true, 55, T0);
    alertbook_flush(&b, T0);
    expect_alert(&m, "cod-limit:wp-1", PROTO_ALERT_FIRING, 1);

    eval(R_COD, "wp-1", true, 60, T0 + MINUTE); /* a restated figure */
    alertbook_flush(&b, T0 + MINUTE);
    expect_alert(&m, "cod-limit:wp-1", PROTO_ALERT_REVISED, 2);
    ck_assert_double_eq(m.a.observed, 60);
    ck_assert_double_eq(m.a.details[0].num, 60);
    ck_assert_int_eq(m.a.since_ms, T0 - SEC); /* still the same episode */
    ck_assert_int_eq(m.a.ts_ms, T0 + MINUTE);

    /* a change in a string detail alone is a change of basis too */
    eval_note(R_COD, "wp-1", true, true, 60, "late report", T0 + 2 * MINUTE);
    alertbook_flush(&b, T0 + 2 * MINUTE);
    expect_alert(&m, "cod-limit:wp-1", PROTO_ALERT_REVISED, 3);
    assert_str(m.a.details[1].str, "late report");
    expect_nothing();
    ck_assert_uint_eq(b.firing, 1);
    ck_assert_uint_eq(b.by_state[PROTO_ALERT_REVISED], 2);
}
END_TEST

START_TEST(test_changed_basis_not_revisable_publishes_nothing)
{
    msg_t m;

    eval_note(R_COD, "wp-1", true, false, 55, "n", T0);
    alertbook_flush(&b, T0);
    expect_alert(&m, "cod-limit:wp-1", PROTO_ALERT_FIRING, 1);
    eval_note(R_COD, "wp-1", true, false, 70, "other", T0 + SEC); /* a threshold still breached */
    alertbook_flush(&b, T0 + SEC);
    expect_nothing();
    ck_assert_double_eq(alert(R_COD, "wp-1")->observed, 70); /* the latest, for listings */
    ck_assert_uint_eq(b.by_state[PROTO_ALERT_REVISED], 0);
}
END_TEST

START_TEST(test_resolve_publishes_resolved)
{
    msg_t m;

    eval(R_COD, "wp-1", true, 55, T0);
    alertbook_flush(&b, T0);
    expect_alert(&m, "cod-limit:wp-1", PROTO_ALERT_FIRING, 1);
    eval(R_COD, "wp-1", false, 30, T0 + MINUTE);
    alertbook_flush(&b, T0 + MINUTE);
    expect_alert(&m, "cod-limit:wp-1", PROTO_ALERT_RESOLVED, 2);
    ck_assert_double_eq(m.a.observed, 30);
    assert_str(m.a.summary, "clear 30");
    ck_assert_int_eq(m.a.since_ms, T0 - SEC);
    ck_assert_int_eq(m.a.ts_ms, T0 + MINUTE);
    ck_assert(!alert(R_COD, "wp-1")->firing);
    ck_assert_uint_eq(b.firing, 0);
    /* resolved stays resolved quietly */
    eval(R_COD, "wp-1", false, 20, T0 + 2 * MINUTE);
    alertbook_flush(&b, T0 + 2 * MINUTE);
    expect_nothing();
}
END_TEST

/* One pass may fire and resolve the same alert: each event keeps its own basis. */
START_TEST(test_fire_and_resolve_in_one_pass)
{
    msg_t m;

    eval(R_COD, "wp-1", true, 55, T0);
    eval(R_COD, "wp-1", false, 30, T0 + SEC);
    alertbook_flush(&b, T0 + SEC);
    expect_alert(&m, "cod-limit:wp-1", PROTO_ALERT_FIRING, 1);
    ck_assert_double_eq(m.a.observed, 55);
    assert_str(m.a.summary, "breach 55");
    expect_alert(&m, "cod-limit:wp-1", PROTO_ALERT_RESOLVED, 2);
    ck_assert_double_eq(m.a.observed, 30);
    expect_nothing();
}
END_TEST

/* ---- flapping ------------------------------------------------------------------------------ */

START_TEST(test_flapping)
{
    static const proto_alert_state_t first[] = {PROTO_ALERT_FIRING, PROTO_ALERT_RESOLVED,
                                                PROTO_ALERT_FIRING, PROTO_ALERT_FLAPPING};
    msg_t m;
    int64_t t = T0;

    /* flap_max = 4 transitions within the hour: the 4th is published as flapping */
    for (int i = 0; i < 4; i++, t += SEC) {
        eval(R_COD, "wp-1", i % 2 == 0, i % 2 == 0 ? 55 : 30, t);
        alertbook_flush(&b, t);
        expect_alert(&m, "cod-limit:wp-1", first[i], (uint64_t)i + 1);
    }
    ab_alert_t *a = alert(R_COD, "wp-1");
    ck_assert(a->flapping);
    ck_assert(!a->firing);
    ck_assert_uint_eq(b.by_state[PROTO_ALERT_FLAPPING], 1);

    /* held: further transitions and revisions publish nothing, the state still moves */
    eval(R_COD, "wp-1", true, 55, t);
    eval(R_COD, "wp-1", true, 66, t + 1); /* a revision */
    eval(R_COD, "wp-1", false, 30, t + SEC);
    eval(R_COD, "wp-1", true, 57, t + 2 * SEC);
    alertbook_flush(&b, t + 2 * SEC);
    expect_nothing();
    ck_assert(a->firing);
    ck_assert_uint_eq(b.firing, 1);
    int64_t last = t + 2 * SEC;

    /* settles one window after its last transition, published as where it ended */
    alertbook_tick(&b, last + HOUR - 1);
    alertbook_flush(&b, last + HOUR - 1);
    expect_nothing();
    alertbook_tick(&b, last + HOUR);
    alertbook_flush(&b, last + HOUR);
    expect_alert(&m, "cod-limit:wp-1", PROTO_ALERT_FIRING, 5);
    ck_assert(!m.a.reminder);
    ck_assert_double_eq(m.a.observed, 57);
    ck_assert(!a->flapping);
    alertbook_tick(&b, last + HOUR + SEC);
    alertbook_flush(&b, last + HOUR + SEC);
    expect_nothing();

    /* and from then on it is published as usual */
    eval(R_COD, "wp-1", false, 30, last + HOUR + 2 * SEC);
    alertbook_flush(&b, last + HOUR + 2 * SEC);
    expect_alert(&m, "cod-limit:wp-1", PROTO_ALERT_RESOLVED, 6);
    expect_nothing();
}
END_TEST

/* A flapping alert that settles resolved says so. */
START_TEST(test_flapping_settles_resolved)
{
    msg_t m;

    for (int i = 0; i < 4; i++) {
        eval(R_COD, "wp-2", i % 2 == 0, i % 2 == 0 ? 55 : 30, T0 + i * SEC);
        alertbook_flush(&b, T0 + i * SEC);
    }
    for (int i = 0; i < 4; i++)
        recv_alert(&m);
    ck_assert_uint_eq(m.a.state, PROTO_ALERT_FLAPPING);
    alertbook_tick(&b, T0 + 3 * SEC + HOUR);
    alertbook_flush(&b, T0 + 3 * SEC + HOUR);
    expect_alert(&m, "cod-limit:wp-2", PROTO_ALERT_RESOLVED, 5);
    expect_nothing();
}
END_TEST

/* flap_max transitions spread wider than the window are not flapping. */
START_TEST(test_slow_transitions_do_not_flap)
{
    msg_t m;

    for (int i = 0; i < 8; i++) {
        int64_t t = T0 + i * 20 * MINUTE; /* at most 3 within any hour */
        eval(R_COD, "wp-1", i % 2 == 0, i % 2 == 0 ? 55 : 30, t);
        alertbook_flush(&b, t);
        expect_alert(&m, "cod-limit:wp-1", i % 2 == 0 ? PROTO_ALERT_FIRING : PROTO_ALERT_RESOLVED,
                     (uint64_t)i + 1);
    }
    ck_assert(!alert(R_COD, "wp-1")->flapping);
    ck_assert_uint_eq(b.by_state[PROTO_ALERT_FLAPPING], 0);
    expect_nothing();
}
END_TEST

/* ---- reminders --------------------------------------------------------------------------- */

START_TEST(test_reminder)
{
    msg_t m;

    eval(R_REMIND, "wp-1", true, 150, T0);
    eval(R_COD, "wp-2", true, 55, T0); /* cod-limit has no repeat */
    alertbook_flush(&b, T0);
    expect_alert(&m, "cod-remind:wp-1", PROTO_ALERT_FIRING, 1);
    ck_assert_str_eq(m.topic, "alert.energy-env.critical");
    expect_alert(&m, "cod-limit:wp-2", PROTO_ALERT_FIRING, 2);

    alertbook_tick(&b, T0 + 10 * MINUTE - 1);
    alertbook_flush(&b, T0 + 10 * MINUTE - 1);
    expect_nothing();

    alertbook_tick(&b, T0 + 10 * MINUTE);
    alertbook_flush(&b, T0 + 10 * MINUTE);
    expect_alert(&m, "cod-remind:wp-1", PROTO_ALERT_FIRING, 3);
    ck_assert(m.a.reminder);
    ck_assert_uint_eq(m.a.n, 1);  /* still the first transition's ... */
    ck_assert_uint_eq(m.a.rn, 1); /* ... first reminder */
    ck_assert_int_eq(m.a.since_ms, T0 - SEC);
    ck_assert_int_eq(m.a.ts_ms, T0 + 10 * MINUTE);
    ck_assert_double_eq(m.a.observed, 150);
    expect_nothing();

    /* the next one is counted from this one */
    alertbook_tick(&b, T0 + 20 * MINUTE - 1);
    alertbook_flush(&b, T0 + 20 * MINUTE - 1);
    expect_nothing();
    alertbook_tick(&b, T0 + 20 * MINUTE);
    alertbook_flush(&b, T0 + 20 * MINUTE);
    expect_alert(&m, "cod-remind:wp-1", PROTO_ALERT_FIRING, 4);
    ck_assert(m.a.reminder);
    ck_assert_uint_eq(m.a.rn, 2);

    /* resolved: no more reminders */
    eval(R_REMIND, "wp-1", false, 80, T0 + 21 * MINUTE);
    alertbook_flush(&b, T0 + 21 * MINUTE);
    expect_alert(&m, "cod-remind:wp-1", PROTO_ALERT_RESOLVED, 5);
    ck_assert(!m.a.reminder);
    ck_assert_uint_eq(m.a.n, 2); /* the alert's second transition, whatever the seqs */
    ck_assert_uint_eq(m.a.rn, 0);
    alertbook_tick(&b, T0 + 5 * HOUR);
    alertbook_flush(&b, T0 + 5 * HOUR);
    expect_nothing();
    ck_assert_uint_eq(b.by_state[PROTO_ALERT_FIRING], 4);
}
END_TEST

/* A revision restarts the reminder interval: the reader was just told. */
START_TEST(test_reminder_after_revision)
{
    msg_t m;

    eval(R_REMIND, "wp-1", true, 150, T0);
    alertbook_flush(&b, T0);
    expect_alert(&m, "cod-remind:wp-1", PROTO_ALERT_FIRING, 1);
    eval(R_REMIND, "wp-1", true, 160, T0 + 5 * MINUTE);
    alertbook_flush(&b, T0 + 5 * MINUTE);
    expect_alert(&m, "cod-remind:wp-1", PROTO_ALERT_REVISED, 2);
    alertbook_tick(&b, T0 + 10 * MINUTE);
    alertbook_flush(&b, T0 + 10 * MINUTE);
    expect_nothing();
    alertbook_tick(&b, T0 + 15 * MINUTE);
    alertbook_flush(&b, T0 + 15 * MINUTE);
    expect_alert(&m, "cod-remind:wp-1", PROTO_ALERT_FIRING, 3);
    ck_assert(m.a.reminder);
    ck_assert_double_eq(m.a.observed, 160);
}
END_TEST

/* ---- silences ------------------------------------------------------------------------------ */

START_TEST(test_silenced_firm)
{
    msg_t m;

    silences_add(&sil, "cod-limit", "energy-env", "wp-1", T0, T0 + HOUR, "maintenance");
    eval(R_COD, "wp-1", true, 55, T0);
    alertbook_flush(&b, T0);
    expect_nothing();
    ck_assert_uint_eq(b.suppressed, 1);
    ck_assert(alert(R_COD, "wp-1")->firing); /* tracked all the same */
    ck_assert_uint_eq(b.firing, 1);
    ck_assert_uint_eq(alerts_seq(&al, "energy-env"), 0); /* no seq consumed */

    eval(R_COD, "wp-2", true, 55, T0 + SEC);     /* another firm is not silenced */
    eval(R_REMIND, "wp-1", true, 150, T0 + SEC); /* nor another rule */
    alertbook_flush(&b, T0 + SEC);
    expect_alert(&m, "cod-limit:wp-2", PROTO_ALERT_FIRING, 1);
    expect_alert(&m, "cod-remind:wp-1", PROTO_ALERT_FIRING, 2);

    eval(R_COD, "wp-1", false, 30, T0 + 2 * SEC);
    alertbook_flush(&b, T0 + 2 * SEC);
    expect_nothing();
    ck_assert_uint_eq(b.suppressed, 2);
    ck_assert(!alert(R_COD, "wp-1")->firing);

    /* the silence lapses: the next transition is published (and the flush
     * drops the lapsed silence) */
    eval(R_COD, "wp-1", true, 56, T0 + HOUR);
    alertbook_flush(&b, T0 + HOUR);
    expect_alert(&m, "cod-limit:wp-1", PROTO_ALERT_FIRING, 3);
    ck_assert_uint_eq(sil.n, 0);
    expect_nothing();
}
END_TEST

/* A silenced alert's reminders are suppressed too, one per interval (the
 * suppression counts as the publication it replaced), and once the silence
 * lapses the next reminder comes a full interval after the last one. */
START_TEST(test_silenced_reminders)
{
    msg_t m;

    silences_add(&sil, "cod-remind", "energy-env", "wp-1", T0, T0 + 15 * MINUTE, "");
    eval(R_REMIND, "wp-1", true, 150, T0);
    alertbook_flush(&b, T0);
    ck_assert_uint_eq(b.suppressed, 1);
    for (int64_t t = T0 + MINUTE; t < T0 + 10 * MINUTE; t += MINUTE) {
        alertbook_tick(&b, t);
        alertbook_flush(&b, t);
    }
    ck_assert_uint_eq(b.suppressed, 1);
    alertbook_tick(&b, T0 + 10 * MINUTE);
    alertbook_flush(&b, T0 + 10 * MINUTE);
    ck_assert_uint_eq(b.suppressed, 2);   /* the reminder, silenced */
    alertbook_tick(&b, T0 + 15 * MINUTE); /* the silence has lapsed */
    alertbook_flush(&b, T0 + 15 * MINUTE);
    expect_nothing();
    alertbook_tick(&b, T0 + 20 * MINUTE);
    alertbook_flush(&b, T0 + 20 * MINUTE);
    expect_alert(&m, "cod-remind:wp-1", PROTO_ALERT_FIRING, 1);
    ck_assert(m.a.reminder);
}
END_TEST

/* A whole-cluster silence covers the cluster-level alert (firm -1). */
START_TEST(test_silenced_cluster)
{
    msg_t m;

    uint64_t id = silences_add(&sil, "ne-growth", "new-energy", NULL, T0, T0 + HOUR, "");
    eval(R_GROWTH, NULL, true, 3, T0);
    alertbook_flush(&b, T0);
    expect_nothing();
    ck_assert_uint_eq(b.suppressed, 1);
    ck_assert(alert(R_GROWTH, NULL)->firing);

    ck_assert_int_eq(silences_remove(&sil, id), 0);
    eval(R_GROWTH, NULL, false, 16, T0 + MINUTE);
    alertbook_flush(&b, T0 + MINUTE);
    expect_alert(&m, "ne-growth:new-energy", PROTO_ALERT_RESOLVED, 1);
}
END_TEST

/* ---- grouping -------------------------------------------------------------------------------- */

START_TEST(test_group)
{
    msg_t m;

    eval(R_COD, "wp-1", true, 55, T0);
    eval(R_REMIND, "wp-1", true, 150, T0);
    eval(R_COD, "wp-2", true, 56, T0);
    eval(R_COD, "wp-3", true, 57, T0);
    alertbook_flush(&b, T0);
    /* three of cod-limit (group_max 2): one grouped alert, where the first was */
    recv_alert(&m);
    ck_assert_str_eq(m.topic, "alert.energy-env.warning");
    assert_str(m.a.id, "cod-limit:energy-env:group");
    assert_str(m.a.rule, "cod-limit");
    ck_assert_uint_eq(m.a.state, PROTO_ALERT_FIRING);
    ck_assert_uint_eq(m.a.count, 3);
    ck_assert_double_eq(m.a.observed, 3);
    assert_str(m.a.cluster, "energy-env");
    assert_str(m.a.chain, "water-pollution-control");
    ck_assert_uint_eq(m.a.firm.len, 0);
    assert_str(m.a.metric, "cod");
    ck_assert_uint_eq(m.a.seq, 1);
    ck_assert_int_eq(m.a.ts_ms, T0);
    assert_str(m.a.summary,
               "3 alerts of rule cod-limit in energy-env are firing at once: wp-1, wp-2, wp-3");
    expect_alert(&m, "cod-remind:wp-1", PROTO_ALERT_FIRING, 2);
    ck_assert_uint_eq(m.a.count, 0);
    expect_nothing();
    ck_assert_uint_eq(b.grouped, 3);
    ck_assert_uint_eq(b.firing, 4);
    ck_assert_uint_eq(alert(R_COD, "wp-2")->seq, 1); /* each member knows the group's seq */
    ck_assert_uint_eq(alert(R_COD, "wp-3")->seq, 1);

    /* exactly group_max: published one by one */
    eval(R_COD, "wp-1", false, 30, T0 + MINUTE);
    eval(R_COD, "wp-2", false, 30, T0 + MINUTE);
    alertbook_flush(&b, T0 + MINUTE);
    expect_alert(&m, "cod-limit:wp-1", PROTO_ALERT_RESOLVED, 3);
    expect_alert(&m, "cod-limit:wp-2", PROTO_ALERT_RESOLVED, 4);
    expect_nothing();
    ck_assert_uint_eq(b.grouped, 3);
}
END_TEST

/* A long group names five firms and says there are more. */
START_TEST(test_group_many)
{
    static const char *const firms[] = {"wp-1", "wp-2", "wp-3", "wp-4", "wp-5", "wp-6"};
    msg_t m;

    for (size_t i = 0; i < 6; i++)
        eval(R_COD, firms[i], true, 55, T0);
    alertbook_flush(&b, T0);
    expect_alert(&m, "cod-limit:energy-env:group", PROTO_ALERT_FIRING, 1);
    ck_assert_uint_eq(m.a.count, 6);
    assert_str(m.a.summary, "6 alerts of rule cod-limit in energy-env are firing at once: "
                            "wp-1, wp-2, wp-3, wp-4, wp-5, ...");
    expect_nothing();
}
END_TEST

/* Silenced events are left out before grouping: two left is not a flood. */
START_TEST(test_group_after_silences)
{
    msg_t m;

    silences_add(&sil, "cod-limit", "energy-env", "wp-2", T0, T0 + HOUR, "");
    eval(R_COD, "wp-1", true, 55, T0);
    eval(R_COD, "wp-2", true, 55, T0);
    eval(R_COD, "wp-3", true, 55, T0);
    alertbook_flush(&b, T0);
    expect_alert(&m, "cod-limit:wp-1", PROTO_ALERT_FIRING, 1);
    expect_alert(&m, "cod-limit:wp-3", PROTO_ALERT_FIRING, 2);
    expect_nothing();
    ck_assert_uint_eq(b.suppressed, 1);
    ck_assert_uint_eq(b.grouped, 0);
}
END_TEST

/* Grouping is per state: three firing and three resolving in one pass are two groups. */
START_TEST(test_group_per_state)
{
    static const char *const was[] = {"wp-1", "wp-2", "wp-3"}, *const now[] = {"wp-4", "wp-5",
                                                                               "wp-6"};
    msg_t m;

    for (int i = 0; i < 3; i++)
        eval(R_COD, was[i], true, 55, T0);
    alertbook_flush(&b, T0);
    recv_alert(&m);
    for (int i = 0; i < 3; i++) {
        eval(R_COD, was[i], false, 30, T0 + MINUTE); /* interleaved */
        eval(R_COD, now[i], true, 55, T0 + MINUTE);
    }
    alertbook_flush(&b, T0 + MINUTE);
    expect_alert(&m, "cod-limit:energy-env:group", PROTO_ALERT_RESOLVED, 2);
    ck_assert_uint_eq(m.a.count, 3);
    assert_str(m.a.summary, "3 alerts of rule cod-limit in energy-env are resolved at once: "
                            "wp-1, wp-2, wp-3");
    expect_alert(&m, "cod-limit:energy-env:group", PROTO_ALERT_FIRING, 3);
    assert_str(m.a.summary, "3 alerts of rule cod-limit in energy-env are firing at once: "
                            "wp-4, wp-5, wp-6");
    expect_nothing();
}
END_TEST

/* ---- quiet mode (WAL replay) -------------------------------------------------------------- */

START_TEST(test_quiet)
{
    msg_t m;

    b.quiet = true;
    eval(R_COD, "wp-1", true, 55, T0);
    eval(R_COD, "wp-2", true, 55, T0);
    eval(R_COD, "wp-3", true, 55, T0);
    eval(R_REMIND, "wp-1", true, 150, T0);
    ck_assert_uint_eq(b.nevents, 0);
    alertbook_tick(&b, T0 + HOUR); /* no reminders either */
    alertbook_flush(&b, T0 + HOUR);
    expect_nothing();
    ck_assert_uint_eq(alerts_seq(&al, "energy-env"), 0);
    ck_assert_uint_eq(b.firing, 4);
    ck_assert(alert(R_COD, "wp-1")->firing);

    b.quiet = false;
    eval(R_COD, "wp-1", true, 55, T0 + HOUR); /* the same: nothing */
    eval(R_COD, "wp-1", false, 30, T0 + HOUR);
    alertbook_flush(&b, T0 + HOUR);
    expect_alert(&m, "cod-limit:wp-1", PROTO_ALERT_RESOLVED, 1);
    ck_assert_int_eq(m.a.since_ms, T0 - SEC); /* the episode began in the replayed part */
    expect_nothing();
}
END_TEST

/* ---- durable state: pack, unpack, journal, replay ------------------------------------ */

/* Records the journal hook was given, concatenated: [u32 len][payload]... */
typedef struct {
    unsigned char buf[65536];
    size_t used;
    unsigned n;
    bool fail;
} journal_t;

static uint64_t journal_cb(void *data, const void *payload, size_t len)
{
    journal_t *j = data;
    if (j->fail)
        return 0;
    ck_assert_uint_le(j->used + 4 + len, sizeof j->buf);
    uint32_t l = (uint32_t)len;
    memcpy(j->buf + j->used, &l, 4);
    memcpy(j->buf + j->used + 4, payload, len);
    j->used += 4 + len;
    j->n++;
    return j->used;
}

/* The book packed, for byte comparisons; caller destroys. */
static void pack_book(const alertbook_t *book, msgpack_sbuffer *out)
{
    msgpack_packer pk;
    msgpack_sbuffer_init(out);
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    alertbook_pack(book, &pk);
}

/* A book with a bit of everything: firing with details, resolved, flapping
 * past the ring's first lap, a reminder sent. */
static void busy_book(void)
{
    eval_note(R_COD, "wp-1", true, true, 55, "first", T0);
    eval(R_COD, "wp-2", true, 56, T0);
    alertbook_flush(&b, T0);
    eval(R_COD, "wp-2", false, 30, T0 + SEC);
    eval(R_REMIND, "wp-3", true, 150, T0 + SEC);
    alertbook_flush(&b, T0 + SEC);
    alertbook_tick(&b, T0 + 11 * MINUTE); /* a reminder */
    alertbook_flush(&b, T0 + 11 * MINUTE);
    for (int i = 0; i < 20; i++) /* flapping, 20 flaps: the ring wrapped */
        eval(R_COD, "wp-4", i % 2 == 0, i % 2 == 0 ? 55 : 30, T0 + 12 * MINUTE + i * SEC);
    alertbook_flush(&b, T0 + 13 * MINUTE);
}

static void unpack_into(alertbook_t *book, const msgpack_sbuffer *packed, int want_rc)
{
    msgpack_zone zone;
    msgpack_object o;
    size_t off = 0;
    char err[256] = "";
    uint64_t unknown = 0;

    msgpack_zone_init(&zone, 4096);
    ck_assert_int_eq(msgpack_unpack(packed->data, packed->size, &off, &zone, &o),
                     MSGPACK_UNPACK_SUCCESS);
    ck_assert_int_eq(alertbook_unpack(book, &o, false, &unknown, err, sizeof err), want_rc);
    if (want_rc == 0)
        ck_assert_int_eq(alertbook_unpack(book, &o, true, &unknown, err, sizeof err), 0);
    else
        ck_assert_msg(strncmp(err, "alerts: ", 8) == 0, "%s", err);
    ck_assert_uint_eq(unknown, 0);
    msgpack_zone_destroy(&zone);
}

/* pack -> unpack -> pack gives the same bytes: every field survives,
 * the flap ring in order included. */
START_TEST(test_pack_round_trip)
{
    msgpack_sbuffer one, two;
    alertbook_t copy;

    busy_book();
    ck_assert(alert(R_COD, "wp-4")->flapping);
    ck_assert_uint_eq(alert(R_COD, "wp-4")->nflaps, 20);
    pack_book(&b, &one);
    alertbook_init(&copy, cfg, reg, &al, &sil);
    unpack_into(&copy, &one, 0);
    ck_assert_uint_eq(copy.nalerts, b.nalerts);
    ck_assert_uint_eq(copy.firing, b.firing);
    pack_book(&copy, &two);
    ck_assert_uint_eq(one.size, two.size);
    ck_assert(memcmp(one.data, two.data, one.size) == 0);
    /* the newest flap is last, as the settle check wants */
    const ab_alert_t *a = alertbook_get(&copy, R_COD, firm("wp-4"), false);
    ck_assert_int_eq(a->flaps[(a->nflaps - 1) % AB_FLAP_RING], T0 + 12 * MINUTE + 19 * SEC);
    ck_assert_uint_eq(a->seq, alert(R_COD, "wp-4")->seq);
    ck_assert_uint_eq(a->n, alert(R_COD, "wp-4")->n); /* the HA dedupe ordinal is durable */
    ck_assert_uint_gt(a->n, 0);
    ck_assert(alertbook_get(&copy, R_REMIND, firm("wp-3"), false)->published_ms ==
              T0 + 11 * MINUTE);
    msgpack_sbuffer_destroy(&one);
    msgpack_sbuffer_destroy(&two);
    alertbook_free(&copy);
}
END_TEST

/* Malformed input is refused whole: nothing of it is applied. */
START_TEST(test_unpack_malformed)
{
    /* one good entry, then field k of a copy replaced by something wrong */
    static const struct {
        const char *name;
        int field; /* -1: the entry itself */
        int kind;  /* what to put there */
    } bad[] = {
        {"entry not an array", -1, 0},
        {"rule not a string", 0, 1},
        {"rule empty", 0, 2},
        {"firm a number", 1, 1},
        {"firing 2", 2, 3},
        {"flapping a string", 3, 4},
        {"since a string", 4, 4},
        {"published a float", 5, 5},
        {"pending_count negative", 6, 6},
        {"observed an int", 8, 1},
        {"expected nil", 9, 7},
        {"summary a number", 10, 1},
        {"seq negative", 11, 6},
        {"flaps not an array", 12, 1},
        {"flaps too many", 12, 8},
        {"details not a map", 13, 1},
        {"details too many", 13, 9},
        {"a detail a bool", 13, 10},
    };
    for (size_t c = 0; c < sizeof bad / sizeof bad[0]; c++) {
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_array(&pk, 2);
        /* a good entry first: it must not be applied either */
        msgpack_pack_array(&pk, 14);
        msgpack_pack_str_with_body(&pk, "cod-limit", 9);
        msgpack_pack_str_with_body(&pk, "wp-1", 4);
        msgpack_pack_uint8(&pk, 1);
        msgpack_pack_uint8(&pk, 0);
        for (int k = 0; k < 4; k++)
            msgpack_pack_int64(&pk, T0);
        msgpack_pack_double(&pk, 1);
        msgpack_pack_double(&pk, 2);
        msgpack_pack_str_with_body(&pk, "s", 1);
        msgpack_pack_uint64(&pk, 7);
        msgpack_pack_array(&pk, 0);
        msgpack_pack_map(&pk, 0);
        if (bad[c].field < 0) {
            msgpack_pack_str_with_body(&pk, "x", 1);
        } else {
            msgpack_pack_array(&pk, 14);
            for (int k = 0; k < 14; k++) {
                if (k != bad[c].field) {
                    switch (k) {
                    case 0: msgpack_pack_str_with_body(&pk, "cod-limit", 9); break;
                    case 1: msgpack_pack_str_with_body(&pk, "wp-2", 4); break;
                    case 2:
                    case 3: msgpack_pack_uint8(&pk, 1); break;
                    case 8:
                    case 9: msgpack_pack_double(&pk, 1); break;
                    case 10: msgpack_pack_str_with_body(&pk, "s", 1); break;
                    case 12: msgpack_pack_array(&pk, 0); break;
                    case 13: msgpack_pack_map(&pk, 0); break;
                    default: msgpack_pack_int64(&pk, T0); break;
                    }
                    continue;
                }
                switch (bad[c].kind) {
                case 1: msgpack_pack_int64(&pk, 5); break;
                case 2: msgpack_pack_str_with_body(&pk, "", 0); break;
                case 3: msgpack_pack_uint8(&pk, 2); break;
                case 4: msgpack_pack_str_with_body(&pk, "t", 1); break;
                case 5: msgpack_pack_double(&pk, 1.5); break;
                case 6: msgpack_pack_int64(&pk, -1); break;
                case 7: msgpack_pack_nil(&pk); break;
                case 8:
                    msgpack_pack_array(&pk, AB_FLAP_RING + 1);
                    for (int i = 0; i <= AB_FLAP_RING; i++)
                        msgpack_pack_int64(&pk, T0);
                    break;
                case 9:
                    msgpack_pack_map(&pk, PROTO_MAX_DETAILS + 1);
                    for (int i = 0; i <= PROTO_MAX_DETAILS; i++) {
                        char key[8];
                        int n = snprintf(key, sizeof key, "k%d", i);
                        msgpack_pack_str_with_body(&pk, key, (size_t)n);
                        msgpack_pack_double(&pk, i);
                    }
                    break;
                case 10:
                    msgpack_pack_map(&pk, 1);
                    msgpack_pack_str_with_body(&pk, "k", 1);
                    msgpack_pack_true(&pk);
                    break;
                }
            }
        }
        unpack_into(&b, &sb, -1);
        ck_assert_msg(b.nalerts == 0, "%s: applied", bad[c].name);
        msgpack_sbuffer_destroy(&sb);
    }
    /* and not an array at all */
    char err[128];
    msgpack_object nil = {.type = MSGPACK_OBJECT_NIL};
    ck_assert_int_eq(alertbook_unpack(&b, &nil, false, NULL, err, sizeof err), -1);
    ck_assert_int_eq(alertbook_unpack(&b, NULL, false, NULL, err, sizeof err), -1);
}
END_TEST

/* Replays every record of j into book; returns how many were applied. */
static unsigned replay_all(alertbook_t *book, const journal_t *j)
{
    unsigned n = 0;
    char err[256];
    for (size_t off = 0; off < j->used;) {
        uint32_t len;
        memcpy(&len, j->buf + off, 4);
        int rc = alertbook_replay(book, j->buf + off + 4, len, err, sizeof err);
        ck_assert_msg(rc == 0, "%s", err);
        n++;
        off += 4 + len;
    }
    return n;
}

/* Every change that matters is journaled when flushed, after its
 * publication; replaying the records rebuilds the book exactly. */
START_TEST(test_journal_replays_to_same_book)
{
    static journal_t j;
    msgpack_sbuffer one, two;
    alertbook_t copy;

    memset(&j, 0, sizeof j);
    b.journal = journal_cb;
    b.journal_data = &j;
    eval(R_COD, "wp-1", true, 55, T0);
    ck_assert_uint_eq(j.n, 0); /* not before the flush */
    alertbook_flush(&b, T0);
    ck_assert_uint_eq(j.n, 1);
    ck_assert_uint_eq(j.buf[4], RECORD_ALERT);
    eval(R_COD, "wp-1", true, 55, T0 + SEC); /* the same: nothing to journal */
    alertbook_flush(&b, T0 + SEC);
    ck_assert_uint_eq(j.n, 1);
    busy_book();
    ck_assert_uint_gt(j.n, 4);
    ck_assert_uint_eq(b.ndirty, 0);

    pack_book(&b, &one);
    alertbook_init(&copy, cfg, reg, &al, &sil);
    replay_all(&copy, &j);
    pack_book(&copy, &two);
    ck_assert_uint_eq(one.size, two.size);
    ck_assert(memcmp(one.data, two.data, one.size) == 0);
    ck_assert_uint_eq(copy.firing, b.firing);
    msgpack_sbuffer_destroy(&one);
    msgpack_sbuffer_destroy(&two);
    alertbook_free(&copy);
}
END_TEST

/* A record names its seq: replay raises the cluster's seq to it (the seq
 * file may have missed the last write before a kill). */
START_TEST(test_replay_raises_seq)
{
    static journal_t j;
    msg_t m;

    memset(&j, 0, sizeof j);
    b.journal = journal_cb;
    b.journal_data = &j;
    eval(R_COD, "wp-1", true, 55, T0);
    alertbook_flush(&b, T0);
    expect_alert(&m, "cod-limit:wp-1", PROTO_ALERT_FIRING, 1);
    alerts_close(&al);
    unlink(seq_path); /* the seq file is lost */
    char err[256];
    ck_assert_msg(alerts_init(&al, tmpdir, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(alerts_seq(&al, "energy-env"), 0);
    alertbook_t copy;
    alertbook_init(&copy, cfg, reg, &al, &sil);
    ck_assert_uint_eq(replay_all(&copy, &j), 1);
    ck_assert_uint_eq(alerts_seq(&al, "energy-env"), 1);
    alertbook_free(&copy);
}
END_TEST

START_TEST(test_replay_malformed)
{
    static const struct {
        const char *name;
        const char *bytes;
        size_t len;
    } bad[] = {
        {"empty", "", 0},
        {"tag only", "\x03", 1},
        {"another tag", "\x04\x90", 2},
        {"not an entry", "\x03\x90", 2},
        {"trailing bytes", "\x03\x90\x90", 3},
        {"truncated",
         "\x03\x9e\xa9"
         "cod-limit",
         12},
    };
    char err[256];
    for (size_t c = 0; c < sizeof bad / sizeof bad[0]; c++) {
        ck_assert_msg(alertbook_replay(&b, bad[c].bytes, bad[c].len, err, sizeof err) == -1, "%s",
                      bad[c].name);
        ck_assert_msg(strncmp(err, "alert record: ", 14) == 0, "%s: %s", bad[c].name, err);
    }
    ck_assert_uint_eq(b.nalerts, 0);
}
END_TEST

/* After replay: an alert whose state the replayed batches changed but no
 * record confirms (its publication never happened) is published once; one
 * whose state is as journaled publishes nothing. */
START_TEST(test_recovered_publishes_only_changes)
{
    msgpack_sbuffer sb;
    msg_t m;

    /* wp-1 firing, journaled (as from the snapshot) */
    eval(R_COD, "wp-1", true, 55, T0);
    alertbook_flush(&b, T0);
    expect_alert(&m, "cod-limit:wp-1", PROTO_ALERT_FIRING, 1);
    pack_book(&b, &sb);
    alertbook_t copy;
    alertbook_init(&copy, cfg, reg, &al, &sil);
    unpack_into(&copy, &sb, 0);
    msgpack_sbuffer_destroy(&sb);

    /* replay: wp-2 fires from a batch whose record never made it */
    copy.quiet = true;
    ab_eval_t ev;
    ab_eval_reset(&ev);
    ev.active = true;
    ev.ts_ms = T0;
    snprintf(ev.summary, sizeof ev.summary, "breach");
    alertbook_eval(&copy, R_COD, firm("wp-1"), &ev, T0 + SEC); /* unchanged */
    alertbook_eval(&copy, R_COD, firm("wp-2"), &ev, T0 + SEC);
    alertbook_flush(&copy, T0 + SEC);
    expect_nothing();
    copy.quiet = false;
    alertbook_recovered(&copy);
    alertbook_flush(&copy, T0 + 2 * SEC);
    expect_alert(&m, "cod-limit:wp-2", PROTO_ALERT_FIRING, 2);
    expect_nothing();
    alertbook_recovered(&copy); /* once */
    alertbook_flush(&copy, T0 + 3 * SEC);
    expect_nothing();
    alertbook_free(&copy);
}
END_TEST

/* A journal that cannot take the record (disk full) is counted and said. */
START_TEST(test_journal_failure_counted)
{
    static journal_t j;
    msg_t m;

    memset(&j, 0, sizeof j);
    j.fail = true;
    b.journal = journal_cb;
    b.journal_data = &j;
    eval(R_COD, "wp-1", true, 55, T0);
    alertbook_flush(&b, T0);
    expect_alert(&m, "cod-limit:wp-1", PROTO_ALERT_FIRING, 1); /* published all the same */
    ck_assert_uint_eq(b.journal_failed, 1);
    ck_assert_uint_eq(b.journaled, 0);
    ck_assert(!alert(R_COD, "wp-1")->journaled_firing);
}
END_TEST

/* journal_many: one call per flush, each payload recorded as journal_cb would */
static unsigned many_calls;

static uint64_t journal_many_cb(void *data, const struct iovec *payloads, size_t n)
{
    journal_t *j = data;
    many_calls++;
    if (j->fail)
        return 0;
    uint64_t pos = 0;
    for (size_t i = 0; i < n; i++)
        pos = journal_cb(data, payloads[i].iov_base, payloads[i].iov_len);
    return pos;
}

/* The alerts one flush changed are journaled in one call, and the records
 * are the ones journaled one by one: the replayed book is the same. */
START_TEST(test_journal_many_same_records)
{
    static journal_t one, many;
    memset(&one, 0, sizeof one);
    memset(&many, 0, sizeof many);
    b.journal = journal_cb;
    b.journal_data = &one;
    busy_book();
    alertbook_free(&b);
    alertbook_init(&b, cfg, reg, &al, &sil);
    many_calls = 0;
    b.journal = journal_cb;
    b.journal_many = journal_many_cb;
    b.journal_data = &many;
    busy_book();
    ck_assert_uint_gt(many.n, many_calls); /* some flush journaled several at once */
    ck_assert_uint_eq(many.n, one.n);
    ck_assert_uint_eq(b.journaled, many.n);
    /* replaying them rebuilds the book */
    alertbook_t y;
    msgpack_sbuffer px, py;
    alertbook_init(&y, cfg, reg, &al, &sil);
    ck_assert_uint_eq(replay_all(&y, &many), many.n);
    pack_book(&b, &px);
    pack_book(&y, &py);
    ck_assert_uint_eq(px.size, py.size);
    ck_assert(memcmp(px.data, py.data, px.size) == 0);
    msgpack_sbuffer_destroy(&px);
    msgpack_sbuffer_destroy(&py);
    alertbook_free(&y);
}
END_TEST

/* A grouped journal that fails counts every alert of the group as failed. */
START_TEST(test_journal_many_failure_counted)
{
    static journal_t j;
    memset(&j, 0, sizeof j);
    j.fail = true;
    b.journal = journal_cb;
    b.journal_many = journal_many_cb;
    b.journal_data = &j;
    eval(R_COD, "wp-1", true, 55, T0);
    eval(R_COD, "wp-2", true, 56, T0);
    alertbook_flush(&b, T0);
    ck_assert_uint_eq(b.journal_failed, 2);
    ck_assert_uint_eq(b.journaled, 0);
    ck_assert(!alert(R_COD, "wp-1")->journaled_firing);
    ck_assert(!alert(R_COD, "wp-2")->journaled_firing);
}
END_TEST

/* Each cluster counts 1, 2, 3 ... on its own. */
START_TEST(test_seq_per_cluster)
{
    msg_t m;

    eval(R_COD, "wp-1", true, 55, T0);
    eval(R_GROWTH, "pv-1", true, 5, T0);
    eval(R_COD, "wp-2", true, 55, T0);
    alertbook_flush(&b, T0);
    expect_alert(&m, "cod-limit:wp-1", PROTO_ALERT_FIRING, 1);
    expect_alert(&m, "ne-growth:pv-1", PROTO_ALERT_FIRING, 1);
    ck_assert_str_eq(m.topic, "alert.new-energy.critical");
    expect_alert(&m, "cod-limit:wp-2", PROTO_ALERT_FIRING, 2);
    eval(R_GROWTH, "pv-1", false, 20, T0 + SEC);
    alertbook_flush(&b, T0 + SEC);
    expect_alert(&m, "ne-growth:pv-1", PROTO_ALERT_RESOLVED, 2);
    ck_assert_uint_eq(alerts_seq(&al, "energy-env"), 2);
    ck_assert_uint_eq(alerts_seq(&al, "new-energy"), 2);
    expect_nothing();
}
END_TEST

/* Each cluster's sequence number survives a restart (state_dir/alert-seqs). */
START_TEST(test_seq_persists)
{
    char err[256];
    alerts_t again;
    msg_t m;

    eval(R_COD, "wp-1", true, 55, T0);
    eval(R_COD, "wp-2", true, 55, T0);
    eval(R_GROWTH, "pv-1", true, 5, T0);
    alertbook_flush(&b, T0);
    expect_alert(&m, "cod-limit:wp-1", PROTO_ALERT_FIRING, 1);
    expect_alert(&m, "cod-limit:wp-2", PROTO_ALERT_FIRING, 2);
    expect_alert(&m, "ne-growth:pv-1", PROTO_ALERT_FIRING, 1);
    eval(R_COD, "wp-1", false, 30, T0 + SEC); /* a record rewritten in place */
    alertbook_flush(&b, T0 + SEC);
    expect_alert(&m, "cod-limit:wp-1", PROTO_ALERT_RESOLVED, 3);
    ck_assert_msg(alerts_init(&again, tmpdir, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(again.nrecords, 2);
    ck_assert_uint_eq(alerts_seq(&again, "energy-env"), 3);
    ck_assert_uint_eq(alerts_seq(&again, "new-energy"), 1);
    ck_assert_uint_eq(alerts_seq(&again, "elsewhere"), 0);
    alerts_close(&again);
}
END_TEST

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *fp = fopen(path, "w");
    ck_assert_ptr_nonnull(fp);
    ck_assert_uint_eq(fwrite(data, 1, len, fp), len);
    ck_assert_int_eq(fclose(fp), 0);
}

/* The global alert-seq of an older daemon: every cluster goes on from it,
 * and the old file is replaced by alert-seqs. */
START_TEST(test_seq_from_global_file)
{
    char err[256];
    alerts_t old;
    msg_t m;
    const unsigned char g[8] = {41}; /* 41, little-endian */

    alerts_close(&al);
    unlink(seq_path);
    write_file(old_seq_path, g, sizeof g);
    ck_assert_msg(alerts_init(&old, tmpdir, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(access(old_seq_path, F_OK), -1);
    ck_assert_uint_eq(alerts_seq(&old, "energy-env"), 41);
    ck_assert_uint_eq(alerts_seq(&old, "new-energy"), 41);
    alerts_close(&old);
    /* and it persists as the floor of the new file */
    ck_assert_msg(alerts_init(&al, tmpdir, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(alerts_open(&al, zctx, "inproc://check-alertbook-2", 1000, 0, err, sizeof err) ==
                      0,
                  "%s", err);
    ck_assert_uint_eq(al.seq_floor, 41);
    ck_assert_int_eq(zmq_connect(sub, "inproc://check-alertbook-2"), 0);
    for (int i = 0; i < 500; i++) { /* until the subscription reaches the new PUB */
        char probe[16];
        zmq_pollitem_t item = {.socket = sub, .events = ZMQ_POLLIN};
        ck_assert_int_eq(zmq_send(al.zs.sock, "probe.x", 7, ZMQ_DONTWAIT), 7);
        if (zmq_poll(&item, 1, 10) == 1 && zmq_recv(sub, probe, sizeof probe, 0) >= 0)
            break;
    }
    eval(R_COD, "wp-1", true, 55, T0);
    alertbook_flush(&b, T0);
    expect_alert(&m, "cod-limit:wp-1", PROTO_ALERT_FIRING, 42);

    /* a global file that is not 8 bytes is not guessed at */
    alerts_close(&al);
    unlink(seq_path);
    write_file(old_seq_path, g, 5);
    ck_assert_int_eq(alerts_init(&al, tmpdir, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "alert-seq: 5 bytes, expected 8") != NULL, "%s", err);
    alerts_close(&al);
    unlink(old_seq_path);
    unlink(seq_path);
    ck_assert_msg(alerts_init(&al, tmpdir, err, sizeof err) == 0, "%s", err); /* for teardown */
}
END_TEST

#define Z10 "\0\0\0\0\0\0\0\0\0\0"
#define Z57 Z10 Z10 Z10 Z10 Z10 "\0\0\0\0\0\0\0"
#define Z60 Z10 Z10 Z10 Z10 Z10 Z10

/* A damaged alert-seqs stops the start with the file and record named; a
 * partial record at the end (a crash while appending) is dropped. */
START_TEST(test_seq_file_damaged)
{
    static const struct {
        const char *what;
        size_t len;
        const char *data;
        const char *want; /* in err; NULL: loads */
    } cases[] = {
        {"bad magic", 16, "CMSNAP\0\1\0\0\0\0\0\0\0\0", "not an alert seq file"},
        {"short header", 5, "CMASE", "not an alert seq file"},
        {"future format", 16, "CMASEQ\0\2\0\0\0\0\0\0\0\0", "format version 2"},
        {"bad id", 16 + 72,
         "CMASEQ\0\1"
         "\0\0\0\0\0\0\0\0"
         "bad id!" Z57 "\5\0\0\0\0\0\0\0",
         "record 1 (offset 16): cluster: character 4"},
        {"partial record", 16 + 72 + 10,
         "CMASEQ\0\1"
         "\7\0\0\0\0\0\0\0"
         "east" Z60 "\11\0\0\0\0\0\0\0"
         "west\0\0\0\0\0\0",
         NULL},
    };
    char err[512];
    alerts_t x;

    alerts_close(&al);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_file(seq_path, cases[i].data, cases[i].len);
        int rc = alerts_init(&x, tmpdir, err, sizeof err);
        if (cases[i].want) {
            ck_assert_msg(rc == -1, "%s: loaded", cases[i].what);
            ck_assert_msg(strstr(err, cases[i].want) && strstr(err, "alert-seqs"), "%s: %s",
                          cases[i].what, err);
        } else {
            ck_assert_msg(rc == 0, "%s: %s", cases[i].what, err);
            ck_assert_uint_eq(alerts_seq(&x, "east"), 9);
            ck_assert_uint_eq(alerts_seq(&x, "west"), 7); /* the floor */
            ck_assert_uint_eq(x.nrecords, 1);
        }
        alerts_close(&x);
    }
    unlink(seq_path);
    ck_assert_msg(alerts_init(&al, tmpdir, err, sizeof err) == 0, "%s", err); /* for teardown */
}
END_TEST

/* The daemon's snapshot carries the seqs: loading raises, never lowers. */
START_TEST(test_seqs_snapshot)
{
    char err[256];
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_unpacked u;
    msg_t m;

    eval(R_COD, "wp-1", true, 55, T0);
    eval(R_COD, "wp-2", true, 55, T0);
    alertbook_flush(&b, T0);
    expect_alert(&m, "cod-limit:wp-1", PROTO_ALERT_FIRING, 1);
    expect_alert(&m, "cod-limit:wp-2", PROTO_ALERT_FIRING, 2);
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    alerts_seqs_pack(&al, &pk);
    msgpack_unpacked_init(&u);
    ck_assert_int_eq(msgpack_unpack_next(&u, sb.data, sb.size, NULL), MSGPACK_UNPACK_SUCCESS);
    ck_assert_int_eq(u.data.type, MSGPACK_OBJECT_MAP);
    ck_assert_uint_eq(u.data.via.map.size, 1); /* only clusters that published */

    eval(R_COD, "wp-3", true, 55, T0 + SEC);
    alertbook_flush(&b, T0 + SEC);
    expect_alert(&m, "cod-limit:wp-3", PROTO_ALERT_FIRING, 3);
    ck_assert_int_eq(alerts_seqs_load(&al, &u.data, true, err, sizeof err), 0);
    ck_assert_uint_eq(alerts_seq(&al, "energy-env"), 3); /* not lowered to 2 */

    alerts_seqs_raise_floor(&al, 10); /* an older daemon's snapshot */
    ck_assert_uint_eq(alerts_seq(&al, "energy-env"), 10);
    ck_assert_uint_eq(alerts_seq(&al, "new-energy"), 10);

    msgpack_object bad = {.type = MSGPACK_OBJECT_POSITIVE_INTEGER};
    ck_assert_int_eq(alerts_seqs_load(&al, &bad, false, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "alert_seqs") != NULL, "%s", err);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

/* One heartbeat per cluster, each under its own topic with its own seq. */
START_TEST(test_heartbeat_per_cluster)
{
    char topic[128], body[1024], err[PROTO_ERRLEN];
    bool more;
    msg_t m;
    proto_heartbeat_t hb;

    eval(R_COD, "wp-1", true, 55, T0);
    alertbook_flush(&b, T0);
    expect_alert(&m, "cod-limit:wp-1", PROTO_ALERT_FIRING, 1);
    alerts_heartbeat(&al, cfg, T0);
    static const char *const want[][2] = {{"alert.energy-env.heartbeat", "energy-env"},
                                          {"alert.new-energy.heartbeat", "new-energy"}};
    for (int i = 0; i < 2; i++) {
        recv_frame(topic, sizeof topic, &more);
        ck_assert_str_eq(topic, want[i][0]);
        ck_assert(more);
        size_t n = recv_frame(body, sizeof body, &more);
        ck_assert(!more);
        ck_assert_msg(proto_heartbeat_decode(body, n, &hb, err, sizeof err) == PROTO_OK, "%s", err);
        assert_str(hb.cluster, want[i][1]);
        ck_assert_uint_eq(hb.seq, i == 0 ? 1 : 0);
        ck_assert_int_eq(hb.ts_ms, T0);
    }
    expect_nothing();
}
END_TEST

/* ---- to_proto and the evaluation helpers -------------------------------------------------- */

START_TEST(test_to_proto)
{
    proto_alert_t p;

    eval(R_COD, "wp-1", true, 55, T0);
    ab_alert_t *a = alert(R_COD, "wp-1");
    alertbook_to_proto(&b, a, PROTO_ALERT_REVISED, &p);
    assert_str(p.id, "cod-limit:wp-1");
    assert_str(p.rule, "cod-limit");
    ck_assert_uint_eq(p.state, PROTO_ALERT_REVISED);
    ck_assert_uint_eq(p.severity, PROTO_SEV_WARNING);
    assert_str(p.cluster, "energy-env");
    assert_str(p.chain, "water-pollution-control");
    assert_str(p.firm, "wp-1");
    assert_str(p.metric, "cod");
    ck_assert_double_eq(p.observed, 55);
    ck_assert_double_eq(p.expected, 50);
    assert_str(p.summary, "breach 55");
    ck_assert_int_eq(p.since_ms, T0 - SEC);
    ck_assert_uint_eq(p.seq, 1); /* never published: 1, the least valid seq */
    ck_assert_uint_eq(p.ndetails, 2);
    assert_str(p.details[0].key, "value");
    ck_assert_double_eq(p.details[0].num, 55);
    assert_str(p.details[1].key, "note");
    assert_str(p.details[1].str, "n");

    /* a rule over the whole cluster: no chain, even for a firm on one
     * (the rule's scope, as in its grouped alerts) */
    eval(R_REMIND, "gb-1", true, 150, T0);
    alertbook_to_proto(&b, alert(R_REMIND, "gb-1"), PROTO_ALERT_FIRING, &p);
    ck_assert_uint_eq(p.chain.len, 0);
    ck_assert_uint_eq(p.severity, PROTO_SEV_CRITICAL);
    /* a firm on no chain: absent too */
    eval(R_REMIND, "ee-m", true, 150, T0);
    alertbook_to_proto(&b, alert(R_REMIND, "ee-m"), PROTO_ALERT_FIRING, &p);
    ck_assert_uint_eq(p.chain.len, 0);

    /* a cluster-level alert: no firm, no chain; a rule over any metric says "any" */
    eval(R_GROWTH, NULL, true, NAN, T0); /* a non-finite value goes out as 0 */
    alertbook_to_proto(&b, alert(R_GROWTH, NULL), PROTO_ALERT_FIRING, &p);
    assert_str(p.id, "ne-growth:new-energy");
    assert_str(p.cluster, "new-energy");
    ck_assert_uint_eq(p.firm.len, 0);
    ck_assert_uint_eq(p.chain.len, 0);
    assert_str(p.metric, "revenue");
    ck_assert_double_eq(p.observed, 0);
    ck_assert_uint_eq(p.ndetails, 1); /* the NaN "value" detail was left out */
    eval(R_REPORT, "gb-1", true, 2, T0);
    alertbook_to_proto(&b, alert(R_REPORT, "gb-1"), PROTO_ALERT_FIRING, &p);
    assert_str(p.metric, "any");
    ck_assert_uint_eq(p.severity, PROTO_SEV_INFO);

    /* and what to_proto gives must encode */
    msgpack_sbuffer sb;
    char err[PROTO_ERRLEN];
    msgpack_sbuffer_init(&sb);
    ck_assert_msg(proto_alert_encode(&p, &sb, err, sizeof err) == PROTO_OK, "%s", err);
    msgpack_sbuffer_destroy(&sb);
    /* the queued events are freed by alertbook_free, unpublished */
}
END_TEST

START_TEST(test_eval_helpers)
{
    ab_eval_t ev;
    char key[100], big[1100];

    ab_eval_reset(&ev);
    ab_eval_num(&ev, "a", 1.5);
    ab_eval_num(&ev, "nan", NAN);
    ab_eval_num(&ev, "inf", INFINITY);
    ab_eval_str(&ev, "s", "%d-%02d", 2022, 7);
    ck_assert_uint_eq(ev.ndetails, 2); /* non-finite numbers are left out */
    ck_assert_str_eq(ev.details[0].key, "a");
    ck_assert_double_eq(ev.details[0].num, 1.5);
    ck_assert(ev.details[1].is_str);
    ck_assert_str_eq(ev.details[1].str, "2022-07");

    /* a key longer than an id is cut to PROTO_MAX_ID_LEN */
    memset(key, 'k', sizeof key - 1);
    key[sizeof key - 1] = '\0';
    ab_eval_num(&ev, key, 1);
    ck_assert_uint_eq(strlen(ev.details[2].key), PROTO_MAX_ID_LEN);

    /* strings fill strbuf and are cut, never overrun it */
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    for (int i = 0; i < 5; i++)
        ab_eval_str(&ev, "big", "%s", big);
    ck_assert_uint_le(ev.strused, sizeof ev.strbuf);
    for (uint32_t i = 0; i < ev.ndetails; i++)
        if (ev.details[i].is_str)
            ck_assert_ptr_nonnull(
                memchr(ev.details[i].str, '\0',
                       sizeof ev.strbuf - (size_t)(ev.details[i].str - ev.strbuf)));

    /* at most PROTO_MAX_DETAILS */
    for (int i = 0; i < 2 * PROTO_MAX_DETAILS; i++)
        ab_eval_num(&ev, "n", i);
    ck_assert_uint_eq(ev.ndetails, PROTO_MAX_DETAILS);

    ab_eval_reset(&ev);
    ck_assert_uint_eq(ev.ndetails, 0);
    ck_assert_uint_eq(ev.strused, 0);
    ck_assert(!ev.active);
    ck_assert_str_eq(ev.summary, "");
}
END_TEST

/* Many alerts: the id table grows (from 256 slots) and every alert is found again. */
START_TEST(test_table_grows)
{
    char path[160], err[CONFIG_ERRLEN];
    registry_t *many = NULL;
    alertbook_t big;

    snprintf(path, sizeof path, "%s/many.csv", tmpdir);
    FILE *fp = fopen(path, "w");
    ck_assert_ptr_nonnull(fp);
    fputs("id,name,cluster,tier\n", fp);
    for (int i = 0; i < 300; i++)
        fprintf(fp, "f-%d,Firm %d,energy-env,member\n", i, i);
    ck_assert_int_eq(fclose(fp), 0);
    int rc = registry_load(path, cfg, &many, err, sizeof err);
    unlink(path);
    ck_assert_msg(rc == 0, "%s", err);

    alertbook_init(&big, cfg, many, &al, &sil);
    big.quiet = true;
    for (int rule = 0; rule < 4; rule++)
        for (size_t f = 0; f < many->nfirms; f++) {
            ab_eval_t ev;
            ab_eval_reset(&ev);
            ev.active = true;
            alertbook_eval(&big, rule, (int)f, &ev, T0);
        }
    ck_assert_uint_eq(big.nalerts, 4 * many->nfirms);
    ck_assert_uint_eq(big.firing, 4 * many->nfirms);
    ck_assert_uint_gt(big.mask + 1, 2 * big.nalerts - 1); /* at most half full */
    for (int rule = 0; rule < 4; rule++)
        for (size_t f = 0; f < many->nfirms; f++) {
            ab_alert_t *a = alertbook_get(&big, rule, (int)f, false);
            ck_assert_ptr_nonnull(a);
            ck_assert_int_eq(a->rule, rule);
            ck_assert_int_eq(a->firm, (int)f);
        }
    ck_assert_ptr_null(alertbook_get(&big, 0, -1, false));
    alertbook_free(&big);
    registry_destroy(&many);
}
END_TEST

/* ---- reload: alertbook_carry_over ------------------------------------------------------ */

/* Replays every record of j into book; 0 or 1 (rule or firm unknown) each. */
static void replay_known(alertbook_t *book, const journal_t *j)
{
    char err[256];
    for (size_t off = 0; off < j->used;) {
        uint32_t len;
        memcpy(&len, j->buf + off, 4);
        int rc = alertbook_replay(book, j->buf + off + 4, len, err, sizeof err);
        ck_assert_msg(rc == 0 || rc == 1, "%s", err);
        off += 4 + len;
    }
}

/* A reload that removes cod-remind and narrows cod-limit to the leading
 * tier: wp-1's cod-limit (leading) and the growth alert move to the new
 * book; wp-2's cod-limit (backbone) and wp-3's cod-remind end: published
 * as resolved and journaled so, and replaying the journal -- as a restart
 * does, under either config -- finds them resolved. */
START_TEST(test_carry_over)
{
    static journal_t j;
    char err[CONFIG_ERRLEN];
    msg_t m;
    config_t *cfg2 = NULL;
    char text[sizeof conf_text + 64];
    const char *remind = strstr(conf_text, "[rule cod-remind]");
    const char *growth = strstr(conf_text, "[rule ne-growth]");
    ck_assert(remind && growth);
    snprintf(text, sizeof text, "%.*stier = leading\n%s", (int)(remind - conf_text), conf_text,
             growth);
    ck_assert_msg(config_load("alertbook2.conf", text, NULL, &cfg2, err, sizeof err) == 0, "%s",
                  err);
    ck_assert_uint_eq(cfg2->nrules, 3);

    memset(&j, 0, sizeof j);
    b.journal = journal_cb;
    b.journal_data = &j;
    eval(R_COD, "wp-1", true, 55, T0);
    alertbook_flush(&b, T0);
    expect_alert(&m, "cod-limit:wp-1", PROTO_ALERT_FIRING, 1);
    eval(R_COD, "wp-2", true, 56, T0);
    alertbook_flush(&b, T0);
    expect_alert(&m, "cod-limit:wp-2", PROTO_ALERT_FIRING, 2);
    eval(R_REMIND, "wp-3", true, 150, T0);
    alertbook_flush(&b, T0);
    expect_alert(&m, "cod-remind:wp-3", PROTO_ALERT_FIRING, 3);
    eval(R_GROWTH, NULL, true, 3, T0);
    alertbook_flush(&b, T0);
    expect_alert(&m, "ne-growth:new-energy", PROTO_ALERT_FIRING, 1);
    ck_assert_uint_eq(j.n, 4);
    size_t before_reload = j.used;

    alertbook_t nb;
    alertbook_carry_t c;
    alertbook_init(&nb, cfg2, reg, &al, &sil);
    alertbook_carry_over(&nb, &b, T0 + MINUTE, &c);
    ck_assert_uint_eq(c.kept, 2);
    ck_assert_uint_eq(c.ended, 2);
    ck_assert_uint_eq(nb.firing, 2);
    ck_assert_ptr_eq(nb.journal, journal_cb);
    ck_assert_ptr_nonnull(alertbook_get(&nb, 0, firm("wp-1"), false)); /* cod-limit is 0 now */
    ck_assert_ptr_nonnull(alertbook_get(&nb, 1, -1, false));           /* ne-growth is 1 */
    ck_assert_ptr_null(alertbook_get(&nb, 0, firm("wp-2"), false));
    expect_alert(&m, "cod-limit:wp-2", PROTO_ALERT_RESOLVED, 4);
    ck_assert_msg(m.a.summary.len > 32 &&
                      memcmp(m.a.summary.ptr, "no longer watched after a reload", 32) == 0,
                  "summary \"%.*s\"", PROTO_STR_ARG(m.a.summary));
    ck_assert_int_eq(m.a.ts_ms, T0 + MINUTE);
    expect_alert(&m, "cod-remind:wp-3", PROTO_ALERT_RESOLVED, 5);
    expect_nothing();
    ck_assert_uint_eq(j.n, 6); /* the two that ended, journaled */
    /* the counters go on: 4 firing, 2 resolved events, 6 records */
    ck_assert_uint_eq(nb.by_state[PROTO_ALERT_FIRING], 4);
    ck_assert_uint_eq(nb.by_state[PROTO_ALERT_RESOLVED], 2);
    ck_assert_uint_eq(nb.journaled, 6);

    /* a restart under the old config: the ended ones are resolved */
    alertbook_t again;
    alertbook_init(&again, cfg, reg, &al, &sil);
    replay_known(&again, &j);
    ck_assert(!alertbook_get(&again, R_COD, firm("wp-2"), false)->firing);
    ck_assert(!alertbook_get(&again, R_REMIND, firm("wp-3"), false)->firing);
    ck_assert(alertbook_get(&again, R_COD, firm("wp-1"), false)->firing);
    ck_assert_uint_eq(again.firing, 2);
    alertbook_free(&again);
    /* ... as they were not, without the records of the reload */
    journal_t *cut = calloc(1, sizeof *cut);
    ck_assert_ptr_nonnull(cut);
    memcpy(cut->buf, j.buf, before_reload);
    cut->used = before_reload;
    alertbook_init(&again, cfg, reg, &al, &sil);
    replay_known(&again, cut);
    ck_assert(alertbook_get(&again, R_COD, firm("wp-2"), false)->firing);
    alertbook_free(&again);
    free(cut);
    /* and under the new one: wp-2's cod-limit is known but resolved */
    alertbook_init(&again, cfg2, reg, &al, &sil);
    replay_known(&again, &j);
    ck_assert(!alertbook_get(&again, 0, firm("wp-2"), false)->firing);
    ck_assert_uint_eq(again.firing, 2);
    alertbook_free(&again);

    alertbook_free(&b); /* what ended */
    alertbook_free(&nb);
    alertbook_init(&b, cfg, reg, &al, &sil); /* for the teardown */
    config_destroy(&cfg2);
}
END_TEST

static Suite *alertbook_suite(void)
{
    Suite *s = suite_create("alertbook");
    TCase *tc = tcase_create("transitions");

    tcase_add_unchecked_fixture(tc, tmpdir_make, tmpdir_remove);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_fire_publishes_firing);
    tcase_add_test(tc, test_held_until_released);
    tcase_add_test(tc, test_inactive_creates_nothing);
    tcase_add_test(tc, test_same_basis_publishes_nothing);
    tcase_add_test(tc, test_changed_basis_revisable_publishes_revised);
    tcase_add_test(tc, test_changed_basis_not_revisable_publishes_nothing);
    tcase_add_test(tc, test_resolve_publishes_resolved);
    tcase_add_test(tc, test_fire_and_resolve_in_one_pass);
    tcase_add_test(tc, test_flapping);
    tcase_add_test(tc, test_flapping_settles_resolved);
    tcase_add_test(tc, test_slow_transitions_do_not_flap);
    tcase_add_test(tc, test_reminder);
    tcase_add_test(tc, test_reminder_after_revision);
    tcase_add_test(tc, test_silenced_firm);
    tcase_add_test(tc, test_silenced_reminders);
    tcase_add_test(tc, test_silenced_cluster);
    tcase_add_test(tc, test_group);
    tcase_add_test(tc, test_group_many);
    tcase_add_test(tc, test_group_after_silences);
    tcase_add_test(tc, test_group_per_state);
    tcase_add_test(tc, test_quiet);
    tcase_add_test(tc, test_seq_per_cluster);
    tcase_add_test(tc, test_seq_persists);
    tcase_add_test(tc, test_seq_from_global_file);
    tcase_add_test(tc, test_seq_file_damaged);
    tcase_add_test(tc, test_seqs_snapshot);
    tcase_add_test(tc, test_heartbeat_per_cluster);
    tcase_add_test(tc, test_to_proto);
    tcase_add_test(tc, test_eval_helpers);
    tcase_add_test(tc, test_table_grows);
    tcase_add_test(tc, test_pack_round_trip);
    tcase_add_test(tc, test_unpack_malformed);
    tcase_add_test(tc, test_journal_replays_to_same_book);
    tcase_add_test(tc, test_replay_raises_seq);
    tcase_add_test(tc, test_replay_malformed);
    tcase_add_test(tc, test_recovered_publishes_only_changes);
    tcase_add_test(tc, test_journal_failure_counted);
    tcase_add_test(tc, test_journal_many_same_records);
    tcase_add_test(tc, test_journal_many_failure_counted);
    tcase_add_test(tc, test_carry_over);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(alertbook_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
