/*
 * ingest.h -- the ingest socket: agents' batches in, acks and nacks out.
 *
 * A ROUTER socket. Each message is [identity][batch] from a DEALER, or
 * [identity][""][batch] from a REQ; the reply mirrors the shape. A batch is
 * decoded, every sample resolved (firm and metric names -> indexes, period
 * -> calendar), and only then applied: a batch is all or nothing, so a nack
 * never leaves half a batch behind. With CURVE, every sample must be for a
 * firm the connection's key may report for (keys.h), or the whole batch is
 * nacked "forbidden". Samples per second are limited per connection and in
 * total; a batch over either limit is nacked "rate_limited" (the agent
 * backs off and resends it), never queued. Buffers for the samples are allocated
 * once, at start.
 *
 * Which batches are taken is the sequence discipline of streams.h: a batch is
 * applied only as the next seq of its stream, so an "ok" always means
 * "applied exactly once". Every settled seq -- applied, or refused for good --
 * is in the WAL before its answer is sent, so a restart answers a resend the
 * same way.
 */
#ifndef CLUSTERMON_INGEST_H
#define CLUSTERMON_INGEST_H

#include <stdint.h>

#include <stdbool.h>
#include <msgpack.h>
#include <zmq.h>

#include "daemon/judge.h"
#include "daemon/log.h"
#include "daemon/record.h"
#include "daemon/streams.h"
#include "daemon/zsock.h"
#include "proto/proto.h"

struct server;

/* A sample after resolution (judge.h): everything the apply step needs. */
typedef judge_resolved_t ingest_resolved_t;

/* A token bucket: samples per second, bursts of up to one second's worth
 * (or one batch, if that is more). */
typedef struct {
    uint64_t peer; /* hash of the connection's routing id, 0 = free */
    double tokens;
    int64_t last_ms;
} ingest_bucket_t;

/* Frames up to this reach the daemon, which answers those over
 * PROTO_MAX_MSG_SIZE too_large; larger ones ZeroMQ drops with the connection
 * (counted as a disconnect), so no peer makes the daemon hold more. */
#define INGEST_MAX_FRAME (2 * PROTO_MAX_MSG_SIZE)

#define INGEST_BUCKETS 4096 /* per-connection buckets, direct-mapped */

/* An answer held back until the WAL record it answers (or a record before
 * it) is on disk (fsync = always): an ok, or a final nack that settled a seq. */
typedef struct {
    zmq_msg_t id;
    bool has_delim;
    proto_ack_t ack;
    char *reason; /* owned; NULL: empty (ack.reason points into it) */
    uint64_t wal_pos;
} ingest_pending_t;

/* WAL record tags (record.h): the first byte of a record's payload. A record
 * that starts with a MessagePack map is a protocol-1 batch from an older daemon. */
#define INGEST_REC_BATCH RECORD_BATCH /* [tag][u8 keylen][key][batch message] */
#define INGEST_REC_SETTLE                                                                          \
    RECORD_SETTLE /* [tag][u8 keylen][key][u8 status][u8 agentlen][agent][u64 epoch][u64 seq] */
/* A partial batch: [tag][u8 keylen][key][u32 n][n x u32 index << 8 | status][batch message];
 * replay applies every sample but the n refused ones. */
#define INGEST_REC_PARTIAL RECORD_PARTIAL

typedef struct {
    struct server *srv;
    zsock_t zs;                  /* the ROUTER (zs.sock) */
    proto_sample_t *samples;     /* PROTO_MAX_SAMPLES */
    ingest_resolved_t *resolved; /* PROTO_MAX_SAMPLES */
    msgpack_sbuffer out;         /* reused reply buffer */
    streams_t streams;           /* the sequence discipline (streams.h) */
    unsigned char *rec;          /* reused WAL record buffer */
    size_t rec_cap;
    /* nack logging is throttled: a hostile peer must not flood the journal */
    log_throttle_t log;
    ingest_pending_t *pending; /* FIFO of held acks, ordered by wal_pos */
    size_t npending, pending_head, pending_cap;
    uint64_t replay_skipped;  /* WAL records that no longer resolve */
    ingest_bucket_t *buckets; /* INGEST_BUCKETS, per connection */
    ingest_bucket_t global;   /* all connections together */
    /* per-sample answers (partial batches, checks): PROTO_MAX_SAMPLES each */
    proto_refusal_t *refusals;
    uint32_t *refusal_codes; /* the same, as streams.h keeps them */
    char *refusal_text;      /* JUDGE_REASONLEN bytes per refusal */
    judge_stats_t judged;    /* samples refused, by kind */
    /* while ingest_local runs: where the answer goes, and the WAL position
     * it waits for (0: none) */
    msgpack_sbuffer *local_out;
    uint64_t local_wal_pos;
} ingest_t;

/* Allocates the tables and buffers (once, for the daemon's life). */
void ingest_init(ingest_t *in, struct server *srv);

/* Binds the ROUTER on endpoint and starts reading. Returns 0 or -1 (err). */
int ingest_start(ingest_t *in, const char *endpoint, char *err, size_t errlen);

/*
 * Handles one encoded batch (or check) from inside the daemon -- the
 * dashboard's upload (daemon/webupload.c) -- exactly as one from the socket:
 * the same decoding, judge, sequence discipline, WAL, apply and answer. The
 * stream is (keyid, the batch's agent id); key stands in for a connection's
 * CURVE key (the firms it may report for; NULL: any). msg is borrowed for
 * the call. The answer, an encoded proto ack, is appended to out; with
 * fsync = always it may be given only once the WAL is on disk up to
 * *ret_wal_pos (0: at once; wal_sync has been started). On the loop.
 */
void ingest_local(ingest_t *in, const char *keyid, const access_key_t *key, const void *msg,
                  size_t len, msgpack_sbuffer *out, uint64_t *ret_wal_pos);

/* Applies one WAL record at start-up (no acks, no alerts published).
 * A record that no longer resolves (a firm removed from the registry) is
 * logged, counted and skipped. */
void ingest_replay(ingest_t *in, const void *payload, size_t len);

/* After the last ingest_replay(), with the alertbook still quiet: evaluates
 * once each rule the replayed batches fed (replay defers them to here). */
void ingest_replay_done(ingest_t *in);

/* Sends the held acks whose WAL records are durable (written; with
 * fsync = always, synced). */
void ingest_release_acks(ingest_t *in);

/* The end of a drain of the ingest socket (and the cron's retry after a
 * failed one): writes the drain's staged WAL records with one write, then
 * publishes the alerts and sends the answers held for them. */
void ingest_group_end(ingest_t *in);

/* After start-up recovery: every stream counts as live for one lease, since
 * the daemon cannot know which agents were sending before it stopped. */
void ingest_recovered(ingest_t *in);

/* Stops reading; the socket is closed once the loop has closed its handles
 * (zsock_close). ingest_free() may follow once the loop has run out. */
void ingest_close(ingest_t *in);

/* Closes a second of nack logging: says how many nacks were not logged
 * (called per nack and from the cron, so the count is said after a flood). */
void ingest_log_tick(ingest_t *in, int64_t now);

/* Snapshot: packs the "stats" section, the lifetime counters ingest keeps
 * in server_t.stats: a map of samples_applied, batches_ok and
 * batches_duplicate. */
void ingest_stats_pack(const struct server *srv, msgpack_packer *pk);

/* Snapshot: checks (apply false) or applies (apply true) a map
 * ingest_stats_pack wrote; every counter must be there. Returns 0, or -1
 * with the reason in err ("stats: ..."). */
int ingest_stats_unpack(struct server *srv, const msgpack_object *o, bool apply, char *err,
                        size_t errlen);

/* Frees what ingest_init allocated; after the close callback ran. */
void ingest_free(ingest_t *in);

#endif
