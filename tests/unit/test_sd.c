/*
** test_sd.c: the systemd protocol pieces of engine/server/sd.c, against
** real sockets: a notification datagram arrives whole (path and abstract
** addresses), RELOADING=1 carries MONOTONIC_USEC, journal priorities
** appear only when stderr is the journal stream, and socket activation
** adopts fd 3 only when it is ours, listening, and bound to --socket.
*/
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include "pwtest.h"
#include "sd.h"

static int bind_unix(int type, const char *path, int abstract) {
  int fd = socket(AF_UNIX, type, 0);
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  size_t l = strlen(path);
  memcpy(sa.sun_path + (abstract ? 1 : 0), path, l);
  socklen_t sl = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + l + (abstract ? 1 : 0));
  if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sl) != 0) return -1;
  return fd;
}

static void test_notify(const char *dir) {
  char path[400], got[256], env[300];
  unsetenv("NOTIFY_SOCKET");
  CHECK(pw_sd_notify("READY=1") == 0);
  snprintf(path, sizeof path, "%s/notify", dir);
  int fd = bind_unix(SOCK_DGRAM, path, 0);
  CHECK(fd >= 0);
  setenv("NOTIFY_SOCKET", path, 1);
  CHECK(pw_sd_notify("READY=1\nSTATUS=serving") == 1);
  ssize_t n = recv(fd, got, sizeof got - 1, 0);
  got[n > 0 ? n : 0] = 0;
  CHECK_STR(got, "READY=1\nSTATUS=serving");
  char msg[200];
  pw_sd_reloading_msg(msg, sizeof msg, "reloading (SIGHUP)");
  CHECK(pw_sd_notify(msg) == 1);
  n = recv(fd, got, sizeof got - 1, 0);
  got[n > 0 ? n : 0] = 0;
  CHECK(strncmp(got, "RELOADING=1\nMONOTONIC_USEC=", 27) == 0);
  CHECK_CONTAINS(got, "\nSTATUS=reloading (SIGHUP)");
  CHECK(strtoull(got + 27, NULL, 10) > 0);
  close(fd);
  snprintf(env, sizeof env, "pathwise-test-%d", (int)getpid());
  fd = bind_unix(SOCK_DGRAM, env, 1);
  CHECK(fd >= 0);
  snprintf(path, sizeof path, "@%s", env);
  setenv("NOTIFY_SOCKET", path, 1);
  CHECK(pw_sd_notify("STOPPING=1") == 1);
  n = recv(fd, got, sizeof got - 1, 0);
  got[n > 0 ? n : 0] = 0;
  CHECK_STR(got, "STOPPING=1");
  close(fd);
  setenv("NOTIFY_SOCKET", "relative/path", 1);
  CHECK(pw_sd_notify("READY=1") == -1);
  unsetenv("NOTIFY_SOCKET");
}

static void test_journal(void) {
  struct stat st;
  char v[64];
  unsetenv("JOURNAL_STREAM");
  CHECK(pw_sd_stderr_is_journal() == 0);
  CHECK(fstat(STDERR_FILENO, &st) == 0);
  snprintf(v, sizeof v, "%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
  setenv("JOURNAL_STREAM", v, 1);
  CHECK(pw_sd_stderr_is_journal() == 1);
  snprintf(v, sizeof v, "%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino + 1);
  setenv("JOURNAL_STREAM", v, 1);
  CHECK(pw_sd_stderr_is_journal() == 0);   /* stderr redirected elsewhere: no prefixes */
  setenv("JOURNAL_STREAM", "garbage", 1);
  CHECK(pw_sd_stderr_is_journal() == 0);
  unsetenv("JOURNAL_STREAM");
  CHECK_STR(pw_sd_prefix(1, PW_SD_ERR), "<3>");
  CHECK_STR(pw_sd_prefix(1, PW_SD_WARNING), "<4>");
  CHECK_STR(pw_sd_prefix(1, PW_SD_INFO), "<6>");
  CHECK_STR(pw_sd_prefix(0, PW_SD_ERR), "");
}

static void set_listen(long pid, const char *fds) {
  char p[32];
  snprintf(p, sizeof p, "%ld", pid);
  setenv("LISTEN_PID", p, 1);
  setenv("LISTEN_FDS", fds, 1);
  setenv("LISTEN_FDNAMES", "pathwise.socket", 1);
}

static void test_listen(const char *dir) {
  char path[256], other[256], err[300];
  snprintf(path, sizeof path, "%s/pw.sock", dir);
  snprintf(other, sizeof other, "%s/other.sock", dir);
  unsetenv("LISTEN_PID");
  unsetenv("LISTEN_FDS");
  CHECK(pw_sd_listen_fd(path, err, sizeof err) == 0);
  int saved = dup(3);   /* fd 3 may be in use by the harness: keep it */
  int fd = bind_unix(SOCK_STREAM, path, 0);
  CHECK(fd >= 0 && listen(fd, 8) == 0);
  CHECK(dup2(fd, 3) == 3);
  set_listen((long)getpid(), "1");
  CHECK(pw_sd_listen_fd(path, err, sizeof err) == 3);
  CHECK(getenv("LISTEN_PID") == NULL && getenv("LISTEN_FDS") == NULL && getenv("LISTEN_FDNAMES") == NULL);
  CHECK((fcntl(3, F_GETFD) & FD_CLOEXEC) != 0);
  set_listen((long)getpid() + 1, "1");   /* for another process: ignored, and cleared */
  CHECK(pw_sd_listen_fd(path, err, sizeof err) == 0);
  CHECK(getenv("LISTEN_PID") == NULL);
  set_listen((long)getpid(), "1");       /* bound elsewhere: refused, naming both paths */
  err[0] = 0;
  CHECK(pw_sd_listen_fd(other, err, sizeof err) == -1);
  CHECK_CONTAINS(err, "not to --socket");
  set_listen((long)getpid(), "2");
  CHECK(pw_sd_listen_fd(path, err, sizeof err) == -1);
  CHECK_CONTAINS(err, "LISTEN_FDS=2");
  int dg = bind_unix(SOCK_DGRAM, other, 0);   /* not a stream socket */
  unlink(other);
  CHECK(dg >= 0 && dup2(dg, 3) == 3);
  set_listen((long)getpid(), "1");
  CHECK(pw_sd_listen_fd(path, err, sizeof err) == -1);
  CHECK_CONTAINS(err, "not a listening Unix stream socket");
  int unl = socket(AF_UNIX, SOCK_STREAM, 0);   /* a stream socket that does not listen */
  CHECK(unl >= 0 && dup2(unl, 3) == 3);
  set_listen((long)getpid(), "1");
  CHECK(pw_sd_listen_fd(path, err, sizeof err) == -1);
  close(unl);
  close(dg);
  close(fd);
  if (saved >= 0) { dup2(saved, 3); close(saved); } else close(3);
  unlink(path);
}

PW_TEST_MAIN({
  char dir[] = "/tmp/pw-sd-XXXXXX";
  if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
  test_notify(dir);
  test_journal();
  test_listen(dir);
  char p[300];
  snprintf(p, sizeof p, "%s/notify", dir);
  unlink(p);
  rmdir(dir);
})
