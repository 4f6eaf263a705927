"""The `scriptmail` command as an operator uses it, run as a real process."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scriptmail.model import AttemptResult, Origin, RecipientStatus, Submission
from scriptmail.store import accounts, audit, hostings
from scriptmail.store import queue as store_queue
from scriptmail.store.engine import for_writing, open_engine
from scriptmail.webhooks.events import SUBSCRIBABLE

SCRIPTMAIL = str(Path(sys.executable).with_name("scriptmail"))


@pytest.fixture
def run(database_url: str, tmp_path: Path):
    config = tmp_path / "scriptmail.toml"
    config.write_text(f'database_url = "{database_url}"\n')

    def run(*args: str, expect: int = 0, input: str | None = None) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [SCRIPTMAIL, "--config", str(config), *args], capture_output=True, text=True, timeout=60, cwd=tmp_path, input=input
        )
        assert result.returncode == expect, (result.stdout, result.stderr)
        return result

    run.config = config
    return run


def test_hosting_lifecycle(run) -> None:
    run("db", "upgrade")
    added = run("hosting", "add", "shop.example", "--owner", "owner@shop.example", "--uid", "1500", "--generate-smtp-password")
    assert re.search(r"SMTP password \(shown once\): \S{20,}", added.stdout)
    (hosting,) = json.loads(run("hosting", "list", "--json").stdout)
    assert hosting | {"id": 0} == {
        "id": 0, "name": "shop.example", "owner_email": "owner@shop.example", "uid": 1500,
        "plan": "default", "state": "active", "has_smtp_password": True, "report_to": None, "language": "en", "notices": True,
    }
    run("hosting", "set", "shop.example", "--plan", "pro", "--no-uid", "--no-smtp-password")
    shown = json.loads(run("hosting", "show", "shop.example", "--json").stdout)
    assert (shown["plan"], shown["uid"], shown["has_smtp_password"], shown["recipients"]) == ("pro", None, False, {})
    assert shown["sending"] == {"last_hour": 0, "hourly": 100, "today": 0, "max_per_day": 0}
    assert "shop.example" in run("hosting", "list").stdout
    deleted = run("hosting", "delete", "shop.example").stdout
    assert re.search(r"its log is kept as deleted~\d+~shop.example", deleted)
    assert json.loads(run("hosting", "list", "--json").stdout) == []
    assert "no hosting named" in run("hosting", "delete", "shop.example", expect=1).stderr


def test_the_smtp_password_comes_from_stdin_or_is_generated_never_from_the_command_line(run, database_url: str) -> None:
    run("hosting", "add", "shop.example", "--owner", "owner@shop.example", "--smtp-password-stdin", input="first long secret\n")
    run("hosting", "set", "shop.example", "--smtp-password-stdin", input="second long secret\n")
    engine = open_engine(database_url)
    with engine.connect() as connection:
        _, stored = hostings.smtp_password_hash(connection, "shop.example")
    engine.dispose()
    assert stored.startswith("$argon2id$") and hostings.password_matches(stored, "second long secret")
    assert not hostings.password_matches(stored, "first long secret")
    assert "No such option" in run("hosting", "set", "shop.example", "--smtp-password", "visible in ps", expect=2).stderr
    assert "10 to 200 characters" in run("hosting", "set", "shop.example", "--smtp-password-stdin", input="short\n", expect=1).stderr
    assert "control characters" in run("hosting", "set", "shop.example", "--smtp-password-stdin", input="long enough\x00pw\n", expect=1).stderr
    both = run("hosting", "set", "shop.example", "--smtp-password-stdin", "--generate-smtp-password", input="x" * 20, expect=1)
    assert "exclude each other" in both.stderr


def test_operator_tokens_have_a_scope_and_customers_none(run) -> None:
    run("user", "add", "ops@example.net", "--operator")
    run("user", "add", "customer@example.net")
    made = run("token", "create", "ops@example.net", "--scope", "provision", "--label", "panel").stdout
    assert re.search(r"token \d+ for ops@example.net \(scope provision\) \(shown once\): smk_\S+", made)
    assert "not an operator" in run("token", "create", "customer@example.net", "--scope", "read", expect=1).stderr
    assert "choose one of read, manage, provision" in run("token", "create", "ops@example.net", "--scope", "root", expect=1).stderr
    run("token", "create", "customer@example.net")


def test_refusals_are_clear_and_non_zero(run) -> None:
    run("hosting", "add", "shop.example", "--owner", "owner@shop.example", "--uid", "1500")
    duplicate = run("hosting", "add", "shop.example", "--owner", "owner@shop.example", expect=1)
    assert "already exists" in duplicate.stderr
    assert "already exists" in run("hosting", "add", "other.example", "--owner", "o@x.test", "--uid", "1500", expect=1).stderr
    assert "invalid e-mail" in run("hosting", "add", "x.example", "--owner", "not-an-address", expect=1).stderr
    assert "invalid hosting name" in run("hosting", "add", "Bad Name", "--owner", "o@x.test", expect=1).stderr
    assert "no hosting named" in run("hosting", "show", "ghost.example", expect=1).stderr
    assert "no hosting named" in run("hosting", "set", "ghost.example", "--plan", "pro", expect=1).stderr
    assert "no plan named 'gold'" in run("hosting", "set", "shop.example", "--plan", "gold", expect=1).stderr
    assert "invalid e-mail" in run("hosting", "set", "shop.example", "--report-to", "a@@b", expect=1).stderr
    assert "choose one of es, en, fr, de, it, pt, pl" in run("hosting", "set", "shop.example", "--language", "nl", expect=1).stderr


def test_the_new_languages_are_set_from_the_command_line(run, database_url: str) -> None:
    run("db", "upgrade")
    run("hosting", "add", "shop.example", "--owner", "owner@shop.example")
    run("hosting", "set", "shop.example", "--language", "pl")
    assert json.loads(run("hosting", "show", "shop.example", "--json").stdout)["language"] == "pl"
    run("user", "add", "anna@shop.example", "--language", "de")
    assert "choose one of es, en, fr, de, it, pt, pl" in run("hosting", "set", "shop.example", "--language", "pt_BR", expect=1).stderr
    assert "choose one of es, en, fr, de, it, pt, pl" in run("user", "add", "bob@shop.example", "--language", "../de", expect=1).stderr
    engine = open_engine(database_url)
    with engine.connect() as connection:
        anna, bob = accounts.find_user(connection, email="anna@shop.example"), accounts.find_user(connection, email="bob@shop.example")
    engine.dispose()
    assert anna is not None and anna.language == "de"
    assert bob is None


def test_queue_and_log_are_empty_lists_for_scripts(run) -> None:
    assert json.loads(run("queue", "--json").stdout) == []
    assert json.loads(run("log", "--json", "--status", "bounced").stdout) == []
    assert "invalid" in run("log", "--status", "lost", expect=2).stderr.lower()


def test_bad_configuration_names_the_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[delivery]\nrelay_host = "relay.test:notaport"\n')
    result = subprocess.run([SCRIPTMAIL, "--config", str(config), "queue"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 78
    assert "delivery.relay_host" in result.stderr


def test_unreachable_database_is_a_temporary_failure(tmp_path: Path) -> None:
    config = tmp_path / "down.toml"
    config.write_text('database_url = "postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=2"\n')
    result = subprocess.run([SCRIPTMAIL, "--config", str(config), "queue"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 75
    assert "database unavailable" in result.stderr


def test_queue_and_log_show_waiting_and_finished_recipients(run, database_url: str) -> None:
    run("hosting", "add", "shop.example", "--owner", "owner@shop.example")
    run("hosting", "add", "blog.example", "--owner", "owner@blog.example")
    engine = open_engine(database_url)
    with for_writing(engine).begin() as connection:
        for name in ("shop.example", "blog.example"):
            hosting = hostings.find_hosting(connection, name=name)
            store_queue.insert_submission(
                connection,
                Submission(hosting.id, f"web@{name}", (f"a@{name}", f"b@{name}"), b"Subject: hi\r\n\r\nx\r\n", Origin.SMTP, "127.0.0.1", subject="hi"),
                time.time(),
            )
        sent = [r for r in store_queue.claim_due(connection, "n", 10, 60, time.time()) if r.address == "a@shop.example"]
        store_queue.record_results(connection, "n", [AttemptResult(sent[0].id, RecipientStatus.SENT, 250, "2.0.0 ok", "mx", time.time(), 0.1)], time.time())
        connection.exec_driver_sql("UPDATE recipients SET status = 'queued', lease_owner = NULL WHERE status = 'sending'")
    engine.dispose()

    waiting = json.loads(run("queue", "--hosting", "shop.example", "--json").stdout)
    assert [(row["recipient"], row["status"]) for row in waiting] == [("b@shop.example", "queued")]
    everything = json.loads(run("log", "--json").stdout)
    assert len(everything) == 4
    (done,) = json.loads(run("log", "--json", "--status", "sent").stdout)
    assert (done["recipient"], done["last_code"], done["subject"], done["hosting"]) == ("a@shop.example", 250, "hi", "shop.example")
    table = run("queue").stdout
    assert "b@blog.example" in table and "3 recipient(s) in the queue" in table


def test_first_serve_creates_a_demo_hosting_and_says_how_to_use_it(tmp_path: Path) -> None:
    config = tmp_path / "scriptmail.toml"
    config.write_text(
        f'database_url = "sqlite:///{tmp_path / "demo.db"}"\n[intake]\nlisten = "127.0.0.1:0"\n'
        f'socket = "{tmp_path / "intake.sock"}"\nmaildrop = "{tmp_path / "maildrop"}"\n[web]\nlisten = "127.0.0.1:0"\n'
    )
    process = subprocess.Popen([SCRIPTMAIL, "--config", str(config), "serve"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    output = ""
    try:
        deadline = time.monotonic() + 30
        while "/operator" not in output and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            output += line
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(20)
    assert "A demo hosting demo was created" in output
    assert "parts smtp, sendmail, delivery, maildrop, scheduler, bounces, web" in output  # every part by default
    assert "scriptmail-sendmail -t -i" in output and "swaks --server 127.0.0.1:" in output and "--from web@demo.invalid" in output
    assert "127.0.0.1:0" not in output  # the real port is printed
    assert process.returncode == 0
    hosting = json.loads(subprocess.run([SCRIPTMAIL, "--config", str(config), "hosting", "show", "demo", "--json"], capture_output=True, text=True).stdout)
    assert hosting["uid"] == os.getuid() and hosting["has_smtp_password"]
    # The printed logins work: the customer owns the demo hosting, the operator is one.
    from scriptmail.store import accounts
    from scriptmail.store.engine import open_engine

    engine = open_engine(f"sqlite:///{tmp_path / 'demo.db'}")
    with engine.connect() as connection:
        for email, operator in (("owner@demo.invalid", False), ("operator@demo.invalid", True)):
            password = re.search(re.escape(email) + r" \(password (\S+)\)", output).group(1)
            user = accounts.check_password(connection, email, password)
            assert user is not None and user.operator is operator
        assert accounts.hosting_names(connection, accounts.find_user(connection, email="owner@demo.invalid")) == ["demo"]
    engine.dispose()


def test_log_filters_and_one_recipient_in_full(run, database_url: str) -> None:
    run("hosting", "add", "shop.example", "--owner", "owner@shop.example")
    engine = open_engine(database_url)
    with for_writing(engine).begin() as connection:
        hosting = hostings.find_hosting(connection, name="shop.example")
        for number, (subject, script) in enumerate([("Order 100% paid", "1000:checkout.php"), ("Password reset", "1000:forgot.php")]):
            store_queue.insert_submission(
                connection,
                Submission(hosting.id, f"web{number}@shop.example", (f"r{number}@x.test",), b"Subject: s\r\n\r\nx\r\n",
                           Origin.SENDMAIL, "uid:1", subject=subject, script=script),
                time.time() - number * 86400,
            )  # fmt: skip
        claimed = store_queue.claim_due(connection, "n", 10, 60, time.time())
        store_queue.record_results(
            connection, "n",
            [AttemptResult(r.id, RecipientStatus.BOUNCED, 550, "5.1.1 no such user", "mx.x.test", time.time(), 0.2) for r in claimed],
            time.time(),
        )  # fmt: skip
    engine.dispose()

    def recipients_of(*args: str) -> list[str]:
        return [row["recipient"] for row in json.loads(run("log", "--json", *args).stdout)]

    assert recipients_of("--script", "forgot") == ["r1@x.test"]
    assert recipients_of("--subject", "100%") == ["r0@x.test"]  # % is a character, not a wildcard
    assert recipients_of("--subject", "_") == []
    assert recipients_of("--sender", "WEB0") == ["r0@x.test"]
    assert recipients_of("--recipient", "r1@") == ["r1@x.test"]
    assert recipients_of("--since", time.strftime("%Y-%m-%dT%H:%M", time.gmtime(time.time() - 3600))) == ["r0@x.test"]
    assert "r1@x.test" in recipients_of("--until", time.strftime("%Y-%m-%d", time.gmtime(time.time() + 86400)))
    assert "--since 'last week'" in run("log", "--since", "last week", expect=1).stderr
    (row,) = json.loads(run("log", "--json", "--script", "checkout").stdout)
    shown = json.loads(run("log", "show", str(row["id"]), "--json").stdout)
    assert shown["script"] == "1000:checkout.php" and shown["client"] == "uid:1"
    assert [(a["code"], a["mx_host"]) for a in shown["attempts"]] == [(550, "mx.x.test")]
    assert "no recipient with id 999999" in run("log", "show", "999999", expect=1).stderr
    assert "r0@x.test" in run("log", "show", str(row["id"])).stdout


def test_stats_has_the_reference_counters_and_refuses_bad_input(run, database_url: str) -> None:
    run("hosting", "add", "shop.example", "--owner", "owner@shop.example", "--plan", "pro")
    engine = open_engine(database_url)
    with for_writing(engine).begin() as connection:
        hosting = hostings.find_hosting(connection, name="shop.example")
        store_queue.insert_submission(
            connection,
            Submission(hosting.id, "web@shop.example", tuple(f"r{n}@x.test" for n in range(3)), b"Subject: s\r\n\r\nx\r\n",
                       Origin.SENDMAIL, "uid:1", subject="hello", script="1000:contact.php"),
            time.time(),
        )  # fmt: skip
        claimed = store_queue.claim_due(connection, "n", 10, 60, time.time())
        outcomes = [(RecipientStatus.SENT, 250), (RecipientStatus.SENT, 250), (RecipientStatus.BOUNCED, 550)]
        store_queue.record_results(
            connection, "n",
            [AttemptResult(r.id, s, c, "reply", "mx", time.time(), 0.1, None, hosting.id) for r, (s, c) in zip(claimed, outcomes)],
            time.time(),
        )  # fmt: skip
    engine.dispose()
    shown = json.loads(run("stats", "shop.example", "--json").stdout)
    assert {key: shown[key] for key in ("sent", "sentToday", "maxPerDay", "bounce")} == {"sent": 2, "sentToday": 2, "maxPerDay": 0, "bounce": 1}
    assert shown["statuses"]["sent"] == 2 and shown["statuses"]["bounced"] == 1
    assert [(row["to"], row["code"], row["subject"]) for row in shown["bounces"]] == [("r2@x.test", 550, "hello")]
    assert shown["scripts"][0]["script"] == "1000:contact.php" and shown["scripts"][0]["recipients"] == 3
    assert len(shown["days"]) == 30 and shown["days"][-1]["sent"] == 2 and len(shown["hours"]) == 48
    assert json.loads(run("stats", "shop.example", "--json", "--offset", "1").stdout)["bounces"] == []
    assert "r2@x.test" in run("stats", "shop.example").stdout
    assert "no hosting named" in run("stats", "ghost.example", expect=1).stderr
    run("stats", "shop.example", "--bounces", "101", expect=2)
    run("stats", "shop.example", "--offset", "-1", expect=2)


def test_webhook_endpoints_from_the_command_line(run, database_url: str) -> None:
    run("hosting", "add", "shop.example", "--owner", "owner@shop.example")
    created = json.loads(run("webhook", "add", "https://hooks.example.com/in", "--events", "hosting.state_changed,message.bounced", "--json").stdout)
    assert created["secret"].startswith("whsec_") and created["hosting"] is None
    assert created["events"] == ["hosting.state_changed", "message.bounced"]
    mine = run("webhook", "add", "https://panel.example/in", "--hosting", "shop.example")
    assert "signing secret (shown once): whsec_" in mine.stdout
    assert [e["url"] for e in json.loads(run("webhook", "list", "--json").stdout)] == ["https://hooks.example.com/in"]
    assert [e["hosting"] for e in json.loads(run("webhook", "list", "--all", "--json").stdout)] == [None, "shop.example"]
    listed = json.loads(run("webhook", "list", "--hosting", "shop.example", "--json").stdout)
    assert "secret" not in listed[0] and sorted(listed[0]["events"]) == sorted(SUBSCRIBABLE)
    rotated = json.loads(run("webhook", "rotate", str(created["id"]), "--json").stdout)
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != created["secret"]
    test = json.loads(run("webhook", "test", str(created["id"]), "--json").stdout)
    assert test["webhook_id"].startswith("msg_")
    assert json.loads(run("webhook", "log", str(created["id"]), "--json").stdout) == []
    run("webhook", "remove", str(created["id"]))
    assert "no webhook endpoint" in run("webhook", "remove", str(created["id"]), expect=1).stderr
    # Every change is in the audit log, as the CLI with the uid that ran it; a test event changes nothing.
    engine = open_engine(database_url)
    with engine.connect() as connection:
        logged = audit.entries(connection, target=f"webhook {created['id']}")[0]
    engine.dispose()
    actor = f"cli (uid {os.getuid()})"
    assert [(row["action"], row["actor"]) for row in logged] == [("webhook.remove", actor), ("webhook.rotate", actor), ("webhook.create", actor)]
    assert logged[-1]["after"]["url"] == "https://hooks.example.com/in" and "whsec_" not in str(logged)


def test_webhook_refusals_are_clear(run) -> None:
    run("db", "upgrade")
    assert "https://" in run("webhook", "add", "ftp://x.example/", expect=1).stderr
    assert "user name or password" in run("webhook", "add", "https://u:p@x.example/", expect=1).stderr
    assert "unknown event" in run("webhook", "add", "https://x.example/", "--events", "mail.sent", expect=1).stderr
    assert "no hosting named" in run("webhook", "add", "https://x.example/", "--hosting", "ghost.example", expect=1).stderr
    assert "no webhook endpoint" in run("webhook", "rotate", "99", expect=1).stderr
    assert "no webhook endpoint" in run("webhook", "test", "99", expect=1).stderr
    assert run("webhook", "log", "abc", expect=2).returncode == 2


def test_the_webhook_endpoint_caps_stop_the_command_with_exit_73(run, database_url: str) -> None:
    run.config.write_text(run.config.read_text() + "\n[webhooks]\nmax_platform_endpoints = 1\nmax_hosting_endpoints = 1\n")
    run("hosting", "add", "shop.example", "--owner", "owner@shop.example")
    run("webhook", "add", "https://hooks.example.com/1")
    run("webhook", "add", "https://hooks.example.com/mine", "--hosting", "shop.example")
    full = run("webhook", "add", "https://hooks.example.com/2", expect=73)
    assert "the platform has at most 1 webhook endpoints: remove one first" in full.stderr and "whsec_" not in full.stdout
    assert "a hosting has at most 1 webhook endpoints" in run("webhook", "add", "https://hooks.example.com/more", "--hosting", "shop.example", expect=73).stderr
    assert [e["url"] for e in json.loads(run("webhook", "list", "--all", "--json").stdout)] == ["https://hooks.example.com/1", "https://hooks.example.com/mine"]
    engine = open_engine(database_url)
    with engine.connect() as connection:
        assert audit.entries(connection, action="webhook.create")[1] == 2  # the refused ones left no entry
    engine.dispose()


def test_every_command_is_found_by_the_lazy_loader() -> None:
    """A command missing from COMMANDS would still run (everything is loaded then), only slower;
    one whose module is wrong would not run at all."""
    import scriptmail.cli as cli

    app = cli.app  # every group loaded
    names = {command.name or command.callback.__name__ for command in app.registered_commands}
    names |= {group.name for group in app.registered_groups}
    assert names == set(cli.COMMANDS)
    for command in app.registered_commands:
        assert command.callback.__module__ == f"scriptmail.cli.{cli.COMMANDS[command.name or command.callback.__name__]}"
    assert cli.command_of(["--config", "hosting", "serve", "--json"]) == "serve"  # a file may be named like a command
    assert cli.command_of(["-c", "x.toml", "hosting", "list"]) == "hosting"
    assert cli.command_of(["--help"]) is None and cli.command_of([]) is None


def test_one_command_loads_only_its_own_group_and_no_alembic_for_a_current_store(run) -> None:
    run("hosting", "add", "lazy.example", "--owner", "o@lazy.example")  # the store exists and is current
    config = run.config
    code = (
        "import sys; from scriptmail.cli import main; sys.argv = ['scriptmail', '--config', sys.argv[1], 'hosting', 'list'];\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith(('scriptmail.cli.', 'scriptmail.web', 'scriptmail.install', 'alembic'))))"
    )
    loaded = subprocess.run([sys.executable, "-c", code, str(config)], capture_output=True, text=True, check=True).stdout
    assert "lazy.example" in loaded and "'scriptmail.cli.hosting'" in loaded
    assert "scriptmail.cli.serve" not in loaded and "scriptmail.install" not in loaded and "scriptmail.web.app" not in loaded
    assert "'alembic'" not in loaded
