#!/usr/bin/env bash
# make bench: finwait's cost on a real loopback workload, as ratios against
# no tracer measured in the same run (interleaved rounds, medians), plus
# drops per run and the time from exec to attached; then memory at 200,000
# connections in FIN_WAIT2 (bench/memory.sh) and, if present, the consumer
# replay (bench/replay.sh). Needs root.
#
#   ROUNDS=5 BENCH_SECONDS=5 THREADS=<cores> bench/bench.sh
#   MODES="none hist serve" THROUGHPUT_ONLY=1 bench/bench.sh   # a subset, no memory or replay
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

finwait=${FINWAIT:-.build/release/finwait}
churn=${CHURN:-.build/bench/churn}
floor=${FLOOR:-.build/bench/floor}
rounds=${ROUNDS:-5}
seconds=${BENCH_SECONDS:-5}
threads=${THREADS:-$(nproc)}
ns="finwait-bench-$$"
work=$(mktemp -d /dev/shm/finwait-bench.XXXXXX)

cleanup() {
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Each run gets a fresh namespace of its own: no TIME_WAIT left over from the
# run before, tw_reuse and a wide port range so TIME_WAIT cannot exhaust
# ports, and the host's sysctls untouched.
fresh_namespace() { new_namespace "$ns" "10000 65000" tw_reuse; }

# floor: an empty program on the same tracepoint, what any tool there pays.
# stack: --stack on churn, whose one call site costs one stack-map entry; the
# frame-pointer walk is per connection.
# serve: the exporter, scraped every second (Prometheus scrapes every 15-60 s).
read -r -a modes <<<"${MODES:-none floor text json hist serve stack}"
declare -A label=([none]="no tracer" [floor]="empty BPF program" [text]="finwait (text)" [json]="finwait --json"
                  [hist]="finwait hist" [serve]="finwait serve" [stack]="finwait --stack")
serve_at=127.0.0.1:19467

# Starts a tracer for $1 and waits until it is attached; sets finwait_pid.
start_tracer() {
  if [ "$1" = floor ]; then
    "$floor" "$floor.bpf.o" >"$work/floor.out" 2>"$work/floor.err" &
    finwait_pid=$!
    for _ in $(seq 1 50); do grep -q attached "$work/floor.out" 2>/dev/null && return 0; sleep 0.1; done
    echo "bench: the empty program did not attach: $(cat "$work/floor.err")" >&2
    exit 1
  fi
  local args=()
  [ "$1" = json ] && args=(--json)
  [ "$1" = hist ] && args=(hist -i 1)
  [ "$1" = stack ] && args=(--stack)
  [ "$1" = serve ] && args=(serve --listen "$serve_at")
  if start_finwait "$work/$1.out" "$work/$1.err" 5 ${args[@]+"${args[@]}"}; then
    [ "$1" = serve ] && { while sleep 1; do curl -sf -o /dev/null "http://$serve_at/metrics" || break; done & scraper=$!; }
    return 0
  fi
  echo "bench: $1 did not attach: $(cat "$work/$1.err")" >&2
  exit 1
}

# Drops (ring buffer + untracked) from the summary the tracer printed.
drops_of() {
  case $1 in
    text|stack) sed -n 's/^Losses: ringbuf_drops \([0-9]*\), map_full \([0-9]*\).*/\1+\2/p' "$work/$1.out" ;;
    json) tail -1 "$work/json.out" | sed -n 's/.*"ringbuf_drops":\([0-9]*\),"map_full":\([0-9]*\).*/\1+\2/p' ;;
    # hist prints the same losses line on stderr.
    hist) sed -n 's/^finwait: Losses: ringbuf_drops \([0-9]*\), map_full \([0-9]*\).*/\1+\2/p' "$work/hist.err" ;;
    # serve: the counters it exported, scraped just before it was stopped.
    serve) awk '/^finwait_ringbuf_drops_total /{r=$2} /^finwait_map_full_total /{m=$2} END{print r "+" m}' "$work/serve.metrics" ;;
  esac
}

declare -A rates drops ratios
for round in $(seq 1 "$rounds"); do
  # The order rotates each round, so drift on a shared machine favours no mode.
  declare -A this=()
  for i in "${!modes[@]}"; do
    mode=${modes[$(( (i + round) % ${#modes[@]} ))]}
    fresh_namespace
    [ "$mode" = none ] || start_tracer "$mode"
    rate=$(ip netns exec "$ns" "$churn" -t "$threads" -d "$seconds" -p 9800 | sed -n 's/.*rate=\([0-9]*\).*/\1/p')
    this[$mode]=$rate
    if [ "$mode" = serve ]; then
      curl -sf "http://$serve_at/metrics" >"$work/serve.metrics"
      kill "$scraper" 2>/dev/null; wait "$scraper" 2>/dev/null || true
    fi
    if [ "$mode" != none ]; then
      kill -INT "$finwait_pid"
      wait "$finwait_pid"
      [ "$mode" = floor ] || drops[$mode]="${drops[$mode]:-} $(drops_of "$mode")"
    fi
    rates[$mode]="${rates[$mode]:-} $rate"
    printf 'round %d/%d %-16s %8s conn/s\n' "$round" "$rounds" "${label[$mode]}" "$rate" >&2
  done
  for mode in "${modes[@]}"; do
    ratios[$mode]="${ratios[$mode]:-} $(awk -v a="${this[$mode]}" -v b="${this[none]}" 'BEGIN { printf "%.3f", a / b }')"
  done
done


# exec -> ready (--ready-fd), 10 runs.
starts=""
for i in $(seq 1 10); do
  err="$work/start-$i.err"
  : >"$err.ready"
  t0=$(date +%s%N)
  "$finwait" --duration 10s --ready-fd 3 >/dev/null 2>"$err" 3>"$err.ready" &
  pid=$!
  until grep -q ready "$err.ready" 2>/dev/null; do sleep 0.001; done
  t1=$(date +%s%N)
  rss=$(status_kb "$pid" VmRSS)
  kill -INT "$pid"
  wait "$pid" || true
  starts="$starts $(( (t1 - t0) / 1000000 ))"
done

echo
echo "finwait benchmark: $(nproc) cores, Linux $(uname -r), churn $threads client + $threads server threads x ${seconds} s, $rounds interleaved rounds"
echo "ratio: median over rounds of (conn/s with the tracer / conn/s without it in the same round)"
printf '%-18s %14s %8s   %s\n' "mode" "median conn/s" "ratio" "drops per run (ring buffer + untracked)"
for mode in "${modes[@]}"; do
  printf '%-18s %14.0f %8s   %s\n' "${label[$mode]}" "$(echo "${rates[$mode]}" | median)" \
    "$(echo "${ratios[$mode]}" | median)" "${drops[$mode]:- -}"
done
echo "exec -> ready: median $(echo "$starts" | median) ms over 10 runs (each:$starts); RSS when attached: ${rss} kB"

[ -z "${THROUGHPUT_ONLY:-}" ] || exit 0

# Memory with 200,000 connections held in FIN_WAIT2 at once (bench/memory.sh).
# A failure there is reported, and the sections after it still run.
echo
HOLD=${HOLD:-.build/bench/hold} FINWAIT=$finwait bench/memory.sh || echo "bench: memory section FAILED (exit $?)"

# The consumer replay benchmark, when present.
if [ -x bench/replay.sh ]; then
  echo
  bench/replay.sh
fi
