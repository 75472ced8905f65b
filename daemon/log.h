/*
 * log.h -- the daemon's one logger.
 *
 * One line per event on stderr, each with a level. Under systemd
 * (JOURNAL_STREAM set) lines carry sd-daemon "<N>" priority prefixes instead
 * of a timestamp, so journald records the level. log_warn() appends
 * strerror(errno); log_warnx() does not. Every function preserves errno.
 * The level is tested before anything is formatted. fatal() is for start-up
 * only, before the loop runs: it logs and exits with the given status.
 */
#ifndef CLUSTERMON_LOG_H
#define CLUSTERMON_LOG_H

#include <stdbool.h>
#include <stdint.h>

typedef enum {
    LOG_LVL_ERROR = 3,
    LOG_LVL_WARN = 4,
    LOG_LVL_INFO = 6,
    LOG_LVL_DEBUG = 7
} log_level_t;

/* Sets the process-wide level and output style; call once, before the loop. */
void log_init(log_level_t level, const char *progname);
void log_set_level(log_level_t level);
/* Parses "error|warn|info|debug"; returns 0 or -1. */
int log_level_parse(const char *s, log_level_t *ret_level);
bool log_enabled(log_level_t level);

void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/*
 * A throttle for messages a peer can cause (nacks, refused keys): at most
 * per_second pass in any second; when a later second begins, the number held
 * back is logged once as "MODULE: N more NOUN not logged". log_throttle()
 * says whether this message may be logged; log_throttle_flush() (from a
 * timer) says the count after a flood even if no further message comes.
 */
typedef struct {
    int64_t window_ms;
    unsigned in_window;
    uint64_t suppressed;
} log_throttle_t;
bool log_throttle(log_throttle_t *t, int64_t now_ms, unsigned per_second, const char *module,
                  const char *noun);
void log_throttle_flush(log_throttle_t *t, int64_t now_ms, const char *module, const char *noun);

_Noreturn void fatal(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
