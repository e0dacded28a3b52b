// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * finwait: FIN_WAIT2 dwell, owner and code path from sock:inet_sock_set_state.
 *
 * One handler (on_set_state), in a tp_btf program and a classic tracepoint
 * one (user space loads one; core.bpf.h says how they share the socket
 * readers). Every transition but these returns at the first compare:
 *   ESTABLISHED/SYN_RECV -> FIN_WAIT1  on_fin_wait1: process context, so the
 *                                      owner, the code path (syscalls.bpf.h)
 *                                      and, with --stack, the call site
 *                                      (stacks.bpf.h) are taken here only
 *   FIN_WAIT1 -> FIN_WAIT2             on_fin_wait2: softirq, a timestamp; an
 *                                      attached socket sends an ENTER record
 *   FIN_WAIT1 -> CLOSING/CLOSE         never reached FIN_WAIT2: forgotten
 *   FIN_WAIT2 -> CLOSE                 on_fin_wait2_exit: how it ended; one
 *                                      LEAVE record, or in hist mode a count in
 *                                      a kernel histogram (hist.bpf.h)
 *   ESTABLISHED -> CLOSE_WAIT          on_close_wait: a local peer of a traced
 *                                      connection got our FIN (peers.bpf.h)
 *   CLOSE_WAIT -> LAST_ACK             on_peer_close: that peer closed; a
 *                                      PEER_CLOSE record names it (peers.bpf.h)
 *
 * The record, the configuration and the map sizes are defined in finwait.h.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "finwait.h"
#include "core.bpf.h"
#include "bits.bpf.h"
#include "regs.bpf.h"
#include "syscalls.bpf.h"
#include "peers.bpf.h"
#include "stacks.bpf.h"
#include "hist.bpf.h"

static __always_inline __u8 fin_wait2_end(struct sock *sk, const bool typed)
{
	if (SK_READ(typed, sk, sk_err) == ECONNRESET)
		return FW_END_RESET;
	/* tcp_fin() sets SOCK_DONE: the peer's FIN arrived, TIME_WAIT follows. */
	if (sock_flag_set(sk, bpf_core_enum_value(enum sock_flags, SOCK_DONE), typed))
		return FW_END_PEER_FIN;
	/* Still attached and closed without a FIN: tcp_disconnect() (SO_LINGER 0,
	 * connect(AF_UNSPEC)) sends a RST. */
	if (!is_orphan(sk, typed))
		return FW_END_RESET;
	/* Orphan with linger2 < 0: tcp_close() resets instead of waiting. */
	if (tcp_linger2(sk, typed) < 0)
		return FW_END_RESET;
	return FW_END_TIMEWAIT_ORPHAN;
}

static __always_inline int on_fin_wait1(void *ctx, struct sock *sk, __u64 key, __u64 now, const bool typed)
{
	struct fw_event st = {};

	set_owner(&st);
	if (cfg.tgid && st.tgid != cfg.tgid)
		return 0;
	if (cfg.filter_comm && !comm_matches(st.comm))
		return 0;
	if (!read_tuple(sk, &st, typed))
		return 0;

	st.skaddr = key;
	st.ts_fin_wait1_ns = now;
	classify(sk, &st);
	/* Not for exec: the stack is the old image's, and the maps that would
	 * place it are already the new one's. exit has no user stack left. */
	st.stack_id = cfg.capture_stack && st.syscall != FW_SYSCALL_EXECVE && st.syscall != FW_SYSCALL_EXECVEAT
		? capture_user_stack(ctx, &st) : -1;
	if (bpf_map_update_elem(&socks, &key, &st, BPF_ANY)) {
		__sync_fetch_and_add(&counters.map_full, 1);
		return 0;
	}
	if (cfg.follow_peers)
		remember_peer(&st);
	return 0;
}

/* The socket's state, or, for a FIN_WAIT2 whose FIN_WAIT1 we did not see,
 * new state without an owner. NULL when it is filtered out or the map is full. */
static __always_inline struct fw_event *tracked(struct sock *sk, __u64 key, const bool typed)
{
	struct fw_event *st = bpf_map_lookup_elem(&socks, &key);

	if (st)
		return st;
	struct fw_event fresh = {};

	if (owner_filter_active() || !read_tuple(sk, &fresh, typed))
		return NULL;
	fresh.skaddr = key;
	fresh.syscall_nr = -1;
	fresh.stack_id = -1;
	__sync_fetch_and_add(&counters.unseen_start, 1);
	if (bpf_map_update_elem(&socks, &key, &fresh, BPF_NOEXIST)) {
		__sync_fetch_and_add(&counters.map_full, 1);
		return NULL;
	}
	return bpf_map_lookup_elem(&socks, &key);
}

static __always_inline int on_fin_wait2(struct sock *sk, __u64 key, __u64 now, const bool typed)
{
	struct fw_event *st = tracked(sk, key, typed);

	if (!st)
		return 0;
	st->ts_fin_wait2_ns = now;
	st->ts_ns = now;
	st->flags |= FW_FLAG_FIN_WAIT2_SEEN;
	/* Orphans are handed to timewait at once (the usual case) and reported
	 * then, in one record; only attached sockets need an ENTER to be watched. */
	if (is_orphan(sk, typed)) {
		st->flags |= FW_FLAG_ORPHAN_AT_ENTRY;
		return 0;
	}
	/* hist mode watches no connection for --stuck. */
	if (cfg.hist_mode)
		return 0;
	st->kind = FW_KIND_ENTER;
	emit(st);
	return 0;
}

static __always_inline int on_fin_wait2_exit(struct sock *sk, __u64 key, __u64 now, const bool typed)
{
	struct fw_event *st = tracked(sk, key, typed);

	if (!st)
		return 0;
	st->ts_ns = now;
	st->kind = FW_KIND_LEAVE;
	st->end = fin_wait2_end(sk, typed);
	if (is_orphan(sk, typed))
		st->flags |= FW_FLAG_ORPHAN_AT_END;
	/* A full socket's end is its true end: counted here. An orphan handed to
	 * timewait goes on, and user space follows it to its end. A start that
	 * was not seen has no dwell to count: user space reports it. */
	if (cfg.hist_mode && st->end != FW_END_TIMEWAIT_ORPHAN && (st->flags & FW_FLAG_FIN_WAIT2_SEEN))
		hist_record(st, now - st->ts_fin_wait2_ns);
	else
		emit(st);
	/* An orphan's FIN_WAIT2 goes on in timewait: its peer may still close. */
	if (st->end != FW_END_TIMEWAIT_ORPHAN)
		forget_peer(st);
	bpf_map_delete_elem(&socks, &key);
	return 0;
}

/* Rare (a close() of a socket already in FIN_WAIT2): one lookup. */
static __always_inline void mark_closed(__u64 key)
{
	struct fw_event *st = bpf_map_lookup_elem(&socks, &key);

	if (st)
		st->flags |= FW_FLAG_CLOSED;
}

/* Every transition, from either program. */
static __always_inline int on_set_state(void *ctx, struct sock *sk, int oldstate, int newstate, const bool typed)
{
	__u64 key = (__u64)sk;

	/* tcp_close_state() "moves" FIN_WAIT2 to FIN_WAIT2 when an attached
	 * socket is closed: not a transition, but it is orphaned from here. */
	if (newstate == oldstate) {
		if (newstate == TCP_FIN_WAIT2)
			mark_closed(key);
		return 0;
	}
	if (newstate == TCP_FIN_WAIT1) {
		if (oldstate == TCP_ESTABLISHED || oldstate == TCP_SYN_RECV)
			return on_fin_wait1(ctx, sk, key, bpf_ktime_get_ns(), typed);
		return 0;
	}
	if (oldstate == TCP_FIN_WAIT1) {
		if (newstate == TCP_FIN_WAIT2)
			return on_fin_wait2(sk, key, bpf_ktime_get_ns(), typed);
		/* Simultaneous close (CLOSING) or reset: never reached FIN_WAIT2. */
		struct fw_event *st = bpf_map_lookup_elem(&socks, &key);

		if (st) {
			forget_peer(st);
			bpf_map_delete_elem(&socks, &key);
		}
		return 0;
	}
	if (oldstate == TCP_FIN_WAIT2)
		return on_fin_wait2_exit(sk, key, bpf_ktime_get_ns(), typed);
	if (!cfg.follow_peers)
		return 0;
	if (newstate == TCP_CLOSE_WAIT && oldstate == TCP_ESTABLISHED)
		return on_close_wait(sk, bpf_ktime_get_ns(), typed);
	if (oldstate == TCP_CLOSE_WAIT && newstate == TCP_LAST_ACK)
		return on_peer_close(sk, bpf_ktime_get_ns(), typed);
	return 0;
}

/* User space loads one of the two (the other gets autoload off): tp_btf
 * where the kernel has BTF for the tracepoint, else the classic one. */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(inet_sock_set_state, struct sock *sk, int oldstate, int newstate)
{
	return on_set_state(ctx, sk, oldstate, newstate, true);
}

SEC("tracepoint/sock/inet_sock_set_state")
int inet_sock_set_state_tp(struct trace_event_raw_inet_sock_set_state *args)
{
	return on_set_state(args, (struct sock *)args->skaddr, args->oldstate, args->newstate, false);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
