#!/usr/bin/env bash
# make bench: finwait's cost on a real loopback workload, for each close
# pattern of bench/churn (the client closes first, the client shuts down then
# closes, the server closes first with the client as its local peer, and the
# mix of the three), as ratios against no tracer measured in the same round
# (interleaved rounds, medians); with, from the same runs, the BPF program's
# ns per connection (kernel.bpf_stats_enabled) and the tracer's CPU us per
# connection, and drops per run. Then the time from exec to attached, memory
# at 200,000 connections in FIN_WAIT2 (bench/memory.sh), `finwait snapshot`
# with 50,000 held against ss and netstat (bench/snapshot.sh) and, if present,
# the consumer replay (bench/replay.sh). Needs root.
#
#   ROUNDS=5 BENCH_SECONDS=5 THREADS=<cores> bench/bench.sh
#   MODES="none hist serve" PATTERNS=mix THROUGHPUT_ONLY=1 bench/bench.sh   # a subset, no memory or replay
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
stats_before=$(sysctl -n kernel.bpf_stats_enabled)

cleanup() {
  ip netns del "$ns" 2>/dev/null || true
  [ -z "${tracefs_mounted:-}" ] || umount /sys/kernel/tracing 2>/dev/null || true
  sysctl -q kernel.bpf_stats_enabled="$stats_before"
  rm -rf "$work"
}
trap cleanup EXIT
# Every program's run time and count (a few ns per run of its own).
sysctl -q kernel.bpf_stats_enabled=1

# Each run gets a fresh namespace of its own: no TIME_WAIT left over from the
# run before, tw_reuse and a wide port range so TIME_WAIT cannot exhaust
# ports, and the host's sysctls untouched.
fresh_namespace() { new_namespace "$ns" "10000 65000" tw_reuse; }

# floor: an empty program on the same tracepoint, what any tool there pays.
# stack: --stack on churn, whose one call site costs one stack-map entry; the
# frame-pointer walk is per connection.
# serve: the exporter, scraped every second (Prometheus scrapes every 15-60 s).
# bpftrace: what a user runs instead, bench/tcpstates.bt (every transition
# printed, as bcc's tcpstates does), with Debian's bpftrace, installed here.
read -r -a modes <<<"${MODES:-none floor text json hist serve stack bpftrace}"
read -r -a patterns <<<"${PATTERNS:-client_close client_shutdown server_close mix}"
declare -A label=([none]="no tracer" [floor]="empty BPF program" [text]="finwait (text)" [json]="finwait --json"
                  [hist]="finwait hist" [serve]="finwait serve" [stack]="finwait --stack"
                  [bpftrace]="bpftrace tcpstates.bt")
tracefs_mounted=""
if [[ " ${modes[*]} " == *" bpftrace "* ]]; then
  command -v bpftrace >/dev/null ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bpftrace >/dev/null ||
    { echo "bench: bpftrace cannot be installed" >&2; exit 1; }
  # bpftrace finds tracepoints in tracefs, as its users have it mounted.
  if ! mountpoint -q /sys/kernel/tracing; then
    mount -t tracefs tracefs /sys/kernel/tracing
    tracefs_mounted=1
  fi
fi
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
  if [ "$1" = bpftrace ]; then
    bpftrace bench/tcpstates.bt >"$work/bpftrace.out" 2>"$work/bpftrace.err" &
    finwait_pid=$!
    for _ in $(seq 1 300); do grep -q "^Attaching" "$work/bpftrace.out" 2>/dev/null && return 0; sleep 0.1; done
    echo "bench: bpftrace did not attach: $(cat "$work/bpftrace.err")" >&2
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
    # bpftrace counts what its perf buffer lost ("Lost N events").
    bpftrace) awk '/^Lost [0-9]+ events/{l += $2} END{print l + 0}' "$work/bpftrace.out" "$work/bpftrace.err" ;;
  esac
}

# "run_time_ns" summed over the BPF programs process $1 holds.
bpf_ns() {
  local ids
  ids=$(awk '$1 == "prog_id:" { print $2 }' /proc/"$1"/fdinfo/* 2>/dev/null | sort -u)
  local total=0 id
  for id in $ids; do
    total=$(( total + $(bpftool -j prog show id "$id" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("run_time_ns", 0))') ))
  done
  echo "$total"
}

declare -A rates drops ratios kns cpus
for pattern in "${patterns[@]}"; do
  for round in $(seq 1 "$rounds"); do
    # The order rotates each round, so drift on a shared machine favours no mode.
    declare -A this=()
    for i in "${!modes[@]}"; do
      mode=${modes[$(( (i + round) % ${#modes[@]} ))]}
      key="$pattern/$mode"
      fresh_namespace
      [ "$mode" = none ] || start_tracer "$mode"
      if [ "$mode" != none ]; then
        ns0=$(bpf_ns "$finwait_pid")
        cpu0=$(cpu_us "$finwait_pid")
      fi
      line=$(ip netns exec "$ns" "$churn" -t "$threads" -d "$seconds" -p 9800 -e "$pattern")
      rate=$(sed -n 's/.*rate=\([0-9]*\).*/\1/p' <<<"$line")
      conns=$(sed -n 's/.*connections=\([0-9]*\).*/\1/p' <<<"$line")
      this[$mode]=$rate
      if [ "$mode" != none ]; then
        # Per connection the churn completed, from the same run.
        kns[$key]="${kns[$key]:-} $(( ($(bpf_ns "$finwait_pid") - ns0) / (conns > 0 ? conns : 1) ))"
        cpus[$key]="${cpus[$key]:-} $(awk -v c="$(( $(cpu_us "$finwait_pid") - cpu0 ))" -v n="$conns" 'BEGIN { printf "%.2f", n ? c / n : 0 }')"
      fi
      if [ "$mode" = serve ]; then
        curl -sf "http://$serve_at/metrics" >"$work/serve.metrics"
        kill "$scraper" 2>/dev/null; wait "$scraper" 2>/dev/null || true
      fi
      if [ "$mode" != none ]; then
        kill -INT "$finwait_pid"
        status=0
        wait "$finwait_pid" || status=$?
        [ "$status" = 0 ] || { echo "bench: ${label[$mode]} exited with status $status: $(tail -3 "$work/$mode.err")" >&2; exit 1; }
        [ "$mode" = floor ] || drops[$key]="${drops[$key]:-} $(drops_of "$mode")"
      fi
      rates[$key]="${rates[$key]:-} $rate"
      printf '%s round %d/%d %-22s %8s conn/s\n' "$pattern" "$round" "$rounds" "${label[$mode]}" "$rate" >&2
    done
    for mode in "${modes[@]}"; do
      ratios[$pattern/$mode]="${ratios[$pattern/$mode]:-} $(awk -v a="${this[$mode]}" -v b="${this[none]}" 'BEGIN { printf "%.3f", a / b }')"
    done
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
echo "ratio: median over rounds of (conn/s with the tracer / conn/s without it in the same round);"
echo "BPF ns/conn: the tracer's programs' run time (bpf_stats) over the connections the churn completed;"
echo "CPU us/conn: the tracer's own CPU (schedstat) over the same connections; both medians, same runs"
for pattern in "${patterns[@]}"; do
  echo
  echo "close pattern: $pattern"
  printf '%-24s %13s %7s %12s %12s   %s\n' "mode" "median conn/s" "ratio" "BPF ns/conn" "CPU us/conn" "drops per run"
  for mode in "${modes[@]}"; do
    key="$pattern/$mode"
    printf '%-24s %13.0f %7s %12s %12s   %s\n' "${label[$mode]}" "$(echo "${rates[$key]}" | median)" \
      "$(echo "${ratios[$key]}" | median)" "$( [ -n "${kns[$key]:-}" ] && echo "${kns[$key]}" | median || echo -)" \
      "$( [ -n "${cpus[$key]:-}" ] && echo "${cpus[$key]}" | median || echo -)" "${drops[$key]:- -}"
  done
done
echo "exec -> ready: median $(echo "$starts" | median) ms over 10 runs (each:$starts); RSS when attached: ${rss} kB"

[ -z "${THROUGHPUT_ONLY:-}" ] || exit 0

# Memory with 200,000 connections held in FIN_WAIT2 at once (bench/memory.sh).
# A failure there is reported, and the sections after it still run.
echo
HOLD=${HOLD:-.build/bench/hold} FINWAIT=$finwait bench/memory.sh || echo "bench: memory section FAILED (exit $?)"

# finwait snapshot with 50,000 attached FIN_WAIT2 sockets against ss and
# netstat (bench/snapshot.sh).
echo
HOLD=${HOLD:-.build/bench/hold} FINWAIT=$finwait bench/snapshot.sh || echo "bench: snapshot section FAILED (exit $?)"

# The consumer replay benchmark, when present.
if [ -x bench/replay.sh ]; then
  echo
  bench/replay.sh
fi
