#!/bin/bash
# What `finwait doctor` costs with many stuck connections: CONNECTIONS loopback
# connections held by bench/hold in a namespace of their own (clients in
# FIN_WAIT2, servers in CLOSE_WAIT), then, ROUNDS times each, interleaved:
#   finwait doctor --json --netns NS          (everything it reads)
#   ss -tanpi state fin-wait-2 state close-wait (owners and tcp_info, no verdicts)
#   ss -tan state fin-wait-2 state close-wait   (sockets only)
# Prints the median wall time and peak RSS of each. Needs root.
# WITH_TRACE=1: a `finwait trace --stack` runs from before the connections
# are made, so the doctor also reads its map (path, exact dwell, call site).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

finwait=${FINWAIT:-.build/release/finwait}
hold=${HOLD:-.build/bench/hold}
n=${CONNECTIONS:-10000}
rounds=${ROUNDS:-5}
base_port=61000
ns="finwait-doc-$$"
work=$(mktemp -d /dev/shm/finwait-doc.XXXXXX)
hold_pid=""
trace_pid=""
with_trace=${WITH_TRACE:-0}

cleanup() {
  [ -n "$hold_pid" ] && kill -TERM "$hold_pid" 2>/dev/null || true
  [ -n "$trace_pid" ] && kill -INT "$trace_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

new_namespace "$ns" "10000 60999"
inode=$(namespace_inode "$ns")
if [ "$with_trace" = 1 ]; then
  "$finwait" trace --stack --netns "$inode" --ready-fd 3 3>"$work/trace.ready" >/dev/null 2>"$work/trace.err" &
  trace_pid=$!
  for _ in $(seq 1 300); do
    grep -q ready "$work/trace.ready" && break
    kill -0 "$trace_pid" 2>/dev/null || { echo "doctor bench: trace failed: $(cat "$work/trace.err")" >&2; exit 1; }
    sleep 0.1
  done
  grep -q ready "$work/trace.ready" || { echo "doctor bench: the trace did not get ready" >&2; exit 1; }
fi
start_hold "doctor bench" "$ns" "$n" "$base_port" "$work"

for _ in $(seq 1 "$rounds"); do
  measure doctor "$finwait" doctor --json --netns "$inode"
  measure ss_owners ip netns exec "$ns" ss -tanpi state fin-wait-2 state close-wait
  measure ss ip netns exec "$ns" ss -tan state fin-wait-2 state close-wait
done

# The doctor saw every connection: n in FIN_WAIT2, n in CLOSE_WAIT.
seen=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); c=[x for g in d["groups"] for x in g["connections"]]; print(d["fin_wait2"], d["close_wait"], sum(g["count"] for g in d["groups"]), "traced:", sum(1 for x in c if x.get("trace")))' "$work/doctor.out")
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
[ "$with_trace" = 1 ] && echo "doctor bench: with finwait trace --stack running"
echo "doctor bench: $n connections held ($(sed -n 's/^ready //p' "$work/hold.out")); doctor saw fin_wait2 close_wait in-groups: $seen"
printf '%-44s %10s %12s\n' "command ($rounds rounds, median)" "seconds" "max RSS MB"
for name in doctor ss_owners ss; do
  case $name in
    doctor) label="finwait doctor --json --netns NS" ;;
    ss_owners) label="ss -tanpi (owners, tcp_info)" ;;
    ss) label="ss -tan (sockets only)" ;;
  esac
  secs=$(awk '{ print $1 }' "$work/$name" | median)
  rss=$(awk '{ print $2 }' "$work/$name" | median)
  printf '%-44s %10s %12.1f\n' "$label" "$secs" "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')"
done
