/* hacursor.c -- see hacursor.h. */
#include "agents/hacursor.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/fileio.h"

#define MAGIC "clustermon-agent-ha"
#define FILE_MAX 8192

const char *hacursor_side_name(int i)
{
    return i == 0 ? "A" : "B";
}

/* Parses "side NAME ACKED ENDPOINT" in place; false if it is not one. */
static bool parse_side(char *line, uint64_t *ret_acked, const char **ret_endpoint)
{
    char name[8], *end;

    if (strncmp(line, "side ", 5) != 0 || sscanf(line + 5, "%7s", name) != 1)
        return false;
    char *p = line + 5 + strlen(name);
    if (*p++ != ' ' || *p < '0' || *p > '9')
        return false;
    errno = 0;
    unsigned long long v = strtoull(p, &end, 10);
    if (errno != 0 || *end != ' ' || end[1] == '\0')
        return false;
    *ret_acked = (uint64_t)v;
    *ret_endpoint = end + 1;
    return true;
}

int hacursor_load(const char *dir, const char *const endpoints[HACURSOR_SIDES],
                  uint64_t acked[HACURSOR_SIDES], bool known[HACURSOR_SIDES], char *err,
                  size_t errlen)
{
    char path[4096], buf[FILE_MAX + 1];
    FILE *fp;

    for (int i = 0; i < HACURSOR_SIDES; i++) {
        acked[i] = 0;
        known[i] = false;
    }
    snprintf(path, sizeof path, "%s/ha", dir);
    if ((fp = fopen(path, "r")) == NULL) {
        if (errno == ENOENT)
            return 0; /* the first --ha run on this spool */
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(buf, sizeof buf, fp) != NULL) {
        size_t n = strlen(buf);
        uint64_t v;
        const char *ep;

        lineno++;
        if (n == 0 || buf[n - 1] != '\n') {
            snprintf(err, errlen, "%s:%d: line too long or not ended", path, lineno);
            rc = -1;
            break;
        }
        buf[n - 1] = '\0';
        if (lineno == 1) {
            int version = 0;
            if (sscanf(buf, MAGIC " %d", &version) != 1 || version != HACURSOR_VERSION) {
                snprintf(err, errlen, "%s:1: not a clustermon-agent-ha %d file", path,
                         HACURSOR_VERSION);
                rc = -1;
            }
            continue;
        }
        if (!parse_side(buf, &v, &ep)) {
            snprintf(err, errlen, "%s:%d: expected 'side NAME ACKED ENDPOINT'", path, lineno);
            rc = -1;
            break;
        }
        for (int i = 0; i < HACURSOR_SIDES; i++)
            if (strcmp(ep, endpoints[i]) == 0) {
                acked[i] = v;
                known[i] = true;
            }
    }
    if (rc == 0 && ferror(fp)) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        rc = -1;
    }
    if (rc == 0 && lineno == 0) {
        snprintf(err, errlen, "%s: empty", path);
        rc = -1;
    }
    fclose(fp);
    return rc;
}

int hacursor_save(const char *dir, const char *const endpoints[HACURSOR_SIDES],
                  const uint64_t acked[HACURSOR_SIDES], char *err, size_t errlen)
{
    char path[4096], buf[FILE_MAX];
    int len = snprintf(buf, sizeof buf, MAGIC " %d\n", HACURSOR_VERSION);

    for (int i = 0; i < HACURSOR_SIDES && len > 0 && (size_t)len < sizeof buf; i++)
        len += snprintf(buf + len, sizeof buf - (size_t)len, "side %s %" PRIu64 " %s\n",
                        hacursor_side_name(i), acked[i], endpoints[i]);
    if (len < 0 || (size_t)len >= sizeof buf) {
        snprintf(err, errlen, "%s/ha: endpoints too long", dir);
        return -1;
    }
    snprintf(path, sizeof path, "%s/ha", dir);
    return fileio_write_atomic(path, buf, (size_t)len, 0600, err, errlen);
}
