/*
** locate.c: find the default protocol and the FHIR adapter; see locate.h.
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
#ifndef PW_REL_PLUGINS
#define PW_REL_PLUGINS "../share/pathwise/plugins"
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

/* Is dir the build directory this binary was compiled for, or one of its
** subdirectories (build/bench, build/tests/...: the benchmark's and the
** tests' programs run from there)? */
static int is_build_tree(const char *dir) {
#ifdef PW_BUILD_DIR
  char a[PATH_MAX], b[PATH_MAX];
  if (!realpath(dir, a) || !realpath(PW_BUILD_DIR, b)) return 0;
  size_t n = strlen(b);
  return !strncmp(a, b, n) && (a[n] == 0 || a[n] == '/');
#else
  (void)dir;
  return 0;
#endif
}

static int copy_out(char *out, size_t n, const char *s) {
  if (strlen(s) + 1 > n) { out[0] = 0; return -1; }
  memcpy(out, s, strlen(s) + 1);
  return 0;
}

/* The installed file rel/name beside the binary (its path even when it is
** missing, unless the binary is the build tree's own), else the source
** tree's src/name when compiled in. */
static int installed_or_source(const char *rel, const char *src, const char *name, char *out,
                               size_t n) {
  char dir[PATH_MAX], reldir[PATH_MAX], installed[PATH_MAX];
  if (pw_locate_exe_dir(dir, sizeof dir) == 0 &&
      join(reldir, sizeof reldir, dir, strlen(dir), rel) == 0 &&
      join(installed, sizeof installed, reldir, strlen(reldir), name) == 0 &&
      (is_file(installed) || !is_build_tree(dir))) {
    char canon[PATH_MAX];
    if (realpath(installed, canon)) memcpy(installed, canon, strlen(canon) + 1);
    return copy_out(out, n, installed);
  }
  if (src && join(out, n, src, strlen(src), name) == 0) return 0;
  out[0] = 0;
  return -1;
}

/* The default protocol of the installed scripts, else the source tree's. */
static int default_scripts_file(char *out, size_t n) {
#ifdef PW_SOURCE_SCRIPTS
  return installed_or_source(PW_REL_SCRIPTS, PW_SOURCE_SCRIPTS, PW_PROTOCOL_FILE, out, n);
#else
  return installed_or_source(PW_REL_SCRIPTS, NULL, PW_PROTOCOL_FILE, out, n);
#endif
}

int pw_locate_default_protocol(char *out, size_t n) {
  const char *env = getenv("PATHWISE_PROTOCOL");
  if (env && *env) return copy_out(out, n, env);
  if (from_search_path(getenv("PATHWISE_PATH"), out, n) == 0) return 0;
  return default_scripts_file(out, n);
}

int pw_locate_scripts_dir(char *out, size_t n) {
  if (default_scripts_file(out, n) != 0) return -1;
  char *slash = strrchr(out, '/');
  if (slash) *slash = 0;
  return 0;
}

int pw_locate_default_adapter(char *out, size_t n) {
  const char *env = getenv("PATHWISE_ADAPTER");
  if (env && *env) return copy_out(out, n, env);
#ifdef PW_SOURCE_PLUGINS
  const char *src = PW_SOURCE_PLUGINS "/fhir";
#else
  const char *src = NULL;
#endif
  return installed_or_source(PW_REL_PLUGINS "/fhir", src, PW_ADAPTER_FILE, out, n);
}

int pw_locate_adapter_codes(const char *adapter, char *out, size_t n) {
  const char *slash = strrchr(adapter, '/');
  int dir = slash ? (int)(slash - adapter + 1) : 0;
  int w = snprintf(out, n, "%.*scodes.lua", dir, adapter);
  return w >= 0 && (size_t)w < n ? 0 : -1;
}
