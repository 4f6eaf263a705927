"""The "Suppressed addresses" tab over real HTTP: the owner finds an address the sink said does
not exist, searches (hostile text included), and removes it after a confirmation, sending again
what it stopped."""

from __future__ import annotations

from html import unescape

from tests.support.gateway import HOSTING, RunningGateway, submit, wait_status
from tests.support.sink import Behaviour, Sink
from tests.support.web_client import OPERATOR, A

PAGE = f"/hostings/{HOSTING}/suppressions"


def test_the_owner_finds_searches_and_removes_a_suppressed_address(gateway: RunningGateway, sink: Sink, area) -> None:
    gone = {"gone@sink.test"}
    sink.behaviour = Behaviour(rcpt=lambda a: "550 5.1.1 no such user" if a in gone else "250 ok")
    submit(gateway.smtp_port, b"Subject: one\r\n\r\nx\r\n", ["gone@sink.test"])
    wait_status(gateway.engine, "bounced", 1)
    submit(gateway.smtp_port, b"Subject: two\r\n\r\nx\r\n", ["gone@sink.test"])
    wait_status(gateway.engine, "suppressed", 1)

    owner = area()
    owner.login(A)
    listing = owner.get(PAGE)
    assert listing.status_code == 200 and "gone@sink.test" in listing.text and "The address does not exist" in listing.text
    assert 'aria-current="page">Suppressed addresses' in listing.text
    assert owner.get(PAGE, params={"search": "\x00"}).status_code == 200  # a NUL is just text that matches nothing
    for hostile in ("%", "_", "<script>alert(1)</script>", "' OR 1=1 --"):
        found = owner.get(PAGE, params={"search": hostile})
        assert found.status_code == 200 and "No entry contains this text." in found.text, repr(hostile)
        assert "<script>alert(1)</script>" not in found.text
    assert owner.get(PAGE, params={"search": "x" * 321}).status_code == 400
    assert "suppressed" in owner.get(f"/hostings/{HOSTING}/log").text.lower()

    # Removing needs the confirmation; unconfirmed, nothing changes.
    confirm = owner.get(f"{PAGE}/remove", params={"address": "gone@sink.test"})
    assert "Also send again the emails it stopped in the last 72 hours" in confirm.text
    csrf = owner.csrf(confirm)
    owner.post(f"{PAGE}/remove", {"csrf": csrf, "address": "gone@sink.test"})
    assert "gone@sink.test" in owner.get(PAGE).text
    gone.clear()
    done = owner.post(f"{PAGE}/remove", {"csrf": csrf, "address": "gone@sink.test", "confirm": "yes", "requeue": "yes"})
    assert "1 email(s) sent again" in unescape(done.text + owner.get(PAGE).text)  # the flash, wherever the redirect led
    sink.wait_for(1)
    assert "No address is suppressed." in owner.get(PAGE).text
    assert owner.get(f"{PAGE}/remove", params={"address": "gone@sink.test"}).status_code == 404


def test_the_operator_keeps_the_platform_list_and_bad_csv_imports_nothing(gateway: RunningGateway, sink: Sink, area) -> None:
    operator = area()
    operator.login(OPERATOR)
    page = operator.get("/operator/suppressions")
    assert page.status_code == 200 and "No entry." in page.text
    csrf = operator.csrf(page)
    refused = operator.post("/operator/suppressions/add", {"csrf": csrf, "value": "*@*"})
    assert refused.status_code == 400 and "would match too widely" in unescape(refused.text)
    wide = operator.post("/operator/suppressions/add", {"csrf": csrf, "value": "*@*e*"})
    assert wide.status_code == 400 and "would match too widely" in unescape(wide.text)
    broken = operator.post("/operator/suppressions/import", {"csrf": csrf, "csv_text": 'value,reason\n"unterminated@x.example,x\n'})
    assert broken.status_code == 400 and "Nothing imported: line" in unescape(broken.text)
    only_bad = operator.post("/operator/suppressions/import", {"csrf": csrf, "csv_text": "not an address\n*@*e*,wide\n"})
    assert only_bad.status_code == 400 and "0 entries imported" in unescape(only_bad.text)
    assert "No entry." in operator.get("/operator/suppressions").text
    # The good lines are imported; the bad ones are named and stay in the form to be corrected.
    bad = operator.post("/operator/suppressions/import", {"csrf": csrf, "csv_text": "value,reason\n*@spamtrap.example,traps\nnot an address\n*@*e*,wide\ndead.example,\n"})
    text = unescape(bad.text)
    assert bad.status_code == 200 and "2 entries imported" in text and "line 3:" in text and "line 4:" in text
    assert "not an address\n*@*e*,wide" in text  # the refused lines, in the form
    listing = operator.get("/operator/suppressions").text
    assert "*@spamtrap.example" in listing and "dead.example" in listing
    assert operator.get("/operator/suppressions.csv").text.splitlines() == ["value,reason", "*@spamtrap.example,traps", "dead.example,manual"]

    # The list holds for every hosting's mail: nothing reaches the trap.
    submit(gateway.smtp_port, b"Subject: hi\r\n\r\nx\r\n", ["x@spamtrap.example", "reader@sink.test"])
    (row,) = wait_status(gateway.engine, "suppressed", 1)
    assert row["recipient"] == "x@spamtrap.example" and "platform" in row["last_text"]
    done = operator.post("/operator/suppressions/remove", {"csrf": csrf, "value": "dead.example", "confirm": "yes"})
    assert "dead.example removed" in done.text + operator.get("/operator/suppressions").text
    assert "dead.example" not in operator.get("/operator/suppressions").text

    customer = area()
    customer.login(A)
    assert customer.get("/operator/suppressions").status_code == 403


def test_unicode_and_punycode_entries_are_one_entry_in_the_lists_the_csv_and_the_api(gateway: RunningGateway, sink: Sink, area) -> None:
    operator = area()
    operator.login(OPERATOR)
    csrf = operator.csrf(operator.get("/operator/suppressions"))
    added = operator.post("/operator/suppressions/add", {"csrf": csrf, "value": "x@bücher.de"})
    assert "x@bücher.de is on the platform" in unescape(added.text + operator.get("/operator/suppressions").text)
    bad = operator.post("/operator/suppressions/import", {"csrf": csrf, "csv_text": "ok@españa.es,\nx@раypal.es,\n"})
    # The good line is imported, the bad one named and left in the form.
    assert bad.status_code == 200 and "these lines were refused" in unescape(bad.text) and "mixes scripts" in unescape(bad.text)
    operator.post("/operator/suppressions/import", {"csrf": csrf, "csv_text": "josé@correo.españa.es,left\nXN--BCHER-KVA.DE,\n"})
    listing = unescape(operator.get("/operator/suppressions").text)
    assert "josé@correo.españa.es" in listing and "bücher.de" in listing  # shown in Unicode
    exported = operator.get("/operator/suppressions.csv").text.splitlines()
    assert exported == [
        "value,reason", "josé@correo.xn--espaa-rta.es,left", "ok@xn--espaa-rta.es,manual", "x@xn--bcher-kva.de,manual", "xn--bcher-kva.de,manual"
    ]
    assert "josé@correo" in unescape(operator.get("/operator/suppressions", params={"search": "españa"}).text)

    # Mail to either spelling is stopped by the platform's entries.
    submit(gateway.smtp_port, b"Subject: hi\r\n\r\nx\r\n", ["x@xn--bcher-kva.de", "reader@sink.test"])
    (row,) = wait_status(gateway.engine, "suppressed", 1)
    assert row["recipient"] == "x@xn--bcher-kva.de"

    done = operator.post("/operator/suppressions/remove", {"csrf": csrf, "value": "X@XN--BCHER-KVA.DE", "confirm": "yes"})
    assert "x@bücher.de removed" in unescape(done.text + operator.get("/operator/suppressions").text)
    assert operator.get("/operator/suppressions.csv").text.splitlines()[1:] == [
        "josé@correo.xn--espaa-rta.es,left", "ok@xn--espaa-rta.es,manual", "xn--bcher-kva.de,manual"
    ]


def test_the_operator_sees_a_pattern_stored_before_the_width_check_as_not_applied(gateway: RunningGateway, area) -> None:
    from sqlalchemy import text

    with gateway.engine.begin() as connection:
        connection.execute(
            text("INSERT INTO suppressions (scope, value, kind, reason, created_at) VALUES (0, '*@*', 'pattern', 'old list', 1)")
        )
    operator = area()
    operator.login(OPERATOR)
    listing = unescape(operator.get("/operator/suppressions").text)
    assert "*@*" in listing and "Not applied</strong>: it would match too widely" in listing
    assert operator.get("/operator/suppressions.csv").text.splitlines()[1].startswith("*@*,old list,not applied: it would match too widely")
    with gateway.engine.begin() as connection:
        connection.execute(text("UPDATE users SET language = 'es' WHERE operator = 1"))
    spanish = area()
    spanish.login(OPERATOR)
    assert "No se aplica" in spanish.get("/operator/suppressions").text
