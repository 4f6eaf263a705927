"""Running a real command in a private mount namespace, with test files laid over system directories.

How the tests give the sendmail command an `/etc/scriptmail` (and cron a `/usr/sbin/sendmail`)
without touching the machine and without any test switch in the command: the kernel shows the
process a read-only overlay of the test's directory on top of the real one, and nothing else
changes. Needs root, or unprivileged user namespaces (`unshare -r`).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

CLEAN_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


@functools.cache
def available() -> str | None:
    """None when overlays can be mounted here, else the reason a test is skipped."""
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not installed"
    probe = subprocess.run([*_unshare(), "sh", "-c", "mount -t tmpfs probe /mnt"], capture_output=True, timeout=30)
    if probe.returncode != 0:
        return f"cannot mount in a private namespace here: {probe.stderr.decode(errors='replace').strip()}"
    return None


def _unshare() -> list[str]:
    return ["unshare", "-m", "--propagation", "private", *([] if os.geteuid() == 0 else ["-r"])]


def isolated(overlays: dict[str, Path], argv: list[str], as_user: int | None = None) -> list[str]:
    """argv run with each `overlays` target (e.g. "/etc") showing the given directory's files over its own.

    `as_user` drops to that uid and gid (root only) after mounting, for the caller a web user would be.
    """
    mounts = " && ".join(
        f"mount -t overlay overlay -o ro,lowerdir={source}:{target} {target}" for target, source in overlays.items()
    )
    drop = ["setpriv", f"--reuid={as_user}", f"--regid={as_user}", "--clear-groups"] if as_user is not None else []
    return [*_unshare(), "sh", "-c", f'{mounts} && exec "$@"', "isolated", *drop, *argv]


def system_dir(root: Path, files: dict[str, str], mode: int = 0o644) -> Path:
    """root/scriptmail holding `files`, laid out as /etc/scriptmail would be (root's, not writable by others)."""
    directory = root / "scriptmail"
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o755)
    os.chmod(directory, 0o755)
    for name, text in files.items():
        path = directory / name
        path.write_text(text)
        os.chmod(path, mode)
    return root
