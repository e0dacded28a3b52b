// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * sockiter: what reading every socket's settings costs (`finwait doctor`'s
 * iter/tcp reader, Sources/CFinwaitBPF/sockets.c, without Swift on top).
 * Loads the iterator once, reads the given network namespace RUNS times
 * (FIN_WAIT2 and CLOSE_WAIT sockets), and prints the load time, the records
 * and the min/median/max time of one read, and the peak RSS.
 *
 * usage: sockiter [-r RUNS] [NETNS_PATH]   (default: our own namespace)
 * With bench/hold holding N connections in the namespace: 2N records.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include "finwait_bpf.h"

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int count_one(void *ctx, const struct fw_sock_settings *s)
{
	(void)s;
	++*(long *)ctx;
	return 0;
}

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	int runs = 10, opt, fd = -1, n = 0;
	struct fw_sockets *s;
	enum fw_stage failed;
	struct rusage ru;
	double start, load_ms, *ms;
	long seen;

	while ((opt = getopt(argc, argv, "r:")) != -1) {
		if (opt != 'r' || (runs = atoi(optarg)) < 1) {
			fprintf(stderr, "usage: sockiter [-r RUNS] [NETNS_PATH]\n");
			return 64;
		}
	}
	if (optind < argc && (fd = open(argv[optind], O_RDONLY | O_CLOEXEC)) < 0) {
		perror(argv[optind]);
		return 66;
	}
	start = now_ms();
	if ((n = fw_sockets_open((1u << 5) | (1u << 8), &s, &failed))) {
		fprintf(stderr, "sockiter: stage %d: %s\n", failed, strerror(-n));
		return 70;
	}
	load_ms = now_ms() - start;
	ms = calloc(runs, sizeof(*ms));
	for (int i = 0; i < runs; i++) {
		seen = 0;
		start = now_ms();
		n = fw_sockets_read(s, fd, count_one, &seen);
		ms[i] = now_ms() - start;
		if (n < 0) {
			fprintf(stderr, "sockiter: read: %s\n", strerror(-n));
			return 71;
		}
	}
	qsort(ms, runs, sizeof(*ms), by_value);
	getrusage(RUSAGE_SELF, &ru);
	printf("records=%d load_ms=%.1f read_ms min=%.2f median=%.2f max=%.2f runs=%d maxrss_kb=%ld cookie=%d\n",
	       n, load_ms, ms[0], ms[runs / 2], ms[runs - 1], runs, ru.ru_maxrss, fw_sockets_have_cookie(s));
	fw_sockets_close(s);
	return 0;
}
