/*
 * xalloc.h -- allocation that cannot fail: on out-of-memory the daemon
 * aborts in one place with a message, instead of every caller carrying a
 * path it could never test. Used by daemon code only (proto/ never allocates
 * on decode; agents handle their own).
 */
#ifndef CLUSTERMON_XALLOC_H
#define CLUSTERMON_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
/* Grows *p (an array of *cap elements of size elem) to hold at least need. */
void xgrow(void *pp, size_t *cap, size_t need, size_t elem);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

#endif
