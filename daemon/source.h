/*
 * source.h -- loading the configuration a server_source_t names: the config
 * (a file, or the embedded default), the -S override, the path checks and
 * the firm registry, in that order.
 *
 * Start-up (main.c) and a reload (reload.c) load the same things the same
 * way, so they share these two steps instead of each spelling them out: a
 * reload then refuses exactly what start-up would refuse, a world-writable
 * registry included. The steps are two because start-up applies the
 * config's log level between them (so the path checks' warnings honour
 * it), and a reload must not (it sets the level only once it has
 * switched).
 *
 * Nothing here logs but the path checks' warnings; errors go to the
 * caller's buffer as "file:line: field: reason" or "daemon.FIELD: PATH:
 * reason". Blocking file I/O: start-up, or a reload on the loop.
 */
#ifndef CLUSTERMON_SOURCE_H
#define CLUSTERMON_SOURCE_H

#include <stdbool.h>
#include <stddef.h>

#include "daemon/config.h"
#include "daemon/registry.h"
#include "daemon/server.h"

/* Loads the config src names (src->path, or the embedded src->text when
 * path is NULL; relative paths in it against src->base_dir) and applies
 * src->state_dir. Returns 0 with *ret_cfg (caller owns it: config_destroy),
 * or -1 with err. */
int source_load_config(const server_source_t *src, config_t **ret_cfg, char *err, size_t errlen);

/* Checks the paths cfg names (privdrop_check_paths; for a reload
 * privdrop_check_reload_paths, which leaves out the CURVE key a reload does
 * not read), then loads cfg->registry. Returns 0 with *ret_reg (caller owns
 * it: registry_destroy), or -1 with err. */
int source_load_registry(const config_t *cfg, bool reloading, registry_t **ret_reg, char *err,
                         size_t errlen);

#endif
