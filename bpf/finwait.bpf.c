// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * finwait: FIN_WAIT2 dwell, owner and code path from sock:inet_sock_set_state.
 *
 * Only the FIN path is followed: ESTABLISHED/SYN_RECV -> FIN_WAIT1 (process
 * context: owner and code path are taken here and nowhere else),
 * FIN_WAIT1 -> FIN_WAIT2 (softirq: only a timestamp), FIN_WAIT2 -> CLOSE
 * (how it ended). Every other transition returns at the first compare.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "finwait.h"

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define PF_EXITING 0x00000004
#define ECONNRESET 104
#define EEXIST 17

/* Syscall numbers differ per architecture; this is their only definition. */
#if defined(__TARGET_ARCH_x86)
#define NR_CLOSE 3
#define NR_SHUTDOWN 48
#define NR_DUP2 33
#define NR_DUP3 292
#define NR_EXECVE 59
#define NR_EXECVEAT 322
#define NR_EXIT 60
#define NR_EXIT_GROUP 231
#elif defined(__TARGET_ARCH_arm64)
#define NR_CLOSE 57
#define NR_SHUTDOWN 210
#define NR_DUP2 -1 /* arm64 has only dup3 */
#define NR_DUP3 24
#define NR_EXECVE 221
#define NR_EXECVEAT 281
#define NR_EXIT 93
#define NR_EXIT_GROUP 94
#else
#error "finwait knows the syscall numbers of x86 and arm64 only"
#endif
#define NR_IO_URING_ENTER 426
#define NR_CLOSE_RANGE 436
#define SHUT_WR 1
#define SHUT_RDWR 2

/* Filters, set by user space before load. Zero means "no filter". */
const volatile __u32 target_tgid = 0;
const volatile __u16 target_port = 0;
const volatile __u16 target_family = 0;
const volatile __u32 target_netns = 0;
/* Follow local peers: one map lookup per passive close (CLOSE_WAIT entry and exit). */
const volatile bool follow_peers = true;
const volatile bool filter_comm = false;
const volatile char target_comm[FW_COMM_LEN] = {};
/* `--stack`: the user stack of the task that sent the FIN, by id. */
const volatile bool capture_stack = false;
/* `finwait hist`: ends of full sockets go to `hists`, not the ring buffer. */
const volatile bool hist_mode = false;
const volatile __u8 hist_by = FW_HIST_BY_PATH;
/* Dwell unit of the histogram slots: 1000 (us) or 1000000 (ms). */
const volatile __u32 hist_unit_ns = 1000;
/* Wake the consumer only once this much is queued; it also drains on a timer. */
const volatile __u64 wakeup_bytes = 256 * 1024;

struct fw_counters counters = {};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20); /* resized by user space before load */
} events SEC(".maps");

/* Sockets on the FIN path, keyed by struct sock address. Bounded: when full,
 * new connections are counted in counters.map_full and not tracked. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536); /* resized by user space before load */
	__type(key, __u64);
	__type(value, struct fw_event);
} socks SEC(".maps");

struct fw_peer {
	struct fw_tuple tuple;  /* family 0: an empty slot */
	__u64 skaddr;           /* the traced socket */
	__u64 ts_close_wait;    /* when the peer entered CLOSE_WAIT, 0 until then */
	__u32 netns;            /* the traced socket's namespace */
	__u32 peer_netns;
};

#define FW_PEER_SLOTS 16384

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

/* Repeated call sites share one entry. Without --stack both are resized to
 * one entry by user space. Ids are never reused (no BPF_F_REUSE_STACKID), so
 * an id read later still names the stack it was given for. */
struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, FW_STACK_ENTRIES);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, FW_STACK_DEPTH * sizeof(__u64));
} stacks SEC(".maps");

/* By stack id: announced yet, and the top of the user stack. Racy on
 * purpose: two CPUs may both announce an id, and user space keeps the first. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FW_STACK_ENTRIES);
	__type(key, __u32);
	__type(value, struct fw_stack_note);
} stack_notes SEC(".maps");

/* Bounded: when full, a new key is counted in counters.hist_full. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct fw_hist_key);
	__type(value, struct fw_hist);
} hists SEC(".maps");

static __always_inline bool owner_filter_active(void)
{
	return target_tgid != 0 || filter_comm;
}

static __always_inline bool comm_matches(const char *comm)
{
	for (int i = 0; i < FW_COMM_LEN; i++) {
		if (comm[i] != target_comm[i])
			return false;
		if (comm[i] == '\0')
			return true;
	}
	return true;
}

/* sk is a BTF pointer: fields are read with direct, CO-RE-relocated loads,
 * not bpf_probe_read_kernel calls. Casts to a larger socket type (inet_sock,
 * tcp_sock) are beyond what the verifier knows of sk and still use
 * BPF_CORE_READ. */
static __always_inline __u32 netns_of(struct sock *sk)
{
	return sk->__sk_common.skc_net.net->ns.inum;
}

/* inet_sport, not skc_num: moving to CLOSE releases the port (skc_num = 0)
 * before the tracepoint fires, and the end must name the same connection. */
static __always_inline __u16 local_port(struct sock *sk)
{
	return bpf_ntohs(BPF_CORE_READ((struct inet_sock *)sk, inet_sport));
}

/* Fills the 4-tuple; false if the socket is not one we trace. */
static __always_inline bool read_tuple(struct sock *sk, struct fw_event *e)
{
	__u16 family = sk->__sk_common.skc_family;

	if (family != AF_INET && family != AF_INET6)
		return false;
	if (target_family && family != target_family)
		return false;
	if (BPF_CORE_READ_BITFIELD(sk, sk_protocol) != IPPROTO_TCP)
		return false;

	e->netns = netns_of(sk);
	if (target_netns && e->netns != target_netns)
		return false;
	e->family = family;
	e->sport = local_port(sk);
	e->dport = bpf_ntohs(sk->__sk_common.skc_dport);
	if (target_port && e->sport != target_port && e->dport != target_port)
		return false;

	if (family == AF_INET) {
		*(__be32 *)e->saddr = sk->__sk_common.skc_rcv_saddr;
		*(__be32 *)e->daddr = sk->__sk_common.skc_daddr;
	} else {
		bpf_core_read(e->saddr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_core_read(e->daddr, 16, &sk->__sk_common.skc_v6_daddr);
	}
	return true;
}

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
static __always_inline __u32 peer_tuple_of(struct sock *sk, struct fw_tuple *t)
{
	struct fw_event e = {};

	/* Unfiltered: the peer may live in another namespace, on another port. */
	e.family = sk->__sk_common.skc_family;
	if (e.family == AF_INET) {
		*(__be32 *)e.saddr = sk->__sk_common.skc_daddr;
		*(__be32 *)e.daddr = sk->__sk_common.skc_rcv_saddr;
	} else {
		bpf_core_read(e.saddr, 16, &sk->__sk_common.skc_v6_daddr);
		bpf_core_read(e.daddr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
	}
	e.sport = bpf_ntohs(sk->__sk_common.skc_dport);
	e.dport = local_port(sk);
	e.netns = netns_of(sk);
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

	if (!follow_peers)
		return;
	tuple_of(st, &t);
	p = find_peer(&t);
	if (p)
		p->tuple.family = 0;
}

/* The syscall the current task is in, from its saved user registers. */
static __always_inline long current_syscall(long *arg2)
{
	*arg2 = -1;
	/* bpf_task_pt_regs exists from 5.15; before that the syscall stays unknown. */
	if (!bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_task_pt_regs))
		return -1;
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
#if defined(__TARGET_ARCH_x86)
	*arg2 = regs->si;
	return regs->orig_ax;
#else
	*arg2 = regs->regs[1];
	return regs->syscallno;
#endif
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

/* Decides the code path at ESTABLISHED -> FIN_WAIT1, in the caller's context. */
static __always_inline void classify(struct sock *sk, struct fw_event *e)
{
	/* Not bpf_get_current_task_btf(): it is 5.11+, and finwait loads on 5.8. */
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	long how, nr = current_syscall(&how);

	e->syscall_nr = nr;
	e->path = FW_PATH_OTHER;
	e->syscall = FW_SYSCALL_UNKNOWN;

	switch (nr) {
	case NR_SHUTDOWN: e->syscall = FW_SYSCALL_SHUTDOWN; break;
	case NR_CLOSE: e->syscall = FW_SYSCALL_CLOSE; break;
	case NR_DUP2: e->syscall = FW_SYSCALL_DUP2; break;
	case NR_DUP3: e->syscall = FW_SYSCALL_DUP3; break;
	case NR_CLOSE_RANGE: e->syscall = FW_SYSCALL_CLOSE_RANGE; break;
	case NR_EXECVE: e->syscall = FW_SYSCALL_EXECVE; break;
	case NR_EXECVEAT: e->syscall = FW_SYSCALL_EXECVEAT; break;
	case NR_EXIT: e->syscall = FW_SYSCALL_EXIT; break;
	case NR_EXIT_GROUP: e->syscall = FW_SYSCALL_EXIT_GROUP; break;
	case NR_IO_URING_ENTER: e->syscall = FW_SYSCALL_IO_URING_ENTER; break;
	}

	/* An exiting task closes its files from exit_files(): whatever syscall
	 * (exit_group, or the one a fatal signal interrupted) is not the cause. */
	if (BPF_CORE_READ(task, flags) & PF_EXITING) {
		e->path = FW_PATH_EXIT;
		return;
	}
	switch (e->syscall) {
	case FW_SYSCALL_SHUTDOWN:
		if (how == SHUT_WR)
			e->path = FW_PATH_SHUTDOWN_WR;
		else if (how == SHUT_RDWR)
			e->path = FW_PATH_SHUTDOWN_RDWR;
		break;
	case FW_SYSCALL_CLOSE:
	case FW_SYSCALL_DUP2:
	case FW_SYSCALL_DUP3:
	case FW_SYSCALL_CLOSE_RANGE:
	case FW_SYSCALL_EXECVE:
	case FW_SYSCALL_EXECVEAT:
		e->path = FW_PATH_CLOSE;
		break;
	case FW_SYSCALL_UNKNOWN:
		/* Without pt_regs, sk_shutdown still tells SHUT_WR from the rest. */
		if (nr == -1 && BPF_CORE_READ_BITFIELD(sk, sk_shutdown) == 2 /* SEND_SHUTDOWN */)
			e->path = FW_PATH_SHUTDOWN_WR;
		break;
	}
}

static __always_inline bool sock_flag_set(struct sock *sk, int bit)
{
	unsigned long flags = sk->__sk_common.skc_flags;

	return flags & (1UL << bit);
}

/* SOCK_DEAD: sock_orphan() detached it from its process (close, exit). */
static __always_inline bool is_orphan(struct sock *sk)
{
	return sock_flag_set(sk, bpf_core_enum_value(enum sock_flags, SOCK_DEAD));
}

static __always_inline __u8 fin_wait2_end(struct sock *sk)
{
	if (sk->sk_err == ECONNRESET)
		return FW_END_RESET;
	/* tcp_fin() sets SOCK_DONE: the peer's FIN arrived, TIME_WAIT follows. */
	if (sock_flag_set(sk, bpf_core_enum_value(enum sock_flags, SOCK_DONE)))
		return FW_END_PEER_FIN;
	/* Still attached and closed without a FIN: tcp_disconnect() (SO_LINGER 0,
	 * connect(AF_UNSPEC)) sends a RST. */
	if (!is_orphan(sk))
		return FW_END_RESET;
	/* Orphan with linger2 < 0: tcp_close() resets instead of waiting. */
	if (BPF_CORE_READ((struct tcp_sock *)sk, linger2) < 0)
		return FW_END_RESET;
	return FW_END_TIMEWAIT_ORPHAN;
}

static __always_inline void emit(const struct fw_event *st)
{
	struct fw_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	__u64 flags = BPF_RB_NO_WAKEUP;

	if (!e) {
		__sync_fetch_and_add(&counters.ringbuf_drops, 1);
		return;
	}
	__builtin_memcpy(e, st, sizeof(*e));
	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes)
		flags = BPF_RB_FORCE_WAKEUP;
	bpf_ringbuf_submit(e, flags);
}

/* floor(log2(v)), 0 for 0 and 1: the slot a dwell goes to. */
static __always_inline __u32 log2_slot(__u64 v)
{
	__u32 r = 0;

	if (v >> 32) { v >>= 32; r += 32; }
	if (v >> 16) { v >>= 16; r += 16; }
	if (v >> 8) { v >>= 8; r += 8; }
	if (v >> 4) { v >>= 4; r += 4; }
	if (v >> 2) { v >>= 2; r += 2; }
	if (v >> 1) { r += 1; }
	return r < FW_HIST_SLOTS ? r : FW_HIST_SLOTS - 1;
}

static __always_inline void hist_record(const struct fw_event *st, __u64 dwell_ns)
{
	struct fw_hist_key k = { .path = st->path };
	static const struct fw_hist zero = {};
	struct fw_hist *h;

	switch (hist_by) {
	case FW_HIST_BY_COMM: __builtin_memcpy(k.comm, st->comm, sizeof(k.comm)); break;
	case FW_HIST_BY_PID: k.tgid = st->tgid; break;
	case FW_HIST_BY_CGROUP: k.cgroup_id = st->cgroup_id; break;
	case FW_HIST_BY_PORT: k.port = st->sport; break;
	case FW_HIST_BY_STACK: k.stack_id = st->stack_id; break;
	}
	h = bpf_map_lookup_elem(&hists, &k);
	if (!h) {
		if (bpf_map_update_elem(&hists, &k, &zero, BPF_NOEXIST) && !bpf_map_lookup_elem(&hists, &k)) {
			__sync_fetch_and_add(&counters.hist_full, 1);
			return;
		}
		h = bpf_map_lookup_elem(&hists, &k);
		if (!h)
			return;
	}
	__sync_fetch_and_add(&h->slots[log2_slot(dwell_ns / hist_unit_ns)], 1);
}

/* The top of the user stack: see struct fw_stack_note. Needs
 * bpf_task_pt_regs (5.15); older kernels leave it 0 (no frame recovered). */
static __always_inline void read_user_stack_top(struct fw_stack_note *note)
{
	struct pt_regs *regs;

	if (!bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_task_pt_regs))
		return;
	regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	if (bpf_probe_read_user(note->top, sizeof(note->top), (void *)PT_REGS_SP_CORE(regs)))
		__builtin_memset(note->top, 0, sizeof(note->top));
}

/* In process context, the closer's own user stack: its id, or -1. The first
 * time an id is seen, user space is told at once (forced wakeup), so it can
 * read the closer's /proc/PID/maps while the process is still there. */
static __always_inline __s16 capture_user_stack(void *ctx, const struct fw_event *st)
{
	long id = bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK);
	struct fw_event *e;
	__u32 key;
	struct fw_stack_note *note;

	if (id < 0) {
		/* -EFAULT: no user stack (a kernel thread, or exit() after the
		 * address space is gone). -EEXIST: the bucket holds another stack. */
		if (id == -EEXIST)
			__sync_fetch_and_add(&counters.stack_lost, 1);
		return -1;
	}
	if (id >= FW_STACK_ENTRIES) /* cannot happen: ids index the map */
		return -1;
	key = id;
	note = bpf_map_lookup_elem(&stack_notes, &key);
	if (!note || note->announced)
		return id;
	note->announced = 1;
	read_user_stack_top(note);
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		/* User space names it later, from the owner if still alive. */
		__sync_fetch_and_add(&counters.ringbuf_drops, 1);
		return id;
	}
	__builtin_memcpy(e, st, sizeof(*e));
	e->kind = FW_KIND_STACK;
	e->ts_ns = st->ts_fin_wait1_ns;
	e->stack_id = id;
	bpf_ringbuf_submit(e, BPF_RB_FORCE_WAKEUP);
	return id;
}

static __always_inline int on_fin_wait1(void *ctx, struct sock *sk, __u64 key, __u64 now)
{
	struct fw_event st = {};

	set_owner(&st);
	if (target_tgid && st.tgid != target_tgid)
		return 0;
	if (filter_comm && !comm_matches(st.comm))
		return 0;
	if (!read_tuple(sk, &st))
		return 0;

	st.skaddr = key;
	st.ts_fin_wait1_ns = now;
	classify(sk, &st);
	/* Not for exec: the stack is the old image's, and the maps that would
	 * place it are already the new one's. exit has no user stack left. */
	st.stack_id = capture_stack && st.syscall != FW_SYSCALL_EXECVE && st.syscall != FW_SYSCALL_EXECVEAT
		? capture_user_stack(ctx, &st) : -1;
	if (bpf_map_update_elem(&socks, &key, &st, BPF_ANY)) {
		__sync_fetch_and_add(&counters.map_full, 1);
		return 0;
	}
	if (follow_peers)
		remember_peer(&st);
	return 0;
}

/* A socket entered CLOSE_WAIT: if it is the peer of a traced connection,
 * note when (softirq: only the time and namespace mean anything here). */
static __always_inline int on_close_wait(struct sock *sk, __u64 now)
{
	struct fw_tuple t = {};
	struct fw_peer *peer;
	struct fw_event *st;
	__u32 peer_netns = peer_tuple_of(sk, &t);

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
static __always_inline int on_peer_close(struct sock *sk, __u64 now)
{
	struct fw_tuple t = {};
	struct fw_event e = {};
	struct fw_peer *peer;
	__u32 peer_netns = peer_tuple_of(sk, &t);

	peer = find_peer(&t);
	if (!peer)
		return 0;
	/* hist mode: a full socket's end is counted in the kernel, and its peer's
	 * close is not needed; only a handed-over orphan's is. */
	if (hist_mode && bpf_map_lookup_elem(&socks, &peer->skaddr)) {
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

/* The socket's state, or, for a FIN_WAIT2 whose FIN_WAIT1 we did not see,
 * new state without an owner. NULL when it is filtered out or the map is full. */
static __always_inline struct fw_event *tracked(struct sock *sk, __u64 key)
{
	struct fw_event *st = bpf_map_lookup_elem(&socks, &key);

	if (st)
		return st;
	struct fw_event fresh = {};

	if (owner_filter_active() || !read_tuple(sk, &fresh))
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

static __always_inline int on_fin_wait2(struct sock *sk, __u64 key, __u64 now)
{
	struct fw_event *st = tracked(sk, key);

	if (!st)
		return 0;
	st->ts_fin_wait2_ns = now;
	st->ts_ns = now;
	st->flags |= FW_FLAG_FIN_WAIT2_SEEN;
	/* Orphans are handed to timewait at once (the usual case) and reported
	 * then, in one record; only attached sockets need an ENTER to be watched. */
	if (is_orphan(sk)) {
		st->flags |= FW_FLAG_ORPHAN_AT_ENTRY;
		return 0;
	}
	/* hist mode watches no connection for --stuck. */
	if (hist_mode)
		return 0;
	st->kind = FW_KIND_ENTER;
	emit(st);
	return 0;
}

static __always_inline int on_fin_wait2_exit(struct sock *sk, __u64 key, __u64 now)
{
	struct fw_event *st = tracked(sk, key);

	if (!st)
		return 0;
	st->ts_ns = now;
	st->kind = FW_KIND_LEAVE;
	st->end = fin_wait2_end(sk);
	if (is_orphan(sk))
		st->flags |= FW_FLAG_ORPHAN_AT_END;
	/* A full socket's end is its true end: counted here. An orphan handed to
	 * timewait goes on, and user space follows it to its end. A start that
	 * was not seen has no dwell to count: user space reports it. */
	if (hist_mode && st->end != FW_END_TIMEWAIT_ORPHAN && (st->flags & FW_FLAG_FIN_WAIT2_SEEN))
		hist_record(st, now - st->ts_fin_wait2_ns);
	else
		emit(st);
	/* An orphan's FIN_WAIT2 goes on in timewait: its peer may still close. */
	if (st->end != FW_END_TIMEWAIT_ORPHAN)
		forget_peer(st);
	bpf_map_delete_elem(&socks, &key);
	return 0;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(inet_sock_set_state, struct sock *sk, int oldstate, int newstate)
{
	__u64 key = (__u64)sk;

	/* tcp_close_state() "moves" FIN_WAIT2 to FIN_WAIT2 when an attached
	 * socket is closed: not a transition. */
	if (newstate == oldstate)
		return 0;
	if (newstate == TCP_FIN_WAIT1) {
		if (oldstate == TCP_ESTABLISHED || oldstate == TCP_SYN_RECV)
			return on_fin_wait1(ctx, sk, key, bpf_ktime_get_ns());
		return 0;
	}
	if (oldstate == TCP_FIN_WAIT1) {
		if (newstate == TCP_FIN_WAIT2)
			return on_fin_wait2(sk, key, bpf_ktime_get_ns());
		/* Simultaneous close (CLOSING) or reset: never reached FIN_WAIT2. */
		struct fw_event *st = bpf_map_lookup_elem(&socks, &key);

		if (st) {
			forget_peer(st);
			bpf_map_delete_elem(&socks, &key);
		}
		return 0;
	}
	if (oldstate == TCP_FIN_WAIT2)
		return on_fin_wait2_exit(sk, key, bpf_ktime_get_ns());
	if (!follow_peers)
		return 0;
	if (newstate == TCP_CLOSE_WAIT && oldstate == TCP_ESTABLISHED)
		return on_close_wait(sk, bpf_ktime_get_ns());
	if (oldstate == TCP_CLOSE_WAIT && newstate == TCP_LAST_ACK)
		return on_peer_close(sk, bpf_ktime_get_ns());
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
