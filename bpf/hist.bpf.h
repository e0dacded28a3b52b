/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * `finwait hist`: dwells of connections that end as full sockets, counted
 * in log2 histograms in the kernel instead of sent as records.
 */
#ifndef __FINWAIT_HIST_BPF_H
#define __FINWAIT_HIST_BPF_H

/* Bounded: when full, a new key is counted in counters.hist_full. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FW_HIST_ENTRIES);
	__type(key, struct fw_hist_key);
	__type(value, struct fw_hist);
} hists SEC(".maps");

static __always_inline void hist_record(const struct fw_event *st, __u64 dwell_ns)
{
	struct fw_hist_key k = { .path = st->path };
	static const struct fw_hist zero = {};
	struct fw_hist *h;

	switch (cfg.hist_by) {
	case FW_HIST_BY_COMM: __builtin_memcpy(k.comm, st->comm, sizeof(k.comm)); break;
	case FW_HIST_BY_PID: k.tgid = st->tgid; break;
	case FW_HIST_BY_CGROUP: k.cgroup_id = st->cgroup_id; break;
	case FW_HIST_BY_PORT: k.port = st->sport; break;
	case FW_HIST_BY_STACK: k.stack_id = st->stack_id; break;
	case FW_HIST_BY_SERVE:
		k.end = st->end;
		k.cgroup_id = st->cgroup_id;
		__builtin_memcpy(k.comm, st->comm, sizeof(k.comm));
		break;
	}
	h = bpf_map_lookup_elem(&hists, &k);
	if (!h) {
		if (bpf_map_update_elem(&hists, &k, &zero, BPF_NOEXIST) && !bpf_map_lookup_elem(&hists, &k)) {
			__sync_fetch_and_add(&counters.hist_full, 1);
			return;
		}
		h = bpf_map_lookup_elem(&hists, &k);
		if (!h)
			return;
	}
	__u32 slot = log2_slot(dwell_ns / cfg.hist_unit_ns);

	__sync_fetch_and_add(&h->slots[slot], 1);
	__sync_fetch_and_add(&h->sum_ns[slot], dwell_ns);
}

#endif /* __FINWAIT_HIST_BPF_H */
