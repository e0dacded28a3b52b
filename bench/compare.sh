#!/usr/bin/env bash
# Before and after: two finwait binaries on the same churn, interleaved in
# one run, as ratios to no tracer in the same round (medians over rounds).
# A machine whose throughput drifts between runs cannot fake a difference.
# Needs root.
#
#   A=path/to/old/finwait B=.build/release/finwait ROUNDS=5 bench/compare.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

a=${A:?A=old finwait binary}
b=${B:-.build/release/finwait}
churn=${CHURN:-.build/bench/churn}
rounds=${ROUNDS:-5}
seconds=${BENCH_SECONDS:-5}
threads=${THREADS:-$(nproc)}
ns="finwait-compare-$$"
work=$(mktemp -d /dev/shm/finwait-compare.XXXXXX)
trap 'ip netns del "$ns" 2>/dev/null || true; rm -rf "$work"' EXIT

# Waits for readiness: --ready-fd where the binary has it, else (older
# binaries) the banner on stderr.
start() {
  local bin=$1 name=$2
  shift 2
  if "$bin" --help 2>&1 | grep -q -- --ready-fd; then
    finwait=$bin start_finwait "$work/$name.out" "$work/$name.err" 10 "$@" && return 0
  else
    "$bin" "$@" >"$work/$name.out" 2>"$work/$name.err" &
    finwait_pid=$!
    for _ in $(seq 1 1000); do
      grep -q "Ctrl-C to stop" "$work/$name.err" 2>/dev/null && return 0
      kill -0 "$finwait_pid" 2>/dev/null || break
      sleep 0.01
    done
  fi
  echo "compare: $name did not start: $(cat "$work/$name.err")" >&2
  exit 1
}

modes=(none a-text b-text a-json b-json a-hist b-hist)
declare -A ratios cpu
for round in $(seq 1 "$rounds"); do
  declare -A this=()
  for i in "${!modes[@]}"; do
    mode=${modes[$(( (i + round) % ${#modes[@]} ))]}
    new_namespace "$ns" "10000 65000" tw_reuse
    if [ "$mode" != none ]; then
      bin=$a
      [ "${mode%%-*}" = b ] && bin=$b
      case ${mode#*-} in
        text) start "$bin" "$mode" ;;
        json) start "$bin" "$mode" --json ;;
        hist) start "$bin" "$mode" hist -i 1 ;;
      esac
    fi
    [ "$mode" = none ] || before=$(cpu_us "$finwait_pid")
    this[$mode]=$(ip netns exec "$ns" "$churn" -t "$threads" -d "$seconds" -p 9800 | sed -n 's/.*rate=\([0-9]*\).*/\1/p')
    if [ "$mode" != none ]; then
      # The consumer's own CPU per connection while the churn ran: less noisy
      # than throughput on a shared machine.
      cpu[$mode]="${cpu[$mode]:-} $(awk -v c="$(( $(cpu_us "$finwait_pid") - before ))" -v n="$(( this[$mode] * seconds ))" 'BEGIN { printf "%.2f", c / n }')"
      kill -INT "$finwait_pid"
      wait "$finwait_pid"
    fi
    printf 'round %d/%d %-8s %8s conn/s\n' "$round" "$rounds" "$mode" "${this[$mode]}" >&2
  done
  for mode in "${modes[@]}"; do
    ratios[$mode]="${ratios[$mode]:-} $(awk -v x="${this[$mode]}" -v n="${this[none]}" 'BEGIN { printf "%.3f", x / n }')"
  done
done

echo "A = $a"
echo "B = $b"
echo "churn $threads client + $threads server threads x ${seconds} s, $rounds interleaved rounds; ratio to no tracer in the same round"
printf '%-8s %8s %14s   %s\n' mode ratio "consumer us/conn" "ratios per round"
for mode in "${modes[@]}"; do
  printf '%-8s %8s %14s   %s\n' "$mode" "$(echo "${ratios[$mode]}" | median)" \
    "$( [ "$mode" = none ] && echo - || echo "${cpu[$mode]}" | median)" "${ratios[$mode]}"
done
