/*
 * What Swift cannot do comfortably from Glibc: signal handlers, stdio's
 * globals, terminal ioctls, and the readiness notifications (sd_notify's
 * datagram socket, an inherited file descriptor). Nothing here knows BPF.
 */
#ifndef FINWAIT_SYSTEM_H
#define FINWAIT_SYSTEM_H

#include <stdio.h>

/* SIGINT/SIGTERM set a flag (and interrupt a blocking poll); SIGPIPE is
 * ignored so a closed stdout shows up as EPIPE on write. */
void fw_install_stop_handlers(void);
int fw_stop_requested(void);

/* Swift 6 cannot name glibc's stdout/stderr globals. */
FILE *fw_stdout(void);
FILE *fw_stderr(void);

/* `finwait top`: the terminal's size (0, or -1 when fd is not one), keys
 * read one at a time without echo or blocking, and the settings put back. */
int fw_terminal_size(int fd, int *rows, int *cols);
int fw_terminal_keys(int fd);
void fw_terminal_restore(int fd);

/* Sends `state` (e.g. "READY=1") to the datagram socket named by `path`, as
 * sd_notify(3) does with $NOTIFY_SOCKET (a leading '@' is an abstract
 * socket). Returns 0 or -errno. */
int fw_notify_socket(const char *path, const char *state);

/* Keeps only the capabilities in `keep` (bits of CAP_*) in the effective,
 * permitted and inheritable sets, and in the bounding set where CAP_SETPCAP
 * allows it; clears the ambient set: what a
 * process gives up once attached can never come back. Returns 0 or -errno. */
#include <stdint.h>
int fw_keep_capabilities(uint64_t keep);

#endif /* FINWAIT_SYSTEM_H */
