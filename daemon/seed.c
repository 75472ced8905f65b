/* seed.c -- see seed.h. */
#include "daemon/seed.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/control.h"
#include "daemon/log.h"
#include "daemon/server.h"
#include "daemon/xalloc.h"

bool seed_name_ok(const char *name)
{
    uint64_t n;
    char tail[8];

    if (strcmp(name, "alert-seqs") == 0 || strcmp(name, "history") == 0)
        return true;
    /* snap-<16 digits>.snap, wal-<16 digits>.log: exactly, nothing after */
    if (strlen(name) == 26 && sscanf(name, "snap-%16" SCNu64 "%7s", &n, tail) == 2 &&
        strcmp(tail, ".snap") == 0 && strspn(name + 5, "0123456789") == 16)
        return true;
    return strlen(name) == 24 && sscanf(name, "wal-%16" SCNu64 "%7s", &n, tail) == 2 &&
           strcmp(tail, ".log") == 0 && strspn(name + 4, "0123456789") == 16;
}

void seed_cmd_snapshot(struct server *srv, msgpack_packer *pk, const proto_ctl_request_t *req)
{
    uint64_t segment;
    char err[256];

    (void)req;
    if (server_snapshot_request(srv, &segment, err, sizeof err) != 0) {
        control_reply_error(pk, err);
        return;
    }
    log_info("re-seed: snapshot %016" PRIu64 " requested over the control socket", segment);
    proto_ctl_reply_begin(pk, true, "");
    msgpack_pack_map(pk, 1);
    control_pack_kv_u64(pk, "snapshot", segment);
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void seed_cmd_files(struct server *srv, msgpack_packer *pk, const proto_ctl_request_t *req)
{
    const char *dir = srv->wal.dir;
    DIR *d = opendir(dir);
    char **names = NULL, reason[4096 + 256];
    size_t n = 0, cap = 0;
    struct dirent *e;

    (void)req;
    if (d == NULL) {
        snprintf(reason, sizeof reason, "%s: %s", dir, strerror(errno));
        control_reply_error(pk, reason);
        return;
    }
    while ((e = readdir(d)) != NULL) {
        if (!seed_name_ok(e->d_name))
            continue;
        xgrow(&names, &cap, n + 1, sizeof *names);
        names[n++] = xstrdup(e->d_name);
    }
    closedir(d);
    /* names sort in file order: snapshots and segments by their 16 digits */
    qsort(names, n, sizeof *names, name_cmp);
    proto_ctl_reply_begin(pk, true, "");
    msgpack_pack_map(pk, 2);
    control_pack_kv_str(pk, "state_dir", dir);
    control_pack_str(pk, "files");
    size_t listed = 0;
    struct stat *sts = xcalloc(n ? n : 1, sizeof *sts);
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (stat(path, &sts[i]) == 0 && S_ISREG(sts[i].st_mode))
            listed++;
        else
            sts[i].st_mode = 0; /* gone meanwhile (a trimmed segment): left out */
    }
    msgpack_pack_array(pk, listed);
    for (size_t i = 0; i < n; i++) {
        if (S_ISREG(sts[i].st_mode)) {
            msgpack_pack_map(pk, 2);
            control_pack_kv_str(pk, "name", names[i]);
            control_pack_kv_u64(pk, "size", (uint64_t)sts[i].st_size);
        }
        free(names[i]);
    }
    free(sts);
    free(names);
}

void seed_cmd_read(struct server *srv, msgpack_packer *pk, const proto_ctl_request_t *req)
{
    const proto_ctl_arg_t *an = proto_ctl_arg(req, "name"), *ao = proto_ctl_arg(req, "offset");
    char name[64], path[4096], reason[4096 + 256];

    if (an->sval.len >= sizeof name) {
        control_reply_error(pk, "name: not a file a re-seed reads");
        return;
    }
    memcpy(name, an->sval.ptr, an->sval.len);
    name[an->sval.len] = '\0';
    if (!seed_name_ok(name)) {
        snprintf(reason, sizeof reason,
                 "name: '%s' is not a file a re-seed reads (snap-N.snap, wal-N.log, alert-seqs, "
                 "history)",
                 name);
        control_reply_error(pk, reason);
        return;
    }
    if (ao == NULL || ao->kind != PROTO_ARG_INT || ao->ival < 0) {
        control_reply_error(pk, "offset: must be >= 0");
        return;
    }
    snprintf(path, sizeof path, "%s/%s", srv->wal.dir, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(reason, sizeof reason, "%s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        control_reply_error(pk, reason);
        return;
    }
    char *buf = xmalloc(SEED_CHUNK);
    ssize_t got = 0;
    if (ao->ival < st.st_size) {
        got = pread(fd, buf, SEED_CHUNK, (off_t)ao->ival);
        if (got < 0) {
            snprintf(reason, sizeof reason, "%s: read at %" PRId64 ": %s", path, ao->ival,
                     strerror(errno));
            close(fd);
            free(buf);
            control_reply_error(pk, reason);
            return;
        }
    }
    close(fd);
    proto_ctl_reply_begin(pk, true, "");
    msgpack_pack_map(pk, 2);
    control_pack_kv_u64(pk, "size", (uint64_t)st.st_size);
    control_pack_str(pk, "data");
    msgpack_pack_bin(pk, (size_t)got);
    msgpack_pack_bin_body(pk, buf, (size_t)got);
    free(buf);
}
