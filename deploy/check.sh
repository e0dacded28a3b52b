#!/usr/bin/env bash
# The static checks of deploy/ (make deploy-check), each by the tool made for
# it; no root needed:
#   systemd-analyze verify and security --offline=yes on the unit,
#   promtool check rules and test rules on the alerting rules, check config
#   on the example Prometheus configuration,
#   deploy/check-manifests.py (PrometheusRule == rules file, cross-references),
#   kubernetes-validate --strict on the manifests, at the newest Kubernetes
#   version it knows.
# Usage: deploy/check.sh BINARY VENV   (make deploy-check passes both)
# MAX_EXPOSURE (default 2.5): the highest systemd exposure level allowed.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=$(realpath "${1:?usage: deploy/check.sh BINARY VENV}")
venv=${2:?usage: deploy/check.sh BINARY VENV}
max_exposure=${MAX_EXPOSURE:-2.5}
python=${DEPLOY_PYTHON:-/usr/bin/python3}
[ -x "$bin" ] || { echo "deploy-check: no binary at $bin" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== systemd: deploy/systemd/finwait.service"
# A copy whose ExecStart names the built binary: verify checks that the
# command exists and is executable, security needs it to exist. Nothing else
# in the unit changes.
unit=$work/finwait.service
sed "s|^ExecStart=/usr/local/bin/finwait |ExecStart=$bin |" deploy/systemd/finwait.service > "$unit"
grep -q "^ExecStart=$bin serve " "$unit" || { echo "deploy-check: ExecStart=/usr/local/bin/finwait serve ... not found in the unit" >&2; exit 1; }
# verify exits 0 on unknown keys and bad values (it only warns): any output fails.
if ! out=$(systemd-analyze verify --man=no "$unit" 2>&1) || [ -n "$out" ]; then
  echo "$out" >&2
  echo "deploy-check: systemd-analyze verify complained about the unit" >&2
  exit 1
fi
echo "systemd-analyze verify: ok"
systemd-analyze security --offline=yes --no-pager "$unit" > "$work/security.txt"
grep '✗' "$work/security.txt" | sed 's/  */ /g' || true
overall=$(grep 'Overall exposure level for finwait.service:' "$work/security.txt") || {
  cat "$work/security.txt" >&2; echo "deploy-check: no 'Overall exposure level' line" >&2; exit 1; }
echo "$overall"
level=$(sed -n 's/.*Overall exposure level for finwait.service: \([0-9.]*\).*/\1/p' <<<"$overall")
awk -v l="$level" -v m="$max_exposure" 'BEGIN { exit !(l != "" && l + 0 <= m + 0) }' || {
  echo "deploy-check: exposure level '$level' is above $max_exposure" >&2; exit 1; }

echo "== prometheus: deploy/prometheus/"
promtool check rules deploy/prometheus/finwait-rules.yml
promtool test rules deploy/prometheus/finwait-rules.test.yml
promtool check config deploy/prometheus/prometheus.yml

echo "== kubernetes: deploy/kubernetes/"
"$python" deploy/check-manifests.py deploy/kubernetes/finwait.yaml deploy/prometheus/finwait-rules.yml deploy/seccomp.json
version=$("$venv/bin/python" -c 'import kubernetes_validate.utils as u; print(u.latest_version())')
# PodMonitor and PrometheusRule have no schema there: a warning, exit 0.
"$venv/bin/kubernetes-validate" --strict -k "$version" deploy/kubernetes/*.yaml

echo "deploy-check: all passed"
