#!/usr/bin/env bash
# Proves the image and deploy/seccomp.json together (make image-check; root,
# podman, runc): finwait in trace mode, as the image's user, with every
# capability dropped but BPF and PERFMON and only deploy/seccomp.json's calls
# allowed, loads, attaches and traces a connection through FIN_WAIT2 made on
# loopback; and the same run without bpf(2) in the profile is refused (exit
# 77), so the profile is what was in force.
# Usage: deploy/check-image.sh IMAGE
set -euo pipefail
cd "$(dirname "$0")/.."

image=${1:?usage: deploy/check-image.sh IMAGE}
profile=$PWD/deploy/seccomp.json
work=$(mktemp -d)
pid=
cleanup() {
  [ -z "$pid" ] || kill "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# --runtime runc: crun refuses hybrid cgroup hosts. --ulimit: podman's
# defaults for root (nofile 1048576, nproc 4194304) are above this
# machine's hard limits and runc's setrlimit fails.
run=(podman run --runtime runc --rm --cap-drop=ALL --cap-add=BPF --cap-add=PERFMON
     --network=host --pid=host --ulimit nofile=4096:4096 --ulimit nproc=4096:4096
     -v /sys/kernel/btf:/sys/kernel/btf:ro)

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkfifo "$work/ready"
# fd 3 (--preserve-fds=1) is finwait's --ready-fd: 'ready' once attached.
"${run[@]}" --preserve-fds=1 --security-opt "seccomp=$profile" "$image" \
  trace --port "$port" --duration 60s --ready-fd 3 3>"$work/ready" >"$work/out" 2>&1 &
pid=$!
if ! timeout 60 head -c 5 "$work/ready" >/dev/null; then
  cat "$work/out" >&2; echo "image-check: finwait did not get ready" >&2; exit 1
fi
# One connection whose client shuts down its side (attached FIN_WAIT2) and
# whose server closes 300 ms later (peer_fin).
python3 - "$port" <<'EOF'
import socket, sys, time
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", int(sys.argv[1]))); ls.listen(1)
c = socket.create_connection(ls.getsockname()); s, _ = ls.accept()
c.shutdown(socket.SHUT_WR); time.sleep(0.3); s.close(); time.sleep(0.2); c.close()
EOF
# SIGTERM through podman's signal proxy: finwait detaches, prints its
# summary and exits 0 (--duration is only a backstop).
sleep 0.5
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=
cat "$work/out"
[ "$status" -eq 0 ] || { echo "image-check: finwait exited $status" >&2; exit 1; }
grep -q '^Tracing FIN_WAIT2' "$work/out" || { echo "image-check: no banner" >&2; exit 1; }
grep -Eq "shutdown_wr +127\.0\.0\.1:[0-9]+ > 127\.0\.0\.1:$port .* peer_fin" "$work/out" ||
  { echo "image-check: the connection to port $port was not traced" >&2; exit 1; }
grep -q '^Losses: ' "$work/out" || { echo "image-check: no Losses line" >&2; exit 1; }

# The same without bpf in the profile: the kernel is never asked.
python3 - "$profile" "$work/no-bpf.json" <<'EOF'
import json, sys
p = json.load(open(sys.argv[1]))
for s in p["syscalls"]:
    s["names"] = [n for n in s["names"] if n != "bpf"]
json.dump(p, open(sys.argv[2], "w"))
EOF
status=0
"${run[@]}" --security-opt "seccomp=$work/no-bpf.json" "$image" trace --duration 1s >"$work/out" 2>&1 || status=$?
[ "$status" -eq 77 ] || { cat "$work/out" >&2; echo "image-check: without bpf in the profile finwait exited $status, not 77" >&2; exit 1; }
echo "image-check: without bpf(2) in the profile: exit 77 ($(grep -o 'permission denied[^;]*' "$work/out" | head -1))"

size=$(podman image inspect --format '{{.Size}}' "$image")
echo "image-check: $image ($size bytes) traced under deploy/seccomp.json with only CAP_BPF and CAP_PERFMON"
