"""Prints the before/after table of scripts/bench-compare.sh from its JSON lines.

Per scenario setting: batch_serving's items/s over naive's in each round (the
median of them first, then every round's), batch_serving's own items/s and
p50; then the rows that carry figures of their own (efficiency, memory, the
machine's hand-off floors).
"""
import glob
import json
import statistics
import sys


def load(folder, prefix):
    runs = []
    for path in sorted(glob.glob(f"{folder}/{prefix}-*.jsonl")):
        with open(path) as f:
            runs.append([json.loads(line) for line in f if line.startswith("{")])
    return runs


def setting(r):
    return (r["scenario"], r.get("callers"), r.get("batch_timeout_us"))


def ratios(runs):
    out = {}
    for rows in runs:
        naive = {setting(r): r for r in rows if r["impl"] == "naive"}
        for r in rows:
            n = naive.get(setting(r))
            if r["impl"] != "batch_serving" or not n or not r["items_per_s"] or not n["items_per_s"]:
                continue
            out.setdefault(setting(r), []).append(
                (r["items_per_s"] / n["items_per_s"], r["items_per_s"], r.get("p50_us")))
    return out


def median_or_dash(values, fmt):
    values = [v for v in values if v is not None]
    return format(statistics.median(values), fmt) if values else "-"


def main(folder):
    before, after = load(folder, "before"), load(folder, "after")
    b, a = ratios(before), ratios(after)
    print("| scenario | callers | timeout us | before: bs/naive | after: bs/naive |"
          " bs items/s before / after | bs p50 us before / after |")
    print("|---|--:|--:|--:|--:|--:|--:|")
    for k in sorted(b, key=lambda k: (k[0], k[2] or 0, k[1] or 0)):
        if k not in a:
            continue
        each = lambda xs: ", ".join(f"{x[0]:.2f}" for x in xs)
        print(f"| {k[0]} | {k[1]} | {k[2]} "
              f"| **{statistics.median(x[0] for x in b[k]):.2f}** ({each(b[k])}) "
              f"| **{statistics.median(x[0] for x in a[k]):.2f}** ({each(a[k])}) "
              f"| {median_or_dash([x[1] for x in b[k]], '.3g')} / "
              f"{median_or_dash([x[1] for x in a[k]], '.3g')} "
              f"| {median_or_dash([x[2] for x in b[k]], '.3g')} / "
              f"{median_or_dash([x[2] for x in a[k]], '.3g')} |")
    print()
    fields = ("efficiency", "bytes_per_request", "round_trip_ns", "ns_per_op")
    seen = []
    for rows in before + after:
        for r in rows:
            for f in fields:
                if r.get(f) is not None and (r["scenario"], r["impl"], f) not in seen:
                    seen.append((r["scenario"], r["impl"], f))
    for scenario, impl, f in seen:
        pick = lambda runs: [r[f] for rows in runs for r in rows
                             if r["scenario"] == scenario and r["impl"] == impl and r.get(f) is not None]
        print(f"- {scenario} {impl} {f}: before {median_or_dash(pick(before), '.4g')}, "
              f"after {median_or_dash(pick(after), '.4g')}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
