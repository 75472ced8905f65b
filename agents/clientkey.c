/* clientkey.c -- see clientkey.h. */
#include "agents/clientkey.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The option's value, or the variable's when the option was not given. */
static const char *pick(const char *arg, const char *env_name, bool *from_env)
{
    *from_env = false;
    if (arg != NULL)
        return arg;
    const char *env = getenv(env_name);
    if (env == NULL || *env == '\0')
        return NULL;
    *from_env = true;
    return env;
}

int clientkey_init(clientkey_t *ck, const char *server_arg, const char *key_arg, char *err,
                   size_t errlen)
{
    bool server_env, key_env;
    const char *server = pick(server_arg, CLIENTKEY_ENV_SERVER, &server_env);
    const char *key = pick(key_arg, CLIENTKEY_ENV_KEY, &key_env);
    const char *server_src = server_env ? "$" CLIENTKEY_ENV_SERVER : "--server-key";
    const char *key_src = key_env ? "$" CLIENTKEY_ENV_KEY : "--key";
    char why[512];

    memset(ck, 0, sizeof *ck);
    if (server == NULL && key == NULL)
        return 0;
    if (key == NULL) {
        snprintf(err, errlen,
                 "%s needs --key FILE too (or $" CLIENTKEY_ENV_KEY "): this client's key pair, "
                 "made with clustermonctl keygen",
                 server_src);
        return -1;
    }
    if (server == NULL) {
        snprintf(err, errlen,
                 "%s needs --server-key KEY|FILE too (or $" CLIENTKEY_ENV_SERVER "): the daemon's "
                 "public key; without it nothing would be encrypted",
                 key_src);
        return -1;
    }
    if (keyfile_public_arg(server, ck->server_public, why, sizeof why) != 0) {
        snprintf(err, errlen, "%s: %s", server_src, why);
        return -1;
    }
    if (keyfile_load(key, true, &ck->key, why, sizeof why) != 0) {
        snprintf(err, errlen, "%s: %s", key_src, why);
        clientkey_clear(ck);
        return -1;
    }
    ck->on = true;
    return 0;
}

int clientkey_setup(const clientkey_t *ck, void *sock, char *err, size_t errlen)
{
    if (ck == NULL || !ck->on)
        return 0;
    return keyfile_client_setup(sock, ck->server_public, &ck->key, err, errlen);
}

void clientkey_clear(clientkey_t *ck)
{
    explicit_bzero(ck, sizeof *ck);
}
