// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * churn: a loopback TCP load for finwait's benchmark. N client threads
 * against a local server: each connection sends a small request, reads the
 * reply and ends, rotating through three endings:
 *   0: the client closes first (client FIN_WAIT2, orphaned),
 *   1: the client shuts down its side, waits for the server's FIN, closes,
 *   2: the server closes first (server FIN_WAIT2, orphaned).
 * Prints "connections=N seconds=S rate=R" and exits after -d seconds.
 *
 * usage: churn [-t THREADS] [-d SECONDS] [-p PORT]
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
static atomic_int stopping;

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

/* Reads until EOF (the peer's FIN) or an error. */
static void drain(int fd)
{
	char buf[64];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
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
		char mode = '0' + n++ % 3;

		if (fd < 0)
			die("socket");
		/* Bounded waits: a lost reply cannot hang the benchmark. */
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
		if (connect(fd, (struct sockaddr *)&addr, sizeof(addr))) {
			close(fd);
			continue;
		}
		if (write(fd, &mode, 1) != 1 || read(fd, reply, sizeof(reply)) <= 0) {
			close(fd);
			continue;
		}
		if (mode == '1') {
			shutdown(fd, SHUT_WR);
			drain(fd);
		} else if (mode == '2') {
			drain(fd);
		}
		close(fd);
		atomic_fetch_add(&completed, 1);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int threads = 4, opt, one = 1;

	while ((opt = getopt(argc, argv, "t:d:p:")) != -1) {
		switch (opt) {
		case 't': threads = atoi(optarg); break;
		case 'd': duration = atof(optarg); break;
		case 'p': port = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: churn [-t THREADS] [-d SECONDS] [-p PORT]\n");
			return 2;
		}
	}
	if (threads < 1 || threads > 256 || duration <= 0)
		return 2;

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

	printf("connections=%ld seconds=%.3f rate=%.0f\n", atomic_load(&completed), elapsed,
	       atomic_load(&completed) / elapsed);
	fflush(stdout);
	/* Server threads may sit in accept(): exit without joining them. */
	_exit(0);
}
