# Shared by bench.sh, soak.sh and memory.sh (sourced, not run). Needs root.

# A fresh network namespace $1, loopback up, with ip_local_port_range $2;
# with "tw_reuse" as $3 also tcp_tw_reuse=1, so a churn's TIME_WAIT cannot
# exhaust its ports. The host's sysctls stay untouched.
new_namespace() {
  ip netns del "$1" 2>/dev/null || true
  ip netns add "$1"
  ip -n "$1" link set lo up
  ip netns exec "$1" sh -c "echo '$2' > /proc/sys/net/ipv4/ip_local_port_range"
  if [ "${3:-}" = tw_reuse ]; then
    ip netns exec "$1" sh -c 'echo 1 > /proc/sys/net/ipv4/tcp_tw_reuse'
  fi
}

namespace_inode() { stat -L -c %i "/run/netns/$1"; }

# start_finwait OUT ERR SECONDS ARGS...: runs $finwait with ARGS, stdout to
# OUT and stderr to ERR, and waits up to SECONDS until it says it is ready
# (--ready-fd: attached, and the connections that existed listed).
# Sets finwait_pid; fails if finwait exited or did not get ready in time.
start_finwait() {
  local out=$1 err=$2 limit=$(( $3 * 100 ))
  shift 3
  : >"$out.ready"
  "$finwait" "$@" --ready-fd 3 >"$out" 2>"$err" 3>"$out.ready" &
  finwait_pid=$!
  for _ in $(seq 1 "$limit"); do
    grep -q ready "$out.ready" 2>/dev/null && return 0
    kill -0 "$finwait_pid" 2>/dev/null || return 1
    sleep 0.01
  done
  return 1
}

# status_kb PID KEY: a /proc/PID/status figure in kB (VmRSS, VmHWM).
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

# Runs of PID's BPF program the kernel skipped because it was already running
# on that CPU (tp_btf recursion protection): transitions finwait never saw.
recursion_misses() {
  awk '$1 == "recursion_misses:" { s += $2 } END { print s + 0 }' /proc/"$1"/fdinfo/* 2>/dev/null
}

# The median of numbers separated by spaces.
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# CPU time of PID's threads so far, in microseconds, from schedstat (ns): the
# 10 ms ticks of utime+stime are about 0.3 us per connection of a 5 s churn.
cpu_us() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%d", s / 1000 }'; }

# start_hold WHO NS N BASE_PORT WORK: bench/hold ($hold) with N connections
# in namespace NS, its output in WORK/hold.out; waits until it is ready (up to
# 300 s). Sets hold_pid; exits with WHO's message if it fails.
start_hold() {
  local who=$1 ns=$2 n=$3 base_port=$4 work=$5
  ip netns exec "$ns" "$hold" -n "$n" -p "$base_port" -t 600 >"$work/hold.out" 2>"$work/hold.err" &
  hold_pid=$!
  for _ in $(seq 1 3000); do
    grep -q "^ready" "$work/hold.out" && return 0
    kill -0 "$hold_pid" 2>/dev/null || { echo "$who: hold failed: $(cat "$work/hold.err")" >&2; exit 1; }
    sleep 0.1
  done
  echo "$who: hold did not get ready" >&2
  exit 1
}

# measure NAME COMMAND...: appends "seconds max_rss_kb" to $work/NAME, with
# the command's output in $work/NAME.out and .err.
measure() {
  local name=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" >"$work/$name.out" 2>"$work/$name.err"
  cat "$work/time" >>"$work/$name"
}
