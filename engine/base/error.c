/*
** error.c: pw_error_set and pw_status_name; see error.h.
*/
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "error.h"
#include "gate.h"

pw_status pw_error_set(pw_error *err, pw_status code, const char *fmt, ...) {
  if (!err) return code;
  va_list ap;
  err->code = code;
  va_start(ap, fmt);
  vsnprintf(err->msg, sizeof err->msg, fmt, ap);
  va_end(ap);
  /* a message cut at the end of msg must not end inside a UTF-8 character */
  err->msg[pw_utf8_cut(err->msg, strlen(err->msg))] = '\0';
  return code;
}

const char *pw_status_name(pw_status s) {
  switch (s) {
  case PW_OK: return "ok";
  case PW_EINPUT: return "input";
  case PW_EPROTOCOL: return "protocol";
  case PW_EBUDGET: return "budget";
  case PW_EMEMORY: return "memory";
  case PW_EIO: return "io";
  default: return "internal";
  }
}
