/*
 * spool.h -- the agent's on-disk spool of unacknowledged batches.
 *
 * Every batch the agent has read from its input lives in the spool, as the
 * exact bytes of its wire message, from before it is first sent until the
 * daemon acks it, so a daemon restart, a network cut or an agent crash loses
 * nothing: the next run resends what is spooled, in seq order, with the same
 * seqs. The spool also remembers the next seq (so seqs increase strictly
 * across runs) and how far into its input file the agent has read (so a
 * restarted agent neither resends nor skips a line).
 *
 * Layout: ROOT/AGENT_ID/ (created 0700; files 0600), one directory per agent
 * id so that agents with different ids can share a root:
 *
 *   state                     the state file (text, below)
 *   lock                      flock()ed while an agent uses the spool
 *   00000001795922226766.batch   one file per batch, named by its zero-padded seq
 *   *.tmp                     a write in progress; leftovers are removed on open
 *   00000001795922226766.lines   its samples' input name and lines (spool_lines_write())
 *   rejected/                 batches the daemon nacked (spool_reject()), and the rows it
 *                             refused from partial batches (SEQ.rejected.csv, the agent's)
 *   corrupt/                  batch files that failed their checks
 *
 * A batch file is a 44-byte header, all integers little-endian, then the
 * message:
 *
 *   0  "CMSB"     magic          24 u64 input line after this batch
 *   4  u32 format version (2)    32 u32 CRC-32 of input bytes [0, offset)
 *   8  u64 seq                   36 u32 message length
 *   16 u64 input offset after    40 u32 CRC-32 of bytes [0, 40) and the message
 *         this batch
 *
 * The state file is lines of "key value", the first one the format version:
 *
 *   clustermon-agent-spool 2
 *   agent ee-001-agent
 *   epoch 4503599627370497     (the stream: PROTOCOL.md 2, chosen at random when the spool is new)
 *   next_seq 1795922226767
 *   input_path /var/lib/erp/export.csv      ("-": stdin; empty: none yet)
 *   input_dev 2049
 *   input_ino 1312
 *   input_offset 48213
 *   input_line 1001
 *   input_crc 2864434397
 *
 * (a backslash or newline in the path is written \\ or \n).
 *
 * Durability: every file is written to NAME.XXXXXX.tmp, fsync()ed, renamed
 * into place, and the directory fsync()ed (proto/fileio.h), so after a crash
 * a file is either whole or absent. The state file is rewritten only when the input changes and
 * before the newest batch file is removed: while batches are spooled, the
 * newest one's header is the authority for the input position, and on open
 * the spool takes whichever of the two is newer (a batch whose seq is >= the
 * state's next_seq was written after the state).
 *
 * One process, one thread: a spool_t is not shared. Errors return a negative
 * spool_err_t with a reason in the caller's buffer; things the operator
 * should hear about that are not errors (a corrupt file moved aside) go to
 * the warn callback.
 */
#ifndef CLUSTERMON_AGENTS_SPOOL_H
#define CLUSTERMON_AGENTS_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SPOOL_FORMAT_VERSION 2 /* 2: protocol-2 batches, the stream's epoch in the state */
#define SPOOL_HEADER_SIZE 44
#define SPOOL_ERRLEN 1024 /* reasons carry paths */
#define SPOOL_PATH_MAX 4096

typedef enum {
    SPOOL_OK = 0,
    SPOOL_EIO = -1,      /* a file system call failed; the reason names it and errno's text */
    SPOOL_EFULL = -2,    /* appending would pass the byte limit; nothing was written */
    SPOOL_ECORRUPT = -3, /* a batch file failed its checks and was moved to corrupt/ */
    SPOOL_EVERSION = -4, /* the state file's format version is not SPOOL_FORMAT_VERSION */
    SPOOL_ELOCKED = -5,  /* another process has the spool open */
    SPOOL_EINVAL = -6,   /* a malformed state file, a foreign agent's spool, a seq out of order */
} spool_err_t;

/* How far into its input the agent has read. */
typedef struct {
    uint64_t offset; /* bytes consumed, up to the end of the last record spooled */
    uint64_t line;   /* the input reader's line number at offset (1-based) */
    uint32_t crc;    /* CRC-32 of the input's bytes [0, offset): detects a rewritten file */
} spool_pos_t;

/* Which input the position refers to. */
typedef struct {
    char path[SPOOL_PATH_MAX]; /* absolute path, "-" for stdin, "" for none yet */
    uint64_t dev, ino;         /* st_dev, st_ino of a file; 0 for stdin */
    spool_pos_t pos;
} spool_input_t;

typedef struct spool spool_t;

/* Called with a complete sentence, without a trailing newline. */
typedef void spool_warn_cb(void *arg, const char *msg);

/*
 * Opens (creating it and ROOT if missing, mode 0700) the spool of agent_id
 * under root and locks it. Leftover temp files are removed; the newest batch
 * file is verified (a bad one is moved to corrupt/ with a warning, and the
 * next newest tried). A new spool starts at seq first_seq (>= 1) and writes
 * its state file at once. max_bytes bounds the sum of the batch files' sizes
 * (see spool_append()). agent_id must be usable as a file name
 * (spool_agent_id_ok()). warn may be NULL.
 *
 * Returns SPOOL_OK with *ret set (the caller owns it: spool_close()), or
 * SPOOL_EIO, SPOOL_ELOCKED, SPOOL_EVERSION, SPOOL_EINVAL with the reason.
 */
int spool_open(const char *root, const char *agent_id, uint64_t max_bytes, uint64_t first_seq,
               spool_warn_cb *warn, void *warn_arg, spool_t **ret, char *err, size_t errlen);

/* Unlocks and frees the spool (files stay on disk); sets *sp to NULL. */
void spool_close(spool_t **sp);

/* Whether id can name a spool directory: 1..64 of [A-Za-z0-9_.-], not starting with '.'. */
bool spool_agent_id_ok(const char *id);

/* The spool's directory (ROOT/AGENT_ID). Borrowed until spool_close(). */
const char *spool_dir(const spool_t *sp);

/* The epoch of the agent's stream: every batch of this spool carries it. */
uint64_t spool_epoch(const spool_t *sp);

/* The seq the next appended batch must carry. */
uint64_t spool_next_seq(const spool_t *sp);

/* Batches spooled, and the bytes of their files (headers included). */
size_t spool_count(const spool_t *sp);
uint64_t spool_bytes(const spool_t *sp);

/* Sets *ret_seq to the oldest spooled batch's seq; false if the spool is empty. */
bool spool_first(const spool_t *sp, uint64_t *ret_seq);

/* Sets *ret_seq to the oldest spooled seq above seq; false if there is none. */
bool spool_next_after(const spool_t *sp, uint64_t seq, uint64_t *ret_seq);

/* The input and position recorded by the last append or spool_input_set(). Borrowed. */
const spool_input_t *spool_input(const spool_t *sp);

/* Records a new input and position (the agent starts a new file) and writes the state file. */
int spool_input_set(spool_t *sp, const spool_input_t *in, char *err, size_t errlen);

/*
 * Spools one encoded batch message whose seq is spool_next_seq(), durably,
 * with the input position reached after it; on success the next seq and the
 * recorded position advance. If the spool holds at least one batch and the
 * new file would bring its bytes over max_bytes, returns SPOOL_EFULL and
 * changes nothing (an empty spool takes any batch, so a limit below one
 * batch cannot stall the agent). Returns SPOOL_OK, SPOOL_EFULL, SPOOL_EINVAL
 * (seq is not spool_next_seq()) or SPOOL_EIO. msg is borrowed for the call.
 */
int spool_append(spool_t *sp, uint64_t seq, const void *msg, size_t len, const spool_pos_t *pos,
                 char *err, size_t errlen);

/*
 * Reads and checks a spooled batch: header, CRC, and that the message decodes
 * as a batch with this seq. On success *ret_msg (malloc()ed: the caller owns
 * it and free()s it) and *ret_len hold the message. A file that fails a check
 * is moved to corrupt/, dropped from the spool and reported through warn:
 * SPOOL_ECORRUPT. Otherwise SPOOL_EIO or SPOOL_EINVAL (seq not spooled).
 */
int spool_read(spool_t *sp, uint64_t seq, void **ret_msg, size_t *ret_len, char *err,
               size_t errlen);

/*
 * Keeps the source of batch seq's samples: the input's name and the line
 * each sample came from, in SEQ.lines beside the batch file (written
 * atomically, before the batch is spooled; removed with it). So an answer
 * about sample i, even after a restart, names "input:line". Returns
 * SPOOL_OK or SPOOL_EIO.
 */
int spool_lines_write(spool_t *sp, uint64_t seq, const char *input, const unsigned long *lines,
                      size_t n, char *err, size_t errlen);

/* Reads them back: 0 with *ret_lines malloc()ed (the caller frees it), or -1
 * if the batch has none (spooled by an older agent). */
int spool_lines_read(spool_t *sp, uint64_t seq, char *ret_input, size_t inputlen,
                     unsigned long **ret_lines, size_t *ret_n);

/*
 * Removes an acked batch. If it is the newest, the state file is written
 * first, so the input position and next seq it held are not lost.
 */
int spool_remove(spool_t *sp, uint64_t seq, char *err, size_t errlen);

/*
 * Moves a nacked batch to rejected/ (same file name) and writes its path into
 * ret_path. Like spool_remove() otherwise.
 */
int spool_reject(spool_t *sp, uint64_t seq, char *ret_path, size_t pathlen, char *err,
                 size_t errlen);

#endif
