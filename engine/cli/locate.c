/*
** locate.c: find the default protocol; see locate.h.
*/
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "locate.h"

#ifndef PW_REL_SCRIPTS
#define PW_REL_SCRIPTS "../share/pathwise/scripts"
#endif

static int is_file(const char *p) { return access(p, R_OK) == 0; }

static int join(char *out, size_t n, const char *dir, size_t dlen, const char *name) {
  int w = snprintf(out, n, "%.*s/%s", (int)dlen, dir, name);
  return w >= 0 && (size_t)w < n ? 0 : -1;
}

int pw_locate_exe_dir(char *out, size_t n) {
  char exe[PATH_MAX];
  ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (len <= 0) return -1;
  exe[len] = 0;
  char *slash = strrchr(exe, '/');
  if (!slash) return -1;
  *slash = 0;
  if (strlen(exe) + 1 > n) return -1;
  memcpy(out, exe, strlen(exe) + 1);
  return 0;
}

/* The first directory of a colon-separated list holding the protocol. */
static int from_search_path(const char *path, char *out, size_t n) {
  while (path && *path) {
    const char *colon = strchr(path, ':');
    size_t dlen = colon ? (size_t)(colon - path) : strlen(path);
    if (dlen && join(out, n, path, dlen, PW_PROTOCOL_FILE) == 0 && is_file(out)) return 0;
    path = colon ? colon + 1 : NULL;
  }
  return -1;
}

/* Is dir the build directory this binary was compiled for? */
static int is_build_tree(const char *dir) {
#ifdef PW_BUILD_DIR
  char a[PATH_MAX], b[PATH_MAX];
  return realpath(dir, a) && realpath(PW_BUILD_DIR, b) && !strcmp(a, b);
#else
  (void)dir;
  return 0;
#endif
}

int pw_locate_default_protocol(char *out, size_t n) {
  const char *env = getenv("PATHWISE_PROTOCOL");
  if (env && *env) {
    if (strlen(env) + 1 > n) { out[0] = 0; return -1; }
    memcpy(out, env, strlen(env) + 1);
    return 0;
  }
  if (from_search_path(getenv("PATHWISE_PATH"), out, n) == 0) return 0;
  char dir[PATH_MAX], installed[PATH_MAX];
  if (pw_locate_exe_dir(dir, sizeof dir) == 0) {
    char rel[PATH_MAX];
    if (join(rel, sizeof rel, dir, strlen(dir), PW_REL_SCRIPTS) == 0 &&
        join(installed, sizeof installed, rel, strlen(rel), PW_PROTOCOL_FILE) == 0) {
      if (is_file(installed) || !is_build_tree(dir)) {
        char canon[PATH_MAX];
        if (realpath(installed, canon)) memcpy(installed, canon, strlen(canon) + 1);
        if (strlen(installed) + 1 > n) { out[0] = 0; return -1; }
        memcpy(out, installed, strlen(installed) + 1);
        return 0;
      }
    }
  }
#ifdef PW_SOURCE_SCRIPTS
  if (join(out, n, PW_SOURCE_SCRIPTS, strlen(PW_SOURCE_SCRIPTS), PW_PROTOCOL_FILE) == 0) return 0;
#endif
  out[0] = 0;
  return -1;
}
