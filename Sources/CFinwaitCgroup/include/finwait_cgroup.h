/* A cgroup v2 id (bpf_get_current_cgroup_id) back to its path. */
#ifndef FINWAIT_CGROUP_H
#define FINWAIT_CGROUP_H

#include <stddef.h>
#include <stdint.h>

/* Opens `mount` if a cgroup2 file system is mounted there (for
 * fw_cgroup_path); -errno otherwise (-ENOTSUP: not cgroup2, a v1-only host). */
int fw_cgroup2_open(const char *mount);

/* Writes the path of cgroup `id` relative to the cgroup2 mount open as
 * mount_fd ("/kubepods.slice/..."), NUL-terminated, into buf. Opens the
 * cgroup by its kernfs file handle, so it works after the process is gone,
 * as long as the cgroup exists. Returns the length, or -errno (-ESTALE: no
 * such cgroup; -EPERM: needs CAP_DAC_READ_SEARCH). */
int fw_cgroup_path(int mount_fd, uint64_t id, char *buf, size_t len);

#endif
