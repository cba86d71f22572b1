/*
** version.h: `pathwise --version`: the engine version, the git commit it was
** built from, the result-schema version, and the versions of Lua (the
** headers it was compiled with), lua-cjson and libuv (the libraries loaded
** at run time). Line 1 is GNU style ("pathwise X.Y.Z"), for help2man.
*/
#ifndef PW_VERSION_H
#define PW_VERSION_H

#include "pathwise.h"

/* Append the version text to b. */
void pw_version_text(pw_buf *b);

/* Print it to stdout; returns an exit code. */
int pw_version_main(void);

#endif
