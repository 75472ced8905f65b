/*
 * reload.h -- SIGHUP (or the control command "reload"): read the config and
 * the firm registry again and switch to them atomically.
 *
 * Two phases, as in OpenBGPD: parse and validate the whole new config and
 * registry first; on any error log it and change nothing. On success carry
 * the state over *by name*: firm figures move to the firms' new indexes,
 * alerts to their rules' and firms' new indexes. What no longer exists is
 * dropped (a firing alert whose rule or firm is gone is published as
 * resolved, so subscribers' copies stay right, and journaled so: see
 * alertbook_carry_over). Then every rule is evaluated
 * once against the kept data, so new and changed rules take effect at once.
 *
 * Settings that belong to what is already open (endpoints, state_dir,
 * timezone, fsync, http, the CURVE key, user/group, alerts_hwm,
 * peer_timeout, run_as_root) stay as they are until a restart; a change to
 * one is logged, kept in reload_status_t.pending and named in the control
 * reply, so nobody believes it took effect.
 *
 * Whether the last reload worked is kept too (reload_status_t): status,
 * /metrics (clustermon_config_last_reload_successful) and systemd's STATUS=
 * say so until the next good reload.
 */
#ifndef CLUSTERMON_RELOAD_H
#define CLUSTERMON_RELOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/config.h"

#define RELOAD_MAX_PENDING 16
#define RELOAD_VALUE_LEN 128

struct server;

/* A [daemon] setting the file changed that waits for a restart. */
typedef struct {
    char setting[48];                  /* "daemon.http" */
    char running[RELOAD_VALUE_LEN];    /* what the daemon uses */
    char configured[RELOAD_VALUE_LEN]; /* what the file says now */
} reload_change_t;

typedef struct {
    bool last_ok;                   /* the last reload worked (true before any) */
    int64_t last_success_ms;        /* wall time of the last good load; start-up counts */
    uint64_t failed;                /* reloads rejected since start (server_t.reloads: good ones) */
    char last_error[CONFIG_ERRLEN]; /* why the last one failed; "" if it did not */
    /* as of the last good reload: settings that need a restart */
    reload_change_t pending[RELOAD_MAX_PENDING];
    size_t npending;
} reload_status_t;

/* From server_open: the configuration just loaded counts as a good load. */
void reload_status_init(reload_status_t *rs, int64_t now_ms);

/*
 * SIGHUP or the control command "reload", on the loop: tells systemd
 * (RELOADING=1, then READY=1 with STATUS= saying how it went), reloads,
 * logs, and records the outcome in srv->reload. Returns 0 (switched; see
 * srv->reload.pending for what waits for a restart), or -1 with the reason
 * in err (nothing changed).
 */
int reload_run(struct server *srv, char *err, size_t errlen);

#endif
