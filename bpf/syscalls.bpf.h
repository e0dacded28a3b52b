/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Which code path sent the FIN: the syscall the closer is in at
 * ESTABLISHED -> FIN_WAIT1, and whether it is exiting.
 */
#ifndef __FINWAIT_SYSCALLS_BPF_H
#define __FINWAIT_SYSCALLS_BPF_H

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

/* Decides the code path at ESTABLISHED -> FIN_WAIT1, in the caller's context. */
static __always_inline void classify(struct sock *sk, struct fw_event *e)
{
	__u32 flags = current_task_flags();
	struct user_regs regs;
	bool known = current_user_regs(&regs);
	long nr = known ? regs.nr : -1, how = known ? regs.arg2 : -1;

	e->syscall_nr = nr;
	/* A kernel thread's close is kernel-internal; a user task whose
	 * registers cannot be read is not known to be anything. */
	e->path = known || (flags & PF_KTHREAD) ? FW_PATH_OTHER : FW_PATH_UNKNOWN;
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
	if (flags & PF_EXITING) {
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
		/* Without the registers, sk_shutdown still tells SHUT_WR from the
		 * rest (close and SHUT_RDWR both set SHUTDOWN_MASK). A probe read:
		 * sk is a plain address in the classic tracepoint. */
		if (!known && BPF_CORE_READ_BITFIELD_PROBED(sk, sk_shutdown) == 2 /* SEND_SHUTDOWN */)
			e->path = FW_PATH_SHUTDOWN_WR;
		break;
	}
}

#endif /* __FINWAIT_SYSCALLS_BPF_H */
