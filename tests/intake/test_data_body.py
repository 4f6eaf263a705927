"""The DATA body read in pieces must end, refuse and unstuff exactly as a plain line-by-line reading."""

from __future__ import annotations

import random

import pytest

from scriptmail.intake.data_body import END, Body, Problem, unstuff

LINE_LIMIT = 1001


def _line_by_line(stream: bytes, size_limit: int | None) -> tuple[bytes | None, Problem | None, bytes]:
    """The reference: RFC 5321 §4.5.2 read a CRLF-ended line at a time. Returns the content (or
    None), the problem, and what follows the final dot."""
    position, lines, size, problem = 0, [], 0, None
    while True:
        end = stream.index(b"\r\n", position) + 2
        line = stream[position:end]
        position = end
        if line == b".\r\n":
            break
        size += len(line)
        if problem is None and size_limit and size > size_limit:
            problem = Problem.TOO_MUCH
        if problem is None and len(line) > LINE_LIMIT:
            problem = Problem.LINE_TOO_LONG
        lines.append(line[1:] if line.startswith(b".") else line)
    return (None if problem else b"".join(lines)), problem, stream[position:]


def _in_pieces(stream: bytes, size_limit: int | None, cut: random.Random) -> tuple[bytes | None, Problem | None, bytes]:
    """What the protocol does with its reader: each piece runs up to the next ".\\r\\n", or is a
    cut-off piece with no ".\\r\\n" in it (the reader's limit), taken at random lengths here."""
    body, position = Body(size_limit, LINE_LIMIT), 0
    while True:
        found = stream.find(END, position)
        if found < 0:
            raise AssertionError("the stream never ended")
        end = found + len(END)
        if cut.random() < 0.5 and found > position:  # the reader cuts only before a separator
            end = cut.randint(position + 1, found)
        piece, position = stream[position:end], end
        if body.feed(piece):
            return (None if body.problem else body.content()), body.problem, stream[position:]


def _random_line(rng: random.Random) -> bytes:
    alphabet = [b"a", b".", b"\r", b"\n", b"\x00", b" ", b"\r\n", b".\r\n", b"..", b"\r\n."]
    return b"".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))) + b"\r\n"


@pytest.mark.parametrize("seed", range(300))
def test_pieces_agree_with_a_line_by_line_reading(seed: int) -> None:
    rng = random.Random(seed)
    body = b"".join(_random_line(rng) for _ in range(rng.randint(0, 8)))
    body = body.replace(b"\r\n.\r\n", b"\r\n..\r\n")  # what a client sends is dot-stuffed
    body = b"..\r\n" + body[3:] if body.startswith(b".\r\n") else body
    stream = body + b".\r\nQUIT\r\n"
    size_limit = rng.choice([None, 0, 10, 40, 10_000])
    expected = _line_by_line(stream, size_limit)
    for attempt in range(5):
        assert _in_pieces(stream, size_limit, random.Random(attempt)) == expected, stream


@pytest.mark.parametrize(
    "stream",
    [
        b".\r\n",  # an empty body
        b"hello\r\n.\r\n",
        b"a.\r\nb\r\n.\r\n",  # a line ending in a dot does not end the body
        b"\r\n.\r\n",  # one empty line
        b"..\r\n.\r\n",  # a stuffed lone dot
    ],
)
def test_the_body_ends_only_at_a_dot_that_starts_a_line(stream: bytes) -> None:
    assert _in_pieces(stream + b"NEXT", None, random.Random(1))[2] == b"NEXT"


@pytest.mark.parametrize("sequence", [b"\n.\n", b"\r.\n", b"\n.\r\n", b"\r.\r\n", b"\r\n\x00.\r\n", b"\r\n.\r\r\n"])
def test_smuggling_sequences_are_data(sequence: bytes) -> None:
    stream = b"hello" + sequence + b"MAIL FROM:<x@y>\r\n.\r\n"
    content, problem, rest = _in_pieces(stream, None, random.Random(2))
    assert problem is None and rest == b""
    assert b"MAIL FROM" in content


def test_a_long_line_is_refused_after_the_whole_body_and_nothing_is_kept() -> None:
    body = Body(None, LINE_LIMIT)
    assert not body.feed(b"Subject: long\r\n\r\n" + b"y" * 2000)
    assert body.feed(b"\r\n.\r\n")
    assert body.problem is Problem.LINE_TOO_LONG


def test_past_the_size_limit_the_data_is_dropped_but_the_body_is_read_to_its_end() -> None:
    body = Body(64, LINE_LIMIT)
    for _ in range(1000):
        assert not body.feed(b"x" * 998 + b"\r\n")
    assert body.feed(b".\r\n")
    assert body.problem is Problem.TOO_MUCH
    assert body.size == 1000 * 1000
    assert len(body._data) == 0  # memory stays flat whatever the client sends


def test_a_long_line_before_the_size_limit_decides_the_reply() -> None:
    body = Body(3000, LINE_LIMIT)
    body.feed(b"a" * 1500 + b"\r\n" + b"b" * 2000 + b"\r\n.\r\n")
    assert body.problem is Problem.LINE_TOO_LONG


def test_unstuff_removes_one_leading_dot_per_line() -> None:
    assert unstuff(b"..a\r\n.b\r\nc.\r\n...\r\n") == b".a\r\nb\r\nc.\r\n..\r\n"
