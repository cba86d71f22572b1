/*
** locate.h: where the default protocol is, for a binary that may run from
** its build tree or from an installed prefix (/usr, /usr/local, /opt/...).
**
** Order: $PATHWISE_PROTOCOL (a file); the first directory of $PATHWISE_PATH
** (colon-separated) holding mrc_second_line.lua; the installed copy found
** relative to the running binary (/proc/self/exe, then PW_REL_SCRIPTS,
** "../share/pathwise/scripts" for GNUInstallDirs defaults); the source
** tree's scripts/ only when the binary is the build tree's own (it runs
** from the build directory or one below it, such as build/bench). When no
** candidate exists the installed path is returned, so the error names it.
**
** The FHIR input adapter (eval/facts --from fhir, the server's
** evaluate_fhir) is found the same way: $PATHWISE_ADAPTER (a file; its
** codes.lua next to it), the installed plugins/fhir/adapter.lua beside the
** binary (PW_REL_PLUGINS, "../share/pathwise/plugins"), the source tree's
** plugins/fhir/ only for the build tree's binary.
*/
#ifndef PW_LOCATE_H
#define PW_LOCATE_H

#include <stddef.h>

#define PW_PROTOCOL_FILE "mrc_second_line.lua"
#define PW_ADAPTER_FILE "adapter.lua"

/* Write the default protocol's path into out (size n). Returns 0, or -1 when
** the path does not fit (out is then empty). Reads the environment and the
** file system only; thread-safe. */
int pw_locate_default_protocol(char *out, size_t n);

/* The directory of the default scripts, where a protocol's `extends`
** finds its base last: the installed scripts beside the binary, else
** (the build tree's binary) the source tree's; $PATHWISE_PROTOCOL and
** $PATHWISE_PATH do not change it. 0, or -1 when it does not fit. */
int pw_locate_scripts_dir(char *out, size_t n);

/* The same for the FHIR adapter (see above). */
int pw_locate_default_adapter(char *out, size_t n);

/* The code table next to an adapter: its directory's codes.lua. */
int pw_locate_adapter_codes(const char *adapter, char *out, size_t n);

/* The directory of the running binary (no trailing slash), or -1. */
int pw_locate_exe_dir(char *out, size_t n);

#endif
