/*
 * privdrop.c -- see privdrop.h. Everything here runs once, at start-up,
 * before the loop: blocking calls (the user database, chown) are fine.
 */
#include "daemon/privdrop.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "daemon/log.h"
#include "daemon/xalloc.h"

#define NAME_MAX_LEN 256

/* The user and group daemon.user and daemon.group name. */
typedef struct {
    uid_t uid;
    gid_t gid;
    char user[NAME_MAX_LEN];
    char group[NAME_MAX_LEN];
} target_t;

/* ---- the user and group databases ------------------------------------------ */

/* The buffer getpw*_r / getgr*_r want; grown on ERANGE. */
static size_t db_bufsize(int which)
{
    long n = sysconf(which);
    return n > 0 ? (size_t)n : 16384;
}

/*
 * Looks a user (group false) or a group up by name, or by *id when name is
 * NULL, growing the buffer getpw*_r / getgr*_r want on ERANGE. Found:
 * *ret_id is the uid or gid, *ret_gid (users only, may be NULL) the primary
 * group, ret_name (may be NULL) the name. Returns 1 found, 0 not found, -1
 * with errno on a lookup failure.
 */
static int db_lookup(bool group, const char *name, unsigned id, unsigned *ret_id, gid_t *ret_gid,
                     char *ret_name, size_t namelen)
{
    size_t size = db_bufsize(group ? _SC_GETGR_R_SIZE_MAX : _SC_GETPW_R_SIZE_MAX);
    for (;;) {
        char *buf = xmalloc(size);
        struct passwd pw, *pwres = NULL;
        struct group gr, *grres = NULL;
        int rc;
        if (group)
            rc = name ? getgrnam_r(name, &gr, buf, size, &grres)
                      : getgrgid_r((gid_t)id, &gr, buf, size, &grres);
        else
            rc = name ? getpwnam_r(name, &pw, buf, size, &pwres)
                      : getpwuid_r((uid_t)id, &pw, buf, size, &pwres);
        if (rc == ERANGE && size < (1u << 20)) {
            free(buf);
            size *= 2;
            continue;
        }
        int found = pwres || grres;
        if (pwres) {
            *ret_id = pw.pw_uid;
            if (ret_gid)
                *ret_gid = pw.pw_gid;
        } else if (grres) {
            *ret_id = gr.gr_gid;
        }
        if (found && ret_name)
            snprintf(ret_name, namelen, "%s", pwres ? pw.pw_name : gr.gr_name);
        free(buf);
        /* "not found" is 0 or one of these, depending on the libc */
        if (!found && rc != 0 && rc != ENOENT && rc != ESRCH && rc != EBADF && rc != EPERM) {
            errno = rc;
            return -1;
        }
        return found;
    }
}

/* A user by name (uid = NULL) or by uid: see db_lookup. */
static int user_lookup(const char *name, const uid_t *uid, uid_t *ret_uid, gid_t *ret_gid,
                       char *ret_name, size_t namelen)
{
    unsigned u;
    int rc = db_lookup(false, name, uid ? (unsigned)*uid : 0, &u, ret_gid, ret_name, namelen);
    if (rc == 1)
        *ret_uid = (uid_t)u;
    return rc;
}

/* The same for groups. */
static int group_lookup(const char *name, const gid_t *gid, gid_t *ret_gid, char *ret_name,
                        size_t namelen)
{
    unsigned g;
    int rc = db_lookup(true, name, gid ? (unsigned)*gid : 0, &g, NULL, ret_name, namelen);
    if (rc == 1)
        *ret_gid = (gid_t)g;
    return rc;
}

/* "name" of a uid for messages, or "uid N" if it has none. */
static void uid_name(uid_t uid, char *buf, size_t len)
{
    uid_t u;
    gid_t g;
    if (user_lookup(NULL, &uid, &u, &g, buf, len) != 1)
        snprintf(buf, len, "uid %u", (unsigned)uid);
}

/* Resolves daemon.user and daemon.group (default: the user's primary
 * group); the user must not be root. cfg->user must be set. Returns 0 or -1
 * with a reason in err. */
static int target_resolve(const config_t *cfg, target_t *t, char *err, size_t errlen)
{
    int rc = user_lookup(cfg->user, NULL, &t->uid, &t->gid, NULL, 0);
    if (rc < 0) {
        snprintf(err, errlen, "daemon.user: cannot look up '%s': %s", cfg->user, strerror(errno));
        return -1;
    }
    if (rc == 0) {
        snprintf(err, errlen, "daemon.user: no such user '%s'", cfg->user);
        return -1;
    }
    snprintf(t->user, sizeof t->user, "%s", cfg->user);
    if (*cfg->group) {
        rc = group_lookup(cfg->group, NULL, &t->gid, NULL, 0);
        if (rc < 0) {
            snprintf(err, errlen, "daemon.group: cannot look up '%s': %s", cfg->group,
                     strerror(errno));
            return -1;
        }
        if (rc == 0) {
            snprintf(err, errlen, "daemon.group: no such group '%s'", cfg->group);
            return -1;
        }
        snprintf(t->group, sizeof t->group, "%s", cfg->group);
    } else {
        gid_t g;
        if (group_lookup(NULL, &t->gid, &g, t->group, sizeof t->group) != 1)
            snprintf(t->group, sizeof t->group, "%u", (unsigned)t->gid);
    }
    if (t->uid == 0) {
        snprintf(err, errlen,
                 "daemon.user = %s: that is uid 0, which drops nothing: name an "
                 "unprivileged user, or leave user empty",
                 t->user);
        return -1;
    }
    return 0;
}

/* ---- the path checks --------------------------------------------------------- */

/* A file the daemon reads: a regular file that not everyone can change, in
 * a directory where not everyone can replace it. what says what a writer
 * could do with it. secret: its owner's only. */
static int check_file(const char *field, const char *path, const char *what, bool secret, char *err,
                      size_t errlen)
{
    struct stat st;
    if (!path || !*path)
        return 0;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT)
            return 0; /* the loader says so, in its own words */
        snprintf(err, errlen, "daemon.%s: %s: %s", field, path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "daemon.%s: %s: not a regular file", field, path);
        return -1;
    }
    if (st.st_mode & S_IWOTH) {
        snprintf(err, errlen,
                 "daemon.%s: %s: writable by everyone (mode %04o): anyone could %s; "
                 "chmod o-w it",
                 field, path, (unsigned)(st.st_mode & 07777), what);
        return -1;
    }
    /* As the key loader will insist (proto/keyfile.c); said here so -n says it too. */
    if (secret && (st.st_mode & (S_IRWXG | S_IRWXO))) {
        snprintf(err, errlen,
                 "daemon.%s: %s: open to others (mode %04o): a secret key must be "
                 "its owner's only; chmod 0600 it",
                 field, path, (unsigned)(st.st_mode & 07777));
        return -1;
    }
    char *copy = xstrdup(path);
    const char *dir = dirname(copy);
    int rc = 0;
    if (stat(dir, &st) == 0 && (st.st_mode & S_IWOTH) && !(st.st_mode & S_ISVTX)) {
        snprintf(err, errlen,
                 "daemon.%s: %s: its directory %s is writable by everyone: anyone "
                 "could replace the file",
                 field, path, dir);
        rc = -1;
    }
    free(copy);
    return rc;
}

/* The state directory, if it exists: ours (or root's, or daemon.user's),
 * and nobody else's to write in. target: daemon.user, or NULL. */
static int check_state_dir(const char *path, const target_t *target, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT)
            return 0; /* created 0700 at start-up */
        snprintf(err, errlen, "daemon.state_dir: %s: %s", path, strerror(errno));
        return -1;
    }
    unsigned mode = (unsigned)(st.st_mode & 07777);
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "daemon.state_dir: %s: not a directory", path);
        return -1;
    }
    /* Sticky would not help: others could still add a snapshot or a WAL
     * segment, and recovery would read it. */
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        snprintf(err, errlen,
                 "daemon.state_dir: %s: writable by others (mode %04o): they could "
                 "plant a snapshot or a WAL segment; chmod 0700 it",
                 path, mode);
        return -1;
    }
    if (st.st_uid != 0 && st.st_uid != geteuid() && !(target && st.st_uid == target->uid)) {
        char owner[NAME_MAX_LEN];
        uid_name(st.st_uid, owner, sizeof owner);
        snprintf(err, errlen,
                 "daemon.state_dir: %s: owned by %s, who could change the state: "
                 "it must belong to root or to the user the daemon runs as",
                 path, owner);
        return -1;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO))
        log_warnx("daemon.state_dir: %s: open to others (mode %04o); chmod 0700 it", path, mode);
    return 0;
}

static int check_paths(const config_t *cfg, bool with_key, char *err, size_t errlen)
{
    target_t target, *t = NULL;
    if (*cfg->user) {
        if (target_resolve(cfg, &target, err, errlen) != 0)
            return -1;
        t = &target;
    }
    if (check_state_dir(cfg->state_dir, t, err, errlen) != 0 ||
        check_file("registry", cfg->registry, "add or move a firm", false, err, errlen) != 0 ||
        check_file("access", cfg->access, "add a key", false, err, errlen) != 0 ||
        (with_key && check_file("curve_secret_key", cfg->curve_secret_key,
                                "replace the daemon's key", true, err, errlen) != 0))
        return -1;
    return 0;
}

int privdrop_check_paths(const config_t *cfg, char *err, size_t errlen)
{
    return check_paths(cfg, true, err, errlen);
}

int privdrop_check_reload_paths(const config_t *cfg, char *err, size_t errlen)
{
    return check_paths(cfg, false, err, errlen);
}

/* ---- dropping root ------------------------------------------------------------- */

/* Gives the state directory, the files directly in it and the ipc:// socket
 * files to the target user, so it can go on writing and removing them. */
static int hand_over(const config_t *cfg, const target_t *t, char *err, size_t errlen)
{
    const char *dir = cfg->state_dir;
    if (chown(dir, t->uid, t->gid) != 0) {
        snprintf(err, errlen, "daemon.state_dir: %s: cannot give it to user %s: %s", dir, t->user,
                 strerror(errno));
        return -1;
    }
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "daemon.state_dir: %s: %s", dir, strerror(errno));
        return -1;
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (fchownat(dirfd(d), e->d_name, t->uid, t->gid, AT_SYMLINK_NOFOLLOW) != 0 &&
            errno != ENOENT) {
            snprintf(err, errlen, "daemon.state_dir: %s/%s: cannot give it to user %s: %s", dir,
                     e->d_name, t->user, strerror(errno));
            rc = -1;
        }
    }
    closedir(d);
    if (rc != 0)
        return -1;
    /* Owner-only (umask 077) and root's so far: the daemon's sockets are
     * its user's, so clients running as that user can connect. */
    const char *const eps[] = {cfg->ingest, cfg->alerts, cfg->control};
    for (size_t i = 0; i < sizeof eps / sizeof eps[0]; i++) {
        if (strncmp(eps[i], "ipc://", 6) != 0 || eps[i][6] == '@') /* '@': abstract, no file */
            continue;
        if (lchown(eps[i] + 6, t->uid, t->gid) != 0 && errno != ENOENT)
            log_warn("%s: cannot give the socket to user %s", eps[i], t->user);
    }
    return 0;
}

/* After the switch: files a reload reads should still be readable. (The
 * key is not among them: it was read as root and a reload keeps it.) */
static void warn_unreadable(const char *field, const char *path, const char *user)
{
    if (path && *path && access(path, R_OK) != 0 && errno == EACCES)
        log_warnx("%s: %s: user %s cannot read it, so a reload will fail; make it readable to "
                  "that user or its group",
                  field, path, user);
}

static int drop_to(const config_t *cfg, const target_t *t, char *err, size_t errlen)
{
    if (hand_over(cfg, t, err, errlen) != 0)
        return -1;
    /* Groups first: once the uid is gone, so is the right to change them. */
    if (initgroups(t->user, t->gid) != 0) {
        snprintf(err, errlen, "initgroups(%s, %u): %s", t->user, (unsigned)t->gid, strerror(errno));
        return -1;
    }
    /* As root these set the real, effective and saved ids alike. */
    if (setgid(t->gid) != 0) {
        snprintf(err, errlen, "setgid(%u): %s", (unsigned)t->gid, strerror(errno));
        return -1;
    }
    if (setuid(t->uid) != 0) {
        snprintf(err, errlen, "setuid(%u): %s", (unsigned)t->uid, strerror(errno));
        return -1;
    }
    /* Prove it: no way back to root. */
    if (setuid(0) == 0 || seteuid(0) == 0 || getuid() != t->uid || geteuid() != t->uid ||
        getgid() != t->gid || getegid() != t->gid || (t->gid != 0 && setegid(0) == 0)) {
        snprintf(err, errlen,
                 "daemon.user = %s: root could still be regained after dropping "
                 "privileges; refusing to run",
                 t->user);
        return -1;
    }
    if (access(cfg->state_dir, R_OK | W_OK | X_OK) != 0) {
        snprintf(err, errlen,
                 "daemon.state_dir: %s: user %s cannot use it: %s (can it reach it "
                 "through the directories above?)",
                 cfg->state_dir, t->user, strerror(errno));
        return -1;
    }
    warn_unreadable("config", cfg->path, t->user);
    warn_unreadable("daemon.registry", cfg->registry, t->user);
    warn_unreadable("daemon.access", cfg->access, t->user);
    log_info("dropped privileges to user %s (uid %u), group %s (gid %u)", t->user, (unsigned)t->uid,
             t->group, (unsigned)t->gid);
    return 0;
}

int privdrop_apply(const config_t *cfg, char *err, size_t errlen)
{
    target_t t;
    uid_t euid = geteuid();
    if (euid == 0) {
        if (*cfg->user)
            return target_resolve(cfg, &t, err, errlen) == 0 ? drop_to(cfg, &t, err, errlen) : -1;
        if (strcmp(cfg->run_as_root, "refuse") == 0) {
            snprintf(err, errlen,
                     "running as root and daemon.user is not set: set user = (an "
                     "unprivileged user, e.g. clustermon) or run_as_root = warn");
            return -1;
        }
        log_warnx("WARNING: clustermond is running as root and daemon.user is not set.");
        log_warnx(
            "WARNING: a flaw in the daemon would give whoever exploits it the whole machine.");
        log_warnx("WARNING: set user = (e.g. clustermon) in [daemon] to drop root once the "
                  "sockets are bound,");
        log_warnx("WARNING: or run_as_root = refuse to stop instead of running like this.");
        return 0;
    }
    if (!*cfg->user)
        return 0;
    if (target_resolve(cfg, &t, err, errlen) != 0)
        return -1;
    char me[NAME_MAX_LEN];
    uid_name(euid, me, sizeof me);
    if (euid != t.uid) {
        snprintf(err, errlen, "daemon.user = %s: switching users needs root; running as %s", t.user,
                 me);
        return -1;
    }
    if (*cfg->group && getegid() != t.gid) {
        snprintf(err, errlen, "daemon.group = %s: switching groups needs root; running as gid %u",
                 t.group, (unsigned)getegid());
        return -1;
    }
    log_debug("daemon.user = %s: already running as that user (uid %u)", t.user, (unsigned)t.uid);
    return 0;
}
