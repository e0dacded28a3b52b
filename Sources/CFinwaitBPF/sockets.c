/*
 * `finwait doctor`'s socket settings: the iter/tcp object of
 * bpf/sockets.bpf.c, loaded once, read once per network namespace.
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

#define RECORD_SIZE sizeof(struct fw_sock_settings)

int fw_sockets_read(struct fw_sockets *s, int netns_fd, fw_settings_fn fn, void *ctx)
{
	/* A whole number of records; the kernel never splits one, but a short
	 * read that did would be carried over rather than misparsed. */
	char buf[64 * RECORD_SIZE];
	struct fw_sock_settings record;
	size_t have = 0, at;
	int fd, count = 0, err = 0;
	ssize_t n;

	fd = create_iter(bpf_link__fd(s->link), netns_fd);
	if (fd < 0)
		return fd;
	for (;;) {
		n = read(fd, buf + have, sizeof(buf) - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = -errno;
			break;
		}
		if (n == 0)
			break;
		have += n;
		for (at = 0; at + RECORD_SIZE <= have; at += RECORD_SIZE) {
			memcpy(&record, buf + at, RECORD_SIZE);
			count++;
			if (fn && fn(ctx, &record))
				goto out;
		}
		memmove(buf, buf + at, have - at);
		have -= at;
	}
	if (!err && have)
		err = -EPROTO; /* a partial record at the end: the layouts disagree */
out:
	close(fd);
	return err ? err : count;
}

void fw_sockets_close(struct fw_sockets *s)
{
	if (!s)
		return;
	bpf_link__destroy(s->link);
	finwait_sockets_bpf__destroy(s->skel);
	free(s);
}
