// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The cheapest program on finwait's tracepoint: it returns at once. Its
 * cost in `make bench` is the floor every tool on this tracepoint pays. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

SEC("tp_btf/inet_sock_set_state")
int floor_prog(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
