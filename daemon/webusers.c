/* webusers.c -- see webusers.h. */
#include "daemon/webusers.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/keys.h"
#include "proto/proto.h"
#include "daemon/xalloc.h"

static bool name_ok(const char *s, size_t n)
{
    if (n == 0 || n > WEBUSERS_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-' || ch == '@'))
            return false;
    }
    return true;
}

/* A firm id as the registry spells them: what an agent may send (no ';'
 * or ':', which separate the list and the line's fields). */
static bool firm_id_ok(const char *s, size_t n)
{
    if (n == 0 || n > PROTO_MAX_ID_LEN)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= ' ' || s[i] == ';' || s[i] == ':' || s[i] == '$' || s[i] == 0x7f)
            return false;
    return true;
}

/*
 * Parses role s[0..n): viewer, admin or firm:ID[;ID...] (the ids into
 * firms, each a member by is_member unless it is NULL). Returns 0, or -1
 * with "role: reason" in why.
 */
static int role_parse(const char *s, size_t n, webusers_member_fn is_member, void *data,
                      unsigned *ret, char *firms, size_t firms_size, char *why, size_t whylen)
{
    firms[0] = '\0';
    if (n == 6 && memcmp(s, "viewer", 6) == 0) {
        *ret = KEY_ROLE_VIEWER;
        return 0;
    }
    if (n == 5 && memcmp(s, "admin", 5) == 0) {
        *ret = KEY_ROLE_VIEWER | KEY_ROLE_ADMIN;
        return 0;
    }
    if (n < 5 || memcmp(s, "firm:", 5) != 0) {
        snprintf(why, whylen, "role: expected viewer, admin or firm:ID, got '%.*s'", (int)n, s);
        return -1;
    }
    const char *p = s + 5, *end = s + n;
    if (p == end || (size_t)(end - p) >= firms_size) {
        snprintf(why, whylen, "role: firm: expected 1..%zu bytes of firm ids, ';' between them",
                 firms_size - 1);
        return -1;
    }
    while (p <= end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *e = semi ? semi : end;
        if (!firm_id_ok(p, (size_t)(e - p))) {
            snprintf(why, whylen, "role: firm: '%.*s' is not a firm id", (int)(e - p), p);
            return -1;
        }
        if (is_member && !is_member(data, p, (size_t)(e - p))) {
            snprintf(why, whylen, "role: firm: '%.*s' is not a member in the registry",
                     (int)(e - p), p);
            return -1;
        }
        p = e + 1;
    }
    memcpy(firms, s + 5, n - 5);
    firms[n - 5] = '\0';
    *ret = KEY_ROLE_AGENT;
    return 0;
}

int webusers_load(const char *path, webusers_member_fn is_member, void *data, webusers_t **ret,
                  char *err, size_t errlen)
{
    if (sodium_init() < 0) {
        snprintf(err, errlen, "%s: libsodium could not be initialised", path);
        return -1;
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    webusers_t *u = xcalloc(1, sizeof *u);
    randombytes_buf(u->key, sizeof u->key);
    size_t cap = 0;
    char line[1024];
    int lineno = 0, rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        size_t n = strlen(line);
        if (n == sizeof line - 1 && line[n - 1] != '\n') {
            snprintf(err, errlen, "%s:%d: line longer than %zu bytes", path, lineno,
                     sizeof line - 2);
            rc = -1;
            break;
        }
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        char *s = line;
        if (lineno == 1 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) /* a BOM */
            s += 3;
        if (!*s || *s == '#')
            continue;
        /* the role may hold ':' (firm:ID): the hash is what starts with ":$" */
        char *c1 = strchr(s, ':'), *c2 = c1 ? strstr(c1 + 1, ":$") : NULL;
        if (c1 && !c2)
            c2 = strrchr(c1 + 1, ':');
        if (!c2) {
            snprintf(err, errlen, "%s:%d: expected name:role:hash (clustermonctl passwd)", path,
                     lineno);
            rc = -1;
            break;
        }
        if (!name_ok(s, (size_t)(c1 - s))) {
            snprintf(err, errlen, "%s:%d: name: expected 1..%d of A-Z a-z 0-9 . _ - @, got '%.*s'",
                     path, lineno, WEBUSERS_NAME_MAX, (int)(c1 - s), s);
            rc = -1;
            break;
        }
        unsigned roles;
        char firms[WEBUSERS_FIRMS_MAX + 1], why[256];
        if (role_parse(c1 + 1, (size_t)(c2 - c1 - 1), is_member, data, &roles, firms, sizeof firms,
                       why, sizeof why) != 0) {
            snprintf(err, errlen, "%s:%d: %s", path, lineno, why);
            rc = -1;
            break;
        }
        const char *hash = c2 + 1;
        if (strncmp(hash, "$argon2id$", 10) != 0 && strncmp(hash, "$argon2i$", 9) != 0) {
            snprintf(err, errlen,
                     "%s:%d: hash: expected a crypto_pwhash_str hash ($argon2id$...), as "
                     "clustermonctl passwd prints it",
                     path, lineno);
            rc = -1;
            break;
        }
        if (strlen(hash) >= crypto_pwhash_STRBYTES) {
            snprintf(err, errlen, "%s:%d: hash: too long for a crypto_pwhash_str hash", path,
                     lineno);
            rc = -1;
            break;
        }
        if (webusers_find(u, s, (size_t)(c1 - s))) {
            snprintf(err, errlen, "%s:%d: name: '%.*s' is listed twice", path, lineno,
                     (int)(c1 - s), s);
            rc = -1;
            break;
        }
        if (u->n == cap) {
            cap = cap ? cap * 2 : 8;
            u->users = xrealloc(u->users, cap * sizeof *u->users);
        }
        webuser_t *w = &u->users[u->n++];
        memset(w, 0, sizeof *w);
        memcpy(w->name, s, (size_t)(c1 - s));
        w->roles = roles;
        snprintf(w->firms, sizeof w->firms, "%s", firms);
        snprintf(w->hash, sizeof w->hash, "%s", hash);
    }
    if (rc == 0 && ferror(f)) {
        snprintf(err, errlen, "%s: read error", path);
        rc = -1;
    }
    fclose(f);
    if (rc == 0 && u->n == 0) {
        snprintf(err, errlen, "%s: no users (add one with clustermonctl passwd NAME ROLE)", path);
        rc = -1;
    }
    if (rc != 0) {
        webusers_destroy(&u);
        return -1;
    }
    *ret = u;
    return 0;
}

void webusers_destroy(webusers_t **pu)
{
    webusers_t *u = *pu;
    if (!u)
        return;
    sodium_memzero(u->users, u->n * sizeof *u->users);
    free(u->users);
    sodium_memzero(u, sizeof *u);
    free(u);
    *pu = NULL;
}

webuser_t *webusers_find(webusers_t *u, const char *name, size_t len)
{
    for (size_t i = 0; u && i < u->n; i++)
        if (strlen(u->users[i].name) == len && memcmp(u->users[i].name, name, len) == 0)
            return &u->users[i];
    return NULL;
}

bool webusers_may_report(const webuser_t *user, const char *id, size_t len)
{
    const char *p = user->firms;
    while (*p) {
        const char *semi = strchr(p, ';');
        size_t n = semi ? (size_t)(semi - p) : strlen(p);
        if (n == len && memcmp(p, id, len) == 0)
            return true;
        if (!semi)
            break;
        p = semi + 1;
    }
    return false;
}

static void digest(const webusers_t *u, const char *pw, size_t len, unsigned char *out)
{
    crypto_generichash(out, crypto_generichash_BYTES, (const unsigned char *)pw, len, u->key,
                       sizeof u->key);
}

bool webusers_remembered(const webusers_t *u, const webuser_t *user, const char *pw, size_t len,
                         int64_t now_ms)
{
    if (user->ok_until_ms == 0 || now_ms >= user->ok_until_ms)
        return false;
    unsigned char d[crypto_generichash_BYTES];
    digest(u, pw, len, d);
    return sodium_memcmp(d, user->ok_digest, sizeof d) == 0;
}

void webusers_remember(const webusers_t *u, webuser_t *user, const char *pw, size_t len,
                       int64_t now_ms)
{
    digest(u, pw, len, user->ok_digest);
    user->ok_until_ms = now_ms + WEBUSERS_CACHE_MS;
}

bool webusers_verify(const char *hash, const char *pw, size_t len)
{
    return crypto_pwhash_str_verify(hash, pw, len) == 0;
}

int webusers_entry(const char *name, const char *role, const char *pw, char *buf, size_t size,
                   char *err, size_t errlen)
{
    unsigned roles;
    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium could not be initialised");
        return -1;
    }
    if (!name_ok(name, strlen(name))) {
        snprintf(err, errlen, "name: expected 1..%d of A-Z a-z 0-9 . _ - @", WEBUSERS_NAME_MAX);
        return -1;
    }
    char firms[WEBUSERS_FIRMS_MAX + 1];
    if (role_parse(role, strlen(role), NULL, NULL, &roles, firms, sizeof firms, err, errlen) != 0)
        return -1;
    if (!*pw) {
        snprintf(err, errlen, "password: empty");
        return -1;
    }
    char hash[crypto_pwhash_STRBYTES];
    if (crypto_pwhash_str_alg(hash, pw, strlen(pw), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                              crypto_pwhash_MEMLIMIT_INTERACTIVE,
                              crypto_pwhash_ALG_ARGON2ID13) != 0) {
        snprintf(err, errlen, "password: hashing failed (out of memory?)");
        return -1;
    }
    if ((size_t)snprintf(buf, size, "%s:%s:%s\n", name, role, hash) >= size) {
        snprintf(err, errlen, "entry too long");
        return -1;
    }
    return 0;
}
