/*
 * history.h -- the alert history: every published transition, every
 * acknowledgement and every silence added or removed, in the order they
 * happened, kept for a retention period; and the acknowledgements in force.
 *
 * A working group asks "what fired last month in energy-env, and who
 * followed it up?": the alert book knows only what fires now, the WAL only
 * until the next snapshot. So the history is a journal of its own,
 * state_dir/history: records appended as they happen, each framed
 * [u32 length][u32 CRC-32 of the payload][payload] (little-endian), the
 * payload one MessagePack array (history.c, entry_pack). It is fsynced per
 * the daemon's fsync policy (always: each record; interval: from the cron;
 * never: by the kernel). At start-up the whole file is read back; a torn or
 * damaged tail (a SIGKILL mid-write) is cut off at the last whole record and
 * logged. The file is the durable copy: snapshots do not duplicate it.
 *
 * Retention ([alerting] history_retention, default 400d): entries older than
 * that are dropped at start-up and hourly, by rewriting the file atomically;
 * an acknowledgement still in force is always kept.
 *
 * Acknowledgements: `ack ALERT_ID --note TEXT` records who (the CURVE key's
 * name, or "local" without CURVE), when and why for a firing alert. While
 * in force its reminders (re-announcements every `repeat`) are held back;
 * it ends when the alert is next published for any other reason (resolved,
 * revised, flapping, firing again) or starts a new firing episode (since_ms
 * differs: a transition that a silence kept from being published).
 *
 * Everything runs on the loop. The alert fan-out calls history_alert_cb and
 * history_hold_cb (alerts.h hooks); control handlers call history_ack and
 * history_silence; queries read history_query and history_ack_find.
 */
#ifndef CLUSTERMON_HISTORY_H
#define CLUSTERMON_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "proto/proto.h"

typedef enum {
    HISTORY_ALERT = 0,   /* an alert published (not a reminder) */
    HISTORY_ACK,         /* an acknowledgement */
    HISTORY_SILENCE_ADD, /* a silence added */
    HISTORY_SILENCE_RM,  /* a silence removed by an operator */
    HISTORY_KIND_COUNT
} history_kind_t;

/* One entry. Strings are owned by the entry; NULL where not applicable. */
typedef struct {
    uint64_t id; /* 1, 2, ... in the order recorded; never reused */
    int64_t ts_ms;
    history_kind_t kind;
    char *alert_id; /* alert, ack */
    char *rule;     /* alert, silence (and ack: the alert's rule) */
    char *cluster;
    char *firm;   /* NULL: the rule's scope as a whole */
    int state;    /* alert: proto_alert_state_t; ack: the alert's state then */
    int severity; /* alert, ack */
    uint64_t seq; /* alert: its publication's seq */
    uint64_t n;   /* alert: the alert's transition ordinal (PROTOCOL.md 4.3); 0 if unknown */
    int64_t since_ms;
    char *summary;    /* alert */
    char *who;        /* ack, silence: the key's name */
    char *note;       /* ack: the note; silence: the reason */
    uint64_t ref;     /* silence: its id */
    int64_t until_ms; /* silence add: until */
} history_entry_t;

/* An acknowledgement in force. */
typedef struct {
    char *alert_id;
    int64_t since_ms; /* the firing episode it acknowledges */
    int64_t at_ms;
    char *who, *note;
    uint64_t entry; /* its history entry id */
} history_ack_t;

typedef struct {
    int fd; /* state_dir/history, O_APPEND; -1 if none */
    char path[4096];
    char dir[4096];
    int fsync_policy; /* wal_fsync_t */
    int64_t retention_ms;
    history_entry_t *entries; /* oldest first */
    size_t n, cap;
    uint64_t next_id;
    history_ack_t *acks;
    size_t nacks, acks_cap;
    bool unsynced;
    int64_t last_prune_ms;                  /* loop time */
    uint64_t written, failed, pruned, held; /* counters */
    msgpack_sbuffer buf;
} history_t;

/* Opens (creating) dir/history and reads it back (a torn tail is cut off,
 * logged); drops what is older than retention_ms before now_ms. Returns 0,
 * or -1 with "PATH: reason" in err. */
int history_open(history_t *h, const char *dir, int fsync_policy, int64_t retention_ms,
                 int64_t now_ms, char *err, size_t errlen);
/* Frees everything (fsyncs first unless the policy is never); closing
 * twice is harmless. */
void history_close(history_t *h);

/* Settings a reload may change. */
void history_configure(history_t *h, int fsync_policy, int64_t retention_ms);

/* Cron: fsync under the interval policy, prune hourly. loop_ms is uv_now,
 * wall_ms the wall clock. */
void history_tick(history_t *h, int64_t loop_ms, int64_t wall_ms);

/* alerts.h hook, after a publication: journals a's transition (reminders
 * are not journaled) and ends an acknowledgement of it. data is the history. */
void history_alert_cb(void *data, const proto_alert_t *a);

/* alerts.h hook, before a reminder goes out: true holds it back (the
 * alert is acknowledged for its current firing episode). */
bool history_hold_cb(void *data, const proto_alert_t *a);

/*
 * Acknowledges alert a (as the alert book has it now: id, rule, cluster,
 * firm, state, since) by who, with note, at now_ms; replaces an earlier
 * acknowledgement. Returns the entry's id, or 0 if it could not be journaled
 * (then nothing changed).
 */
uint64_t history_ack(history_t *h, const proto_alert_t *a, const char *who, const char *note,
                     int64_t now_ms);

/* Records a silence added (add true: until_ms, reason) or removed. Returns
 * the entry's id, or 0 if it could not be journaled (logged). */
uint64_t history_silence(history_t *h, bool add, uint64_t silence_id, const char *rule,
                         const char *cluster, const char *firm, int64_t until_ms,
                         const char *reason, const char *who, int64_t now_ms);

/* The acknowledgement in force for alert_id, or NULL. Borrowed until the
 * history next changes. */
const history_ack_t *history_ack_find(const history_t *h, const char *alert_id, size_t len);

/* A history query: every field optional (NULL / 0). */
typedef struct {
    int64_t since_ms, until_ms; /* [since, until); 0 = open */
    const char *cluster, *rule, *firm, *alert_id;
    size_t limit; /* the newest this many; 0 = HISTORY_DEFAULT_LIMIT */
} history_filter_t;

#define HISTORY_DEFAULT_LIMIT 1000

/* Writes into *ret (caller frees the array, not the entries: borrowed until
 * the history next changes) the entries that match f, oldest first (at most
 * f->limit, the newest ones), and returns how many; *ret_total: how many
 * matched before the limit. */
size_t history_query(const history_t *h, const history_filter_t *f, const history_entry_t ***ret,
                     size_t *ret_total);

const char *history_kind_name(history_kind_t k);

/* Packs one entry as a map (PROTOCOL.md 4.7, history), for control replies. */
void history_entry_pack(msgpack_packer *pk, const history_entry_t *e);

#endif
