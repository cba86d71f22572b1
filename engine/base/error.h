/*
** error.h: filling a pw_error (declared in pathwise.h). The message is
** formatted like printf, cut to fit pw_error.msg, and never cut inside a
** UTF-8 character. err may be NULL. Returns code, so a failing function
** can `return pw_error_set(err, PW_EIO, "cannot open %s", path);`.
*/
#ifndef PW_ERROR_H
#define PW_ERROR_H

#include "pathwise.h"

pw_status pw_error_set(pw_error *err, pw_status code, const char *fmt, ...)
  __attribute__((format(printf, 3, 4)));

#endif
