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

#endif
