/* relayacl.c -- see relayacl.h. */
#include "agents/relayacl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/csvtable.h"
#include "daemon/xalloc.h"

enum { COL_NAME, COL_KEY, COL_ROLE, COL_SCOPE, NCOLS };
static const char *const col_names[NCOLS] = {"name", "key", "role", "scope"};
static const bool col_required[NCOLS] = {true, true, true, false};

#define FAIL(...) return (snprintf(err, errlen, __VA_ARGS__), -1)

static relayacl_key_t *entry(relayacl_t *acl, const char *z85, const char *name)
{
    for (size_t i = 0; i < acl->n; i++)
        if (strcmp(acl->keys[i].z85, z85) == 0)
            return &acl->keys[i];
    xgrow(&acl->keys, &acl->cap, acl->n + 1, sizeof *acl->keys);
    relayacl_key_t *k = &acl->keys[acl->n++];
    memset(k, 0, sizeof *k);
    memcpy(k->z85, z85, KEYFILE_Z85_LEN + 1);
    k->name = xstrdup(name);
    return k;
}

static bool has_cluster(const relayacl_key_t *k, const char *id)
{
    for (size_t i = 0; i < k->nclusters; i++)
        if (strcmp(k->clusters[i], id) == 0)
            return true;
    return false;
}

/* One access row: the key's rights grow by what its role and scope say. */
static int row(void *user, char *const *f, int line, char *err, size_t errlen)
{
    relayacl_t *acl = user;
    (void)line;
    if (!f[COL_NAME][0])
        FAIL("name: empty");
    if (strlen(f[COL_KEY]) != KEYFILE_Z85_LEN || !keyfile_z85_valid(f[COL_KEY], KEYFILE_Z85_LEN))
        FAIL("key: not a 40-character Z85 public key");
    const char *role = f[COL_ROLE];
    bool sub = strcmp(role, "subscriber") == 0;
    bool all = strcmp(role, "viewer") == 0 || strcmp(role, "admin") == 0;
    if (!sub && !all && strcmp(role, "agent") != 0)
        FAIL("role: '%.32s' is not agent, subscriber, viewer or admin", role);
    if (sub && !f[COL_SCOPE][0])
        FAIL("scope: required for role subscriber (a ';' list of clusters, or *)");
    relayacl_key_t *k = entry(acl, f[COL_KEY], f[COL_NAME]);
    if (all) {
        k->see_all = k->any = true;
        return 0;
    }
    if (!sub)
        return 0; /* an agent row: it never sees alerts */
    k->any = true;
    char buf[CSVTABLE_MAX_FIELD + 1];
    snprintf(buf, sizeof buf, "%s", f[COL_SCOPE]);
    char *save = NULL;
    for (char *item = strtok_r(buf, ";", &save); item; item = strtok_r(NULL, ";", &save)) {
        while (*item == ' ')
            item++;
        size_t n = strlen(item);
        while (n && item[n - 1] == ' ')
            item[--n] = '\0';
        if (!n)
            continue;
        if (strcmp(item, "*") == 0) {
            k->see_all = true;
            continue;
        }
        if (has_cluster(k, item))
            continue;
        xgrow(&k->clusters, &k->cap, k->nclusters + 1, sizeof *k->clusters);
        k->clusters[k->nclusters++] = xstrdup(item);
    }
    return 0;
}

int relayacl_load(const char *path, relayacl_t **ret, char *err, size_t errlen)
{
    static const csvtable_spec_t spec = {col_names, col_required, NCOLS, "access file"};
    relayacl_t *acl = xcalloc(1, sizeof *acl);
    if (csvtable_read(path, &spec, row, acl, err, errlen) != 0) {
        relayacl_destroy(&acl);
        return -1;
    }
    *ret = acl;
    return 0;
}

void relayacl_destroy(relayacl_t **aclp)
{
    relayacl_t *acl = *aclp;
    if (!acl)
        return;
    for (size_t i = 0; i < acl->n; i++) {
        for (size_t c = 0; c < acl->keys[i].nclusters; c++)
            free(acl->keys[i].clusters[c]);
        free(acl->keys[i].clusters);
        free(acl->keys[i].name);
    }
    free(acl->keys);
    free(acl);
    *aclp = NULL;
}

const relayacl_key_t *relayacl_find(const relayacl_t *acl, const char *z85, size_t len)
{
    if (!acl || len != KEYFILE_Z85_LEN)
        return NULL;
    for (size_t i = 0; i < acl->n; i++)
        if (memcmp(acl->keys[i].z85, z85, len) == 0)
            return &acl->keys[i];
    return NULL;
}

bool relayacl_covers(const relayacl_key_t *k, const char *const *scope, size_t nscope, char *why,
                     size_t whylen)
{
    if (!k) {
        snprintf(why, whylen, "unknown key");
        return false;
    }
    if (!k->any) {
        snprintf(why, whylen, "key '%s' is an agent key: it sees no alerts", k->name);
        return false;
    }
    if (k->see_all)
        return true;
    if (nscope == 0) {
        snprintf(why, whylen,
                 "key '%s' sees only some clusters; this relay carries every cluster its cities "
                 "send (--clusters not given)",
                 k->name);
        return false;
    }
    for (size_t i = 0; i < nscope; i++)
        if (!has_cluster(k, scope[i])) {
            snprintf(why, whylen, "key '%s' may not see cluster '%s', which this relay carries",
                     k->name, scope[i]);
            return false;
        }
    return true;
}
