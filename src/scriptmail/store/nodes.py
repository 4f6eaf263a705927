"""Node registrations: which process holds which name, so that leases are never shared by mistake.

Leases carry the node's name and a node hands back its own leases when it starts; two live
processes with one name would hand back each other's work and deliver it twice. A node refuses
to start while another live process holds its name.
"""

from __future__ import annotations

import os
import socket

from sqlalchemy import Connection, delete, insert, select, update

from scriptmail.store.schema import nodes

HEARTBEAT_SECONDS = 10.0
STALE_AFTER = 3 * HEARTBEAT_SECONDS


class NodeInUse(Exception):
    """Another live process is registered under this node name."""


def _alive_here(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def register(connection: Connection, name: str, now: float, pid: int | None = None, hostname: str | None = None) -> None:
    """Claim `name` for this process; raise NodeInUse if a live process holds it."""
    pid = os.getpid() if pid is None else pid
    hostname = socket.gethostname() if hostname is None else hostname
    row = connection.execute(select(nodes).where(nodes.c.name == name).with_for_update()).first()
    if row is not None and (row.hostname, row.pid) != (hostname, pid):
        if row.hostname == hostname:
            live = _alive_here(row.pid)
        else:
            live = row.heartbeat_at > now - STALE_AFTER
        if live:
            raise NodeInUse(
                f"node name {name!r} is in use by pid {row.pid} on {row.hostname}; "
                "give each process its own name (config key `node`, or SCRIPTMAIL_NODE)"
            )
    values = {"hostname": hostname, "pid": pid, "started_at": now, "heartbeat_at": now}
    if row is None:
        connection.execute(insert(nodes).values(name=name, **values))
    else:
        connection.execute(update(nodes).where(nodes.c.name == name).values(**values))


def heartbeat(connection: Connection, name: str, now: float) -> None:
    connection.execute(update(nodes).where(nodes.c.name == name, nodes.c.pid == os.getpid()).values(heartbeat_at=now))


def unregister(connection: Connection, name: str) -> None:
    connection.execute(delete(nodes).where(nodes.c.name == name, nodes.c.pid == os.getpid()))


def live(connection: Connection, now: float) -> set[str]:
    """Names of the nodes running now: a fresh heartbeat, and on this machine a live process."""
    here = socket.gethostname()
    rows = connection.execute(select(nodes.c.name, nodes.c.hostname, nodes.c.pid, nodes.c.heartbeat_at)).all()
    return {
        row.name
        for row in rows
        if row.heartbeat_at > now - STALE_AFTER and (row.hostname != here or _alive_here(row.pid))
    }
