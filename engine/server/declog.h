/*
** declog.h: the decision log, an append-only JSON Lines file written by
** the server's main process only.
**
** One record per evaluation, each one line:
**   {"seq":N,"time":"...Z","request_id":ID,"method":"evaluate",
**    "peer":{"uid":U,"gid":G,"pid":P},<fragment from the worker>,
**    "duration_us":D,"crc32":"xxxxxxxx"}
** The CRC-32 (IEEE, as zlib's crc32) covers every byte of the line before
** ',"crc32":'. Records are formatted on the loop thread; a job on the uv
** thread pool writes whatever has accumulated, then fdatasyncs it ("always"
** mode: group commit), and repeats while records keep coming; progress is
** reported back on the loop thread. A write or sync failure cuts the file
** back to the last whole record and reports every record not yet durable
** lost (their clients are refused). An I/O error on a regular file then
** ends the segment: it is renamed PATH.ioerror-..., a new file is started
** at PATH with an event record naming the old one, and the lost records
** are written there again (renumbered), those whose clients were refused
** marked "refused". Any other failure, or a second one before a commit
** succeeds on the new segment, is final until a reopen (SIGUSR1).
** A torn tail set aside at open or reopen is recorded as an event:
**   {"seq":N,"time":"...","schema_version":1,"engine":"...",
**    "log_event":{"kind":"torn_tail"|"segment_failed",...},"crc32":"..."}
*/
#ifndef PW_DECLOG_H
#define PW_DECLOG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

typedef enum pw_log_sync {
  PW_LOG_ALWAYS = 0,  /* fdatasync before a record's response is sent */
  PW_LOG_BATCH,       /* response after write(2); fdatasync every interval */
  PW_LOG_NONE         /* response at once; the kernel writes back */
} pw_log_sync;

typedef struct pw_declog pw_declog;

/* Loop thread: records up to and including seq are durable (ok 1) or were
** lost (ok 0, see pw_declog_error). Called in seq order. */
typedef void (*pw_declog_cb)(void *arg, uint64_t upto, int ok);

typedef struct pw_declog_opts {
  const char *path;
  pw_log_sync sync;
  unsigned interval_ms;   /* batch: fdatasync period; 0 = 1000 */
  pw_declog_cb cb;
  /* things worth telling the operator; may be called from a pool thread */
  void (*note)(void *arg, const char *msg);
  void *arg;
} pw_declog_opts;

typedef struct pw_declog_rec {
  const char *request_id; /* raw JSON text; NULL = null */
  size_t request_id_len;
  const char *method;
  long uid, gid, pid;     /* of the peer; -1 unknown */
  const char *frag;       /* "engine":...,... from the worker */
  size_t frag_len;
  uint64_t duration_us;
} pw_declog_rec;

typedef struct pw_declog_stats {
  uint64_t records, commits, syncs, bytes, last_seq, lost;
} pw_declog_stats;

/* Open (creating 0600, fsyncing the directory) and repair a torn tail.
** note receives what was repaired ("" if nothing); on failure NULL and the
** reason in note. */
pw_declog *pw_declog_open(uv_loop_t *loop, const pw_declog_opts *o, char *note,
                          size_t notelen);

/* Append one record; returns its seq, or 0 when the log has failed. */
uint64_t pw_declog_append(pw_declog *d, const pw_declog_rec *r);

/* Start a commit if none is running and there is something to do. */
void pw_declog_kick(pw_declog *d);

/* Ask for a reopen of the path (rotation); done by the next commit. */
void pw_declog_reopen(pw_declog *d);

/* From the cb(.., 0) callback only: the client of record seq was refused
** because the log failed (its rewritten copy is marked "refused"). */
void pw_declog_refused(pw_declog *d, uint64_t seq);

/* NULL when healthy, else why the log refuses records. */
const char *pw_declog_error(const pw_declog *d);

/* A commit is running, or records or a reopen are waiting. */
int pw_declog_busy(const pw_declog *d);

const char *pw_declog_mode_name(pw_log_sync s);
void pw_declog_get_stats(const pw_declog *d, pw_declog_stats *st);

/* Write what is pending, fdatasync and close (synchronously, on the loop
** thread: only at exit, once no commit is running). Frees d; returns 0 or
** -1 with the reason in err. Its handles need uv_run to finish closing. */
int pw_declog_close(pw_declog *d, char *err, size_t errlen);

#endif
