#!/usr/bin/env bash
# Memory with many connections held in FIN_WAIT2 at once (part of make bench):
# finwait's RSS idle and after tracking N attached FIN_WAIT2 connections
# (goal: <= 30 MB idle plus <= 200 bytes per tracked connection), the kernel
# maps' sizes, and that all N are accounted for: one stuck record each while
# held, one tracer_exit record each at exit, nothing untracked or dropped.
# Exits 1 if the accounting fails; the memory goals are reported as met or
# missed. Needs root.
#
# STUCK=D also checks one stuck warning per connection (--stuck D) and the
# RSS after them; FINWAIT_ARGS adds flags (e.g. --no-peers). finwait must
# exit within EXIT_TIMEOUT seconds of SIGINT, or it is killed and the run
# fails.
#
#   CONNECTIONS=200000 MAX_TRACKED=262144 STUCK=off EXIT_TIMEOUT=120 FINWAIT_ARGS= bench/memory.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

finwait=${FINWAIT:-.build/release/finwait}
hold=${HOLD:-.build/bench/hold}
n=${CONNECTIONS:-200000}
max_tracked=${MAX_TRACKED:-262144}
# With STUCK=D, D must be long enough that the "tracked" RSS is taken before
# any stuck warning (setting up 200,000 connections takes about 12 s here).
stuck=${STUCK:-off}
exit_timeout=${EXIT_TIMEOUT:-120}
read -r -a extra_args <<<"${FINWAIT_ARGS:-}"
# Listeners above the clients' port range: a client must not take a port a
# later worker listens on.
base_port=61000
ns="finwait-mem-$$"
work=$(mktemp -d /dev/shm/finwait-mem.XXXXXX)
finwait_pid=""
hold_pid=""

cleanup() {
  [ -n "$finwait_pid" ] && kill -INT "$finwait_pid" 2>/dev/null || true
  [ -n "$hold_pid" ] && kill -TERM "$hold_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  [ -n "${MEMORY_KEEP:-}" ] && echo "memory: output kept in $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT

new_namespace "$ns" "10000 60999"
inode=$(namespace_inode "$ns")

count() { grep -c "$1" "$work/finwait.json" || true; }
# Waits up to $1 seconds for the command in the rest of the arguments.
wait_for() {
  local limit=$(( $1 * 10 )); shift
  for _ in $(seq 1 "$limit"); do "$@" && return 0; sleep 0.1; done
  return 1
}

if ! start_finwait "$work/finwait.json" "$work/finwait.err" 20 \
  --json --netns "$inode" --max-tracked "$max_tracked" --stuck "$stuck" ${extra_args[@]+"${extra_args[@]}"}; then
  echo "memory: finwait did not attach: $(cat "$work/finwait.err")" >&2
  exit 1
fi
sleep 2
rss_idle=$(status_kb "$finwait_pid" VmRSS)

# The kernel maps finwait holds, from its descriptors' fdinfo (sizes as the
# kernel accounts them); names from bpftool.
maps=""
for info in /proc/"$finwait_pid"/fdinfo/*; do
  grep -q '^map_id:' "$info" 2>/dev/null || continue
  line=$(awk '{ v[$1] = $2 } END { print v["map_id:"], v["map_type:"], v["key_size:"], v["value_size:"], v["max_entries:"], v["memlock:"] }' "$info")
  read -r id type key value max memlock <<<"$line"
  name=$(bpftool -j map show id "$id" | sed -n 's/.*"name":"\([^"]*\)".*/\1/p')
  case $type in 1) type=hash ;; 2) type=array ;; 9) type=lru_hash ;; 27) type=ringbuf ;; esac
  maps="$maps$(printf '  %-16s %-9s key %3s B  value %4s B  max_entries %8s  memlock %10s B (%.1f MiB)' \
    "$name" "$type" "$key" "$value" "$max" "$memlock" "$(awk -v b="$memlock" 'BEGIN { print b / 1048576 }')")"$'\n'
done

t0=$(date +%s%N)
ip netns exec "$ns" "$hold" -n "$n" -p "$base_port" -t 600 >"$work/hold.out" 2>"$work/hold.err" &
hold_pid=$!
if ! wait_for 300 grep -q "^ready" "$work/hold.out"; then
  echo "memory: hold did not get ready: $(cat "$work/hold.out" "$work/hold.err")" >&2
  exit 1
fi
# Entries are drained every 100 ms; a few seconds let the last ones in.
sleep 5
rss_tracked=$(status_kb "$finwait_pid" VmRSS)
stuck_early=$(count '"type":"stuck"')

hwm_tracked=$(status_kb "$finwait_pid" VmHWM)
# With STUCK: every connection is reported as stuck once, from finwait's own state.
if [ "$stuck" != off ]; then
  all_stuck() { [ "$(count '"type":"stuck"')" -ge "$n" ]; }
  if ! wait_for 300 all_stuck; then
    echo "memory: only $(count '"type":"stuck"') of $n stuck records after 300 s" >&2
  fi
  sleep 2
  rss_stuck=$(status_kb "$finwait_pid" VmRSS)
  hwm_stuck=$(status_kb "$finwait_pid" VmHWM)
fi

misses=$(recursion_misses "$finwait_pid")

t_stop=$(date +%s%N)
kill -INT "$finwait_pid"
exit_status=0
if wait_for "$exit_timeout" sh -c "! kill -0 $finwait_pid 2>/dev/null"; then
  wait "$finwait_pid" || exit_status=$?
else
  echo "memory: finwait did not exit within ${exit_timeout}s of SIGINT (RSS $(status_kb "$finwait_pid" VmRSS) kB, CPU $(awk '{ printf "%.1f s", ($14 + $15) / 100 }' "/proc/$finwait_pid/stat")); killed" >&2
  kill -KILL "$finwait_pid"
  wait "$finwait_pid" || true
  exit_status=timeout
fi
t_exited=$(date +%s%N)
finwait_pid=""
kill -TERM "$hold_pid"
hold_status=0
wait "$hold_pid" || hold_status=$?
hold_pid=""

summary=$(tail -1 "$work/finwait.json")
num() { echo "$summary" | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; }
# Distinct connections (client port, server port) among records of a type.
distinct() {
  { grep "\"type\":\"$1\"" "$work/finwait.json" || true; } | { grep '"path":"shutdown_wr"' || true; } |
    sed -n 's/.*"sport":\([0-9]*\),.*"dport":\([0-9]*\),.*/\1 \2/p' |
    awk -v lo="$base_port" '$2 >= lo && $2 < lo + 1024' | sort -u | wc -l
}
stuck_total=$(count '"type":"stuck"')
stuck_distinct=$(distinct stuck)
exit_total=$(grep -c '"end":"tracer_exit"' "$work/finwait.json" || true)
exit_distinct=$(distinct fin_wait2)

fail=0
check() { if [ "$2" = 1 ]; then printf '  ok    %s\n' "$1"; else printf '  FAIL  %s\n' "$1"; fail=1; fi; }
kib() { awk -v k="$1" 'BEGIN { printf "%.1f MB (%d kB)", k / 1024, k }'; }
bytes_per=$(awk -v a="$rss_idle" -v b="$rss_tracked" -v n="$n" 'BEGIN { printf "%.0f", (b - a) * 1024 / n }')

echo
echo "finwait memory: $n connections held in attached FIN_WAIT2 ($(head -1 "$work/hold.out")), finwait --json --max-tracked $max_tracked --stuck $stuck ${FINWAIT_ARGS:-}"
echo "RSS idle (attached, nothing tracked):  $(kib "$rss_idle")   goal <= 30 MB: $(awk -v k="$rss_idle" 'BEGIN { print (k <= 30 * 1024) ? "met" : "MISSED" }')"
echo "RSS tracking $n (5 s after ready, $stuck_early stuck records yet): $(kib "$rss_tracked") = idle + $bytes_per bytes per connection   goal <= 200: $(awk -v b="$bytes_per" 'BEGIN { print (b <= 200) ? "met" : "MISSED" }'); peak (VmHWM) $(kib "$hwm_tracked")"
if [ "$stuck" != off ]; then
  echo "RSS after the stuck warnings: $(kib "$rss_stuck") = idle + $(awk -v a="$rss_idle" -v b="$rss_stuck" -v n="$n" 'BEGIN { printf "%.0f", (b - a) * 1024 / n }') bytes per connection; peak (VmHWM) $(kib "$hwm_stuck")"
fi
echo "exit with $n in FIN_WAIT2: $(awk -v a="$t_stop" -v b="$t_exited" 'BEGIN { printf "%.2f s", (b - a) / 1e9 }') from SIGINT to exit"
echo "kernel maps:"
printf '%s' "$maps"
check "finwait exited 0 (status $exit_status), hold released its connections (status $hold_status)" \
  "$([ "$exit_status" = 0 ] && [ "$hold_status" = 0 ] && echo 1 || echo 0)"
if [ "$stuck" != off ]; then
  check "stuck records: $stuck_total, distinct connections $stuck_distinct (expected $n each)" \
    "$([ "$stuck_total" = "$n" ] && [ "$stuck_distinct" = "$n" ] && echo 1 || echo 0)"
fi
check "tracer_exit records: $exit_total, distinct connections $exit_distinct (expected $n each)" \
  "$([ "$exit_total" = "$n" ] && [ "$exit_distinct" = "$n" ] && echo 1 || echo 0)"
echo "program runs skipped by the kernel (recursion_misses): $misses; FIN_WAIT2 starts not seen: $(num unseen_start); found through sock_diag: starts $(num recovered_starts), gone FIN_WAIT1 entries $(num stale_entries)"
for key in ringbuf_drops map_full lost_ends undecodable; do
  v=$(num "$key")
  check "$key ${v:-missing} (expected 0)" "$([ "${v:-x}" = 0 ] && echo 1 || echo 0)"
done
v=$(echo "$summary" | sed -n 's/.*"tracer_exit":\([0-9]*\).*/\1/p')
check "summary tracer_exit ${v:-missing} (expected $n)" "$([ "${v:-x}" = "$n" ] && echo 1 || echo 0)"
[ "$fail" = 0 ] || { echo "memory: FAIL"; exit 1; }
