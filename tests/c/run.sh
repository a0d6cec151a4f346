#!/usr/bin/env bash
# Builds every tests/c/*.c against include/kmem.h, links it to
# target/release/libkmem.so, runs it, and fails if any test fails.
# Also checks that include/kmem.h and libkmem.so's exports agree.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
tgt="${CARGO_TARGET_DIR:-$root/target}"
lib="$tgt/release"
[ -f "$lib/libkmem.so" ] || cargo build --release -p libkmem
out="$tgt/c-tests"
mkdir -p "$out"

# The header and the library must agree: every function the header declares is
# exported, and every exported C function is declared.
declared=$(grep -oE '^[a-z_A-Z][a-zA-Z_ *]*[ *]([a-z_][a-z_0-9]*)\(' include/kmem.h \
    | sed -E 's/.*[ *]([a-z_][a-z_0-9]*)\($/\1/' | sort -u)
exported=$(nm -D --defined-only "$lib/libkmem.so" | awk '$2 ~ /^[TW]$/ {print $3}' \
    | grep -E '^(__get_free_pages|get_zeroed_page|free_pages?|kmem_|kmalloc|kzalloc|kcalloc|krealloc|kfree|ksize|kstrdup|kmemdup|mempool_|gen_pool_|mp_)' | sort -u)
missing=$(comm -23 <(echo "$declared") <(echo "$exported"))
undeclared=$(comm -13 <(echo "$declared") <(echo "$exported"))
if [ -n "$missing" ] || [ -n "$undeclared" ]; then
    echo "kmem.h and libkmem.so disagree"
    [ -n "$missing" ] && echo "declared but not exported: $missing"
    [ -n "$undeclared" ] && echo "exported but not declared: $undeclared"
    exit 1
fi
echo "kmem.h: $(echo "$declared" | wc -l) functions, all exported"

fail=0; pass=0
for src in tests/c/*.c; do
    name=$(basename "$src" .c)
    gcc -std=c11 -D_GNU_SOURCE -O1 -g -Wall -Wextra -Werror -pthread -Iinclude -Itests/c \
        "$src" -o "$out/$name" -L"$lib" -lkmem -Wl,-rpath,"$lib"
    if "$out/$name"; then pass=$((pass+1)); else echo "C test $name FAILED"; fail=$((fail+1)); fi
done
echo "C tests: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
