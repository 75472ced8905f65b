/*
 * webupload.h -- a firm's figures uploaded from the dashboard: the path for
 * firms without a Linux box to run clustermon-agent on (a finance office on
 * Windows with a spreadsheet).
 *
 * A firm login (http_users role firm:ID, daemon/webusers.h) posts the bytes
 * of a CSV, .xlsx or .xls file. The daemon reads it with the agent's own
 * reader (agents/input.c: encodings, headers in any order, wide tables,
 * spreadsheets), so a file means the same here as to clustermon-agent, and
 * judges it in two steps:
 *
 *   POST upload/check?name=FILE   a dry run: the file as one "check" batch
 *                                 through ingest (daemon/ingest.c), every
 *                                 problem said by line, as `clustermon-agent
 *                                 --check` says it; nothing is applied. The
 *                                 answer carries the seq to confirm with.
 *   POST upload/apply?name=FILE&seq=N   the same bytes as batch N of the
 *                                 login's web stream, through the same
 *                                 ingest, WAL and acks as an agent's batch
 *                                 (partial: the good rows are applied, the
 *                                 bad ones listed).
 *   GET  upload/state             the login, its firms, the next seq.
 *
 * Each login has its own stream: key "web", agent id the login's name,
 * epoch 1, seqs from 1, settled durably like any agent's (daemon/streams.h).
 * A check hands out the stream's next seq; the confirm sends the file as
 * that seq, so a double click or a retried POST is a resend the sequence
 * discipline answers without applying it again. Which file each recent seq
 * carried is remembered (a digest, not kept across restarts), so confirming
 * a check that another upload has overtaken is refused (409: check again),
 * never mistaken for the resend of the other.
 *
 * A firm login may upload only for its firms: a row of another firm is
 * refused (forbidden) on its line, as a firm's CURVE key would be. Admins
 * may upload for any firm. The file's bytes are written to a temporary file
 * under state_dir for the reader (libzip and FreeXL open paths) and removed
 * at once; it is small (HTTP_MAX_UPLOAD) and the work is on the loop.
 */
#ifndef CLUSTERMON_WEBUPLOAD_H
#define CLUSTERMON_WEBUPLOAD_H

#include <stdint.h>

#include "daemon/webapi.h"

#define WEBUPLOAD_KEY "web" /* the streams' key: no CURVE key is 3 bytes long */
#define WEBUPLOAD_EPOCH 1
#define WEBUPLOAD_RECENT 64 /* confirmed uploads remembered (login, seq, digest) */

struct server;

typedef struct {
    char user[64];
    uint64_t seq;
    uint64_t digest; /* FNV-1a of the file's name and bytes */
} webupload_recent_t;

/* What the upload path remembers between requests (in http_t). */
typedef struct {
    webupload_recent_t recent[WEBUPLOAD_RECENT];
    unsigned next; /* the slot the next confirmed upload takes */
} webupload_t;

/* Answers a request under upload/ (path after "upload/" in rest) into rep.
 * The caller's firms (a firm login's "ID;ID") in firms, "" otherwise. With
 * fsync = always, rep->wal_pos says how far the WAL must be on disk before
 * the answer is sent. On the loop. */
void webupload_handle(struct server *srv, webupload_t *u, const webapi_request_t *req,
                      const char *rest, size_t rest_len, webapi_reply_t *rep);

#endif
