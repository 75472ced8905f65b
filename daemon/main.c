/*
 * main.c -- clustermond's entry point: options, loading and checking the
 * config and registry (exit status 2 on any error there), then the loop.
 */
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "daemon/config.h"
#include "daemon/log.h"
#include "daemon/registry.h"
#include "daemon/server.h"
#include "daemon/source.h"
#include "daemon/webusers.h"
#include "daemon/xalloc.h"

extern const char clustermond_default_conf[];

#define EXIT_CONFIG 2

static void usage(FILE *out)
{
    fprintf(out,
            "usage: clustermond [options]\n"
            "\n"
            "Aggregates enterprise metrics sent by clustermon agents per cluster, chain and\n"
            "tier, evaluates rules and publishes alerts. With no -c it runs on the embedded\n"
            "default config (see --print-default-config).\n"
            "\n"
            "options:\n"
            "  -c, --config FILE         read FILE instead of the embedded default config;\n"
            "                            relative paths in it are relative to FILE's directory\n"
            "  -n, --check               check the config and the firm registry, then exit\n"
            "                            (0 = valid; 2 = an error, printed as file:line: field)\n"
            "  -S, --state-dir DIR       override [daemon] state_dir\n"
            "  -l, --log-level LEVEL     error | warn | info | debug (overrides the config)\n"
            "      --print-default-config  print the embedded default config and exit\n"
            "  -h, --help                this text\n"
            "  -V, --version             print the version\n"
            "\n"
            "Exit status: 0 stopped cleanly (SIGINT/SIGTERM), 1 runtime failure (e.g. an\n"
            "endpoint could not be bound), 2 configuration or registry error.\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check", no_argument, NULL, 'n'},
        {"state-dir", required_argument, NULL, 'S'},
        {"log-level", required_argument, NULL, 'l'},
        {"print-default-config", no_argument, NULL, 'P'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    /* Owner-only for everything the daemon creates: the state directory,
     * WAL segments, snapshots, alert-seq, the lock and the ipc:// socket
     * files (so only our user, and root, can connect). The explicit modes
     * at each open() say the same; the umask also covers what libraries
     * create for us, like ZeroMQ's socket files, and directories made on
     * the way to state_dir. */
    umask(077);
    const char *config_path = NULL, *state_dir = NULL, *level_arg = NULL;
    bool check_only = false;
    int c;
    while ((c = getopt_long(argc, argv, "c:nS:l:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config_path = optarg; break;
        case 'n': check_only = true; break;
        case 'S': state_dir = optarg; break;
        case 'l': level_arg = optarg; break;
        case 'P': fputs(clustermond_default_conf, stdout); return 0;
        case 'h': usage(stdout); return 0;
        case 'V': printf("clustermond %s\n", CLUSTERMON_VERSION); return 0;
        default: usage(stderr); return EXIT_CONFIG;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "clustermond: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return EXIT_CONFIG;
    }
    log_level_t level = LOG_LVL_INFO;
    if (level_arg && log_level_parse(level_arg, &level) != 0) {
        fprintf(stderr, "clustermond: --log-level: '%s' is not error, warn, info or debug\n",
                level_arg);
        return EXIT_CONFIG;
    }
    log_init(level, "clustermond");

    /* What a reload reads again, and how (daemon/source.h). */
    char *base = NULL;
    if (config_path) {
        char *copy = xstrdup(config_path);
        base = xstrdup(dirname(copy));
        free(copy);
    }
    server_source_t src = {.path = config_path,
                           .text = clustermond_default_conf,
                           .base_dir = base,
                           .state_dir = state_dir,
                           .log_level_fixed = level_arg != NULL};
    char err[CONFIG_ERRLEN];
    config_t *cfg = NULL;
    registry_t *reg = NULL;
    if (source_load_config(&src, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "clustermond: %s\n", err);
        free(base);
        return EXIT_CONFIG;
    }
    if (!level_arg) {
        log_level_parse(cfg->log_level, &level); /* validated by config_load */
        log_set_level(level);
    }
    if (source_load_registry(cfg, false, &reg, err, sizeof err) != 0) {
        fprintf(stderr, "clustermond: %s\n", err);
        config_destroy(&cfg);
        free(base);
        return EXIT_CONFIG;
    }
    if (check_only) {
        /* the dashboard's logins too: a firm login must name current members */
        webusers_t *users = NULL;
        if (*cfg->http_users && webusers_load(cfg->http_users, registry_has_member, reg, &users,
                                              err, sizeof err) != 0) {
            fprintf(stderr, "clustermond: http_users: %s\n", err);
            registry_destroy(&reg);
            config_destroy(&cfg);
            free(base);
            return EXIT_CONFIG;
        }
        webusers_destroy(&users);
        printf("%s: OK: %zu metrics, %zu clusters, %zu rules; %s: %zu firms\n", cfg->path,
               cfg->nmetrics, cfg->nclusters, cfg->nrules, cfg->registry, reg->nfirms);
        registry_destroy(&reg);
        config_destroy(&cfg);
        free(base);
        return 0;
    }

    server_t *srv = xcalloc(1, sizeof *srv);
    int status;
    if (server_open(srv, &src, &cfg, &reg, err, sizeof err) != 0) {
        log_error("%s", err);
        status = 1;
    } else {
        status = server_run(srv);
        log_info("stopped");
    }
    server_close(srv);
    free(srv);
    free(base);
    registry_destroy(&reg); /* still ours only if server_open failed early */
    config_destroy(&cfg);
    return status;
}
