/*
 * clustermon-sub.c -- prints clustermond's alerts as JSON lines.
 *
 * A ZeroMQ SUB socket on the daemon's alert publisher. Messages are two
 * frames, [topic][alert], with topic "alert.<cluster>.<severity>". Filters
 * are turned into subscriptions so the publisher drops what we do not want,
 * and are applied again after decoding, because a topic prefix is not an
 * exact match ("alert.eu." also matches the cluster "eu.west"). Every alert
 * that passes is one compact JSON object on one line of stdout (see
 * agents/alertjson.h), flushed at once so a pipe sees it immediately.
 *
 * Bad frames from the publisher are reported on stderr and counted; they
 * never stop the program.
 *
 * Unless --no-snapshot is given it keeps a copy of the daemon's firing
 * alerts with the Clone pattern (agents/clone.h): it subscribes to every
 * alert (filters apply after decoding, so sequence numbers stay contiguous),
 * takes a snapshot over the control socket, then applies newer updates.
 * Sequence numbers count per cluster, and each cluster has its own
 * heartbeat: a gap in one cluster's numbers, that cluster's heartbeat
 * announcing a number it has not seen, or a grouped alert (which stands for
 * alerts it does not list) makes it take a new snapshot, saying so on
 * stderr. With -v it also says the first heartbeat it hears of each cluster.
 * Snapshot alerts are printed with "snapshot": true.
 *
 * --exec runs a command per alert event (agents/execq.h), at least once and
 * never twice (agents/handoff.h): an event counts as delivered once the
 * command exits 0 for it; a failed one is retried with exponential backoff,
 * then given up; the state file keeps what was delivered and what is
 * pending, so a restart runs the pending events and whatever the snapshot
 * shows was missed, and nothing twice (except an event whose command was
 * running when the subscriber was killed).
 *
 * With --server-key (or $CLUSTERMON_SERVER_KEY) both sockets, the publisher's
 * and the control one, are CURVE clients (agents/clientkey.h).
 *
 * An HA pair (-e A -C CA -e B -C CB): one SUB socket and one Clone copy per
 * daemon, each with its own seqs, gap detection and resyncs, polled
 * together. Both daemons publish the same events under different seqs;
 * each event is printed once, the first copy to arrive, by the key that is
 * the same on both (id, state, n, rn: agents/dedupe.h), which the state
 * file keeps across restarts.
 *
 * Exit status: 0 normally (--count reached, --timeout expired, SIGINT or
 * SIGTERM); 1 if --count was not reached before --timeout, or on an error;
 * 2 on a usage error.
 */
#include <err.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <zmq.h>

#include "agents/alertjson.h"
#include "agents/args.h"
#include "agents/clientkey.h"
#include "agents/clone.h"
#include "agents/dedupe.h"
#include "agents/handoff.h"
#include "agents/execq.h"
#include "proto/clock.h"
#include "proto/fileio.h"
#include "proto/proto.h"

#define PROG "clustermon-sub"

#define DEFAULT_ENDPOINT "tcp://127.0.0.1:7602"
#define DEFAULT_CONTROL "tcp://127.0.0.1:7603"
#define SNAPSHOT_TIMEOUT_MS 5000
#define MAX_CLUSTERS 64
#define POLL_STEP_MS 250 /* how often a pending signal is noticed at worst */
#define TOPIC_MAX (sizeof("alert..") + PROTO_MAX_ID_LEN + sizeof("critical"))
#define SOCKET_RCVHWM 10000
#define MAX_SIDES 2 /* an HA pair */

enum { EXIT_FAIL = 1, EXIT_USAGE = 2 };

typedef struct {
    const char *endpoint;             /* endpoints[0] */
    const char *endpoints[MAX_SIDES]; /* -e: one daemon, or the two of an HA pair */
    unsigned nendpoints;
    const char *controls[MAX_SIDES]; /* -C: the i-th goes with the i-th -e */
    unsigned ncontrols;
    const char *clusters[MAX_CLUSTERS];
    unsigned nclusters;
    bool severity[PROTO_SEV_COUNT]; /* all false: every severity */
    bool any_severity;
    long count;      /* 0: unlimited */
    long timeout_ms; /* 0: none */
    bool verbose;
    const char *control;    /* the daemon's control endpoint, for snapshots */
    bool snapshot;          /* the Clone pattern (default) */
    const char *state_file; /* write the firing set here after each change */
    const char *exec_cmd;
    long exec_jobs, exec_timeout_ms;
    long retries, retry_delay_ms, retry_max_delay_ms;
    long hwm;
    const char *server_key_arg, *key_arg; /* NULL: from the environment */
    clientkey_t key;                      /* CURVE, for both sockets */
} options_t;

typedef struct {
    uint64_t printed, malformed, filtered, old, heartbeats, copies;
} counters_t;

/* One daemon's stream: its socket and the copy of its firing alerts. */
typedef struct {
    const char *endpoint, *control; /* borrowed from the options */
    void *sock;
    clone_t clone;
    clone_seq_t *pre; /* the seqs before this resync: the floor */
    size_t npre;
    bool snapshot_failed_said;
    int64_t snapshot_failed_ms; /* a failed snapshot is not retried within a second */
    char heard[MAX_CLUSTERS][PROTO_MAX_ID_LEN + 1]; /* clusters whose heartbeat -v said */
    unsigned nheard;
} side_t;

/* Everything the receive loop works on. */
typedef struct {
    const options_t *opt;
    void *ctx;
    counters_t cnt;
    side_t side[MAX_SIDES];
    unsigned nsides;
    side_t *cur; /* the side whose message or snapshot is being handled */
    bool ha;     /* two sides: events are deduplicated */
    dedupe_t seen;
    bool unnumbered_said;
    execq_t exec;
    bool exec_on;
    handoff_t dl;               /* --exec's bookkeeping */
    bool dirty;                 /* the state file is behind */
    const proto_alert_t *group; /* the grouped alert this resync is for, if any */
} sub_t;

static volatile sig_atomic_t stop_signal;

/* warnx (err.h): "PROG: message" on stderr, PROG being the name the program
 * was run by (program_invocation_short_name). */
static void on_signal(int sig)
{
    stop_signal = sig;
}

/* Shows a topic frame in a message: printable ASCII, at most 80 bytes. */
static const char *show_topic(const void *data, size_t len, char *buf, size_t bufsize)
{
    const unsigned char *p = data;
    size_t o = 0;

    for (size_t i = 0; i < len && i < 80 && o + 2 < bufsize; i++)
        buf[o++] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '?';
    buf[o] = '\0';
    return buf;
}

static bool wanted(const options_t *opt, const proto_alert_t *a)
{
    bool cluster_ok = opt->nclusters == 0;

    for (unsigned i = 0; i < opt->nclusters && !cluster_ok; i++)
        cluster_ok = proto_str_eq(a->cluster, opt->clusters[i]);
    return cluster_ok &&
           (!opt->any_severity || (a->severity < PROTO_SEV_COUNT && opt->severity[a->severity]));
}

/* wanted() for an alert known only as JSON (a synthesized event). */
static bool keep_json(const json_t *j, void *data)
{
    const options_t *opt = ((const sub_t *)data)->opt;
    const char *cluster = json_string_value(json_object_get(j, "cluster"));
    const char *sev = json_string_value(json_object_get(j, "severity"));
    bool cluster_ok = opt->nclusters == 0;
    for (unsigned i = 0; i < opt->nclusters && !cluster_ok && cluster; i++)
        cluster_ok = strcmp(cluster, opt->clusters[i]) == 0;
    int sv = sev ? proto_severity_from_name(proto_str(sev)) : -1;
    return cluster_ok && (!opt->any_severity || (sv >= 0 && opt->severity[sv]));
}

/* Prints one alert as a JSON line (and queues live ones for --exec).
 * Returns 0, 1 if it was the other daemon's copy of an event already
 * printed (HA pair: nothing printed), or -1 if stdout failed. */
static int print_alert(sub_t *s, const proto_alert_t *a, bool from_snapshot)
{
    if (s->ha) {
        bool unnumbered;
        bool fresh = dedupe_take(&s->seen, a, &unnumbered);
        if (unnumbered && !s->unnumbered_said) {
            warnx("%s publishes alerts without \"n\" (an older daemon): its events cannot be "
                  "told from the other side's copies and may be printed twice",
                  s->cur->endpoint);
            s->unnumbered_said = true;
        }
        if (!fresh) {
            s->cnt.copies++;
            return 1;
        }
        s->dirty = true;
    }
    json_t *j = alertjson_from_alert(a);
    char *text;
    int rc = 0;

    if (j == NULL || (from_snapshot && json_object_set_new(j, "snapshot", json_true()) != 0) ||
        (text = json_dumps(j, ALERTJSON_DUMP_FLAGS)) == NULL) {
        json_decref(j);
        warnx("out of memory");
        return -1;
    }
    json_decref(j);
    if (fputs(text, stdout) == EOF || fputc('\n', stdout) == EOF || fflush(stdout) != 0) {
        warnx("stdout: %s", strerror(errno));
        rc = -1;
    }
    free(text);
    if (rc == 0 && s->exec_on && !from_snapshot) {
        json_t *ev = alertjson_from_alert(a);
        if (ev == NULL) {
            warnx("out of memory");
            return -1;
        }
        handoff_live(&s->dl, a, ev);
        s->dirty = true;
    }
    return rc;
}

/* Marks the state file behind; flush_state writes it. */
static void save_state(sub_t *s)
{
    s->dirty = true;
}

/* Writes the state file if it is behind: the copy and, with --exec, the
 * delivery record, atomically, 0600, fsynced. A failure is said and
 * retried at the next change. */
static void flush_state(sub_t *s)
{
    char err[512];
    if (!s->dirty || !s->opt->state_file)
        return;
    json_t *root = clone_state_json(&s->side[0].clone);
    if (s->ha && root != NULL) {
        /* the first side's copy stays where a single daemon's is; the
         * second's under "side_b"; what was printed under "delivered_keys" */
        json_object_set_new(root, "side_b", clone_state_json(&s->side[1].clone));
        json_object_set_new(root, "delivered_keys", dedupe_json(&s->seen));
    }
    if (s->exec_on)
        handoff_save(&s->dl, root);
    char *text = json_dumps(root, JSON_INDENT(1) | JSON_SORT_KEYS);
    json_decref(root);
    if (text == NULL) {
        warnx("--state-file %s: out of memory", s->opt->state_file);
        return;
    }
    if (fileio_write_atomic(s->opt->state_file, text, strlen(text), 0600, err, sizeof err) != 0)
        warnx("--state-file: %s", err);
    else
        s->dirty = false;
    free(text);
}

/* The seq of cluster this subscriber had processed before the snapshot now
 * being taken: its copy's, else the state file's. */
static uint64_t floor_of(const sub_t *s, proto_str_t cluster)
{
    for (size_t i = 0; i < s->cur->npre; i++)
        if (proto_str_eq(cluster, s->cur->pre[i].cluster))
            return s->cur->pre[i].seq;
    char cl[PROTO_MAX_ID_LEN + 1];
    snprintf(cl, sizeof cl, "%.*s", PROTO_STR_ARG(cluster));
    return handoff_floor(&s->dl, cl);
}

static void snapshot_alert(const proto_alert_t *a, void *data)
{
    sub_t *s = data;
    if (!wanted(s->opt, a))
        return;
    if (print_alert(s, a, true) == 0)
        s->cnt.printed++;
    if (!s->exec_on)
        return;
    json_t *j = alertjson_from_alert(a);
    if (j == NULL) {
        warnx("out of memory");
        return;
    }
    if (s->group && a->cluster.len == s->group->cluster.len &&
        memcmp(a->cluster.ptr, s->group->cluster.ptr, a->cluster.len) == 0 &&
        a->seq == s->group->seq) {
        handoff_covered(&s->dl, a, j); /* the grouped alert tells of it */
        return;
    }
    uint64_t floor = floor_of(s, a->cluster);
    if (floor > clone_seq(&s->cur->clone, a->cluster))
        floor = 0; /* the daemon's seq went back: said in resync() */
    handoff_snapshot_alert(&s->dl, a, floor, j);
}

static void say_seqs(const clone_t *c, char *buf, size_t size)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < c->nseqs && off < size; i++)
        off += (size_t)snprintf(buf + off, size - off, "%s%s %" PRIu64, i ? ", " : "",
                                c->seqs[i].cluster, c->seqs[i].seq);
}

/* Takes a snapshot; returns 0, or -1 (said once, then stream-only; retried
 * at most once a second). */
static int resync(sub_t *s, const char *why)
{
    char err[256];
    side_t *sd = s->cur;
    int64_t now = clock_monotonic_ms();
    if (sd->snapshot_failed_ms && now - sd->snapshot_failed_ms < 1000)
        return -1;
    if (why)
        warnx("%s: resynchronising from %s", why, sd->control);
    sd->npre = sd->clone.nseqs;
    sd->pre = malloc((sd->npre ? sd->npre : 1) * sizeof *sd->pre);
    if (sd->pre == NULL)
        abort();
    if (sd->npre)
        memcpy(sd->pre, sd->clone.seqs, sd->npre * sizeof *sd->pre);
    uint64_t queued0 = s->dl.from_snapshot;
    int src = clone_snapshot(&sd->clone, s->ctx, sd->control, &s->opt->key, SNAPSHOT_TIMEOUT_MS,
                             snapshot_alert, s, err, sizeof err);
    if (src == 0 && s->exec_on) {
        for (size_t i = 0; i < sd->clone.nseqs; i++) {
            uint64_t floor = floor_of(s, proto_str(sd->clone.seqs[i].cluster));
            if (floor > sd->clone.seqs[i].seq) {
                warnx(
                    "snapshot: %s is at seq %" PRIu64 ", below the %" PRIu64
                    " already processed: the daemon lost its alert seqs; taking its alerts as new",
                    sd->clone.seqs[i].cluster, sd->clone.seqs[i].seq, floor);
                handoff_floor_reset(&s->dl, sd->clone.seqs[i].cluster);
            }
        }
        bool group_resolved = s->group && s->group->state == PROTO_ALERT_RESOLVED;
        char gcl[PROTO_MAX_ID_LEN + 1] = "", grule[PROTO_MAX_ID_LEN + 1] = "";
        if (group_resolved) {
            snprintf(gcl, sizeof gcl, "%.*s", PROTO_STR_ARG(s->group->cluster));
            snprintf(grule, sizeof grule, "%.*s", PROTO_STR_ARG(s->group->rule));
        }
        size_t resolved = handoff_snapshot_end(&s->dl, &sd->clone, group_resolved ? gcl : NULL,
                                               group_resolved ? grule : NULL, keep_json, s);
        uint64_t fresh = s->dl.from_snapshot - queued0;
        if (fresh || resolved)
            warnx("snapshot: --exec gets %" PRIu64 " alerts it was not given yet and %zu resolved "
                  "meanwhile (synthesized: \"synthesized\": true)",
                  fresh, resolved);
        s->dirty = true;
    }
    free(sd->pre);
    sd->pre = NULL;
    sd->npre = 0;
    if (src != 0) {
        if (!sd->snapshot_failed_said)
            warnx("snapshot: %s; going on with the live stream only", err);
        sd->snapshot_failed_said = true;
        sd->snapshot_failed_ms = clock_monotonic_ms();
        return -1;
    }
    sd->snapshot_failed_ms = 0;
    if (s->opt->verbose) {
        char seqs[1024];
        say_seqs(&sd->clone, seqs, sizeof seqs);
        if (s->ha)
            warnx("snapshot from %s: %zu firing alerts, current to seqs {%s}", sd->control,
                  sd->clone.n, seqs);
        else
            warnx("snapshot: %zu firing alerts, current to seqs {%s}", sd->clone.n, seqs);
    }
    save_state(s);
    return 0;
}

/* A heartbeat topic: "alert.<cluster>.heartbeat"; the cluster must be the body's. */
static bool is_heartbeat_topic(const void *data, size_t len)
{
    static const char tail[] = ".heartbeat";
    return len > 6 + sizeof tail - 1 && memcmp(data, "alert.", 6) == 0 &&
           memcmp((const char *)data + len - (sizeof tail - 1), tail, sizeof tail - 1) == 0;
}

static void handle_heartbeat(sub_t *s, zmq_msg_t *topic, zmq_msg_t *body, const char *shown)
{
    proto_heartbeat_t hb;
    char err[PROTO_ERRLEN], expect[TOPIC_MAX + 16];

    if (proto_heartbeat_decode(zmq_msg_data(body), zmq_msg_size(body), &hb, err, sizeof err) < 0) {
        s->cnt.malformed++;
        warnx("malformed heartbeat (topic '%s'): %s", shown, err);
        return;
    }
    int tlen = proto_heartbeat_topic(hb.cluster, expect, sizeof expect);
    if (tlen < 0 || (size_t)tlen != zmq_msg_size(topic) ||
        memcmp(expect, zmq_msg_data(topic), (size_t)tlen) != 0) {
        s->cnt.malformed++;
        warnx("malformed heartbeat (topic '%s'): topic does not match its cluster", shown);
        return;
    }
    s->cnt.heartbeats++;
    side_t *sd = s->cur;
    bool heard = false;
    for (unsigned i = 0; i < sd->nheard && !heard; i++)
        heard = proto_str_eq(hb.cluster, sd->heard[i]);
    if (!heard && sd->nheard < MAX_CLUSTERS) {
        memcpy(sd->heard[sd->nheard], hb.cluster.ptr, hb.cluster.len);
        sd->heard[sd->nheard++][hb.cluster.len] = '\0';
        if (s->opt->verbose)
            warnx("heartbeat: cluster %.*s at seq %" PRIu64 " (the first heard from it)",
                  PROTO_STR_ARG(hb.cluster), hb.seq);
    }
    if (!s->opt->snapshot)
        return;
    bool known = false;
    for (size_t i = 0; i < sd->clone.nseqs && !known; i++)
        known = proto_str_eq(hb.cluster, sd->clone.seqs[i].cluster);
    uint64_t have = clone_seq(&sd->clone, hb.cluster);
    if (clone_heartbeat(&sd->clone, hb.cluster, hb.seq)) {
        /* the cluster's latest alerts never reached us: no later alert will say so */
        char why[160];
        sd->clone.gaps++;
        snprintf(why, sizeof why,
                 "gap: heartbeat says %.*s is at seq %" PRIu64 ", we have %" PRIu64,
                 PROTO_STR_ARG(hb.cluster), hb.seq, have);
        resync(s, why);
    } else if (!known) {
        save_state(s);
    }
}

/*
 * Handles one message from the socket (all its frames). Returns 1 if an
 * alert was printed, 0 if not, -1 on a fatal error.
 */
static int handle_message(sub_t *s)
{
    void *sock = s->cur->sock;
    clone_t *cl = &s->cur->clone;
    const options_t *opt = s->opt;
    counters_t *cnt = &s->cnt;
    zmq_msg_t topic, body;
    proto_alert_t a;
    char err[PROTO_ERRLEN], shown[96], expect[TOPIC_MAX];
    int nframes = 0, rc = 0, more;

    zmq_msg_init(&topic);
    zmq_msg_init(&body);
    /* Keep the first two frames; drain any others so the next read starts clean. */
    do {
        zmq_msg_t *m = nframes == 0 ? &topic : &body;
        zmq_msg_t extra;

        if (nframes >= 2) {
            zmq_msg_init(&extra);
            m = &extra;
        }
        if (zmq_msg_recv(m, sock, ZMQ_DONTWAIT) < 0) {
            if (nframes >= 2)
                zmq_msg_close(m);
            if (errno == EAGAIN || errno == EINTR) {
                rc = nframes == 0 ? -2 : 0; /* -2: nothing to read */
                goto out;
            }
            warnx("receive from %s: %s", s->cur->endpoint, zmq_strerror(errno));
            rc = -1;
            goto out;
        }
        more = zmq_msg_more(m);
        if (nframes >= 2)
            zmq_msg_close(m);
        nframes++;
    } while (more);

    show_topic(zmq_msg_data(&topic), zmq_msg_size(&topic), shown, sizeof shown);
    if (nframes == 2 && is_heartbeat_topic(zmq_msg_data(&topic), zmq_msg_size(&topic))) {
        handle_heartbeat(s, &topic, &body, shown);
        goto out;
    }
    if (nframes != 2) {
        cnt->malformed++;
        warnx("malformed alert (topic '%s'): %d frames, expected [topic][alert]", shown, nframes);
        goto out;
    }
    if (proto_alert_decode(zmq_msg_data(&body), zmq_msg_size(&body), &a, err, sizeof err) < 0) {
        cnt->malformed++;
        warnx("malformed alert (topic '%s'): %s", shown, err);
        goto out;
    }
    int tlen = proto_alert_topic(a.cluster, (proto_severity_t)a.severity, expect, sizeof expect);
    if (tlen < 0 || (size_t)tlen != zmq_msg_size(&topic) ||
        memcmp(expect, zmq_msg_data(&topic), (size_t)tlen) != 0) {
        cnt->malformed++;
        warnx("malformed alert (topic '%s'): topic does not match the alert's cluster and severity "
              "(expected '%s')",
              shown, tlen < 0 ? "?" : expect);
        goto out;
    }
    if (opt->snapshot) {
        uint64_t have = clone_seq(cl, a.cluster);
        clone_verdict_t v = clone_check(cl, a.cluster, a.seq);
        if (v == CLONE_OLD) {
            cnt->old++; /* the snapshot had it already */
            goto out;
        }
        if (v == CLONE_GAP || a.count > 0) {
            char why[160];
            if (v == CLONE_GAP) {
                cl->gaps++;
                snprintf(why, sizeof why,
                         "gap: expected %.*s seq %" PRIu64 ", got %" PRIu64 " (%" PRIu64
                         " alerts missed)",
                         PROTO_STR_ARG(a.cluster), have + 1, a.seq, a.seq - have - 1);
            } else {
                snprintf(why, sizeof why, "grouped alert %.*s stands for %u alerts", (int)a.id.len,
                         a.id.ptr, a.count);
            }
            if (a.count > 0)
                s->group = &a;
            int synced = resync(s, why);
            s->group = NULL;
            if (synced == 0 && a.seq <= clone_seq(cl, a.cluster)) {
                if (a.count > 0 && wanted(opt, &a) && print_alert(s, &a, false) == 0)
                    cnt->printed++; /* still say it happened, once */
                goto out;
            }
        }
        if (a.count == 0)
            clone_apply(cl, &a);
        else
            clone_advance(cl, a.cluster, a.seq);
        save_state(s);
    }
    if (!wanted(opt, &a)) {
        cnt->filtered++;
        goto out;
    }
    int prc = print_alert(s, &a, false);
    if (prc < 0) {
        rc = -1;
        goto out;
    }
    if (prc == 1)
        goto out; /* the other daemon's copy */
    cnt->printed++;
    rc = 1;
out:
    zmq_msg_close(&topic);
    zmq_msg_close(&body);
    return rc;
}

/* Subscribes to the topics the filters need. Returns 0 or -1. */
static int subscribe(void *sock, const options_t *opt)
{
    char topic[TOPIC_MAX];
    int n;

    if (opt->nclusters == 0 || opt->snapshot) /* Clone needs every seq */
        return zmq_setsockopt(sock, ZMQ_SUBSCRIBE, "alert.", 6);
    for (unsigned i = 0; i < opt->nclusters; i++) {
        if (!opt->any_severity) {
            n = snprintf(topic, sizeof topic, "alert.%s.", opt->clusters[i]);
            if (zmq_setsockopt(sock, ZMQ_SUBSCRIBE, topic, (size_t)n) != 0)
                return -1;
            continue;
        }
        for (int s = 0; s < PROTO_SEV_COUNT; s++) {
            if (!opt->severity[s])
                continue;
            n = proto_alert_topic(proto_str(opt->clusters[i]), (proto_severity_t)s, topic,
                                  sizeof topic);
            if (n < 0 || zmq_setsockopt(sock, ZMQ_SUBSCRIBE, topic, (size_t)n) != 0)
                return -1;
        }
    }
    return 0;
}

/* execq: a command ended. Records the outcome and says what happens next. */
static void exec_done(uint64_t tag, bool ok, void *data)
{
    sub_t *s = data;
    char id[PROTO_MAX_ALERT_ID_LEN + 1] = "";
    int64_t delay = 0;
    unsigned failures = 0;
    switch (handoff_done(&s->dl, tag, ok, clock_monotonic_ms(), &delay, id, sizeof id, &failures)) {
    case HANDOFF_OK:
        if (failures > 0)
            warnx("--exec: %s delivered after %u failed runs", id, failures);
        break;
    case HANDOFF_RETRY:
        warnx("--exec: %s: run %u failed; retry %u of %ld in %" PRId64 " ms", id, failures,
              failures, s->opt->retries, delay);
        break;
    case HANDOFF_GAVE_UP:
        warnx("--exec: %s: giving up after %u failed runs (--retries %ld): this event is dropped",
              id, failures, s->opt->retries);
        break;
    case HANDOFF_UNKNOWN: break;
    }
    s->dirty = true;
}

/* Reaps finished commands and starts the events that may run now. */
static void exec_pump(sub_t *s)
{
    const handoff_event_t *ev;
    execq_poll(&s->exec, exec_done, s);
    while (execq_free_slots(&s->exec) > 0 &&
           (ev = handoff_next(&s->dl, clock_monotonic_ms())) != NULL) {
        uint64_t tag = ev->tag;
        char *text = json_dumps(ev->r.alert, ALERTJSON_DUMP_FLAGS);
        if (text == NULL) {
            exec_done(tag, false, s);
            continue;
        }
        size_t n = strlen(text);
        text[n] = '\n'; /* json_dumps leaves room for its NUL: reuse it */
        if (execq_run(&s->exec, text, n + 1, tag, exec_done, s) != 0)
            exec_done(tag, false, s);
        free(text);
    }
}

/* Reads --state-file's delivery record, if the file exists. Returns 0, or
 * -1 having said why (a damaged file is not silently replaced). */
static int load_state(sub_t *s)
{
    const char *path = s->opt->state_file;
    json_error_t je;
    char err[512];
    if (!path || !(s->exec_on || s->ha))
        return 0;
    FILE *fp = fopen(path, "r");
    if (fp == NULL) {
        if (errno == ENOENT)
            return 0; /* the first start */
        warnx("--state-file %s: %s", path, strerror(errno));
        return -1;
    }
    json_t *root = json_loadf(fp, 0, &je);
    fclose(fp);
    if (root == NULL) {
        warnx("--state-file %s:%d: %s (move it aside to start afresh)", path, je.line, je.text);
        return -1;
    }
    int rc = 0;
    if (s->exec_on)
        rc = handoff_load(&s->dl, root, err, sizeof err);
    json_t *keys = json_object_get(root, "delivered_keys");
    if (rc == 0 && s->ha && keys != NULL)
        rc = dedupe_load(&s->seen, keys, err, sizeof err);
    json_decref(root);
    if (rc != 0) {
        warnx("--state-file %s: %s (move it aside to start afresh)", path, err);
        return -1;
    }
    if (s->ha && s->opt->verbose)
        warnx("--state-file %s: %zu alerts' last delivered events known", path, s->seen.n);
    if (handoff_pending(&s->dl) > 0)
        warnx("--exec: %zu events pending from the last run: running them first",
              handoff_pending(&s->dl));
    return 0;
}

/* Opens side sd's SUB socket on its endpoint. Returns 0 or an exit status. */
static int side_open(sub_t *s, side_t *sd)
{
    int linger = 0, hwm = (int)s->opt->hwm;
    int64_t maxmsg = PROTO_MAX_MSG_SIZE;
    char err[512];

    if ((sd->sock = zmq_socket(s->ctx, ZMQ_SUB)) == NULL) {
        warnx("zmq: %s", zmq_strerror(errno));
        return EXIT_FAIL;
    }
    if (zmq_setsockopt(sd->sock, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_setsockopt(sd->sock, ZMQ_RCVHWM, &hwm, sizeof hwm) != 0 ||
        zmq_setsockopt(sd->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) != 0 ||
        subscribe(sd->sock, s->opt) != 0) {
        warnx("zmq_setsockopt: %s", zmq_strerror(errno));
        return EXIT_FAIL;
    }
    if (clientkey_setup(&s->opt->key, sd->sock, err, sizeof err) != 0) {
        warnx("%s: %s", sd->endpoint, err);
        return EXIT_FAIL;
    }
    if (zmq_connect(sd->sock, sd->endpoint) != 0) {
        warnx("cannot connect to %s: %s", sd->endpoint, zmq_strerror(errno));
        return EXIT_USAGE;
    }
    return 0;
}

static int run(const options_t *opt)
{
    sub_t s = {.opt = opt};
    int status = 0;
    int64_t deadline = opt->timeout_ms > 0 ? clock_monotonic_ms() + opt->timeout_ms : 0;
    const char *why = NULL; /* why a normal exit happened, for the summary */
    bool loaded = false;    /* the state file was read: it may be written */

    s.nsides = opt->nendpoints;
    s.ha = s.nsides > 1;
    s.cur = &s.side[0];
    for (unsigned i = 0; i < s.nsides; i++) {
        s.side[i].endpoint = opt->endpoints[i];
        s.side[i].control = opt->controls[i];
        clone_init(&s.side[i].clone);
    }
    dedupe_init(&s.seen);
    handoff_init(&s.dl, (unsigned)opt->retries, opt->retry_delay_ms, opt->retry_max_delay_ms);
    s.exec_on = opt->exec_cmd != NULL;
    if (load_state(&s) != 0) {
        s.exec_on = false; /* nothing started */
        status = EXIT_FAIL;
        goto done;
    }
    loaded = true;
    if (opt->exec_cmd &&
        execq_init(&s.exec, opt->exec_cmd, (int)opt->exec_jobs, opt->exec_timeout_ms) != 0) {
        warnx("out of memory");
        s.exec_on = false;
        status = EXIT_FAIL;
        goto done;
    }
    s.ctx = zmq_ctx_new();
    if (s.ctx == NULL) {
        warnx("zmq: %s", zmq_strerror(errno));
        status = EXIT_FAIL;
        goto done;
    }
    for (unsigned i = 0; i < s.nsides; i++)
        if ((status = side_open(&s, &s.side[i])) != 0)
            goto done;
    /* Clone: subscribed first, so nothing published after the snapshot is
     * missed; what the subscription did not catch yet shows up as a gap. */
    for (unsigned i = 0; opt->snapshot && i < s.nsides; i++) {
        s.cur = &s.side[i];
        resync(&s, NULL);
    }

    while (!stop_signal) {
        zmq_pollitem_t items[MAX_SIDES];
        long step = POLL_STEP_MS;

        for (unsigned i = 0; i < s.nsides; i++)
            items[i] = (zmq_pollitem_t){.socket = s.side[i].sock, .events = ZMQ_POLLIN};
        if (s.exec_on) {
            exec_pump(&s);
            /* a finished command is noticed within 20 ms; a retry when due */
            int64_t wait = handoff_wait_ms(&s.dl, clock_monotonic_ms());
            if (execq_running(&s.exec) > 0 && step > 20)
                step = 20;
            if (wait >= 0 && wait < step)
                step = wait > 0 ? (long)wait : 1;
        }
        flush_state(&s);
        if (deadline != 0) {
            int64_t left = deadline - clock_monotonic_ms();
            if (left <= 0) {
                why = "timeout";
                if (opt->count > 0)
                    status = EXIT_FAIL; /* fewer alerts than asked for */
                break;
            }
            if (left < step)
                step = (long)left;
        }
        int rc = zmq_poll(items, (int)s.nsides, step);
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            warnx("zmq_poll: %s", zmq_strerror(errno));
            status = EXIT_FAIL;
            break;
        }
        /* Drain what is queued on each side, a message at a time, until its
         * queue is empty. */
        for (unsigned i = 0; rc > 0 && i < s.nsides; i++) {
            int mrc = 1;
            s.cur = &s.side[i];
            while (mrc > 0 && !stop_signal) {
                mrc = handle_message(&s);
                if (mrc == -1) {
                    status = EXIT_FAIL;
                    goto done;
                }
                if (mrc == -2)
                    break;
                if (opt->count > 0 && s.cnt.printed >= (uint64_t)opt->count)
                    goto done;
                mrc = 1;
            }
        }
    }
    if (stop_signal)
        why = "interrupted";
done:
    if (s.exec_on) {
        /* What may run now runs before the exit (the last alerts of a
         * --count run); what waits for a retry stays pending in the state
         * file, for the next start. */
        for (;;) {
            exec_pump(&s);
            flush_state(&s);
            if (execq_running(&s.exec) == 0)
                break;
            struct timespec ts = {0, 10 * 1000000};
            nanosleep(&ts, NULL);
        }
        execq_finish(&s.exec, exec_done, &s);
    }
    if (loaded) { /* a damaged state file is never overwritten */
        save_state(&s);
        flush_state(&s);
    }
    uint64_t gaps = 0, snaps = 0;
    for (unsigned i = 0; i < s.nsides; i++) {
        gaps += s.side[i].clone.gaps;
        snaps += s.side[i].clone.snapshots;
    }
    if (why != NULL || opt->verbose) {
        warnx("%s: %" PRIu64 " alerts received (%" PRIu64 " malformed, %" PRIu64
              " filtered out, %" PRIu64 " already in a snapshot); %" PRIu64 " heartbeats, %" PRIu64
              " gaps, %" PRIu64 " snapshots",
              why != NULL ? why : "done", s.cnt.printed, s.cnt.malformed, s.cnt.filtered, s.cnt.old,
              s.cnt.heartbeats, gaps, snaps);
        if (s.ha)
            warnx("HA pair: %" PRIu64 " events printed once, %" PRIu64
                  " copies from the other daemon dropped",
                  s.cnt.printed, s.cnt.copies);
        if (s.exec_on)
            warnx("--exec: %" PRIu64 " run, %" PRIu64 " ok, %" PRIu64 " failed (%" PRIu64
                  " timed out); %" PRIu64 " events delivered, %" PRIu64 " given up, %zu pending%s; "
                  "%" PRIu64 " from snapshots, %" PRIu64 " resolved events synthesized",
                  s.exec.started, s.exec.ok, s.exec.failed, s.exec.timed_out, s.dl.delivered,
                  s.dl.given_up, handoff_pending(&s.dl),
                  handoff_pending(&s.dl) && opt->state_file
                      ? " (kept in the state file for the next start)"
                  : handoff_pending(&s.dl) ? " (lost: no --state-file)"
                                           : "",
                  s.dl.from_snapshot, s.dl.synthesized);
    }
    handoff_free(&s.dl);
    dedupe_free(&s.seen);
    for (unsigned i = 0; i < s.nsides; i++) {
        clone_free(&s.side[i].clone);
        if (s.side[i].sock != NULL)
            zmq_close(s.side[i].sock);
    }
    if (s.ctx != NULL)
        zmq_ctx_term(s.ctx);
    return status;
}

/* ---- command line ------------------------------------------------------------ */

static void usage(FILE *fp)
{
    fprintf(fp, "usage: " PROG " [options]\n"
                "Prints clustermond's alerts, one JSON object per line.\n"
                "\n"
                "  -e, --endpoint URL     alert publisher (default " DEFAULT_ENDPOINT ");\n"
                "                         twice for an HA pair: each event printed once\n"
                "  -c, --cluster C        only alerts of cluster C (may repeat)\n"
                "  -s, --severity S       only info, warning or critical (may repeat)\n"
                "  -n, --count N          exit after N alerts\n"
                "  -t, --timeout MS       exit after MS milliseconds in all\n"
                "  -C, --control URL      daemon control endpoint for snapshots (an HA pair:\n"
                "                         one per -e, in the same order)\n"
                "                         (default $CLUSTERMON_CONTROL or " DEFAULT_CONTROL ")\n"
                "      --no-snapshot      live stream only: no snapshot, no resync on gaps\n"
                "      --state-file FILE  keep the current firing set in FILE (JSON)\n"
                "  -x, --exec CMD         run CMD (with /bin/sh -c) once per alert event,\n"
                "                         the alert as JSON on its stdin; with --state-file,\n"
                "                         at least once and never twice across restarts\n"
                "      --exec-jobs N      at most N commands at once (default 4)\n"
                "      --exec-timeout MS  kill a command after MS (default 10000)\n"
                "      --retries N        retry a failed command N times (default 5)\n"
                "      --retry-delay MS   first retry after MS, doubling (default 1000)\n"
                "      --retry-max-delay MS  at most MS between retries (default 60000)\n"
                "      --hwm N            receive high-water mark (default 10000)\n"
                "      --server-key KEY   the daemon's CURVE public key: Z85 text or a .pub/.key\n"
                "                         file (default $CLUSTERMON_SERVER_KEY); needs --key\n"
                "      --key FILE         this client's key pair, from clustermonctl keygen\n"
                "                         (default $CLUSTERMON_KEY)\n"
                "  -v, --verbose          print a summary on stderr at every exit\n"
                "  -h, --help             show this help\n"
                "  -V, --version          show the version\n"
                "\n"
                "Exit status: 0 done (count reached, timeout, SIGINT/SIGTERM);\n"
                "1 --count not reached before --timeout, or an error; 2 usage error.\n");
}

static int parse_options(int argc, char **argv, options_t *opt)
{
    static const struct option longopts[] = {
        {"endpoint", required_argument, NULL, 'e'},
        {"cluster", required_argument, NULL, 'c'},
        {"severity", required_argument, NULL, 's'},
        {"count", required_argument, NULL, 'n'},
        {"timeout", required_argument, NULL, 't'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {"control", required_argument, NULL, 'C'},
        {"no-snapshot", no_argument, NULL, 1},
        {"state-file", required_argument, NULL, 2},
        {"exec", required_argument, NULL, 'x'},
        {"exec-jobs", required_argument, NULL, 3},
        {"exec-timeout", required_argument, NULL, 4},
        {"hwm", required_argument, NULL, 5},
        {"server-key", required_argument, NULL, 6},
        {"key", required_argument, NULL, 7},
        {"retries", required_argument, NULL, 8},
        {"retry-delay", required_argument, NULL, 9},
        {"retry-max-delay", required_argument, NULL, 10},
        {NULL, 0, NULL, 0},
    };
    int c, sev;
    size_t len;

    while ((c = getopt_long(argc, argv, "e:c:s:n:t:vhVC:x:", longopts, NULL)) != -1) {
        switch (c) {
        case 'C':
            if (opt->ncontrols == MAX_SIDES) {
                warnx("-C: at most %d control endpoints (one per -e)", MAX_SIDES);
                return EXIT_USAGE;
            }
            opt->controls[opt->ncontrols++] = optarg;
            break;
        case 1: opt->snapshot = false; break;
        case 2: opt->state_file = optarg; break;
        case 'x': opt->exec_cmd = optarg; break;
        case 3:
            if (!args_parse_long(optarg, 1, 256, &opt->exec_jobs)) {
                warnx("--exec-jobs: '%s' is not a number in 1..256", optarg);
                return EXIT_USAGE;
            }
            break;
        case 4:
            if (!args_parse_long(optarg, 1, 86400000, &opt->exec_timeout_ms)) {
                warnx("--exec-timeout: '%s' is not a positive number of milliseconds", optarg);
                return EXIT_USAGE;
            }
            break;
        case 5:
            if (!args_parse_long(optarg, 1, 10000000, &opt->hwm)) {
                warnx("--hwm: '%s' is not a positive number", optarg);
                return EXIT_USAGE;
            }
            break;
        case 6: opt->server_key_arg = optarg; break;
        case 7: opt->key_arg = optarg; break;
        case 8:
            if (!args_parse_long(optarg, 0, 1000, &opt->retries)) {
                warnx("--retries: '%s' is not a number in 0..1000", optarg);
                return EXIT_USAGE;
            }
            break;
        case 9:
            if (!args_parse_long(optarg, 1, 86400000, &opt->retry_delay_ms)) {
                warnx("--retry-delay: '%s' is not a positive number of milliseconds", optarg);
                return EXIT_USAGE;
            }
            break;
        case 10:
            if (!args_parse_long(optarg, 1, 86400000, &opt->retry_max_delay_ms)) {
                warnx("--retry-max-delay: '%s' is not a positive number of milliseconds", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'e':
            if (opt->nendpoints == MAX_SIDES) {
                warnx("-e: at most %d endpoints (the two daemons of an HA pair)", MAX_SIDES);
                return EXIT_USAGE;
            }
            opt->endpoints[opt->nendpoints++] = optarg;
            break;
        case 'c':
            len = strlen(optarg);
            if (len == 0 || len > PROTO_MAX_ID_LEN) {
                warnx("--cluster: must be 1..%d bytes", PROTO_MAX_ID_LEN);
                return EXIT_USAGE;
            }
            if (opt->nclusters == MAX_CLUSTERS) {
                warnx("--cluster: at most %d clusters", MAX_CLUSTERS);
                return EXIT_USAGE;
            }
            opt->clusters[opt->nclusters++] = optarg;
            break;
        case 's':
            sev = proto_severity_from_name(proto_str(optarg));
            if (sev < 0) {
                warnx("--severity: '%s' is not info, warning or critical", optarg);
                return EXIT_USAGE;
            }
            opt->severity[sev] = true;
            opt->any_severity = true;
            break;
        case 'n':
            if (!args_parse_long(optarg, 1, LONG_MAX, &opt->count)) {
                warnx("--count: '%s' is not a positive number", optarg);
                return EXIT_USAGE;
            }
            break;
        case 't':
            if (!args_parse_long(optarg, 1, LONG_MAX / 2, &opt->timeout_ms)) {
                warnx("--timeout: '%s' is not a positive number of milliseconds", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'v': opt->verbose = true; break;
        case 'h': usage(stdout); exit(0);
        case 'V': printf(PROG " " CLUSTERMON_VERSION "\n"); exit(0);
        default: usage(stderr); return EXIT_USAGE;
        }
    }
    if (opt->retry_max_delay_ms < opt->retry_delay_ms) {
        warnx("--retry-max-delay: %ld ms is below --retry-delay %ld ms", opt->retry_max_delay_ms,
              opt->retry_delay_ms);
        return EXIT_USAGE;
    }
    if (optind < argc) {
        warnx("unexpected argument '%s'", argv[optind]);
        usage(stderr);
        return EXIT_USAGE;
    }
    if (opt->nendpoints == 0)
        opt->endpoints[opt->nendpoints++] = opt->endpoint;
    opt->endpoint = opt->endpoints[0];
    if (opt->ncontrols == 0)
        opt->controls[opt->ncontrols++] = opt->control;
    opt->control = opt->controls[0];
    if (opt->nendpoints > 1) {
        /* an HA pair: each daemon's snapshots come from its own control socket */
        if (opt->snapshot && opt->ncontrols != opt->nendpoints) {
            warnx("-e given twice (an HA pair): give each daemon's control endpoint, -C A -C B");
            return EXIT_USAGE;
        }
        if (opt->exec_cmd != NULL) {
            warnx("--exec with two endpoints (an HA pair) is not supported yet: run one "
                  "subscriber per daemon, or print the deduplicated stream and pipe it");
            return EXIT_USAGE;
        }
        if (strcmp(opt->endpoints[0], opt->endpoints[1]) == 0) {
            warnx("-e: the two endpoints of an HA pair must differ");
            return EXIT_USAGE;
        }
    } else if (opt->ncontrols > 1) {
        warnx("-C given twice: that is for an HA pair, with two -e");
        return EXIT_USAGE;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *env = getenv("CLUSTERMON_CONTROL");
    options_t opt = {.endpoint = DEFAULT_ENDPOINT,
                     .control = env && *env ? env : DEFAULT_CONTROL,
                     .snapshot = true,
                     .exec_jobs = 4,
                     .exec_timeout_ms = 10000,
                     .retries = 5,
                     .retry_delay_ms = 1000,
                     .retry_max_delay_ms = 60000,
                     .hwm = SOCKET_RCVHWM};
    struct sigaction sa;
    char err[1024];
    int rc;

    if ((rc = parse_options(argc, argv, &opt)) != 0)
        return rc;
    if (clientkey_init(&opt.key, opt.server_key_arg, opt.key_arg, err, sizeof err) != 0) {
        warnx("%s", err);
        return EXIT_USAGE;
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: zmq_poll returns EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    rc = run(&opt);
    clientkey_clear(&opt.key);
    return rc;
}
