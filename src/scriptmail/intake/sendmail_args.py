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
    SEND = "send"  # -bm, the default
    LIST = "list"  # -bp, mailq
    SMTP = "smtp"  # -bs: an SMTP dialogue on stdin and stdout
    VERIFY = "verify"  # -bv: check the recipients, send nothing
    ALIASES = "aliases"  # -bi, newaliases: there is no alias database; nothing to do
    FLUSH = "flush"  # -q, -qR<domain>: retry the caller's deferred mail now


@dataclass(frozen=True, slots=True)
class Invocation:
    mode: Mode = Mode.SEND
    sender: str | None = None  # -f / -r
    full_name: str | None = None  # -F
    extract_recipients: bool = False  # -t
    ignore_dots: bool = False  # -i / -oi; we read until EOF either way
    recipients: tuple[str, ...] = ()
    site: str = ""  # -qR<domain>: only recipients at that domain


@dataclass(slots=True)
class _Options:
    mode: Mode = Mode.SEND
    sender: str | None = None
    full_name: str | None = None
    extract: bool = False
    ignore_dots: bool = False
    recipients: list[str] = field(default_factory=list)
    site: str = ""


_FLAGS = frozenset("tivGU")  # -G (gateway) and -U (initial submission) change nothing here
_WITH_VALUE = frozenset("bfFroBNRVL")  # -L: a syslog tag, ignored
_REFUSED = {
    "X": "-X (traffic log file) is refused: it is a known way to write files through mail()",
    "C": "-C (alternate configuration file) is refused",
    "O": "-O (option setting) is refused",
}
_MODES = {"m": Mode.SEND, "p": Mode.LIST, "s": Mode.SMTP, "v": Mode.VERIFY, "i": Mode.ALIASES}
_NO_RECIPIENTS = {Mode.LIST: "-bp", Mode.SMTP: "-bs", Mode.ALIASES: "-bi", Mode.FLUSH: "-q"}
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
            if letter == "q":
                _flush(options, arg[position:])
                break
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
    if options.mode is Mode.VERIFY:  # every address is judged and reported, none refused here
        if not options.recipients:
            raise UsageError("-bv needs the addresses to verify")
        return Invocation(mode=Mode.VERIFY, recipients=tuple(_split(options.recipients)))
    recipients = _recipients(options.recipients)
    if options.mode in _NO_RECIPIENTS and recipients:
        raise UsageError(f"{_NO_RECIPIENTS[options.mode]} takes no recipients")
    if options.mode is Mode.SEND and not recipients and not options.extract:
        raise UsageError("no recipients given (name them, or use -t to read them from the headers)")
    return Invocation(
        mode=options.mode,
        sender=options.sender,
        full_name=options.full_name,
        extract_recipients=options.extract,
        ignore_dots=options.ignore_dots,
        recipients=recipients,
        site=options.site,
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
        if value not in _MODES:
            raise UsageError(f"mode -b{_shown(value)} is not supported (only -bi, -bm, -bp, -bs and -bv)")
        _set_mode(options, _MODES[value])
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


def _set_mode(options: _Options, mode: Mode) -> None:
    if options.mode is not Mode.SEND and options.mode is not mode:
        raise UsageError(f"two modes given ({options.mode.value} and {mode.value})")
    options.mode = mode


def _flush(options: _Options, value: str) -> None:
    """-q retries all of the caller's deferred mail, -qR<domain> that for one domain; -q<interval>
    (a queue runner daemon) and -qS/-qI have no meaning here."""
    if value.startswith("R") and len(value) > 1:
        domain = value[1:].lower().lstrip("@")
        try:
            domain = check_address(f"postmaster@{domain}").partition("@")[2].lower()  # an IDN as its A-label
        except Refused:
            raise UsageError(f"-qR takes a domain, not {_shown(value[1:])}") from None
        options.site = domain
    elif value:
        raise UsageError(f"-q{_shown(value)} is not supported (only -q and -qR<domain>)")
    _set_mode(options, Mode.FLUSH)


def _sender(value: str) -> str:
    address = value[1:-1] if value.startswith("<") and value.endswith(">") else value
    try:
        return check_address(address, role="sender")
    except Refused as refused:
        raise UsageError(f"invalid sender {_shown(value)}: {refused.text}", EX_DATAERR) from None


def _split(raw: list[str]) -> list[str]:
    """Each argument may hold a comma-separated list, as sendmail allows."""
    found: list[str] = []
    for arg in raw:
        for part in arg.split(","):
            address = part.strip()
            if not address and arg.strip():
                continue
            found.append(address)
    return found


def _recipients(raw: list[str]) -> tuple[str, ...]:
    found: list[str] = []
    for address in _split(raw):
        try:
            found.append(check_address(address))
        except Refused as refused:
            raise UsageError(f"invalid recipient {_shown(address)}: {refused.text}", EX_DATAERR) from None
    return tuple(found)


def _shown(text: str) -> str:
    """User text made safe to print on one line of stderr."""
    return repr(text[:80]) if _CONTROL.search(text) or len(text) > 80 else text
