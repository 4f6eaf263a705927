"""Folding over-long lines before they go on the wire (RFC 5321 §4.5.3.1.6)."""

from __future__ import annotations

from scriptmail.delivery.wire import MAX_LINE, fold_long_lines


def _lines(data: bytes) -> list[bytes]:
    assert data.endswith(b"\r\n")
    return data[:-2].split(b"\r\n")


def test_short_messages_are_untouched() -> None:
    message = b"Subject: hi\r\n\r\nshort body\r\n"
    assert fold_long_lines(message) is message or fold_long_lines(message) == message


def test_a_missing_final_newline_is_added() -> None:
    assert fold_long_lines(b"Subject: x\r\n\r\nno newline") == b"Subject: x\r\n\r\nno newline\r\n"


def test_long_body_lines_are_broken_without_losing_a_byte() -> None:
    body_line = bytes(range(65, 91)) * 100  # 2,600 octets, no spaces
    folded = fold_long_lines(b"Subject: x\r\n\r\n" + body_line + b"\r\n")
    lines = _lines(folded)
    assert max(map(len, lines)) <= MAX_LINE
    assert b"".join(lines[2:]) == body_line


def test_long_header_fields_are_folded_at_white_space_into_continuation_lines() -> None:
    value = " ".join(f"word{i}" for i in range(400))
    folded = fold_long_lines(f"X-Long: {value}\r\nSubject: x\r\n\r\nbody\r\n".encode())
    lines = _lines(folded)
    assert max(map(len, lines)) <= MAX_LINE
    header_lines = lines[: lines.index(b"")]
    assert header_lines[-1] == b"Subject: x"
    assert all(line.startswith(b" ") for line in header_lines[1:-1])
    unfolded = b"".join(header_lines[:-1]).decode()
    assert unfolded.split(" ", 1)[1].split() == value.split()


def test_a_header_without_spaces_is_cut_and_continued() -> None:
    folded = fold_long_lines(b"X-Token: " + b"z" * 3000 + b"\r\n\r\nbody\r\n")
    lines = _lines(folded)
    assert max(map(len, lines)) <= MAX_LINE
    assert all(line.startswith(b" ") for line in lines[1 : lines.index(b"")])
