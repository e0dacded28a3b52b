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

struct job {
	int netns_fd;
	const char *path; /* NULL: open a netlink socket of protocol */
	int protocol;
	int result;
};

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

static void *in_namespace(void *arg)
{
	struct job *job = arg;

	if (setns(job->netns_fd, CLONE_NEWNET)) {
		job->result = -errno;
		return NULL;
	}
	if (job->path) {
		job->result = open(job->path, O_RDONLY | O_CLOEXEC);
		if (job->result < 0)
			job->result = -errno;
	} else {
		job->result = open_netlink_socket(job->protocol);
	}
	return NULL;
}

static int run_in_namespace(int netns_fd, const char *path, int protocol)
{
	struct job job = {
		.netns_fd = netns_fd, .path = path, .protocol = protocol, .result = -EINVAL,
	};
	pthread_t thread;
	int err;

	err = pthread_create(&thread, NULL, in_namespace, &job);
	if (err)
		return -err;
	pthread_join(thread, NULL);
	return job.result;
}

int fw_netlink_socket(int netns_fd, int protocol)
{
	if (netns_fd < 0)
		return open_netlink_socket(protocol);
	return run_in_namespace(netns_fd, NULL, protocol);
}

int fw_diag_socket(int netns_fd)
{
	return fw_netlink_socket(netns_fd, NETLINK_SOCK_DIAG);
}

int fw_open_in_netns(int netns_fd, const char *path)
{
	int fd;

	/* Our own namespace (-1) needs no thread: setns(-1) would fail. */
	if (netns_fd < 0) {
		fd = open(path, O_RDONLY | O_CLOEXEC);
		return fd < 0 ? -errno : fd;
	}
	return run_in_namespace(netns_fd, path, 0);
}
