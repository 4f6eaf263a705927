"""The sendmail command line: what PHP's mail() passes, and what injection attempts look like."""

from __future__ import annotations

import pytest

from scriptmail.intake.sendmail_args import Invocation, Mode, UsageError, parse_args
from scriptmail.intake.sendmail_protocol import EX_DATAERR, EX_USAGE


def refused(args: list[str]) -> UsageError:
    with pytest.raises(UsageError) as caught:
        parse_args(args)
    return caught.value


def test_php_mail_call_with_additional_parameters():
    assert parse_args(["-t", "-i", "-fwebmaster@example.com"]) == Invocation(
        mode=Mode.SEND, sender="webmaster@example.com", extract_recipients=True, ignore_dots=True
    )


@pytest.mark.parametrize(
    "args",
    [
        ["-f", "webmaster@example.com", "-t"],
        ["-r", "webmaster@example.com", "-t"],
        ["-ti", "-f<webmaster@example.com>"],
        ["-tif", "webmaster@example.com"],
    ],
)
def test_sender_spellings(args):
    invocation = parse_args(args)
    assert invocation.sender == "webmaster@example.com"
    assert invocation.extract_recipients


def test_recipients_from_arguments_and_comma_lists():
    invocation = parse_args(["-oi", "a@example.com", "b@example.org, c@example.net", "-F", "Web Shop"])
    assert invocation.recipients == ("a@example.com", "b@example.org", "c@example.net")
    assert invocation.full_name == "Web Shop"
    assert invocation.ignore_dots and not invocation.extract_recipients


@pytest.mark.parametrize(
    "harmless",
    [["-odi"], ["-odb"], ["-oem"], ["-oee"], ["-oep"], ["-oeq"], ["-oew"], ["-v"], ["-B", "7BIT"],
     ["-B8BITMIME"], ["-N", "success,failure"], ["-Nnever"], ["-R", "hdrs"], ["-V", "envid42"], ["-bm"],
     ["-L", "myapp"], ["-Lmyapp"], ["-G"], ["-U"], ["-GUv"]],
)
def test_harmless_options_are_accepted_and_ignored(harmless):
    assert parse_args([*harmless, "-t"]) == Invocation(extract_recipients=True)


def test_bp_lists_the_queue():
    assert parse_args(["-bp"]).mode is Mode.LIST


def test_bp_takes_no_recipients():
    assert refused(["-bp", "a@example.com"]).code == EX_USAGE


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["-t", "-X/var/www/shell.php"], "-X"),
        (["-t", "-X", "/var/www/shell.php"], "-X"),
        (["-tX/var/www/shell.php"], "-X"),
        (["-t", "-C/tmp/sendmail.cf"], "-C"),
        (["-t", "-OQueueDirectory=/tmp"], "-O"),
        (["-t", "-O", "QueueDirectory=/tmp"], "-O"),
        (["-t", "-oQ/tmp"], "-oQ/tmp"),
        (["-t", "-oX"], "-oX"),
        (["-t", "-odq"], "-odq"),
        (["-t", "-q1h"], "-q1h is not supported"),
        (["-qS", "example.org"], "-qS is not supported"),
        (["-qRnot_a_domain"], "-qR takes a domain"),
        (["-q", "a@example.com"], "-q takes no recipients"),
        (["-bs", "a@example.com"], "-bs takes no recipients"),
        (["-bd"], "-bd is not supported"),
        (["-bs", "-bp"], "two modes"),
        (["-bv"], "-bv needs the addresses"),
        (["-t", "-d0"], "unknown option -d"),
        (["-t", "--help"], "unknown option --help"),
        (["-t", "-B", "BINARYMIME"], "-B"),
        (["-t", "-R", "all"], "-R"),
        (["-t", "-N", "sometimes"], "-N"),
        (["a@example.com", "-X/tmp/log"], "-X"),
    ],
)
def test_dangerous_or_unknown_options_are_usage_errors(args, says):
    error = refused(args)
    assert error.code == EX_USAGE
    assert says in error.message


@pytest.mark.parametrize(
    "value",
    ["a@example.com\r", "a@example.com\nBcc: victim@example.org", "a@example.com\x00", "a@example.com\rX: y"],
)
def test_sender_with_line_break_or_nul_is_refused(value):
    error = refused(["-t", "-f", value])
    assert error.code == EX_USAGE
    assert "control character" in error.message
    assert refused(["-t", f"-f{value}"]).code == EX_USAGE
    assert refused(["-t", "-r", value]).code == EX_USAGE


@pytest.mark.parametrize("args", [["-t", "-f", "-X/tmp/log"], ["-t", "-f-oQ/tmp"], ["-t", "-r", "-C/x"]])
def test_sender_starting_with_a_dash_is_refused(args):
    error = refused(args)
    assert error.code == EX_USAGE
    assert "must not start with '-'" in error.message


def test_full_name_with_line_break_is_refused():
    assert refused(["-t", "-F", "Shop\r\nBcc: victim@example.org"]).code == EX_USAGE


@pytest.mark.parametrize(
    "sender", ['"a b"@example.com', "a\\b@example.com", "a@example.com@[10.0.0.1]", "user%other@example.com", "<>", "nodomain"]
)
def test_malformed_sender_is_a_data_error(sender):
    error = refused(["-t", "-f", sender])
    assert error.code == EX_DATAERR
    assert "invalid sender" in error.message


def test_option_value_missing():
    assert refused(["-t", "-f"]).code == EX_USAGE


def test_two_senders_are_refused():
    assert refused(["-t", "-fa@example.com", "-rb@example.com"]).code == EX_USAGE


def test_no_recipients_without_t_is_a_usage_error():
    assert refused(["-i"]).code == EX_USAGE
    assert refused([]).code == EX_USAGE


def test_after_double_dash_everything_is_a_recipient():
    invocation = parse_args(["-i", "--", "a@example.com", "-odd@example.com"])
    assert invocation.recipients == ("a@example.com", "-odd@example.com")


@pytest.mark.parametrize("arg", ["-X/tmp/log", "-oQ/tmp", "-t", "-C"])
def test_option_lookalikes_after_double_dash_must_pass_address_checks(arg):
    error = refused(["-i", "--", arg])
    assert error.code == EX_DATAERR
    assert "invalid recipient" in error.message


@pytest.mark.parametrize("recipient", ["root", "user@[10.0.0.1]", "a@b@example.com", "dom!user", "a b@example.com", ""])
def test_invalid_argument_recipient_is_a_data_error(recipient):
    assert refused(["-i", recipient]).code == EX_DATAERR


def test_long_hostile_values_are_shortened_in_messages():
    error = refused(["-t", "-o" + "Q" * 5000])
    assert len(error.message) < 200


def test_the_modes_postfix_sendmail_has_and_that_callers_use():
    assert parse_args(["-bs"]) == Invocation(mode=Mode.SMTP)
    assert parse_args(["-bs", "-i"]).mode is Mode.SMTP  # Laravel
    assert parse_args(["-bi"]) == Invocation(mode=Mode.ALIASES)
    assert parse_args(["-q"]) == Invocation(mode=Mode.FLUSH)
    assert parse_args(["-qRExample.ORG"]) == Invocation(mode=Mode.FLUSH, site="example.org")


def test_cron_mails_a_jobs_output_like_this():
    invocation = parse_args(["-FCronDaemon", "-i", "-B8BITMIME", "-oem", "admin@example.org"])
    assert invocation.recipients == ("admin@example.org",) and invocation.full_name == "CronDaemon"


def test_bv_keeps_every_address_to_report_on_it():
    assert parse_args(["-bv", "a@example.org", "user@[10.0.0.1],b@example.org"]).recipients == (
        "a@example.org", "user@[10.0.0.1]", "b@example.org",
    )


def test_utf8_arguments_are_taken_with_idn_domains_as_a_labels():
    invocation = parse_args(["-f", "josé@bücher.example", "-i", "ñandú@xn--bcher-kva.example,jürgen@BÜCHER.example"])
    assert invocation.sender == "josé@xn--bcher-kva.example"
    assert invocation.recipients == ("ñandú@xn--bcher-kva.example", "jürgen@xn--bcher-kva.example")
    assert parse_args(["-qRbücher.example"]) == Invocation(mode=Mode.FLUSH, site="xn--bcher-kva.example")
