/* Compiles bpf/finwait.h with the host compiler so its _Static_assert on the
 * record size is checked for the host ABI as well as for the BPF target. */
#include "finwait_event.h"
#include <stddef.h>

_Static_assert(offsetof(struct fw_event, comm) == 112, "comm must be the last 16 bytes");
/* Swift's decoder reads fw_sock_settings at these offsets. */
_Static_assert(offsetof(struct fw_sock_settings, linger2) == 32, "linger2 offset");
_Static_assert(offsetof(struct fw_sock_settings, saddr) == 48, "saddr offset");
_Static_assert(offsetof(struct fw_sock_settings, sport) == 80, "sport offset");
_Static_assert(offsetof(struct fw_sock_settings, state) == 86, "state offset");
_Static_assert(offsetof(struct fw_sock_settings, probes_out) == 89, "probes_out offset");
_Static_assert(offsetof(struct fw_sock_settings, shutdown) == 90, "shutdown offset");
_Static_assert(offsetof(struct fw_sock_settings, netns_keepalive_time) == 92, "netns_keepalive_time offset");
