// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * hold: opens N loopback TCP connections and holds them with the client side
 * in attached FIN_WAIT2 (shutdown(SHUT_WR), socket kept open) and the server
 * side in CLOSE_WAIT (accepted socket kept open), for finwait's memory
 * benchmark. Each connection costs two descriptors, so the connections are
 * spread over worker processes of at most -c connections each (each with a
 * listener on its own port, BASE_PORT + i), under the per-process limit.
 *
 * Prints "ready connections=N processes=W ports=B-E setup_ms=T" once every
 * client socket is in FIN_WAIT2 (checked with TCP_INFO), holds until SIGINT,
 * SIGTERM or SIGUSR1 (or -t SECONDS), then releases: each worker closes its
 * server sockets first (the peer's FIN ends each FIN_WAIT2), then its clients.
 * Prints "released" and exits 0; exits 1 if any worker failed.
 *
 * usage: hold -n CONNECTIONS [-c PER_PROCESS] [-p BASE_PORT] [-t MAX_HOLD_SECONDS]
 * Run it in a network namespace of its own (bench/memory.sh does), with the
 * listener ports outside net.ipv4.ip_local_port_range: a client may already
 * have taken one as its own port when a later worker binds it.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_WORKERS 1024

static volatile sig_atomic_t released, child_exited;

static void on_signal(int sig)
{
	(void)sig;
	released = 1;
}

static void on_child(int sig)
{
	(void)sig;
	child_exited = 1;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "hold[%d]: %s: %s\n", (int)getpid(), what, strerror(errno));
	exit(1);
}

static int tcp_state(int fd)
{
	struct tcp_info info;
	socklen_t len = sizeof(info);

	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len))
		die("TCP_INFO");
	return info.tcpi_state;
}

/* One worker: `count` connections to its own listener on `port`. Writes one
 * byte to `ready` once all clients are in FIN_WAIT2, then waits for SIGTERM. */
static void worker(int count, int port, int ready)
{
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(port),
				    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int one = 1, listener = socket(AF_INET, SOCK_STREAM, 0);
	int *clients = calloc(count, sizeof(int)), *servers = calloc(count, sizeof(int));

	if (!clients || !servers)
		die("calloc");
	if (listener < 0)
		die("socket");
	setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(listener, (struct sockaddr *)&addr, sizeof(addr)) || listen(listener, 1024))
		die("bind/listen");
	for (int i = 0; i < count; i++) {
		clients[i] = socket(AF_INET, SOCK_STREAM, 0);
		if (clients[i] < 0)
			die("socket");
		if (connect(clients[i], (struct sockaddr *)&addr, sizeof(addr)))
			die("connect");
		servers[i] = accept(listener, NULL, NULL);
		if (servers[i] < 0)
			die("accept");
		if (shutdown(clients[i], SHUT_WR))
			die("shutdown");
	}
	close(listener);
	/* The peer ACKs our FIN (possibly delayed): wait until each client is in
	 * FIN_WAIT2, bounded. */
	double deadline = now() + 30;

	for (int i = 0; i < count; i++) {
		while (tcp_state(clients[i]) != TCP_FIN_WAIT2) {
			if (now() > deadline) {
				fprintf(stderr, "hold[%d]: connection %d not in FIN_WAIT2 (state %d)\n",
					(int)getpid(), i, tcp_state(clients[i]));
				exit(1);
			}
			usleep(1000);
		}
	}
	if (write(ready, "r", 1) != 1)
		die("ready pipe");
	while (!released)
		pause();
	for (int i = 0; i < count; i++)
		close(servers[i]);
	for (int i = 0; i < count; i++)
		close(clients[i]);
	exit(0);
}

int main(int argc, char **argv)
{
	long total = 0;
	int per = 9000, base = 30000, max_hold = 600, opt;

	while ((opt = getopt(argc, argv, "n:c:p:t:")) != -1) {
		switch (opt) {
		case 'n': total = atol(optarg); break;
		case 'c': per = atoi(optarg); break;
		case 'p': base = atoi(optarg); break;
		case 't': max_hold = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: hold -n CONNECTIONS [-c PER_PROCESS] [-p BASE_PORT] [-t MAX_HOLD_SECONDS]\n");
			return 2;
		}
	}
	struct rlimit nofile;

	if (getrlimit(RLIMIT_NOFILE, &nofile))
		die("getrlimit");
	/* Two descriptors per connection, plus the listener, stdio and the pipe. */
	nofile.rlim_cur = nofile.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &nofile))
		die("setrlimit");
	if (per > ((long)nofile.rlim_cur - 16) / 2)
		per = ((long)nofile.rlim_cur - 16) / 2;
	int workers = (total + per - 1) / per;

	if (total < 1 || per < 1 || workers > MAX_WORKERS || base < 1 || base + workers > 65535) {
		fprintf(stderr, "hold: bad arguments (n=%ld per process=%d workers=%d)\n", total, per, workers);
		return 2;
	}

	struct sigaction sa = { .sa_handler = on_signal };

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);
	/* A worker that fails exits: stop waiting for it to get ready. */
	struct sigaction sc = { .sa_handler = on_child };

	sigaction(SIGCHLD, &sc, NULL);

	int ready[2];

	if (pipe(ready))
		die("pipe");
	pid_t pids[MAX_WORKERS];
	double start = now();

	for (int w = 0; w < workers; w++) {
		int count = w < workers - 1 ? per : (int)(total - (long)per * (workers - 1));

		pids[w] = fork();
		if (pids[w] < 0)
			die("fork");
		if (pids[w] == 0) {
			close(ready[0]);
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			worker(count, base + w, ready[1]);
		}
	}
	close(ready[1]);
	/* Bounded: the whole setup must finish within 300 s. */
	alarm(300);
	int got = 0, failed = 0;

	while (got < workers && !released && !child_exited) {
		char c;
		ssize_t n = read(ready[0], &c, 1);

		if (n == 1)
			got++;
		else if (n == 0 || errno != EINTR)
			break; /* every worker is gone */
	}
	alarm(0);
	if (got == workers) {
		printf("ready connections=%ld processes=%d ports=%d-%d setup_ms=%.0f\n", total, workers, base,
		       base + workers - 1, (now() - start) * 1000);
		fflush(stdout);
		alarm(max_hold);
		while (!released)
			pause();
	} else {
		fprintf(stderr, "hold: only %d of %d workers got ready%s\n", got, workers,
			child_exited ? " (a worker exited)" : "");
		failed = 1;
	}
	for (int w = 0; w < workers; w++)
		kill(pids[w], SIGTERM);
	for (int w = 0; w < workers; w++) {
		int status;

		pid_t r;

		while ((r = waitpid(pids[w], &status, 0)) < 0 && errno == EINTR)
			;
		if (r < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
			failed = 1;
	}
	printf(failed ? "failed\n" : "released\n");
	return failed;
}
