/*
 * reload.h -- SIGHUP (or the control command "reload"): read the config and
 * the firm registry again and switch to them atomically.
 *
 * Two phases, as in OpenBGPD: parse and validate the whole new config and
 * registry first; on any error log it and change nothing. On success carry
 * the state over *by name*: firm figures move to the firms' new indexes,
 * alerts to their rules' and firms' new indexes. What no longer exists is
 * dropped (a firing alert whose rule or firm is gone is published as
 * resolved, so subscribers' copies stay right). Then every rule is evaluated
 * once against the kept data, so new and changed rules take effect at once.
 *
 * Endpoints, state_dir, timezone and fsync stay as they are until a
 * restart (they belong to sockets and files already open); a change to them
 * is logged.
 */
#ifndef CLUSTERMON_RELOAD_H
#define CLUSTERMON_RELOAD_H

#include <stddef.h>

struct server;

/* Returns 0 (switched), or -1 with the reason in err (nothing changed). */
int reload_run(struct server *srv, char *err, size_t errlen);

#endif
