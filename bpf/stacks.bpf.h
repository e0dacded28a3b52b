/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * `--stack`: the user stack of the task that sent the FIN, kept by id, and
 * announced to user space the first time an id is seen.
 */
#ifndef __FINWAIT_STACKS_BPF_H
#define __FINWAIT_STACKS_BPF_H

/* Repeated call sites share one entry. Without --stack both are resized to
 * one entry by user space. Ids are never reused (no BPF_F_REUSE_STACKID), so
 * an id read later still names the stack it was given for. */
struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, FW_STACK_ENTRIES);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, FW_STACK_DEPTH * sizeof(__u64));
} stacks SEC(".maps");

/* Announcements only (FW_KIND_STACK records), each with a wakeup: a thread
 * of their own reads the closer's maps while the closer still runs, however
 * busy the main consumer is. Resized to one page without --stack. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, FW_STACK_RINGBUF_BYTES);
} stack_events SEC(".maps");

/* By stack id: announced yet, and the top of the user stack. Racy on
 * purpose: two CPUs may both announce an id, and user space keeps the first. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FW_STACK_ENTRIES);
	__type(key, __u32);
	__type(value, struct fw_stack_note);
} stack_notes SEC(".maps");

/* The top of the user stack: see struct fw_stack_note. Left 0 (no frame
 * recovered) when the closer's registers cannot be read (regs.bpf.h). */
static __always_inline void read_user_stack_top(struct fw_stack_note *note)
{
	struct user_regs regs;

	if (!current_user_regs(&regs))
		return;
	if (bpf_probe_read_user(note->top, sizeof(note->top), (void *)regs.sp))
		__builtin_memset(note->top, 0, sizeof(note->top));
}

/* In process context, the closer's own user stack: its id, or -1. The first
 * time an id is seen, user space is told at once (forced wakeup, on
 * stack_events), so it can read the closer's /proc/PID/maps while the
 * process is still there. */
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
	e = bpf_ringbuf_reserve(&stack_events, sizeof(*e), 0);
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

#endif /* __FINWAIT_STACKS_BPF_H */
