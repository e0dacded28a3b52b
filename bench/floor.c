// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Loads bench/floor.bpf.o, attaches it, prints "attached" and holds it
 * until SIGINT or SIGTERM. Bench only. */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
#include <bpf/libbpf.h>

static void on_signal(int sig)
{
	(void)sig;
}

int main(int argc, char **argv)
{
	struct bpf_object *obj;
	struct bpf_link *link;
	struct bpf_program *prog;

	if (argc != 2) {
		fprintf(stderr, "usage: %s floor.bpf.o\n", argv[0]);
		return 2;
	}
	obj = bpf_object__open_file(argv[1], NULL);
	if (!obj || bpf_object__load(obj)) {
		fprintf(stderr, "floor: cannot load %s\n", argv[1]);
		return 1;
	}
	prog = bpf_object__next_program(obj, NULL);
	link = prog ? bpf_program__attach(prog) : NULL;
	if (!link) {
		fprintf(stderr, "floor: cannot attach\n");
		return 1;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	printf("attached\n");
	fflush(stdout);
	pause();
	bpf_link__destroy(link);
	bpf_object__close(obj);
	return 0;
}
