/*
 * privdrop.h -- least privilege: the checks on the files the config names,
 * and the switch from root to daemon.user once every socket is bound.
 *
 * Binding may need root (a port below 1024, an ipc:// path in a root-owned
 * directory); nothing after it does. So the daemon binds, then becomes
 * daemon.user for good (real, effective and saved ids, supplementary groups
 * from the group database), and proves it by failing to get uid 0 back.
 * The state directory and the files directly in it are handed to that user
 * first, so the WAL, snapshots, the alert sequence and the lock keep working.
 *
 * The path checks refuse files that others could have written: a registry
 * or access list anyone can change would let anyone add a firm or a key, a
 * shared state directory would let them plant a snapshot. They run before
 * anything is opened, and under `clustermond -n` as well.
 */
#ifndef CLUSTERMON_PRIVDROP_H
#define CLUSTERMON_PRIVDROP_H

#include <stddef.h>

#include "daemon/config.h"

/*
 * Checks the paths cfg names, before any of them is opened:
 *  - state_dir, if it exists: a directory, writable by its owner only, owned
 *    by root, by us or by daemon.user (readable by others: a warning);
 *  - registry and access: regular files, not writable by everyone, in a
 *    directory that is not writable by everyone (unless sticky);
 *  - curve_secret_key: the same, and its owner's only (0600).
 * A file that does not exist is left to its loader to report. daemon.user
 * and daemon.group must exist, and the user must not be root (uid 0).
 * Returns 0, or -1 with "daemon.FIELD: PATH: reason" in err. Start-up only,
 * before the loop runs.
 */
int privdrop_check_paths(const config_t *cfg, char *err, size_t errlen);

/*
 * The same checks for a reload, which reads the config, the registry and
 * the access list again: all of the above but curve_secret_key, which a
 * reload does not read (the key was read at start-up, perhaps as root, and
 * is kept; after the drop the daemon may not even be able to stat it).
 * Returns 0, or -1 with the reason in err. On the loop: it blocks on the
 * user database and stat(), as the config loader blocks on its files.
 */
int privdrop_check_reload_paths(const config_t *cfg, char *err, size_t errlen);

/*
 * Gives up root once every socket is bound. As root with daemon.user set:
 * hands the state directory (and its files) and the ipc:// socket files to
 * that user, then switches user and group for good and logs it. As root
 * without daemon.user: run_as_root = refuse fails, warn logs a WARNING.
 * Not root, with daemon.user set: fine if we already are that user,
 * otherwise an error (switching users needs root).
 * Returns 0, or -1 with a reason in err. Call once, from server_open(),
 * after the sockets are bound and before the loop runs.
 */
int privdrop_apply(const config_t *cfg, char *err, size_t errlen);

#endif
