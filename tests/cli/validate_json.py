#!/usr/bin/env python3
"""Validates a JSON document against a JSON Schema: validate_json.py SCHEMA DOCUMENT.

Every *.schema.json next to SCHEMA is known by its $id, so that one schema can refer to another
(compare-report.schema.json to report.schema.json) without fetching anything. Exit status 0 when the
document is valid, 1 when it is not (the first errors are printed), 2 on bad usage or a bad schema.
Used by tests/cli/den_report_cli_test.cpp on real den reports.
"""
import json
import pathlib
import sys

import jsonschema


def validator(schema_path: pathlib.Path):
    schemas = {}
    for path in schema_path.parent.glob("*.schema.json"):
        with open(path) as f:
            loaded = json.load(f)
        schemas[loaded.get("$id", path.as_uri())] = loaded
    with open(schema_path) as f:
        schema = json.load(f)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    try:  # jsonschema >= 4.18 resolves references through a registry
        import referencing

        registry = referencing.Registry().with_resources(
            (uri, referencing.Resource.from_contents(s)) for uri, s in schemas.items())
        return cls(schema, registry=registry)
    except ImportError:  # Debian 12's 4.10
        resolver = jsonschema.RefResolver.from_schema(schema, store=schemas)
        return cls(schema, resolver=resolver)


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        check = validator(pathlib.Path(sys.argv[1]).resolve())
    except jsonschema.exceptions.SchemaError as e:
        print(f"{sys.argv[1]}: invalid schema: {e.message}", file=sys.stderr)
        return 2
    with open(sys.argv[2]) as f:
        document = json.load(f)
    errors = sorted(check.iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))
    for error in errors[:5]:
        path = "/".join(str(p) for p in error.absolute_path)
        print(f"{sys.argv[2]}: at '{path}': {error.message}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
