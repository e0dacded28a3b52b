// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Two iterators, each loaded alone (the other's autoload is off).
 *
 * dump_settings, for `finwait doctor`: the settings a process made on each TCP socket with
 * setsockopt (keepalive, TCP_LINGER2, TCP_USER_TIMEOUT), which decide
 * whether a socket in FIN_WAIT2 will ever be freed and which sock_diag does
 * not report. An iter/tcp program: reading a fd created from its link walks
 * the TCP hash tables of the creating task's network namespace and writes
 * one struct fw_sock_settings per full socket in a chosen state.
 * Kept apart from finwait.bpf.c so the doctor loads no tracer maps.
 *
 * dump_owners, for every mode that names the process holding a socket: an
 * iter/task_file program writing one struct fw_sock_owner per descriptor of
 * a TCP socket in a chosen state, for every process at once. It replaces
 * readlink() of every /proc/PID/fd entry where it loads (Linux 5.11+:
 * bpf_sock_from_file).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "finwait.h"

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by user space before load. */
const volatile struct fw_sockets_config sockets_cfg = {};

static __always_inline bool sock_flag_set(struct sock *sk, int bit)
{
	unsigned long flags = sk->__sk_common.skc_flags;

	return flags & (1UL << bit);
}

/* sock_i_ino() without its lock: the inode is allocated with the socket
 * (struct socket_alloc), so no file is needed. 0 for orphans. */
static __always_inline __u64 sock_inode(struct sock *sk)
{
	struct socket *sock = sk->sk_socket;
	struct socket_alloc *sa;

	if (!sock)
		return 0;
	sa = container_of(sock, struct socket_alloc, socket);
	return BPF_CORE_READ(sa, vfs_inode.i_ino);
}

static __always_inline void read_addresses(struct sock_common *skc, struct fw_sock_settings *r)
{
	if (r->family == AF_INET) {
		*(__be32 *)r->saddr = skc->skc_rcv_saddr;
		*(__be32 *)r->daddr = skc->skc_daddr;
	} else {
		bpf_core_read(r->saddr, 16, &skc->skc_v6_rcv_saddr);
		bpf_core_read(r->daddr, 16, &skc->skc_v6_daddr);
	}
}

/* tp is a BTF pointer (bpf_skc_to_tcp_sock): direct, CO-RE-relocated loads.
 * Times stay in jiffies: user space knows HZ from netns_keepalive_time, so
 * no kernel config file (CONFIG_HZ) is needed to load. */
static __always_inline void read_settings(struct tcp_sock *tp, struct fw_sock_settings *r)
{
	struct inet_connection_sock *icsk = &tp->inet_conn;
	struct sock *sk = &icsk->icsk_inet.sk;

	r->inode = sock_inode(sk);
	r->keepalive = sock_flag_set(sk, bpf_core_enum_value(enum sock_flags, SOCK_KEEPOPEN));
	r->keepalive_time = tp->keepalive_time;
	r->keepalive_intvl = tp->keepalive_intvl;
	r->keepalive_probes = tp->keepalive_probes;
	r->linger2 = tp->linger2;
	r->user_timeout_ms = icsk->icsk_user_timeout;
	r->probes_out = icsk->icsk_probes_out;
	r->shutdown = sk->sk_shutdown;
}

SEC("iter/tcp")
int dump_settings(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	struct fw_sock_settings r = {};
	struct tcp_sock *tp;
	__u8 state;

	if (!skc)
		return 0;
	/* Timewait and request sockets are no tcp_sock: their state (TIME_WAIT,
	 * NEW_SYN_RECV) is never asked for, and bpf_skc_to_tcp_sock refuses them. */
	state = skc->skc_state;
	if (state >= 32 || !(sockets_cfg.states & (1u << state)))
		return 0;
	tp = bpf_skc_to_tcp_sock(skc);
	if (!tp)
		return 0;

	r.family = skc->skc_family;
	if (r.family != AF_INET && r.family != AF_INET6)
		return 0;
	r.state = state;
	r.sport = skc->skc_num;
	r.dport = bpf_ntohs(skc->skc_dport);
	r.netns = BPF_CORE_READ(skc, skc_net.net, ns.inum);
	r.netns_keepalive_time = BPF_CORE_READ(skc, skc_net.net, ipv4.sysctl_tcp_keepalive_time);
	read_addresses(skc, &r);
	read_settings(tp, &r);
	if (sockets_cfg.cookie)
		r.cookie = bpf_get_socket_cookie(skc);

	bpf_seq_write(ctx->meta->seq, &r, sizeof(r));
	return 0;
}

SEC("iter/task_file")
int dump_owners(struct bpf_iter__task_file *ctx)
{
	struct task_struct *task = ctx->task;
	struct file *file = ctx->file;
	struct fw_sock_owner r = {};
	struct socket *sock;
	struct sock *sk;
	__u8 state;

	if (!task || !file)
		return 0;
	sock = bpf_sock_from_file(file);
	if (!sock)
		return 0;
	sk = sock->sk;
	if (!sk)
		return 0;
	state = sk->__sk_common.skc_state;
	if (state >= 32 || !(sockets_cfg.states & (1u << state)))
		return 0;
	if (sk->__sk_common.skc_family != AF_INET && sk->__sk_common.skc_family != AF_INET6)
		return 0;
	if (BPF_CORE_READ_BITFIELD(sk, sk_protocol) != IPPROTO_TCP)
		return 0;
	r.inode = file->f_inode->i_ino;
	r.tgid = task->tgid;
	bpf_probe_read_kernel(r.comm, sizeof(r.comm), task->group_leader->comm);
	bpf_seq_write(ctx->meta->seq, &r, sizeof(r));
	return 0;
}
