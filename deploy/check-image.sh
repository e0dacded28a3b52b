#!/usr/bin/env bash
# Proves the image and deploy/seccomp.json together (make image-check; root,
# podman, runc): `finwait serve`, as the image's user, with every capability
# dropped but the documented ones and only deploy/seccomp.json's calls
# allowed, loads, attaches, counts a connection held in FIN_WAIT2 on the
# host's loopback in its gauge, then its dwell in the histogram once it ends,
# served on /metrics; and the same run without bpf(2) in the profile is
# refused (exit 77), so the profile is what was in force.
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
# machine's hard limits and runc's setrlimit fails. The capabilities are
# the documented ones (docs/serve.md): BPF and PERFMON to load; SYS_ADMIN,
# SYS_PTRACE and DAC_READ_SEARCH for namespaces, owners and cgroups.
run=(podman run --runtime runc --rm --cap-drop=ALL --cap-add=BPF --cap-add=PERFMON
     --cap-add=SYS_ADMIN --cap-add=SYS_PTRACE --cap-add=DAC_READ_SEARCH
     --network=host --pid=host --ulimit nofile=4096:4096 --ulimit nproc=4096:4096
     -v /sys/kernel/btf:/sys/kernel/btf:ro -v /sys/fs/cgroup:/sys/fs/cgroup:ro)

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
listen=127.0.0.1:$(free_port)
mkfifo "$work/ready"
# fd 3 (--preserve-fds=1) is finwait's --ready-fd: 'ready' once attached.
"${run[@]}" --preserve-fds=1 --security-opt "seccomp=$profile" "$image" \
  serve --listen "$listen" --port "$port" --stuck 1s --ready-fd 3 3>"$work/ready" >"$work/out" 2>&1 &
pid=$!
if ! timeout 60 head -c 5 "$work/ready" >/dev/null; then
  cat "$work/out" >&2; echo "image-check: finwait serve did not get ready" >&2; exit 1
fi
# One connection whose client shuts down its side and is held attached in
# FIN_WAIT2 until the gauge and the stuck gauge count it; then the server
# closes (peer_fin) and the histogram must count its dwell. Each wait is
# bounded (30 s).
python3 deploy/check-metrics.py "$port" "$listen"
# SIGTERM through podman's signal proxy: finwait detaches and exits 0.
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=
cat "$work/out"
[ "$status" -eq 0 ] || { echo "image-check: finwait exited $status" >&2; exit 1; }
grep -q 'msg="attached; serving /metrics"' "$work/out" || { echo "image-check: no start line" >&2; exit 1; }
grep -q 'level=warning msg="FIN_WAIT2 stuck' "$work/out" || { echo "image-check: no stuck line" >&2; exit 1; }
grep -q 'msg=detached' "$work/out" || { echo "image-check: no exit line" >&2; exit 1; }
if grep -q 'level=warning msg="without CAP_' "$work/out"; then
  echo "image-check: a documented capability did not reach finwait" >&2; exit 1
fi

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
echo "image-check: $image ($size bytes) served metrics under deploy/seccomp.json with only the documented capabilities"
