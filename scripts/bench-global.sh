#!/usr/bin/env bash
# The #[global_allocator] benchmark of issue 4: the same Rust workloads
# (crates/kmem-kmalloc/benches/global/workloads.rs) built four times, with
# kmem's Kmalloc, the system allocator (glibc), mimalloc (crate `mimalloc`)
# and jemalloc (crate `tikv-jemallocator`) as the global allocator; then a
# markdown table of criterion's medians with ratios to system and mimalloc.
#
# Usage: scripts/bench-global.sh [criterion args...]
#   default criterion args: --warm-up-time 1 --measurement-time 3
# Environment: CARGO_TARGET_DIR (default target/); BENCH_GLOBAL_TABLE_ONLY=1
#   prints the table of the last run without running anything.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
tgt="${CARGO_TARGET_DIR:-$root/target}"
args=("$@")
[ ${#args[@]} -eq 0 ] && args=(--warm-up-time 1 --measurement-time 3)
allocs=(kmem system mimalloc jemalloc)
[ "${BENCH_GLOBAL_TABLE_ONLY:-}" = 1 ] && allocs_run=() || allocs_run=("${allocs[@]}")
for a in "${allocs_run[@]}"; do
    echo "== $a" >&2
    CARGO_TARGET_DIR="$tgt" cargo bench -q -p kmem-kmalloc --bench "global_$a" -- "${args[@]}" >&2
done
python3 - "$tgt/criterion" "${allocs[@]}" <<'PY'
import json, os, sys
root, allocs = sys.argv[1], sys.argv[2:]
groups = ["box_pair", "churn_1000", "btree_1000", "hashmap_500", "vec_growth_100k", "cross_thread_2000"]
def median(g, a):
    # criterion names the directory of the id "g/a" either "g/a" or "g_a"
    for p in (os.path.join(root, g, a), os.path.join(root, f"{g}_{a}")):
        try:
            return json.load(open(os.path.join(p, "new", "estimates.json")))["median"]["point_estimate"]
        except OSError:
            pass
    return None
def fmt(ns):
    for unit, div in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= div:
            return f"{ns / div:.3g} {unit}"
    return f"{ns:.3g} ns"
print("| workload | " + " | ".join(allocs) + " |")
print("|---" * (len(allocs) + 1) + "|")
logs = {a: [] for a in allocs}
for g in groups:
    m = {a: median(g, a) for a in allocs}
    cells = []
    for a in allocs:
        if m[a] is None:
            cells.append("—")
            continue
        s = fmt(m[a])
        if a != "system" and m["system"] and m["mimalloc"]:
            s += f" ({m[a] / m['system']:.2f}x / {m[a] / m['mimalloc']:.2f}x)"
        cells.append(s)
        if m["system"]:
            logs[a].append(m[a] / m["system"])
    print(f"| {g} | " + " | ".join(cells) + " |")
import math
gm = {a: math.exp(sum(map(math.log, v)) / len(v)) for a, v in logs.items() if v}
print("| **geomean (time / system's)** | " + " | ".join(f"{gm.get(a, float('nan')):.2f}x" for a in allocs) + " |")
print()
print("(in brackets: time relative to system / to mimalloc; lower is better)")
PY
