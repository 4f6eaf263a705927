"""The sendmail command line, parsed strictly: PHP's mail() passes user text as arguments.

Known injections (`-X/path` writes a log file, `-C` reads a config, `-O`/`-o` set options, a `-f`
value carrying a second option or a line break) are refused with EX_USAGE, and so is any option we
do not know. Like getopt, options may be grouped (`-ti`) and any argument starting with `-` before
`--` is an option; after `--` every argument is a recipient. Pure: no I/O, stdlib only.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from scriptmail.intake.checks import Refused, check_address
from scriptmail.intake.sendmail_protocol import EX_DATAERR, EX_USAGE


class UsageError(Exception):
    """The command line is refused; `code` is the sysexits code to exit with."""

    def __init__(self, message: str, code: int = EX_USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class Mode(enum.StrEnum):
    SEND = "send"
    LIST = "list"


@dataclass(frozen=True, slots=True)
class Invocation:
    mode: Mode = Mode.SEND
    sender: str | None = None  # -f / -r
    full_name: str | None = None  # -F
    extract_recipients: bool = False  # -t
    ignore_dots: bool = False  # -i / -oi; we read until EOF either way
    recipients: tuple[str, ...] = ()


@dataclass(slots=True)
class _Options:
    mode: Mode = Mode.SEND
    sender: str | None = None
    full_name: str | None = None
    extract: bool = False
    ignore_dots: bool = False
    recipients: list[str] = field(default_factory=list)


_FLAGS = frozenset("tiv")
_WITH_VALUE = frozenset("bfFroBNRV")
_REFUSED = {
    "X": "-X (traffic log file) is refused: it is a known way to write files through mail()",
    "C": "-C (alternate configuration file) is refused",
    "O": "-O (option setting) is refused",
}
_HARMLESS_O = frozenset({"di", "db", "em", "ee", "ep", "eq", "ew"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DSN_NOTIFY = re.compile(r"^(never|(success|failure|delay)(,(success|failure|delay))*)$", re.I)


def parse_args(args: Sequence[str]) -> Invocation:
    """Parse the arguments after the program name; raise UsageError on anything doubtful."""
    options = _Options()
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if arg == "--":
            options.recipients.extend(args[index:])
            break
        if not arg.startswith("-") or arg == "-":
            options.recipients.append(arg)
            continue
        if arg.startswith("--"):
            raise UsageError(f"unknown option {_shown(arg)}")
        position = 1
        while position < len(arg):
            letter = arg[position]
            position += 1
            if letter in _REFUSED:
                raise UsageError(_REFUSED[letter])
            if letter in _FLAGS:
                options.extract = options.extract or letter == "t"
                options.ignore_dots = options.ignore_dots or letter == "i"
                continue
            if letter not in _WITH_VALUE:
                raise UsageError(f"unknown option -{_shown(letter)}")
            value = arg[position:]
            if not value:
                if index >= len(args):
                    raise UsageError(f"option -{letter} needs a value")
                value = args[index]
                index += 1
            _apply(options, letter, value)
            break
    recipients = _recipients(options.recipients)
    if options.mode is Mode.LIST and recipients:
        raise UsageError("-bp lists the queue and takes no recipients")
    if options.mode is Mode.SEND and not recipients and not options.extract:
        raise UsageError("no recipients given (name them, or use -t to read them from the headers)")
    return Invocation(
        mode=options.mode,
        sender=options.sender,
        full_name=options.full_name,
        extract_recipients=options.extract,
        ignore_dots=options.ignore_dots,
        recipients=recipients,
    )


def _apply(options: _Options, letter: str, value: str) -> None:
    if _CONTROL.search(value):
        raise UsageError(f"the value of -{letter} contains a line break or control character")
    if value.startswith("-"):
        raise UsageError(f"the value of -{letter} must not start with '-' (got {_shown(value)})")
    if letter in "fr":
        if options.sender is not None:
            raise UsageError("more than one sender given (-f/-r)")
        options.sender = _sender(value)
    elif letter == "F":
        options.full_name = value[:256]
    elif letter == "b":
        if value not in ("m", "p"):
            raise UsageError(f"mode -b{_shown(value)} is not supported (only -bm and -bp)")
        options.mode = Mode.LIST if value == "p" else Mode.SEND
    elif letter == "o":
        if value == "i":
            options.ignore_dots = True
        elif value not in _HARMLESS_O:
            raise UsageError(f"option -o{_shown(value)} is refused")
    elif letter == "B" and value.upper() not in ("7BIT", "8BITMIME"):
        raise UsageError(f"-B takes 7BIT or 8BITMIME, not {_shown(value)}")
    elif letter == "N" and not _DSN_NOTIFY.match(value):
        raise UsageError(f"-N takes never or success,failure,delay, not {_shown(value)}")
    elif letter == "R" and value.lower() not in ("full", "hdrs"):
        raise UsageError(f"-R takes full or hdrs, not {_shown(value)}")
    elif letter == "V" and len(value) > 100:
        raise UsageError("-V envelope id longer than 100 characters")


def _sender(value: str) -> str:
    address = value[1:-1] if value.startswith("<") and value.endswith(">") else value
    try:
        return check_address(address, role="sender")
    except Refused as refused:
        raise UsageError(f"invalid sender {_shown(value)}: {refused.text}", EX_DATAERR) from None


def _recipients(raw: list[str]) -> tuple[str, ...]:
    """Each argument may hold a comma-separated list, as sendmail allows."""
    found: list[str] = []
    for arg in raw:
        for part in arg.split(","):
            address = part.strip()
            if not address and arg.strip():
                continue
            try:
                found.append(check_address(address))
            except Refused as refused:
                raise UsageError(f"invalid recipient {_shown(part)}: {refused.text}", EX_DATAERR) from None
    return tuple(found)


def _shown(text: str) -> str:
    """User text made safe to print on one line of stderr."""
    return repr(text[:80]) if _CONTROL.search(text) or len(text) > 80 else text
