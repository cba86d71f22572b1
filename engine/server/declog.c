/*
** declog.c: the durable decision log (see declog.h for the format).
**
** Threads: records are formatted on the loop thread into a private
** buffer; once per loop iteration (pw_declog_kick) that buffer is handed
** to the shared pending buffer under a mutex, and a job on the uv thread
** pool is queued if none runs. The job loops while there is work: take all
** pending records, write them, fdatasync (group commit), publish the seq
** now durable and wake the loop with uv_async_send. So commits follow each
** other with no round trip through the loop, and the loop never blocks on
** the disk. Only the job touches the file descriptor while it runs.
**
** Failure rules (fsyncgate): a failed write is cut back to the size before
** it (ftruncate) and never retried; a failed fdatasync is never retried
** either, as the kernel may have dropped the dirty pages. Both leave the
** log failed until a reopen, and every record not known durable is
** reported lost to the caller, which answers those requests with errors.
*/
#include "declog.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "file.h"

#define LOG_CHUNK 65536

struct pw_declog {
  uv_loop_t *loop;
  char *path;
  int fd;
  pw_log_sync sync;
  unsigned interval_ms;
  pw_declog_cb cb;
  void (*note)(void *arg, const char *msg);
  void *arg;

  /* loop thread only */
  pw_buf local;              /* records of this iteration */
  uint64_t local_last;
  uint64_t next_seq;
  uint64_t durable_seq;      /* reported to cb */
  int reopen_req, sync_req;
  int queued;                /* d->work belongs to libuv until commit_after */
  int failed;
  char failmsg[320];
  uv_timer_t timer;          /* batch: periodic fdatasync */
  uv_async_t async;          /* the job's progress */
  int handles;               /* open handles, for the final free */
  time_t tsec;
  char tbuf[24];             /* "YYYY-MM-DDTHH:MM:SS" of tsec */
  uint64_t records;

  /* shared, under mu */
  uv_mutex_t mu;
  pw_buf pending;
  uint64_t pending_last;     /* seq of the last record in pending (0 none) */
  int running;               /* a job is queued or running */
  int sh_reopen, sh_sync;    /* requests for the job */
  int sh_failed;             /* the job failed: take no records until a reopen */
  uint64_t pub_durable;      /* last seq known durable (or written, batch/none) */
  int pub_err, pub_reopened, pub_unsynced;
  char pub_msg[256];
  char pub_note[1024];
  uint64_t pub_file_last;    /* reopen: last seq found in the file */
  uint64_t last_sync_ms;
  pw_declog_stats st;

  /* the job only */
  uv_work_t work;
  pw_buf writing;            /* the records being written now */

  /* segments (see "segments and events" below) */
  int switch_ok;             /* job: an I/O error may start a new segment */
  unsigned switches;         /* job: segments started after an I/O error */
  int pub_switched;          /* under mu: the job started a new segment */
  char pub_segment[320];     /* under mu: the failed segment's new name */
  pw_buf pub_lost;           /* under mu: records the failed commit held */
  uint64_t *refused;         /* loop: seqs whose clients were refused */
  size_t nrefused, caprefused;
  int in_lost_cb;            /* loop: inside cb(.., 0) after a switch */
  int torn_found;            /* a torn tail was set aside (open or reopen) */
  long long torn_offset, torn_bytes;
  int torn_lines, torn_last;
  char torn_aside[320];

  uint32_t crc[8][256];
};

static void say(pw_declog *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ==================================================================== */
/* {====== CRC-32 (IEEE 802.3, reflected, as zlib), slicing by 8        */

static void crc_init(uint32_t t[8][256]) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    t[0][i] = c;
  }
  for (int s = 1; s < 8; s++)
    for (uint32_t i = 0; i < 256; i++) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xFF];
}

static uint32_t crc_run(const uint32_t t[8][256], const void *data, size_t n) {
  const unsigned char *p = data;
  uint32_t c = 0xFFFFFFFFu;
  while (n >= 8) {
    uint32_t a = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                      (uint32_t)p[3] << 24);
    c = t[7][a & 0xFF] ^ t[6][(a >> 8) & 0xFF] ^ t[5][(a >> 16) & 0xFF] ^ t[4][a >> 24] ^
        t[3][p[4]] ^ t[2][p[5]] ^ t[1][p[6]] ^ t[0][p[7]];
    p += 8;
    n -= 8;
  }
  while (n--) c = t[0][(c ^ *p++) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

/* }====== */

/* ==================================================================== */
/* {====== opening, torn-tail repair                                    */

static int fsync_dir_of(const char *path) {
  char *copy = strdup(path);
  if (!copy) return -1;
  int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  free(copy);
  if (dfd < 0) return -1;
  int rc = fsync(dfd);
  close(dfd);
  return rc;
}

/* Is line[0..n) (no '\n') a whole record with a good checksum? */
static int line_ok(const uint32_t t[8][256], const char *line, size_t n, uint64_t *seq) {
  static const char tag[] = ",\"crc32\":\"";
  const size_t tl = sizeof tag - 1;
  if (n < 8 + tl + 10 || memcmp(line, "{\"seq\":", 7) != 0) return 0;
  if (memcmp(line + n - 2, "\"}", 2) != 0) return 0;
  size_t pos = n - 2 - 8 - tl;
  if (memcmp(line + pos, tag, tl) != 0) return 0;
  char hex[9];
  memcpy(hex, line + pos + tl, 8);
  hex[8] = '\0';
  char *end;
  unsigned long want = strtoul(hex, &end, 16);
  if (*end) return 0;
  if (crc_run(t, line, pos) != (uint32_t)want) return 0;
  uint64_t v = 0;
  size_t i = 7;
  if (i >= n || line[i] < '0' || line[i] > '9') return 0;
  while (i < n && line[i] >= '0' && line[i] <= '9') v = v * 10 + (uint64_t)(line[i++] - '0');
  *seq = v;
  return 1;
}

/* Read bytes [from, to) of fd into a new buffer. */
static char *read_range(int fd, off_t from, off_t to) {
  size_t n = (size_t)(to - from);
  char *b = malloc(n + 1);
  if (!b) return NULL;
  size_t got = 0;
  while (got < n) {
    ssize_t k = pread(fd, b + got, n - got, from + (off_t)got);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) {
      free(b);
      return NULL;
    }
    got += (size_t)k;
  }
  b[n] = '\0';
  return b;
}

/* Offset just after the last '\n' strictly before end (0 if none). */
static off_t line_start_before(int fd, off_t end) {
  char buf[LOG_CHUNK];
  off_t pos = end;
  while (pos > 0) {
    off_t from = pos > LOG_CHUNK ? pos - LOG_CHUNK : 0;
    size_t n = (size_t)(pos - from);
    ssize_t k = pread(fd, buf, n, from);
    if (k != (ssize_t)n) return -1;
    for (size_t i = n; i > 0; i--)
      if (buf[i - 1] == '\n') return from + (off_t)i;
    pos = from;
  }
  return 0;
}

/* Copy bytes [good, end) of fd into a new file beside the log, durably,
** then cut them off the log. Returns 0, or -1; note says which. */
static int set_aside(pw_declog *d, int fd, off_t good, off_t end, int torn, int cut_lines,
                     char *note, size_t notelen) {
  char *aside = malloc(strlen(d->path) + 64);
  if (!aside) return -1;
  int afd = -1;
  /* a second repair within the same second (a reopen) gets a new name */
  for (int k = 0; k < 100 && afd < 0; k++) {
    int n = sprintf(aside, "%s.torn-%lld-%d", d->path, (long long)time(NULL), (int)getpid());
    if (k) sprintf(aside + n, "-%d", k);
    afd = open(aside, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (afd < 0 && errno != EEXIST) break;
  }
  char *bytes = afd >= 0 ? read_range(fd, good, end) : NULL;
  int rc = -1;
  if (bytes) {
    size_t n = (size_t)(end - good), off = 0;
    while (off < n) {
      ssize_t k = write(afd, bytes + off, n - off);
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) break;
      off += (size_t)k;
    }
    if (off == n && fsync(afd) == 0 && fsync_dir_of(aside) == 0 &&
        ftruncate(fd, good) == 0 && fdatasync(fd) == 0)
      rc = 0;
  }
  if (rc == 0) {
    d->torn_found = 1;
    d->torn_offset = (long long)good;
    d->torn_bytes = (long long)(end - good);
    d->torn_lines = cut_lines;
    d->torn_last = torn;
    snprintf(d->torn_aside, sizeof d->torn_aside, "%s", pw_file_name(aside));
  }
  if (rc == 0)
    snprintf(note, notelen, "%s: cut %lld bytes (%s%d bad record%s) into %s", d->path,
             (long long)(end - good), torn ? "a torn last line, " : "", cut_lines,
             cut_lines == 1 ? "" : "s", aside);
  else
    snprintf(note, notelen, "%s: cannot set a torn tail aside into %s: %s", d->path, aside,
             strerror(errno));
  free(bytes);
  if (afd >= 0) close(afd);
  free(aside);
  return rc;
}

/* Cut a torn or corrupt tail, saving it beside the log. Returns 0, or -1
** with a message. last_seq gets the seq of the last good record. */
static int repair_tail(pw_declog *d, int fd, uint64_t *last_seq, char *note, size_t notelen) {
  struct stat st;
  *last_seq = 0;
  if (note && notelen) note[0] = '\0';
  if (fstat(fd, &st) != 0) {
    snprintf(note, notelen, "%s: fstat: %s", d->path, strerror(errno));
    return -1;
  }
  if (!S_ISREG(st.st_mode) || st.st_size == 0) return 0;
  off_t end = st.st_size, good = end;
  int cut_lines = 0, torn = 0;
  /* at most a few lines: more than that is not a torn tail but damage */
  for (int round = 0; round < 8 && good > 0; round++) {
    char last;
    if (pread(fd, &last, 1, good - 1) != 1) {
      snprintf(note, notelen, "%s: read: %s", d->path, strerror(errno));
      return -1;
    }
    if (last != '\n') {
      off_t s = line_start_before(fd, good);
      if (s < 0) {
        snprintf(note, notelen, "%s: read: %s", d->path, strerror(errno));
        return -1;
      }
      good = s;
      torn = 1;
      continue;
    }
    off_t s = line_start_before(fd, good - 1);
    if (s < 0) {
      snprintf(note, notelen, "%s: read: %s", d->path, strerror(errno));
      return -1;
    }
    char *line = read_range(fd, s, good - 1);
    if (!line) {
      snprintf(note, notelen, "%s: read failed", d->path);
      return -1;
    }
    uint64_t seq;
    int ok = line_ok((const uint32_t(*)[256])d->crc, line, (size_t)(good - 1 - s), &seq);
    free(line);
    if (ok) {
      *last_seq = seq;
      break;
    }
    good = s;
    cut_lines++;
  }
  if (good == end) return 0;
  return set_aside(d, fd, good, end, torn, cut_lines, note, notelen);
}

/* Open path for appending; 0 or -1 with the reason in note. */
static int open_file(pw_declog *d, int *fdp, uint64_t *last_seq, char *note, size_t notelen) {
  int created = 1;
  int fd = open(d->path, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0 && errno == EEXIST) {
    created = 0;
    fd = open(d->path, O_RDWR | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && (errno == EACCES || errno == EISDIR || errno == EINVAL))
      fd = open(d->path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
  }
  if (fd < 0) {
    snprintf(note, notelen, "%s: %s", d->path, strerror(errno));
    return -1;
  }
  if (created && fsync_dir_of(d->path) != 0) {
    snprintf(note, notelen, "%s: fsync of its directory: %s", d->path, strerror(errno));
    close(fd);
    return -1;
  }
  struct stat st;
  if (!created && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 077)) {
    /* not ours to chmod: say so, the log holds patient data */
    say(d, "warning: %s has mode %03o; it holds patient data", d->path,
        (unsigned)(st.st_mode & 0777));
  }
  if (repair_tail(d, fd, last_seq, note, notelen) != 0) {
    close(fd);
    return -1;
  }
  *fdp = fd;
  return 0;
}

/* }====== */


/* ==================================================================== */
/* {====== segments and events                                          */
/*
** An I/O error of write(2) or fdatasync on a regular file ends the current
** segment: the job renames the file aside (PATH.ioerror-TIME-PID-N), opens
** a fresh file at PATH and hands the records of the failed commit (and
** those pending) back to the loop. The loop refuses the clients waiting
** for them, as before, then writes to the new segment an event record
** naming the old one, followed by those records again, renumbered, each
** whose client was refused carrying "refused" (the reason). One new
** segment per failure: if the new one fails before a commit succeeds,
** the log fails closed until a reopen. A torn tail set aside at open or
** reopen is recorded as an event too. Event records:
**   {"seq":N,"time":"...","schema_version":1,"engine":"...",
**    "log_event":{"kind":"...",...},"crc32":"..."}
*/

/* Job: rename the failed segment aside and open a new one at the path.
** 0, or -1 (the log then fails closed) with the reason in note. */
static int segment_switch(pw_declog *d, char *seg, size_t seglen, char *note, size_t notelen) {
  char *aside = malloc(strlen(d->path) + 80);
  uint64_t last = 0;
  int nfd, rc = -1;
  if (!aside) return -1;
  sprintf(aside, "%s.ioerror-%lld-%d-%u", d->path, (long long)time(NULL), (int)getpid(),
          ++d->switches);
  close(d->fd);
  d->fd = -1;
  if (rename(d->path, aside) != 0 || fsync_dir_of(d->path) != 0) {
    snprintf(note, notelen, "%s: cannot set the failed segment aside as %s: %s", d->path,
             aside, strerror(errno));
  } else if (open_file(d, &nfd, &last, note, notelen) == 0) {
    d->fd = nfd;
    d->switch_ok = 0;   /* until a commit on the new segment succeeds */
    snprintf(seg, seglen, "%s", pw_file_name(aside));
    rc = 0;
  }
  free(aside);
  return rc;
}

/* Job, under mu: give the loop the records not written (the failed commit
** first, then those pending) and the failed segment's name. */
static void segment_publish(pw_declog *d, const char *seg) {
  pw_buf t = d->pub_lost;
  d->pub_lost = d->writing;
  d->writing = t;
  if (d->pending.len) pw_buf_add(&d->pub_lost, d->pending.data, d->pending.len);
  d->pub_switched = 1;
  snprintf(d->pub_segment, sizeof d->pub_segment, "%s", seg);
}

/* }====== */

/* ==================================================================== */
/* {====== commits                                                      */

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void say(pw_declog *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(pw_declog *d, const char *fmt, ...) {
  char m[1200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(m, sizeof m, fmt, ap);
  va_end(ap);
  if (d->note) d->note(d->arg, m);
}

/* One commit: reopen if asked, write buf, fdatasync if asked. Returns 0 or
** -1 with the reason in msg. note gets things to tell the operator. *io is
** set when write(2) or fdatasync failed on a regular file: the bytes of
** this commit were cut off again, and a new segment may be started. */
static int commit_one(pw_declog *d, const pw_buf *buf, int reopen, int sync, uint64_t *file_last,
                      char *msg, size_t msglen, char *note, size_t notelen, int *io) {
  off_t before = -1;   /* a regular file's size before this commit's write */
  *io = 0;
  if (reopen) {
    int nfd;
    if (d->fd >= 0) {
      (void)fdatasync(d->fd);   /* what batch/none left unsynced; errors: new file anyway */
      close(d->fd);
      d->fd = -1;
    }
    if (open_file(d, &nfd, file_last, note, notelen) != 0) {
      snprintf(msg, msglen, "reopen failed: %.230s", note);
      note[0] = '\0';
      return -1;
    }
    d->fd = nfd;
  }
  if (d->fd < 0) {
    if (!buf->len) return 0;
    snprintf(msg, msglen, "decision log is not open");
    return -1;
  }
  if (buf->len) {
    struct stat st;
    if (fstat(d->fd, &st) != 0) {
      snprintf(msg, msglen, "fstat: %s", strerror(errno));
      return -1;
    }
    if (S_ISREG(st.st_mode) && st.st_nlink == 0) {
      snprintf(msg, msglen,
               "the decision log file was removed or replaced (send SIGUSR1 to reopen)");
      return -1;
    }
    if (S_ISREG(st.st_mode)) before = st.st_size;
    size_t off = 0;
    while (off < buf->len) {
      ssize_t k = write(d->fd, buf->data + off, buf->len - off);
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) {
        int e = k < 0 ? errno : EIO;
        snprintf(msg, msglen, "write: %s", strerror(e));
        /* cut back to the last whole record (O_APPEND: the size before) */
        if (S_ISREG(st.st_mode) && off > 0) (void)ftruncate(d->fd, st.st_size);
        *io = S_ISREG(st.st_mode);
        return -1;
      }
      off += (size_t)k;
    }
  }
  if (sync && fdatasync(d->fd) != 0) {
    int e = errno;
    struct stat st;
    /* special files (a pipe, /dev/null) cannot be synced: not a failure */
    if (!(e == EINVAL && fstat(d->fd, &st) == 0 && !S_ISREG(st.st_mode))) {
      snprintf(msg, msglen, "fdatasync: %s (not retried)", strerror(e));
      /* this commit's records are not known durable: their clients are
      ** refused, so they leave the segment (best effort: it is failing) */
      if (before >= 0) (void)ftruncate(d->fd, before);
      *io = fstat(d->fd, &st) == 0 && S_ISREG(st.st_mode);
      return -1;
    }
  }
  return 0;
}

/* The pool job: commit until nothing is pending. */
static void commit_work(uv_work_t *w) {
  pw_declog *d = w->data;
  for (;;) {
    uv_mutex_lock(&d->mu);
    if ((d->sh_failed && !d->sh_reopen) || (!d->pending.len && !d->sh_reopen && !d->sh_sync)) {
      d->running = 0;
      uv_mutex_unlock(&d->mu);
      return;
    }
    pw_buf t = d->writing;
    d->writing = d->pending;
    d->pending = t;
    pw_buf_reset(&d->pending);
    uint64_t last = d->pending_last;
    d->pending_last = 0;
    int reopen = d->sh_reopen;
    int sync = d->sync == PW_LOG_ALWAYS ? d->writing.len > 0
             : d->sync == PW_LOG_BATCH
               ? d->sh_sync || (d->writing.len && now_ms() - d->last_sync_ms >= d->interval_ms)
               : 0;
    d->sh_reopen = d->sh_sync = 0;
    uv_mutex_unlock(&d->mu);

    char msg[256], note[512];
    uint64_t file_last = 0;
    msg[0] = note[0] = '\0';
    int io = 0, switched = 0;
    char seg[320];
    int rc = commit_one(d, &d->writing, reopen, sync, &file_last, msg, sizeof msg, note,
                        sizeof note, &io);
    if (rc == 0 && d->writing.len) d->switch_ok = 1;
    if (rc != 0 && io && d->switch_ok)
      switched = segment_switch(d, seg, sizeof seg, note, sizeof note) == 0;

    uv_mutex_lock(&d->mu);
    if (note[0]) {
      size_t l = strlen(d->pub_note);
      snprintf(d->pub_note + l, sizeof d->pub_note - l, "%s%s", l ? "; " : "", note);
    }
    if (reopen && rc == 0) {
      d->sh_failed = 0;
      d->pub_reopened = 1;
      d->pub_file_last = file_last;
    }
    if (rc != 0) {
      d->sh_failed = 1;
      d->pub_err = 1;
      snprintf(d->pub_msg, sizeof d->pub_msg, "%s", msg);
      if (switched) segment_publish(d, seg);
      pw_buf_reset(&d->pending);   /* not written: the loop reports them lost */
      d->pending_last = 0;
    } else {
      if (last) d->pub_durable = last;
      if (d->writing.len) d->st.commits++;
      d->st.bytes += d->writing.len;
      if (sync) {
        d->st.syncs++;
        d->last_sync_ms = now_ms();
        d->pub_unsynced = 0;
      } else if (d->writing.len) {
        d->pub_unsynced = 1;
      }
    }
    uv_mutex_unlock(&d->mu);
    pw_buf_reset(&d->writing);
    uv_async_send(&d->async);
    if (rc != 0) {
      uv_mutex_lock(&d->mu);
      d->running = 0;
      uv_mutex_unlock(&d->mu);
      return;
    }
  }
}

static void on_sync_timer(uv_timer_t *t);
static void torn_event(pw_declog *d);
static void segment_rewrite(pw_declog *d, const char *seg, const char *why);

/* Loop thread: act on what the job published. */
static void on_progress(uv_async_t *a) {
  pw_declog *d = a->data;
  uv_mutex_lock(&d->mu);
  uint64_t durable = d->pub_durable;
  int err = d->pub_err, reopened = d->pub_reopened, unsynced = d->pub_unsynced;
  int switched = d->pub_switched;
  uint64_t file_last = d->pub_file_last;
  char msg[256], note[1024], seg[320];
  snprintf(msg, sizeof msg, "%s", d->pub_msg);
  snprintf(note, sizeof note, "%s", d->pub_note);
  snprintf(seg, sizeof seg, "%s", d->pub_segment);
  d->pub_err = d->pub_reopened = d->pub_switched = 0;
  d->pub_note[0] = '\0';
  uv_mutex_unlock(&d->mu);

  if (note[0]) say(d, "%s", note);
  if (reopened) {
    d->failed = 0;
    d->failmsg[0] = '\0';
    if (file_last >= d->next_seq) d->next_seq = file_last + 1;
    say(d, "reopened %s", d->path);
    if (d->torn_found) torn_event(d);
  }
  if (durable > d->durable_seq && durable < d->next_seq) {
    d->durable_seq = durable;
    d->cb(d->arg, durable, 1);
  }
  if (err) {
    d->failed = 1;
    snprintf(d->failmsg, sizeof d->failmsg, "decision log %.100s: %.200s", d->path, msg);
    say(d, "%s", d->failmsg);
    if (switched) {
      segment_rewrite(d, seg, msg);
      return;
    }
    /* everything numbered and not durable is lost: the job wrote none of it */
    uint64_t lost_upto = d->next_seq - 1;
    pw_buf_reset(&d->local);
    d->local_last = 0;
    uv_mutex_lock(&d->mu);
    pw_buf_reset(&d->pending);
    d->pending_last = 0;
    d->st.lost += lost_upto > d->durable_seq ? lost_upto - d->durable_seq : 0;
    d->pub_durable = d->durable_seq;
    uv_mutex_unlock(&d->mu);
    d->next_seq = d->durable_seq + 1;
    if (lost_upto > d->durable_seq) d->cb(d->arg, lost_upto, 0);
    return;
  }
  if (d->sync == PW_LOG_BATCH && unsynced && !uv_is_active((uv_handle_t *)&d->timer))
    uv_timer_start(&d->timer, on_sync_timer, d->interval_ms, 0);
}

static void declog_start(pw_declog *d);

static void commit_after(uv_work_t *w, int status) {
  pw_declog *d = w->data;
  (void)status;
  d->queued = 0;
  on_progress(&d->async);
  declog_start(d);   /* records handed over while the job was stopping */
}

static void on_sync_timer(uv_timer_t *t) {
  pw_declog *d = t->data;
  if (!d->failed) {
    d->sync_req = 1;
    pw_declog_kick(d);
  }
}

/* Hand this iteration's records over and start a job if none runs. */
static void declog_start(pw_declog *d) {
  uv_mutex_lock(&d->mu);
  if (d->local.len) {
    if (!d->pending.len) {   /* hand the buffer over without a copy */
      pw_buf t = d->pending;
      d->pending = d->local;
      d->local = t;
    } else {
      size_t had = d->pending.len;
      pw_buf_add(&d->pending, d->local.data, d->local.len);
      if (d->pending.failed) {   /* out of memory: keep them here, try again later */
        d->pending.len = had;
        d->pending.failed = 0;
        uv_mutex_unlock(&d->mu);
        return;
      }
    }
    d->pending_last = d->local_last;
  }
  d->sh_reopen |= d->reopen_req;
  d->sh_sync |= d->sync_req;
  int start = !d->running && !d->queued && !(d->sh_failed && !d->sh_reopen) &&
              (d->pending.len || d->sh_reopen || d->sh_sync);
  if (start) d->running = 1;
  uv_mutex_unlock(&d->mu);
  pw_buf_reset(&d->local);
  d->local_last = 0;
  d->reopen_req = d->sync_req = 0;
  if (start) {
    d->work.data = d;
    d->queued = 1;
    if (uv_queue_work(d->loop, &d->work, commit_work, commit_after) != 0) {
      d->queued = 0;
      uv_mutex_lock(&d->mu);
      d->running = 0;
      d->sh_failed = 1;
      d->pub_err = 1;
      snprintf(d->pub_msg, sizeof d->pub_msg, "cannot queue a commit");
      uv_mutex_unlock(&d->mu);
      on_progress(&d->async);
    }
  }
}

void pw_declog_kick(pw_declog *d) {
  if (!d->local.len && !d->reopen_req && !d->sync_req) return;
  declog_start(d);
}

/* }====== */

/* ==================================================================== */
/* {====== records                                                      */

/* ids are written as -1 when unknown; counters fit in a long long */
static void add_long(pw_buf *b, long v) { pw_buf_add_int(b, v < 0 ? -1 : v); }

/* Start a record of seq in d->local: {"seq":N,"time":"...", */
static size_t rec_open(pw_declog *d, uint64_t seq) {
  pw_buf *b = &d->local;
  size_t start = b->len;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  if (ts.tv_sec != d->tsec) {
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    strftime(d->tbuf, sizeof d->tbuf, "%Y-%m-%dT%H:%M:%S", &tm);
    d->tsec = ts.tv_sec;
  }
  pw_buf_addf(b, "{\"seq\":%llu,\"time\":\"%s.%06ldZ\",", (unsigned long long)seq, d->tbuf,
              (long)(ts.tv_nsec / 1000) % 1000000);
  return start;
}

/* End the record begun at start with its CRC; 0 when out of memory (the
** record is dropped and its seq not used). */
static uint64_t rec_close(pw_declog *d, size_t start, uint64_t seq) {
  pw_buf *b = &d->local;
  uint32_t c = crc_run((const uint32_t(*)[256])d->crc, b->data + start, b->len - start);
  pw_buf_addf(b, ",\"crc32\":\"%08x\"}\n", (unsigned)c);
  if (b->failed) {
    b->len = start;
    b->failed = 0;
    return 0;
  }
  d->next_seq = seq + 1;
  d->local_last = seq;
  d->records++;
  return seq;
}

uint64_t pw_declog_append(pw_declog *d, const pw_declog_rec *r) {
  if (d->failed) return 0;
  uint64_t seq = d->next_seq;
  size_t start = rec_open(d, seq);
  pw_buf *b = &d->local;
  pw_buf_adds(b, "\"request_id\":");
  if (r->request_id && r->request_id_len) pw_buf_add(b, r->request_id, r->request_id_len);
  else pw_buf_add(b, "null", 4);
  pw_buf_adds(b, ",\"method\":");
  pw_buf_json_str(b, r->method);
  pw_buf_adds(b, ",\"peer\":{\"uid\":");
  add_long(b, r->uid);
  pw_buf_adds(b, ",\"gid\":");
  add_long(b, r->gid);
  pw_buf_adds(b, ",\"pid\":");
  add_long(b, r->pid);
  pw_buf_add(b, "},", 2);
  pw_buf_add(b, r->frag, r->frag_len);
  pw_buf_adds(b, ",\"duration_us\":");
  pw_buf_add_int(b, (long long)r->duration_us);
  return rec_close(d, start, seq);   /* 0 out of memory: no record, no seq used */
}

/* }====== */


/* ==================================================================== */
/* {====== event records and rewritten records (loop thread)            */

/* Append an event record; body is the event object's members. */
static uint64_t event_append(pw_declog *d, const pw_buf *body) {
  if (body->failed) return 0;
  uint64_t seq = d->next_seq;
  size_t start = rec_open(d, seq);
  pw_buf_addf(&d->local, "\"schema_version\":%d,\"engine\":\"%s\",\"log_event\":{", PW_RESULT_SCHEMA,
              PW_VERSION);
  pw_buf_add(&d->local, body->data, body->len);
  pw_buf_add(&d->local, "}", 1);
  return rec_close(d, start, seq);
}

/* The torn tail set aside at open or reopen, as an event. */
static void torn_event(pw_declog *d) {
  pw_buf b = {0};
  d->torn_found = 0;
  pw_buf_adds(&b, "\"kind\":\"torn_tail\",\"segment\":");
  pw_buf_json_str(&b, pw_file_name(d->path));
  pw_buf_addf(&b, ",\"offset\":%lld,\"bytes\":%lld,\"bad_records\":%d,\"torn_line\":%s,\"aside\":",
              d->torn_offset, d->torn_bytes, d->torn_lines, d->torn_last ? "true" : "false");
  pw_buf_json_str(&b, d->torn_aside);
  (void)event_append(d, &b);
  pw_buf_free(&b);
}

void pw_declog_refused(pw_declog *d, uint64_t seq) {
  if (!d->in_lost_cb) return;
  if (d->nrefused == d->caprefused) {
    size_t cap = d->caprefused ? d->caprefused * 2 : 64;
    uint64_t *n = realloc(d->refused, cap * sizeof *n);
    if (!n) return;   /* out of memory: that copy goes unmarked */
    d->refused = n;
    d->caprefused = cap;
  }
  d->refused[d->nrefused++] = seq;
}

static int was_refused(const pw_declog *d, uint64_t seq) {
  for (size_t i = 0; i < d->nrefused; i++)
    if (d->refused[i] == seq) return 1;
  return 0;
}

/* Append one line of a failed segment ({"seq":N,BODY,"crc32":"..."}\n)
** again with the next seq, and "refused" when its client was refused. */
static void rewrite_line(pw_declog *d, const char *line, size_t n, const char *why) {
  static const char tag[] = ",\"crc32\":\"";
  const char *comma = memchr(line, ',', n);
  size_t tl = sizeof tag - 1;
  if (!comma || n < tl + 12 || memcmp(line + n - tl - 10, tag, tl) != 0) return;
  uint64_t old = strtoull(line + 7, NULL, 10), seq = d->next_seq;
  size_t start = d->local.len;
  pw_buf_addf(&d->local, "{\"seq\":%llu", (unsigned long long)seq);
  pw_buf_add(&d->local, comma, (size_t)(line + n - tl - 10 - comma));
  if (was_refused(d, old)) {
    pw_buf_adds(&d->local, ",\"refused\":");
    pw_buf_json_str(&d->local, why);
  }
  (void)rec_close(d, start, seq);
}

/* Loop: the job set the failed segment aside as seg and opened a new one.
** Refuse the waiting clients (as a failure always does), then record the
** switch and every record not written, so none is missing from the log. */
static void segment_rewrite(pw_declog *d, const char *seg, const char *why) {
  pw_buf lost = {0};
  uint64_t lost_upto = d->next_seq - 1;
  uv_mutex_lock(&d->mu);
  lost = d->pub_lost;
  memset(&d->pub_lost, 0, sizeof d->pub_lost);
  if (d->pending.len) pw_buf_add(&lost, d->pending.data, d->pending.len);
  pw_buf_reset(&d->pending);
  d->pending_last = 0;
  d->st.lost += lost_upto > d->durable_seq ? lost_upto - d->durable_seq : 0;
  d->pub_durable = d->durable_seq;
  uv_mutex_unlock(&d->mu);
  if (d->local.len) pw_buf_add(&lost, d->local.data, d->local.len);
  pw_buf_reset(&d->local);
  d->local_last = 0;
  d->next_seq = d->durable_seq + 1;
  d->nrefused = 0;
  d->in_lost_cb = 1;
  if (lost_upto > d->durable_seq) d->cb(d->arg, lost_upto, 0);
  d->in_lost_cb = 0;
  d->failed = 0;
  d->failmsg[0] = '\0';
  uv_mutex_lock(&d->mu);
  d->sh_failed = 0;
  uv_mutex_unlock(&d->mu);

  char reason[640];
  snprintf(reason, sizeof reason, "decision log %.250s; the segment was set aside as %.320s",
           why, seg);
  pw_buf ev = {0};
  pw_buf_adds(&ev, "\"kind\":\"segment_failed\",\"segment\":");
  pw_buf_json_str(&ev, seg);
  pw_buf_adds(&ev, ",\"error\":");
  pw_buf_json_str(&ev, why);
  pw_buf_addf(&ev, ",\"last_seq\":%llu,\"rewritten\":%llu,\"refused\":%zu",
              (unsigned long long)d->durable_seq,
              (unsigned long long)(lost_upto - d->durable_seq), d->nrefused);
  (void)event_append(d, &ev);
  pw_buf_free(&ev);
  for (size_t i = 0; i < lost.len;) {
    const char *nl = memchr(lost.data + i, '\n', lost.len - i);
    if (!nl) break;
    rewrite_line(d, lost.data + i, (size_t)(nl - lost.data - i), reason);
    i = (size_t)(nl - lost.data) + 1;
  }
  say(d, "%s: a new segment was started at %s; %llu records rewritten there, %zu of them "
      "refused to their clients", reason, d->path,
      (unsigned long long)(lost_upto - d->durable_seq), d->nrefused);
  pw_buf_free(&lost);
  d->nrefused = 0;
  pw_declog_kick(d);
}

/* }====== */

pw_declog *pw_declog_open(uv_loop_t *loop, const pw_declog_opts *o, char *note,
                          size_t notelen) {
  pw_declog *d = calloc(1, sizeof *d);
  if (!d) {
    snprintf(note, notelen, "out of memory");
    return NULL;
  }
  d->loop = loop;
  d->path = strdup(o->path);
  d->sync = o->sync;
  d->interval_ms = o->interval_ms ? o->interval_ms : 1000;
  d->cb = o->cb;
  d->note = o->note;
  d->arg = o->arg;
  d->fd = -1;
  d->tsec = -1;
  crc_init(d->crc);
  uint64_t last = 0;
  if (!d->path || open_file(d, &d->fd, &last, note, notelen) != 0) {
    free(d->path);
    free(d);
    return NULL;
  }
  if (uv_mutex_init(&d->mu) != 0) {
    snprintf(note, notelen, "cannot create a mutex");
    close(d->fd);
    free(d->path);
    free(d);
    return NULL;
  }
  d->next_seq = last + 1;
  d->durable_seq = d->pub_durable = last;
  d->switch_ok = 1;
  if (d->torn_found) torn_event(d);
  d->last_sync_ms = now_ms();
  uv_timer_init(loop, &d->timer);
  d->timer.data = d;
  uv_unref((uv_handle_t *)&d->timer);
  uv_async_init(loop, &d->async, on_progress);
  d->async.data = d;
  uv_unref((uv_handle_t *)&d->async);
  d->handles = 2;
  return d;
}

void pw_declog_reopen(pw_declog *d) {
  d->reopen_req = 1;
  pw_declog_kick(d);
}

const char *pw_declog_error(const pw_declog *d) { return d->failed ? d->failmsg : NULL; }

int pw_declog_busy(const pw_declog *d) {
  pw_declog *m = (pw_declog *)d;
  uv_mutex_lock(&m->mu);
  int busy = m->running || (!m->sh_failed && m->pending.len);
  uv_mutex_unlock(&m->mu);
  /* in_lost_cb: the server must not close the log while it is rewritten */
  return busy || d->queued || d->local.len || d->reopen_req || (d->sync_req && !d->failed) ||
         d->in_lost_cb;
}

const char *pw_declog_mode_name(pw_log_sync s) {
  return s == PW_LOG_ALWAYS ? "always" : s == PW_LOG_BATCH ? "batch" : "none";
}

void pw_declog_get_stats(const pw_declog *d, pw_declog_stats *st) {
  pw_declog *m = (pw_declog *)d;
  uv_mutex_lock(&m->mu);
  *st = m->st;
  uv_mutex_unlock(&m->mu);
  st->records = d->records;
  st->last_seq = d->next_seq - 1;
}

static void free_after_close(uv_handle_t *h) {
  pw_declog *d = h->data;
  if (--d->handles) return;
  uv_mutex_destroy(&d->mu);
  free(d->path);
  free(d);
}

int pw_declog_close(pw_declog *d, char *err, size_t errlen) {
  int rc = 0;
  if (err && errlen) err[0] = '\0';
  /* no job runs (the caller waited for pw_declog_busy to clear) */
  if (d->fd >= 0 && !d->failed) {
    if (d->local.len) pw_buf_add(&d->pending, d->local.data, d->local.len);
    char msg[256], note[512];
    uint64_t fl;
    msg[0] = note[0] = '\0';
    int io;
    if (commit_one(d, &d->pending, 0, 1, &fl, msg, sizeof msg, note, sizeof note, &io) != 0) {
      snprintf(err, errlen, "%s", msg);
      rc = -1;
    }
  } else if (d->failed) {
    snprintf(err, errlen, "%s", d->failmsg);
    rc = -1;
  }
  if (d->fd >= 0) close(d->fd);
  d->fd = -1;
  pw_buf_free(&d->pending);
  pw_buf_free(&d->writing);
  pw_buf_free(&d->local);
  pw_buf_free(&d->pub_lost);
  free(d->refused);
  d->refused = NULL;
  uv_timer_stop(&d->timer);
  uv_close((uv_handle_t *)&d->timer, free_after_close);
  uv_close((uv_handle_t *)&d->async, free_after_close);
  return rc;
}
