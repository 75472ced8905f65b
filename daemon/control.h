/*
 * control.h -- the control socket that clustermonctl talks to.
 *
 * A ROUTER: [identity][(empty)][ctl request] in, the same envelope with a
 * ctl_reply out. The command table in control.c names every command, the
 * key roles that may run it and its arguments (name, type, required), which
 * dispatch checks before a handler runs; proto/PROTOCOL.md section 4.7
 * specifies each one's arguments and reply body.
 * Every answer is built on the loop from current state; commands are cheap
 * (a report walks the firms once).
 */
#ifndef CLUSTERMON_CONTROL_H
#define CLUSTERMON_CONTROL_H

#include <stdbool.h>
#include <stdint.h>

#include "daemon/keys.h"
#include "daemon/log.h"
#include "daemon/zsock.h"
#include "proto/proto.h"

struct server;

typedef struct {
    struct server *srv;
    zsock_t zs;          /* the ROUTER (zs.sock) */
    msgpack_sbuffer out; /* reused reply buffer */
    uint64_t requests, errors;
    uint64_t denied;      /* commands refused for the caller's key */
    uint64_t oversize;    /* requests over CONTROL_MAX_REQUEST, refused */
    uint64_t bad_args;    /* requests refused for an unknown, mistyped or missing arg */
    uint64_t bad_version; /* requests of a protocol version the daemon does not speak */
    log_throttle_t log;
    /* With CURVE: the key of the request being handled (NULL between
     * requests, or if the key was revoked); handlers that filter by key,
     * like alerts, read it. */
    const access_key_t *caller;
    /* Who runs the request being handled, for what a handler records: the
     * CURVE key's name, the dashboard's user, or NULL (no CURVE). */
    const char *who;
} control_t;

/*
 * A command handler: called on the loop with the decoded request; it writes
 * the whole reply through pk: proto_ctl_reply_begin() and then exactly one
 * body object (control_reply_error() does both for a refusal).
 */
typedef void (*control_handler_t)(struct server *srv, msgpack_packer *pk,
                                  const proto_ctl_request_t *req);

/*
 * One argument a command takes: its name, its type (PROTO_ARG_INT or
 * PROTO_ARG_STR) and whether it must be there. A nil value counts as
 * absent. A command's list ends with an entry whose name is NULL.
 */
typedef struct {
    const char *name;
    proto_arg_kind_t kind;
    bool required;
} control_arg_t;

/*
 * Checks req's arguments against spec (cmd names the command in reasons):
 * every argument must be in spec and of its type, every required one there.
 * Returns 0, or -1 with "ARG: reason" (an unknown argument: the allowed ones
 * listed) in err. Pure: no server state; handlers still check ranges.
 */
int control_args_check(const char *cmd, const control_arg_t *spec, const proto_ctl_request_t *req,
                       char *err, size_t errlen);

/* The command table, for describe: the number of commands, and command i's
 * name (NULL past the end), the KEY_ROLE_* that may run it and its
 * arguments (static). */
size_t control_commands(void);
const char *control_command(size_t i, unsigned *ret_need, const control_arg_t **ret_args);

/* Requests larger than this are refused with a reply naming it; up to
 * CONTROL_MAX_FRAME ZeroMQ delivers them so that the refusal can be sent,
 * above it ZeroMQ drops the connection (memory stays bounded). */
#define CONTROL_MAX_REQUEST (64 * 1024)
#define CONTROL_MAX_FRAME (1024 * 1024)

void control_pack_str(msgpack_packer *pk, const char *s);
/* One map entry: the key, then its value. */
void control_pack_kv_u64(msgpack_packer *pk, const char *key, uint64_t v);
void control_pack_kv_i64(msgpack_packer *pk, const char *key, int64_t v);
void control_pack_kv_str(msgpack_packer *pk, const char *key, const char *v);
void control_pack_kv_bool(msgpack_packer *pk, const char *key, bool v);
void control_reply_error(msgpack_packer *pk, const char *reason);

/*
 * Runs req through the command table as the socket does, for the dashboard
 * (daemon/webapi.c): the command must allow one of roles (KEY_ROLE_*), its
 * arguments are checked, then its handler writes the reply through pk. who
 * (borrowed for the call) names the caller in refusals and in what handlers
 * record. On the loop.
 */
void control_run(control_t *c, unsigned roles, const char *who, const proto_ctl_request_t *req,
                 msgpack_packer *pk);

/* Binds the ROUTER on endpoint and starts reading. Returns 0 or -1 (err). */
int control_start(control_t *c, struct server *srv, const char *endpoint, char *err, size_t errlen);
/* Stops reading; the socket and the reply buffer go once the loop has
 * closed its handles (zsock_close). */
void control_close(control_t *c);

#endif
