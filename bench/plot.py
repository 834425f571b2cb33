#!/usr/bin/env python3
"""Plot items/s against caller threads for the sync scenario of batch_serving_bench.

Reads the JSON lines that `batch_serving_bench --json` prints (from files or
stdin) and draws one line per implementation and batch_timeout, callers on x,
items/s on y (both log-scaled; --linear for a linear y axis):

    build/bench/batch_serving_bench --json --scenarios sync > sync.jsonl
    python3 bench/plot.py sync.jsonl -o sync.png

Needs matplotlib (Debian: apt-get install python3-matplotlib).
"""

import argparse
import json
import sys


def read_rows(paths):
    """Every JSON object in the given files ('-' or none: stdin); other lines are skipped."""
    rows = []
    for path in paths or ["-"]:
        f = sys.stdin if path == "-" else open(path, encoding="utf-8")
        try:
            for line in f:
                line = line.strip()
                if not line.startswith("{"):
                    continue
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        finally:
            if f is not sys.stdin:
                f.close()
    return rows


def sync_series(rows):
    """{(impl, batch_timeout_us): [(callers, items_per_s), ...]} for the sync rows, sorted."""
    series = {}
    for r in rows:
        if r.get("scenario") != "sync" or r.get("items_per_s") is None or r.get("callers") is None:
            continue
        key = (r["impl"], r.get("batch_timeout_us"))
        series.setdefault(key, []).append((r["callers"], r["items_per_s"]))
    for points in series.values():
        points.sort()
    return dict(sorted(series.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)))


def timeout_label(us):
    if us is None:
        return "?"
    if us == 0:
        return "0 (eager)"
    return f"{us // 1000} ms" if us % 1000 == 0 else f"{us} us"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="*", help="JSON-lines files (default: stdin)")
    parser.add_argument("-o", "--output", default="bench_sync.png", help="PNG to write")
    parser.add_argument("--title", default="sync: blocking dispatch, batch_size 64")
    parser.add_argument("--linear", action="store_true", help="linear items/s axis (default: log)")
    args = parser.parse_args()

    series = sync_series(read_rows(args.inputs))
    if not series:
        sys.exit("plot.py: no sync rows with items_per_s in the input")

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit("plot.py: needs matplotlib (Debian: apt-get install python3-matplotlib)")

    fig, ax = plt.subplots(figsize=(8, 5))
    # One colour per batch_timeout, one line style and marker per implementation.
    styles = {"batch_serving": ("-", "o"), "naive": ("--", "s")}
    timeouts = sorted({t for _, t in series if t is not None})
    colours = {t: f"C{i}" for i, t in enumerate(timeouts)}
    for (impl, timeout_us), points in series.items():
        callers = [c for c, _ in points]
        rate = [v for _, v in points]
        line, marker = styles.get(impl, (":", "^"))
        ax.plot(callers, rate, line, marker=marker, color=colours.get(timeout_us, "C9"),
                label=f"{impl}, batch_timeout {timeout_label(timeout_us)}")
    ax.set_xscale("log", base=2)
    if not args.linear:
        ax.set_yscale("log")
    all_callers = sorted({c for points in series.values() for c, _ in points})
    ax.set_xticks(all_callers)
    ax.set_xticklabels([str(c) for c in all_callers])
    ax.set_xlabel("caller threads")
    ax.set_ylabel("items/s")
    ax.set_title(args.title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.output, dpi=120)
    print(f"plot.py: wrote {args.output}")


if __name__ == "__main__":
    main()
