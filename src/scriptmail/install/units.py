"""The systemd units: one for the whole gateway and one per part for split deployments, each with
only the privileges its part needs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from scriptmail.install.layout import CONFIG_FILE, RUNTIME_DIR, STATE_DIR, Layout

BIND_LOW_PORTS = "CAP_NET_BIND_SERVICE"  # SMTP on 25 and 587
READ_CALLERS_FILES = "CAP_DAC_READ_SEARCH"  # maildrop files belong to the callers, mode 0600


@dataclass(frozen=True)
class UnitSpec:
    name: str
    description: str
    parts: str | None  # None: every part
    capabilities: tuple[str, ...]
    needs_runtime_dir: bool


UNITS = (
    UnitSpec("scriptmail", "scriptmail mail gateway (every part)", None, (BIND_LOW_PORTS, READ_CALLERS_FILES), True),
    UnitSpec("scriptmail-intake", "scriptmail intake (SMTP submission, sendmail socket, maildrop)", "intake,maildrop",
             (BIND_LOW_PORTS, READ_CALLERS_FILES), True),
    UnitSpec("scriptmail-delivery", "scriptmail delivery", "delivery", (), False),
    UnitSpec("scriptmail-scheduler", "scriptmail scheduler (purges, blocks, expiry, reports)", "scheduler", (), False),
    UnitSpec("scriptmail-bounces", "scriptmail bounce and complaint listener", "bounces", (BIND_LOW_PORTS,), False),
    UnitSpec("scriptmail-web", "scriptmail customer and operator areas, REST API, metrics", "web", (), False),
)  # fmt: skip


def unit_text(spec: UnitSpec, layout: Layout) -> str:
    """The unit file of one part (or of the whole gateway)."""
    command = f"{layout.scriptmail} --config {CONFIG_FILE} serve --no-demo"
    if spec.parts is not None:
        command += f" --parts {spec.parts}"
    writable: list[PurePosixPath] = [STATE_DIR]
    sqlite_dir = layout.sqlite_dir
    if sqlite_dir is not None and sqlite_dir != STATE_DIR:
        writable.append(sqlite_dir)
    if spec.needs_runtime_dir:
        writable.append(layout.maildrop)
        if layout.socket.parent != RUNTIME_DIR:
            writable.append(layout.socket.parent)
    others = " ".join(f"{u.name}.service" for u in UNITS if u.name != spec.name and (spec.parts is None or u.parts is None))
    lines = [
        "# Written by `scriptmail install`; a second run puts it back. Override with `systemctl edit`.",
        "[Unit]",
        f"Description={spec.description}",
        "Wants=network-online.target",
        "After=network-online.target postgresql.service",
        f"Conflicts={others}",
        "",
        "[Service]",
        "Type=simple",
        f"User={layout.user}",
        f"Group={layout.user}",
        f"ExecStart={command}",
        "ExecReload=/usr/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        "RestartSec=2",
        # 71 (cannot start: port taken, node name in use) and 78 (bad configuration) need a person.
        "RestartPreventExitStatus=71 78",
        "TimeoutStopSec=30",
    ]
    if spec.parts is not None:
        lines.append(f"Environment=SCRIPTMAIL_NODE=%H-{spec.name.removeprefix('scriptmail-')}")
    if spec.needs_runtime_dir:
        lines += ["RuntimeDirectory=scriptmail", "RuntimeDirectoryMode=0755", "RuntimeDirectoryPreserve=yes"]
    lines += [
        "UMask=0027",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "PrivateDevices=yes",
        "PrivateMounts=yes",
        "RemoveIPC=yes",
        f"ReadWritePaths={' '.join(str(path) for path in writable)}",
        f"CapabilityBoundingSet={' '.join(spec.capabilities)}",
        f"AmbientCapabilities={' '.join(spec.capabilities)}",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectKernelLogs=yes",
        "ProtectControlGroups=yes",
        "ProtectClock=yes",
        "ProtectHostname=yes",
        "ProtectProc=invisible",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "RestrictNamespaces=yes",
        "RestrictRealtime=yes",
        "RestrictSUIDSGID=yes",
        "LockPersonality=yes",
        "SystemCallArchitectures=native",
        "SystemCallFilter=@system-service",
        "SystemCallFilter=~@privileged @resources",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ]
    return "\n".join(lines)


def unit_files(layout: Layout) -> dict[str, str]:
    """File name -> content of every unit."""
    return {f"{spec.name}.service": unit_text(spec, layout) for spec in UNITS}
