#!/usr/bin/env bash
# Compares faultline's engine with the bare event loop of ../shared/bench-reference on the same
# machine, in the same run: for each workload, ROUNDS rounds alternating yardstick and faultline,
# then the medians and the ratio (faultline events/s / yardstick events/s) and peak memory.
# Usage: benches/compare.sh [ROUNDS]   (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
ref_manifest=../shared/bench-reference/Cargo.toml
cargo build --release --quiet --manifest-path "$ref_manifest" --target-dir target/des-reference
cargo bench --no-run --quiet --bench engine 2>/dev/null
bench_bin=$(ls -t target/release/deps/engine-* | grep -v '\.d$' | head -1)
python3 - "$rounds" "$bench_bin" <<'PY'
import json, subprocess, sys, statistics, os
rounds, bench = int(sys.argv[1]), sys.argv[2]
def run(cmd, env=None):
    # /usr/bin/time -f %M reports the peak RSS (KiB) of the child.
    out = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd, capture_output=True, text=True, env=env, check=True)
    rec = json.loads(out.stdout.strip().splitlines()[-1])
    rec["rss_kib"] = int(out.stderr.strip().splitlines()[-1])
    return rec
print(f"{'workload':8} {'yardstick ev/s':>15} {'faultline ev/s':>15} {'ratio':>7} {'ref MiB':>8} {'fl MiB':>8}")
for w in ["mm1", "many", "timers"]:
    ref, fl = [], []
    for _ in range(rounds):
        ref.append(run(["target/des-reference/release/des-reference", w]))
        fl.append(run([bench], env={**os.environ, "FAULTLINE_ONESHOT": w}))
    r = statistics.median(x["events_per_s"] for x in ref)
    f = statistics.median(x["events_per_s"] for x in fl)
    rm = statistics.median(x["rss_kib"] for x in ref) / 1024
    fm = statistics.median(x["rss_kib"] for x in fl) / 1024
    print(f"{w:8} {r:15,.0f} {f:15,.0f} {f/r:7.2f} {rm:8.1f} {fm:8.1f}")
PY
# A million pending timers (no yardstick run: at this size it takes minutes): faultline alone,
# to compare with its own 100,000-actor figure above.
python3 - "$bench_bin" <<'PY'
import json, subprocess, sys, statistics, os
runs = []
for _ in range(3):
    out = subprocess.run(["/usr/bin/time", "-f", "%M", sys.argv[1]], capture_output=True, text=True,
                         env={**os.environ, "FAULTLINE_ONESHOT": "timers1m"}, check=True)
    rec = json.loads(out.stdout.strip().splitlines()[-1])
    rec["rss_kib"] = int(out.stderr.strip().splitlines()[-1])
    runs.append(rec)
f = statistics.median(r["events_per_s"] for r in runs)
m = statistics.median(r["rss_kib"] for r in runs) / 1024
print(f"{'1M pend.':8} {'-':>15} {f:15,.0f} {'-':>7} {'-':>8} {m:8.1f}")
PY
