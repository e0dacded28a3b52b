#!/usr/bin/env bash
# The BPF program's own cost, in ns per run, from the kernel's bpf_stats
# (run_time_ns / run_cnt of the loaded program) over a loopback churn, for
# each LABEL=BINARY[:ARGS] given; rounds interleaved, medians. Needs root;
# bpf_stats is switched on for the run and restored after.
#
#   sudo ROUNDS=5 BENCH_SECONDS=5 bench/prog-ns.sh \
#     "before=/tmp/finwait-old" "tp_btf=.build/release/finwait:--attach tp_btf" \
#     "tracepoint=.build/release/finwait:--attach tracepoint"
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

churn=${CHURN:-.build/bench/churn}
rounds=${ROUNDS:-5}
seconds=${BENCH_SECONDS:-5}
threads=${THREADS:-$(nproc)}
ns="finwait-progns-$$"
work=$(mktemp -d /dev/shm/finwait-progns.XXXXXX)
stats_before=$(sysctl -n kernel.bpf_stats_enabled)

cleanup() {
  ip netns del "$ns" 2>/dev/null || true
  sysctl -q kernel.bpf_stats_enabled="$stats_before"
  rm -rf "$work"
}
trap cleanup EXIT
sysctl -q kernel.bpf_stats_enabled=1

# "run_time_ns run_cnt" of program $1.
prog_stats() {
  bpftool -j prog show id "$1" |
    python3 -c 'import json, sys; p = json.load(sys.stdin); print(p.get("run_time_ns", 0), p.get("run_cnt", 0))'
}

declare -A samples
for round in $(seq 1 "$rounds"); do
  for spec in "$@"; do
    label=${spec%%=*} rest=${spec#*=}
    finwait=${rest%%:*} args=""
    [ "$rest" != "$finwait" ] && args=${rest#*:}
    new_namespace "$ns" "10000 65000" tw_reuse
    # shellcheck disable=SC2086
    start_finwait "$work/out" "$work/err" 5 --json $args || { echo "prog-ns: $label did not attach: $(cat "$work/err")" >&2; exit 1; }
    id=$(awk '$1 == "prog_id:" { print $2 }' /proc/"$finwait_pid"/fdinfo/* 2>/dev/null | sort -u | head -1)
    read -r t0 c0 < <(prog_stats "$id")
    ip netns exec "$ns" "$churn" -t "$threads" -d "$seconds" >"$work/churn"
    read -r t1 c1 < <(prog_stats "$id")
    kill -INT "$finwait_pid"
    wait "$finwait_pid" || true
    per_run=$(( c1 > c0 ? (t1 - t0) / (c1 - c0) : 0 ))
    samples[$label]+=" $per_run"
    echo "round $round $label: $(( c1 - c0 )) runs, $per_run ns/run; $(tail -1 "$work/churn")"
  done
done
echo
for spec in "$@"; do
  label=${spec%%=*}
  echo "$label: median $(echo "${samples[$label]}" | median) ns/run of$(echo "${samples[$label]}" | tr ' ' '\n' | sort -n | tr '\n' ' ')"
done
