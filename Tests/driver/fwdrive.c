// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * fwdrive: drives one real loopback TCP connection through a FIN_WAIT2
 * scenario for finwait's live tests, and prints the truth the test compares
 * finwait's output with, as one JSON line:
 *   {"scenario":..,"owner_pid":..,"owner_comm":..,"client_port":..,"hold_ms":..}
 *
 * usage: fwdrive SCENARIO PORT [HOLD_MS] [4|6] [CLIENT_PORT]
 * The client side always sends the FIN first; the server side plays the peer.
 * Every wait is bounded: the program exits within HOLD_MS + 2 s.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int family = AF_INET;
static int client_port; /* 0: ephemeral */

static void die(const char *what)
{
	fprintf(stderr, "fwdrive: %s: %s\n", what, strerror(errno));
	exit(2);
}

/* SIGUSR1 ends the current hold early: a test can end a scenario when it is
 * ready rather than guess how long its tracer takes to start. */
static volatile sig_atomic_t hold_interrupted;

static void on_usr1(int sig)
{
	(void)sig;
	hold_interrupted = 1;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR && !hold_interrupted)
		;
}


static socklen_t make_addr(struct sockaddr_storage *ss, int port)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port);
		a->sin6_addr = in6addr_loopback;
		return sizeof(*a);
	}
	struct sockaddr_in *a = (struct sockaddr_in *)ss;

	a->sin_family = AF_INET;
	a->sin_port = htons(port);
	a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return sizeof(*a);
}

static int listen_on(int port)
{
	struct sockaddr_storage ss;
	socklen_t len = make_addr(&ss, port);
	int one = 1, fd = socket(family, SOCK_STREAM, 0);

	if (fd < 0)
		die("socket");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) || listen(fd, 8))
		die("bind/listen");
	return fd;
}

static int connect_to(int port)
{
	struct sockaddr_storage ss;
	socklen_t len = make_addr(&ss, port);
	int one = 1, fd = socket(family, SOCK_STREAM, 0);

	if (fd < 0)
		die("socket");
	if (client_port) {
		/* A fixed client port: the same 4-tuple in several namespaces. */
		struct sockaddr_storage local;
		socklen_t local_len = make_addr(&local, client_port);

		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&local, local_len))
			die("bind client port");
	}
	if (connect(fd, (struct sockaddr *)&ss, len))
		die("connect");
	return fd;
}

static int local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len))
		die("getsockname");
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void truth(const char *scenario, pid_t pid, const char *comm, int port, int hold_ms)
{
	printf("{\"scenario\":\"%s\",\"owner_pid\":%d,\"owner_comm\":\"%s\",\"client_port\":%d,\"hold_ms\":%d}\n",
	       scenario, (int)pid, comm, port, hold_ms);
	fflush(stdout);
}

static void abort_with_rst(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

/* A child that owns the client socket and drops it by exiting or exec'ing. */
static void child_scenario(const char *scenario, int port, int hold_ms, int srv)
{
	int pipefd[2];
	pid_t pid;

	if (pipe(pipefd))
		die("pipe");
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		int c, p;

		prctl(PR_SET_NAME, "fwchild");
		c = connect_to(port);
		p = local_port(c);
		if (write(pipefd[1], &p, sizeof(p)) != sizeof(p))
			_exit(3);
		if (!strcmp(scenario, "exec")) {
			fcntl(c, F_SETFD, FD_CLOEXEC);
			execl("/bin/true", "true", (char *)NULL);
			_exit(4);
		}
		_exit(0); /* exit_group with the socket open */
	}
	int p = 0, a = accept(srv, NULL, NULL);
	char c;

	if (a < 0 || read(pipefd[0], &p, sizeof(p)) != sizeof(p))
		die("child handshake");
	/* EOF: the child's FIN has arrived. The hold starts now, not when the
	 * child is reaped (exec and exit can be slow, e.g. under emulation). */
	while (read(a, &c, 1) > 0)
		;
	sleep_ms(hold_ms); /* the peer keeps its side open */
	close(a);
	/* Reaped after the hold: under emulation, exec'ing /bin/true and
	 * running it can take longer than the hold itself. */
	waitpid(pid, NULL, 0);
	truth(scenario, pid, !strcmp(scenario, "exec") ? "true" : "fwchild", p, hold_ms);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: fwdrive SCENARIO PORT [HOLD_MS] [4|6]\n");
		return 2;
	}
	const char *scenario = argv[1];
	int port = atoi(argv[2]);
	int hold_ms = argc > 3 ? atoi(argv[3]) : 300;

	if (argc > 4 && !strcmp(argv[4], "6"))
		family = AF_INET6;
	if (argc > 5)
		client_port = atoi(argv[5]);
	prctl(PR_SET_NAME, "fwdrive");
	struct sigaction sa = { .sa_handler = on_usr1 };

	sigaction(SIGUSR1, &sa, NULL);

	int srv = listen_on(port);

	if (!strcmp(scenario, "exit") || !strcmp(scenario, "exec")) {
		child_scenario(scenario, port, hold_ms, srv);
		return 0;
	}

	int c = connect_to(port);
	int a = accept(srv, NULL, NULL);

	if (a < 0)
		die("accept");
	truth(scenario, getpid(), "fwdrive", local_port(c), hold_ms);

	if (!strcmp(scenario, "shutdown_wr")) {
		/* Attached FIN_WAIT2 until the peer closes. */
		shutdown(c, SHUT_WR);
		sleep_ms(hold_ms);
		close(a);
	} else if (!strcmp(scenario, "shutdown_rdwr")) {
		shutdown(c, SHUT_RDWR);
		sleep_ms(hold_ms);
		close(a);
	} else if (!strcmp(scenario, "close")) {
		/* Orphaned at once: handed to timewait while the peer stays open. */
		close(c);
		sleep_ms(hold_ms);
		close(a);
	} else if (!strcmp(scenario, "close_linger2")) {
		/* The socket's own fin timeout (2 s) instead of the namespace's. */
		int linger2 = 2;

		if (setsockopt(c, IPPROTO_TCP, TCP_LINGER2, &linger2, sizeof(linger2)))
			die("TCP_LINGER2");
		close(c);
		sleep_ms(hold_ms);
		close(a);
	} else if (!strcmp(scenario, "dup2")) {
		int devnull = open("/dev/null", O_RDONLY);

		if (devnull < 0 || dup2(devnull, c) < 0)
			die("dup2");
		sleep_ms(hold_ms);
		close(a);
	} else if (!strcmp(scenario, "rst")) {
		/* Attached FIN_WAIT2 ended by the peer's RST. */
		shutdown(c, SHUT_WR);
		sleep_ms(hold_ms);
		abort_with_rst(a);
	} else if (!strcmp(scenario, "close_attached")) {
		/* shutdown first, then close while in FIN_WAIT2: attached -> orphaned. */
		shutdown(c, SHUT_WR);
		sleep_ms(hold_ms);
		close(c);
		sleep_ms(100);
		close(a);
	} else {
		fprintf(stderr, "fwdrive: unknown scenario %s\n", scenario);
		return 2;
	}
	sleep_ms(50);
	return 0;
}
