/* zap.c -- see zap.h. */
#include "daemon/zap.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#include "daemon/keys.h"
#include "daemon/server.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_MAX_FRAMES 8 /* version, request id, domain, address, identity, mechanism, key */
#define ZAP_LOGS_PER_SECOND 5

enum { F_VERSION, F_REQUEST_ID, F_DOMAIN, F_ADDRESS, F_IDENTITY, F_MECHANISM, F_CREDENTIALS };

unsigned zap_domain_roles(const char *domain, size_t len)
{
    static const struct {
        const char *domain;
        unsigned roles;
    } table[] = {
        /* admin: clustermonctl import-baseline reports through ingest */
        {ZAP_DOMAIN_INGEST, KEY_ROLE_AGENT | KEY_ROLE_ADMIN},
        {ZAP_DOMAIN_ALERTS, KEY_ROLE_SUBSCRIBER | KEY_ROLE_VIEWER | KEY_ROLE_ADMIN},
        /* subscribers fetch their snapshot (the alerts command) here; agents may
         * only ping and describe (control.c), to learn the firms they report for */
        {ZAP_DOMAIN_CONTROL,
         KEY_ROLE_AGENT | KEY_ROLE_SUBSCRIBER | KEY_ROLE_VIEWER | KEY_ROLE_ADMIN},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strlen(table[i].domain) == len && memcmp(table[i].domain, domain, len) == 0)
            return table[i].roles;
    return 0;
}

static bool frame_is(zmq_msg_t *m, const char *s)
{
    return zmq_msg_size(m) == strlen(s) && memcmp(zmq_msg_data(m), s, strlen(s)) == 0;
}

/* Decides one request. Returns the status code; user_id (41 bytes) is set
 * on "200", why on anything else. */
static const char *decide(zap_t *z, zmq_msg_t *f, int n, char *user_id, char *why, size_t whylen)
{
    if (n != F_CREDENTIALS + 1 || !frame_is(&f[F_VERSION], "1.0")) {
        z->bad_requests++;
        snprintf(why, whylen, "not a ZAP 1.0 request for one CURVE key (%d frames)", n);
        return "500";
    }
    if (!frame_is(&f[F_MECHANISM], "CURVE") || zmq_msg_size(&f[F_CREDENTIALS]) != 32) {
        snprintf(why, whylen, "mechanism %.*s: only CURVE is accepted",
                 (int)(zmq_msg_size(&f[F_MECHANISM]) > 16 ? 16 : zmq_msg_size(&f[F_MECHANISM])),
                 (const char *)zmq_msg_data(&f[F_MECHANISM]));
        return "400";
    }
    char z85[KEYS_Z85_LEN + 1];
    zmq_z85_encode(z85, zmq_msg_data(&f[F_CREDENTIALS]), 32);
    const access_key_t *k = keys_find(z->srv->keys, z85, KEYS_Z85_LEN);
    const char *domain = zmq_msg_data(&f[F_DOMAIN]);
    size_t dlen = zmq_msg_size(&f[F_DOMAIN]);
    if (!k) {
        snprintf(why, whylen, "unknown key %s", z85);
        return "400";
    }
    unsigned roles = zap_domain_roles(domain, dlen);
    if (!(k->roles & roles)) {
        char have[64];
        snprintf(why, whylen, "key %s (%s) is %s: not allowed on the %.*s socket", z85, k->name,
                 keys_roles_name(k->roles, have, sizeof have), (int)(dlen > 16 ? 16 : dlen),
                 domain);
        return "400";
    }
    memcpy(user_id, z85, sizeof z85);
    return "200";
}

/* A frame as text for a log line: printable ASCII only, cut to size. */
static void frame_text(zmq_msg_t *m, char *buf, size_t size)
{
    size_t n = 0, len = m ? zmq_msg_size(m) : 0;
    const unsigned char *p = m ? zmq_msg_data(m) : NULL;
    for (size_t i = 0; i < len && n + 1 < size; i++)
        buf[n++] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '?';
    buf[n] = '\0';
}

/* Blocking on purpose: a REP socket that failed to send its reply would
 * refuse every later request (EFSM), and admit nobody ever again. The peer
 * is libzmq's own session over inproc, which takes replies at once. */
static int send_frame(void *sock, const void *data, size_t len, bool more)
{
    return zmq_send(sock, data, len, more ? ZMQ_SNDMORE : 0) < 0 ? -1 : 0;
}

static bool on_message(zsock_t *zs)
{
    zap_t *z = zs->data;
    zmq_msg_t f[ZAP_MAX_FRAMES];
    int n = 0, more = 1;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, z->zs.sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            if (n == 0)
                return false; /* EAGAIN: nothing queued */
            break;            /* cannot happen mid-message: parts arrive together */
        }
        more = zmq_msg_more(&m);
        if (n < ZAP_MAX_FRAMES) {
            f[n++] = m;
        } else {
            zmq_msg_close(&m); /* an oversized request is taken off whole */
            n = ZAP_MAX_FRAMES + 1;
        }
    }
    int kept = n > ZAP_MAX_FRAMES ? ZAP_MAX_FRAMES : n;
    char user_id[KEYS_Z85_LEN + 1] = "", why[256] = "";
    const char *code = decide(z, f, n, user_id, why, sizeof why);
    bool ok = strcmp(code, "200") == 0;
    if (ok) {
        z->admitted++;
    } else {
        z->refused++;
        if (log_throttle(&z->log, (int64_t)uv_now(&z->srv->loop), ZAP_LOGS_PER_SECOND, "zap",
                         "refused connections")) {
            char domain[24], address[64];
            frame_text(kept > F_DOMAIN ? &f[F_DOMAIN] : NULL, domain, sizeof domain);
            frame_text(kept > F_ADDRESS ? &f[F_ADDRESS] : NULL, address, sizeof address);
            log_warnx("zap: refused a connection to %s from %s: %s", domain, address, why);
        }
    }
    /* The reply echoes the request id; a REP must answer every request. */
    const void *rid = kept > F_REQUEST_ID ? zmq_msg_data(&f[F_REQUEST_ID]) : "";
    size_t rlen = kept > F_REQUEST_ID ? zmq_msg_size(&f[F_REQUEST_ID]) : 0;
    void *sock = z->zs.sock;
    if (send_frame(sock, "1.0", 3, true) != 0 || send_frame(sock, rid, rlen, true) != 0 ||
        send_frame(sock, code, 3, true) != 0 ||
        send_frame(sock, ok ? "OK" : why, ok ? 2 : strlen(why), true) != 0 ||
        send_frame(sock, user_id, strlen(user_id), true) != 0 ||
        send_frame(sock, "", 0, false) != 0)
        log_warn("zap: reply not sent");
    for (int i = 0; i < kept; i++)
        zmq_msg_close(&f[i]);
    return true;
}

int zap_start(zap_t *z, struct server *srv, char *err, size_t errlen)
{
    memset(z, 0, sizeof *z);
    z->srv = srv;
    /* libzmq's own sessions are the only peers: no limits, no CURVE */
    zsock_options_t o = {.name = "zap", .type = ZMQ_REP, .endpoint = ZAP_ENDPOINT};
    return zsock_open(&z->zs, &srv->loop, srv->zctx, &o, on_message, z, err, errlen);
}

void zap_close(zap_t *z)
{
    zsock_close(&z->zs, NULL, NULL);
}
