#!/usr/bin/env python3
"""Counts the tests of CI from their JUnit XML results, never from the log.

    count-tests.py RESULTS.xml...

Every file named must exist, parse and hold at least one test case (so a
Swift Testing run of zero tests, or a run that wrote nothing, fails).
A test case counts as failed if it has a <failure> or an <error>, else as
skipped if it has a <skipped>, else as passed; skipped ones fail CI too
(live tests must run). Prints a line per failed or skipped test, then
"CI: N passed, M failed" with M = failed + errored + skipped, and exits 1
if M > 0 or any file is unusable.
"""
import sys
import xml.etree.ElementTree as ET


def cases(path):
    """(name, status, message) for each <testcase> of the file."""
    root = ET.parse(path).getroot()
    for case in root.iter("testcase"):
        classname = case.get("classname", "")
        name = case.get("name", "?")
        full = f"{classname}.{name}" if classname else name
        status, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error"):
                status = "failed" if child.tag == "failure" else "error"
                message = child.get("message") or (child.text or "")
                break
            if child.tag == "skipped" and status == "passed":
                status = "skipped"
                message = child.get("message") or (child.text or "")
        yield full, status, message.strip().splitlines()[0] if message.strip() else ""


def main(paths):
    if not paths:
        print("count-tests: no results files named", file=sys.stderr)
        return 2
    total = {"passed": 0, "failed": 0, "error": 0, "skipped": 0}
    unusable = []
    for path in paths:
        try:
            with open(path, "rb") as f:
                if not f.read(1):
                    unusable.append(f"{path}: empty")
                    continue
            results = list(cases(path))
        except FileNotFoundError:
            unusable.append(f"{path}: missing")
            continue
        except (OSError, ET.ParseError) as e:
            unusable.append(f"{path}: unreadable: {e}")
            continue
        if not results:
            unusable.append(f"{path}: ran zero tests")
            continue
        counts = {"passed": 0, "failed": 0, "error": 0, "skipped": 0}
        for name, status, message in results:
            counts[status] += 1
            if status != "passed":
                print(f"{status.upper()}: {name}" + (f": {message}" if message else ""))
        print(f"{path}: {len(results)} tests, {counts['failed'] + counts['error']} failed, "
              f"{counts['skipped']} skipped")
        for status in total:
            total[status] += counts[status]
    for problem in unusable:
        print(f"CI: results {problem}")
    failed = total["failed"] + total["error"]
    bad = failed + total["skipped"]
    print(f"total: {total['passed'] + bad} tests, {failed} failed, {total['skipped']} skipped")
    print(f"CI: {total['passed']} passed, {bad} failed")
    return 1 if bad or unusable else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
