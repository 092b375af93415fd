#!/usr/bin/env python3
"""tally.py: counts passed, failed and skipped test cases in meson testlog.json files.

A TAP test counts each of its results; a plain test counts once by its exit. A test that
failed or timed out with no failing result (it crashed between cases) counts one failure more,
and cases a plan promised but never reported count as failures.
Prints: P F S (three numbers).
"""
import json
import re
import sys

RESULT = re.compile(r"^(not ok|ok)\b(.*)$")
PLAN = re.compile(r"^1\.\.(\d+)")


def count(entry):
    passed = failed = skipped = 0
    plan = None
    seen = 0
    for line in (entry.get("stdout") or "").splitlines():
        m = PLAN.match(line)
        if m and plan is None:
            plan = int(m.group(1))
            continue
        m = RESULT.match(line)
        if not m:
            continue
        seen += 1
        if m.group(1) == "not ok":
            failed += 1
        elif re.search(r"#\s*SKIP", m.group(2), re.I):
            skipped += 1
        else:
            passed += 1
    ok = entry["result"] in ("OK", "EXPECTEDFAIL", "SKIP")
    if seen == 0:
        if entry["result"] == "SKIP":
            return 0, 0, 1
        return (1, 0, 0) if ok else (0, 1, 0)
    if plan is not None and seen < plan:
        failed += plan - seen
    if not ok and failed == 0:
        failed += 1
    return passed, failed, skipped


def main():
    totals = [0, 0, 0]
    for path in sys.argv[1:]:
        try:
            lines = open(path).read().splitlines()
        except OSError:
            continue
        for line in lines:
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                # A log it cannot read must not hide a failure.
                print(f"tally: {path}: unreadable line: {line[:60]!r}", file=sys.stderr)
                totals[1] += 1
                continue
            for i, n in enumerate(count(entry)):
                totals[i] += n
    print(*totals)


if __name__ == "__main__":
    main()
