#!/usr/bin/env bash
# How deploy/seccomp.json's list was derived, repeatable (root, strace):
# runs finwait's modes under `strace -f -qq -c` while loopback connections go
# through FIN_WAIT2 (attached and orphaned), prints every system call seen,
# and fails if deploy/seccomp.json does not allow one of them.
#   deploy/trace-syscalls.sh [BINARY]          the modes below
#   deploy/trace-syscalls.sh BINARY -- ARGS..  one command: BINARY ARGS
#     (it must stop by itself: --duration, -c, or wrap it in timeout -s TERM)
set -euo pipefail
cd "$(dirname "$0")/.."

bin=$(realpath "${1:-.build/release/finwait}")
shift || true
profile=deploy/seccomp.json
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cat > "$work/load.py" <<'EOF'
# For SECONDS: pairs of loopback connections, one whose client shuts down its
# side (attached FIN_WAIT2), one whose client closes (orphan); peers close later.
import socket, sys, time
end = time.time() + float(sys.argv[1])
ls = socket.socket(); ls.bind(("127.0.0.1", 0)); ls.listen(64)
held = []
while time.time() < end:
    a = socket.create_connection(ls.getsockname()); pa, _ = ls.accept(); a.shutdown(socket.SHUT_WR)
    b = socket.create_connection(ls.getsockname()); pb, _ = ls.accept(); b.close()
    held += [a, pa, pb]
    time.sleep(0.1)
    while len(held) > 12:
        held.pop(0).close()
EOF

n=0
trace() {
  n=$((n + 1))
  (sleep 1; python3 "$work/load.py" 1.5) &
  local load=$!
  env "${env_vars[@]}" strace -f -qq -c -S name -o "$work/$n.txt" "$bin" "$@" >"$work/$n.out" 2>&1 || {
    cat "$work/$n.out" >&2; echo "trace-syscalls: finwait $* failed" >&2; exit 1; }
  wait "$load"
  echo "finwait $*: $(awk 'NF >= 5 && $NF ~ /^[a-z0-9_]+$/ && $NF != "total" && $NF != "syscall"' "$work/$n.txt" | wc -l) calls"
}

env_vars=()
if [ "${1:-}" = "--" ]; then
  shift
  trace "$@"
else
  trace --duration 3s --stuck 1s
  trace trace --json --stack --duration 3s
  trace hist -c 2 --by cgroup
  trace top -c 2 -i 1
  trace snapshot
  # Type=notify and --ready-fd: READY=1 to a datagram socket, 'ready' to fd 3.
  python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1]); s.settimeout(15); s.recv(64)' "$work/notify" &
  listener=$!
  for _ in $(seq 100); do [ -S "$work/notify" ] && break; sleep 0.05; done
  env_vars=(NOTIFY_SOCKET="$work/notify")
  trace --duration 3s --ready-fd 3 3>"$work/ready"
  wait "$listener" || { echo "trace-syscalls: no READY=1 on \$NOTIFY_SOCKET" >&2; exit 1; }
  [ "$(cat "$work/ready")" = ready ] || { echo "trace-syscalls: nothing on --ready-fd" >&2; exit 1; }
fi

# strace -c leaves out calls that never return: exit, exit_group (and
# rt_sigreturn unless a signal was handled).
cat "$work"/*.txt | awk 'NF >= 5 && $NF ~ /^[a-z0-9_]+$/ && $NF != "total" && $NF != "syscall" { print $NF }' |
  sort -u > "$work/seen"
python3 -c 'import json,sys; [print(n) for s in json.load(open(sys.argv[1]))["syscalls"] for n in s["names"]]' "$profile" |
  sort -u > "$work/allowed"
echo "seen ($(wc -l < "$work/seen")): $(tr '\n' ' ' < "$work/seen")"
missing=$(comm -23 "$work/seen" "$work/allowed")
if [ -n "$missing" ]; then
  echo "trace-syscalls: $profile does not allow: $missing" >&2
  exit 1
fi
echo "trace-syscalls: $profile allows every call seen ($(wc -l < "$work/allowed") allowed)"
