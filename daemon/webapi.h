/*
 * webapi.h -- the dashboard's JSON API under /api/v1/ (proto/PROTOCOL.md
 * section 9 lists it). Every figure comes from a control command run through
 * the control socket's own command table (control_run: the same roles,
 * arguments and handlers as clustermonctl), its body turned into JSON by
 * agents/ctljson.h, so amounts are exact decimal strings and a page shows
 * what `clustermonctl ... --json` prints. Composite views (overview,
 * cluster, firm) put several command replies together and add only what a
 * page needs beside them (run-rate, gap to the target).
 *
 *   GET  cmd/NAME?ARG=V...  any command a viewer may run; ARG typed by the
 *                           command's table entry
 *   POST cmd/NAME           {"ARG": V, ...}: the commands that change state
 *                           (silence_add, silence_rm, ...), admins only
 *   GET  overview, cluster/ID, firm/ID, alerts, me
 *   GET  upload/state, POST upload/check, upload/apply   a firm's upload
 *                           (daemon/webupload.h)
 *   GET  events             Server-Sent Events (daemon/http.c)
 *
 * Called by daemon/http.c on the loop.
 */
#ifndef CLUSTERMON_WEBAPI_H
#define CLUSTERMON_WEBAPI_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "proto/proto.h"

struct server;

typedef struct {
    bool post;        /* POST, else GET or HEAD */
    const char *path; /* after "/api/v1/", not NUL-terminated */
    size_t path_len;
    const char *query; /* after '?', "" if none */
    size_t query_len;
    const char *body; /* a POST's body */
    size_t body_len;
    unsigned roles;    /* KEY_ROLE_* of the caller */
    const char *user;  /* the caller's name, NULL without logins */
    const char *firms; /* a firm login's "ID;ID" (webusers.h), "" otherwise */
} webapi_request_t;

typedef struct {
    int status; /* 200, 400, 403, 404, 405, 415 */
    char *body; /* JSON, malloc'd: the caller owns it */
    size_t len;
    uint64_t wal_pos; /* fsync = always: send only once the WAL is on disk up to here (0: now) */
} webapi_reply_t;

/* The two ways an answer is made, shared with webupload.c: j as the body
 * (takes ownership of j; 500 if it cannot be written), or {"error": TEXT}. */
void webapi_reply_json(webapi_reply_t *rep, int status, json_t *j);
void webapi_reply_error(webapi_reply_t *rep, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Answers req into rep (always a JSON body: the figures, or {"error": ...}). */
void webapi_handle(struct server *srv, const webapi_request_t *req, webapi_reply_t *rep);

/* alerts.h's publication hook (data is the server): sends the transition to
 * every open events connection as "event: alert", the alert as
 * clustermon-sub prints it (agents/alertjson.h). */
void webapi_alert_published(void *data, const proto_alert_t *a);

#endif
