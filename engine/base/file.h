/*
** file.h: the one way pathwise reads a whole file (protocols, plugins,
** facts, cohorts read whole, FHIR bundles).
**
** A named path must be a regular file: a directory, FIFO, socket or
** device is refused, so reading can neither block forever nor never end.
** The file is opened with O_NONBLOCK (opening a FIFO cannot hang), checked
** with fstat, then O_NONBLOCK is cleared before reading. "-" reads
** standard input, whatever it is. The contents are appended to out and
** NUL-terminated (out->data is never NULL on success).
**
** Host paths: what a client is shown names a file by its name, never by
** where it lives on the host (pw_file_name, pw_file_cut_paths).
*/
#ifndef PW_FILE_H
#define PW_FILE_H

#include <stddef.h>
#include "pathwise.h"

/* max: refuse files larger than this many bytes (0 = no limit).
** Returns PW_OK, or PW_EIO with err (may be NULL) saying "cannot open
** PATH: why", "cannot read PATH: why" or "PATH: larger than N MiB", and
** errno set (EISDIR for a directory, EINVAL for another non-regular
** file, EFBIG when too large). On failure out is left as it was. */
pw_status pw_file_read(const char *path, size_t max, pw_buf *out, pw_error *err);

/* Why a read failed, for callers that word their own message: strerror,
** except "not a regular file" for EINVAL. */
const char *pw_file_why(int errnum);

/* The file name of path: what follows its last '/' (path itself if none). */
const char *pw_file_name(const char *path);

/* A copy of msg (malloc'd; NULL when out of memory) with each host path in
** it cut to its file name: a word that starts with '/', "./" or "..", or
** whose last component names a Lua file ("evaluate: /srv/p/local.lua:12:
** boom" -> "evaluate: local.lua:12: boom"). */
char *pw_file_cut_paths(const char *msg);

#endif
