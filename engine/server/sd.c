/*
** sd.c: systemd notifications, journal priorities, socket activation;
** see sd.h.
*/
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include "sd.h"

#define SD_LISTEN_FDS_START 3

int pw_sd_notify(const char *msg) {
  const char *path = getenv("NOTIFY_SOCKET");
  if (!path || !*path) return 0;
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  size_t l = strlen(path);
  if (l >= sizeof sa.sun_path || (path[0] != '/' && path[0] != '@')) return -1;
  memcpy(sa.sun_path, path, l);
  if (sa.sun_path[0] == '@') sa.sun_path[0] = '\0';   /* abstract namespace */
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  ssize_t w = sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sa,
                     (socklen_t)(offsetof(struct sockaddr_un, sun_path) + l));
  close(fd);
  return w == (ssize_t)strlen(msg) ? 1 : -1;
}

void pw_sd_reloading_msg(char *out, size_t n, const char *status) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  snprintf(out, n, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=%s",
           (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000ull,
           status);
}

int pw_sd_stderr_is_journal(void) {
  const char *js = getenv("JOURNAL_STREAM");
  unsigned long long dev, ino;
  struct stat st;
  if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2) return 0;
  if (fstat(STDERR_FILENO, &st) != 0) return 0;
  return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

const char *pw_sd_prefix(int journal, int prio) {
  static const char *const p[8] = {"<0>", "<1>", "<2>", "<3>", "<4>", "<5>", "<6>", "<7>"};
  return journal && prio >= 0 && prio < 8 ? p[prio] : "";
}

static void clear_listen_env(void) {
  unsetenv("LISTEN_PID");
  unsetenv("LISTEN_FDS");
  unsetenv("LISTEN_FDNAMES");
}

/* Is fd a listening AF_UNIX stream socket bound to path? */
static int fits(int fd, const char *path, char *err, size_t n) {
  int type = 0, acc = 0;
  socklen_t tl = sizeof type, al = sizeof acc;
  struct sockaddr_un sa;
  socklen_t sl = sizeof sa;
  memset(&sa, 0, sizeof sa);
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 || type != SOCK_STREAM ||
      getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al) != 0 || !acc ||
      getsockname(fd, (struct sockaddr *)&sa, &sl) != 0 || sa.sun_family != AF_UNIX) {
    snprintf(err, n, "socket activation: fd %d is not a listening Unix stream socket", fd);
    return 0;
  }
  size_t l = sl > offsetof(struct sockaddr_un, sun_path) ? sl - offsetof(struct sockaddr_un, sun_path) : 0;
  while (l && sa.sun_path[l - 1] == '\0') l--;
  if (l != strlen(path) || memcmp(sa.sun_path, path, l) != 0) {
    snprintf(err, n, "socket activation: the passed socket is bound to %.*s, not to --socket %s",
             (int)(l > 200 ? 200 : l), sa.sun_path, path);
    return 0;
  }
  return 1;
}

int pw_sd_listen_fd(const char *path, char *err, size_t n) {
  const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
  if (!pid || !fds) return 0;
  char *end;
  errno = 0;
  long p = strtol(pid, &end, 10);
  int ours = !errno && *pid && !*end && p == (long)getpid();
  long k = strtol(fds, &end, 10);
  int valid = *fds && !*end;
  clear_listen_env();
  if (!ours) return 0;   /* meant for another process */
  if (!valid || k != 1) {
    snprintf(err, n, "socket activation: expected one socket, got LISTEN_FDS=%s", fds);
    return -1;
  }
  int fd = SD_LISTEN_FDS_START;
  if (!fits(fd, path, err, n)) return -1;
  int fl = fcntl(fd, F_GETFD);
  if (fl < 0 || fcntl(fd, F_SETFD, fl | FD_CLOEXEC) != 0) {
    snprintf(err, n, "socket activation: fd %d: %s", fd, strerror(errno));
    return -1;
  }
  return fd;
}
