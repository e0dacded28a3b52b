/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef __FINWAIT_BITS_BPF_H
#define __FINWAIT_BITS_BPF_H

/* floor(log2(v)), 0 for 0 and 1, capped at the last histogram slot. */
static __always_inline __u32 log2_slot(__u64 v)
{
	__u32 r = 0;

	if (v >> 32) { v >>= 32; r += 32; }
	if (v >> 16) { v >>= 16; r += 16; }
	if (v >> 8) { v >>= 8; r += 8; }
	if (v >> 4) { v >>= 4; r += 4; }
	if (v >> 2) { v >>= 2; r += 2; }
	if (v >> 1) { r += 1; }
	return r < FW_HIST_SLOTS ? r : FW_HIST_SLOTS - 1;
}

#endif /* __FINWAIT_BITS_BPF_H */
