#!/usr/bin/env bash
# Runs two builds' benchmarks alternately in one session and prints, per
# scenario, batch_serving's items/s over naive's for each (the median of the
# rounds, each round itself a median of --runs), so a change can be judged by
# ratios measured side by side on the same noisy machine.
#
#   scripts/bench-compare.sh BEFORE_BENCH AFTER_BENCH [ROUNDS] [-- bench options]
#   # e.g. after building the old commit in /tmp/old:
#   scripts/bench-compare.sh /tmp/old/build/bench/batch_serving_bench \
#     build/bench/batch_serving_bench 3 -- --runs 3
#
# Raw JSON lines are kept in $BENCH_COMPARE_DIR (default: a new temp dir).
set -euo pipefail

if [ "$#" -lt 2 ]; then
  sed -n '2,12p' "$0" >&2
  exit 2
fi
before=$1
after=$2
shift 2
rounds=3
if [ "$#" -gt 0 ] && [ "$1" != "--" ]; then
  rounds=$1
  shift
fi
[ "${1:-}" = "--" ] && shift
options=("$@")
[ "${#options[@]}" -gt 0 ] || options=(--runs 3)

out=${BENCH_COMPARE_DIR:-$(mktemp -d)}
mkdir -p "$out"
for ((i = 1; i <= rounds; ++i)); do
  echo "round $i of $rounds: before, then after (${options[*]})" >&2
  "$before" --json --quiet "${options[@]}" >"$out/before-$i.jsonl"
  "$after" --json --quiet "${options[@]}" >"$out/after-$i.jsonl"
done
echo "raw data: $out" >&2
python3 "$(dirname "${BASH_SOURCE[0]}")/bench_compare.py" "$out"
