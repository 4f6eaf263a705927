"""What each export holds: its columns in order, and a store row made into an export row (times
as ISO 8601 UTC, names as the API's). Pure."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any


def iso(at: float | None) -> str | None:
    return None if at is None else datetime.fromtimestamp(at, timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Kind:
    """One export: its name (in file names and paths), its columns, how a store row becomes one."""

    name: str
    columns: tuple[str, ...]
    convert: Callable[[Mapping[str, Any]], dict[str, Any]]

    def rows(self, found: Iterable[Mapping[str, Any]]) -> Iterator[dict[str, Any]]:
        return (self.convert(row) for row in found)


def _message(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"], "queue_id": row["queue_id"], "received_at": iso(row["received_at"]), "sender": row["sender"],
        "recipient": row["recipient"], "subject": row["subject"], "status": row["status"], "attempts": row["attempts"],
        "last_code": row["last_code"], "last_text": row["last_text"], "updated_at": iso(row["updated_at"]),
        "size": row["size"], "origin": row["origin"], "script": row["script"], "cwd": row.get("cwd", ""),
        "command": row.get("command", ""), "message_id": row.get("message_id_header", ""),
    }  # fmt: skip


def _bounce(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"], "queue_id": row["queue_id"], "date": iso(row["updated_at"]), "received_at": iso(row["received_at"]),
        "sender": row["sender"], "recipient": row["recipient"], "subject": row["subject"], "status": row["status"],
        "code": row["last_code"], "message": row["last_text"], "script": row["script"],
    }  # fmt: skip


def _suppression(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "address": row["value"], "kind": row["kind"], "reason": row["reason"], "code": row["code"], "reply": row["reply"],
        "since": iso(row["created_at"]), "until": iso(row["expires_at"]),
    }  # fmt: skip


MESSAGES = Kind("log", ("id", "queue_id", "received_at", "sender", "recipient", "subject", "status", "attempts", "last_code",
                        "last_text", "updated_at", "size", "origin", "script", "cwd", "command", "message_id"), _message)  # fmt: skip
BOUNCES = Kind("bounces", ("id", "queue_id", "date", "received_at", "sender", "recipient", "subject", "status", "code",
                           "message", "script"), _bounce)  # fmt: skip
SUPPRESSIONS = Kind("suppressions", ("address", "kind", "reason", "code", "reply", "since", "until"), _suppression)


def file_name(hosting: str, kind: Kind, format: str, at: float) -> str:
    """`shop.example-log-20261201.csv`: only letters, digits, dots and dashes of the hosting's name."""
    safe = "".join(ch if ch.isascii() and (ch.isalnum() or ch in ".-") else "_" for ch in hosting)[:100] or "hosting"
    return f"{safe}-{kind.name}-{datetime.fromtimestamp(at, timezone.utc):%Y%m%d}.{format}"
