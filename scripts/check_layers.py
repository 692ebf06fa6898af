#!/usr/bin/env python3
"""Checks that includes point downstream only (ctest: Layout.IncludesPointDownstream).

Each rule names a folder (or files) and the include prefixes its sources may use. A new include that
points upstream, or between siblings, fails with the file, the line and the rule it breaks.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SOURCES = {".h", ".cpp", ".cu", ".cuh"}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)

# (folder, may include). Inside engine/: the value types at its top (config, task) come first,
# training/ uses only them, the public API at engine/'s top uses training/, and den/ (the DEN
# algorithm), evaluation/ and baselines/ use the top and training/ but never each other.
ENGINE_TOP_TYPES = ["engine/architecture.h", "engine/config.h", "engine/task.h"]
RULES = [
    ("cuda", ["cuda/"]),
    ("graph", ["graph/"]),
    ("ops", ["ops/", "cuda/"]),
    ("engine/training", ["engine/training/", *ENGINE_TOP_TYPES, "graph/", "ops/", "cuda/"]),
    ("engine/den", ["engine/den/", "engine/training/", "engine/*.h", "graph/", "ops/", "cuda/"]),
    ("engine/evaluation", ["engine/evaluation/", "engine/training/", "engine/*.h", "graph/", "ops/"]),
    ("engine/baselines", ["engine/baselines/", "engine/training/", "engine/*.h", "graph/", "ops/"]),
    ("engine", ["engine/*.h", "engine/training/", "graph/", "ops/", "cuda/"]),  # engine/'s top level
    ("data", ["data/", *ENGINE_TOP_TYPES]),
    ("serialization", ["serialization/", "engine/", "graph/", "data/", "den/"]),
    ("render", ["render/"]),  # the HTML reports' charts: JSON in, text out, no other den module
]


def allowed(include, prefixes):
    for p in prefixes:
        if p.endswith("*.h"):
            folder = p[:-3]
            if include.startswith(folder) and "/" not in include[len(folder):]:
                return True
        elif include == p or (p.endswith("/") and include.startswith(p)):
            return True
    return False


def rule_for(rel):
    """The most specific rule whose folder holds `rel`."""
    best = None
    for folder, prefixes in RULES:
        if rel.startswith(folder + "/") and (best is None or len(folder) > len(best[0])):
            if folder == "engine" and rel.count("/") > 1:
                continue  # engine/'s own rule is for its top level only
            best = (folder, prefixes)
    return best


def main():
    bad = []
    top_folders = sorted({folder.split("/")[0] for folder, _ in RULES})
    for path in sorted(p for folder in top_folders for p in (ROOT / folder).rglob("*")):
        rel = path.relative_to(ROOT).as_posix()
        if path.suffix not in SOURCES or rel.startswith("cuda/standalone/"):
            continue
        rule = rule_for(rel)
        if rule is None:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for m in INCLUDE.finditer(text):
            include = m.group(1)
            if "/" not in include:
                continue  # a generated header next to the source (den.pb.h)
            if not allowed(include, rule[1]):
                line = text.count("\n", 0, m.start()) + 1
                bad.append(f"{rel}:{line}: includes {include}, outside what {rule[0]}/ may use: {', '.join(rule[1])}")
    print("\n".join(bad), file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
