/*
** file.c: pw_file_read, and host paths cut to file names; see file.h.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "buf.h"
#include "error.h"
#include "file.h"

const char *pw_file_why(int errnum) {
  return errnum == EINVAL ? "not a regular file" : strerror(errnum);
}

/* Open path for reading: a regular file only, never blocking on open. */
static int open_regular(const char *path, pw_error *err) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    int e = errno;
    pw_error_set(err, PW_EIO, "cannot open %s: %s", path, strerror(e));
    errno = e;
    return -1;
  }
  struct stat st;
  int e = 0;
  if (fstat(fd, &st)) e = errno;
  else if (S_ISDIR(st.st_mode)) e = EISDIR;
  else if (!S_ISREG(st.st_mode)) e = EINVAL;
  else if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)) e = errno;
  if (e) {
    close(fd);
    pw_error_set(err, PW_EIO, "cannot open %s: %s", path, pw_file_why(e));
    errno = e;
    return -1;
  }
  return fd;
}

pw_status pw_file_read(const char *path, size_t max, pw_buf *out, pw_error *err) {
  int stdin_ = !strcmp(path, "-");
  int fd = stdin_ ? STDIN_FILENO : open_regular(path, err);
  if (fd < 0) return PW_EIO;
  size_t start = out->len;
  char chunk[65536];
  int e = 0;
  for (;;) {
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) { e = errno; break; }
    if (n == 0) break;
    pw_buf_add(out, chunk, (size_t)n);
    if (out->failed) { e = ENOMEM; break; }
    if (max && out->len - start > max) { e = EFBIG; break; }
  }
  if (!stdin_) close(fd);
  if (e) {
    out->len = start;
    out->failed = 0;   /* what was there before is intact */
    if (out->data) out->data[start] = '\0';
    if (e == ENOMEM) pw_error_set(err, PW_EMEMORY, "cannot read %s: out of memory", stdin_ ? "stdin" : path);
    else if (e == EFBIG && max % (1u << 20) == 0) pw_error_set(err, PW_EIO, "%s: larger than %zu MiB", path, max >> 20);
    else if (e == EFBIG) pw_error_set(err, PW_EIO, "%s: larger than %zu bytes", path, max);
    else pw_error_set(err, PW_EIO, "cannot read %s: %s", stdin_ ? "stdin" : path, strerror(e));
    errno = e;
    return PW_EIO;
  }
  if (!out->data) pw_buf_add(out, "", 0);
  if (out->failed) {
    out->failed = 0;
    errno = ENOMEM;
    return pw_error_set(err, PW_EMEMORY, "cannot read %s: out of memory", stdin_ ? "stdin" : path);
  }
  return PW_OK;
}

const char *pw_file_name(const char *path) {
  const char *slash = strrchr(path, '/');
  return slash ? slash + 1 : path;
}

/* A path inside a word: it starts with '/', "./" or "..", or its last
** component names a Lua file. */
static int is_path(const char *w, size_t n, const char *last) {
  if (!last) return 0;
  if (w[0] == '/' || (n > 1 && w[0] == '.' && (w[1] == '/' || w[1] == '.'))) return 1;
  for (const char *q = last; q + 4 <= w + n; q++)
    if (!memcmp(q, ".lua", 4)) return 1;
  return 0;
}

char *pw_file_cut_paths(const char *msg) {
  static const char delim[] = " \t\n()[]{}'\",;=";
  pw_buf b = {0};
  for (const char *q = msg; *q;) {
    size_t n = strcspn(q, delim);
    if (n == 0) {
      pw_buf_add(&b, q, 1);
      q++;
      continue;
    }
    const char *last = NULL;
    for (const char *r = q; r < q + n; r++)
      if (*r == '/') last = r + 1;
    if (is_path(q, n, last) && last < q + n) pw_buf_add(&b, last, (size_t)(q + n - last));
    else pw_buf_add(&b, q, n);
    q += n;
  }
  pw_buf_add(&b, "", 0);
  if (b.failed) {
    pw_buf_free(&b);
    return NULL;
  }
  return b.data;
}
