#include <errno.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include "finwait_bpf.h"
#include "finwait.skel.h"

struct fw_tracer {
	struct finwait_bpf *skel;
	struct bpf_program *prog; /* the one loaded */
	struct ring_buffer *rb;
	fw_record_fn fn;
	void *ctx;
};

static int on_sample(void *ctx, void *data, size_t size)
{
	struct fw_tracer *t = ctx;

	if (size < sizeof(struct fw_event) || !t->fn)
		return 0;
	return t->fn(t->ctx, data);
}

static int fail(struct fw_tracer *t, enum fw_stage stage, enum fw_stage *failed, int err)
{
	*failed = stage;
	fw_tracer_stop(t);
	return err < 0 ? err : -err;
}

int fw_probe_tp_btf(void)
{
	/* Only whether the kernel has its own BTF: parsing it here to look for
	 * btf_trace_inet_sock_set_state doubled the parse libbpf's load does
	 * anyway (tens of ms of every start). A kernel with BTF but without
	 * that type refuses the load, and auto falls back from there. */
	if (access("/sys/kernel/btf/vmlinux", R_OK) == 0)
		return 1;
	return errno == ENOENT ? 0 : -errno;
}

int fw_probe_ringbuf(void)
{
	/* Not libbpf_probe_bpf_map_type: libbpf 1.1 answers 0 for a refusal
	 * (EPERM) too, which is not "no ring buffer". A kernel that does not
	 * know the map type (before 5.8) refuses it with EINVAL. */
	int fd = bpf_map_create(BPF_MAP_TYPE_RINGBUF, NULL, 0, 0, getpagesize(), NULL);

	if (fd >= 0) {
		close(fd);
		return 1;
	}
	return errno == EINVAL ? 0 : -errno;
}

int fw_tracer_start(const struct fw_config *cfg, const char *btf_path, enum fw_attach attach,
		    struct fw_tracer **out, enum fw_stage *failed)
{
	struct bpf_object_open_opts open_opts = { .sz = sizeof(open_opts) };
	struct fw_tracer *t;
	int err;

	*out = NULL;
	*failed = FW_STAGE_NONE;
	t = calloc(1, sizeof(*t));
	if (!t)
		return fail(NULL, FW_STAGE_OPEN, failed, -ENOMEM);

	open_opts.btf_custom_path = btf_path;
	t->skel = finwait_bpf__open_opts(&open_opts);
	if (!t->skel)
		return fail(t, FW_STAGE_OPEN, failed, -errno);

	/* Autoload off for the other program: libbpf then neither loads it nor
	 * needs the kernel BTF a tp_btf program resolves its target with. */
	t->prog = attach == FW_ATTACH_TRACEPOINT ? t->skel->progs.inet_sock_set_state_tp
						 : t->skel->progs.inet_sock_set_state;
	if ((err = bpf_program__set_autoload(attach == FW_ATTACH_TRACEPOINT ? t->skel->progs.inet_sock_set_state
									    : t->skel->progs.inet_sock_set_state_tp,
					     false)))
		return fail(t, FW_STAGE_OPEN, failed, err);

	memcpy((void *)&t->skel->rodata->cfg, cfg, sizeof(*cfg));
	if ((err = bpf_map__set_max_entries(t->skel->maps.events, cfg->ringbuf_bytes)) ||
	    (err = bpf_map__set_max_entries(t->skel->maps.socks, cfg->max_tracked)) ||
	    /* FW_STACK_ENTRIES x 256 bytes only when stacks are asked for. */
	    (!cfg->capture_stack && ((err = bpf_map__set_max_entries(t->skel->maps.stacks, 1)) ||
				     (err = bpf_map__set_max_entries(t->skel->maps.stack_notes, 1)))))
		return fail(t, FW_STAGE_OPEN, failed, err);

	if ((err = finwait_bpf__load(t->skel)))
		return fail(t, FW_STAGE_LOAD, failed, err);
	if ((err = finwait_bpf__attach(t->skel)))
		return fail(t, FW_STAGE_ATTACH, failed, err);

	t->rb = ring_buffer__new(bpf_map__fd(t->skel->maps.events), on_sample, t, NULL);
	if (!t->rb)
		return fail(t, FW_STAGE_RINGBUF, failed, -errno);
	*out = t;
	return 0;
}

int fw_tracer_drain(struct fw_tracer *t, int timeout_ms, fw_record_fn fn, void *ctx)
{
	int polled, consumed;

	t->fn = fn;
	t->ctx = ctx;
	polled = ring_buffer__poll(t->rb, timeout_ms);
	if (polled >= 0) {
		consumed = ring_buffer__consume(t->rb);
		polled = consumed < 0 ? consumed : polled + consumed;
	}
	t->fn = NULL;
	t->ctx = NULL;
	return polled;
}

void fw_tracer_counters(const struct fw_tracer *t, struct fw_counters *out)
{
	/* .bss is mmap'ed: a plain read sees the kernel's latest values. */
	*out = t->skel->bss->counters;
}

int fw_tracer_recursion_misses(const struct fw_tracer *t, __u64 *out)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);
	int fd = bpf_program__fd(t->prog);

	/* A transition that fires while the program already runs on this CPU
	 * (softirq interrupting it in process context) is skipped by the kernel:
	 * it can only be counted, from the program's info. The kernel writes
	 * back how much of the struct it knows: before 5.12, not this field. */
	*out = 0;
	if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len))
		return -errno;
	if (len < offsetof(struct bpf_prog_info, recursion_misses) + sizeof(info.recursion_misses))
		return -EOPNOTSUPP;
	*out = info.recursion_misses;
	return 0;
}

int fw_probe_task_pt_regs(void)
{
	return libbpf_probe_bpf_helper(BPF_PROG_TYPE_TRACEPOINT, BPF_FUNC_task_pt_regs, NULL);
}

/* One entry at a time: kernels before 5.6 have no batch lookups. */
static int walk_one_by_one(int fd, fw_record_fn fn, void *ctx)
{
	__u64 key, next, *prev = NULL;
	struct fw_event value;
	int n = 0;

	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, &value))
			continue; /* deleted while we walked */
		n++;
		if (fn(ctx, &value))
			break;
	}
	return n;
}

#define WALK_BATCH 4096

static int walk_batches(int fd, __u64 *keys, struct fw_event *values, fw_record_fn fn, void *ctx)
{
	__u64 token = 0;
	void *in = NULL;
	int n = 0, err;

	for (;;) {
		__u32 count = WALK_BATCH;

		err = bpf_map_lookup_batch(fd, in, &token, keys, values, &count, NULL);
		if (err && errno != ENOENT) {
			if (!in && (errno == EINVAL || errno == ENOTSUP || errno == EOPNOTSUPP))
				return walk_one_by_one(fd, fn, ctx);
			return n ? n : -errno;
		}
		for (__u32 i = 0; i < count; i++) {
			n++;
			if (fn(ctx, &values[i]))
				return n;
		}
		if (err)
			return n; /* ENOENT: that was the last batch */
		in = &token;
	}
}

/* 4,096 entries a syscall instead of two syscalls an entry: the whole map
 * is read at exit and by the audit. */
static int walk(int fd, fw_record_fn fn, void *ctx)
{
	__u64 *keys = malloc(WALK_BATCH * sizeof(*keys));
	struct fw_event *values = malloc(WALK_BATCH * sizeof(*values));
	int n;

	if (!keys || !values) {
		n = walk_one_by_one(fd, fn, ctx);
		goto out;
	}
	n = walk_batches(fd, keys, values, fn, ctx);
out:
	free(keys);
	free(values);
	return n;
}

int fw_tracer_tracked(struct fw_tracer *t, fw_record_fn fn, void *ctx)
{
	return walk(bpf_map__fd(t->skel->maps.socks), fn, ctx);
}

/* The entry e was copied from, if the program has not changed it since. */
static int still(int fd, const struct fw_event *e, struct fw_event *now)
{
	if (bpf_map_lookup_elem(fd, &e->skaddr, now))
		return -errno;
	if (now->ts_ns != e->ts_ns || now->ts_fin_wait1_ns != e->ts_fin_wait1_ns ||
	    now->ts_fin_wait2_ns != e->ts_fin_wait2_ns || now->flags != e->flags)
		return -ESTALE;
	return 0;
}

int fw_tracer_repair_fin_wait2(struct fw_tracer *t, const struct fw_event *e, __u64 ts)
{
	int fd = bpf_map__fd(t->skel->maps.socks), err;
	struct fw_event now;

	if ((err = still(fd, e, &now)))
		return err;
	now.ts_fin_wait2_ns = ts;
	now.ts_ns = ts;
	now.flags |= FW_FLAG_FIN_WAIT2_SEEN | FW_FLAG_FIN_WAIT2_INFERRED;
	return bpf_map_update_elem(fd, &e->skaddr, &now, BPF_EXIST) ? -errno : 0;
}

int fw_tracer_forget(struct fw_tracer *t, const struct fw_event *e)
{
	int fd = bpf_map__fd(t->skel->maps.socks), err;
	struct fw_event now;

	if ((err = still(fd, e, &now)))
		return err;
	return bpf_map_delete_elem(fd, &e->skaddr) ? -errno : 0;
}

int fw_tracer_take_hists(struct fw_tracer *t, fw_hist_fn fn, void *ctx)
{
	int fd = bpf_map__fd(t->skel->maps.hists);
	struct fw_hist_key key, next;
	struct fw_hist hist;
	int n = 0, more;

	/* Keys are collected before any is deleted: deleting while walking
	 * restarts get_next_key from the start. */
	more = bpf_map_get_next_key(fd, NULL, &next) == 0;
	while (more) {
		key = next;
		more = bpf_map_get_next_key(fd, &key, &next) == 0;
		/* Counts added between the lookup and the delete would be lost:
		 * lookup_and_delete takes both at once where the kernel has it (5.14). */
		if (bpf_map_lookup_and_delete_elem(fd, &key, &hist)) {
			if (bpf_map_lookup_elem(fd, &key, &hist))
				continue;
			bpf_map_delete_elem(fd, &key);
		}
		n++;
		fn(ctx, &key, &hist);
	}
	return n;
}

int fw_tracer_stack_note(struct fw_tracer *t, __s16 id, struct fw_stack_note *note)
{
	__u32 key = (__u32)id;

	if (id < 0)
		return -ENOENT;
	return bpf_map_lookup_elem(bpf_map__fd(t->skel->maps.stack_notes), &key, note) ? -errno : 0;
}

int fw_tracer_stack(struct fw_tracer *t, __s16 id, __u64 *ips, int max)
{
	__u64 frames[FW_STACK_DEPTH] = {};
	__u32 key = (__u32)id;
	int n = 0;

	if (id < 0)
		return -ENOENT;
	if (bpf_map_lookup_elem(bpf_map__fd(t->skel->maps.stacks), &key, frames))
		return -errno;
	while (n < FW_STACK_DEPTH && n < max && frames[n]) {
		ips[n] = frames[n];
		n++;
	}
	return n;
}

void fw_tracer_detach(struct fw_tracer *t)
{
	finwait_bpf__detach(t->skel);
}

void fw_tracer_stop(struct fw_tracer *t)
{
	if (!t)
		return;
	ring_buffer__free(t->rb);
	finwait_bpf__destroy(t->skel);
	free(t);
}
