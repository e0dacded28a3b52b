#!/usr/bin/python3
"""Validates finwait's JSON lines against docs/finwait.schema.json.

    finwait --json ... | python3 Tests/schema/validate.py [--schema PATH]

Reads JSON lines on stdin. Prints one line per invalid input line on stdout,
`line N: WHERE: WHAT`, and a count on stderr. Exits 0 when every line is
valid, 1 when any is invalid or there were no lines, 2 when the schema
itself is broken. Needs the `jsonschema` package (Debian: python3-jsonschema, which `make deps`
installs for /usr/bin/python3).

Stricter than a plain json.loads on purpose: finwait writes its JSON by
hand (JSONFormat.swift, Summary.swift), so a duplicate key, a NaN or an
empty line is a bug to catch here, not something to tolerate.
"""

import argparse
import json
import os
import pathlib
import sys

try:
    import jsonschema
    from jsonschema import Draft202012Validator
except ImportError:
    sys.exit("validate.py: needs the jsonschema package (apt-get install python3-jsonschema)")

DEFAULT_SCHEMA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "finwait.schema.json")
# Error lines quote the offending value; a whole record would bury the point.
MAX_MESSAGE = 300


class LineError(Exception):
    pass


def no_duplicates(pairs):
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise LineError(f"duplicate key {key!r}")
        seen[key] = value
    return seen


def not_json_constant(name):
    # Python's json accepts NaN and Infinity; JSON does not.
    raise LineError(f"{name} is not JSON")


def parse(text):
    if not text.strip():
        raise LineError("empty line")
    try:
        return json.loads(text, object_pairs_hook=no_duplicates, parse_constant=not_json_constant)
    except json.JSONDecodeError as e:
        raise LineError(f"not JSON: {e.msg} at column {e.colno}")


def shorten(message):
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 3] + "..."


def where(error):
    path = "$"
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def main():
    parser = argparse.ArgumentParser(description="Validate finwait --json lines read on stdin.")
    parser.add_argument("--schema", default=DEFAULT_SCHEMA, help="schema file (default: docs/finwait.schema.json)")
    args = parser.parse_args()

    try:
        with open(args.schema, encoding="utf-8") as f:
            schema = json.load(f)
        Draft202012Validator.check_schema(schema)
    except (OSError, ValueError, jsonschema.SchemaError) as e:
        print(f"validate.py: schema {args.schema}: {e}", file=sys.stderr)
        return 2
    # Formats (ipv4, ipv6) are only annotations in 2020-12 unless checked.
    # A "$ref" to a sibling file (doctor.schema.json uses finwait.schema.json's
    # path, syscall and stack) resolves against the schema's own location.
    resolver = jsonschema.RefResolver(base_uri=pathlib.Path(args.schema).resolve().as_uri(), referrer=schema)
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER, resolver=resolver)

    lines = invalid = 0
    for number, text in enumerate(sys.stdin, start=1):
        lines += 1
        text = text.rstrip("\n")
        try:
            record = parse(text)
            errors = list(validator.iter_errors(record))
            if not errors:
                continue
            error = jsonschema.exceptions.best_match(errors)
            message = shorten(f"{where(error)}: {error.message}")
            if len(errors) > 1:
                message += f" (+{len(errors) - 1} more)"
        except LineError as e:
            message = shorten(str(e))
        invalid += 1
        print(f"line {number}: {message}")

    if lines == 0:
        print("validate.py: no JSON lines on stdin", file=sys.stderr)
        return 1
    print(f"validate.py: {lines} lines, {invalid} invalid", file=sys.stderr)
    return 1 if invalid else 0


if __name__ == "__main__":
    sys.exit(main())
