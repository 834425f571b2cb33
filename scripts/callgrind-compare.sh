#!/usr/bin/env bash
# Instruction counts of the hot path (bench/hot_path_calls.cpp) at two
# commits, side by side: each is built the same way (g++ -O3 -DNDEBUG, the
# library's sources and the driver of the NEW commit), then run under
# callgrind RUNS times alternately; prints every count and the medians.
#
#   scripts/callgrind-compare.sh OLD_COMMIT [NEW_COMMIT (default: the work tree)] [RUNS (3)]
#
# Counts repeat to ~0.1% on an idle machine; on a loaded one the
# condition-variable paths vary by a few percent (how often a waiter
# sleeps), so compare medians and the per-function lists
# (callgrind_annotate OUT_DIR/cg-*.out).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
old="${1:?usage: scripts/callgrind-compare.sh OLD_COMMIT [NEW_COMMIT] [RUNS]}"
new="${2:-}"
runs="${3:-3}"
command -v valgrind >/dev/null 2>&1 || {
  echo "callgrind-compare: valgrind not found (apt-get install valgrind)" >&2
  exit 2
}
out="$(mktemp -d /tmp/callgrind-compare.XXXXXX)"
driver="$repo/bench/hot_path_calls.cpp"

build() {  # build NAME COMMIT-or-empty
  local name=$1 commit=$2 tree="$out/src-$1" objs=()
  mkdir -p "$tree"
  if [ -n "$commit" ]; then
    git -C "$repo" archive "$commit" include src | tar xf - -C "$tree"
  else
    cp -r "$repo/include" "$repo/src" "$tree/"
  fi
  for f in "$tree"/src/*.cpp; do
    g++ -std=c++20 -O3 -DNDEBUG -I"$tree/include" -c "$f" -o "$f.o"
    objs+=("$f.o")
  done
  g++ -std=c++20 -O3 -DNDEBUG -I"$tree/include" "$driver" "${objs[@]}" -pthread -o "$out/$name"
}

count() {  # count NAME RUN -> instructions
  valgrind --tool=callgrind --callgrind-out-file="$out/cg-$1-$2.out" "$out/$1" 2>&1 >/dev/null |
    sed -n 's/.*I *refs: *//p' | tr -d ','
}

build old "$old"
build new "$new"
declare -a old_counts new_counts
for ((i = 1; i <= runs; i++)); do
  old_counts+=("$(count old "$i")")
  new_counts+=("$(count new "$i")")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
mo=$(median "${old_counts[@]}")
mn=$(median "${new_counts[@]}")
echo "old ($old): ${old_counts[*]}"
echo "new (${new:-work tree}): ${new_counts[*]}"
awk -v o="$mo" -v n="$mn" 'BEGIN { printf "median: old %.2fM, new %.2fM instructions (%+.1f%%)\n", o/1e6, n/1e6, (n-o)*100/o }'
echo "callgrind outputs: $out"
