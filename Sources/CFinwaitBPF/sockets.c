/*
 * The iterators of bpf/sockets.bpf.c: `finwait doctor`'s socket settings
 * (iter/tcp, loaded once, read once per network namespace), and the owners of
 * TCP sockets (iter/task_file, loaded for one scan). Each is loaded alone, so
 * a kernel without one's helpers still has the other.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include "finwait_bpf.h"
#include "finwait_diag.h"
#include "finwait_sockets.skel.h"

struct fw_sockets {
	struct finwait_sockets_bpf *skel;
	struct bpf_link *link;
	int cookie;
};

static int open_and_load(struct fw_sockets *s, __u32 states, int cookie, enum fw_stage *failed)
{
	int err;

	s->skel = finwait_sockets_bpf__open();
	if (!s->skel) {
		*failed = FW_STAGE_OPEN;
		return -errno;
	}
	s->skel->rodata->sockets_cfg.states = states;
	s->skel->rodata->sockets_cfg.cookie = cookie;
	bpf_program__set_autoload(s->skel->progs.dump_owners, false);
	if ((err = finwait_sockets_bpf__load(s->skel))) {
		*failed = FW_STAGE_LOAD;
		finwait_sockets_bpf__destroy(s->skel);
		s->skel = NULL;
		return err;
	}
	s->cookie = cookie;
	return 0;
}

int fw_sockets_open(__u32 states, struct fw_sockets **out, enum fw_stage *failed)
{
	struct fw_sockets *s;
	int err;

	*out = NULL;
	*failed = FW_STAGE_NONE;
	s = calloc(1, sizeof(*s));
	if (!s) {
		*failed = FW_STAGE_OPEN;
		return -ENOMEM;
	}
	err = open_and_load(s, states, 1, failed);
	/* Iterators may call bpf_get_socket_cookie since Linux 5.12; before,
	 * the verifier refuses the helper (EINVAL) and the record says 0. */
	if (err == -EINVAL)
		err = open_and_load(s, states, 0, failed);
	if (err) {
		free(s);
		return err;
	}
	*failed = FW_STAGE_NONE;
	s->link = bpf_program__attach_iter(s->skel->progs.dump_settings, NULL);
	if (!s->link) {
		err = -errno;
		*failed = FW_STAGE_ATTACH;
		fw_sockets_close(s);
		return err;
	}
	*out = s;
	return 0;
}

int fw_sockets_have_cookie(const struct fw_sockets *s)
{
	return s->cookie;
}

/* The iterator walks the network namespace of the task that creates it. */
static int create_iter_job(void *ctx)
{
	int fd = bpf_iter_create(*(int *)ctx);

	return fd < 0 ? -errno : fd;
}

static int create_iter(int link_fd, int netns_fd)
{
	return fw_in_netns(netns_fd, create_iter_job, &link_fd);
}

typedef int (*record_fn)(void *ctx, const void *record);

/* Reads an iterator's fixed-size records to the end, or until fn returns
 * non-zero. Returns the number of records or -errno. */
static int read_records(int fd, size_t size, record_fn fn, void *ctx)
{
	/* Whole records; the kernel never splits one, but a short read that did
	 * would be carried over rather than misparsed. */
	char buf[8192] __attribute__((aligned(8)));
	size_t have = 0, at;
	int count = 0;
	ssize_t n;

	for (;;) {
		n = read(fd, buf + have, sizeof(buf) - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		have += n;
		for (at = 0; at + size <= have; at += size) {
			count++;
			if (fn(ctx, buf + at))
				return count;
		}
		memmove(buf, buf + at, have - at);
		have -= at;
	}
	/* A partial record at the end: the layouts disagree. */
	return have ? -EPROTO : count;
}

struct settings_reader {
	fw_settings_fn fn;
	void *ctx;
};

static int each_settings(void *ctx, const void *raw)
{
	struct settings_reader *r = ctx;
	struct fw_sock_settings record;

	memcpy(&record, raw, sizeof(record));
	return r->fn ? r->fn(r->ctx, &record) : 0;
}

int fw_sockets_read(struct fw_sockets *s, int netns_fd, fw_settings_fn fn, void *ctx)
{
	struct settings_reader r = { fn, ctx };
	int fd, count;

	fd = create_iter(bpf_link__fd(s->link), netns_fd);
	if (fd < 0)
		return fd;
	count = read_records(fd, sizeof(struct fw_sock_settings), each_settings, &r);
	close(fd);
	return count;
}

struct owners_reader {
	fw_owner_fn fn;
	void *ctx;
};

static int each_owner(void *ctx, const void *raw)
{
	struct owners_reader *r = ctx;
	struct fw_sock_owner record;

	memcpy(&record, raw, sizeof(record));
	return r->fn(r->ctx, &record);
}

int fw_owners_scan(__u32 states, fw_owner_fn fn, void *ctx, enum fw_stage *failed)
{
	struct finwait_sockets_bpf *skel;
	struct bpf_link *link = NULL;
	struct owners_reader r = { fn, ctx };
	int err, fd;

	*failed = FW_STAGE_OPEN;
	skel = finwait_sockets_bpf__open();
	if (!skel)
		return -errno;
	skel->rodata->sockets_cfg.states = states;
	bpf_program__set_autoload(skel->progs.dump_settings, false);
	*failed = FW_STAGE_LOAD;
	if ((err = finwait_sockets_bpf__load(skel)))
		goto out;
	*failed = FW_STAGE_ATTACH;
	link = bpf_program__attach_iter(skel->progs.dump_owners, NULL);
	if (!link) {
		err = -errno;
		goto out;
	}
	fd = bpf_iter_create(bpf_link__fd(link));
	if (fd < 0) {
		err = -errno;
		goto out;
	}
	*failed = FW_STAGE_NONE;
	err = read_records(fd, sizeof(struct fw_sock_owner), each_owner, &r);
	close(fd);
out:
	bpf_link__destroy(link);
	finwait_sockets_bpf__destroy(skel);
	return err;
}

void fw_sockets_close(struct fw_sockets *s)
{
	if (!s)
		return;
	bpf_link__destroy(s->link);
	finwait_sockets_bpf__destroy(s->skel);
	free(s);
}
