#!/usr/bin/env python3
"""Plot items/s against callers for the sync or coro scenario of batch_serving_bench.

Reads the JSON lines that `batch_serving_bench --json` prints (from files or
stdin) and draws one line per implementation and batch_timeout, callers on x,
items/s on y (both log-scaled; --linear for a linear y axis):

    build/bench/batch_serving_bench --json --scenarios sync > sync.jsonl
    python3 bench/plot.py sync.jsonl -o sync.png
    build/bench/batch_serving_bench --json --scenarios coro > coro.jsonl
    python3 bench/plot.py --scenario coro coro.jsonl -o coro.png

coro rows get one line per implementation and resume target (executor,
inline, and naive's threads).

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


def series_of(rows, scenario="sync"):
    """{(impl, batch_timeout_us): [(callers, items_per_s), ...]} for the scenario's rows, sorted.

    impl carries the resume target where a row has one (coro: "batch_serving, inline")."""
    series = {}
    for r in rows:
        if r.get("scenario") != scenario or r.get("items_per_s") is None or r.get("callers") is None:
            continue
        impl = r["impl"] if r.get("resume") is None else f"{r['impl']}, {r['resume']}"
        key = (impl, r.get("batch_timeout_us"))
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
    parser.add_argument("--scenario", choices=["sync", "coro"], default="sync")
    parser.add_argument("-o", "--output", default=None, help="PNG to write (bench_SCENARIO.png)")
    parser.add_argument("--title", default=None)
    parser.add_argument("--linear", action="store_true", help="linear items/s axis (default: log)")
    args = parser.parse_args()

    series = series_of(read_rows(args.inputs), args.scenario)
    if not series:
        sys.exit(f"plot.py: no {args.scenario} rows with items_per_s in the input")
    output = args.output or f"bench_{args.scenario}.png"
    title = args.title or {
        "sync": "sync: blocking dispatch, batch_size 64",
        "coro": "coro: co_await co_dispatch (naive: threads), batch_size 64",
    }[args.scenario]

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit("plot.py: needs matplotlib (Debian: apt-get install python3-matplotlib)")

    fig, ax = plt.subplots(figsize=(8, 5))
    # One colour per batch_timeout, one line style and marker per implementation.
    styles = {
        "batch_serving": ("-", "o"),
        "naive": ("--", "s"),
        "batch_serving, executor": ("-", "o"),
        "batch_serving, inline": ("-.", "D"),
        "naive, thread": ("--", "s"),
    }
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
    ax.set_xlabel("caller threads" if args.scenario == "sync" else "callers (coroutines; naive: threads)")
    ax.set_ylabel("items/s")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(output, dpi=120)
    print(f"plot.py: wrote {output}")


if __name__ == "__main__":
    main()
