"""Schemathesis hooks for fuzz.test.ts: steer schema-valid requests to where the schema cannot.

The OpenAPI document describes a namespace by its pattern only (any DNS label), and the runtime answers 404 for one
it does not serve; an Eventual or Accurate counter refuses an idempotency_token.generation_time outside its accept
window around *now* (400), which no schema can state. Left alone, nearly every schema-valid call would stop at the
404 or the 400 and never reach the counters. So, for components generated in positive mode only (a negative body or
path is refused by validation before the namespace or the time matter, and is left exactly as generated):

- the namespace is replaced by one of the names this runtime serves, picked from the generated name by a stable hash,
  or kept as generated (one slot in len(served) + 1: those calls still test the 404);
- a generation_time sent to an Eventual or Accurate namespace is moved to a few seconds ago, written the way it was
  generated (separator, letter case, fraction digits, UTC offset), so the server's parsing of every RFC 3339 form the
  schema admits is still fuzzed. BestEffort namespaces do not check the time: theirs are sent as generated.

Refusals of out-of-window times are tested in api.test.ts. The served namespaces come from TALLY_FUZZ_NAMESPACES, a
JSON list of {"name", "counter_type"}; the name pattern is read from the document itself (before_load_schema).
"""

import json
import os
import re
import zlib
from datetime import datetime, timedelta, timezone

import schemathesis
from schemathesis.core.parameters import ParameterLocation

SERVED = json.loads(os.environ["TALLY_FUZZ_NAMESPACES"])
TIMED = {ns["name"] for ns in SERVED if ns["counter_type"] != "BestEffort"}
# How far back a moved generation_time lies, at most; the fuzzed namespaces accept 60 s.
MAX_AGE_SECONDS = 20

_name_pattern = None

# RFC 3339 date-time (the shape only; whether it is schema-valid was decided by the generator).
DATE_TIME = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)(?P<sep>[Tt ])(\d\d):(\d\d):(\d\d)(?P<frac>\.\d+)?(?P<zone>[Zz]|[+-]\d\d(?::?\d\d)?)"
)


@schemathesis.hook
def before_load_schema(ctx, raw_schema):
    global _name_pattern
    pattern = raw_schema["components"]["schemas"]["GetCountRequest"]["properties"]["namespace"]["pattern"]
    _name_pattern = re.compile(pattern)


def _stable(value):
    return zlib.crc32(repr(value).encode("utf-8", "surrogatepass"))


def _is_name(value):
    if not isinstance(value, str) or _name_pattern is None:
        return False
    # JSON Schema's `$` is the end of the string; Python's also matches before a final newline.
    m = _name_pattern.search(value)
    return m is not None and m.end() == len(value)


def _served_name(generated):
    """A served namespace for a generated, schema-valid name, or the name itself (1 in len(SERVED) + 1)."""
    if not _is_name(generated):
        return generated
    slot = _stable(generated) % (len(SERVED) + 1)
    return SERVED[slot]["name"] if slot < len(SERVED) else generated


def _zone(text):
    if text in ("Z", "z"):
        return timezone.utc
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    minutes = int(digits[:2]) * 60 + (int(digits[2:4]) if len(digits) > 2 else 0)
    return timezone(sign * timedelta(minutes=minutes))


def _recent(generated):
    """`generated` (an RFC 3339 date-time) moved to a few seconds ago, written the same way."""
    m = DATE_TIME.fullmatch(generated)
    if m is None:
        return generated
    try:
        zone = _zone(m["zone"])
    except ValueError:  # an offset Python cannot hold (24:00 or more): leave it
        return generated
    age = timedelta(milliseconds=_stable(generated) % (MAX_AGE_SECONDS * 1000))
    at = (datetime.now(timezone.utc) - age).astimezone(zone)
    text = at.strftime(f"%Y-%m-%d{m['sep']}%H:%M:%S")
    if m["frac"]:
        digits = len(m["frac"]) - 1
        text += "." + f"{at.microsecond:06d}".ljust(digits, "0")[:digits]
    return text + m["zone"]


def _positive(case, location):
    meta = case.meta
    return meta is None or not meta.is_negative_at(location)


def _steer(case):
    if isinstance(case.path_parameters, dict) and _positive(case, ParameterLocation.PATH):
        params = dict(case.path_parameters)
        if "namespace" in params:
            params["namespace"] = _served_name(params["namespace"])
            case.path_parameters = params
    if isinstance(case.body, dict) and _positive(case, ParameterLocation.BODY):
        body = dict(case.body)
        if "namespace" in body:
            body["namespace"] = _served_name(body["namespace"])
        token = body.get("idempotency_token")
        if body.get("namespace") in TIMED and isinstance(token, dict) and isinstance(token.get("generation_time"), str):
            body["idempotency_token"] = {**token, "generation_time": _recent(token["generation_time"])}
        case.body = body
    return case


@schemathesis.hook
def map_case(ctx, case):
    """Fuzzing and coverage phases."""
    return _steer(case)


@schemathesis.hook
def before_add_examples(ctx, examples):
    """Examples phase: the document's own examples (namespace "orders" is not served here)."""
    for case in examples:
        _steer(case)
