/* source.c -- see source.h. */
#include "daemon/source.h"

#include <stdlib.h>

#include "daemon/privdrop.h"
#include "daemon/xalloc.h"

#define EMBEDDED_NAME "daemon/clustermond.conf (embedded default)"

int source_load_config(const server_source_t *src, config_t **ret_cfg, char *err, size_t errlen)
{
    config_t *cfg = NULL;
    if (config_load(src->path ? src->path : EMBEDDED_NAME, src->path ? NULL : src->text,
                    src->base_dir, &cfg, err, errlen) != 0)
        return -1;
    if (src->state_dir) {
        free(cfg->state_dir);
        cfg->state_dir = xstrdup(src->state_dir);
    }
    *ret_cfg = cfg;
    return 0;
}

int source_load_registry(const config_t *cfg, bool reloading, registry_t **ret_reg, char *err,
                         size_t errlen)
{
    /* before anything is opened, and under -n too */
    int rc = reloading ? privdrop_check_reload_paths(cfg, err, errlen)
                       : privdrop_check_paths(cfg, err, errlen);
    if (rc != 0)
        return -1;
    return registry_load(cfg->registry, cfg, ret_reg, err, errlen);
}
