/*
 * hacursor.h -- how far each side of an HA pair has acked the agent's
 * spool, kept durably beside it (SPOOL/AGENT_ID/ha).
 *
 * With `clustermon-agent --ha A,B` one spool feeds two daemons that both
 * hold the whole truth: every batch goes to both with the same stream and
 * seq, and leaves the spool only once each side has settled it. Each side
 * settles a stream's seqs in order (the daemon's sequence discipline), so
 * one number per side says what it has: every spooled seq <= acked is
 * settled there. The spool keeps every batch above the lower of the two, so
 * a side that was down catches up from it. The file is rewritten atomically
 * (proto/fileio.h) after each settlement and before any batch is removed, so
 * a crash can only make a side's number older than the truth: the batches
 * above it are resent and the daemon answers them from its memory of the
 * stream, applying nothing twice.
 *
 * The file is text: a version line, then one line per side,
 *
 *   clustermon-agent-ha 1
 *   side A 1795922226766 tcp://city-a.example:7601
 *   side B 1795922226702 tcp://city-b.example:7601
 *
 * Sides are matched by endpoint, not by position: an endpoint the file does
 * not name (a new side, or a renamed one) starts at 0 and is sent every
 * batch still spooled.
 */
#ifndef CLUSTERMON_AGENTS_HACURSOR_H
#define CLUSTERMON_AGENTS_HACURSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HACURSOR_SIDES 2
#define HACURSOR_VERSION 1

/*
 * Reads DIR/ha and sets acked[i] for the side whose endpoint is
 * endpoints[i] (0 and known[i] false if the file does not name it, or
 * there is no file yet). Returns 0, or -1 with "PATH:LINE: reason" in err
 * (a damaged file is not guessed at).
 */
int hacursor_load(const char *dir, const char *const endpoints[HACURSOR_SIDES],
                  uint64_t acked[HACURSOR_SIDES], bool known[HACURSOR_SIDES], char *err,
                  size_t errlen);

/* Writes DIR/ha atomically (0600, fsynced). Returns 0 or -1 with the reason. */
int hacursor_save(const char *dir, const char *const endpoints[HACURSOR_SIDES],
                  const uint64_t acked[HACURSOR_SIDES], char *err, size_t errlen);

/* "A", "B": how messages name side i. */
const char *hacursor_side_name(int i);

#endif
