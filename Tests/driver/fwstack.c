// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * fwstack: sends a FIN from functions with known names, for the live tests of
 * `--stack`. Built with symbols and frame pointers, as a program must be for
 * its call sites to be named (see docs/stack.md). Prints the truth as one JSON
 * line: {"scenario":..,"owner_pid":..,"client_port":..,"hold_ms":..}
 *
 * usage: fwstack shutdown_wr|close|close_mt PORT [HOLD_MS]
 *   shutdown_wr: main -> serve_request -> finish_response -> shutdown()
 *   close:       main -> serve_request -> drop_connection -> close()
 *   close_mt:    the same with a second thread running, as in a server: glibc's
 *                close() then takes its cancellable path, which moves the
 *                stack pointer before the syscall.
 * The peer holds its side open for HOLD_MS, then closes. Exits within
 * HOLD_MS + 1 s.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what)
{
	perror(what);
	exit(1);
}

/* noinline: each must keep its own frame, or there is nothing to name. */
__attribute__((noinline)) void finish_response(int fd)
{
	if (shutdown(fd, SHUT_WR))
		die("shutdown");
}

__attribute__((noinline)) void drop_connection(int fd)
{
	if (close(fd))
		die("close");
}

static volatile int served;

__attribute__((noinline)) void serve_request(const char *scenario, int fd)
{
	if (!strcmp(scenario, "shutdown_wr"))
		finish_response(fd);
	else
		drop_connection(fd);
	served++; /* not a tail call: serve_request keeps its frame */
}

static void *idle(void *arg)
{
	pause();
	return arg;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int one = 1, srv, c, a, hold_ms;

	pthread_t thread;

	if (argc < 3 || (strcmp(argv[1], "shutdown_wr") && strcmp(argv[1], "close") && strcmp(argv[1], "close_mt"))) {
		fprintf(stderr, "usage: fwstack shutdown_wr|close|close_mt PORT [HOLD_MS]\n");
		return 2;
	}
	if (!strcmp(argv[1], "close_mt") && pthread_create(&thread, NULL, idle, NULL))
		die("pthread_create");
	hold_ms = argc > 3 ? atoi(argv[3]) : 300;
	sa.sin_port = htons(atoi(argv[2]));
	srv = socket(AF_INET, SOCK_STREAM, 0);
	c = socket(AF_INET, SOCK_STREAM, 0);
	if (srv < 0 || c < 0 || setsockopt(srv, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(srv, (struct sockaddr *)&sa, sizeof(sa)) || listen(srv, 1) ||
	    connect(c, (struct sockaddr *)&sa, sizeof(sa)))
		die("setup");
	a = accept(srv, NULL, NULL);
	if (a < 0 || getsockname(c, (struct sockaddr *)&sa, &len))
		die("accept");
	printf("{\"scenario\":\"%s\",\"owner_pid\":%d,\"client_port\":%d,\"hold_ms\":%d}\n", argv[1], (int)getpid(),
	       ntohs(sa.sin_port), hold_ms);
	fflush(stdout);

	serve_request(argv[1], c);

	struct timespec ts = { .tv_sec = hold_ms / 1000, .tv_nsec = (hold_ms % 1000) * 1000000L };

	nanosleep(&ts, NULL); /* the peer keeps its side open */
	close(a);
	return 0; /* exit_group ends the idle thread */
}
