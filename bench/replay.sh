#!/usr/bin/env bash
# Consumer throughput (issue 5): replays a synthetic ring-buffer stream
# through finwait's per-record work (decode, track, summary; then also the
# JSON line) with ordo-one/package-benchmark, pinned to one CPU, and prints
# records/s and mallocs per record against the goals, then the raw table.
# Needs no privileges. The first run builds package-benchmark (a minute or two).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cd "$here/replay"
SWIFT=${SWIFT:-$(command -v swift 2>/dev/null || echo /opt/swift/usr/bin/swift)}
# The last CPU: usually the least busy with interrupts.
CPU=${CPU:-$(($(nproc) - 1))}
BASELINE=replay
GOAL_RATE=5000000

command -v python3 >/dev/null || { echo "replay.sh: python3 is needed to read the results" >&2; exit 1; }
command -v taskset >/dev/null || { echo "replay.sh: taskset (util-linux) is needed to pin to one CPU" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Build and harness chatter goes to a log, shown only when a step fails.
step() {
  "$@" >>"$work/log" 2>&1 || { cat "$work/log" >&2; echo "replay.sh: failed: $*" >&2; exit 1; }
}

# SwiftPM's incremental build can keep code inlined from an older FinwaitCore
# (cross-module optimization): the replay's own modules are recompiled every run.
touch Sources/ReplayStream/*.swift Sources/replay-profile/*.swift Benchmarks/ConsumerReplay/*.swift
step "$SWIFT" build -c release --product ConsumerReplay

# All of the harness, and so the benchmark process, on one CPU.
step taskset -c "$CPU" "$SWIFT" package --allow-writing-to-package-directory benchmark \
  baseline update "$BASELINE" --no-progress
step "$SWIFT" package --allow-writing-to-package-directory benchmark baseline read "$BASELINE" \
  --format jmh --path "$work" --no-progress
: >"$work/log"
step "$SWIFT" package benchmark baseline read "$BASELINE" --no-progress
mv "$work/log" "$work/table"

echo "Consumer replay on CPU $CPU of $(nproc) (load average $(cut -d' ' -f1-3 /proc/loadavg))"
python3 - "$work"/*.jmh.json .benchmarkBaselines/ConsumerReplay/"$BASELINE"/results.json "$GOAL_RATE" <<'EOF'
import json, sys

jmh_path, baseline_path, goal_rate = sys.argv[1], sys.argv[2], int(sys.argv[3])
# Records per sample: each benchmark's scaling factor (one scaled iteration is one record).
baseline = json.load(open(baseline_path))["results"]
scaling = {baseline[i]["name"]: baseline[i + 1][0]["scalingFactor"] for i in range(0, len(baseline), 2)}

# The goals are for the consumer alone; the JSON line is measured for information.
results = sorted(json.load(open(jmh_path)), key=lambda e: "json" in e["benchmark"])
for e in results:
    name = e["benchmark"].split(".", 3)[3]
    per_sample = next(v for k, v in scaling.items() if k.replace(" ", "_") == name)
    rate = e["primaryMetric"]["scorePercentiles"]["50.0"] * per_sample
    mallocs = e["secondaryMetrics"]["Malloc (total)"]["rawData"][0]
    records = len(mallocs) * per_sample
    has_goals = "json" not in name
    print(f"{name.replace('_', ' ')}")
    goal = f" (goal >= {goal_rate / 1e6:g} M/s: {'met' if rate >= goal_rate else 'NOT met'})" if has_goals else ""
    print(f"  {rate / 1e6:.2f} M records/s median on one core{goal}")
    goal = f" (goal 0: {'met' if sum(mallocs) == 0 else 'NOT met'})" if has_goals else ""
    print(f"  {sum(mallocs) / records:.6f} mallocs per record in steady state: "
          f"{int(sum(mallocs))} in {records} records{goal}")
EOF
echo
# The table, without the build lines before it.
sed -n '/^==*$/,$p' "$work/table"
