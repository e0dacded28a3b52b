// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * fwprove: the arm64 proof, run inside an arm64 guest. Loads the arm64 BPF
 * object through finwait's own C lifecycle (Sources/CFinwaitBPF/tracer.c,
 * built here against an arm64 skeleton), drives one shutdown(SHUT_WR) and
 * one close() connection through FIN_WAIT2 with fwdrive, and checks their
 * ring-buffer records field by field: three times, through tp_btf, through
 * tp_btf with the closer's registers read the way kernels before 5.15 need,
 * and through the classic tracepoint. Then loads `finwait doctor`'s
 * iterator (bpf/sockets.bpf.c, through sockets.c) and finds a listener in it.
 *
 * usage: fwprove FWDRIVE PORT
 * Prints one "PASS name: ..." or "FAIL name: ..." line per check (the host
 * turns them into JUnit XML) and exits 1 if any check failed.
 */
#define _GNU_SOURCE
#include <asm/unistd.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include "finwait_bpf.h"
/* NR_CLOSE, NR_SHUTDOWN: bpf/syscalls.bpf.h's own definitions, taken out
 * with the preprocessor at build time (the Makefile's arm64 rules). */
#include "syscalls_nr.h"

/* What the program compares with is what the arm64 kernel numbers them. */
_Static_assert(NR_CLOSE == __NR_close, "bpf/syscalls.bpf.h: arm64 close number");
_Static_assert(NR_SHUTDOWN == __NR_shutdown, "bpf/syscalls.bpf.h: arm64 shutdown number");

#define HOLD_MS 300
#define TCP_LISTEN_STATE 10 /* as sock_diag numbers it */

static int failures;

static void check(int ok, const char *name, const char *fmt, ...)
{
	va_list ap;

	printf("%s %s: ", ok ? "PASS" : "FAIL", name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (!ok)
		failures++;
}

/* The records of one connection, found by its client port. */
struct seen {
	int port;
	int have_enter, have_leave;
	struct fw_event enter, leave;
};

static struct seen scenarios[2];

static int on_record(void *ctx, const struct fw_event *e)
{
	(void)ctx;
	for (int i = 0; i < 2; i++) {
		struct seen *s = &scenarios[i];

		if (!s->port || e->sport != s->port)
			continue;
		if (e->kind == FW_KIND_ENTER) {
			s->enter = *e;
			s->have_enter = 1;
		} else if (e->kind == FW_KIND_LEAVE) {
			s->leave = *e;
			s->have_leave = 1;
		}
	}
	return 0;
}

/* Runs `fwdrive SCENARIO PORT HOLD_MS` to its end; reads its truth line. */
static int drive(const char *fwdrive, const char *scenario, int port, int *owner_pid, int *client_port)
{
	char cmd[512], line[512] = "";
	const char *p;
	FILE *f;
	int status;

	snprintf(cmd, sizeof(cmd), "%s %s %d %d", fwdrive, scenario, port, HOLD_MS);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	if (!fgets(line, sizeof(line), f))
		line[0] = 0;
	status = pclose(f);
	if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return -1;
	if (!(p = strstr(line, "\"owner_pid\":")) || sscanf(p, "\"owner_pid\":%d", owner_pid) != 1)
		return -1;
	if (!(p = strstr(line, "\"client_port\":")) || sscanf(p, "\"client_port\":%d", client_port) != 1)
		return -1;
	return 0;
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* The fields every record of a connection must carry. */
static void check_record(const char *scenario, const char *kind, const struct fw_event *e,
			 int owner_pid, int path, int syscall, int nr)
{
	char name[96];

	snprintf(name, sizeof(name), "%s.%s.path", scenario, kind);
	check(e->path == path, name, "path %d, want %d", e->path, path);
	snprintf(name, sizeof(name), "%s.%s.syscall", scenario, kind);
	check(e->syscall == syscall && e->syscall_nr == nr, name, "syscall %d nr %d, want %d nr %d",
	      e->syscall, e->syscall_nr, syscall, nr);
	snprintf(name, sizeof(name), "%s.%s.owner", scenario, kind);
	check((e->flags & FW_FLAG_OWNER_KNOWN) && (int)e->tgid == owner_pid &&
		      !strncmp(e->comm, "fwdrive", FW_COMM_LEN),
	      name, "tgid %u comm %.16s flags 0x%x, want %d fwdrive with owner known", e->tgid, e->comm,
	      e->flags, owner_pid);
}

static void check_leave(const char *scenario, const struct seen *s, int end, unsigned long min_dwell_ns)
{
	const struct fw_event *e = &s->leave;
	unsigned long dwell = e->ts_ns - e->ts_fin_wait2_ns;
	char name[96];

	snprintf(name, sizeof(name), "%s.leave.dwell", scenario);
	check((e->flags & FW_FLAG_FIN_WAIT2_SEEN) && e->ts_fin_wait2_ns && e->ts_ns > e->ts_fin_wait2_ns &&
		      dwell >= min_dwell_ns,
	      name, "%lu ns in FIN_WAIT2 (flags 0x%x), want > 0 and >= %lu", dwell, e->flags, min_dwell_ns);
	snprintf(name, sizeof(name), "%s.leave.end", scenario);
	check(e->end == end, name, "end %d, want %d", e->end, end);
}

static int listener_port, listener_seen;

static int on_settings(void *ctx, const struct fw_sock_settings *r)
{
	(void)ctx;
	if (r->state == TCP_LISTEN_STATE && r->sport == listener_port && r->family == AF_INET)
		listener_seen = 1;
	return 0;
}

/* The doctor's iter/tcp object: loads, attaches and reads one listener. */
static void prove_sockets(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct fw_sockets *s;
	enum fw_stage failed;
	int fd = socket(AF_INET, SOCK_STREAM, 0), err, n;

	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 1)) {
		check(0, "sockets.listen", "listener on port %d: %s", port, strerror(errno));
		return;
	}
	listener_port = port;
	err = fw_sockets_open(1u << TCP_LISTEN_STATE, &s, &failed);
	check(err == 0, "sockets.load", "iter/tcp program: %s (stage %d)", err ? strerror(-err) : "loaded and attached",
	      err ? (int)failed : 0);
	if (err) {
		close(fd);
		return;
	}
	n = fw_sockets_read(s, -1, on_settings, NULL);
	check(n > 0 && listener_seen, "sockets.read", "%d record(s), listener on port %d %s", n, port,
	      listener_seen ? "found" : "missing");
	fw_sockets_close(s);
	close(fd);
}

static const char *const stages[] = { "none", "open", "load", "attach", "ringbuf" };

/* `--stack` announcements: what the kernel saw of the closer's files. */
struct announced {
	int count, build_ids;
	char exe[FW_EXE_DEPTH * FW_EXE_NAME_BYTES];
};

static void on_announcement(void *ctx, const struct fw_stack_announcement *a, const char *maps, size_t len)
{
	struct announced *seen = ctx;
	char path[sizeof(seen->exe)] = "";

	(void)maps;
	(void)len;
	seen->count++;
	for (int i = 0; i < FW_STACK_DEPTH && a->frames[i].status != FW_FRAME_EMPTY; i++)
		seen->build_ids += a->frames[i].status == FW_FRAME_BUILD_ID;
	/* Leaf first, an empty step where a mount was crossed. */
	for (int i = (int)a->exe_depth - 1; i >= 0 && a->exe_depth <= FW_EXE_DEPTH; i--) {
		if (!a->exe[i][0])
			continue;
		strncat(path, "/", sizeof(path) - strlen(path) - 1);
		strncat(path, a->exe[i], sizeof(path) - strlen(path) - 1);
	}
	if (!seen->exe[0])
		memcpy(seen->exe, path, sizeof(path));
}

/* Loads the tracer, drives both connections and checks their records.
 * `prefix` starts the check names of each way of running it: `attach`, the
 * program to attach; with `regs_from_stack`, the closer's registers are read
 * where kernels before 5.15 have them, at the top of its kernel stack
 * (bpf/regs.bpf.h), instead of through bpf_task_pt_regs. */
static void prove_tracer(const char *prefix, const char *fwdrive, int port, enum fw_attach attach, int regs_from_stack)
{
	struct fw_config cfg = {
		.hist_unit_ns = 1000,
		.ringbuf_bytes = FW_DEFAULT_RINGBUF_BYTES,
		.max_tracked = FW_DEFAULT_MAX_TRACKED,
		.wakeup_bytes = FW_DEFAULT_WAKEUP_BYTES,
		.regs_from_stack = regs_from_stack,
		/* The stack variant also takes the closers' stacks and files. */
		.capture_stack = regs_from_stack,
	};
	struct fw_tracer *t;
	enum fw_stage failed;
	int err, pids[2], ports[2];
	char name[96], label[64];

	memset(scenarios, 0, sizeof(scenarios));
	err = fw_tracer_start(&cfg, NULL, attach, &t, &failed);
	if (err) {
		char msg[128];

		fw_libbpf_strerror(err, msg, sizeof(msg));
		snprintf(name, sizeof(name), "%s%s", prefix, failed <= FW_STAGE_LOAD ? "load" : "attach");
		check(0, name, "stage %s: %s (%d)", stages[failed], msg, err);
		return;
	}
	snprintf(name, sizeof(name), "%sload", prefix);
	check(1, name, "the verifier passed the program, maps created");
	snprintf(name, sizeof(name), "%sattach", prefix);
	check(1, name, "%s attached, ring buffer open",
	      attach == FW_ATTACH_TP_BTF ? "tp_btf/inet_sock_set_state" : "tracepoint/sock/inet_sock_set_state");

	const char *names[2] = { "shutdown_wr", "close" };

	for (int i = 0; i < 2; i++) {
		int ok = drive(fwdrive, names[i], port + i, &pids[i], &ports[i]) == 0;

		snprintf(name, sizeof(name), "%s%s.drive", prefix, names[i]);
		check(ok, name, "fwdrive pid %d client port %d", ok ? pids[i] : -1, ok ? ports[i] : -1);
		scenarios[i].port = ok ? ports[i] : 0;
	}

	/* Records go without wakeups below FW_DEFAULT_WAKEUP_BYTES: each drain
	 * takes what is queued when its timeout ends. */
	long deadline = now_ms() + 5000;

	while (now_ms() < deadline && !(scenarios[0].have_enter && scenarios[0].have_leave && scenarios[1].have_leave))
		if (fw_tracer_drain(t, 100, on_record, NULL) < 0 && errno != EINTR)
			break;

	struct fw_counters counters;

	fw_tracer_counters(t, &counters);
	snprintf(name, sizeof(name), "%scounters", prefix);
	check(counters.ringbuf_drops == 0 && counters.map_full == 0, name,
	      "ringbuf_drops %llu map_full %llu unseen_start %llu", (unsigned long long)counters.ringbuf_drops,
	      (unsigned long long)counters.map_full, (unsigned long long)counters.unseen_start);

	/* shutdown(SHUT_WR): attached, one ENTER at FIN_WAIT2, one LEAVE when
	 * the peer's FIN ends it after the driver's hold. */
	struct seen *s = &scenarios[0];

	snprintf(label, sizeof(label), "%sshutdown_wr", prefix);
	snprintf(name, sizeof(name), "%s.enter", label);
	check(s->have_enter, name, "ENTER record %s", s->have_enter ? "seen" : "missing");
	if (s->have_enter)
		check_record(label, "enter", &s->enter, pids[0], FW_PATH_SHUTDOWN_WR, FW_SYSCALL_SHUTDOWN,
			     NR_SHUTDOWN);
	snprintf(name, sizeof(name), "%s.leave", label);
	check(s->have_leave, name, "LEAVE record %s", s->have_leave ? "seen" : "missing");
	if (s->have_leave) {
		check_record(label, "leave", &s->leave, pids[0], FW_PATH_SHUTDOWN_WR, FW_SYSCALL_SHUTDOWN,
			     NR_SHUTDOWN);
		check_leave(label, s, FW_END_PEER_FIN, HOLD_MS / 2 * 1000000UL);
	}

	/* close(): orphaned at once, reported in one LEAVE when the kernel hands
	 * it to a timewait socket (tcp_fin_timeout is not above TCP_TIMEWAIT_LEN). */
	s = &scenarios[1];
	snprintf(label, sizeof(label), "%sclose", prefix);
	snprintf(name, sizeof(name), "%s.leave", label);
	check(s->have_leave, name, "LEAVE record %s", s->have_leave ? "seen" : "missing");
	if (s->have_leave) {
		check_record(label, "leave", &s->leave, pids[1], FW_PATH_CLOSE, FW_SYSCALL_CLOSE, NR_CLOSE);
		check_leave(label, s, FW_END_TIMEWAIT_ORPHAN, 1);
	}
	if (cfg.capture_stack) {
		struct announced seen = {};
		const char *want = strrchr(fwdrive, '/'), *leaf;

		fw_tracer_take_announcements(t, on_announcement, &seen);
		want = want ? want + 1 : fwdrive;
		leaf = strrchr(seen.exe, '/');
		snprintf(name, sizeof(name), "%sannouncement", prefix);
		check(seen.count >= 1 && seen.build_ids >= 1 && leaf && strcmp(leaf + 1, want) == 0, name,
		      "%d announcement(s), %d frame(s) with a build id, executable %s", seen.count, seen.build_ids,
		      seen.exe[0] ? seen.exe : "(none)");
	}
	fw_tracer_stop(t);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: fwprove FWDRIVE PORT\n");
		return 2;
	}
	int port = atoi(argv[2]);

	/* libbpf's messages (the verifier log among them) only when it fails. */
	fw_set_libbpf_verbose(getenv("FWPROVE_VERBOSE") != NULL);
	prove_tracer("", argv[1], port, FW_ATTACH_TP_BTF, 0);
	prove_tracer("stack_top.", argv[1], port + 10, FW_ATTACH_TP_BTF, 1);
	/* The classic tracepoint's id is read from tracefs: init mounts it. */
	prove_tracer("tracepoint.", argv[1], port + 20, FW_ATTACH_TRACEPOINT, 0);
	prove_sockets(port + 2);
	printf("fwprove: %d check(s) failed\n", failures);
	return failures ? 1 : 0;
}
