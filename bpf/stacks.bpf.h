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

_Static_assert(sizeof(struct fw_build_id_frame) == sizeof(struct bpf_stack_build_id),
	       "fw_build_id_frame mirrors struct bpf_stack_build_id");

/* The path of the closer's executable, a step per slot from the leaf up,
 * crossing mounts up to its mount namespace's root: a component's name, or
 * an empty slot for a mount crossed. The step at which the walk passed the
 * closer's own root directory, if that is not the namespace's (a chroot),
 * is noted too, so user space can also try the path as the closer sees it.
 * The slot is the loop's own index, so the verifier sees one state per step
 * whatever the path. Left unknown (exe_depth 0) when longer than
 * FW_EXE_DEPTH - 1 steps or a name does not fit its slot. */
static __always_inline void note_executable(struct fw_stack_announcement *a)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct file *exe = BPF_CORE_READ(task, mm, exe_file);
	struct fs_struct *fs = BPF_CORE_READ(task, fs);
	struct vfsmount *vfsmnt;
	struct mount *mnt, *parent_mnt;
	struct dentry *d, *parent;
	struct qstr name;
	struct path path, root;

	a->exe_depth = 0;
	a->exe_root_step = 0;
	if (!exe || !fs || bpf_core_read(&path, sizeof(path), &exe->f_path) ||
	    bpf_core_read(&root, sizeof(root), &fs->root))
		return;
	d = path.dentry;
	vfsmnt = path.mnt;
	mnt = (void *)vfsmnt - bpf_core_field_offset(struct mount, mnt);
	/* The pass after the last name finds the root, so a path fits in one
	 * step fewer than there are slots. */
	for (__u32 i = 0; i < FW_EXE_DEPTH; i++) {
		char *slot = a->exe[i];

		slot[0] = '\0';
		if (d == root.dentry && vfsmnt == root.mnt && !a->exe_root_step)
			a->exe_root_step = i;
		parent = BPF_CORE_READ(d, d_parent);
		if (d == BPF_CORE_READ(vfsmnt, mnt_root) || d == parent) {
			parent_mnt = BPF_CORE_READ(mnt, mnt_parent);
			if (parent_mnt == mnt || !parent_mnt) {
				a->exe_depth = i;
				return;
			}
			d = BPF_CORE_READ(mnt, mnt_mountpoint);
			mnt = parent_mnt;
			vfsmnt = (void *)mnt + bpf_core_field_offset(struct mount, mnt);
			continue;
		}
		if (bpf_core_read(&name, sizeof(name), &d->d_name) || name.len >= FW_EXE_NAME_BYTES ||
		    bpf_probe_read_kernel_str(slot, FW_EXE_NAME_BYTES, name.name) <= 1)
			return;
		d = parent;
	}
}

/* In process context, the closer's own user stack: its id, or -1. The first
 * time an id is seen, user space is told at once (forced wakeup, on
 * stack_events), so it can read the closer's /proc/PID/maps while the
 * process is still there. */
static __always_inline __s16 capture_user_stack(void *ctx, const struct fw_event *st)
{
	long id = bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK);
	struct fw_stack_announcement *a;
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
	a = bpf_ringbuf_reserve(&stack_events, sizeof(*a), 0);
	if (!a) {
		/* User space names it later, from the owner if still alive. */
		__sync_fetch_and_add(&counters.ringbuf_drops, 1);
		return id;
	}
	__builtin_memcpy(&a->event, st, sizeof(a->event));
	a->event.kind = FW_KIND_STACK;
	a->event.ts_ns = st->ts_fin_wait1_ns;
	a->event.stack_id = id;
	/* The same frame-pointer walk as the id's, each frame as (build id, file
	 * offset) read from the closer's mappings now: nothing left to race
	 * its exit for. Frames the kernel cannot place stay addresses. */
	if (bpf_get_stack(ctx, a->frames, sizeof(a->frames), BPF_F_USER_STACK | BPF_F_USER_BUILD_ID) < 0)
		__builtin_memset(a->frames, 0, sizeof(a->frames));
	note_executable(a);
	bpf_ringbuf_submit(a, BPF_RB_FORCE_WAKEUP);
	return id;
}

#endif /* __FINWAIT_STACKS_BPF_H */
