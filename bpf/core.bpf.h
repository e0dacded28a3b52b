/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What every feature of the program shares: the configuration, the loss
 * counters, the ring buffer, the per-socket map, and the readers of socket
 * and task fields.
 */
#ifndef __FINWAIT_CORE_BPF_H
#define __FINWAIT_CORE_BPF_H

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define PF_EXITING 0x00000004
#define ECONNRESET 104
#define EEXIST 17

/* Set by user space before load (KernelConfig in Swift). */
const volatile struct fw_config cfg = {
	.follow_peers = 1,
	.hist_by = FW_HIST_BY_PATH,
	.hist_unit_ns = 1000,
	.ringbuf_bytes = FW_DEFAULT_RINGBUF_BYTES,
	.max_tracked = FW_DEFAULT_MAX_TRACKED,
	.wakeup_bytes = FW_DEFAULT_WAKEUP_BYTES,
};

struct fw_counters counters = {};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, FW_DEFAULT_RINGBUF_BYTES); /* cfg.ringbuf_bytes, set before load */
} events SEC(".maps");

/* Sockets on the FIN path, keyed by struct sock address. Bounded: when full,
 * new connections are counted in counters.map_full and not tracked. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FW_DEFAULT_MAX_TRACKED); /* cfg.max_tracked, set before load */
	__type(key, __u64);
	__type(value, struct fw_event);
} socks SEC(".maps");

static __always_inline bool owner_filter_active(void)
{
	return cfg.tgid != 0 || cfg.filter_comm;
}

static __always_inline bool comm_matches(const char *comm)
{
	for (int i = 0; i < FW_COMM_LEN; i++) {
		if (comm[i] != cfg.comm[i])
			return false;
		if (comm[i] == '\0')
			return true;
	}
	return true;
}

/*
 * One set of handlers serves both programs. In the tp_btf one, sk is a BTF
 * pointer: fields are direct, CO-RE-relocated loads, no helper call (the hot
 * path, ~10 runs per connection). In the classic tracepoint's, sk is a plain
 * address the verifier knows nothing of: the same fields are probe reads.
 * `typed` is a constant at every call site (each handler is always inlined),
 * so each program keeps only its own kind of load (bitfields likewise:
 * BPF_CORE_READ_BITFIELD loads directly, its _PROBED twin probe-reads).
 * Casts to a larger socket type (inet_sock, tcp_sock) are beyond what the
 * verifier knows of sk and use BPF_CORE_READ in both.
 */
#define SK_READ(typed, sk, field) ((typed) ? (sk)->field : BPF_CORE_READ(sk, field))

static __always_inline __u32 netns_of(struct sock *sk, const bool typed)
{
	if (typed)
		return sk->__sk_common.skc_net.net->ns.inum;
	return BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
}

/* inet_sport, not skc_num: moving to CLOSE releases the port (skc_num = 0)
 * before the tracepoint fires, and the end must name the same connection.
 * Not skc_num elsewhere either: the verifier's work grew sevenfold with it
 * (docs/performance.md). */
static __always_inline __u16 local_port(struct sock *sk)
{
	return bpf_ntohs(BPF_CORE_READ((struct inet_sock *)sk, inet_sport));
}

/* Fills the 4-tuple; false if the socket is not one we trace. */
static __always_inline bool read_tuple(struct sock *sk, struct fw_event *e, const bool typed)
{
	__u16 family = SK_READ(typed, sk, __sk_common.skc_family);

	if (family != AF_INET && family != AF_INET6)
		return false;
	if (cfg.family && family != cfg.family)
		return false;
	if ((typed ? BPF_CORE_READ_BITFIELD(sk, sk_protocol) : BPF_CORE_READ_BITFIELD_PROBED(sk, sk_protocol)) != IPPROTO_TCP)
		return false;

	e->netns = netns_of(sk, typed);
	if (cfg.netns && e->netns != cfg.netns)
		return false;
	e->family = family;
	e->sport = local_port(sk);
	e->dport = bpf_ntohs(SK_READ(typed, sk, __sk_common.skc_dport));
	if (cfg.port && e->sport != cfg.port && e->dport != cfg.port)
		return false;

	if (family == AF_INET) {
		*(__be32 *)e->saddr = SK_READ(typed, sk, __sk_common.skc_rcv_saddr);
		*(__be32 *)e->daddr = SK_READ(typed, sk, __sk_common.skc_daddr);
	} else {
		bpf_core_read(e->saddr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_core_read(e->daddr, 16, &sk->__sk_common.skc_v6_daddr);
	}
	return true;
}

/* The current task as the owner: meaningful only in process context. */
static __always_inline void set_owner(struct fw_event *e)
{
	__u64 id = bpf_get_current_pid_tgid();

	e->tgid = id >> 32;
	e->tid = (__u32)id;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->flags |= FW_FLAG_OWNER_KNOWN;
}

/* TCP_LINGER2: a field of tcp_sock, beyond what the verifier knows of a
 * tp_btf sk. bpf_skc_to_tcp_sock (5.9) gives a typed pointer and a direct
 * load; before it, and in the classic tracepoint, a probe read. */
static __always_inline int tcp_linger2(struct sock *sk, const bool typed)
{
	if (typed && bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_skc_to_tcp_sock)) {
		struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk);

		return tp ? tp->linger2 : 0;
	}
	return BPF_CORE_READ((struct tcp_sock *)sk, linger2);
}

/* The current task's flags: a direct load through bpf_get_current_task_btf
 * (5.11), else a probe read. */
static __always_inline __u32 current_task_flags(void)
{
	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_get_current_task_btf))
		return bpf_get_current_task_btf()->flags;
	return BPF_CORE_READ((struct task_struct *)bpf_get_current_task(), flags);
}

static __always_inline bool sock_flag_set(struct sock *sk, int bit, const bool typed)
{
	unsigned long flags = SK_READ(typed, sk, __sk_common.skc_flags);

	return flags & (1UL << bit);
}

/* SOCK_DEAD: sock_orphan() detached it from its process (close, exit). */
static __always_inline bool is_orphan(struct sock *sk, const bool typed)
{
	return sock_flag_set(sk, bpf_core_enum_value(enum sock_flags, SOCK_DEAD), typed);
}

/* Submits without a wakeup: the consumer drains on a timer, and is woken
 * only once the backlog passes cfg.wakeup_bytes. */
static __always_inline void emit(const struct fw_event *st)
{
	struct fw_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	__u64 flags = BPF_RB_NO_WAKEUP;

	if (!e) {
		__sync_fetch_and_add(&counters.ringbuf_drops, 1);
		return;
	}
	__builtin_memcpy(e, st, sizeof(*e));
	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= cfg.wakeup_bytes)
		flags = BPF_RB_FORCE_WAKEUP;
	bpf_ringbuf_submit(e, flags);
}

#endif /* __FINWAIT_CORE_BPF_H */
