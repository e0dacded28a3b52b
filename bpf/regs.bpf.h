/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The user registers the current task saved when it entered the kernel: its
 * syscall number and second argument (syscalls.bpf.h), and its user stack
 * pointer (stacks.bpf.h).
 *
 * bpf_task_pt_regs (5.15) returns them. Before 5.15 they are read where that
 * helper finds them, at the top of the task's kernel stack (task_pt_regs():
 * stack + THREAD_SIZE - padding - sizeof(struct pt_regs)). THREAD_SIZE and the
 * padding are build options, so each known layout is tried and kept only if
 * what it reads can only be a user-mode frame; otherwise nothing is read.
 */
#ifndef __FINWAIT_REGS_BPF_H
#define __FINWAIT_REGS_BPF_H

struct user_regs {
	long nr;   /* syscall number */
	long arg2; /* second syscall argument */
	__u64 sp;  /* user stack pointer */
};

#define PF_KTHREAD 0x00200000

#if defined(__TARGET_ARCH_x86)
/* __USER_CS, __USER32_CS, __USER_DS: the segments of a syscall frame. */
#define USER64_CS 0x33
#define USER32_CS 0x23
#define USER_DS 0x2b
#elif defined(__TARGET_ARCH_arm64)
#define PSR_MODE_MASK 0x0000000f /* PSR_MODE_EL0t is 0 */
#define PSR_MODE32_BIT 0x00000010
#define USER_VA_END (1ULL << 52)
#endif

enum frame { NOT_A_FRAME = -1, COMPAT_FRAME = 0, NATIVE_FRAME = 1 };

/* A field of `regs`: a direct load of bpf_task_pt_regs()'s BTF pointer, or a
 * bpf_probe_read_kernel of an address computed before 5.15. `direct` is a
 * constant at every call, so only one of the two is compiled in. */
#define FRAME_FIELD(direct, regs, field) ((direct) ? (regs)->field : BPF_CORE_READ(regs, field))

/* What `regs` holds: a native syscall frame (then `out` is filled), a compat
 * (32-bit) task's, whose syscall numbers differ, or not a user-mode frame at
 * all. */
static __always_inline enum frame read_frame(struct pt_regs *regs, bool direct, struct user_regs *out)
{
#if defined(__TARGET_ARCH_x86)
	__u64 cs = FRAME_FIELD(direct, regs, cs);

	if (FRAME_FIELD(direct, regs, ss) != USER_DS || (cs != USER64_CS && cs != USER32_CS))
		return NOT_A_FRAME;
	if (cs != USER64_CS)
		return COMPAT_FRAME;
	out->nr = FRAME_FIELD(direct, regs, orig_ax);
	out->arg2 = FRAME_FIELD(direct, regs, si);
	out->sp = FRAME_FIELD(direct, regs, sp);
#elif defined(__TARGET_ARCH_arm64)
	struct user_pt_regs *user = (struct user_pt_regs *)regs;
	__u64 pstate = FRAME_FIELD(direct, user, pstate);
	__u64 pc = FRAME_FIELD(direct, user, pc);
	__u64 sp = FRAME_FIELD(direct, user, sp);

	if ((pstate & PSR_MODE_MASK) || !pc || pc >= USER_VA_END || !sp || sp >= USER_VA_END)
		return NOT_A_FRAME;
	if (pstate & PSR_MODE32_BIT)
		return COMPAT_FRAME;
	out->nr = FRAME_FIELD(direct, regs, syscallno);
	out->arg2 = FRAME_FIELD(direct, user, regs[1]);
	out->sp = sp;
#endif
	return NATIVE_FRAME;
}

/* task_pt_regs() of a stack of `size` bytes with `pad` bytes above the frame. */
static __always_inline enum frame read_stack_top(__u64 stack, __u32 size, __u32 pad, struct user_regs *out)
{
	return read_frame((struct pt_regs *)(stack + size - pad - bpf_core_type_size(struct pt_regs)), false, out);
}

/* The layouts distribution kernels use, most common first: 16 KiB stacks
 * (x86-64; arm64 with 4 KiB pages), 32 KiB (KASAN), 64 KiB (arm64 with 64 KiB
 * pages); x86-64 pads 16 bytes above the frame when built with FRED (6.9+).
 * A user task's own layout is found first: the ones after it are tried only
 * when it does not hold a frame. */
static __always_inline bool read_stack_top_frame(struct task_struct *task, struct user_regs *out)
{
	__u64 stack = (__u64)BPF_CORE_READ(task, stack);
	enum frame f;

	/* A kernel thread has no user frame, and a larger layout could reach the
	 * next task's stack. */
	if (!stack || (BPF_CORE_READ(task, flags) & PF_KTHREAD))
		return false;
#if defined(__TARGET_ARCH_x86)
	if ((f = read_stack_top(stack, 16384, 0, out)) != NOT_A_FRAME ||
	    (f = read_stack_top(stack, 16384, 16, out)) != NOT_A_FRAME ||
	    (f = read_stack_top(stack, 32768, 0, out)) != NOT_A_FRAME ||
	    (f = read_stack_top(stack, 32768, 16, out)) != NOT_A_FRAME)
		return f == NATIVE_FRAME;
#elif defined(__TARGET_ARCH_arm64)
	if ((f = read_stack_top(stack, 16384, 0, out)) != NOT_A_FRAME ||
	    (f = read_stack_top(stack, 32768, 0, out)) != NOT_A_FRAME ||
	    (f = read_stack_top(stack, 65536, 0, out)) != NOT_A_FRAME)
		return f == NATIVE_FRAME;
#endif
	return false;
}

/* The current task's user registers; false if they cannot be read (a kernel
 * thread, a compat task, or a kernel stack of a layout not listed above). */
static __always_inline bool current_user_regs(struct user_regs *out)
{
	if (!cfg.regs_from_stack && bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_task_pt_regs))
		return read_frame((struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf()), true, out) == NATIVE_FRAME;
	/* Not bpf_get_current_task_btf(): it is 5.11+, and finwait loads on 5.8. */
	return read_stack_top_frame((struct task_struct *)bpf_get_current_task(), out);
}

#endif /* __FINWAIT_REGS_BPF_H */
