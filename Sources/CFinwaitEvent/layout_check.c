/* Compiles bpf/finwait.h with the host compiler so its _Static_assert on the
 * record size is checked for the host ABI as well as for the BPF target. */
#include "finwait_event.h"
#include <stddef.h>

_Static_assert(offsetof(struct fw_event, comm) == 112, "comm must be the last 16 bytes");
