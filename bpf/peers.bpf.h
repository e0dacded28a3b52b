/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Local peers: when the other end of a traced connection is on this host,
 * its CLOSE_WAIT entry (softirq: only the time) and its close (CLOSE_WAIT ->
 * LAST_ACK, in the peer's process: its owner) are matched to the traced
 * connection through its 4-tuple, seen in reverse.
 */
#ifndef __FINWAIT_PEERS_BPF_H
#define __FINWAIT_PEERS_BPF_H

struct fw_peer {
	struct fw_tuple tuple;  /* family 0: an empty slot */
	__u64 skaddr;           /* the traced socket */
	__u64 ts_close_wait;    /* when the peer entered CLOSE_WAIT, 0 until then */
	__u32 netns;            /* the traced socket's namespace */
	__u32 peer_netns;
};

/* Traced connections by 4-tuple, so that a peer on this host (its view is the
 * reverse) finds them. A direct-mapped table indexed by a hash of the tuple,
 * not an LRU hash: an array lookup is inlined and takes no lock, where the
 * LRU's update and delete cost about 1 us per connection (measured under
 * churn). A connection whose tuple lands in an occupied slot replaces the
 * older one, which loses only the exact time of its peer's close: sock_diag
 * still resolves it. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FW_PEER_SLOTS);
	__type(key, __u32);
	__type(value, struct fw_peer);
} fin_peers SEC(".maps");

static __always_inline bool is_loopback(const __u8 *a, __u16 family)
{
	if (family == AF_INET)
		return a[0] == 127;
	/* ::1, or IPv4-mapped 127.0.0.0/8 */
	for (int i = 0; i < 10; i++)
		if (a[i])
			return false;
	if (a[10] == 0xff && a[11] == 0xff)
		return a[12] == 127;
	return !a[10] && !a[11] && !a[12] && !a[13] && !a[14] && a[15] == 1;
}

static __always_inline void tuple_of(const struct fw_event *e, struct fw_tuple *t)
{
	__builtin_memcpy(t->saddr, e->saddr, sizeof(t->saddr));
	__builtin_memcpy(t->daddr, e->daddr, sizeof(t->daddr));
	t->sport = e->sport;
	t->dport = e->dport;
	t->family = e->family;
	t->netns = is_loopback(e->daddr, e->family) ? e->netns : 0;
}

/* The tuple a traced connection would have if sk is its peer; returns sk's
 * namespace (the tuple keeps it only for loopback addresses). */
static __always_inline __u32 peer_tuple_of(struct sock *sk, struct fw_tuple *t, const bool typed)
{
	struct fw_event e = {};

	/* Unfiltered: the peer may live in another namespace, on another port. */
	e.family = SK_READ(typed, sk, __sk_common.skc_family);
	if (e.family == AF_INET) {
		*(__be32 *)e.saddr = SK_READ(typed, sk, __sk_common.skc_daddr);
		*(__be32 *)e.daddr = SK_READ(typed, sk, __sk_common.skc_rcv_saddr);
	} else {
		bpf_core_read(e.saddr, 16, &sk->__sk_common.skc_v6_daddr);
		bpf_core_read(e.daddr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
	}
	e.sport = bpf_ntohs(SK_READ(typed, sk, __sk_common.skc_dport));
	e.dport = local_port(sk);
	e.netns = netns_of(sk, typed);
	tuple_of(&e, t);
	return e.netns;
}

static __always_inline struct fw_peer *peer_slot(const struct fw_tuple *t)
{
	const __u32 *w = (const __u32 *)t;
	__u32 h = 0x9747b28c, slot;

	/* murmur-style mixing of the tuple's words: cheap, spreads ports well */
	for (int i = 0; i < sizeof(*t) / 4; i++) {
		h ^= w[i];
		h *= 0x5bd1e995;
		h ^= h >> 15;
	}
	slot = h & (FW_PEER_SLOTS - 1);
	return bpf_map_lookup_elem(&fin_peers, &slot);
}

/* The slot holding t's connection, or NULL if another took it (or none). */
static __always_inline struct fw_peer *find_peer(const struct fw_tuple *t)
{
	struct fw_peer *p = peer_slot(t);
	const __u32 *a = (const __u32 *)t, *b;

	if (!p)
		return NULL;
	b = (const __u32 *)&p->tuple;
	for (int i = 0; i < sizeof(*t) / 4; i++)
		if (a[i] != b[i])
			return NULL;
	return p;
}

static __always_inline void remember_peer(const struct fw_event *st)
{
	struct fw_tuple t = {};
	struct fw_peer *p;

	tuple_of(st, &t);
	p = peer_slot(&t);
	if (!p)
		return;
	/* The tuple last: a reader matches on it. */
	p->skaddr = st->skaddr;
	p->netns = st->netns;
	p->ts_close_wait = 0;
	p->peer_netns = 0;
	p->tuple = t;
}

static __always_inline void forget_peer(const struct fw_event *st)
{
	struct fw_tuple t = {};
	struct fw_peer *p;

	if (!cfg.follow_peers)
		return;
	tuple_of(st, &t);
	p = find_peer(&t);
	if (p)
		p->tuple.family = 0;
}

/* A socket entered CLOSE_WAIT: if it is the peer of a traced connection,
 * note when (softirq: only the time and namespace mean anything here). */
static __always_inline int on_close_wait(struct sock *sk, __u64 now, const bool typed)
{
	struct fw_tuple t = {};
	struct fw_peer *peer;
	struct fw_event *st;
	__u32 peer_netns = peer_tuple_of(sk, &t, typed);

	peer = find_peer(&t);
	if (!peer)
		return 0;
	peer->ts_close_wait = now;
	peer->peer_netns = peer_netns;
	st = bpf_map_lookup_elem(&socks, &peer->skaddr);
	if (st) {
		st->ts_peer_close_wait_ns = now;
		st->peer_netns = peer->peer_netns;
	}
	return 0;
}

/* The peer left CLOSE_WAIT for LAST_ACK: it closed (process context, so the
 * owner is the peer's) and its FIN is on the way. */
static __always_inline int on_peer_close(struct sock *sk, __u64 now, const bool typed)
{
	struct fw_tuple t = {};
	struct fw_event e = {};
	struct fw_peer *peer;
	__u32 peer_netns = peer_tuple_of(sk, &t, typed);

	peer = find_peer(&t);
	if (!peer)
		return 0;
	/* hist mode: a full socket's end is counted in the kernel, and its peer's
	 * close is not needed; only a handed-over orphan's is. */
	if (cfg.hist_mode && bpf_map_lookup_elem(&socks, &peer->skaddr)) {
		peer->tuple.family = 0;
		return 0;
	}
	e.kind = FW_KIND_PEER_CLOSE;
	e.ts_ns = now;
	e.ts_peer_close_wait_ns = peer->ts_close_wait;
	e.skaddr = peer->skaddr;
	e.netns = peer->netns;
	e.peer_netns = peer_netns;
	__builtin_memcpy(e.saddr, t.saddr, sizeof(e.saddr));
	__builtin_memcpy(e.daddr, t.daddr, sizeof(e.daddr));
	e.sport = t.sport;
	e.dport = t.dport;
	e.family = t.family;
	set_owner(&e);
	e.syscall_nr = -1;
	e.stack_id = -1;
	peer->tuple.family = 0;
	emit(&e);
	return 0;
}

#endif /* __FINWAIT_PEERS_BPF_H */
