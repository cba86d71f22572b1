/*
** listen.c: the socket file: its lock, a stale file left by a dead server,
** binding with the final mode and listening, and removing it at exit
** (only if it is still the file this process bound).
**
** PATH.lock (flock) makes one server per socket path; a socket file that
** nothing listens on (ECONNREFUSED) and that belongs to us is stale and
** removed; anything else there is refused with a sysexits code.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "command.h"
#include "supervisor.h"

/* Take PATH.lock; 0 or a sysexits code. */
static int take_lock(srv *s, const char *path, size_t l) {
  char *lock = malloc(l + 6);
  if (!lock) abort();
  sprintf(lock, "%s.lock", path);
  int rc = 0;
  s->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (s->lock_fd < 0) {
    pw_serve_err("cannot open the lock file %s: %s", lock, strerror(errno));
    rc = PW_EX_CANTCREAT;
  } else if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
    pw_serve_err("another pathwise server holds %s: is one already serving %s?", lock, path);
    rc = PW_EX_UNAVAILABLE;
  }
  free(lock);
  return rc;
}

/* A socket file of ours is at path: remove it if nothing listens on it. */
static int remove_stale(const char *path, size_t l) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    pw_serve_err("socket: %s", strerror(errno));
    return PW_EX_OSERR;
  }
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  memcpy(sa.sun_path, path, l);
  int rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
  int e = errno;
  close(fd);
  if (rc == 0 || e == EAGAIN) {
    pw_serve_err("a server is already listening on %s", path);
    return PW_EX_UNAVAILABLE;
  }
  if (e != ECONNREFUSED) {
    pw_serve_err("cannot tell whether %s is in use: %s", path, strerror(e));
    return PW_EX_UNAVAILABLE;
  }
  if (unlink(path) != 0) {
    pw_serve_err("cannot remove the stale socket %s: %s", path, strerror(errno));
    return PW_EX_CANTCREAT;
  }
  pw_serve_warn("removed a stale socket file %s", path);
  return 0;
}

int pw_listen_prepare(srv *s) {
  const char *path = s->o.socket;
  size_t l = strlen(path);
  if (l == 0 || (int)l > SRV_SUN_PATH_MAX) {
    pw_serve_err("socket path is %zu bytes long; a Unix socket path must be 1 to %d bytes: %s",
                 l, SRV_SUN_PATH_MAX, path);
    return PW_EX_USAGE;
  }
  int rc = take_lock(s, path, l);
  if (rc != 0) return rc;
  struct stat st;
  if (lstat(path, &st) != 0) {
    if (errno == ENOENT) return 0;
    pw_serve_err("%s: %s", path, strerror(errno));
    return PW_EX_CANTCREAT;
  }
  if (!S_ISSOCK(st.st_mode)) {
    pw_serve_err("%s exists and is not a socket; refusing to replace it", path);
    return PW_EX_CANTCREAT;
  }
  if (st.st_uid != geteuid()) {
    pw_serve_err("%s belongs to uid %ld, not to us; refusing to replace it", path,
                 (long)st.st_uid);
    return PW_EX_CANTCREAT;
  }
  return remove_stale(path, l);
}

int pw_listen_start(srv *s) {
  uv_pipe_init(s->loop, &s->listener, 0);
  s->listener.data = s;
  s->listener_init = 1;
  if (s->activated_fd > 0) {   /* systemd owns the file: adopt, never unlink */
    int rc = uv_pipe_open(&s->listener, s->activated_fd);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&s->listener, 256, pw_conn_accept);
    if (rc != 0) pw_serve_err("cannot listen on the socket from systemd: %s", uv_strerror(rc));
    return rc != 0 ? -1 : 0;
  }
  /* the file is born with its final mode: no chmod after, no widening */
  mode_t old = umask((mode_t)(~s->o.socket_mode & 0777));
  int rc = uv_pipe_bind(&s->listener, s->o.socket);
  umask(old);
  if (rc != 0) {
    pw_serve_err("cannot bind %s: %s", s->o.socket, uv_strerror(rc));
    return -1;
  }
  struct stat st;
  if (lstat(s->o.socket, &st) == 0) {
    s->sock_dev = st.st_dev;
    s->sock_ino = st.st_ino;
    s->sock_bound = 1;
  }
  rc = uv_listen((uv_stream_t *)&s->listener, 256, pw_conn_accept);
  if (rc != 0) {
    pw_serve_err("cannot listen on %s: %s", s->o.socket, uv_strerror(rc));
    return -1;
  }
  return 0;
}

void pw_listen_unlink(srv *s) {
  struct stat st;
  if (!s->sock_bound) return;
  s->sock_bound = 0;
  if (lstat(s->o.socket, &st) == 0 && st.st_dev == s->sock_dev && st.st_ino == s->sock_ino)
    unlink(s->o.socket);
}
