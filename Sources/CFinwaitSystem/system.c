#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "finwait_system.h"

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

void fw_install_stop_handlers(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: a pending epoll_wait returns EINTR at once. */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

int fw_stop_requested(void)
{
	return stop_requested;
}

FILE *fw_stdout(void)
{
	/* A 64 KiB buffer: at tens of thousands of records a second, stdio's
	 * default 4 KiB meant a write(2) for every ~20 lines. finwait flushes
	 * after every drain (100 ms), so output is never held longer. */
	static char buffer[64 * 1024];
	static int buffered;

	if (!buffered) {
		setvbuf(stdout, buffer, _IOFBF, sizeof(buffer));
		buffered = 1;
	}
	return stdout;
}

FILE *fw_stderr(void)
{
	return stderr;
}

/* `finwait top`: the terminal, which Swift cannot reach (ioctl is variadic). */
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

static struct termios saved_termios;
static int termios_saved;

int fw_terminal_size(int fd, int *rows, int *cols)
{
	struct winsize ws;

	if (ioctl(fd, TIOCGWINSZ, &ws) || ws.ws_row == 0 || ws.ws_col == 0)
		return -1;
	*rows = ws.ws_row;
	*cols = ws.ws_col;
	return 0;
}

int fw_terminal_keys(int fd)
{
	struct termios t;

	if (tcgetattr(fd, &saved_termios))
		return -errno;
	termios_saved = 1;
	t = saved_termios;
	/* Keys one at a time, not echoed, never blocking; Ctrl-C still signals. */
	t.c_lflag &= ~(ICANON | ECHO);
	t.c_cc[VMIN] = 0;
	t.c_cc[VTIME] = 0;
	return tcsetattr(fd, TCSANOW, &t) ? -errno : 0;
}

void fw_terminal_restore(int fd)
{
	if (termios_saved)
		tcsetattr(fd, TCSANOW, &saved_termios);
	termios_saved = 0;
}

/* sd_notify without libsystemd: one datagram to $NOTIFY_SOCKET. */
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

int fw_notify_socket(const char *path, const char *state)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len = strlen(path);
	socklen_t salen;
	int fd, err = 0;

	if (len == 0 || len >= sizeof(sa.sun_path) || (path[0] != '/' && path[0] != '@'))
		return -EINVAL;
	memcpy(sa.sun_path, path, len);
	if (path[0] == '@')
		sa.sun_path[0] = '\0';
	salen = offsetof(struct sockaddr_un, sun_path) + len + (path[0] == '@' ? 0 : 1);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen) < 0)
		err = -errno;
	close(fd);
	return err;
}

#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

int fw_keep_capabilities(uint64_t keep)
{
	struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2];

	if (syscall(SYS_capget, &header, data))
		return -errno;
	/* The bounding set too, while CAP_SETPCAP (if held) still allows it: no
	 * exec of a set-uid or file-capability program could regain the rest. */
	for (int cap = 0; cap < 64; cap++)
		if (!(keep & (1ULL << cap)) && prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1)
			prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
	for (int i = 0; i < 2; i++) {
		uint32_t mask = (uint32_t)(keep >> (32 * i));
		data[i].effective &= mask;
		data[i].permitted &= mask;
		data[i].inheritable &= mask;
	}
	/* Ambient capabilities would survive an exec; finwait execs nothing. */
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) && errno != EINVAL)
		return -errno;
	if (syscall(SYS_capset, &header, data))
		return -errno;
	return 0;
}
