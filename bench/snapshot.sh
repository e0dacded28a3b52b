#!/bin/bash
# What `finwait snapshot` costs with many attached FIN_WAIT2 sockets (part of
# make bench): CONNECTIONS loopback connections held by bench/hold in a
# namespace of their own (clients in FIN_WAIT2, servers in CLOSE_WAIT), then,
# ROUNDS times each, interleaved:
#   finwait snapshot          every namespace, owners and local peers
#   ss -tanp                  that namespace, owners from /proc/PID/fd
#   netstat -tpn              that namespace, owners from /proc/PID/fd
#   ss -tan                   that namespace, sockets only
# Prints the median wall time and peak RSS of each, where finwait found its
# owners (-v), and checks that it listed every connection with its owner and
# peer. Goal (issue 15): no slower than ss -tan, under 30 MB. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

finwait=${FINWAIT:-.build/release/finwait}
hold=${HOLD:-.build/bench/hold}
n=${CONNECTIONS:-50000}
rounds=${ROUNDS:-5}
base_port=61000
ns="finwait-snap-$$"
work=$(mktemp -d /dev/shm/finwait-snap.XXXXXX)
hold_pid=""

cleanup() {
  [ -n "$hold_pid" ] && kill -TERM "$hold_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

command -v netstat >/dev/null || apt-get install -y -qq net-tools >/dev/null 2>&1 || true
new_namespace "$ns" "10000 60999"
start_hold "snapshot bench" "$ns" "$n" "$base_port" "$work"

names="snapshot ss_owners ss"
command -v netstat >/dev/null && names="snapshot ss_owners netstat ss"
for _ in $(seq 1 "$rounds"); do
  measure snapshot "$finwait" snapshot -v
  measure ss_owners ip netns exec "$ns" ss -tanp
  command -v netstat >/dev/null && measure netstat ip netns exec "$ns" netstat -tpn
  measure ss ip netns exec "$ns" ss -tan
done

# Every held connection listed, attached, with its owner and its peer.
held=$(grep -c " hold .* attached .* peer=[0-9]*/hold " "$work/snapshot.out" || true)
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
echo "snapshot bench: $n connections held ($(sed -n 's/^ready //p' "$work/hold.out")); finwait listed $held with owner and peer"
echo "  $(tail -1 "$work/snapshot.err")"
printf '%-44s %10s %12s\n' "command ($rounds rounds, median)" "seconds" "max RSS MB"
for name in $names; do
  case $name in
    snapshot) label="finwait snapshot (every namespace)" ;;
    ss_owners) label="ss -tanp (owners)" ;;
    netstat) label="netstat -tpn (owners)" ;;
    ss) label="ss -tan (sockets only)" ;;
  esac
  secs=$(awk '{ print $1 }' "$work/$name" | median)
  rss=$(awk '{ print $2 }' "$work/$name" | median)
  printf '%-44s %10s %12.1f\n' "$label" "$secs" "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')"
done
[ "$held" -eq "$n" ] || { echo "snapshot bench: FAILED: $held of $n connections listed with owner and peer" >&2; exit 1; }
