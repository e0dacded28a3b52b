#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/vfs.h>
#include "finwait_cgroup.h"

#define CGROUP2_SUPER_MAGIC 0x63677270

int fw_cgroup2_open(const char *mount)
{
	struct statfs fs;
	int fd;

	if (statfs(mount, &fs))
		return -errno;
	if (fs.f_type != CGROUP2_SUPER_MAGIC)
		return -ENOTSUP;
	fd = open(mount, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* include/linux/exportfs.h: cgroup2 file handles are kernfs node ids. */
#define FILEID_KERNFS 0xfe

int fw_cgroup_path(int mount_fd, uint64_t id, char *buf, size_t len)
{
	struct {
		struct file_handle fh;
		uint64_t id;
	} handle = { .fh = { .handle_bytes = sizeof(uint64_t), .handle_type = FILEID_KERNFS } };
	char link[64], mount[4096];
	ssize_t n, m;
	int fd;

	if (len == 0)
		return -EINVAL;
	memcpy(handle.fh.f_handle, &id, sizeof(id));
	fd = open_by_handle_at(mount_fd, &handle.fh, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", mount_fd);
	m = readlink(link, mount, sizeof(mount) - 1);
	if (m < 0)
		return -errno;
	/* The mount's own path is a prefix; the root cgroup is "/". */
	if (n < m || memcmp(buf, mount, m) != 0)
		return -EXDEV;
	memmove(buf, buf + m, n - m);
	n -= m;
	if (n == 0)
		buf[n++] = '/';
	buf[n] = '\0';
	return (int)n;
}
