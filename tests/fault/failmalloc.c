/*
** failmalloc.c: an LD_PRELOAD shim that makes the Nth allocation fail, to
** prove that pathwise survives running out of memory (issue 12, "never
** die"). It wraps malloc, calloc, realloc, posix_memalign and
** aligned_alloc; the real ones are glibc's __libc_* entry points, so no
** dlsym is needed while the dynamic loader itself allocates.
**
** Environment (all optional; without PW_FAIL_N the shim does nothing):
**   PW_FAIL_N=N         the Nth counted allocation (1-based) returns NULL
**   PW_FAIL_PERSIST=1   every counted allocation from the Nth on fails
**                       (default: only the Nth, a transient failure)
**   PW_FAIL_AFTER=STR   count only once a file whose path contains STR
**                       was opened (open/openat/fopen): e.g. the input
**                       file, to skip start-up and aim at the work itself
**   PW_FAIL_CHILDREN=1  keep counting in forked children (default: a
**                       child stops failing, so a server's workers are
**                       left alone and only the supervisor is tested)
**   PW_FAIL_WHILE=PATH instead of PW_FAIL_N: every counted allocation
**                       fails while PATH exists (a test creates and
**                       removes it, to fail a burst of work and then let
**                       the process recover)
**   PW_BLOCK_OPEN=STR   (with PW_BLOCK_WHILE=PATH; independent of the
**                       above) an open of a path containing STR waits
**                       while PATH exists: a slow or hung file system
**   PW_FAIL_LOG=FILE    append "fired N pid" there when a failure is
**                       injected, and "total M pid" at exit (counted
**                       allocations seen), so a sweep knows when N has
**                       gone past the last allocation of a run
** Not for AddressSanitizer builds (ASan owns malloc).
*/
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/syscall.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static atomic_long counted;     /* counted allocations so far */
static long fail_n;             /* 0: inactive */
static int persist, armed, children, configured;
static const char *after, *logpath, *while_path;
static const char *block_str, *block_while;
static atomic_int in_log;

static void log_line(const char *what, long n) {
  if (!logpath || atomic_exchange(&in_log, 1)) return;
  char line[96];
  int k = snprintf(line, sizeof line, "%s %ld %ld\n", what, n, (long)getpid());
  int fd = open(logpath, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd >= 0) {
    if (write(fd, line, (size_t)k) < 0) { /* nothing to do */ }
    close(fd);
  }
  atomic_store(&in_log, 0);
}

static void at_exit_report(void) {
  if (fail_n) log_line("total", atomic_load(&counted));
}

static void in_child(void) {
  if (!children) {
    fail_n = 0;
    while_path = NULL;
  }
  atomic_store(&counted, 0);
}

__attribute__((constructor)) static void configure(void) {
  block_str = getenv("PW_BLOCK_OPEN");
  block_while = getenv("PW_BLOCK_WHILE");
  if (!block_str || !*block_str || !block_while || !*block_while) block_str = NULL;
  const char *n = getenv("PW_FAIL_N");
  while_path = getenv("PW_FAIL_WHILE");
  if (while_path && !*while_path) while_path = NULL;
  if ((!n || !*n) && !while_path) return;
  fail_n = while_path ? 0 : strtol(n, NULL, 10);
  if (fail_n <= 0 && !while_path) { fail_n = 0; return; }
  persist = getenv("PW_FAIL_PERSIST") && atoi(getenv("PW_FAIL_PERSIST"));
  children = getenv("PW_FAIL_CHILDREN") && atoi(getenv("PW_FAIL_CHILDREN"));
  after = getenv("PW_FAIL_AFTER");
  if (after && !*after) after = NULL;
  logpath = getenv("PW_FAIL_LOG");
  armed = after == NULL;
  pthread_atfork(NULL, NULL, in_child);
  atexit(at_exit_report);
  configured = 1;
}

/* Should this allocation fail? */
static int should_fail(void) {
  if (configured && while_path && armed)   /* a raw syscall: no allocation, no interposed open */
    return syscall(SYS_faccessat, AT_FDCWD, while_path, F_OK, 0) == 0;
  if (!configured || !fail_n || !armed) return 0;
  long k = atomic_fetch_add(&counted, 1) + 1;
  if (k == fail_n || (persist && k > fail_n)) {
    if (k == fail_n) log_line("fired", k);
    return 1;
  }
  return 0;
}

static void check_path(const char *path) {
  if (configured && !armed && path && strstr(path, after)) armed = 1;
  if (block_str && path && strstr(path, block_str)) {
    struct timespec ts = {0, 10 * 1000 * 1000};
    while (syscall(SYS_faccessat, AT_FDCWD, block_while, F_OK, 0) == 0) nanosleep(&ts, NULL);
  }
}

void *malloc(size_t n) {
  if (should_fail()) { errno = ENOMEM; return NULL; }
  return __libc_malloc(n);
}

void *calloc(size_t a, size_t b) {
  if (should_fail()) { errno = ENOMEM; return NULL; }
  return __libc_calloc(a, b);
}

void *realloc(void *p, size_t n) {
  if (n && should_fail()) { errno = ENOMEM; return NULL; }
  return __libc_realloc(p, n);
}

int posix_memalign(void **out, size_t align, size_t n) {
  if (should_fail()) return ENOMEM;
  void *p = __libc_memalign(align, n);
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}

void *aligned_alloc(size_t align, size_t n) {
  if (should_fail()) { errno = ENOMEM; return NULL; }
  return __libc_memalign(align, n);
}

/* The arming marker: opening a file whose path contains PW_FAIL_AFTER. */
#define OPEN_BODY(call)                                                      \
  mode_t mode = 0;                                                           \
  if (flags & (O_CREAT | O_TMPFILE)) {                                       \
    va_list ap;                                                              \
    va_start(ap, flags);                                                     \
    mode = va_arg(ap, mode_t);                                               \
    va_end(ap);                                                              \
  }                                                                          \
  check_path(path);                                                          \
  return call

int open(const char *path, int flags, ...) { OPEN_BODY((int)syscall(SYS_openat, AT_FDCWD, path, flags, mode)); }
int open64(const char *path, int flags, ...) { OPEN_BODY((int)syscall(SYS_openat, AT_FDCWD, path, flags, mode)); }
int openat(int dir, const char *path, int flags, ...) { OPEN_BODY((int)syscall(SYS_openat, dir, path, flags, mode)); }
int openat64(int dir, const char *path, int flags, ...) { OPEN_BODY((int)syscall(SYS_openat, dir, path, flags, mode)); }

#include <dlfcn.h>
typedef FILE *fopen_fn(const char *, const char *);

FILE *fopen(const char *path, const char *mode) {
  static fopen_fn *real;
  if (!real) real = (fopen_fn *)dlsym(RTLD_NEXT, "fopen");
  check_path(path);
  return real(path, mode);
}

FILE *fopen64(const char *path, const char *mode) {
  static fopen_fn *real;
  if (!real) real = (fopen_fn *)dlsym(RTLD_NEXT, "fopen64");
  check_path(path);
  return real(path, mode);
}
