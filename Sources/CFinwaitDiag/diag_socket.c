#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include "finwait_diag.h"

static int open_netlink_socket(int protocol)
{
	struct timeval timeout = { .tv_sec = 2 };
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);

	if (fd < 0)
		return -errno;
	/* A reply that stalls must not stall the tracer. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
	return fd;
}

struct job {
	int netns_fd;
	int (*fn)(void *ctx);
	void *ctx;
	int result;
};

static void *in_namespace(void *arg)
{
	struct job *job = arg;

	job->result = setns(job->netns_fd, CLONE_NEWNET) ? -errno : job->fn(job->ctx);
	return NULL;
}

int fw_in_netns(int netns_fd, int (*fn)(void *ctx), void *ctx)
{
	struct job job = { .netns_fd = netns_fd, .fn = fn, .ctx = ctx, .result = -EINVAL };
	pthread_t thread;
	int err;

	/* Our own namespace (-1) needs no thread: setns(-1) would fail. */
	if (netns_fd < 0)
		return fn(ctx);
	err = pthread_create(&thread, NULL, in_namespace, &job);
	if (err)
		return -err;
	pthread_join(thread, NULL);
	return job.result;
}

static int netlink_socket_job(void *ctx)
{
	return open_netlink_socket(*(int *)ctx);
}

static int open_job(void *ctx)
{
	int fd = open(ctx, O_RDONLY | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

int fw_netlink_socket(int netns_fd, int protocol)
{
	return fw_in_netns(netns_fd, netlink_socket_job, &protocol);
}

int fw_diag_socket(int netns_fd)
{
	return fw_netlink_socket(netns_fd, NETLINK_SOCK_DIAG);
}

int fw_open_in_netns(int netns_fd, const char *path)
{
	return fw_in_netns(netns_fd, open_job, (void *)path);
}
