/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The one definition of what crosses from the kernel to user space: the
 * ring-buffer record and the enums it carries. Included by finwait.bpf.c
 * and imported by Swift (module CFinwaitEvent), so the layout cannot drift.
 */
#ifndef __FINWAIT_H
#define __FINWAIT_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Not TASK_COMM_LEN: vmlinux.h defines that as an enum constant. */
#define FW_COMM_LEN 16

/* Record kinds. */
enum fw_kind {
	/* An attached socket entered FIN_WAIT2 (orphans are only reported at their end). */
	FW_KIND_ENTER = 1,
	/* A socket left FIN_WAIT2 as a full socket (or was handed to timewait). */
	FW_KIND_LEAVE = 2,
	/* Still in FIN_WAIT2 when the tracer stopped: read from the kernel map, never sent. */
	FW_KIND_IN_FLIGHT = 3,
	/* The local peer of a traced connection left CLOSE_WAIT (it called close or
	 * shutdown and sent its FIN). Addresses are the traced side's; the owner
	 * fields are the peer's. */
	FW_KIND_PEER_CLOSE = 4,
	/* `--stack`: the first connection closed from a call site not seen before.
	 * stack_id names it in the stacks map and in stack_notes; the owner fields
	 * are the closer's (its /proc/PID/maps places the addresses). Sent once
	 * per stack id, never for a connection. */
	FW_KIND_STACK = 5,
};

/* The code path that sent our FIN, decided at ESTABLISHED -> FIN_WAIT1. */
enum fw_path {
	FW_PATH_UNKNOWN = 0,       /* FIN_WAIT1 not seen, or the closer's registers not readable */
	FW_PATH_SHUTDOWN_WR = 1,   /* shutdown(SHUT_WR): the socket stays attached */
	FW_PATH_SHUTDOWN_RDWR = 2, /* shutdown(SHUT_RDWR) */
	FW_PATH_CLOSE = 3,         /* last reference dropped: close, dup2/dup3, close_range, exec */
	FW_PATH_EXIT = 4,          /* the owning process exited with the socket open */
	FW_PATH_OTHER = 5,         /* kernel-internal, io_uring, or a syscall we do not know */
};

/* The syscall the owner was in at ESTABLISHED -> FIN_WAIT1. */
enum fw_syscall {
	FW_SYSCALL_UNKNOWN = 0, /* not a syscall we name, or the closer's registers not readable */
	FW_SYSCALL_SHUTDOWN = 1,
	FW_SYSCALL_CLOSE = 2,
	FW_SYSCALL_DUP2 = 3,
	FW_SYSCALL_DUP3 = 4,
	FW_SYSCALL_CLOSE_RANGE = 5,
	FW_SYSCALL_EXECVE = 6,
	FW_SYSCALL_EXECVEAT = 7,
	FW_SYSCALL_EXIT = 8,
	FW_SYSCALL_EXIT_GROUP = 9,
	FW_SYSCALL_IO_URING_ENTER = 10,
};

/* How a LEAVE record ended FIN_WAIT2 as a full socket. */
enum fw_end {
	FW_END_NONE = 0,            /* ENTER and IN_FLIGHT records */
	FW_END_PEER_FIN = 1,        /* the peer's FIN arrived: TIME_WAIT follows */
	FW_END_RESET = 2,           /* RST received, or the application aborted (SO_LINGER 0) */
	FW_END_TIMEWAIT_ORPHAN = 3, /* orphan handed to a timewait socket: FIN_WAIT2 goes on */
};

/* Bits of fw_event.flags. */
#define FW_FLAG_OWNER_KNOWN (1 << 0)     /* ESTABLISHED -> FIN_WAIT1 was seen in process context */
#define FW_FLAG_ORPHAN_AT_ENTRY (1 << 1) /* SOCK_DEAD already set at FIN_WAIT1 -> FIN_WAIT2 */
#define FW_FLAG_ORPHAN_AT_END (1 << 2)   /* SOCK_DEAD set when FIN_WAIT2 ended */
#define FW_FLAG_FIN_WAIT2_SEEN (1 << 3)  /* ts_fin_wait2_ns is valid */
/* Set by user space, never by the program: FIN_WAIT1 -> FIN_WAIT2 was not
 * seen, and ts_fin_wait2_ns is the latest it can have been (from sock_diag's
 * last-ACK age, ms precision): the dwell from it is a lower bound. */
#define FW_FLAG_FIN_WAIT2_INFERRED (1 << 4)
/* close() of an attached socket in FIN_WAIT2 (tcp_close_state "moves" it
 * from FIN_WAIT2 to FIN_WAIT2): an orphan from then on, still a full socket
 * while tcp_fin_timeout is above TCP_TIMEWAIT_LEN. Read by `finwait serve`
 * when it counts the map's sockets. */
#define FW_FLAG_CLOSED (1 << 5)

/*
 * One record. Also the value of the per-socket kernel map, so a LEAVE is a
 * single copy of what was gathered at FIN_WAIT1 and FIN_WAIT2 entry.
 * Timestamps are CLOCK_MONOTONIC nanoseconds (bpf_ktime_get_ns).
 */
struct fw_event {
	__u64 ts_ns;           /* when this record's transition happened */
	__u64 ts_fin_wait1_ns; /* 0 if not seen */
	__u64 ts_fin_wait2_ns; /* valid when FW_FLAG_FIN_WAIT2_SEEN */
	__u64 ts_peer_close_wait_ns; /* a local peer entered CLOSE_WAIT; 0 if none seen */
	__u64 cgroup_id;       /* owner's cgroup v2 id */
	__u64 skaddr;          /* kernel socket address: the connection's identity while it lives */
	__u32 tgid;            /* owner process id (0 when the owner is unknown) */
	__u32 tid;             /* owner thread id */
	__u32 netns;           /* network namespace inode number */
	__u32 peer_netns;      /* the local peer's network namespace, 0 if none seen */
	__u8 saddr[16];        /* IPv4 in the first 4 bytes, network order */
	__u8 daddr[16];
	__u16 sport;           /* host order */
	__u16 dport;           /* host order */
	__u16 family;          /* AF_INET or AF_INET6 */
	__u8 kind;             /* enum fw_kind */
	__u8 path;             /* enum fw_path */
	__u8 syscall;          /* enum fw_syscall */
	__u8 end;              /* enum fw_end */
	__u8 flags;            /* FW_FLAG_* */
	__u8 __pad;
	__s16 syscall_nr;      /* raw syscall number at FIN_WAIT1 entry, -1 if unknown (all fit 16 bits) */
	__s16 stack_id;        /* `--stack`: the closer's user stack in the stacks map, -1 if none */
	char comm[FW_COMM_LEN];
};

_Static_assert(sizeof(struct fw_event) == 128, "fw_event layout changed: update both sides");

/* A connection as seen from the side that sent the first FIN: the key under
 * which a local peer (whose view is the reverse) finds it. */
struct fw_tuple {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;
	__u16 dport;
	__u16 family;
	__u16 __pad;
	/* Loopback addresses exist in every namespace: for them the peer is in
	 * the same namespace, and it is part of the key. 0 otherwise (pods on
	 * one node reach each other across namespaces). */
	__u32 netns;
};

/* `finwait hist`: dwell histograms kept in the kernel, so a busy node pays no
 * ring-buffer record for connections that end as full sockets. Orphans handed
 * to timewait still go to user space, which follows them to their real end. */
#define FW_HIST_SLOTS 40 /* log2 buckets: slot 0 holds 0 and 1, slot i [2^i, 2^(i+1)) */

/* What a histogram is broken down by, besides the path. */
enum fw_hist_by {
	FW_HIST_BY_PATH = 0,
	FW_HIST_BY_COMM = 1,
	FW_HIST_BY_PID = 2,
	FW_HIST_BY_CGROUP = 3,
	FW_HIST_BY_PORT = 4, /* the local port */
	FW_HIST_BY_STACK = 5, /* the closer's user stack (needs stacks captured) */
	FW_HIST_BY_SERVE = 6, /* `finwait serve`: the end, the owner's comm and cgroup */
};

/* Fields not chosen by --by stay 0. */
struct fw_hist_key {
	__u64 cgroup_id;
	__u32 tgid;
	__u16 port;
	__u8 path;    /* enum fw_path */
	__u8 end;     /* enum fw_end; FW_HIST_BY_SERVE only */
	char comm[FW_COMM_LEN];
	__s16 stack_id; /* FW_HIST_BY_STACK; -1: no stack captured */
	__u8 __pad2[6];
};

/* Per slot, the count and the sum of the dwells counted in it: `finwait
 * serve` exports exact Prometheus histogram sums from them. */
struct fw_hist {
	__u64 slots[FW_HIST_SLOTS];
	__u64 sum_ns[FW_HIST_SLOTS];
};

/* `--stack`: frames kept of the user stack that sent the FIN, and distinct
 * stacks kept (ids are below it, so they fit fw_event.stack_id). */
#define FW_STACK_DEPTH 32
#define FW_STACK_ENTRIES 16384
/* Announcements in flight: 96 (struct fw_stack_announcement + 8-byte header). */
#define FW_STACK_RINGBUF_BYTES (256u << 10)
#define FW_STACK_TOP_WORDS 8
/* The closer's executable path as its announcement carries it: a slot per
 * step (a component, or a mount crossed), each name shorter than
 * FW_EXE_NAME_BYTES; a path fits in FW_EXE_DEPTH - 1 steps (the walk's last
 * pass only finds the root). */
#define FW_EXE_DEPTH 24
#define FW_EXE_NAME_BYTES 64

/* What the frame-pointer walk cannot give, per stack id, taken with its first
 * capture. A libc wrapper such as shutdown() or close() sets up no frame
 * pointer, so the walk goes from the wrapper straight to its caller's caller:
 * the function that called the wrapper is lost. Its return address is in
 * these words from the user stack pointer, at the offset the wrapper's
 * .eh_frame gives for the syscall's address (user space finds it there). */
struct fw_stack_note {
	__u64 top[FW_STACK_TOP_WORDS]; /* the user stack from sp up; 0s if unreadable */
	__u32 announced;               /* a FW_KIND_STACK record was sent for the id */
	__u32 __pad;
};

/* One frame as bpf_get_stack(BPF_F_USER_BUILD_ID) writes it (the layout of
 * the uapi struct bpf_stack_build_id, which the BPF side asserts). */
enum fw_frame_status {
	FW_FRAME_EMPTY = 0,    /* past the last frame */
	FW_FRAME_BUILD_ID = 1, /* build_id and the file offset are set */
	FW_FRAME_IP = 2,       /* the kernel could not read the file: the address only */
};

struct fw_build_id_frame {
	__s32 status;      /* enum fw_frame_status */
	__u8 build_id[20]; /* the mapped file's GNU build id, zero-padded */
	__u64 offset;      /* FW_FRAME_BUILD_ID: file offset; FW_FRAME_IP: the address */
};

/* A FW_KIND_STACK record on stack_events: the record, then what the kernel
 * saw of the closer's files at its FIN, so that a closer gone before user
 * space reads its /proc/PID/maps is still named (from files found by build
 * id). */
struct fw_stack_announcement {
	struct fw_event event;
	struct fw_build_id_frame frames[FW_STACK_DEPTH]; /* as the stack map's, innermost first */
	__u32 exe_depth;     /* steps in exe; 0: unknown (no file, too deep, or a name too long) */
	__u32 exe_root_step; /* the step at the closer's root directory if not its namespace's (chroot), else 0 */
	/* The executable's path from its mount namespace's root, last component
	 * first: a name per step, empty where a mount was crossed. */
	char exe[FW_EXE_DEPTH][FW_EXE_NAME_BYTES];
};

/*
 * Map sizes: each defined here and nowhere else. The ring buffer and the
 * per-socket map are resized before load from fw_config; the others are fixed.
 */
/* 4 MiB holds 30,840 records (128 bytes + 8-byte header): half a second of a
 * burst of 58,000 FIN_WAIT2 entries a second (1 MiB dropped records). */
#define FW_DEFAULT_RINGBUF_BYTES (4u << 20)
#define FW_DEFAULT_MAX_TRACKED 65536u     /* sockets on the FIN path at once */
#define FW_DEFAULT_WAKEUP_BYTES (256u * 1024) /* backlog that forces a wakeup */
#define FW_PEER_SLOTS 16384               /* direct-mapped local-peer table; a power of two */
#define FW_HIST_ENTRIES 10240             /* distinct histogram keys */

/*
 * The whole configuration, from the command line to the kernel: one value,
 * set in the program's read-only data before load (`const volatile struct
 * fw_config cfg`) and built by Swift (KernelConfig). A field of 0 means "no
 * filter". Adding a filter: a field here, its check in the BPF program, the
 * flag that sets it, and its test.
 */
struct fw_config {
	__u32 tgid;            /* only this process (0: all) */
	__u32 netns;           /* only this network namespace inode (0: all) */
	__u16 port;            /* only this local or remote port (0: all) */
	__u16 family;          /* only AF_INET or AF_INET6 (0: both) */
	__u8 filter_comm;      /* only owners whose comm is `comm` exactly */
	__u8 follow_peers;     /* watch local peers' CLOSE_WAIT -> LAST_ACK */
	__u8 capture_stack;    /* `--stack`: user stacks at FIN_WAIT1 */
	__u8 hist_mode;        /* `finwait hist`: full sockets' dwells counted in the kernel */
	__u8 hist_by;          /* enum fw_hist_by */
	__u8 regs_from_stack;  /* read user registers from the kernel stack's top even where bpf_task_pt_regs exists (tests) */
	__u8 __pad[2];
	__u32 hist_unit_ns;    /* histogram slot unit: 1000 (us) or 1000000 (ms) */
	__u32 ringbuf_bytes;   /* power of two, multiple of the page size */
	__u32 max_tracked;     /* entries of the per-socket map */
	__u32 __pad2;
	__u64 wakeup_bytes;    /* backlog that forces a consumer wakeup */
	char comm[FW_COMM_LEN];
};

/* Counters the BPF program keeps; read by user space through the skeleton. */
struct fw_counters {
	__u64 ringbuf_drops;   /* bpf_ringbuf_reserve failed: a record was lost */
	__u64 map_full;        /* the per-socket map was full: a connection went untracked */
	__u64 unseen_start;    /* FIN_WAIT2 transitions of sockets whose FIN_WAIT1 we never saw */
	__u64 hist_full;       /* `finwait hist`: a dwell not counted, the histogram map was full */
	__u64 stack_lost;      /* `--stack`: a closer's stack not kept (its stack-map bucket held another) */
};

/*
 * `finwait doctor`: one socket's own keepalive and FIN_WAIT2 settings, which
 * sock_diag does not report, written by the iter/tcp program of
 * bpf/sockets.bpf.c (its own small object: the doctor does not load the
 * tracer's maps). One fixed-size record per full socket in a chosen state.
 * Times are the kernel's jiffies; user space converts them (see netns_keepalive_time).
 */
struct fw_sock_settings {
	__u64 cookie;             /* SO_COOKIE / inet_diag cookie; 0: not available (< 5.12) */
	__u64 inode;              /* the socket's inode; 0 for orphans */
	__u64 keepalive_time;     /* TCP_KEEPIDLE in jiffies; 0: the namespace's tcp_keepalive_time */
	__u64 keepalive_intvl;    /* TCP_KEEPINTVL in jiffies; 0: the namespace's tcp_keepalive_intvl */
	__s64 linger2;            /* TCP_LINGER2 in jiffies; 0: tcp_fin_timeout; negative: no FIN_WAIT2 for orphans */
	__u32 user_timeout_ms;    /* TCP_USER_TIMEOUT; 0: none */
	__u32 netns;              /* network namespace inode number */
	__u8 saddr[16];           /* IPv4 in the first 4 bytes, network order */
	__u8 daddr[16];
	__u16 sport;              /* host order */
	__u16 dport;              /* host order */
	__u16 family;             /* AF_INET or AF_INET6 */
	__u8 state;               /* TCP state, as sock_diag numbers it */
	__u8 keepalive;           /* SO_KEEPALIVE is on */
	__u8 keepalive_probes;    /* TCP_KEEPCNT; 0: the namespace's tcp_keepalive_probes */
	__u8 probes_out;          /* keepalive or zero-window probes sent and unanswered */
	__u8 shutdown;            /* sk_shutdown: 1 receive side (RCV_SHUTDOWN), 2 send side (SEND_SHUTDOWN) */
	__u8 __pad;
	/* The namespace's tcp_keepalive_time in jiffies: divided by the sysctl's
	 * seconds it gives the kernel's HZ, with no kernel config file needed. */
	__u32 netns_keepalive_time;
};

_Static_assert(sizeof(struct fw_sock_settings) == 96, "fw_sock_settings layout changed: update both sides");

/* Configuration of the iterators, set in their read-only data before load. */
struct fw_sockets_config {
	__u32 states; /* bit (1 << state) for each TCP state to report */
	__u8 cookie;  /* call bpf_get_socket_cookie (iterators may since Linux 5.12) */
	__u8 __pad[3];
};

/*
 * Who holds each TCP socket, as `ss -p` finds it from /proc/PID/fd, but read
 * in one pass over every process's file table by the iter/task_file program
 * of bpf/sockets.bpf.c: one record per descriptor of an IPv4 or IPv6 TCP
 * socket in a state of fw_sockets_config.states. A socket open in several
 * processes (fork, SCM_RIGHTS) has a record in each, lowest pid first.
 */
struct fw_sock_owner {
	__u64 inode;           /* the socket's inode, as "socket:[inode]" names it */
	__u32 tgid;            /* the holding process, as the initial pid namespace numbers it */
	__u32 __pad;
	char comm[FW_COMM_LEN]; /* the process's name (its main thread's, as /proc/PID/comm) */
};

_Static_assert(sizeof(struct fw_sock_owner) == 32, "fw_sock_owner layout changed: update both sides");

#endif /* __FINWAIT_H */
