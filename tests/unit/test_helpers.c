/*
** test_helpers.c: the shared helpers of issue 9: pw_file_read (regular
** files only, never blocking), pw_error_set (printf-style, cut on a UTF-8
** boundary) and pw_cmd_option (one parser for the shared flags).
*/
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include "buf.h"
#include "command.h"
#include "error.h"
#include "file.h"
#include "pwtest.h"

static void test_file_read(void) {
  char dir[] = "/tmp/pw_test_helpersXXXXXX";
  char path[300], fifo[300];
  pw_buf b = {0};
  pw_error err;
  CHECK(mkdtemp(dir) != NULL);
  snprintf(path, sizeof path, "%s/f.txt", dir);
  snprintf(fifo, sizeof fifo, "%s/fifo", dir);
  FILE *f = fopen(path, "wb");
  CHECK(f && fputs("hello", f) >= 0 && fclose(f) == 0);
  CHECK(pw_file_read(path, 0, &b, &err) == PW_OK);
  CHECK(b.len == 5 && !strcmp(b.data, "hello"));
  /* too large: refused, and the buffer is left as it was */
  CHECK(pw_file_read(path, 4, &b, &err) == PW_EIO && errno == EFBIG);
  CHECK(b.len == 5 && !strcmp(b.data, "hello"));
  CHECK_CONTAINS(err.msg, "larger than 4 bytes");
  /* a FIFO nobody writes would block a plain open(): refused at once */
  CHECK(mkfifo(fifo, 0600) == 0);
  CHECK(pw_file_read(fifo, 0, &b, &err) == PW_EIO && err.code == PW_EIO);
  CHECK_CONTAINS(err.msg, "not a regular file");
  CHECK_STR(pw_file_why(EINVAL), "not a regular file");
  CHECK(pw_file_read(dir, 0, &b, &err) == PW_EIO && errno == EISDIR);
  CHECK(pw_file_read("/nonexistent/pw", 0, &b, NULL) == PW_EIO && errno == ENOENT);
  /* an empty file gives an empty, NUL-terminated buffer */
  pw_buf e = {0};
  f = fopen(path, "wb");
  CHECK(f && fclose(f) == 0);
  CHECK(pw_file_read(path, 0, &e, &err) == PW_OK && e.data && e.len == 0 && e.data[0] == '\0');
  unlink(fifo);
  unlink(path);
  rmdir(dir);
  pw_buf_free(&b);
  pw_buf_free(&e);
}

static void test_error_set(void) {
  pw_error err;
  CHECK(pw_error_set(&err, PW_EINPUT, "%s: expected %d", "ecog", 4) == PW_EINPUT);
  CHECK(err.code == PW_EINPUT);
  CHECK_STR(err.msg, "ecog: expected 4");
  CHECK(pw_error_set(NULL, PW_EIO, "x") == PW_EIO);
  /* a message longer than msg is cut on a character boundary */
  char big[600];
  memset(big, 'a', sizeof big);
  memcpy(big + sizeof err.msg - 2, "\xc3\xa9", 2);   /* é straddles the end */
  big[sizeof big - 1] = '\0';
  pw_error_set(&err, PW_EINPUT, "%s", big);
  CHECK(pw_utf8_valid(err.msg, strlen(err.msg)));
  CHECK(strlen(err.msg) == sizeof err.msg - 2);
}

static void test_option(void) {
  pw_cmd_opts o;
  char msg[200];
  memset(&o, 0, sizeof o);
  CHECK(pw_cmd_option(PW_OPT_PROTOCOL, "p.lua", &o, msg, sizeof msg) == 1);
  CHECK_STR(o.protocol, "p.lua");
  CHECK(pw_cmd_json(&o) == -1);
  CHECK(pw_cmd_option(PW_OPT_FORMAT, "json", &o, msg, sizeof msg) == 1 && pw_cmd_json(&o) == 1);
  CHECK(pw_cmd_option(PW_OPT_FORMAT, "yaml", &o, msg, sizeof msg) == -1);
  CHECK_STR(msg, "--format takes text or json, got 'yaml'");
  CHECK(pw_cmd_option(PW_OPT_MEMORY, "65535", &o, msg, sizeof msg) == -1);
  CHECK(pw_cmd_option(PW_OPT_MEMORY, "65536", &o, msg, sizeof msg) == 1 && o.lim.memory == 65536);
  CHECK(pw_cmd_option(PW_OPT_INSTRUCTIONS, "0", &o, msg, sizeof msg) == -1);
  CHECK(pw_cmd_option(PW_OPT_INSTRUCTIONS, "9", &o, msg, sizeof msg) == 1 && o.lim.instructions == 9);
  CHECK(pw_cmd_option(PW_OPT_JOBS, "0", &o, msg, sizeof msg) == -1);
  CHECK(pw_cmd_option(PW_OPT_JOBS, "257", &o, msg, sizeof msg) == -1);
  CHECK(pw_cmd_option(PW_OPT_JOBS, "256", &o, msg, sizeof msg) == 1 && o.jobs == 256);
  for (int i = 0; i < PW_MAX_PLUGINS; i++) CHECK(pw_cmd_option(PW_OPT_PLUGIN, "x.lua", &o, msg, sizeof msg) == 1);
  CHECK(pw_cmd_option(PW_OPT_PLUGIN, "x.lua", &o, msg, sizeof msg) == -1);
  CHECK(o.nplugins == PW_MAX_PLUGINS);
  CHECK(pw_cmd_option('t', NULL, &o, msg, sizeof msg) == 0);   /* not a shared flag */
  int cores = pw_cmd_cores();
  CHECK(cores >= 1 && cores <= PW_MAX_JOBS);
}

PW_TEST_MAIN(test_file_read(); test_error_set(); test_option())
