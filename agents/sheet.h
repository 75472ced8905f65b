/*
 * sheet.h -- the rows of a spreadsheet's worksheet: .xlsx (Office Open XML,
 * read with libzip and expat) and legacy .xls (BIFF, read with FreeXL).
 *
 * A worksheet is read whole when it is opened (spreadsheets are written
 * whole, never appended to, and an office's monthly sheet is small), into
 * rows of rowmap_cell_t: a number cell keeps its stored value (never the
 * text it displays: "1,234.50" or "12%"), a date cell (a number with a date
 * format, or FreeXL's date types) its Excel serial date, shared and inline
 * strings their text. Rows carry their sheet row number (1-based), which is
 * what errors and nacks name. Empty rows are left out.
 */
#ifndef CLUSTERMON_AGENTS_SHEET_H
#define CLUSTERMON_AGENTS_SHEET_H

#include <stdbool.h>
#include <stddef.h>

#include "agents/rowmap.h"

typedef struct sheet sheet_t;

/* Whether path names a spreadsheet this module reads (.xlsx or .xls, any case). */
bool sheet_is_spreadsheet(const char *path);

/*
 * Opens path and reads its worksheet called name (NULL: the first). Returns
 * NULL with "path: reason" in err (a missing sheet lists the ones there).
 * Caller owns the result (sheet_destroy()).
 */
sheet_t *sheet_open(const char *path, const char *name, char *err, size_t errlen);

/* The worksheet's name, borrowed from the sheet. */
const char *sheet_name(const sheet_t *s);

/*
 * The next non-empty row: its cells (borrowed until sheet_destroy()), their
 * count and its row number. Returns false after the last row.
 */
bool sheet_next_row(sheet_t *s, const rowmap_cell_t **ret_cells, size_t *ret_n,
                    unsigned long *ret_row);

void sheet_destroy(sheet_t **s);

#endif
