/*
 * The libbpf lifecycle of the embedded finwait BPF object, as a handful of
 * plain C functions: Swift never sees the skeleton or libbpf's opts macros.
 */
#ifndef FINWAIT_BPF_H
#define FINWAIT_BPF_H

#include <stddef.h>
#include "../../CFinwaitEvent/include/finwait_event.h"

/* Which step of fw_tracer_start failed. */
enum fw_stage {
	FW_STAGE_NONE = 0,
	FW_STAGE_OPEN = 1,    /* parse the embedded object, find kernel BTF */
	FW_STAGE_LOAD = 2,    /* CO-RE relocation, verifier, map creation */
	FW_STAGE_ATTACH = 3,  /* tp_btf or tracepoint sock/inet_sock_set_state */
	FW_STAGE_RINGBUF = 4, /* ring buffer consumer */
};


/* Which of the object's two programs is loaded and attached. */
enum fw_attach {
	FW_ATTACH_TP_BTF = 1,     /* tp_btf/inet_sock_set_state: needs the kernel's own BTF */
	FW_ATTACH_TRACEPOINT = 2, /* tracepoint/sock/inet_sock_set_state: needs tracefs */
};

/* Whether the running kernel has its own BTF (/sys/kernel/btf/vmlinux),
 * which a tp_btf program needs: 1 yes, 0 no, -errno. */
int fw_probe_tp_btf(void);
/* Whether the kernel creates a BPF ring buffer (5.8): 1 yes, 0 no, -errno
 * if it could not be told (no privileges). */
int fw_probe_ringbuf(void);
/* Whether the kernel has bpf_task_pt_regs (5.15), which the program uses
 * for the closer's registers (else it reads them itself, bpf/regs.bpf.h):
 * 1 yes, 0 no, -errno. */
int fw_probe_task_pt_regs(void);

/* Called once per record; return non-zero to stop the current drain. */
typedef int (*fw_record_fn)(void *ctx, const struct fw_event *event);

struct fw_tracer;

/* Opens, sets the configuration and map sizes from cfg, loads and attaches
 * the program `attach` names (the other is not loaded). btf_path NULL: the
 * running kernel's /sys/kernel/btf/vmlinux. Returns 0, or -errno with *failed
 * set. */
int fw_tracer_start(const struct fw_config *cfg, const char *btf_path, enum fw_attach attach,
		    struct fw_tracer **out, enum fw_stage *failed);
/* Waits up to timeout_ms for a wakeup, then hands everything queued to fn
 * (records are submitted without wakeups, so the timeout is the latency bound).
 * Returns the number of records consumed or -errno (-EINTR on a signal). */
int fw_tracer_drain(struct fw_tracer *tracer, int timeout_ms, fw_record_fn fn, void *ctx);
void fw_tracer_counters(const struct fw_tracer *tracer, struct fw_counters *out);
/* Transitions the kernel skipped because the program was already running on that CPU. */
/* Program runs the kernel skipped, into *out: 0, or -EOPNOTSUPP if the
 * kernel does not count them (before 5.12), or -errno. */
int fw_tracer_recursion_misses(const struct fw_tracer *t, __u64 *out);
/* Calls fn with a copy of every entry of the kernel map, whatever its state. */
int fw_tracer_tracked(struct fw_tracer *tracer, fw_record_fn fn, void *ctx);
/* For a transition the program did not see (sock_diag shows the socket in
 * FIN_WAIT2): marks the entry e was copied from as in FIN_WAIT2 since ts,
 * inferred. Returns 0, -ESTALE if the program changed the entry since the
 * copy, or -errno (-ENOENT: it is gone). */
int fw_tracer_repair_fin_wait2(struct fw_tracer *tracer, const struct fw_event *e, __u64 ts);
/* Deletes the entry e was copied from (its end was not seen); same returns. */
int fw_tracer_forget(struct fw_tracer *tracer, const struct fw_event *e);
/* Calls fn with each histogram the kernel counted since the last call, and
 * removes it (interval histograms, as bcc's tools print them). Returns the
 * number taken or -errno. */
typedef int (*fw_hist_fn)(void *ctx, const struct fw_hist_key *key, const struct fw_hist *hist);
int fw_tracer_take_hists(struct fw_tracer *tracer, fw_hist_fn fn, void *ctx);
/* The user-space return addresses of stack `id` (at most FW_STACK_DEPTH,
 * innermost first) into ips. Returns how many, or -errno (-ENOENT: gone). */
int fw_tracer_stack(struct fw_tracer *tracer, __s16 id, __u64 *ips, int max);
/* What was noted with stack `id`'s first capture. 0, or -errno. */
int fw_tracer_stack_note(struct fw_tracer *tracer, __s16 id, struct fw_stack_note *note);
/* The most of a /proc/PID/maps that naming a stack reads (C reader thread and Swift alike). */
#define FW_MAPS_MAX_BYTES (8u << 20)
/* Called with each stack announcement (a FW_KIND_STACK record and what the
 * kernel saw of the closer's files) and the closer's /proc/PID/maps as read
 * when it came (maps NULL: already gone). */
typedef void (*fw_announcement_fn)(void *ctx, const struct fw_stack_announcement *announcement, const char *maps,
				   size_t maps_len);
/* With --stack, a thread of the tracer's own takes each announcement as the
 * kernel wakes it and reads the closer's maps at once. Hands over, in order,
 * what it took since the last call; returns how many. */
int fw_tracer_take_announcements(struct fw_tracer *tracer, fw_announcement_fn fn, void *ctx);
/* 1 if that thread runs under SCHED_FIFO (CAP_SYS_NICE or RLIMIT_RTPRIO),
 * 0 if at normal priority or without --stack. */
int fw_tracer_reads_announcements_in_real_time(const struct fw_tracer *tracer);
/* Detaches the program: no record is produced after this returns, so a last
 * drain and an in-flight walk see a settled state. */
void fw_tracer_detach(struct fw_tracer *tracer);
/* Detaches and frees everything; safe with NULL. */
void fw_tracer_stop(struct fw_tracer *tracer);

/*
 * `finwait doctor`: what finwait tracers run by other processes on this node
 * saw (their programs' maps, found by id; read only). Needs CAP_SYS_ADMIN.
 */
struct fw_running {
	__u32 socks_id;  /* the per-socket map's id: one per tracer */
	int socks_fd;    /* key: socket address; value: struct fw_event */
	int stacks_fd;   /* -1 if absent */
	int notes_fd;    /* -1 if absent */
};

/* Opens the maps of up to max tracers, read-only. Returns how many, or -errno
 * (-EPERM without CAP_SYS_ADMIN); *other_layout counts the tracers skipped
 * because their record is laid out differently (another finwait version). */
int fw_running_find(struct fw_running *out, int max, int *other_layout);
/* Calls fn with each entry of the tracer's per-socket map, as stored. */
int fw_running_tracked(const struct fw_running *r, fw_record_fn fn, void *ctx);
/* As fw_tracer_stack and fw_tracer_stack_note, from that tracer's maps. */
int fw_running_stack(const struct fw_running *r, __s16 id, __u64 *ips, int max);
int fw_running_stack_note(const struct fw_running *r, __s16 id, struct fw_stack_note *note);
void fw_running_close(struct fw_running *r);

/*
 * `finwait doctor`: each socket's own settings (struct fw_sock_settings),
 * read with the iter/tcp program of bpf/sockets.bpf.c, its own object.
 */
struct fw_sockets;

/* Called once per socket; return non-zero to stop the read. */
typedef int (*fw_settings_fn)(void *ctx, const struct fw_sock_settings *settings);

/* Opens, loads (states: bit 1 << state for each TCP state to report) and
 * attaches the iterator. Returns 0, or -errno with *failed set. */
int fw_sockets_open(__u32 states, struct fw_sockets **out, enum fw_stage *failed);
/* Whether records carry the socket cookie (Linux 5.12+). */
int fw_sockets_have_cookie(const struct fw_sockets *s);
/* Walks the TCP sockets of the network namespace netns_fd refers to (-1:
 * our own) and calls fn with each record. Returns the number of records or
 * -errno. */
int fw_sockets_read(struct fw_sockets *s, int netns_fd, fw_settings_fn fn, void *ctx);
/* Detaches and frees; safe with NULL. */
void fw_sockets_close(struct fw_sockets *s);

/* Called once per descriptor of a TCP socket; return non-zero to stop. */
typedef int (*fw_owner_fn)(void *ctx, const struct fw_sock_owner *owner);
/* Loads the iter/task_file program of bpf/sockets.bpf.c (states as for
 * fw_sockets_open), walks every process's file table once and frees it
 * again. Returns the number of records read, or -errno with *failed set to
 * the stage that failed (Linux before 5.11 refuses the load: no
 * bpf_sock_from_file). */
int fw_owners_scan(__u32 states, fw_owner_fn fn, void *ctx, enum fw_stage *failed);

/* libbpf's own messages go to stderr only when verbose. */
void fw_set_libbpf_verbose(int verbose);
/* libbpf's text for an error it returned (its own 4000+ codes included). */
void fw_libbpf_strerror(int err, char *buf, size_t size);

#endif /* FINWAIT_BPF_H */
