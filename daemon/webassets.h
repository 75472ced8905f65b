/*
 * webassets.h -- the dashboard's files (daemon/web/), embedded into the
 * daemon at build time by daemon/web/embed.sh together with the chart
 * library npm installed from daemon/web/package-lock.json. The daemon
 * serves them from memory: an intranet without internet access gets every
 * byte the page needs from the daemon itself.
 */
#ifndef CLUSTERMON_WEBASSETS_H
#define CLUSTERMON_WEBASSETS_H

#include <stddef.h>

typedef struct {
    const char *url;          /* e.g. "/app.js"; NULL ends the table */
    const char *content_type; /* with charset for text */
    const unsigned char *data;
    size_t len;
} webasset_t;

/* The generated table (build/gen/web_assets.c), ended by a NULL url. */
extern const webasset_t webassets[];

#endif
