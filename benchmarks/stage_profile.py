"""Where scriptmail's CPU goes per message: py-spy samples of the server's process tree during
the throughput phase, folded into the pipeline's stages (issue: CPU µs per message by stage).

py-spy samples only threads that are running (idle threads are left out), so the share of
samples in a stage times the CPU seconds the tree used is that stage's CPU time.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

# The first stage (in this order) with a frame anywhere in the stack takes the sample: the job a
# thread was doing decides, whatever library code it was in at that moment.
STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("store write and commit (intake)", ("insert_submissions",)),
    ("claim", ("claim_due", "load_bodies", "_claim")),
    ("result write", ("record_results",)),
    ("other store writes", ("store/writer.py",)),
    ("checks and scoring", ("prepare (", "_scored", "score_message", "control/content.py", "intake/headers.py")),
    ("logging", ("logging/__init__.py",)),
    ("delivery conversation", ("aiosmtplib", "delivery/smtp_client.py", "delivery/wire.py")),
    ("delivery scheduling", ("delivery/agent.py", "delivery/routing.py")),
    ("SMTP conversation (intake)", ("aiosmtpd", "intake/smtp_server.py", "intake/accept.py")),
    ("web", ("uvicorn", "starlette", "fastapi", "scriptmail/web/")),
)
OTHER = "event loop and other"


def py_spy() -> str | None:
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


class Profiler:
    """py-spy record of a process tree, in py-spy's raw (collapsed stacks) format."""

    def __init__(self, pid: int, output: Path, rate: int = 200) -> None:
        exe = py_spy()
        if exe is None:
            raise RuntimeError("py-spy is not installed (pip install py-spy)")
        self.output = output
        self._proc = subprocess.Popen(
            [exe, "record", "--pid", str(pid), "--subprocesses", "--format", "raw", "--rate", str(rate),
             "--output", str(output), "--nonblocking"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip

    def stop(self) -> None:
        self._proc.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        try:
            self._proc.wait(30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


def stage_of(stack: str) -> str:
    for stage, needles in STAGES:
        if any(needle in stack for needle in needles):
            return stage
    return OTHER


def stage_shares(raw: str) -> dict[str, float]:
    """Fraction of samples per stage, from py-spy's raw output (`frame;frame;... count` lines)."""
    counts: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, number = line.rpartition(" ")
        if not stack or not number.isdigit():
            continue
        counts[stage_of(stack)] += int(number)
    total = sum(counts.values())
    return {stage: count / total for stage, count in counts.most_common()} if total else {}


def per_message_us(shares: dict[str, float], cpu_seconds: float, messages: int) -> dict[str, float]:
    return {stage: round(share * cpu_seconds / messages * 1e6, 1) for stage, share in shares.items()}
