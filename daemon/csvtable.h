/*
 * csvtable.h -- reads a CSV file whose header row names its columns (the
 * firm registry, the access file). RFC 4180 via libcsv, UTF-8, an optional
 * BOM from a spreadsheet. Columns may come in any order; an unknown or
 * repeated column is an error (a typo must not silently drop data), and so
 * is a missing required one. Every error reads "path:line: field: reason",
 * the line being where the record starts (a quoted field may span lines).
 */
#ifndef CLUSTERMON_CSVTABLE_H
#define CLUSTERMON_CSVTABLE_H

#include <stdbool.h>
#include <stddef.h>

#define CSVTABLE_MAX_COLS 16
#define CSVTABLE_MAX_FIELD 1024

typedef struct {
    const char *const *names; /* the known columns */
    const bool *required;     /* per column */
    int ncols;                /* <= CSVTABLE_MAX_COLS */
    const char *what;         /* "firm registry": for "cannot open" messages */
} csvtable_spec_t;

/*
 * Called once per data record. fields[c] is the value of known column c, ""
 * if the file has no such column; the strings are the reader's, valid for
 * the call only. Returns 0 to go on, or -1 having written "field: reason" to
 * err (the reader puts "path:line: " in front).
 */
typedef int (*csvtable_record_cb)(void *user, char *const *fields, int line, char *err,
                                  size_t errlen);

/* Returns 0, or -1 with the reason in err. */
int csvtable_read(const char *path, const csvtable_spec_t *spec, csvtable_record_cb cb, void *user,
                  char *err, size_t errlen);

#endif
