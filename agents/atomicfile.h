/*
 * atomicfile.h -- replaces a small file all at once: readers (and a restart
 * after a crash or a power cut) see either the old contents or the new,
 * never a mix. The bytes go to a temp file beside the target (same
 * directory, so rename is atomic), which is fsynced, given its mode, renamed
 * over the target, and the directory fsynced so the rename itself is durable.
 * Used for clustermon-sub's --state-file, whose "delivered" record must not
 * be lost once a command has run.
 */
#ifndef CLUSTERMON_AGENTS_ATOMICFILE_H
#define CLUSTERMON_AGENTS_ATOMICFILE_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Writes len bytes of data as path, with permissions mode (e.g. 0600,
 * whatever the umask). Returns 0, or -1 with errno set and the step that
 * failed in err ("write /x/state.tmp: No space left on device"); on failure
 * path is unchanged and no temp file is left. data is borrowed for the call.
 */
int atomicfile_write(const char *path, const void *data, size_t len, mode_t mode, char *err,
                     size_t errlen);

#endif
