"""Parsing what a domain publishes for MTA-STS (RFC 8461 §3): the `_mta-sts` TXT record and the
policy file. Pure: text in, a value or a PolicyError out."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

MAX_AGE_LIMIT = 31_557_600  # §3.2: a year, in seconds
MAX_POLICY_BYTES = 64 * 1024  # §3.3: a sender SHOULD refuse larger bodies

_ID_RE = re.compile(r"[A-Za-z0-9]{1,32}")
_EXT_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
_EXT_VALUE_RE = re.compile(r"[\x21-\x3a\x3c\x3e-\x7e]+")  # printable ASCII but ';' and '='
_FIELD_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
_LABEL_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


class PolicyError(ValueError):
    """What the domain published is not a usable MTA-STS record or policy."""


class Mode(enum.Enum):
    ENFORCE = "enforce"
    TESTING = "testing"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class Policy:
    mode: Mode
    mx: tuple[str, ...]  # host names or "*.suffix" patterns, lower case, no final dot
    max_age: int  # seconds the policy may be cached and used

    def lists(self, host: str) -> bool:
        """Whether `host` (an MX host name) matches one of the policy's mx patterns (§4.1)."""
        return any(mx_matches(pattern, host) for pattern in self.mx)


def parse_record(texts: list[str]) -> str | None:
    """The policy id of a domain's `_mta-sts` TXT answer, or None when it publishes no usable one.

    §3.1: records not starting with `v=STSv1;` are ignored; anything but exactly one left, or one
    that is not valid, means the domain has no policy.
    """
    candidates = [text for text in texts if text.startswith("v=STSv1;") or text == "v=STSv1"]
    if len(candidates) != 1:
        return None
    try:
        return record_id(candidates[0])
    except PolicyError:
        return None


def record_id(text: str) -> str:
    """The `id` of one TXT record `v=STSv1; id=...; [ext=value; ...]`; PolicyError otherwise."""
    fields = [field.strip(" \t") for field in text.split(";")]
    if fields and fields[-1] == "":
        fields.pop()  # a final ';' is allowed
    if not fields or fields[0] != "v=STSv1":
        raise PolicyError("the record does not start with v=STSv1")
    policy_id = None
    for field in fields[1:]:
        name, equals, value = field.partition("=")
        if not equals:
            raise PolicyError(f"field {field[:40]!r} has no '='")
        if name == "id":
            if policy_id is not None:
                raise PolicyError("id given twice")
            if not _ID_RE.fullmatch(value):
                raise PolicyError("id is not 1 to 32 letters and digits")
            policy_id = value
        elif not (_EXT_NAME_RE.fullmatch(name) and _EXT_VALUE_RE.fullmatch(value)):
            raise PolicyError(f"field {field[:40]!r} is not name=value")
    if policy_id is None:
        raise PolicyError("the record has no id")
    return policy_id


def parse_policy(body: bytes) -> Policy:
    """The policy in a fetched `mta-sts.txt` body (§3.2); PolicyError if it is not one.

    Lines are `key: value`, ended by CRLF or LF. Unknown keys are ignored; `mx` may repeat, the
    other keys are taken at their first occurrence.
    """
    if len(body) > MAX_POLICY_BYTES:
        raise PolicyError(f"the policy is larger than {MAX_POLICY_BYTES} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise PolicyError("the policy is not UTF-8 text") from None
    fields: dict[str, str] = {}
    mx: list[str] = []
    for number, line in enumerate(text.split("\n"), 1):
        line = line.removesuffix("\r")
        if not line.strip(" \t"):
            continue
        name, colon, value = line.partition(":")
        name, value = name.strip(" \t"), value.strip(" \t")
        if not colon or not _FIELD_NAME_RE.fullmatch(name):
            raise PolicyError(f"line {number} is not 'key: value'")
        if any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
            raise PolicyError(f"line {number} holds a control character")
        if name == "mx":
            mx.append(_mx_pattern(value, number))
        else:
            fields.setdefault(name, value)
    if fields.get("version") != "STSv1":
        raise PolicyError("version is not STSv1")
    try:
        mode = Mode(fields.get("mode", ""))
    except ValueError:
        raise PolicyError(f"mode {fields.get('mode', '')[:40]!r} is not enforce, testing or none") from None
    max_age_text = fields.get("max_age", "")
    if not (max_age_text.isascii() and max_age_text.isdigit() and len(max_age_text) <= 10):
        raise PolicyError("max_age is not a number of seconds")
    max_age = int(max_age_text)
    if max_age > MAX_AGE_LIMIT:
        raise PolicyError(f"max_age is above {MAX_AGE_LIMIT}")
    if mode is not Mode.NONE and not mx:
        raise PolicyError("the policy lists no mx")
    return Policy(mode, tuple(mx), max_age)


def _mx_pattern(value: str, number: int) -> str:
    pattern = value.lower().removesuffix(".")
    labels = pattern.removeprefix("*.").split(".")
    if len(pattern) > 253 or len(labels) < 1 or not all(_LABEL_RE.fullmatch(label) for label in labels):
        raise PolicyError(f"line {number}: mx {value[:60]!r} is not a host name or *.suffix")
    return pattern


def mx_matches(pattern: str, host: str) -> bool:
    """§4.1: a pattern names a host exactly, or `*.suffix` one label in front of the suffix."""
    host = host.lower().removesuffix(".")
    if pattern.startswith("*."):
        first, dot, rest = host.partition(".")
        return bool(first) and bool(dot) and rest == pattern[2:]
    return host == pattern
