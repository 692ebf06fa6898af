#!/usr/bin/env python3
"""Checks that the docs stay true to the tree (ctest: Docs.*).

  check_docs.py notes [--write]   docs/architecture.md's NOTE index lists every NOTE tag of the code,
                                  with the files that hold it (--write regenerates the index)
  check_docs.py links             every relative link in README.md and docs/*.md names a file that exists
  check_docs.py design-refs       nothing in the tree cites a design file outside the repository
  check_docs.py refusals          every row of docs/refusals.md names a test in its `test` column, and each
                                  exists: `Suite.Name` a TEST, TEST_F or TEST_P in tests/**/*.cpp (`Suite.*`:
                                  any test of the suite), `test_name` a `def test_name` in tests/**/*.py
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
CODE_DIRS = ["cmake", "cli", "cuda", "data", "engine", "graph", "ops", "python", "render", "serialization", "bench",
             "scripts", "examples"]
CODE_SUFFIXES = {".cpp", ".h", ".cu", ".cuh", ".cmake", ".proto", ".sh", ".py", ".txt", ".in"}
NOTE = re.compile(r"NOTE: \[([^\]]+)\]")
# A tag may wrap onto the next comment line; it is read as one line.
WRAP = re.compile(r"\s*\n\s*(?://+|#|\*)?\s*")
BEGIN, END = "<!-- note index: begin -->", "<!-- note index: end -->"


def code_files():
    files = [ROOT / "CMakeLists.txt"]
    for d in CODE_DIRS:
        files += [p for p in sorted((ROOT / d).rglob("*")) if p.is_file() and p.suffix in CODE_SUFFIXES]
    return [f for f in files if f.resolve() != pathlib.Path(__file__).resolve()]


def note_index():
    """Markdown table: each tag with the files that hold it and the file that explains it: the
    occurrence that opens a sentence ("NOTE: [tag] Each ..."), where a citation reads "(NOTE: [tag])"
    or "NOTE: [tag] in file"."""
    holders, explained = {}, {}
    for path in code_files():
        rel = path.relative_to(ROOT).as_posix()
        text = path.read_text(encoding="utf-8", errors="replace")
        for m in NOTE.finditer(text):
            tag = WRAP.sub(" ", m.group(1))
            holders.setdefault(tag, set()).add(rel)
            if re.match(r":? [A-Z]", text[m.end():m.end() + 3]):
                explained.setdefault(tag, rel)
    lines = ["| NOTE | explained in | also cited in |", "| --- | --- | --- |"]
    for tag in sorted(holders, key=str.lower):
        first = explained.get(tag, sorted(holders[tag])[0])
        others = ", ".join(f"`{f}`" for f in sorted(holders[tag] - {first}))
        lines.append(f"| [{tag}] | `{first}` | {others} |")
    return "\n".join(lines) + "\n"


def check_notes(write):
    doc = ROOT / "docs" / "architecture.md"
    text = doc.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        sys.exit(f"{doc}: the markers {BEGIN} and {END} are missing")
    head, rest = text.split(BEGIN, 1)
    current, tail = rest.split(END, 1)
    wanted = note_index()
    if current.strip() == wanted.strip():
        return 0
    if write:
        doc.write_text(head + BEGIN + "\n" + wanted + END + tail, encoding="utf-8")
        print(f"{doc}: NOTE index rewritten")
        return 0
    print(f"{doc}: the NOTE index is out of date; run scripts/check_docs.py notes --write", file=sys.stderr)
    return 1


def check_links():
    bad = []
    for md in [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md")):
        for target in re.findall(r"\]\(([^)\s]+)\)", md.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            path = (md.parent / target.split("#", 1)[0]).resolve()
            if not path.exists():
                bad.append(f"{md.relative_to(ROOT)}: link to {target}, which does not exist")
    print("\n".join(bad), file=sys.stderr)
    return 1 if bad else 0


def check_design_refs():
    bad = [f"{p.relative_to(ROOT)}: cites DESIGN.md, which is not in the repository; point into docs/"
           for p in code_files() + [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
           if "DESIGN.md" in p.read_text(encoding="utf-8", errors="replace")]
    print("\n".join(bad), file=sys.stderr)
    return 1 if bad else 0


def table_rows(text):
    """(line number, header, {column: cell}) of every row of every Markdown table in `text`."""
    lines = text.splitlines()
    cells = lambda line: [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
    rows = []
    for i in range(len(lines) - 1):
        if not (lines[i].lstrip().startswith("|") and re.fullmatch(r"\s*\|[\s|:-]+\|\s*", lines[i + 1])):
            continue
        header = [h.lower() for h in cells(lines[i])]
        j = i + 2
        while j < len(lines) and lines[j].lstrip().startswith("|"):
            rows.append((j + 1, header, dict(zip(header, cells(lines[j])))))
            j += 1
    return rows


def check_refusals():
    doc = ROOT / "docs" / "refusals.md"
    gtests, suites = set(), set()
    for path in sorted((ROOT / "tests").rglob("*.cpp")):
        for suite, name in re.findall(r"\bTEST(?:_F|_P)?\(\s*(\w+)\s*,\s*(\w+)\s*\)",
                                      path.read_text(encoding="utf-8", errors="replace")):
            gtests.add(f"{suite}.{name}")
            suites.add(suite)
    pytests = set()
    for path in sorted((ROOT / "tests").rglob("*.py")):
        pytests.update(re.findall(r"^\s*def (test_\w+)\s*\(", path.read_text(encoding="utf-8", errors="replace"), re.M))
    bad, named = [], 0
    for line, header, row in table_rows(doc.read_text(encoding="utf-8")):
        where = f"{doc.relative_to(ROOT)}:{line}"
        if "test" not in header:
            continue
        tests = re.findall(r"`([^`]+)`", row.get("test", ""))
        if not tests:
            bad.append(f"{where}: no test named for '{row.get('refusal', '')}'")
        for test in tests:
            named += 1
            if re.fullmatch(r"test_\w+", test):
                found = test in pytests
            elif re.fullmatch(r"\w+\.\*", test):
                found = test[:-2] in suites
            elif re.fullmatch(r"\w+\.\w+", test):
                found = test in gtests
            else:
                bad.append(f"{where}: '{test}' is neither Suite.Name, Suite.* nor test_name")
                continue
            if not found:
                bad.append(f"{where}: test {test} does not exist in tests/")
    if named == 0:
        bad.append(f"{doc.relative_to(ROOT)}: no table with a test column")
    print("\n".join(bad), file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "notes":
        sys.exit(check_notes("--write" in sys.argv[2:]))
    if command == "links":
        sys.exit(check_links())
    if command == "design-refs":
        sys.exit(check_design_refs())
    if command == "refusals":
        sys.exit(check_refusals())
    sys.exit(__doc__)
