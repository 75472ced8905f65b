/*
 * log.c -- see log.h. The only process-wide state here is the level and the
 * output style, both set once before the event loop starts.
 */
#include "daemon/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static log_level_t log_level = LOG_LVL_INFO;
static bool log_journal; /* stderr goes to journald: "<N>" prefixes */
static const char *log_progname = "clustermond";

void log_init(log_level_t level, const char *progname)
{
    log_level = level;
    log_journal = getenv("JOURNAL_STREAM") != NULL;
    if (progname)
        log_progname = progname;
}

void log_set_level(log_level_t level)
{
    log_level = level;
}

bool log_enabled(log_level_t level)
{
    return level <= log_level;
}

int log_level_parse(const char *s, log_level_t *ret_level)
{
    static const struct {
        const char *name;
        log_level_t level;
    } names[] = {
        {"error", LOG_LVL_ERROR}, {"warn", LOG_LVL_WARN},   {"warning", LOG_LVL_WARN},
        {"info", LOG_LVL_INFO},   {"debug", LOG_LVL_DEBUG},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcasecmp(s, names[i].name) == 0) {
            *ret_level = names[i].level;
            return 0;
        }
    }
    return -1;
}

static const char *level_name(log_level_t level)
{
    switch (level) {
    case LOG_LVL_ERROR: return "error";
    case LOG_LVL_WARN: return "warn";
    case LOG_LVL_INFO: return "info";
    case LOG_LVL_DEBUG: return "debug";
    }
    return "?";
}

/* Formats one whole line first so concurrent writers never interleave it. */
static void log_vemit(log_level_t level, int errnum, const char *fmt, va_list ap)
{
    char line[2048];
    size_t off = 0;
    int n;

    if (log_journal) {
        n = snprintf(line, sizeof line, "<%d>", (int)level);
    } else {
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%s] ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, log_progname, level_name(level));
    }
    off = n > 0 ? (size_t)n : 0;
    n = vsnprintf(line + off, sizeof line - off, fmt, ap);
    if (n > 0)
        off += (size_t)n;
    if (off > sizeof line - 2)
        off = sizeof line - 2; /* truncated: keep room for the newline */
    if (errnum)
        off += (size_t)snprintf(line + off, sizeof line - off, ": %s", strerror(errnum));
    if (off > sizeof line - 2)
        off = sizeof line - 2;
    line[off++] = '\n';
    fwrite(line, 1, off, stderr);
}

#define LOG_BODY(level, errnum)                                                                    \
    do {                                                                                           \
        if (!log_enabled(level))                                                                   \
            return;                                                                                \
        int saved = errno;                                                                         \
        va_list ap;                                                                                \
        va_start(ap, fmt);                                                                         \
        log_vemit(level, errnum, fmt, ap);                                                         \
        va_end(ap);                                                                                \
        errno = saved;                                                                             \
    } while (0)

void log_error(const char *fmt, ...)
{
    LOG_BODY(LOG_LVL_ERROR, 0);
}
void log_warn(const char *fmt, ...)
{
    LOG_BODY(LOG_LVL_WARN, errno);
}
void log_warnx(const char *fmt, ...)
{
    LOG_BODY(LOG_LVL_WARN, 0);
}
void log_info(const char *fmt, ...)
{
    LOG_BODY(LOG_LVL_INFO, 0);
}
void log_debug(const char *fmt, ...)
{
    LOG_BODY(LOG_LVL_DEBUG, 0);
}

void log_throttle_flush(log_throttle_t *t, int64_t now_ms, const char *module, const char *noun)
{
    if (now_ms - t->window_ms < 1000)
        return;
    if (t->suppressed)
        log_warnx("%s: %llu more %s not logged", module, (unsigned long long)t->suppressed, noun);
    t->window_ms = now_ms;
    t->in_window = 0;
    t->suppressed = 0;
}

bool log_throttle(log_throttle_t *t, int64_t now_ms, unsigned per_second, const char *module,
                  const char *noun)
{
    log_throttle_flush(t, now_ms, module, noun);
    if (t->in_window < per_second) {
        t->in_window++;
        return true;
    }
    t->suppressed++;
    return false;
}

void fatal(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vemit(LOG_LVL_ERROR, 0, fmt, ap);
    va_end(ap);
    exit(status);
}
