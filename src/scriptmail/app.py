"""One scriptmail process: the parts of DESIGN.md §5 that this node runs, wired to one store."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import logging
import os
import signal
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import uvloop

from scriptmail.bounces import verp
from scriptmail.bounces.listener import BounceHandler, make_bounce_factory
from scriptmail.bounces.reports import parse_report
from scriptmail.config import Settings, parse_host_port
from scriptmail.control.quota import QuotaGate
from scriptmail.delivery.agent import DeliveryAgent
from scriptmail.delivery.routing import Router
from scriptmail.delivery.smtp_client import ClientSettings, SmtpClient
from scriptmail.intake.accept import Acceptor
from scriptmail.intake.scanner import RspamdScanner
from scriptmail.intake.signer import Signer
from scriptmail.intake.smtp_server import SubmissionHandler, TrustedNetworks, make_server_factory
from scriptmail.intake.tls import CertificateStore, ensure_self_signed
from scriptmail.model import DueRecipient
from scriptmail.mta_sts.source import PolicySource
from scriptmail.scheduler.jobs import Scheduler
from scriptmail.store import activity, bus, nodes, queue
from scriptmail.store import log as store_log
from scriptmail.store.bounce_reports import apply_report
from scriptmail.store.engine import open_engine
from scriptmail.store.migrate import upgrade
from scriptmail.store.mta_sts import StoredPolicies
from scriptmail.store.secrets import shared_secret
from scriptmail.store.system_mail import queue_system_mail
from scriptmail.store.writer import Writer
from scriptmail.web.mail_first import MailActivity

log = logging.getLogger(__name__)

PARTS = ("smtp", "sendmail", "delivery", "maildrop", "scheduler", "bounces", "web")
_ALIASES = {"intake": ("smtp", "sendmail")}  # the whole intake: SMTP submission and the sendmail socket


def parse_parts(text: str) -> tuple[str, ...]:
    """`intake,delivery` -> ("smtp", "sendmail", "delivery"); ValueError names unknown parts."""
    chosen: list[str] = []
    for name in (part.strip() for part in text.split(",")):
        if not name:
            continue
        for part in _ALIASES.get(name, (name,)):
            if part not in PARTS:
                raise ValueError(
                    f"unknown part {name!r}; choose from intake ({' + '.join(_ALIASES['intake'])}), {', '.join(PARTS[2:])}"
                )
            if part not in chosen:
                chosen.append(part)
    if not chosen:
        raise ValueError("no part chosen")
    return tuple(chosen)


@dataclass
class Gateway:
    """Starts the chosen parts, runs until stopped, and stops them in an order that loses nothing."""

    settings: Settings
    parts: tuple[str, ...] = PARTS
    clock: Callable[[], float] = time.time  # tests move time forward (quota windows, retention)
    smtp_port: int | None = field(default=None, init=False)
    bounce_port: int | None = field(default=None, init=False)
    web_port: int | None = field(default=None, init=False)
    frame_port: int | None = field(default=None, init=False)
    frame_app: Any = field(default=None, init=False)
    agent: DeliveryAgent | None = field(default=None, init=False)
    acceptor: Acceptor | None = field(default=None, init=False)
    scheduler: Scheduler | None = field(default=None, init=False)
    certificates: CertificateStore | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        activity.set_zone(ZoneInfo(self.settings.timezone))
        self.engine = open_engine(self.settings.database_url)
        self.writer = Writer(self.engine)
        self.bus = bus.open_bus(self.settings.database_url, self.settings.node)
        self.writer.bus = self.bus
        self._stop = asyncio.Event()
        self._servers: list[Any] = []
        self._tasks: list[asyncio.Task] = []
        self._closers: list[Callable[[], Coroutine[Any, Any, None]]] = []
        # The web part on the same event loop as intake yields to the mail (web.mail_first).
        shared = "web" in self.parts and bool({"smtp", "sendmail", "maildrop"} & set(self.parts))
        self.mail_activity = MailActivity() if shared else None

    def stop(self) -> None:
        self._stop.set()

    def reload_tls(self) -> None:
        """SIGHUP: read the TLS certificate and key again (also done by itself when the files change)."""
        if self.certificates is not None:
            self.certificates.reload()

    def _certificates(self) -> CertificateStore:
        """Intake's certificate, shared by the SMTP submission server and the bounce listener."""
        if self.certificates is None:
            intake = self.settings.intake
            if intake.tls_cert and intake.tls_key:
                cert, key = intake.tls_cert, intake.tls_key
            else:
                cert, key = ensure_self_signed(intake.socket.parent / "tls", self.settings.hostname)
            self.certificates = CertificateStore(cert, key)
        return self.certificates

    async def run(self, on_ready: Callable[[Gateway], None] | None = None) -> None:
        await asyncio.to_thread(upgrade, self.engine)
        self.writer.start()
        try:
            await self.writer.submit(lambda c: nodes.register(c, self.settings.node, time.time()))
        except BaseException:
            await asyncio.to_thread(self.writer.stop)
            self.engine.dispose()
            raise
        try:
            await self._start_bus()
            self._tasks.append(asyncio.create_task(self._keep_registration(), name="node"))
            await self._start()
            # What start-up built (modules, routes, compiled statements, templates) lives as long
            # as the process: out of the collector's sight, a full collection no longer walks it
            # and stalls every session and request for tens of milliseconds.
            gc.freeze()
            if on_ready is not None:
                on_ready(self)
            await self._stop.wait()
        finally:
            await self._shutdown()

    async def _start(self) -> None:
        settings = self.settings
        secret = b""
        if settings.bounces.domain:
            secret = await self.writer.submit(lambda c: shared_secret(c, "verp", verp.new_secret))
        if "bounces" in self.parts and settings.bounces.listen:
            await self._start_bounces(secret)
        if "delivery" in self.parts:
            router = Router(settings.delivery)
            sts = None
            if settings.delivery.mta_sts:
                sts = PolicySource(settings.delivery, self.clock, StoredPolicies(self.engine, self.writer))
            if sts is not None:
                self._closers.append(sts.close)
                self._tasks.append(asyncio.create_task(sts.keep_fresh(settings.delivery.mta_sts_refresh), name="mta-sts-refresh"))
            client = SmtpClient(
                router,
                ClientSettings(
                    helo_name=settings.delivery.helo_name or settings.hostname,
                    connect_timeout=settings.delivery.connect_timeout,
                    command_timeout=settings.delivery.command_timeout,
                    data_timeout=settings.delivery.data_timeout,
                    messages_per_connection=settings.delivery.messages_per_connection,
                    mx_port=settings.delivery.smtp_port,
                    idle_seconds=settings.delivery.idle_seconds,
                    max_idle=settings.delivery.per_destination,
                ),
                verified_tls=sts.tls if sts is not None else None,
            )
            gate = QuotaGate(settings.plan, ZoneInfo(settings.timezone))
            self.agent = DeliveryAgent(
                self.engine, self.writer, settings.delivery, client, router, owner=settings.node, gate=gate, clock=self.clock,
                sender_for=self._verp_sender(secret), sts=sts, helo_name=settings.delivery.helo_name or settings.hostname,
            )  # fmt: skip
            self._tasks.append(asyncio.create_task(self.agent.run(), name="delivery"))
            self.bus.on(bus.MAIL, lambda *_: self.agent.wake())
            self.agent.on_full = lambda: self.bus.mail_committed()  # the bus may be replaced at start
            self.bus.on(bus.HOSTINGS, self.agent.reread_states)
        acceptor = self.acceptor = Acceptor(
            self.engine,
            self.writer,
            hostname=settings.hostname,
            max_size=settings.intake.max_message_size,
            max_recipients=settings.intake.max_recipients,
            on_accepted=self._mail_committed,
            # The web part takes mail too (the test send), through this same acceptance.
            scanner=self._scanner() if {"smtp", "sendmail", "maildrop", "web"} & set(self.parts) else None,
            signer=self._signer() if {"smtp", "sendmail", "maildrop", "web"} & set(self.parts) else None,
        )
        if "smtp" in self.parts:
            await self._start_smtp(acceptor)
        if "sendmail" in self.parts:
            await self._start_socket(acceptor)
        if "web" in self.parts:
            await self._start_web()
        if "scheduler" in self.parts:
            self.scheduler = Scheduler(self.engine, self.writer, settings, clock=self.clock)
            for name, loop in self.scheduler.loops().items():
                self._tasks.append(asyncio.create_task(loop, name=name))
        if "maildrop" in self.parts:
            from scriptmail.intake.maildrop import MaildropPickup

            pickup = MaildropPickup(
                settings.intake.maildrop,
                acceptor,
                settings.intake.maildrop_interval,
                max_size=settings.intake.max_message_size,
                max_recipients=settings.intake.max_recipients,
                node=settings.node,
            )
            pickup.ensure_layout()
            self._tasks.append(asyncio.create_task(pickup.run(), name="maildrop"))

    async def _start_bus(self) -> None:
        """Without the bus every part still works, only by polling: a warning, not a failure."""
        try:
            await self.bus.start()
        except Exception as error:  # noqa: BLE001
            log.warning("no push between processes (%s): delivery and BLOCK fall back to polling", error)
            self.bus = bus.Bus(self.settings.node)
            self.writer.bus = None
            return
        self._closers.append(self.bus.close)

    def _mail_committed(self) -> None:
        if self.mail_activity is not None:
            self.mail_activity.accepted()
        if self.agent is not None:
            self.agent.wake()
            if self.agent.has_room:
                # This process delivers what it accepted. Waking every other process's delivery
                # too would make each of them claim after every commit and, mostly, find nothing:
                # with N processes, N claims per commit. They poll, and hear us once we are full.
                return
        self.bus.mail_committed()  # delivery in the other processes and nodes

    def _verp_sender(self, secret: bytes) -> Callable[[DueRecipient], str | None] | None:
        """Each recipient's own envelope sender on the bounce domain; the null sender stays null."""
        domain = self.settings.bounces.domain
        if not domain:
            return None
        return lambda recipient: verp.encode(recipient.id, secret, domain) if recipient.envelope_from else None

    async def _start_bounces(self, secret: bytes) -> None:
        settings = self.settings

        async def record(recipient_id: int, data: bytes, client: str) -> str:
            report = await asyncio.to_thread(parse_report, data) if len(data) > 256 * 1024 else parse_report(data)

            def apply(connection):
                applied = apply_report(connection, recipient_id, report, data, client, self.clock(), settings.delivery.suppression_days)
                if settings.bounces.forward and applied.outcome == "bounced" and applied.original_sender:
                    queue_system_mail(
                        connection, settings.control.notify_from, applied.original_sender, data,
                        "bounce forwarded", self.clock(), "bounce forward", envelope_from="", domains=settings.domains,
                    )  # fmt: skip
                return applied.outcome

            return await self.writer.submit(apply)

        handler = BounceHandler(settings.bounces.domain, secret, record)
        host, port = parse_host_port(settings.bounces.listen, listening=True)
        factory = make_bounce_factory(handler, self.settings.hostname, settings.bounces.max_size, self._certificates().context)
        server = await asyncio.get_running_loop().create_server(factory, host, port, reuse_port=True)
        self.bounce_port = server.sockets[0].getsockname()[1]
        self._servers.append(server)
        log.info("bounce reports for %s on %s:%d", settings.bounces.domain, host, self.bounce_port)

    async def _start_web(self) -> None:
        from scriptmail.web.app import create_app, listening_socket, make_server
        from scriptmail.web.context import WebContext
        from scriptmail.web.frame import create_frame_app

        host, port = parse_host_port(self.settings.web.listen, listening=True)
        sock = listening_socket(host, port)
        self.web_port = sock.getsockname()[1]
        context = WebContext(self.engine, self.writer, self.settings, self.clock, self.bus, self.acceptor, mail=self.mail_activity)
        if self.bus is not None:
            self.bus.on(bus.ACCESS, context.access.clear)
        frame_host, frame_port = self.settings.web.frame_address()
        try:
            frame_sock = listening_socket(frame_host, frame_port)
        except OSError as error:
            if self.settings.web.frame_listen or error.errno != errno.EADDRINUSE:
                raise
            # The derived default (web's port + 1) is taken: any free port serves, the links name it.
            log.warning("the viewer's frame: port %d is taken, listening on a free one (set web.frame_listen)", frame_port)
            frame_sock = listening_socket(frame_host, 0)
        self.frame_port = frame_sock.getsockname()[1]
        area_app, frame_app = create_app(context, self.mail_activity), create_frame_app(context)
        area_app.state.frame_port = self.frame_port
        self.frame_app = frame_app
        servers = [(make_server(area_app), sock, "web"), (make_server(frame_app), frame_sock, "web-frame")]
        tasks = [(server, asyncio.create_task(server.serve(sockets=[s]), name=name)) for server, s, name in servers]

        async def stop() -> None:
            for server, _task in tasks:
                server.should_exit = True
            for _server, task in tasks:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(task, 10)

        self._closers.insert(0, stop)
        log.info("web (customer and operator areas, API, metrics) on http://%s:%d", host, self.web_port)
        log.info("the viewer's frame on http://%s:%d", frame_host, self.frame_port)

    def _signer(self) -> Signer:
        signer = Signer(self.engine, self.settings.domains, clock=self.clock)

        async def close() -> None:
            signer.close()

        self._closers.append(close)
        return signer

    def _scanner(self) -> RspamdScanner | None:
        control = self.settings.control
        if not control.rspamd_url:
            return None
        scanner = RspamdScanner(control.rspamd_url, control.rspamd_timeout, control.rspamd_password)
        self._closers.append(scanner.close)
        return scanner

    async def _start_smtp(self, acceptor: Acceptor) -> None:
        intake = self.settings.intake
        handler = SubmissionHandler(acceptor, TrustedNetworks(intake.trusted_networks), intake.max_recipients)
        factory = make_server_factory(handler, self.settings.hostname, intake.max_message_size, self._certificates().context)
        host, port = parse_host_port(intake.listen, listening=True)
        server = await asyncio.get_running_loop().create_server(factory, host, port, reuse_port=True)
        self.smtp_port = server.sockets[0].getsockname()[1]
        self._servers.append(server)
        log.info("SMTP submission on %s:%d", host, self.smtp_port)

    async def _start_socket(self, acceptor: Acceptor) -> None:
        from scriptmail.intake.socket_server import start_socket_server

        async def queue_of(hosting_id: int) -> list[dict[str, Any]]:
            def read() -> list[dict[str, Any]]:
                with self.engine.connect() as connection:
                    return store_log.queued_messages(connection, hosting_id)

            return await asyncio.to_thread(read)

        async def retry_now(hosting_id: int, domain: str) -> int:
            count = await self.writer.submit(lambda c: queue.retry_now(c, hosting_id, time.time(), domain))
            if count:
                self._mail_committed()  # wakes delivery here, or through the bus where there is none or it is full
            return count

        intake = self.settings.intake
        server = await start_socket_server(
            intake.socket, acceptor, queue_of, max_size=intake.max_message_size, max_recipients=intake.max_recipients,
            flusher=retry_now,
        )
        self._servers.append(server)
        log.info("sendmail socket at %s", self.settings.intake.socket)

    async def _keep_registration(self) -> None:
        """Heartbeat this node's name and extend the leases of recipients it still works on."""
        lease = self.settings.delivery.lease_seconds
        renewed = time.monotonic()
        while True:
            await asyncio.sleep(nodes.HEARTBEAT_SECONDS)
            try:
                await self.writer.submit(lambda c: nodes.heartbeat(c, self.settings.node, time.time()))
                if self.agent is not None and time.monotonic() - renewed > lease / 3:
                    renewed = time.monotonic()
                    await self.writer.submit(lambda c: queue.renew_leases(c, self.settings.node, lease, time.time()))
            except Exception as error:  # noqa: BLE001 - the store may be briefly away; try again later
                log.warning("cannot renew this node's registration or leases: %s", error)

    async def _shutdown(self) -> None:
        # Stop taking mail first, then give submissions already reading their data time to be
        # committed and answered (a client that loses its 250 sends again: a duplicate, not a loss).
        for server in self._servers:
            server.close()
        if self.acceptor is not None:
            await self.acceptor.drain(timeout=10)
        if self.scheduler is not None:
            await self.scheduler.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for close in self._closers:
            with contextlib.suppress(Exception):
                await close()
        with contextlib.suppress(Exception):
            await self.writer.submit(lambda c: nodes.unregister(c, self.settings.node))
        await asyncio.to_thread(self.writer.stop)
        self.engine.dispose()


def _web_priority(nice: int, idle: bool) -> None:
    """The mail first (web.nice, web.idle_priority). Set before any thread starts: threads inherit it."""
    if nice:
        os.nice(nice)
    if idle and hasattr(os, "SCHED_IDLE"):
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        except OSError as error:  # a container's seccomp profile may refuse it: nice still holds
            log.warning("web part: could not take the idle CPU priority (%s); it runs at nice %d", error, nice)


def run_gateway(settings: Settings, parts: tuple[str, ...], on_ready: Callable[[Gateway], None] | None = None) -> None:
    """Run until SIGINT or SIGTERM."""

    if tuple(parts) == ("web",):
        _web_priority(settings.web.nice, settings.web.idle_priority)

    async def main() -> None:
        gateway = Gateway(settings, parts)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, gateway.stop)
        loop.add_signal_handler(signal.SIGHUP, gateway.reload_tls)
        await gateway.run(on_ready)

    run_async(main())


def run_async(main: Coroutine[Any, Any, None]) -> None:
    """Run on uvloop: the same asyncio code, with about a fifth less CPU per message (the
    event loop and socket calls are most of what intake and delivery cost)."""
    uvloop.run(main)
