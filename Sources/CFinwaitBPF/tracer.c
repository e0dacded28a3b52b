#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include "finwait_bpf.h"
#include "finwait.skel.h"

/* A stack announcement, with the closer's /proc/PID/maps as read on its wakeup. */
struct fw_announcement {
	struct fw_stack_announcement taken;
	char *maps; /* NULL: the closer was already gone */
	size_t maps_len;
	struct fw_announcement *next;
};

struct fw_tracer {
	struct finwait_bpf *skel;
	struct bpf_program *prog; /* the one loaded */
	struct ring_buffer *rb;
	fw_record_fn fn;
	void *ctx;

	/* --stack: the thread that reads each announced closer's maps. */
	struct ring_buffer *stack_rb;
	pthread_t reader;
	int reader_running;
	int reader_realtime;
	int stop_fd; /* eventfd that ends the reader */
	pthread_mutex_t lock; /* guards the queue below */
	struct fw_announcement *head, **tail;
};

/* /proc/PID/maps whole, or NULL if the process (or its memory) is gone. */
static char *read_maps(__u32 pid, size_t *len)
{
	char path[32], *buf = NULL, *grown;
	size_t cap = 0, n = 0;
	ssize_t got;
	int fd;

	snprintf(path, sizeof(path), "/proc/%u/maps", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	for (;;) {
		if (cap - n < 4096) {
			if (cap >= FW_MAPS_MAX_BYTES || !(grown = realloc(buf, cap ? cap * 2 : 16384)))
				break;
			buf = grown;
			cap = cap ? cap * 2 : 16384;
		}
		got = read(fd, buf + n, cap - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		n += got;
	}
	close(fd);
	if (!n) {
		free(buf);
		return NULL;
	}
	*len = n;
	return buf;
}

static int on_announcement(void *ctx, void *data, size_t size)
{
	struct fw_tracer *t = ctx;
	struct fw_announcement *a;

	if (size < sizeof(struct fw_stack_announcement) || !(a = calloc(1, sizeof(*a))))
		return 0;
	/* The maps first: the closer may be exiting. */
	a->maps = read_maps(((const struct fw_event *)data)->tgid, &a->maps_len);
	memcpy(&a->taken, data, sizeof(a->taken));
	pthread_mutex_lock(&t->lock);
	*t->tail = a;
	t->tail = &a->next;
	pthread_mutex_unlock(&t->lock);
	return 0;
}

/* Sleeps until the kernel announces a stack (each announcement wakes it) or
 * the tracer stops. */
static void *read_announcements(void *arg)
{
	struct fw_tracer *t = arg;
	struct pollfd fds[2] = {
		{ .fd = ring_buffer__epoll_fd(t->stack_rb), .events = POLLIN },
		{ .fd = t->stop_fd, .events = POLLIN },
	};

	for (;;) {
		if (poll(fds, 2, -1) < 0 && errno != EINTR)
			break;
		if (fds[1].revents)
			break;
		if (fds[0].revents)
			ring_buffer__consume(t->stack_rb);
	}
	return NULL;
}

/* The closer may exit a millisecond after its FIN, and its maps go with its
 * memory. The scheduler may not preempt for a normal-priority thread (lazy
 * or voluntary preemption), so the reader asks for SCHED_FIFO; it runs only
 * when a call site is new. Signals stay with the main thread (its poll must
 * see EINTR). */
static int start_reader(struct fw_tracer *t)
{
	struct sched_param param = { .sched_priority = 1 };
	pthread_attr_t attr;
	sigset_t all, old;
	int err;

	t->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (t->stop_fd < 0)
		return -errno;
	t->tail = &t->head;
	if ((err = pthread_mutex_init(&t->lock, NULL)))
		return -err;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_init(&attr);
	pthread_attr_setinheritsched(&attr, PTHREAD_EXPLICIT_SCHED);
	pthread_attr_setschedpolicy(&attr, SCHED_FIFO);
	pthread_attr_setschedparam(&attr, &param);
	err = pthread_create(&t->reader, &attr, read_announcements, t);
	t->reader_realtime = !err;
	if (err == EPERM)
		err = pthread_create(&t->reader, NULL, read_announcements, t);
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err)
		return -err;
	t->reader_running = 1;
	return 0;
}

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
	t->stop_fd = -1;

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
				     (err = bpf_map__set_max_entries(t->skel->maps.stack_notes, 1)) ||
				     (err = bpf_map__set_max_entries(t->skel->maps.stack_events, getpagesize())))) ||
	    /* The histograms (7.4 MiB, preallocated) only for hist and serve. */
	    (!cfg->hist_mode && (err = bpf_map__set_max_entries(t->skel->maps.hists, 1))))
		return fail(t, FW_STAGE_OPEN, failed, err);

	if ((err = finwait_bpf__load(t->skel)))
		return fail(t, FW_STAGE_LOAD, failed, err);
	if ((err = finwait_bpf__attach(t->skel)))
		return fail(t, FW_STAGE_ATTACH, failed, err);

	t->rb = ring_buffer__new(bpf_map__fd(t->skel->maps.events), on_sample, t, NULL);
	if (!t->rb)
		return fail(t, FW_STAGE_RINGBUF, failed, -errno);
	if (cfg->capture_stack) {
		t->stack_rb = ring_buffer__new(bpf_map__fd(t->skel->maps.stack_events), on_announcement, t, NULL);
		if (!t->stack_rb)
			return fail(t, FW_STAGE_RINGBUF, failed, -errno);
		if ((err = start_reader(t)))
			return fail(t, FW_STAGE_RINGBUF, failed, err);
	}
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

static int read_stack_note(int fd, __s16 id, struct fw_stack_note *note)
{
	__u32 key = (__u32)id;

	if (id < 0 || fd < 0)
		return -ENOENT;
	return bpf_map_lookup_elem(fd, &key, note) ? -errno : 0;
}

static int read_stack(int fd, __s16 id, __u64 *ips, int max)
{
	__u64 frames[FW_STACK_DEPTH] = {};
	__u32 key = (__u32)id;
	int n = 0;

	if (id < 0 || fd < 0)
		return -ENOENT;
	if (bpf_map_lookup_elem(fd, &key, frames))
		return -errno;
	while (n < FW_STACK_DEPTH && n < max && frames[n]) {
		ips[n] = frames[n];
		n++;
	}
	return n;
}

int fw_tracer_stack_note(struct fw_tracer *t, __s16 id, struct fw_stack_note *note)
{
	return read_stack_note(bpf_map__fd(t->skel->maps.stack_notes), id, note);
}

int fw_tracer_stack(struct fw_tracer *t, __s16 id, __u64 *ips, int max)
{
	return read_stack(bpf_map__fd(t->skel->maps.stacks), id, ips, max);
}

void fw_tracer_detach(struct fw_tracer *t)
{
	finwait_bpf__detach(t->skel);
}

int fw_tracer_take_announcements(struct fw_tracer *t, fw_announcement_fn fn, void *ctx)
{
	struct fw_announcement *a, *next;
	int n = 0;

	if (!t->tail) /* no reader was started */
		return 0;
	pthread_mutex_lock(&t->lock);
	a = t->head;
	t->head = NULL;
	t->tail = &t->head;
	pthread_mutex_unlock(&t->lock);
	for (; a; a = next, n++) {
		next = a->next;
		if (fn)
			fn(ctx, &a->taken, a->maps, a->maps_len);
		free(a->maps);
		free(a);
	}
	return n;
}

int fw_tracer_reads_announcements_in_real_time(const struct fw_tracer *t)
{
	return t->reader_running && t->reader_realtime;
}

static void stop_reader(struct fw_tracer *t)
{
	__u64 one = 1;

	if (t->reader_running) {
		/* An eventfd write fails only past 2^64 - 2 writes. */
		(void)!write(t->stop_fd, &one, sizeof(one));
		pthread_join(t->reader, NULL);
		t->reader_running = 0;
	}
	fw_tracer_take_announcements(t, NULL, NULL);
	if (t->stop_fd >= 0)
		close(t->stop_fd);
	ring_buffer__free(t->stack_rb);
}

void fw_tracer_stop(struct fw_tracer *t)
{
	if (!t)
		return;
	stop_reader(t);
	ring_buffer__free(t->rb);
	finwait_bpf__destroy(t->skel);
	free(t);
}

/*
 * Tracers other processes run (`finwait doctor`). What makes one ours is
 * taken from this build's own object, never spelled again here: a program
 * named as ours (the kernel keeps BPF_OBJ_NAME_LEN - 1 characters), and
 * among its maps the per-socket map under our name whose BTF value type is
 * struct fw_event laid out exactly as ours, member by member.
 */
static struct {
	int tried;
	struct finwait_bpf *skel; /* opened, never loaded: names and BTF only */
	const struct btf *btf;
	const struct btf_type *event;
	char prog[BPF_OBJ_NAME_LEN];
	const char *socks, *stacks, *notes;
} ours;

static int know_ours(void)
{
	if (ours.tried)
		return ours.event ? 0 : -ENOENT;
	ours.tried = 1;
	ours.skel = finwait_bpf__open();
	if (!ours.skel)
		return -errno;
	ours.btf = bpf_object__btf(ours.skel->obj);
	__s32 id = ours.btf ? btf__find_by_name_kind(ours.btf, "fw_event", BTF_KIND_STRUCT) : -ENOENT;

	if (id < 0)
		return -ENOENT;
	snprintf(ours.prog, sizeof(ours.prog), "%s", bpf_program__name(ours.skel->progs.inet_sock_set_state));
	ours.socks = bpf_map__name(ours.skel->maps.socks);
	ours.stacks = bpf_map__name(ours.skel->maps.stacks);
	ours.notes = bpf_map__name(ours.skel->maps.stack_notes);
	ours.event = btf__type_by_id(ours.btf, id);
	return 0;
}

/* Whether type in btf has our struct fw_event's size, member names and offsets. */
static int same_layout(const struct btf *btf, const struct btf_type *type)
{
	const struct btf_member *a, *b;

	if (!type || !btf_is_struct(type) || type->size != ours.event->size || btf_vlen(type) != btf_vlen(ours.event))
		return 0;
	a = btf_members(type);
	b = btf_members(ours.event);
	for (int i = 0; i < btf_vlen(type); i++) {
		if (strcmp(btf__name_by_offset(btf, a[i].name_off), btf__name_by_offset(ours.btf, b[i].name_off)) ||
		    btf_member_bit_offset(type, i) != btf_member_bit_offset(ours.event, i))
			return 0;
	}
	return 1;
}

static int map_info(int fd, struct bpf_map_info *info)
{
	__u32 len = sizeof(*info);

	memset(info, 0, sizeof(*info));
	return bpf_obj_get_info_by_fd(fd, info, &len) ? -errno : 0;
}

/* 1: our per-socket map; -1: a per-socket map of another layout (another
 * finwait version); 0: some other map. */
static int event_map(const struct bpf_map_info *info)
{
	struct btf *btf;
	const struct btf_type *type;
	int verdict = -1;

	if (strcmp(info->name, ours.socks) || info->type != BPF_MAP_TYPE_HASH || info->key_size != sizeof(__u64))
		return 0;
	if (!info->btf_id || !(btf = btf__load_from_kernel_by_id(info->btf_id)))
		return -1;
	type = btf__type_by_id(btf, info->btf_value_type_id);
	if (type && btf_is_struct(type) && !strcmp(btf__name_by_offset(btf, type->name_off), "fw_event"))
		verdict = same_layout(btf, type) ? 1 : -1;
	else
		verdict = 0;
	btf__free(btf);
	return verdict;
}

/* Fills r from one program's maps, opened read-only. 1 if the program is a
 * finwait tracer of this layout, -1 of another, 0 if not one. */
static int take_maps(const __u32 *ids, __u32 n, struct fw_running *r)
{
	LIBBPF_OPTS(bpf_get_fd_by_id_opts, opts, .open_flags = BPF_F_RDONLY);
	struct bpf_map_info info;
	int other = 0;

	r->socks_fd = r->stacks_fd = r->notes_fd = -1;
	for (__u32 i = 0; i < n; i++) {
		int fd = bpf_map_get_fd_by_id_opts(ids[i], &opts), *slot = NULL;

		if (fd < 0)
			continue;
		if (!map_info(fd, &info)) {
			int socks = r->socks_fd < 0 ? event_map(&info) : 0;

			if (socks > 0) {
				slot = &r->socks_fd;
				r->socks_id = info.id;
			} else if (socks < 0) {
				other = 1;
			} else if (!strcmp(info.name, ours.stacks) && info.type == BPF_MAP_TYPE_STACK_TRACE) {
				slot = &r->stacks_fd;
			} else if (!strcmp(info.name, ours.notes) && info.value_size == sizeof(struct fw_stack_note)) {
				slot = &r->notes_fd;
			}
		}
		if (slot && *slot < 0)
			*slot = fd;
		else
			close(fd);
	}
	if (r->socks_fd >= 0)
		return 1;
	fw_running_close(r);
	return other ? -1 : 0;
}

static int already(const struct fw_running *out, int n, __u32 socks_id)
{
	for (int i = 0; i < n; i++)
		if (out[i].socks_id == socks_id)
			return 1;
	return 0;
}

/* The ids of the maps program fd uses, if it is named as ours (a second
 * call for the ids, as bpftool makes). */
static int prog_maps(int fd, __u32 *ids, __u32 max)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(fd, &info, &len) || strncmp(info.name, ours.prog, BPF_OBJ_NAME_LEN - 1) ||
	    !info.nr_map_ids)
		return 0;
	__u32 nr = info.nr_map_ids < max ? info.nr_map_ids : max;

	memset(&info, 0, sizeof(info));
	info.nr_map_ids = nr;
	info.map_ids = (__u64)(unsigned long)ids;
	len = sizeof(info);
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return 0;
	return nr < info.nr_map_ids ? nr : info.nr_map_ids;
}

int fw_running_find(struct fw_running *out, int max, int *other_layout)
{
	__u32 id = 0, map_ids[64];
	int n = 0, err;

	*other_layout = 0;
	if ((err = know_ours()))
		return err;
	while (n < max) {
		/* Listing needs CAP_SYS_ADMIN: that refusal ends the search. */
		if (bpf_prog_get_next_id(id, &id))
			return errno == ENOENT || n ? n : -errno;
		int fd = bpf_prog_get_fd_by_id(id);

		if (fd < 0)
			continue; /* unloaded meanwhile, or refused for this one program */
		int maps = prog_maps(fd, map_ids, sizeof(map_ids) / sizeof(map_ids[0]));

		close(fd);
		int found = maps ? take_maps(map_ids, maps, &out[n]) : 0;

		if (found < 0)
			(*other_layout)++;
		if (found > 0) {
			if (already(out, n, out[n].socks_id))
				fw_running_close(&out[n]);
			else
				n++;
		}
	}
	return n;
}

int fw_running_tracked(const struct fw_running *r, fw_record_fn fn, void *ctx)
{
	return walk(r->socks_fd, fn, ctx);
}

int fw_running_stack(const struct fw_running *r, __s16 id, __u64 *ips, int max)
{
	return read_stack(r->stacks_fd, id, ips, max);
}

int fw_running_stack_note(const struct fw_running *r, __s16 id, struct fw_stack_note *note)
{
	return read_stack_note(r->notes_fd, id, note);
}

void fw_running_close(struct fw_running *r)
{
	int *fds[] = { &r->socks_fd, &r->stacks_fd, &r->notes_fd };

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}
