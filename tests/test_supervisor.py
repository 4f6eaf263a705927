"""Which processes `serve` runs: copies of everything, or each kind of part in its own."""

from __future__ import annotations

from scriptmail.app import PARTS
from scriptmail.supervisor import plan

EVERYTHING = ("smtp", "sendmail", "delivery", "maildrop", "scheduler", "bounces", "web")


def test_copies_run_everything_but_the_single_owner_parts_once() -> None:
    assert PARTS == EVERYTHING
    assert plan("mx", EVERYTHING, 2) == [("mx-0", EVERYTHING), ("mx-1", ("smtp", "delivery", "bounces", "web"))]


def test_split_runs_intake_delivery_and_web_in_processes_of_their_own() -> None:
    assert plan("mx", EVERYTHING, 2, split=True, delivery_processes=2) == [
        ("mx-0", ("smtp", "sendmail", "maildrop", "scheduler", "bounces")),
        ("mx-1", ("smtp", "bounces")),
        ("mx-delivery-0", ("delivery",)),
        ("mx-delivery-1", ("delivery",)),
        ("mx-web", ("web",)),
    ]


def test_split_of_one_kind_is_one_process() -> None:
    assert plan("mx", ("delivery",), 1, split=True) == [("mx-delivery-0", ("delivery",))]
    assert plan("mx", ("web",), 3, split=True) == [("mx-web", ("web",))]
