/*
** failio.c: an LD_PRELOAD shim that makes the Nth write(2) or fdatasync
** on a chosen file fail, to prove what the decision log does on an I/O
** error (issue 12, "audit every request": a failed sync ends the segment).
** Only descriptors whose path (/proc/self/fd/N) contains PW_FAILIO_PATH
** are counted, so sockets, pipes and stderr are never touched.
**
** Environment (without PW_FAILIO_PATH and PW_FAILIO_N the shim does nothing):
**   PW_FAILIO_PATH=STR   count operations on files whose path contains STR
**   PW_FAILIO_OP=OP      "fdatasync" (default) or "write"
**   PW_FAILIO_N=N        the Nth counted operation (1-based) fails
**   PW_FAILIO_COUNT=K    it and the K-1 after it fail (default 1)
**   PW_FAILIO_ERRNO=E    the errno they fail with (default EIO)
*/
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *match;
static long fail_n, fail_count = 1;
static int fail_errno = EIO, on_write, configured;
static atomic_long counted;

__attribute__((constructor)) static void configure(void) {
  const char *p = getenv("PW_FAILIO_PATH"), *n = getenv("PW_FAILIO_N");
  if (!p || !*p || !n || (fail_n = strtol(n, NULL, 10)) <= 0) return;
  match = p;
  const char *op = getenv("PW_FAILIO_OP");
  on_write = op && strcmp(op, "write") == 0;
  if (getenv("PW_FAILIO_COUNT")) fail_count = strtol(getenv("PW_FAILIO_COUNT"), NULL, 10);
  if (getenv("PW_FAILIO_ERRNO")) fail_errno = atoi(getenv("PW_FAILIO_ERRNO"));
  configured = 1;
}

/* Is fd one of ours, and is this its failing operation? */
static int should_fail(int fd) {
  char link[64], path[4096];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t k = readlink(link, path, sizeof path - 1);
  if (k <= 0) return 0;
  path[k] = '\0';
  if (!strstr(path, match)) return 0;
  long i = atomic_fetch_add(&counted, 1) + 1;
  return i >= fail_n && i < fail_n + fail_count;
}

ssize_t write(int fd, const void *buf, size_t n) {
  if (configured && on_write && should_fail(fd)) {
    errno = fail_errno;
    return -1;
  }
  return syscall(SYS_write, fd, buf, n);
}

int fdatasync(int fd) {
  if (configured && !on_write && should_fail(fd)) {
    errno = fail_errno;
    return -1;
  }
  return (int)syscall(SYS_fdatasync, fd);
}
