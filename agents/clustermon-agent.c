/*
 * clustermon-agent.c -- sends CSV samples to clustermond, batch by batch,
 * through a durable spool, so that nothing is lost and nothing is counted
 * twice.
 *
 * The agent runs at the reporting firms, so it is small and has no event
 * loop: a spool directory (agents/spool.c) and the delivery engine
 * (agents/delivery.c: one ZeroMQ DEALER, up to --window batches in flight,
 * resends, backoff, failover). Every batch read from the input is encoded
 * once, with the spool's stream (epoch) and next seq, and written to the
 * spool before it is first sent; it leaves the spool only when the daemon
 * has settled that seq (acked it, or refused it for good: then it moves to
 * rejected/). The agent reads ahead of the acks (into the spool, up to
 * --spool-max). ZMQ_LINGER 0: an ack is the only proof of delivery, and the
 * spool is what survives.
 *
 * Streams and seqs come from the spool: a new spool draws a random epoch and
 * numbers its batches 1, 2, 3 ... across runs, never reusing a seq for other
 * bytes (PROTOCOL.md section 2). A damaged spool file is moved aside and an
 * empty batch settles its seq, so the stream goes on.
 *
 * Restarts: the spooled batches are resent first. Then, if the input is the
 * same regular file as last time (same absolute path, device and inode, and
 * its first OFFSET bytes unchanged, by CRC-32), reading resumes after the
 * last line spooled; a file that changed identity is read from the start.
 * Stdin cannot be re-read, but everything read from it was spooled before
 * the next read, so nothing is lost: new stdin content follows the resends.
 *
 * A regular file is checked (from where reading resumes) before anything is
 * sent, so a bad line in a file means nothing new is sent. A stream (stdin,
 * a pipe) cannot be read twice: every line before a bad one is delivered,
 * then the agent stops. A stream read blocks until a batch is full or the
 * stream ends, so from a stream the agent reads only with no batch in
 * flight: each batch is sent as soon as it is full (with -b 1, each line as
 * it comes) and its ack is never held up by the next read.
 *
 * With --server-key (or $CLUSTERMON_SERVER_KEY) every socket is a CURVE
 * client (agents/clientkey.h).
 *
 * An HA pair (--ha A,B): one spool, two delivery engines, one per daemon,
 * polled together. Each engine takes the spooled batches above its side's
 * cursor (agents/hacursor.h, SPOOL/ha) with the same stream and seqs, so
 * each daemon deduplicates on its own; a batch leaves the spool once both
 * cursors have passed it. A side that stops answering (or gives up after
 * --retries) does not hold the other back: its batches wait in the spool,
 * and it catches up when it answers again (or at the next run). A daemon
 * whose stream went back (re-seeded from the other side's state) is sent
 * the batches again from where it is, as long as the spool still has them.
 *
 * Exit status: 0 every batch acked and the spool empty; 1 a batch rejected
 * (moved to the spool's rejected/; on status "internal" it stays spooled), a
 * corrupt spool file, or another failure; 2 bad input or usage; 3 no ack
 * after all tries (the spool stays); 4 agent_conflict (the spool stays).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <ini.h>
#include <signal.h>
#include <zmq.h>

#include "agents/args.h"
#include "agents/clientkey.h"
#include "agents/delivery.h"
#include "agents/feed.h"
#include "agents/hacursor.h"
#include "agents/input.h"
#include "agents/spool.h"
#include "proto/fileio.h"
#include "proto/proto.h"

#define PROG "clustermon-agent"

enum {
    EXIT_NACK = DELIVERY_FAILED,
    EXIT_INPUT = DELIVERY_USAGE,
    EXIT_NOACK = DELIVERY_NOACK,
    EXIT_CONFLICT = DELIVERY_CONFLICT,
};

#define DEFAULT_ENDPOINT "tcp://127.0.0.1:7601"
#define DEFAULT_SPOOL "clustermon-agent-spool"
#define DEFAULT_SPOOL_MAX (1ULL << 30)
#define DEFAULT_BATCH 1000
#define DEFAULT_TIMEOUT_MS 5000
#define DEFAULT_RETRIES 5
#define MAX_ENDPOINTS 16

/*
 * The most bytes a batch of n samples can encode to: the envelope with a
 * 64-byte agent id and a uint64 seq, then per sample an array header, two
 * 64-byte ids (str8), a float64, an int64 and a 7-byte period. The agent
 * reads a batch only when the spool can take this many more bytes, so it
 * never holds input it could not spool.
 */
#define BATCH_MSG_MAX(n) (128 + 160 * (uint64_t)(n))

typedef struct {
    char *endpoints[MAX_ENDPOINTS]; /* owned */
    size_t nendpoints;
    char agent_id[PROTO_MAX_ID_LEN + 1];
    const char *path; /* NULL: stdin */
    const char *spool_root;
    uint64_t spool_max;
    long batch;
    long timeout_ms;
    long retries; /* 0: forever */
    long window;  /* batches in flight at once, 1 (stop and wait) .. PROTO_MAX_WINDOW */
    bool verbose;
    bool ha;                              /* --ha A,B: endpoints[0] and [1] are a pair */
    bool check;                           /* --check: judge the file (dry-run), apply nothing */
    const char *server_key_arg, *key_arg; /* NULL: from the environment */
    clientkey_t key;                      /* CURVE, for every socket */

    /* How the input is read (encoding, sheet, columns, the metric map). */
    input_opts_t in;
    char *columns;            /* --columns and [columns], joined; owned */
    rowmap_metric_t *metrics; /* [metrics] of the config; owned */
    size_t nmetrics;
    bool endpoints_from_config; /* a command-line -e replaces them */
    char **conf_values;         /* the config's values the options point to; owned */
    size_t nconf_values;

    /* Unattended inputs (agents/feed.h). */
    const char *watch; /* a drop folder */
    long settle_ms;
    const char *exec; /* a command whose stdout is CSV */
    long every_ms;
} options_t;

/* What the agent said while sending one file: the drop folder's reason file. */
static char said[4096];
static size_t nsaid;
static volatile sig_atomic_t stopping;

struct agent;

/* One daemon of an HA pair. */
typedef struct {
    struct agent *a;
    int i;            /* 0: A, 1: B */
    delivery_t *dl;   /* its engine; NULL once stopped */
    uint64_t acked;   /* every spooled seq <= acked is settled there (agents/hacursor.h) */
    bool probing;     /* its last settled batch went again as a probe, not answered yet */
    int status;       /* why it stopped: an exit status; 0 while it runs */
    uint64_t refused; /* rows it refused */
    char tag[300];    /* "A (ENDPOINT)", for messages */
} side_t;

typedef struct agent {
    const options_t *opt;
    void *ctx;
    delivery_t *dl; /* the batches in flight (agents/delivery.h); NULL with --ha */
    spool_t *sp;

    /* --ha: the pair. */
    side_t side[HACURSOR_SIDES];
    uint64_t trimmed; /* every seq <= trimmed may be gone from the spool */
    uint64_t *lost;   /* seqs whose spool file was corrupt: empty batches stand in */
    size_t nlost;
    uint64_t *refuse; /* seqs a side refused whole: to rejected/ when they leave */
    size_t nrefuse;
    int ha_status; /* EXIT_NACK once a side refused a batch whole */

    /* Input: NULL once read to the end (or to a bad line of a stream). */
    input_reader_t *r;
    proto_sample_t *samples;
    unsigned long *lines; /* the input line of each sample read */
    msgpack_sbuffer buf;
    int input_status; /* EXIT_INPUT after a bad line: reported once the spool is empty */
    bool full_said;

    uint64_t corrupt; /* spool files that failed their checks */
    uint64_t refused; /* rows the daemon refused from partial batches */
} agent_t;

static void warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void warnx(const char *fmt, ...)
{
    va_list ap;

    fputs(PROG ": ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (nsaid < sizeof said) {
        va_start(ap, fmt);
        int n = vsnprintf(said + nsaid, sizeof said - nsaid, fmt, ap);
        va_end(ap);
        if (n > 0)
            nsaid += (size_t)n;
        if (nsaid + 1 < sizeof said) {
            said[nsaid++] = '\n';
            said[nsaid] = '\0';
        } else {
            nsaid = sizeof said;
        }
    }
}

/* Opens the input and sets how it is read. Returns NULL with the reason. */
static input_reader_t *open_reader(const options_t *opt, char *err, size_t errlen)
{
    input_reader_t *r = input_reader_open(opt->path, err, errlen);

    if (r != NULL && input_reader_configure(r, &opt->in, err, errlen) != INPUT_OK)
        input_reader_destroy(&r);
    return r;
}

/* Says what stays in the spool when the agent gives up. */
static void say_spool_kept(const agent_t *a)
{
    if (spool_count(a->sp) > 0)
        warnx("%zu unacknowledged batches (%" PRIu64
              " bytes) stay in the spool %s for the next run",
              spool_count(a->sp), spool_bytes(a->sp), spool_dir(a->sp));
}

/* ---- the spool as the delivery engine's source ------------------------------- */

static bool spool_next_cb(void *arg, bool first, uint64_t after, uint64_t *ret_seq)
{
    agent_t *a = arg;
    return first ? spool_first(a->sp, ret_seq) : spool_next_after(a->sp, after, ret_seq);
}

static int spool_load_cb(void *arg, uint64_t seq, void **ret_msg, size_t *ret_len)
{
    agent_t *a = arg;
    char err[SPOOL_ERRLEN];
    int rc = spool_read(a->sp, seq, ret_msg, ret_len, err, sizeof err);

    if (rc == SPOOL_ECORRUPT)
        return DELIVERY_LOST; /* moved aside; spool_warn() counted and said it */
    if (rc != SPOOL_OK) {
        warnx("%s", err);
        return EXIT_NACK;
    }
    return 0;
}

/* The text of a reason after its "sample N: " (N in *ret_index), or the
 * whole reason with *ret_index -1. */
static proto_str_t reason_sample(proto_str_t r, long *ret_index)
{
    unsigned long n = 0;
    uint32_t i = 7;

    *ret_index = -1;
    if (r.len < 10 || memcmp(r.ptr, "sample ", 7) != 0)
        return r;
    while (i < r.len && r.ptr[i] >= '0' && r.ptr[i] <= '9' && n < PROTO_MAX_SAMPLES)
        n = n * 10 + (unsigned long)(r.ptr[i++] - '0');
    if (i == 7 || i + 2 > r.len || r.ptr[i] != ':' || r.ptr[i + 1] != ' ')
        return r;
    *ret_index = (long)n;
    return (proto_str_t){r.ptr + i + 2, r.len - i - 2};
}

/* Says each refusal as "input:line: reason" (with the lines the spool kept
 * for batch seq; "batch S, sample N" without them). With refused NULL, the
 * one reason of a whole-batch refusal. */
static void say_refusals(agent_t *a, const char *who, uint64_t seq, const proto_refusal_t *refused,
                         uint32_t n, proto_str_t whole)
{
    char input[SPOOL_PATH_MAX];
    unsigned long *lines = NULL;
    size_t nlines = 0;
    bool have = spool_lines_read(a->sp, seq, input, sizeof input, &lines, &nlines) == 0;

    for (uint32_t k = 0; k < (refused ? n : 1); k++) {
        long idx;
        proto_str_t why = reason_sample(refused ? refused[k].reason : whole, &idx);

        if (refused)
            idx = (long)refused[k].index;
        if (idx >= 0 && have && (size_t)idx < nlines)
            warnx("%s%s:%lu: " PROTO_STR_FMT, who, input, lines[idx], PROTO_STR_ARG(why));
        else if (idx >= 0)
            warnx("%sbatch %" PRIu64 ", sample %ld: " PROTO_STR_FMT, who, seq, idx,
                  PROTO_STR_ARG(why));
        else
            warnx("%sbatch %" PRIu64 ": " PROTO_STR_FMT, who, seq, PROTO_STR_ARG(why));
    }
    free(lines);
}

/* Writes one CSV field, quoted when it needs to be. */
static void csv_field(FILE *fp, const char *s, size_t len, bool last)
{
    bool quote = strcspn(s, ",\"\r\n") < len;

    if (quote) {
        fputc('"', fp);
        for (size_t i = 0; i < len; i++) {
            if (s[i] == '"')
                fputc('"', fp);
            fputc(s[i], fp);
        }
        fputc('"', fp);
    } else {
        fwrite(s, 1, len, fp);
    }
    fputc(last ? '\n' : ',', fp);
}

/*
 * A partial answer: the good samples are applied. The refused ones are said
 * by line and written, with their reasons, to rejected/SEQ.rejected.csv in
 * the spool (rebuilt from the batch's bytes: what was sent); the batch
 * leaves the spool and the run goes on (it exits 1 at the end). With --ha
 * (side not NULL) the rows are said naming the side, the file is written by
 * the first side to answer, and the batch stays until both have.
 */
static int settle_partial(agent_t *a, side_t *side, uint64_t seq, const proto_ack_t *ack)
{
    char err[SPOOL_ERRLEN], path[SPOOL_PATH_MAX + 64], input[SPOOL_PATH_MAX] = "?";
    unsigned long *lines = NULL;
    size_t nlines = 0, len = 0, blen;
    void *msg = NULL;
    char *text = NULL;
    FILE *fp;
    int rc = 0;

    char who[sizeof side->tag + 2] = "";
    if (side != NULL) {
        snprintf(who, sizeof who, "%s: ", side->tag);
        side->refused += ack->nrefused;
    } else {
        a->refused += ack->nrefused;
    }
    say_refusals(a, who, seq, ack->refused, ack->nrefused, proto_str(""));
    /* with --ha the other side may have written it already */
    bool first = side == NULL || a->side[1 - side->i].acked < seq;
    (void)spool_lines_read(a->sp, seq, input, sizeof input, &lines, &nlines);
    if (first && spool_read(a->sp, seq, &msg, &blen, err, sizeof err) == SPOOL_OK &&
        (fp = open_memstream(&text, &len)) != NULL) {
        proto_sample_t *smp = calloc(PROTO_MAX_SAMPLES, sizeof *smp);
        proto_batch_t b = {.samples = smp, .cap = smp ? PROTO_MAX_SAMPLES : 0};
        bool ok = smp && proto_batch_decode(msg, blen, &b, err, sizeof err) == PROTO_OK;

        fputs("source,enterprise,metric,value,period_or_timestamp,status,reason\n", fp);
        for (uint32_t k = 0; ok && k < ack->nrefused; k++) {
            const proto_refusal_t *r = &ack->refused[k];
            char src[SPOOL_PATH_MAX + 32], num[64], when[32];
            long idx;
            proto_str_t why = reason_sample(r->reason, &idx);

            if (r->index >= b.nsamples)
                continue;
            const proto_sample_t *s = &b.samples[r->index];
            if (r->index < nlines)
                snprintf(src, sizeof src, "%s:%lu", input, lines[r->index]);
            else
                snprintf(src, sizeof src, "batch %" PRIu64 " sample %" PRIu32, seq, r->index);
            snprintf(num, sizeof num, "%.17g", s->value);
            if (s->period.kind != PROTO_PERIOD_NONE)
                proto_period_format(s->period, when, sizeof when);
            else
                snprintf(when, sizeof when, "%" PRId64, s->ts_ms);
            csv_field(fp, src, strlen(src), false);
            csv_field(fp, s->firm.ptr, s->firm.len, false);
            csv_field(fp, s->metric.ptr, s->metric.len, false);
            csv_field(fp, num, strlen(num), false);
            csv_field(fp, when, strlen(when), false);
            csv_field(fp, proto_status_name((proto_status_t)r->status),
                      strlen(proto_status_name((proto_status_t)r->status)), false);
            csv_field(fp, why.ptr, why.len, true);
        }
        fclose(fp);
        free(smp);
        snprintf(path, sizeof path, "%s/rejected", spool_dir(a->sp));
        (void)mkdir(path, 0700);
        snprintf(path, sizeof path, "%s/rejected/%020" PRIu64 ".rejected.csv", spool_dir(a->sp),
                 seq);
        if (fileio_write_atomic(path, text, len, 0600, err, sizeof err) != 0) {
            warnx("%s", err);
            rc = EXIT_NACK;
        } else {
            warnx("batch %" PRIu64 ": %" PRIu32 " samples applied, %" PRIu32
                  " refused rows written to %s",
                  seq, ack->accepted, ack->nrefused, path);
        }
    }
    free(text);
    free(msg);
    free(lines);
    if (rc == 0 && side == NULL && spool_remove(a->sp, seq, err, sizeof err) != SPOOL_OK) {
        warnx("%s", err);
        rc = EXIT_NACK;
    }
    return rc;
}

/* A settled batch leaves the spool: acked (or settled long ago) it is
 * removed, partly applied its refused rows are set aside (settle_partial),
 * refused whole it is set aside in rejected/ and the run stops. */
static int spool_settled_cb(void *arg, uint64_t seq, const proto_ack_t *ack, bool forgotten,
                            bool lost)
{
    agent_t *a = arg;
    char err[SPOOL_ERRLEN], path[SPOOL_PATH_MAX + 64];

    if (ack->status == PROTO_STATUS_OK || forgotten) {
        if (!lost && spool_remove(a->sp, seq, err, sizeof err) != SPOOL_OK) {
            warnx("%s", err);
            return EXIT_NACK;
        }
        if (forgotten)
            warnx("batch %" PRIu64 ": removed from the spool", seq);
        return 0;
    }
    if (lost)
        return EXIT_NACK;
    if (ack->status == PROTO_STATUS_PARTIAL)
        return settle_partial(a, NULL, seq, ack);
    /* A whole batch refused for one sample (an older daemon): name its line. */
    say_refusals(a, "", seq, NULL, 0, ack->reason);
    /* Resending the same bytes would get the same answer: set it aside. */
    if (spool_reject(a->sp, seq, path, sizeof path, err, sizeof err) != SPOOL_OK) {
        warnx("%s", err);
        return EXIT_NACK;
    }
    warnx("batch %" PRIu64 " moved to %s", seq, path);
    return EXIT_NACK;
}

/* ---- input -------------------------------------------------------------------- */

/*
 * Reads the next batch from the input, encodes it with the next seq and
 * spools it. At the end of the input (or a bad line) the reader is closed.
 * Returns 0 or the exit status.
 */
static int read_batch(agent_t *a)
{
    char err[INPUT_ERRLEN > SPOOL_ERRLEN ? INPUT_ERRLEN : SPOOL_ERRLEN];
    uint64_t seq = spool_next_seq(a->sp);
    input_pos_t ipos;
    spool_pos_t pos;
    size_t n;
    int rc =
        input_read_batch(a->r, a->samples, (size_t)a->opt->batch, &n, a->lines, err, sizeof err);
    if (rc != INPUT_OK) {
        warnx("%s", err);
        a->input_status = EXIT_INPUT;
    }
    if (n > 0) {
        proto_batch_t b = {
            .agent = proto_str(a->opt->agent_id),
            .epoch = spool_epoch(a->sp),
            .seq = seq,
            .nsamples = (uint32_t)n,
            .samples = a->samples,
            .cap = (uint32_t)n,
            .partial = true, /* a refused row must not sink its neighbours */
        };

        msgpack_sbuffer_clear(&a->buf);
        if (proto_batch_encode(&b, &a->buf, err, sizeof err) < 0) {
            /* The reader checks what the encoder checks; this is a bug or OOM. */
            warnx("cannot encode batch %" PRIu64 ": %s", seq, err);
            return EXIT_NACK;
        }
        /* the lines first: a spooled batch always has them */
        if (spool_lines_write(a->sp, seq, a->opt->path ? a->opt->path : "stdin", a->lines, n, err,
                              sizeof err) != SPOOL_OK) {
            warnx("%s", err);
            return EXIT_NACK;
        }
        input_reader_pos(a->r, &ipos);
        pos = (spool_pos_t){.offset = ipos.offset, .line = ipos.line, .crc = ipos.crc};
        if (spool_append(a->sp, seq, a->buf.data, a->buf.size, &pos, err, sizeof err) != SPOOL_OK) {
            warnx("%s", err);
            return EXIT_NACK;
        }
        if (a->opt->verbose && a->buf.size > BATCH_MSG_MAX(n))
            warnx("batch %" PRIu64 ": %zu bytes, over the estimate: a bug", seq, a->buf.size);
    }
    if (rc != INPUT_OK || n == 0)
        input_reader_destroy(&a->r);
    return 0;
}

/* Whether the spool can take one more batch of the worst-case size. */
static bool spool_has_room(const agent_t *a)
{
    return spool_count(a->sp) == 0 ||
           spool_bytes(a->sp) + SPOOL_HEADER_SIZE + BATCH_MSG_MAX(a->opt->batch) <=
               a->opt->spool_max;
}

/* Reads a whole regular file from pos without sending, so a bad line sends nothing. */
static int check_file(const options_t *opt, const input_pos_t *pos, proto_sample_t *samples)
{
    char err[INPUT_ERRLEN];
    input_reader_t *r = open_reader(opt, err, sizeof err);
    size_t n;

    if (r == NULL) {
        warnx("%s", err);
        return EXIT_INPUT;
    }
    int rc = pos->offset > 0 ? input_reader_skip(r, pos, err, sizeof err) : INPUT_OK;
    while (rc == INPUT_OK &&
           (rc = input_read_batch(r, samples, (size_t)opt->batch, &n, NULL, err, sizeof err)) ==
               INPUT_OK &&
           n > 0)
        ;
    input_reader_destroy(&r);
    if (rc != INPUT_OK) {
        warnx("%s", err);
        return EXIT_INPUT;
    }
    return 0;
}

/*
 * Opens the input and decides where reading starts (see the file comment),
 * recording a new input in the spool. Returns 0 or the exit status.
 */
static int open_input(agent_t *a)
{
    const options_t *opt = a->opt;
    const spool_input_t *rec = spool_input(a->sp);
    spool_input_t in = {.path = "-", .pos = {.line = 1}};
    char err[INPUT_ERRLEN > SPOOL_ERRLEN ? INPUT_ERRLEN : SPOOL_ERRLEN];
    input_pos_t pos = {.line = 1};
    bool regular = false;
    struct stat st;
    int rc;

    if (opt->path != NULL) {
        if (stat(opt->path, &st) != 0) {
            warnx("%s: %s", opt->path, strerror(errno));
            return EXIT_INPUT;
        }
        regular = S_ISREG(st.st_mode);
        if (realpath(opt->path, in.path) == NULL) {
            warnx("%s: %s", opt->path, strerror(errno));
            return EXIT_INPUT;
        }
        in.dev = (uint64_t)st.st_dev;
        in.ino = (uint64_t)st.st_ino;
    }
    if ((a->r = open_reader(opt, err, sizeof err)) == NULL) {
        warnx("%s", err);
        return EXIT_INPUT;
    }
    if (regular && strcmp(rec->path, in.path) == 0 && rec->dev == in.dev && rec->ino == in.ino &&
        rec->pos.offset > 0) {
        pos = (input_pos_t){.offset = rec->pos.offset, .line = rec->pos.line, .crc = rec->pos.crc};
        rc = input_reader_skip(a->r, &pos, err, sizeof err);
        if (rc == INPUT_OK) {
            if (opt->verbose)
                warnx("%s: resuming after byte %" PRIu64 " (line %" PRIu64
                      "), read in an earlier run",
                      opt->path, pos.offset, pos.line);
        } else if (rc == INPUT_ECHANGED) {
            if (opt->verbose)
                warnx("%s: changed since an earlier run (%s): reading it from the beginning",
                      opt->path, err);
            input_reader_destroy(&a->r);
            if ((a->r = open_reader(opt, err, sizeof err)) == NULL) {
                warnx("%s", err);
                return EXIT_INPUT;
            }
            pos = (input_pos_t){.line = 1};
        } else {
            warnx("%s", err);
            return EXIT_INPUT;
        }
    } else if (opt->verbose && regular && rec->path[0] != '\0' && strcmp(rec->path, "-") != 0) {
        if (strcmp(rec->path, in.path) != 0)
            warnx("%s: not the input of the earlier run (%s): reading it from the beginning",
                  opt->path, rec->path);
        else if (rec->dev != in.dev || rec->ino != in.ino)
            warnx("%s: a new file (inode %" PRIu64 ", was %" PRIu64
                  "): reading it from the beginning",
                  opt->path, in.ino, rec->ino);
    }
    if (regular && (rc = check_file(opt, &pos, a->samples)) != 0)
        return rc;
    if (pos.offset == 0) {
        /* A new input: record it before the first batch of it is spooled. */
        in.pos = (spool_pos_t){.offset = 0, .line = 1, .crc = 0};
        if (spool_input_set(a->sp, &in, err, sizeof err) != SPOOL_OK) {
            warnx("%s", err);
            return EXIT_NACK;
        }
    }
    return 0;
}

/* ---- an HA pair (--ha A,B) ---------------------------------------------------- */

static bool seq_in(const uint64_t *v, size_t n, uint64_t seq)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == seq)
            return true;
    return false;
}

static void seq_add(uint64_t **v, size_t *n, uint64_t seq)
{
    if (seq_in(*v, *n, seq))
        return;
    uint64_t *p = realloc(*v, (*n + 1) * sizeof *p);
    if (p == NULL)
        abort();
    p[(*n)++] = seq;
    *v = p;
}

/* Drops the seqs <= upto (they left the spool). */
static void seq_drop_upto(uint64_t *v, size_t *n, uint64_t upto)
{
    size_t k = 0;
    for (size_t i = 0; i < *n; i++)
        if (v[i] > upto)
            v[k++] = v[i];
    *n = k;
}

/* The seq up to which both sides have settled. A side being probed counts
 * as no further than what is trimmed already: until it answers, its cursor
 * may be a re-seeded daemon's past (it may expect a batch the other side
 * has just settled, which must still be in the spool to go again). */
static uint64_t ha_floor(const agent_t *a)
{
    uint64_t c[HACURSOR_SIDES];
    for (int i = 0; i < HACURSOR_SIDES; i++)
        c[i] = a->side[i].probing && a->trimmed < a->side[i].acked ? a->trimmed : a->side[i].acked;
    return c[0] < c[1] ? c[0] : c[1];
}

/*
 * Records both cursors (SPOOL/ha), then lets go of every batch both sides
 * have settled: removed, or moved to rejected/ if a side refused it whole.
 * The file first: a crash between the two leaves batches a side has, which
 * it answers from memory when they come again. Returns 0 or EXIT_NACK.
 */
static int ha_commit(agent_t *a)
{
    const char *eps[HACURSOR_SIDES] = {a->opt->endpoints[0], a->opt->endpoints[1]};
    uint64_t acked[HACURSOR_SIDES] = {a->side[0].acked, a->side[1].acked};
    char err[SPOOL_ERRLEN], path[SPOOL_PATH_MAX + 64];
    uint64_t floor = ha_floor(a), first;

    if (hacursor_save(spool_dir(a->sp), eps, acked, err, sizeof err) != 0) {
        warnx("%s", err);
        return EXIT_NACK;
    }
    while (spool_first(a->sp, &first) && first <= floor) {
        if (seq_in(a->refuse, a->nrefuse, first)) {
            if (spool_reject(a->sp, first, path, sizeof path, err, sizeof err) != SPOOL_OK) {
                warnx("%s", err);
                return EXIT_NACK;
            }
            warnx("batch %" PRIu64 " moved to %s", first, path);
        } else if (spool_remove(a->sp, first, err, sizeof err) != SPOOL_OK) {
            warnx("%s", err);
            return EXIT_NACK;
        }
    }
    if (floor > a->trimmed)
        a->trimmed = floor;
    seq_drop_upto(a->lost, &a->nlost, floor);
    seq_drop_upto(a->refuse, &a->nrefuse, floor);
    return 0;
}

/* The next batch for a side: the oldest spooled (or lost) seq above its
 * cursor (first) or above `after`. */
static bool side_next_cb(void *arg, bool first, uint64_t after, uint64_t *ret_seq)
{
    side_t *s = arg;
    agent_t *a = s->a;
    uint64_t from = first ? s->acked : after;
    bool have = spool_next_after(a->sp, from, ret_seq);

    for (size_t i = 0; i < a->nlost; i++)
        if (a->lost[i] > from && (!have || a->lost[i] < *ret_seq)) {
            *ret_seq = a->lost[i];
            have = true;
        }
    return have;
}

static int side_load_cb(void *arg, uint64_t seq, void **ret_msg, size_t *ret_len)
{
    side_t *s = arg;
    agent_t *a = s->a;
    char err[SPOOL_ERRLEN];

    if (seq_in(a->lost, a->nlost, seq))
        return DELIVERY_LOST; /* the other side found it corrupt: both get the stand-in */
    int rc = spool_read(a->sp, seq, ret_msg, ret_len, err, sizeof err);
    if (rc == SPOOL_ECORRUPT) {
        seq_add(&a->lost, &a->nlost, seq);
        return DELIVERY_LOST;
    }
    if (rc != SPOOL_OK) {
        warnx("%s: %s", s->tag, err);
        return EXIT_NACK;
    }
    return 0;
}

/* A side settled seq: its refusals are said naming it; its cursor moves. */
static int side_settled_cb(void *arg, uint64_t seq, const proto_ack_t *ack, bool forgotten,
                           bool lost)
{
    side_t *s = arg;
    agent_t *a = s->a;
    char who[sizeof s->tag + 2];
    int rc = 0;

    snprintf(who, sizeof who, "%s: ", s->tag);
    if (forgotten) {
        warnx("%sbatch %" PRIu64 ": settled there long ago", who, seq);
    } else if (ack->status == PROTO_STATUS_PARTIAL && !lost) {
        rc = settle_partial(a, s, seq, ack);
    } else if (ack->status != PROTO_STATUS_OK && !lost) {
        /* refused whole (an older daemon): the seq is settled there all the
         * same; the batch goes to rejected/ once it leaves the spool */
        say_refusals(a, who, seq, NULL, 0, ack->reason);
        seq_add(&a->refuse, &a->nrefuse, seq);
        a->ha_status = EXIT_NACK;
    }
    s->probing = false; /* it answered from where it is */
    if (seq > s->acked)
        s->acked = seq;
    int crc = ha_commit(a);
    return rc != 0 ? rc : crc;
}

/* The daemon of side s went back to `expected` (re-seeded): if the spool
 * still has every batch from there on, the side starts again from it. */
static bool side_rewind_cb(void *arg, uint64_t expected)
{
    side_t *s = arg;
    agent_t *a = s->a;

    s->probing = false;
    if (expected == 0 || expected - 1 < a->trimmed) {
        warnx("%s: the daemon expects seq %" PRIu64 ", but the spool keeps only the batches "
              "after %" PRIu64 ": re-seed it from a side that has them",
              s->tag, expected, a->trimmed);
        return false;
    }
    s->acked = expected - 1;
    return ha_commit(a) == 0;
}

/* Side s stopped with an exit status: the other goes on. */
static void side_stop(side_t *s, int status)
{
    agent_t *a = s->a;
    uint64_t next;
    size_t owed = 0;

    for (uint64_t q = s->acked; spool_next_after(a->sp, q, &next); q = next)
        owed++;
    warnx("%s: stopped delivering to it (exit status %d); %zu batches it has not settled stay "
          "in the spool %s for the next run",
          s->tag, status, owed, spool_dir(a->sp));
    delivery_close(&s->dl);
    s->status = status;
}

/* Whether side s has nothing left to send (its cursor at the spool's end). */
static bool side_idle(const side_t *s)
{
    uint64_t next;
    if (s->dl == NULL || delivery_inflight(s->dl) > 0 ||
        spool_next_after(s->a->sp, s->acked, &next))
        return false;
    for (size_t i = 0; i < s->a->nlost; i++)
        if (s->a->lost[i] > s->acked)
            return false;
    return true;
}

static size_t ha_inflight(const agent_t *a)
{
    size_t n = 0;
    for (int i = 0; i < HACURSOR_SIDES; i++)
        if (a->side[i].dl != NULL)
            n += delivery_inflight(a->side[i].dl);
    return n;
}

/* Opens both engines, each on its one endpoint, from the cursors of SPOOL/ha. */
static int ha_open(agent_t *a, const delivery_opts_t *base)
{
    const char *eps[HACURSOR_SIDES] = {a->opt->endpoints[0], a->opt->endpoints[1]};
    uint64_t acked[HACURSOR_SIDES];
    bool known[HACURSOR_SIDES];
    char err[SPOOL_ERRLEN];
    int rc;

    if (hacursor_load(spool_dir(a->sp), eps, acked, known, err, sizeof err) != 0) {
        warnx("%s (move it aside to send every spooled batch to both sides again)", err);
        return EXIT_NACK;
    }
    for (int i = 0; i < HACURSOR_SIDES; i++) {
        side_t *s = &a->side[i];
        s->a = a;
        s->i = i;
        s->acked = acked[i];
        snprintf(s->tag, sizeof s->tag, "%s (%s)", hacursor_side_name(i), eps[i]);
        if (a->opt->verbose)
            warnx("%s: %s", s->tag,
                  known[i] ? "resuming after the seq it settled last"
                           : "new to this spool: it gets every spooled batch");
        if (a->opt->verbose && known[i])
            warnx("%s: settled up to seq %" PRIu64, s->tag, s->acked);
    }
    a->trimmed = ha_floor(a);
    /* A side ahead of the other holds batches only it has settled. If it
     * lost them since (its disk died and it was re-seeded from the other),
     * nothing would tell: there is nothing left to send it. So its last
     * settled batch goes to it again as a probe: a daemon that has it
     * answers from memory; one that went back answers with the seq it
     * expects, and side_rewind_cb() resends from there. */
    for (int i = 0; i < HACURSOR_SIDES; i++)
        if (a->side[i].acked > a->trimmed) {
            a->side[i].acked--;
            a->side[i].probing = true;
        }
    if ((rc = ha_commit(a)) != 0)
        return rc;
    for (int i = 0; i < HACURSOR_SIDES; i++) {
        side_t *s = &a->side[i];
        delivery_opts_t o = *base;
        delivery_source_t src = {.next = side_next_cb,
                                 .load = side_load_cb,
                                 .settled = side_settled_cb,
                                 .rewind = side_rewind_cb,
                                 .arg = s};
        o.endpoints = &a->opt->endpoints[i];
        o.nendpoints = 1;
        if ((rc = delivery_open(a->ctx, &o, &src, &s->dl)) != 0)
            return rc;
    }
    return 0;
}

/* The run with a pair: like loop(), with both engines polled together. */
static int ha_loop(agent_t *a)
{
    for (;;) {
        int rc;
        bool may_read = a->r != NULL && !(ha_inflight(a) > 0 && input_reader_is_stream(a->r));

        if (may_read) {
            if (spool_has_room(a)) {
                if ((rc = read_batch(a)) != 0)
                    return rc;
            } else if (!a->full_said) {
                warnx("spool full (%" PRIu64 " bytes): waiting for acks before reading more input"
                      " (with --ha, from both sides)",
                      spool_bytes(a->sp));
                a->full_said = true;
            }
        }
        bool more_input = may_read && a->r != NULL && spool_has_room(a);
        zmq_pollitem_t items[HACURSOR_SIDES];
        int nitems = 0, running = 0, worst = 0;
        long wait = more_input ? 0 : 1000; /* a signal is noticed within a second */
        bool idle = true;

        for (int i = 0; i < HACURSOR_SIDES; i++) {
            side_t *s = &a->side[i];
            if (s->dl != NULL && (rc = delivery_step(s->dl, 0)) != 0)
                side_stop(s, rc);
            if (s->dl == NULL) {
                if (s->status > worst)
                    worst = s->status;
                continue;
            }
            running++;
            idle = idle && side_idle(s);
            long w = delivery_wait_ms(s->dl);
            if (w >= 0 && w < wait)
                wait = w;
            items[nitems++] =
                (zmq_pollitem_t){.socket = delivery_socket(s->dl), .events = ZMQ_POLLIN};
        }
        if (running == 0)
            return worst;
        if (a->r == NULL && idle)
            return worst; /* everything read is settled on every side still running */
        if (stopping)
            return EXIT_NOACK;
        if (zmq_poll(items, nitems, wait) < 0 && errno != EINTR) {
            warnx("zmq_poll: %s", zmq_strerror(errno));
            return EXIT_NACK;
        }
    }
}

/* ---- the run ------------------------------------------------------------------ */

static void spool_warn(void *arg, const char *msg)
{
    agent_t *a = arg;

    a->corrupt++;
    warnx("spool: %s", msg);
}

static int loop(agent_t *a)
{
    for (;;) {
        int rc;

        /* Read ahead while the spool has room, one batch per turn; from a
         * stream only with nothing in flight, since the read may block until
         * the next line comes and the acks in flight would wait. */
        bool may_read =
            a->r != NULL && !(delivery_inflight(a->dl) > 0 && input_reader_is_stream(a->r));
        if (may_read) {
            if (spool_has_room(a)) {
                if ((rc = read_batch(a)) != 0)
                    return rc;
            } else if (!a->full_said) {
                warnx("spool full (%" PRIu64 " bytes): waiting for acks before reading more input",
                      spool_bytes(a->sp));
                a->full_said = true;
            }
        }
        bool more_input = may_read && a->r != NULL && spool_has_room(a);
        if ((rc = delivery_step(a->dl, more_input ? 0 : -1)) != 0)
            return rc;
        if (delivery_inflight(a->dl) == 0 && a->r == NULL && spool_count(a->sp) == 0)
            return 0; /* everything read is acked */
    }
}

static int run(const options_t *opt)
{
    agent_t a = {.opt = opt};
    char err[SPOOL_ERRLEN];
    uint64_t first;
    int status = 0;

    msgpack_sbuffer_init(&a.buf);
    a.samples = calloc((size_t)opt->batch, sizeof *a.samples);
    a.lines = calloc((size_t)opt->batch, sizeof *a.lines);
    if (a.samples == NULL || a.lines == NULL)
        abort();

    if (spool_open(opt->spool_root, opt->agent_id, opt->spool_max, 1, spool_warn, &a, &a.sp, err,
                   sizeof err) != SPOOL_OK) {
        warnx("%s", err);
        status = EXIT_NACK;
        goto done;
    }
    if (opt->verbose) {
        if (spool_first(a.sp, &first))
            warnx("spool %s: stream %" PRIu64 ", %zu batches (%" PRIu64
                  " bytes) to resend first, seqs %" PRIu64 "..%" PRIu64,
                  spool_dir(a.sp), spool_epoch(a.sp), spool_count(a.sp), spool_bytes(a.sp), first,
                  spool_next_seq(a.sp) - 1);
        else
            warnx("spool %s: stream %" PRIu64 ", empty, next seq %" PRIu64, spool_dir(a.sp),
                  spool_epoch(a.sp), spool_next_seq(a.sp));
    }
    if ((status = open_input(&a)) != 0) {
        say_spool_kept(&a);
        goto done;
    }
    a.ctx = zmq_ctx_new();
    if (a.ctx == NULL) {
        warnx("zmq_ctx_new: %s", zmq_strerror(errno));
        status = EXIT_NACK;
        goto done;
    }
    zmq_ctx_set(a.ctx, ZMQ_IPV6, 1); /* so that tcp://[::1]:P and IPv6 hosts connect */
    delivery_opts_t dopts = {
        .endpoints = opt->endpoints,
        .nendpoints = opt->nendpoints,
        .key = &opt->key,
        .agent_id = opt->agent_id,
        .epoch = spool_epoch(a.sp),
        .timeout_ms = opt->timeout_ms,
        .retries = opt->retries,
        .window = opt->window,
        .verbose = opt->verbose,
        .prog = PROG,
    };
    delivery_source_t src = {
        .next = spool_next_cb, .load = spool_load_cb, .settled = spool_settled_cb, .arg = &a};
    if (opt->ha) {
        if ((status = ha_open(&a, &dopts)) != 0)
            goto done;
        status = ha_loop(&a);
        for (int i = 0; i < HACURSOR_SIDES; i++)
            if (a.side[i].refused > a.refused)
                a.refused = a.side[i].refused;
        if (status == 0)
            status = a.ha_status;
    } else {
        if ((status = delivery_open(a.ctx, &dopts, &src, &a.dl)) != 0)
            goto done;
        status = loop(&a);
    }
    if (status == EXIT_NOACK || status == EXIT_CONFLICT || status == EXIT_NACK)
        say_spool_kept(&a);
    if (status == 0 && a.input_status != 0)
        status = a.input_status;
    if (a.refused > 0) {
        warnx("%" PRIu64 " rows refused by the daemon (said above, and kept in %s/rejected/); "
              "the other rows are applied",
              a.refused, spool_dir(a.sp));
        if (status == 0)
            status = EXIT_NACK;
    }
    if (status == 0 && a.corrupt > 0) {
        warnx("%" PRIu64 " corrupt spool files were moved to %s/corrupt/ and not sent", a.corrupt,
              spool_dir(a.sp));
        status = EXIT_NACK;
    }
    if (opt->verbose && a.dl != NULL) {
        const delivery_stats_t *st = delivery_stats(a.dl);
        warnx("%" PRIu64 " samples in %" PRIu64 " batches acked by %s (%" PRIu64 " resends)",
              st->samples_acked, st->batches_acked,
              opt->nendpoints > 1 ? "the endpoints" : delivery_endpoint(a.dl), st->resends);
    }
    for (int i = 0; opt->verbose && opt->ha && i < HACURSOR_SIDES; i++) {
        const delivery_stats_t *st = a.side[i].dl ? delivery_stats(a.side[i].dl) : NULL;
        if (st != NULL)
            warnx("%s: %" PRIu64 " samples in %" PRIu64 " batches acked (%" PRIu64
                  " resends), settled up to seq %" PRIu64,
                  a.side[i].tag, st->samples_acked, st->batches_acked, st->resends,
                  a.side[i].acked);
    }
done:
    delivery_close(&a.dl);
    for (int i = 0; i < HACURSOR_SIDES; i++)
        delivery_close(&a.side[i].dl);
    free(a.lost);
    free(a.refuse);
    if (a.ctx != NULL)
        zmq_ctx_term(a.ctx);
    input_reader_destroy(&a.r);
    spool_close(&a.sp);
    msgpack_sbuffer_destroy(&a.buf);
    free(a.samples);
    free(a.lines);
    return status;
}

/* ---- --check: judge a file, apply nothing ------------------------------------ */

/*
 * Sends one check and waits for its answer, resending on silence. Returns 0
 * with *ack (refusals into refused) decoded from *msg (the caller closes
 * it), or an exit status.
 */
static int check_exchange(const options_t *opt, void *sock, const msgpack_sbuffer *buf,
                          uint64_t seq, zmq_msg_t *msg, proto_ack_t *ack)
{
    char err[PROTO_ERRLEN];

    for (long tries = 0; opt->retries == 0 || tries <= opt->retries; tries++) {
        if (zmq_send(sock, buf->data, buf->size, 0) < 0) {
            warnx("send: %s", zmq_strerror(errno));
            return EXIT_NACK;
        }
        for (;;) {
            zmq_pollitem_t item = {.socket = sock, .events = ZMQ_POLLIN};
            int rc = zmq_poll(&item, 1, opt->timeout_ms);

            if (rc < 0 && errno == EINTR)
                continue;
            if (rc <= 0)
                break; /* silence: send again */
            if (zmq_msg_recv(msg, sock, 0) < 0)
                break;
            if (proto_ack_decode(zmq_msg_data(msg), zmq_msg_size(msg), ack, err, sizeof err) < 0) {
                warnx("ignoring a malformed answer: %s", err);
                continue;
            }
            if (ack->seq == seq || ack->seq == 0)
                return 0;
        }
        if (opt->verbose)
            warnx("check %" PRIu64 ": no answer within %ld ms", seq, opt->timeout_ms);
    }
    warnx("no answer from %s after %ld tries", opt->endpoints[0], opt->retries + 1);
    return EXIT_NOACK;
}

/*
 * --check FILE: the file goes to the daemon as "check" messages (PROTOCOL.md
 * 4.1), judged like batches but never applied, and every problem is said by
 * line. Exit 0: no problem; 1: problems (said); 2: bad input; 3: no answer.
 */
static int run_check(const options_t *opt)
{
    char err[INPUT_ERRLEN];
    const char *name = opt->path ? opt->path : "stdin";
    input_reader_t *r = open_reader(opt, err, sizeof err);
    proto_sample_t *samples = calloc((size_t)opt->batch, sizeof *samples);
    unsigned long *lines = calloc((size_t)opt->batch, sizeof *lines);
    proto_refusal_t *refused = calloc(PROTO_MAX_SAMPLES, sizeof *refused);
    uint64_t seq = 0, rows = 0, problems = 0;
    msgpack_sbuffer buf;
    void *ctx = NULL, *sock = NULL;
    int status = 0, linger = 0;
    zmq_msg_t msg;

    if (samples == NULL || lines == NULL || refused == NULL)
        abort();
    msgpack_sbuffer_init(&buf);
    zmq_msg_init(&msg);
    if (r == NULL) {
        warnx("%s", err);
        status = EXIT_INPUT;
        goto done;
    }
    if ((ctx = zmq_ctx_new()) == NULL || (sock = zmq_socket(ctx, ZMQ_DEALER)) == NULL ||
        zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger) != 0) {
        warnx("zmq: %s", zmq_strerror(errno));
        status = EXIT_NACK;
        goto done;
    }
    if (clientkey_setup(&opt->key, sock, err, sizeof err) != 0 ||
        zmq_connect(sock, opt->endpoints[0]) != 0) {
        warnx("%s: %s", opt->endpoints[0], opt->key.on ? err : zmq_strerror(errno));
        status = EXIT_INPUT;
        goto done;
    }
    for (;;) {
        size_t n;
        int rc = input_read_batch(r, samples, (size_t)opt->batch, &n, lines, err, sizeof err);

        if (rc != INPUT_OK) {
            warnx("%s", err); /* a line the agent itself cannot read */
            problems++;
            status = EXIT_INPUT;
        }
        if (n == 0)
            break;
        proto_batch_t b = {.agent = proto_str(opt->agent_id),
                           .epoch = 1,
                           .seq = ++seq,
                           .nsamples = (uint32_t)n,
                           .samples = samples,
                           .cap = (uint32_t)n,
                           .dry_run = true};
        proto_ack_t ack = {.refused = refused, .refused_cap = PROTO_MAX_SAMPLES};

        msgpack_sbuffer_clear(&buf);
        if (proto_batch_encode(&b, &buf, err, sizeof err) < 0) {
            warnx("cannot encode check %" PRIu64 ": %s", seq, err);
            status = EXIT_NACK;
            goto done;
        }
        if ((status = check_exchange(opt, sock, &buf, seq, &msg, &ack)) != 0)
            goto done;
        rows += n;
        if (ack.status != PROTO_STATUS_OK && ack.status != PROTO_STATUS_PARTIAL) {
            long idx;
            proto_str_t why = reason_sample(ack.reason, &idx);

            if (ack.seq == 0 || !ack.dry_run)
                warnx("the daemon cannot check (an older clustermond, or a broken message): "
                      "%s: " PROTO_STR_FMT,
                      proto_status_name((proto_status_t)ack.status), PROTO_STR_ARG(ack.reason));
            else if (idx >= 0 && (size_t)idx < n)
                warnx("%s:%lu: " PROTO_STR_FMT, name, lines[idx], PROTO_STR_ARG(why));
            else
                warnx("%s: " PROTO_STR_FMT, proto_status_name((proto_status_t)ack.status),
                      PROTO_STR_ARG(ack.reason));
            status = EXIT_NACK;
            goto done;
        }
        for (uint32_t k = 0; k < ack.nrefused; k++) {
            long idx;
            proto_str_t why = reason_sample(ack.refused[k].reason, &idx);

            if (ack.refused[k].index < n)
                warnx("%s:%lu: " PROTO_STR_FMT, name, lines[ack.refused[k].index],
                      PROTO_STR_ARG(why));
        }
        problems += ack.nrefused;
        if (rc != INPUT_OK)
            break;
    }
    warnx("%s: %" PRIu64 " rows checked, %" PRIu64 " problems; nothing was applied", name, rows,
          problems);
    if (status == 0 && problems > 0)
        status = EXIT_NACK;
done:
    zmq_msg_close(&msg);
    if (sock != NULL)
        zmq_close(sock);
    if (ctx != NULL)
        zmq_ctx_term(ctx);
    input_reader_destroy(&r);
    msgpack_sbuffer_destroy(&buf);
    free(samples);
    free(lines);
    free(refused);
    return status;
}

/* ---- command line ------------------------------------------------------------ */

static void usage(FILE *fp)
{
    fprintf(
        fp,
        "usage: " PROG " [options] [FILE|-|--watch DIR|--exec CMD]\n"
        "Sends samples from FILE (CSV in UTF-8 or GBK, .xlsx, .xls; columns by name,\n"
        "or enterprise,metric,value,period-or-timestamp) or stdin to clustermond in\n"
        "acknowledged batches, through an on-disk spool.\n"
        "\n"
        "  -e, --endpoint URL   daemon ingest endpoint (default " DEFAULT_ENDPOINT ");\n"
        "                       repeat it or separate with commas to fail over\n"
        "  -a, --agent-id ID    agent id (default agent-<hostname>)\n"
        "  -b, --batch N        samples per batch, 1..%d (default %d)\n"
        "  -t, --timeout MS     wait this long for an ack (default %d)\n"
        "  -r, --retries N      resends of an unacked batch, 0 = forever (default %d)\n"
        "  -w, --window N       batches in flight at once, 1..%d (default 1: send one,\n"
        "                       wait for its ack, send the next)\n"
        "  -s, --spool DIR      spool root; the spool is DIR/AGENT_ID (default " DEFAULT_SPOOL ")\n"
        "      --spool-max SIZE most bytes to spool, suffix K, M or G (default 1G)\n"
        "      --server-key KEY the daemon's CURVE public key: Z85 text or a .pub/.key\n"
        "                       file (default $CLUSTERMON_SERVER_KEY); needs --key\n"
        "      --key FILE       this agent's key pair, from clustermonctl keygen\n"
        "                       (default $CLUSTERMON_KEY)\n"
        "      --ha A,B         an HA pair: deliver every batch to both daemons; a\n"
        "                       batch leaves the spool once both have settled it\n"
        "      --check          judge FILE without applying it: the daemon answers every\n"
        "                       row, each problem is said as FILE:LINE: reason (exit 1)\n"
        "  -c, --config FILE    read options from FILE (INI: [agent] with the long\n"
        "                       options' names and input = FILE, [columns], [metrics])\n"
        "      --encoding ENC   auto (default: UTF-8 unless the bytes are GB18030),\n"
        "                       utf-8 or gb18030 (gbk)\n"
        "      --sheet NAME     a spreadsheet's worksheet (default the first)\n"
        "      --columns MAP    NAME=ROLE[,...]: header names for firm, metric, value,\n"
        "                       period, timestamp, or - to ignore a column\n"
        "      --watch DIR      send each finished file dropped into DIR, then move\n"
        "                       it to DIR/done/ or DIR/rejected/ (with NAME.reason)\n"
        "      --settle TIME    a file unchanged this long is finished (default 5s)\n"
        "      --exec CMD       run CMD (sh -c) and send its stdout (CSV)\n"
        "      --every TIME     ... again every TIME (90, 90s, 5m, 1h)\n"
        "  -v, --verbose        report batches, resends, failovers and a summary on stderr\n"
        "  -h, --help           show this help\n"
        "  -V, --version        show the version\n"
        "\n"
        "Every batch is spooled before it is sent and removed when acked; a new run\n"
        "resends what is spooled, then resumes the same FILE after the last line\n"
        "spooled (a changed FILE is read from the start). A FILE is checked before\n"
        "anything new is sent; from stdin, the lines before a bad one are delivered,\n"
        "then the agent stops. Rows the daemon refuses (an unknown firm, a future\n"
        "period, a value out of range...) are said as FILE:LINE: reason and kept in\n"
        "the spool's rejected/SEQ.rejected.csv; the other rows of their batch are\n"
        "applied, and the agent exits 1 at the end.\n"
        "\n"
        "Exit status: 0 all acked and the spool empty, 1 a batch rejected (moved to\n"
        "the spool's rejected/) or another failure, 2 bad input or usage, 3 no ack\n"
        "after all tries (the spool is kept for the next run), 4 the agent id is\n"
        "in use by another agent (agent_conflict; the spool is kept).\n",
        PROTO_MAX_SAMPLES, DEFAULT_BATCH, DEFAULT_TIMEOUT_MS, DEFAULT_RETRIES, PROTO_MAX_WINDOW);
}

/* Parses a byte count with an optional K, M or G suffix (powers of 1024). */
static bool parse_size(const char *s, uint64_t *ret)
{
    unsigned shift = 0;
    char *end;

    if (*s < '0' || *s > '9')
        return false;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s)
        return false;
    switch (*end) {
    case '\0': break;
    case 'k':
    case 'K': shift = 10; break;
    case 'm':
    case 'M': shift = 20; break;
    case 'g':
    case 'G': shift = 30; break;
    default: return false;
    }
    if (*end != '\0' && end[1] != '\0')
        return false;
    if (v == 0 || v > (UINT64_MAX >> shift))
        return false;
    *ret = (uint64_t)v << shift;
    return true;
}

/* Adds the comma-separated endpoints of arg. Returns 0 or EXIT_INPUT. */
static int add_endpoints(options_t *opt, const char *arg)
{
    const char *p = arg;

    for (;;) {
        size_t len = strcspn(p, ",");

        if (len == 0) {
            warnx("--endpoint: empty endpoint in '%s'", arg);
            return EXIT_INPUT;
        }
        if (opt->nendpoints == MAX_ENDPOINTS) {
            warnx("--endpoint: at most %d endpoints", MAX_ENDPOINTS);
            return EXIT_INPUT;
        }
        opt->endpoints[opt->nendpoints] = strndup(p, len);
        if (opt->endpoints[opt->nendpoints] == NULL)
            abort();
        opt->nendpoints++;
        if (p[len] == '\0')
            return 0;
        p += len + 1;
    }
}

enum {
    OPT_SPOOL_MAX = 256,
    OPT_SERVER_KEY,
    OPT_KEY,
    OPT_ENCODING,
    OPT_SHEET,
    OPT_COLUMNS,
    OPT_WATCH,
    OPT_SETTLE,
    OPT_EXEC,
    OPT_EVERY,
    OPT_INPUT, /* the config's input = FILE */
    OPT_AGENT_ID,
    OPT_CHECK,
    OPT_HA,
};

static const struct option longopts[] = {
    {"config", required_argument, NULL, 'c'},
    {"endpoint", required_argument, NULL, 'e'},
    {"agent-id", required_argument, NULL, 'a'},
    {"batch", required_argument, NULL, 'b'},
    {"timeout", required_argument, NULL, 't'},
    {"retries", required_argument, NULL, 'r'},
    {"window", required_argument, NULL, 'w'},
    {"spool", required_argument, NULL, 's'},
    {"spool-max", required_argument, NULL, OPT_SPOOL_MAX},
    {"server-key", required_argument, NULL, OPT_SERVER_KEY},
    {"key", required_argument, NULL, OPT_KEY},
    {"encoding", required_argument, NULL, OPT_ENCODING},
    {"sheet", required_argument, NULL, OPT_SHEET},
    {"columns", required_argument, NULL, OPT_COLUMNS},
    {"watch", required_argument, NULL, OPT_WATCH},
    {"settle", required_argument, NULL, OPT_SETTLE},
    {"exec", required_argument, NULL, OPT_EXEC},
    {"every", required_argument, NULL, OPT_EVERY},
    {"check", no_argument, NULL, OPT_CHECK},
    {"ha", required_argument, NULL, OPT_HA},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

static char *xstrdup_or_die(const char *s)
{
    char *p = strdup(s);
    if (p == NULL)
        abort();
    return p;
}

/* Appends "NAME=ROLE[,...]" to the --columns map. */
static void add_columns(options_t *opt, const char *arg)
{
    size_t old = opt->columns != NULL ? strlen(opt->columns) : 0;
    char *p = realloc(opt->columns, old + strlen(arg) + 2);

    if (p == NULL)
        abort();
    if (old > 0)
        p[old++] = ',';
    strcpy(p + old, arg);
    opt->columns = p;
}

/*
 * Applies one option (from the command line, or a config key of the same
 * name). `where` prefixes errors ("--batch" or "agent.conf:4: batch").
 * Returns 0, -1 after --help/--version, or EXIT_INPUT.
 */
static int apply_option(options_t *opt, int c, const char *arg, const char *where,
                        const char **agent_id)
{
    int rc;

    switch (c) {
    case 'e':
        if (opt->ha && !(opt->endpoints_from_config && where[0] == '-')) {
            warnx("%s: --ha names the endpoints (A,B); -e does not go with it", where);
            return EXIT_INPUT;
        }
        opt->ha = false; /* a command-line -e replaces the config's pair */
        if (opt->endpoints_from_config && where[0] == '-') {
            for (size_t i = 0; i < opt->nendpoints; i++)
                free(opt->endpoints[i]);
            opt->nendpoints = 0;
            opt->endpoints_from_config = false;
        }
        if ((rc = add_endpoints(opt, arg)) != 0)
            return rc;
        if (where[0] != '-')
            opt->endpoints_from_config = true;
        break;
    case OPT_HA:
        /* the pair replaces any -e: both are sent everything, none is a failover */
        for (size_t i = 0; i < opt->nendpoints; i++)
            free(opt->endpoints[i]);
        opt->nendpoints = 0;
        if ((rc = add_endpoints(opt, arg)) != 0)
            return rc;
        if (opt->nendpoints != HACURSOR_SIDES ||
            strcmp(opt->endpoints[0], opt->endpoints[1]) == 0) {
            warnx("%s: '%s' must be two different endpoints, A,B", where, arg);
            return EXIT_INPUT;
        }
        opt->ha = true;
        opt->endpoints_from_config = where[0] != '-';
        break;
    case 'a':
    case OPT_AGENT_ID: *agent_id = arg; break;
    case 'b':
        if (!args_parse_long(arg, 1, PROTO_MAX_SAMPLES, &opt->batch)) {
            warnx("%s: '%s' is not a number in 1..%d", where, arg, PROTO_MAX_SAMPLES);
            return EXIT_INPUT;
        }
        break;
    case 't':
        if (!args_parse_long(arg, 1, INT_MAX, &opt->timeout_ms)) {
            warnx("%s: '%s' is not a positive number of milliseconds", where, arg);
            return EXIT_INPUT;
        }
        break;
    case 'r':
        if (!args_parse_long(arg, 0, 1000000, &opt->retries)) {
            warnx("%s: '%s' is not a number in 0..1000000", where, arg);
            return EXIT_INPUT;
        }
        break;
    case 'w':
        if (!args_parse_long(arg, 1, PROTO_MAX_WINDOW, &opt->window)) {
            warnx("%s: '%s' is not a number in 1..%d", where, arg, PROTO_MAX_WINDOW);
            return EXIT_INPUT;
        }
        break;
    case 's':
        if (arg[0] == '\0') {
            warnx("%s: empty directory name", where);
            return EXIT_INPUT;
        }
        opt->spool_root = arg;
        break;
    case OPT_SPOOL_MAX:
        if (!parse_size(arg, &opt->spool_max)) {
            warnx("%s: '%s' is not a positive size (bytes, or with K, M or G)", where, arg);
            return EXIT_INPUT;
        }
        break;
    case OPT_SERVER_KEY: opt->server_key_arg = arg; break;
    case OPT_KEY: opt->key_arg = arg; break;
    case OPT_ENCODING:
        if (input_encoding_parse(arg, &opt->in.encoding) != 0) {
            warnx("%s: '%s' is not auto, utf-8 or gb18030 (gbk)", where, arg);
            return EXIT_INPUT;
        }
        break;
    case OPT_SHEET: opt->in.sheet = arg; break;
    case OPT_COLUMNS: add_columns(opt, arg); break;
    case OPT_WATCH: opt->watch = arg; break;
    case OPT_EXEC: opt->exec = arg; break;
    case OPT_SETTLE:
    case OPT_EVERY:
        if (!feed_duration_parse(arg, c == OPT_SETTLE ? &opt->settle_ms : &opt->every_ms)) {
            warnx("%s: '%s' is not a duration (90, 90s, 500ms, 5m, 1h, 1d)", where, arg);
            return EXIT_INPUT;
        }
        break;
    case OPT_CHECK: opt->check = true; break;
    case OPT_INPUT: opt->path = strcmp(arg, "-") == 0 ? NULL : arg; break;
    case 'v': opt->verbose = true; break;
    case 'h': usage(stdout); return -1;
    case 'V': printf(PROG " " CLUSTERMON_VERSION "\n"); return -1;
    default: usage(stderr); return EXIT_INPUT;
    }
    return 0;
}

/* ---- the agent's config file (-c) -------------------------------------------- */

typedef struct {
    options_t *opt;
    const char *path;
    const char **agent_id;
    int status;
} conf_t;

/*
 * [agent] takes the long options' names (and input = FILE); [columns] is
 * NAME = ROLE; [metrics] maps a wide table's column to a metric id. Values
 * are copied: the options keep them for the whole run.
 */
static int conf_cb(void *user, const char *section, const char *name, const char *value)
{
    conf_t *c = user;
    char where[512];

    if (c->status != 0)
        return 1;
    snprintf(where, sizeof where, "%s: [%s] %s", c->path, section, name);
    if (strcmp(section, "metrics") == 0) {
        rowmap_metric_t *m = realloc(c->opt->metrics, (c->opt->nmetrics + 1) * sizeof *m);
        if (m == NULL)
            abort();
        m[c->opt->nmetrics++] = (rowmap_metric_t){xstrdup_or_die(name), xstrdup_or_die(value)};
        c->opt->metrics = m;
        return 1;
    }
    if (strcmp(section, "columns") == 0) {
        char buf[1024];
        snprintf(buf, sizeof buf, "%s=%s", name, value);
        add_columns(c->opt, buf);
        return 1;
    }
    if (strcmp(section, "agent") != 0) {
        warnx("%s: unknown section [%s] (agent, columns, metrics)", c->path, section);
        c->status = EXIT_INPUT;
        return 1;
    }
    int code = 0;
    char key[64];
    snprintf(key, sizeof key, "%s", name);
    for (char *k = key; *k != '\0'; k++)
        if (*k == '_')
            *k = '-'; /* agent_id as well as agent-id */
    name = key;
    if (strcmp(name, "input") == 0)
        code = OPT_INPUT;
    for (const struct option *o = longopts; code == 0 && o->name != NULL; o++)
        if (strcmp(o->name, name) == 0 && strcmp(name, "config") != 0 &&
            strcmp(name, "check") != 0 && strcmp(name, "help") != 0 && strcmp(name, "version") != 0)
            code = o->val;
    if (code == 0) {
        warnx("%s: unknown key (the long options' names, and input)", where);
        c->status = EXIT_INPUT;
        return 1;
    }
    if (code == 'v') {
        c->opt->verbose =
            strcmp(value, "yes") == 0 || strcmp(value, "true") == 0 || strcmp(value, "1") == 0;
        return 1;
    }
    if (code == 'a')
        code = OPT_AGENT_ID;
    char **v = realloc(c->opt->conf_values, (c->opt->nconf_values + 1) * sizeof *v);
    if (v == NULL)
        abort();
    c->opt->conf_values = v;
    v[c->opt->nconf_values] = xstrdup_or_die(value);
    int rc = apply_option(c->opt, code, v[c->opt->nconf_values++], where, c->agent_id);
    if (rc != 0)
        c->status = rc < 0 ? EXIT_INPUT : rc;
    return 1;
}

static int load_config(options_t *opt, const char *path, const char **agent_id)
{
    conf_t c = {opt, path, agent_id, 0};
    int rc = ini_parse(path, conf_cb, &c);

    if (rc < 0) {
        warnx("%s: %s", path, rc == -1 ? strerror(errno) : "cannot be read");
        return EXIT_INPUT;
    }
    if (rc > 0 && c.status == 0) {
        warnx("%s:%d: not a [section] or key = value line", path, rc);
        return EXIT_INPUT;
    }
    return c.status;
}

static int parse_options(int argc, char **argv, options_t *opt)
{
    const char *agent_id = NULL, *config = NULL;
    char err[1024], where[64];
    int c, rc;

    /* the config first, so the command line overrides it */
    opterr = 0;
    while ((c = getopt_long(argc, argv, "c:e:a:b:t:r:w:s:vhV", longopts, NULL)) != -1)
        if (c == 'c')
            config = optarg;
    opterr = 1;
    optind = 0;
    if (config != NULL && (rc = load_config(opt, config, &agent_id)) != 0)
        return rc;
    while ((c = getopt_long(argc, argv, "c:e:a:b:t:r:w:s:vhV", longopts, NULL)) != -1) {
        if (c == 'c')
            continue;
        const char *name = NULL;
        for (const struct option *o = longopts; o->name != NULL; o++)
            if (o->val == c)
                name = o->name;
        snprintf(where, sizeof where, "--%s", name != NULL ? name : "?");
        if ((rc = apply_option(opt, c, optarg, where, &agent_id)) != 0)
            return rc;
    }
    if (argc - optind > 1) {
        warnx("expected at most one input file");
        usage(stderr);
        return EXIT_INPUT;
    }
    if (optind < argc)
        opt->path = strcmp(argv[optind], "-") != 0 ? argv[optind] : NULL;
    if ((opt->watch != NULL) + (opt->exec != NULL) + (optind < argc) > 1) {
        warnx("one input: a FILE, --watch DIR or --exec CMD");
        return EXIT_INPUT;
    }
    if (opt->every_ms > 0 && opt->exec == NULL) {
        warnx("--every goes with --exec");
        return EXIT_INPUT;
    }
    opt->in.map = (rowmap_opts_t){opt->columns, opt->metrics, opt->nmetrics};
    if (opt->columns != NULL) {
        rowmap_t *m = rowmap_new(&opt->in.map, err, sizeof err);
        if (m == NULL) {
            warnx("%s", err);
            return EXIT_INPUT;
        }
        rowmap_destroy(&m);
    }
    if (opt->nendpoints == 0 && (rc = add_endpoints(opt, DEFAULT_ENDPOINT)) != 0)
        return rc;

    if (agent_id == NULL) {
        char host[256];

        if (gethostname(host, sizeof host) != 0)
            snprintf(host, sizeof host, "unknown");
        host[sizeof host - 1] = '\0';
        /* Long host names are cut to fit the id limit. */
        snprintf(opt->agent_id, sizeof opt->agent_id, "agent-%.*s", PROTO_MAX_ID_LEN - 6, host);
    } else {
        size_t len = strlen(agent_id);

        if (len == 0 || len > PROTO_MAX_ID_LEN) {
            warnx("--agent-id: must be 1..%d bytes", PROTO_MAX_ID_LEN);
            return EXIT_INPUT;
        }
        memcpy(opt->agent_id, agent_id, len + 1);
    }
    if (!spool_agent_id_ok(opt->agent_id)) {
        warnx(
            "--agent-id: '%s' must be letters, digits, '_', '-' and '.' (not first): it names the "
            "spool directory",
            opt->agent_id);
        return EXIT_INPUT;
    }
    if (clientkey_init(&opt->key, opt->server_key_arg, opt->key_arg, err, sizeof err) != 0) {
        warnx("%s", err);
        return EXIT_INPUT;
    }
    return 0;
}

/* ---- unattended inputs ---------------------------------------------------------- */

static void stop_cb(int sig)
{
    (void)sig;
    stopping = 1;
}

static void feed_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void feed_log(const char *fmt, ...)
{
    char buf[8192];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    warnx("%s", buf);
}

/* One file of a drop folder or one command's output: a whole run. */
static int send_file(void *arg, const char *path, char *reason, size_t reasonlen)
{
    options_t opt = *(const options_t *)arg;

    opt.path = path;
    nsaid = 0;
    said[0] = '\0';
    int rc = run(&opt);
    snprintf(reason, reasonlen, "%s", said);
    return rc;
}

static int run_unattended(options_t *opt)
{
    struct sigaction sa = {.sa_handler = stop_cb};
    feed_t f = {
        .send = send_file,
        .arg = opt,
        .retry_status = {EXIT_NOACK, EXIT_CONFLICT, 0},
        .stop = &stopping,
        .log = feed_log,
    };
    char tmp[4096];

    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    if (opt->watch != NULL)
        return feed_watch(&f, opt->watch, opt->settle_ms);
    /* the command's output goes beside the spool, which the unit lets us write */
    if (mkdir(opt->spool_root, 0700) != 0 && errno != EEXIST) {
        warnx("%s: %s", opt->spool_root, strerror(errno));
        return EXIT_NACK;
    }
    snprintf(tmp, sizeof tmp, "%s", opt->spool_root);
    return feed_exec(&f, opt->exec, opt->every_ms, tmp);
}

int main(int argc, char **argv)
{
    options_t opt = {
        .spool_root = DEFAULT_SPOOL,
        .spool_max = DEFAULT_SPOOL_MAX,
        .batch = DEFAULT_BATCH,
        .timeout_ms = DEFAULT_TIMEOUT_MS,
        .retries = DEFAULT_RETRIES,
        .window = 1,
        .settle_ms = 5000,
    };
    int rc = parse_options(argc, argv, &opt);
    if (rc == 0)
        rc = opt.check                               ? run_check(&opt)
             : opt.watch != NULL || opt.exec != NULL ? run_unattended(&opt)
                                                     : run(&opt);
    else if (rc < 0)
        rc = 0; /* --help, --version */
    for (size_t i = 0; i < opt.nendpoints; i++)
        free(opt.endpoints[i]);
    for (size_t i = 0; i < opt.nmetrics; i++) {
        free((char *)(uintptr_t)opt.metrics[i].column);
        free((char *)(uintptr_t)opt.metrics[i].metric);
    }
    free(opt.metrics);
    free(opt.columns);
    for (size_t i = 0; i < opt.nconf_values; i++)
        free(opt.conf_values[i]);
    free(opt.conf_values);
    clientkey_clear(&opt.key);
    return rc;
}
