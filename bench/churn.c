// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * churn: a loopback TCP load for finwait's benchmark. N client threads
 * against a local server: each connection sends a small request, reads the
 * reply and ends, rotating through three endings:
 *   0: the client closes first (client FIN_WAIT2, orphaned),
 *   1: the client shuts down its side, waits for the server's FIN, closes,
 *   2: the server closes first (server FIN_WAIT2, orphaned).
 * Prints "connections=N seconds=S rate=R client_close=A client_shutdown=B
 * server_close=C errors=E" and exits after -d seconds. A connection counts
 * as completed only if it ran its ending to the end (its FIN_WAIT2 happened
 * on the side named); errors counts connections that were established but
 * failed midway (their FIN_WAIT2, if any, is on an unknown side).
 *
 * -l FILE writes, per ending and client port, how many connections
 * completed: lines "client_close|client_shutdown|server_close PORT COUNT".
 * Over loopback to one server port, the client port is all that tells two
 * connections apart, so these counts are the truth a tracer's records can be
 * matched against one by one (bench/soak.sh does).
 *
 * -e ENDING runs only that ending (client_close, client_shutdown or
 * server_close) instead of rotating through all three ("mix", the default).
 *
 * usage: churn [-t THREADS] [-d SECONDS] [-p PORT] [-l FILE] [-e ENDING]
 * Run it in a network namespace of its own with net.ipv4.tcp_tw_reuse=1
 * (bench/bench.sh does), or TIME_WAIT sockets exhaust the local ports.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int port = 9800;
static double duration = 5;
static atomic_long completed;
static atomic_long errors;
static atomic_int stopping;
static const char *const ending_names[3] = { "client_close", "client_shutdown", "server_close" };
static atomic_long per_ending[3];
/* -e: the one ending every connection takes; -1 rotates through all three. */
static int only_ending = -1;
/* Completed connections per ending and client port, with -l only. */
static atomic_uint (*per_port)[65536];

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "churn: %s: %s\n", what, strerror(errno));
	exit(2);
}

/* Reads until EOF (the peer's FIN) or an error; true on EOF. */
static bool drain(int fd)
{
	char buf[64];
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0)
		;
	return n == 0;
}

static int client_port_of(int fd)
{
	struct sockaddr_in local;
	socklen_t len = sizeof(local);

	if (getsockname(fd, (struct sockaddr *)&local, &len))
		die("getsockname");
	return ntohs(local.sin_port);
}

static void *serve(void *arg)
{
	int listener = *(int *)arg;
	char request, reply[2] = "ok";

	/* Serves until the process exits: a client connecting just before the
	 * end must still get its reply. */
	for (;;) {
		int fd = accept(listener, NULL, NULL);

		if (fd < 0)
			continue;
		if (read(fd, &request, 1) == 1 && write(fd, reply, sizeof(reply)) == sizeof(reply)) {
			if (request != '2')
				drain(fd); /* the client ends first */
		}
		close(fd);
	}
	return NULL; /* not reached */
}

static void *client(void *arg)
{
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(port),
				    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct timeval timeout = { .tv_sec = 2 };
	long n = (long)arg;
	char reply[2];

	while (!atomic_load(&stopping)) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		char mode = '0' + (only_ending >= 0 ? only_ending : n++ % 3);

		if (fd < 0)
			die("socket");
		/* Bounded waits: a lost reply cannot hang the benchmark. */
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
		if (connect(fd, (struct sockaddr *)&addr, sizeof(addr))) {
			close(fd);
			continue;
		}
		if (write(fd, &mode, 1) != 1 || read(fd, reply, sizeof(reply)) <= 0) {
			atomic_fetch_add(&errors, 1);
			close(fd);
			continue;
		}
		int cport = per_port ? client_port_of(fd) : 0;
		bool ok = true;

		if (mode == '1') {
			ok = shutdown(fd, SHUT_WR) == 0 && drain(fd);
		} else if (mode == '2') {
			ok = drain(fd); /* the server's FIN came first */
		}
		close(fd);
		if (!ok) {
			atomic_fetch_add(&errors, 1);
			continue;
		}
		atomic_fetch_add(&completed, 1);
		atomic_fetch_add(&per_ending[mode - '0'], 1);
		if (per_port)
			atomic_fetch_add(&per_port[mode - '0'][cport], 1);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int threads = 4, opt, one = 1;
	const char *log_path = NULL;

	while ((opt = getopt(argc, argv, "t:d:p:l:e:")) != -1) {
		switch (opt) {
		case 't': threads = atoi(optarg); break;
		case 'd': duration = atof(optarg); break;
		case 'p': port = atoi(optarg); break;
		case 'l': log_path = optarg; break;
		case 'e':
			only_ending = -1;
			for (int m = 0; m < 3; m++)
				if (!strcmp(optarg, ending_names[m]))
					only_ending = m;
			if (only_ending < 0 && strcmp(optarg, "mix")) {
				fprintf(stderr, "churn: -e takes client_close, client_shutdown, server_close or mix\n");
				return 2;
			}
			break;
		default:
			fprintf(stderr, "usage: churn [-t THREADS] [-d SECONDS] [-p PORT] [-l FILE] [-e ENDING]\n");
			return 2;
		}
	}
	if (threads < 1 || threads > 256 || duration <= 0)
		return 2;
	if (log_path && !(per_port = calloc(3, sizeof(*per_port))))
		die("calloc");

	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(port),
				    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int listener = socket(AF_INET, SOCK_STREAM, 0);

	setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(listener, (struct sockaddr *)&addr, sizeof(addr)) || listen(listener, 4096))
		die("listen");

	pthread_t servers[256], clients[256];

	for (int i = 0; i < threads; i++)
		if (pthread_create(&servers[i], NULL, serve, &listener))
			die("server thread");
	double start = now();

	for (long i = 0; i < threads; i++)
		if (pthread_create(&clients[i], NULL, client, (void *)i))
			die("client thread");
	while (now() - start < duration)
		usleep(10000);
	atomic_store(&stopping, 1);
	for (int i = 0; i < threads; i++)
		pthread_join(clients[i], NULL);
	double elapsed = now() - start;

	if (log_path) {
		FILE *log = fopen(log_path, "w");

		if (!log)
			die(log_path);
		for (int m = 0; m < 3; m++)
			for (int p = 0; p < 65536; p++)
				if (atomic_load(&per_port[m][p]))
					fprintf(log, "%s %d %u\n", ending_names[m], p, atomic_load(&per_port[m][p]));
		if (fclose(log))
			die(log_path);
	}
	printf("connections=%ld seconds=%.3f rate=%.0f", atomic_load(&completed), elapsed,
	       atomic_load(&completed) / elapsed);
	for (int m = 0; m < 3; m++)
		printf(" %s=%ld", ending_names[m], atomic_load(&per_ending[m]));
	printf(" errors=%ld\n", atomic_load(&errors));
	fflush(stdout);
	/* Server threads may sit in accept(): exit without joining them. */
	_exit(0);
}
