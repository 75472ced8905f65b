/*
 * exposition.h -- the Prometheus text exposition format (0.0.4) of what
 * metrics_collect measured.
 *
 * Rendering is apart from measuring so that the format -- families, HELP
 * and TYPE lines, label escaping, exact decimals -- can be tested from a
 * struct filled by hand, and a new figure is added in two plain steps: a
 * field filled in metrics_collect, a line written here. Nothing here reads
 * the server. Pure functions; any thread.
 */
#ifndef CLUSTERMON_EXPOSITION_H
#define CLUSTERMON_EXPOSITION_H

#include "daemon/metrics.h"

/* Appends the whole exposition of c to out: the daemon's own figures, then
 * the cluster figures. Reads c (and the counter table) only. */
void exposition_render(const metrics_collected_t *c, metrics_text_t *out);

/* Appends s to out as a Prometheus label value (\\, \" and \n escaped). */
void exposition_label_escape(metrics_text_t *out, const char *s);

#endif
