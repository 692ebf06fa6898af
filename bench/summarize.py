#!/usr/bin/env python3
"""Prints one summary table of the figures that matter from den's Google Benchmark JSON files."""
import json
import sys


def load(path):
    try:
        with open(path) as f:
            return json.load(f)["benchmarks"]
    except (OSError, KeyError, json.JSONDecodeError):
        return []


def main(paths):
    rows = []
    for path in paths:
        for b in load(path):
            name = b["name"]
            for key, value in sorted(b.items()):
                if key.endswith(("_sgemm_ratio", "_overhead", "_over_task2", "_over_linear", "_over_compact",
                                 "_per_s", "_gflops", "_gflop", "ratio", "_us", "_s", "_per_flop",
                                 "_share")) or key.startswith("hidden_"):
                    if isinstance(value, (int, float)):
                        rows.append((name, key, value))
    width = max((len(r[0]) for r in rows), default=10)
    print(f"{'benchmark':<{width}}  {'figure':<28} {'value':>14}")
    for name, key, value in rows:
        print(f"{name:<{width}}  {key:<28} {value:>14.4g}")


if __name__ == "__main__":
    main(sys.argv[1:])
