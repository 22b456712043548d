#!/usr/bin/env bash
# docs/openapi.yaml describes exactly the routes the server serves: every route of
# `cockpit-tokens routes` is described with its methods, and every described path and
# method is served. Uses PyYAML when present, else a small indentation-based reader
# (both are run and must agree when PyYAML is there). With openapi-spec-validator
# installed, the document is also validated against the OpenAPI 3.1 schema. Then a strict
# lint: @redocly/cli's recommended-strict rules (security on every operation, `security: []`
# where none is needed, a 4xx answer on each...), pinned in tests/openapi/package-lock.json;
# its exceptions are in tests/openapi/redocly.yaml with the reason for each.
set -euo pipefail
cd "$1"
bin=build/cockpit-tokens
spec=docs/openapi.yaml
[ -x "$bin" ] && [ -f "$spec" ] || { echo "openapi: need $bin and $spec" >&2; exit 1; }
"$bin" routes >"${TMPDIR:-/tmp}/ct-routes.$$"
trap 'rm -f "${TMPDIR:-/tmp}/ct-routes.$$"' EXIT
python3 - "$spec" "${TMPDIR:-/tmp}/ct-routes.$$" <<'PY'
import re, sys

HTTP = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
ANY_REQUIRED = {"get", "post", "put", "delete", "patch", "head"}
spec_path, routes_path = sys.argv[1], sys.argv[2]
text = open(spec_path).read()

def by_indentation(text):
    """paths -> set of methods, read from the YAML's block structure."""
    out, in_paths, path = {}, False, None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip(" "))
        key = line.strip().split(":", 1)[0].strip("'\"")
        if indent == 0:
            in_paths = key == "paths"
            path = None
        elif in_paths and indent == 2:
            path = key if key.startswith("/") else None
            if path:
                out.setdefault(path, set())
        elif in_paths and path and indent == 4 and key in HTTP:
            out[path].add(key)
    return out

paths = by_indentation(text)
try:
    import yaml
except ImportError:
    yaml = None
if yaml:
    doc = yaml.safe_load(text)
    assert str(doc.get("openapi", "")).startswith("3.1"), "openapi must be 3.1.x"
    from_yaml = {p: {m for m in v if m in HTTP} for p, v in doc["paths"].items()}
    assert from_yaml == paths, f"readers disagree: {from_yaml} vs {paths}"
    # Every local $ref resolves.
    def walk(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "$ref" and isinstance(v, str) and v.startswith("#/"):
                    target = doc
                    for part in v[2:].split("/"):
                        assert isinstance(target, dict) and part in target, f"dangling $ref {v}"
                        target = target[part]
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(doc)

served = {}
for line in open(routes_path):
    line = line.strip()
    if not line:
        continue
    methods, pattern = line.rsplit(" ", 1)
    served[pattern] = {m.strip().lower() for m in methods.split(",")}

errors = []
for pattern, methods in served.items():
    described = paths.get(pattern)
    if described is None:
        errors.append(f"served but not described: {pattern}")
    elif methods == {"*"}:
        if not ANY_REQUIRED <= described:
            errors.append(f"{pattern} serves any method; describe at least "
                          f"{sorted(ANY_REQUIRED)}, found {sorted(described)}")
    elif described != methods:
        errors.append(f"{pattern}: served {sorted(methods)}, described {sorted(described)}")
for pattern in paths:
    if pattern not in served:
        errors.append(f"described but not served: {pattern}")
if not served:
    errors.append("`cockpit-tokens routes` printed nothing")
if yaml and not errors:
    try:
        from openapi_spec_validator import validate
    except ImportError:
        validate = None
    if validate:
        try:
            validate(doc)
        except Exception as e:  # the validator's message is the first line
            errors.append("not valid OpenAPI 3.1: " + str(e).splitlines()[0])
for e in errors:
    print("openapi:", e, file=sys.stderr)
if errors:
    sys.exit(1)
print(f"openapi: {len(served)} routes match {spec_path}"
      + (" (validated)" if yaml else " (indentation reader)"))
PY

# ---- strict lint --------------------------------------------------------------------------
cd tests/openapi
if [ ! -x node_modules/.bin/redocly ]; then
    npm ci --no-audit --no-fund >/dev/null 2>&1 || { echo "openapi: npm ci in tests/openapi failed" >&2; exit 1; }
fi
if ! REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
    ./node_modules/.bin/redocly lint ../../docs/openapi.yaml >"${TMPDIR:-/tmp}/ct-redocly.$$" 2>&1; then
    grep -v '[║╔╚]' "${TMPDIR:-/tmp}/ct-redocly.$$" >&2
    rm -f "${TMPDIR:-/tmp}/ct-redocly.$$"
    echo "openapi: @redocly/cli lint (recommended-strict) fails" >&2
    exit 1
fi
rm -f "${TMPDIR:-/tmp}/ct-redocly.$$"
echo "openapi: @redocly/cli lint (recommended-strict) is clean"
