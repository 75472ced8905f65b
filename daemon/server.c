/* server.c -- see server.h. */
#include "daemon/server.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <zmq.h>

#include "daemon/log.h"

static void handle_closed(uv_handle_t *h)
{
    server_t *srv = h->data;
    srv->open--;
}

static void module_closed(server_t *srv)
{
    srv->open--;
}

/* Closes every handle and socket the server opened; the loop then runs out. */
static void close_all(server_t *srv)
{
    if (srv->stopping)
        return;
    srv->stopping = true;
    uv_signal_t *sigs[] = {&srv->sig_int, &srv->sig_term, &srv->sig_hup};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        if (sigs[i]->data) {
            srv->open++;
            uv_close((uv_handle_t *)sigs[i], handle_closed);
        }
    }
    srv->open += 2;
    ingest_close(&srv->ingest, module_closed);
    control_close(&srv->control, module_closed);
}

static void signal_cb(uv_signal_t *h, int signum)
{
    server_t *srv = h->data;
    if (signum == SIGHUP) {
        log_info("SIGHUP: reload is not supported by this version; ignored");
        return;
    }
    log_info("%s: stopping", signum == SIGINT ? "SIGINT" : "SIGTERM");
    server_stop(srv, 0);
}

static int make_state_dir(const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (mkdir(path, 0700) == 0)
        return 0;
    if (errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    snprintf(err, errlen, "state_dir %s: %s", path,
             errno == EEXIST ? "exists and is not a directory" : strerror(errno));
    return -1;
}

int server_open(server_t *srv, config_t **pcfg, registry_t **preg, char *err, size_t errlen)
{
    memset(srv, 0, sizeof *srv);
    srv->ingest.srv = srv; /* so a close after a failed open finds its owner */
    srv->control.srv = srv;
    int rc = uv_loop_init(&srv->loop);
    if (rc < 0) {
        snprintf(err, errlen, "uv_loop_init: %s", uv_strerror(rc));
        return -1;
    }
    srv->loop.data = srv;
    srv->cfg = *pcfg;
    srv->reg = *preg;
    *pcfg = NULL;
    *preg = NULL;
    srv->started_ms = calendar_now_ms();
    const config_t *cfg = srv->cfg;

    if (calendar_init(&srv->cal, cfg->timezone) != 0) {
        snprintf(err, errlen, "timezone %s: %s", cfg->timezone, strerror(errno));
        return -1;
    }
    if (make_state_dir(cfg->state_dir, err, errlen) != 0)
        return -1;
    srv->agg = agg_new(srv->reg->nfirms, cfg->nmetrics);
    rules_init(&srv->rules, cfg, srv->reg);

    srv->zctx = zmq_ctx_new();
    if (!srv->zctx) {
        snprintf(err, errlen, "zmq_ctx_new: %s", zmq_strerror(errno));
        return -1;
    }
    if (alerts_open(&srv->alerts, srv->zctx, cfg->alerts, err, errlen) != 0 ||
        ingest_start(&srv->ingest, srv, cfg->ingest, err, errlen) != 0 ||
        control_start(&srv->control, srv, cfg->control, err, errlen) != 0)
        return -1;

    struct { uv_signal_t *h; int signum; } sigs[] = {
        {&srv->sig_int, SIGINT}, {&srv->sig_term, SIGTERM}, {&srv->sig_hup, SIGHUP}};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        uv_signal_init(&srv->loop, sigs[i].h);
        sigs[i].h->data = srv;
        rc = uv_signal_start(sigs[i].h, signal_cb, sigs[i].signum);
        if (rc < 0) {
            snprintf(err, errlen, "uv_signal_start(%d): %s", sigs[i].signum, uv_strerror(rc));
            return -1;
        }
    }
    log_info("clustermond %s: %zu firms in %zu clusters, %zu metrics, %zu rules; ingest %s, "
             "alerts %s, control %s, time zone %s",
             CLUSTERMON_VERSION, srv->reg->nfirms, cfg->nclusters, cfg->nmetrics, cfg->nrules,
             cfg->ingest, cfg->alerts, cfg->control, cfg->timezone);
    return 0;
}

int server_run(server_t *srv)
{
    uv_run(&srv->loop, UV_RUN_DEFAULT);
    return srv->exit_status;
}

void server_stop(server_t *srv, int status)
{
    srv->exit_status = status;
    close_all(srv);
}

void server_close(server_t *srv)
{
    if (srv->loop.data) {
        close_all(srv);
        uv_run(&srv->loop, UV_RUN_DEFAULT);
        int rc = uv_loop_close(&srv->loop);
        if (rc != 0)
            log_error("uv_loop_close: %s (a handle was left open)", uv_strerror(rc));
    }
    alerts_close(&srv->alerts);
    if (srv->zctx)
        zmq_ctx_term(srv->zctx);
    srv->zctx = NULL;
    rules_free(&srv->rules);
    agg_destroy(&srv->agg);
    registry_destroy(&srv->reg);
    config_destroy(&srv->cfg);
}
