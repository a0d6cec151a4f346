#!/usr/bin/env bash
# The malloc benchmark: C workloads of the shapes allocator benchmarks use, each
# run under glibc's malloc (no preload), jemalloc, mimalloc and kmem's
# libkmem_preload.so (when there is one), several times, interleaved. Prints a
# markdown table (median wall time and peak RSS, with ratios to glibc and to
# mimalloc, and the geometric mean of the time ratios) for docs/BENCHMARKS.md.
#
# Usage: scripts/bench-preload.sh [-r REPS] [-t THREADS] [-w "larson churn ..."]
#   -r REPS      repetitions of each (workload, allocator) pair (default 5)
#   -t THREADS   threads per workload (default: nproc)
#   -w LIST      workloads to run (default: larson xmalloc churn realloc mixed)
# Environment:
#   KMEM_PRELOAD   kmem's library (default <target>/release/libkmem_preload.so,
#                  built with `cargo build --release -p kmem-preload` when the
#                  package exists); set KMEM_PRELOAD= (empty) to leave kmem out
#   JEMALLOC, MIMALLOC  the peers' libraries (default: Debian's libjemalloc2 and
#                  libmimalloc2.0: apt-get install libjemalloc2 libmimalloc2.0)
#   CARGO_TARGET_DIR    where programs and results go (default target/)
# Each run's checksum line must equal glibc's: a wrong result is reported as
# FAILED, not timed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
tgt="${CARGO_TARGET_DIR:-$root/target}"
src="$root/crates/kmem-preload-tests/workloads"
out="$tgt/bench-preload"
mkdir -p "$out"

reps=5
threads=$(nproc)
workloads="larson xmalloc churn realloc mixed"
while getopts "r:t:w:h" opt; do
    case $opt in
        r) reps=$OPTARG ;;
        t) threads=$OPTARG ;;
        w) workloads=$OPTARG ;;
        *) sed -n '2,20p' "$0"; exit 2 ;;
    esac
done

# --- the allocators -----------------------------------------------------------
libdir=/usr/lib/x86_64-linux-gnu
names=(glibc)
libs=("")
add() { # name path
    if [ -n "$2" ] && [ -f "$2" ]; then
        names+=("$1"); libs+=("$2")
    else
        echo "note: $1 not found${2:+ at $2}; left out" >&2
    fi
}
add jemalloc "${JEMALLOC:-$libdir/libjemalloc.so.2}"
add mimalloc "${MIMALLOC:-$libdir/libmimalloc.so.2}"
if [ -z "${KMEM_PRELOAD+set}" ]; then
    KMEM_PRELOAD="$tgt/release/libkmem_preload.so"
    if [ -f crates/kmem-preload/Cargo.toml ]; then
        echo "building kmem's preload: cargo build --release -p kmem-preload" >&2
        CARGO_TARGET_DIR="$tgt" cargo build --release -q -p kmem-preload
    fi
fi
# A stale or foreign library under kmem's name would be timed as kmem.
if [ -n "$KMEM_PRELOAD" ] && [ -f "$KMEM_PRELOAD" ] &&
    ! nm -D --defined-only "$KMEM_PRELOAD" | grep -qw kmem_stats_print; then
    echo "note: $KMEM_PRELOAD does not export kmem_stats_print: not kmem's preload; left out" >&2
    KMEM_PRELOAD=""
fi
add kmem "$KMEM_PRELOAD"

# --- the programs -----------------------------------------------------------------
cflags=(-std=c11 -D_GNU_SOURCE -O2 -pthread -Wall -Wextra -Werror -I"$src")
gcc "${cflags[@]}" "$src/runstat.c" -o "$out/runstat"
for w in $workloads; do
    gcc "${cflags[@]}" "$src/$w.c" -o "$out/$w"
done

# --- the runs: rep-major, so noise spreads over every allocator alike ---------------
results="$out/results.txt"
: >"$results"
declare -A want
total=$(( reps * $(echo $workloads | wc -w) * ${#names[@]} ))
n=0
for ((r = 1; r <= reps; r++)); do
    for w in $workloads; do
        # Rotate the allocators' order each repetition.
        for ((k = 0; k < ${#names[@]}; k++)); do
            i=$(( (k + r) % ${#names[@]} ))
            name=${names[$i]}
            n=$((n + 1))
            if [ -t 2 ]; then printf '\r[%d/%d] %-8s %-9s' "$n" "$total" "$w" "$name" >&2; fi
            read -r secs kib code cpu < <("$out/runstat" "$out/$w.$name.out" "${libs[$i]}" "$out/$w" "$threads")
            sum=$(grep -v '^# ' "$out/$w.$name.out" | head -1)
            if [ "$name" = glibc ] && [ -z "${want[$w]:-}" ]; then want[$w]=$sum; fi
            ok=ok
            if [ "$code" != 0 ]; then ok="FAILED(exit $code)"; fi
            echo "$w $name $r $secs $kib $cpu $ok" >>"$results"
            echo "$w $name $sum" >>"$out/sums.txt"
        done
    done
done
if [ -t 2 ]; then printf '\r%-40s\r' "" >&2; fi
# Checksums: every allocator must print what glibc printed.
for w in $workloads; do
    for name in "${names[@]}"; do
        if grep "^$w $name " "$out/sums.txt" | cut -d' ' -f3- | grep -qvxF -- "${want[$w]}"; then
            sed -i "s/^$w $name \(.*\) ok\$/$w $name \1 FAILED(checksum)/" "$results"
        fi
    done
done
rm -f "$out/sums.txt"

# --- the table ------------------------------------------------------------------------
echo "<!-- scripts/bench-preload.sh -r $reps -t $threads; $(date -u +%Y-%m-%d); $(nproc) cores; $(ldd --version | head -1 | sed 's/^ldd //') -->"
echo
awk -v names="${names[*]}" -v workloads="$workloads" -v reps="$reps" -v threads="$threads" '
function median(key,   n, i, j, t, a) {
    n = split(vals[key], a, " ")
    for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function fmt_ratio(x) { return sprintf("%.2fx", x) }
{
    vals[$1 SUBSEP $2 SUBSEP "t"] = vals[$1 SUBSEP $2 SUBSEP "t"] " " $4
    vals[$1 SUBSEP $2 SUBSEP "m"] = vals[$1 SUBSEP $2 SUBSEP "m"] " " $5
    vals[$1 SUBSEP $2 SUBSEP "c"] = vals[$1 SUBSEP $2 SUBSEP "c"] " " $6
    if ($7 != "ok") failed[$1 SUBSEP $2] = $7
}
END {
    na = split(names, A, " "); nw = split(workloads, W, " ")
    hasmi = 0; for (a = 1; a <= na; a++) if (A[a] == "mimalloc") hasmi = 1
    for (w = 1; w <= nw; w++) for (a = 1; a <= na; a++) {
        T[W[w], A[a]] = median(W[w] SUBSEP A[a] SUBSEP "t")
        M[W[w], A[a]] = median(W[w] SUBSEP A[a] SUBSEP "m")
        C[W[w], A[a]] = median(W[w] SUBSEP A[a] SUBSEP "c")
    }
    for (pass = 1; pass <= 3; pass++) {
        what = pass == 1 ? "Wall time" : pass == 2 ? "Peak RSS" : "CPU time (user + system, all threads; steadier than wall time when threads wait for each other on a small machine)"
        printf "%s: median of %d runs, %d threads; in brackets the ratio to glibc / to mimalloc (lower is better).\n\n", what, reps, threads
        line = "| workload |"; sep = "|---|"
        for (a = 1; a <= na; a++) { line = line " " A[a] " |"; sep = sep "---|" }
        print line; print sep
        for (w = 1; w <= nw; w++) {
            line = "| " W[w] " |"
            for (a = 1; a <= na; a++) {
                x = pass == 1 ? T[W[w], A[a]] : pass == 2 ? M[W[w], A[a]] : C[W[w], A[a]]
                g = pass == 1 ? T[W[w], "glibc"] : pass == 2 ? M[W[w], "glibc"] : C[W[w], "glibc"]
                mi = hasmi ? (pass == 1 ? T[W[w], "mimalloc"] : pass == 2 ? M[W[w], "mimalloc"] : C[W[w], "mimalloc"]) : 0
                cell = pass == 2 ? sprintf("%.1f MiB", x / 1024) : sprintf("%.3f s", x)
                if (A[a] != "glibc") {
                    cell = cell " (" fmt_ratio(x / g)
                    if (hasmi && A[a] != "mimalloc") cell = cell " / " fmt_ratio(x / mi)
                    cell = cell ")"
                }
                if ((W[w], A[a]) in failed) cell = cell " **" failed[W[w], A[a]] "**"
                line = line " " cell " |"
            }
            print line
        }
        # Geometric means of the ratios.
        line = "| **geomean** |"
        for (a = 1; a <= na; a++) {
            sg = 0; sm = 0
            for (w = 1; w <= nw; w++) {
                x = pass == 1 ? T[W[w], A[a]] : pass == 2 ? M[W[w], A[a]] : C[W[w], A[a]]
                g = pass == 1 ? T[W[w], "glibc"] : pass == 2 ? M[W[w], "glibc"] : C[W[w], "glibc"]
                mi = hasmi ? (pass == 1 ? T[W[w], "mimalloc"] : pass == 2 ? M[W[w], "mimalloc"] : C[W[w], "mimalloc"]) : 1
                sg += log(x / g); sm += log(x / mi)
            }
            if (A[a] == "glibc") cell = "1.00x"
            else {
                cell = fmt_ratio(exp(sg / nw))
                if (hasmi && A[a] != "mimalloc") cell = cell " / " fmt_ratio(exp(sm / nw))
            }
            gm[pass, A[a], "g"] = exp(sg / nw); gm[pass, A[a], "m"] = exp(sm / nw)
            line = line " " cell " |"
        }
        print line
        print ""
    }
    for (a = 1; a <= na; a++) {
        if (A[a] == "glibc") continue
        printf "- %s: %.2fx the speed of glibc (geomean time)", A[a], 1 / gm[1, A[a], "g"]
        if (hasmi && A[a] != "mimalloc") printf "; time %.2fx mimalloc'\''s; peak RSS %.2fx mimalloc'\''s; CPU time %.2fx glibc'\''s, %.2fx mimalloc'\''s", gm[1, A[a], "m"], gm[2, A[a], "m"], gm[3, A[a], "g"], gm[3, A[a], "m"]
        if (A[a] == "kmem" && hasmi) {
            printf " — issue 4 targets (>= 1.5x glibc, <= 1.10x mimalloc time, <= 1.2x mimalloc RSS): %s",
                (1 / gm[1, "kmem", "g"] >= 1.5 && gm[1, "kmem", "m"] <= 1.10 && gm[2, "kmem", "m"] <= 1.2) ? "met" : "not met"
        }
        printf "\n"
    }
    nf = 0; for (k in failed) nf++
    if (nf) printf "\n**%d (workload, allocator) pairs FAILED** (see above); their numbers are not comparable.\n", nf
}' "$results"
