"""Several scriptmail processes on one machine: one Python process uses one core.

The supervisor starts N copies of `scriptmail serve`, each with its own node name
(`<node>-<i>`, stable across restarts so each hands back its own leases), all listening on
the same SMTP port (SO_REUSEPORT: the kernel spreads connections). A Unix socket and a
maildrop have one owner, so only the first copy runs the sendmail socket and the maildrop
pickup. With `split`, the parts run in processes of their own kind instead, like Postfix's
daemons: intake copies, delivery processes (`<node>-delivery-<i>`) and the web part
(`<node>-web`), so that neither delivery nor a crowd of customers polling the API takes CPU
from accepting mail. A copy that dies is started again; SIGTERM stops them all, and a copy
whose supervisor dies is killed by the kernel, so none is left behind.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)

# Parts that belong to one process per machine (a socket path, a maildrop directory), and the
# scheduler, whose jobs take leases anyway: one copy running them is enough.
SINGLE_OWNER = ("sendmail", "maildrop", "scheduler")
OWN_PROCESS = ("delivery", "web")  # with split, each kind runs in processes of its own
RESTART_DELAY = 1.0
STOP_GRACE = 30.0
_PR_SET_PDEATHSIG = 1


def parts_for(copy: int, parts: Sequence[str]) -> tuple[str, ...]:
    """What copy number `copy` runs: everything for the first, the rest without single-owner parts."""
    if copy == 0:
        return tuple(parts)
    return tuple(part for part in parts if part not in SINGLE_OWNER)


def plan(node: str, parts: Sequence[str], processes: int, split: bool = False, delivery_processes: int = 1) -> list[tuple[str, tuple[str, ...]]]:
    """The processes to run, as (node name, parts): N copies of everything, or with `split`
    N intake copies, `delivery_processes` delivery processes and one web process."""
    if not split:
        return [(f"{node}-{index}", parts_for(index, parts)) for index in range(processes)]
    rest = [part for part in parts if part not in OWN_PROCESS]
    planned = [(f"{node}-{index}", parts_for(index, rest)) for index in range(processes if rest else 0)]
    if "delivery" in parts:
        planned += [(f"{node}-delivery-{index}", ("delivery",)) for index in range(delivery_processes)]
    if "web" in parts:
        planned.append((f"{node}-web", ("web",)))
    return [(name, chosen) for name, chosen in planned if chosen]


def _die_with_parent() -> None:
    # Linux: a copy is killed when the supervisor dies, as if it had been killed with it.
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class _Copy:
    index: int
    node: str
    parts: tuple[str, ...]
    process: subprocess.Popen | None = None


class Supervisor:
    def __init__(self, config_args: Sequence[str], planned: Sequence[tuple[str, tuple[str, ...]]], log_level: str) -> None:
        self._config_args = list(config_args)
        self._log_level = log_level
        self._copies = [_Copy(index, name, parts) for index, (name, parts) in enumerate(planned)]
        self._stopping = False

    def _start(self, copy: _Copy) -> None:
        command = [
            sys.executable, "-m", "scriptmail", *self._config_args, "serve", "--no-demo", "--no-split",
            "--processes", "1", "--parts", ",".join(copy.parts), "--log-level", self._log_level,
        ]  # fmt: skip
        copy.process = subprocess.Popen(
            command, env=os.environ | {"SCRIPTMAIL_NODE": copy.node}, preexec_fn=_die_with_parent if sys.platform == "linux" else None
        )
        log.info("started %s (pid %d): %s", copy.node, copy.process.pid, ", ".join(copy.parts))

    def run(self) -> int:
        """Start every copy, restart those that die, stop all on SIGTERM/SIGINT; return an exit code."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._request_stop)
        signal.signal(signal.SIGHUP, self._pass_on)
        for copy in self._copies:
            self._start(copy)
        failures = 0
        while not self._stopping:
            time.sleep(0.2)
            for copy in self._copies:
                code = copy.process.poll() if copy.process else None
                if code is None or self._stopping:
                    continue
                failures += 1
                if code in (71, 75, 78) and failures > 3 * len(self._copies):
                    log.error("%s keeps failing (exit %d); stopping", copy.node, code)
                    self._stopping = True
                    break
                log.warning("%s exited with %d; starting it again", copy.node, code)
                time.sleep(RESTART_DELAY)
                self._start(copy)
        return self._stop_all()

    def _request_stop(self, signum: int, _frame: object) -> None:
        self._stopping = True

    def _pass_on(self, signum: int, _frame: object) -> None:
        """SIGHUP (re-read the TLS certificate) goes to every copy."""
        for copy in self._copies:
            if copy.process is not None and copy.process.poll() is None:
                copy.process.send_signal(signum)

    def _stop_all(self) -> int:
        running = [copy.process for copy in self._copies if copy.process and copy.process.poll() is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for process in running:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return max((copy.process.returncode or 0 for copy in self._copies if copy.process), default=0)


def exec_supervisor(config_args: Sequence[str], planned: Sequence[tuple[str, tuple[str, ...]]], log_level: str) -> None:
    """Become the supervisor in a fresh interpreter that imports only this module: the command
    that migrated the store and printed the demo carries every library, and would keep them
    resident all the while it waits for its copies."""
    sys.stdout.flush()
    plan_text = json.dumps({"config_args": list(config_args), "planned": [list(p) for p in planned], "log_level": log_level})
    os.execv(sys.executable, [sys.executable, "-m", "scriptmail.supervisor", plan_text])


def main(argv: Sequence[str]) -> int:
    given = json.loads(argv[0])
    logging.basicConfig(level=given["log_level"].upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    planned = [(name, tuple(parts)) for name, parts in given["planned"]]
    return Supervisor(given["config_args"], planned, given["log_level"]).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
