/*
** sd.h: the three pieces of the systemd protocol pathwise serve speaks,
** without libsystemd (so it builds and runs the same without systemd):
**
** - notifications (sd_notify(3)): one datagram to $NOTIFY_SOCKET; READY=1,
**   RELOADING=1 (with MONOTONIC_USEC), STOPPING=1, STATUS=...;
** - log priorities (sd-daemon(3)): when stderr is the journal stream named
**   by $JOURNAL_STREAM ("dev:ino"), each log line starts with "<N>" so
**   journald files it at syslog priority N (3 error, 4 warning, 6 info);
** - socket activation (sd_listen_fds(3)): $LISTEN_PID = our pid and
**   $LISTEN_FDS >= 1 hand us fd 3, a listening socket; it is adopted only
**   if it is a listening AF_UNIX stream socket bound to the --socket path.
**
** Every call returns without effect when its variables are unset.
*/
#ifndef PW_SD_H
#define PW_SD_H

#include <stddef.h>

#define PW_SD_ERR 3
#define PW_SD_WARNING 4
#define PW_SD_INFO 6

/* Send msg to $NOTIFY_SOCKET. Returns 1 sent, 0 no socket, -1 error. */
int pw_sd_notify(const char *msg);

/* "RELOADING=1\nMONOTONIC_USEC=<now>\nSTATUS=<status>" into out. */
void pw_sd_reloading_msg(char *out, size_t n, const char *status);

/* Is stderr the journal stream named by $JOURNAL_STREAM? */
int pw_sd_stderr_is_journal(void);

/* "<N>" for priority prio when journal is true, else "". */
const char *pw_sd_prefix(int journal, int prio);

/* Socket activation: 0 when none was passed; the fd (3) when systemd passed
** one listening AF_UNIX stream socket bound to path; -1 with err filled when
** the passed descriptors do not fit (a misconfigured socket unit). Clears
** the LISTEN_* variables, so worker processes never see them. */
int pw_sd_listen_fd(const char *path, char *err, size_t n);

#endif
