"""Settings: one typed object, loaded once at start and passed down to every part.

Sources, highest priority first: environment variables (``SCRIPTMAIL_`` + section + ``__`` +
key), the TOML file (``--config PATH`` or ``SCRIPTMAIL_CONFIG``), then the defaults below, which
make ``scriptmail serve`` work with no file at all.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import ssl
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from scriptmail.model import HostingState
from scriptmail.shaping.sites import Limits, SiteTable, SiteTableError, build_table
from scriptmail.viewer.token import valid_origin

CONFIG_ENV = "SCRIPTMAIL_CONFIG"

_PLAN_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")

# An SPF include target may start with an underscore label (_spf.platform.example); two labels at least.
_SPF_NAME_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$")


class ConfigError(Exception):
    """The configuration cannot be used; the message names the bad key."""


def parse_host_port(value: str, default_port: int | None = None, listening: bool = False) -> tuple[str, int]:
    """Split ``host:port`` (``[v6]:port`` for IPv6) and check both halves; port 0 only to listen."""
    text = value.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, ""
    if not host:
        raise ValueError(f"{value!r} has no host")
    if not port_text:
        if default_port is None:
            raise ValueError(f"{value!r} needs a port (host:port)")
        return host, default_port
    if not port_text.isdigit() or not (0 if listening else 1) <= int(port_text) < 65536:
        raise ValueError(f"{value!r} has an invalid port")
    return host, int(port_text)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class IntakeSettings(_Section):
    listen: str = "127.0.0.1:2525"
    socket: Path = Path("var/intake.sock")
    maildrop: Path = Path("var/maildrop")
    trusted_networks: dict[str, str] = Field(default_factory=dict)
    max_message_size: int = Field(10 * 1024 * 1024, ge=1024)
    max_recipients: int = Field(100, ge=1, le=10_000)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    maildrop_interval: float = Field(5.0, gt=0)

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        parse_host_port(value, listening=True)
        return value

    @model_validator(mode="after")
    def _tls_pair(self) -> IntakeSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together: set both or neither")
        return self

    @field_validator("trusted_networks")
    @classmethod
    def _networks(cls, value: dict[str, str]) -> dict[str, str]:
        for network in value:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError as error:
                raise ValueError(f"{network!r} is not a network: {error}") from None
        return value


class SiteSettings(_Section):
    """One provider site: laid over the shipped table key by key (see shaping/providers.toml)."""

    mx: list[str] | None = None  # MX host suffixes that belong to the site
    domains: list[str] | None = None  # recipient domains that belong to it by name
    connections: int | None = Field(None, ge=1, le=1000)
    messages_per_connection: int | None = Field(None, ge=1, le=100_000)
    per_minute: int | None = Field(None, ge=0, le=1_000_000)  # 0: no limit
    per_hour: int | None = Field(None, ge=0, le=1_000_000)


class PoolSettings(_Section):
    """Source addresses that delivery binds to in turn, and the name it gives in EHLO from them."""

    addresses: list[str]
    helo_name: str = ""  # default: delivery.helo_name

    @field_validator("addresses")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("a pool needs at least one address")
        for address in value:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise ValueError(f"{address!r} is not an IP address") from None
        if len(set(value)) != len(value):
            raise ValueError("an address is listed twice")
        return value

    @field_validator("helo_name")
    @classmethod
    def _helo(cls, value: str) -> str:
        name = value.strip().lower().rstrip(".")
        if value and not _HOSTNAME_RE.match(name):
            raise ValueError(f"{value!r} is not a host name")
        return name


class PoolRules(_Section):
    """Which pool a hosting's mail leaves through; the first rule that matches wins, in this order."""

    hostings: dict[str, str] = Field(default_factory=dict)  # hosting name -> pool
    states: dict[str, str] = Field(default_factory=dict)  # hosting state (active, forced...) -> pool
    new_hostings: str = ""  # pool of hostings created less than new_hosting_days ago
    new_hosting_days: float = Field(7.0, gt=0)
    plans: dict[str, str] = Field(default_factory=dict)  # plan -> pool
    default: str = ""  # everything else; "": no pool (the machine's own address, delivery.helo_name)

    @field_validator("states")
    @classmethod
    def _states(cls, value: dict[str, str]) -> dict[str, str]:
        known = {state.value for state in HostingState}
        for state in value:
            if state not in known:
                raise ValueError(f"{state!r} is not a hosting state ({', '.join(sorted(known))})")
        return value


class DeliverySettings(_Section):
    relay_host: str = ""
    routes: dict[str, str] = Field(default_factory=dict)
    nameservers: list[str] = Field(default_factory=list)
    dns_port: int = Field(53, gt=0, lt=65536)
    smtp_port: int = Field(25, gt=0, lt=65536)
    helo_name: str = ""
    concurrency: int = Field(50, ge=1, le=1000)
    per_destination: int = Field(10, ge=1, le=200)
    batch_size: int = Field(200, ge=1, le=5000)
    poll_interval: float = Field(1.0, gt=0)
    claim_delay: float = Field(0.05, ge=0)
    lease_seconds: int = Field(1200, ge=30)
    backoff_min: int = Field(300, ge=1)
    backoff_max: int = Field(4000, ge=1)
    lifetime: int = Field(5 * 24 * 3600, ge=60)
    connect_timeout: float = Field(30.0, gt=0)
    command_timeout: float = Field(300.0, gt=0)
    data_timeout: float = Field(600.0, gt=0)
    messages_per_connection: int = Field(100, ge=1)
    idle_seconds: float = Field(5.0, ge=0)
    suppression_days: int = Field(30, ge=1, le=3650)  # an automatic or customer suppression entry lasts this long
    delay_warning: int = Field(0, ge=0)  # seconds queued before the sender is warned of a delay; 0: never
    processes: int = Field(1, ge=1, le=64)  # delivery processes of `serve --split`
    mta_sts: bool = True  # apply recipient domains' MTA-STS policies (RFC 8461)
    mta_sts_port: int = Field(443, gt=0, lt=65536)  # HTTPS port of mta-sts.<domain> (another one for tests)
    mta_sts_refresh: float = Field(3600.0, gt=0)  # seconds between background refreshes of cached policies
    tls_ca_file: Path | None = None  # PEM CA certificates trusted besides the system's, for MTA-STS
    sites: dict[str, SiteSettings] = Field(default_factory=dict)  # over the shipped provider table
    slow_seconds: float = Field(600.0, gt=0)  # a slowed site recovers one level after this long
    throttle_pause: float = Field(60.0, ge=0)  # no new message to a site this long after it said 421
    site_lease: float = Field(30.0, ge=1, le=3600)  # a killed process's connections to a site stop counting after this
    pools: dict[str, PoolSettings] = Field(default_factory=dict)  # [delivery.pools.NAME]
    pool_for: PoolRules = Field(default_factory=PoolRules)  # [delivery.pool_for]

    @field_validator("tls_ca_file", mode="before")
    @classmethod
    def _ca_file(cls, value: object) -> Path | None:
        if value is None or str(value) == "":
            return None
        value = Path(str(value))
        context = ssl.create_default_context()
        try:
            context.load_verify_locations(cafile=str(value))
        except FileNotFoundError:
            raise ValueError(f"{value} does not exist") from None
        except (OSError, ssl.SSLError) as error:
            raise ValueError(f"{value} holds no usable PEM CA certificate: {error}") from None
        return value

    @field_validator("delay_warning")
    @classmethod
    def _delay_warning(cls, value: int) -> int:
        if 0 < value < 60:
            raise ValueError("use 0 (off) or at least 60 seconds")
        return value

    @model_validator(mode="after")
    def _backoff(self) -> DeliverySettings:
        if self.backoff_min > self.backoff_max:
            raise ValueError(f"backoff_min ({self.backoff_min}) is larger than backoff_max ({self.backoff_max})")
        return self

    @model_validator(mode="after")
    def _shaping(self) -> DeliverySettings:
        try:
            self.site_table()
        except SiteTableError as error:
            raise ValueError(str(error)) from None
        for name in self.pools:
            if not _PLAN_RE.match(name):
                raise ValueError(f"pools.{name}: use letters, digits, '-' and '_' (at most 64)")
        rules = self.pool_for
        named = [("default", rules.default), ("new_hostings", rules.new_hostings)]
        named += [
            (f"{kind}.{key}", pool) for kind in ("hostings", "states", "plans") for key, pool in getattr(rules, kind).items()
        ]
        for where, pool in named:
            if pool and pool not in self.pools:
                raise ValueError(f"pool_for.{where}: no pool named {pool!r} in [delivery.pools]")
        return self

    def site_table(self) -> SiteTable:
        """The shipped provider sites with [delivery.sites] laid over them (scriptmail.shaping)."""
        default = Limits(connections=self.per_destination, messages_per_connection=self.messages_per_connection)
        overrides = {name: site.model_dump(exclude_none=True) for name, site in self.sites.items()}
        return build_table(default, overrides)

    @field_validator("relay_host")
    @classmethod
    def _relay(cls, value: str) -> str:
        if value:
            parse_host_port(value, default_port=25)
        return value

    @field_validator("routes")
    @classmethod
    def _routes(cls, value: dict[str, str]) -> dict[str, str]:
        routes = {}
        for domain, target in value.items():
            name = domain.strip().lower().rstrip(".")
            if not name.isascii() or "xn--" in name:
                from scriptmail.international.addresses import AddressError, to_a_label

                try:
                    name = to_a_label(name)  # an IDN route is written in Unicode or punycode; DNS and the queue use the A-label
                except AddressError as error:
                    raise ValueError(str(error)) from None
            if not _HOSTNAME_RE.match(name):
                raise ValueError(f"{domain!r} is not a domain name")
            parse_host_port(target, default_port=25)
            routes[name] = target
        return routes

    @field_validator("nameservers")
    @classmethod
    def _nameservers(cls, value: list[str]) -> list[str]:
        for server in value:
            try:
                ipaddress.ip_address(server)
            except ValueError:
                raise ValueError(f"{server!r} is not an IP address") from None
        return value


class ControlSettings(_Section):
    hold_seconds: int = Field(72 * 3600, ge=60)  # held mail expires this long after it was held
    sweep_interval: float = Field(60.0, gt=0)  # how often expired held mail is looked for
    default_plan: str = "default"  # the plan of a hosting created without one
    log_days: int = Field(90, ge=1)  # finished recipients stay in the log this many days
    policy_interval: float = Field(10.0, gt=0)  # how often the automatic blocks are evaluated
    notify_from: str = ""  # sender of the platform's own mail; default postmaster@<hostname>
    rspamd_url: str = ""  # optional external scanner (rspamd's normal worker), e.g. http://127.0.0.1:11333
    rspamd_timeout: float = Field(5.0, gt=0)
    rspamd_password: str = ""
    dsn_per_sender_hour: int = Field(20, ge=0, le=100_000)  # notices to one sender address per hour; 0: none
    notice_interval: float = Field(5.0, gt=0)  # how often waiting notices to senders are written

    @field_validator("rspamd_url")
    @classmethod
    def _rspamd(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")


class PlanSettings(_Section):
    """What a hosting on this plan may send, and when the policy engine blocks it by itself."""

    hourly: int = Field(200, ge=0)  # recipients first sent per rolling 3600 s; 0 = no quota
    max_per_day: int = Field(0, ge=0)  # recipients first sent per calendar day; 0 = no limit
    policies: bool = True  # automatic spam and bounce blocks
    bounce_window: int = Field(50, ge=20)  # the last N attempted recipients...
    bounce_ratio: float = Field(0.2, gt=0, le=1)  # ...of which more than this share bounced (doubled when forced)
    spam_min_messages: int = Field(20, ge=1)  # content: at least this many messages in the last hour...
    spam_share: float = Field(0.5, gt=0, le=1)  # ...of which more than this share scored high
    volume_factor: float = Field(10.0, gt=1)  # volume: last hour above factor x the 7-day hourly median...
    volume_floor: int = Field(500, ge=1)  # ...and above this many messages
    unknown_user_limit: int = Field(20, ge=1)  # this many "no such user" bounces...
    unknown_user_window: int = Field(600, ge=60)  # ...within this many seconds
    complaint_limit: int = Field(5, ge=1)  # this many spam complaints (feedback reports)...
    complaint_window: int = Field(86400, ge=60)  # ...within this many seconds


def _builtin_plans() -> dict[str, PlanSettings]:
    """The reference product's hourly tiers, plus `unlimited` for the platform's own mail and benchmarks."""
    return {
        "starter": PlanSettings(hourly=10),
        "personal": PlanSettings(hourly=20),
        "pro": PlanSettings(hourly=100),
        "default": PlanSettings(hourly=200),
        "performance": PlanSettings(hourly=2000),
        "unlimited": PlanSettings(hourly=0, max_per_day=0, policies=False),
    }


class BouncesSettings(_Section):
    """VERP envelope senders and the listener for what comes back to them (DSN, ARF)."""

    domain: str = ""  # the platform's bounce domain; empty: envelope senders are left as they are
    listen: str = ""  # e.g. 0.0.0.0:25 on the bounce domain's MX; empty: no listener
    forward: bool = False  # also pass each bounce on to the message's original sender
    max_size: int = Field(2 * 1024 * 1024, ge=1024)  # larger reports are refused (552)

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        name = value.strip().lower().rstrip(".")
        if name and not _HOSTNAME_RE.match(name):
            raise ValueError(f"{value!r} is not a domain name")
        return name

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        if value:
            parse_host_port(value, listening=True)
        return value

    @model_validator(mode="after")
    def _listen_needs_domain(self) -> BouncesSettings:
        if self.listen and not self.domain:
            raise ValueError("listen needs domain: the listener accepts only addresses on the bounce domain")
        return self


class DomainsSettings(_Section):
    """Sending domains: DKIM signing, and what the SPF and DMARC checks expect a domain to authorise."""

    # SPF: the name customers include (v=spf1 include:<spf_include> ~all), e.g. _spf.platform.example,
    # and the addresses the platform's mail leaves from, which that record must pass.
    spf_include: str = ""
    outbound_addresses: list[str] = Field(default_factory=list)

    @field_validator("spf_include")
    @classmethod
    def _spf_include(cls, value: str) -> str:
        name = value.strip().lower().rstrip(".")
        if name and not _SPF_NAME_RE.match(name):
            raise ValueError(f"{value!r} is not a domain name")
        return name

    @field_validator("outbound_addresses")
    @classmethod
    def _outbound(cls, value: list[str]) -> list[str]:
        addresses: list[str] = []
        for text in value:
            try:
                address = ipaddress.ip_address(text.strip())
            except ValueError:
                raise ValueError(f"{text!r} is not an IP address") from None
            if str(address) not in addresses:
                addresses.append(str(address))
        return addresses

    # DKIM signing: where the key that encrypts the private keys lives, what signs unverified mail.
    key_file: Path = Path("var/dkim-master.key")  # Fernet key, created 0600 on the first key generated
    platform_domain: str = ""  # the platform's own signing domain (a domain of `_system`); empty: none
    ed25519: bool = False  # also generate an Ed25519 key per domain and send a second signature
    rsa_bits: int = Field(2048, ge=1024, le=4096)
    check_interval: float = Field(3600.0, ge=60)  # seconds between two DNS checks of every domain
    dns_timeout: float = Field(5.0, gt=0, le=60)
    rotation_overlap: int = Field(7 * 86400, ge=0)  # seconds the old key stays in the DNS instructions

    @field_validator("platform_domain")
    @classmethod
    def _platform(cls, value: str) -> str:
        if not value.strip():
            return ""
        from scriptmail.domains.names import DomainNameError, normalise

        try:
            return normalise(value)
        except DomainNameError as error:
            raise ValueError(str(error)) from None


class ReportsSettings(_Section):
    """The daily error report mailed to each hosting whose mail failed the day before."""

    enabled: bool = True
    hour: int = Field(6, ge=0, le=23)  # local hour (config key `timezone`) at which reports go out
    max_rows: int = Field(200, ge=1, le=5000)  # failures listed; beyond, a total and the link
    area_url: str = ""  # link to a hosting's log in the customer area; "{hosting}" is replaced
    catch_up_days: int = Field(7, ge=1, le=90)  # days missed while down that are still sent (late)

    @field_validator("area_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value


class WebhooksSettings(_Section):
    """Signed HTTP callbacks to the operator's and the customers' systems (scriptmail.webhooks)."""

    enabled: bool = True  # this node sends webhook messages (every node may; each message goes once at a time)
    allow_networks: list[str] = Field(default_factory=list)  # private networks endpoints may reach anyway
    nameservers: list[str] = Field(default_factory=list)  # resolvers for endpoint names; empty: the system's
    dns_port: int = Field(53, gt=0, lt=65536)
    timeout: float = Field(10.0, gt=0, le=120)  # whole request, answer included
    retry_window: int = Field(86400, ge=60)  # a message is retried this long after its event, then fails
    retry_delays: list[int] = Field(default_factory=lambda: [5, 300, 1800, 7200, 18000, 36000])
    disable_after: int = Field(5 * 86400, ge=60)  # an endpoint failing this long without a success is disabled
    batch_size: int = Field(50, ge=1, le=1000)
    concurrency: int = Field(10, ge=1, le=200)
    poll_interval: float = Field(1.0, gt=0)
    lease_seconds: int = Field(120, ge=10)
    rotation_grace: int = Field(86400, ge=0)  # the old secret also signs this long after a rotation
    max_hosting_endpoints: int = Field(10, ge=1, le=1000)  # a hosting's own endpoints (area, API)
    max_platform_endpoints: int = Field(20, ge=1, le=1000)  # platform-wide ones (operator area, admin API, CLI)

    @field_validator("allow_networks")
    @classmethod
    def _allow(cls, value: list[str]) -> list[str]:
        from scriptmail.webhooks.addresses import parse_networks

        parse_networks(value)
        return value

    @field_validator("nameservers")
    @classmethod
    def _nameservers(cls, value: list[str]) -> list[str]:
        return DeliverySettings._nameservers(value)

    @field_validator("retry_delays")
    @classmethod
    def _delays(cls, value: list[int]) -> list[int]:
        if not value or any(delay < 1 for delay in value):
            raise ValueError("give at least one delay, each of 1 second or more")
        if any(later < earlier for earlier, later in zip(value, value[1:])):
            raise ValueError("delays grow: each at least as long as the one before")
        return value

    @model_validator(mode="after")
    def _lease(self) -> WebhooksSettings:
        if self.lease_seconds < 2 * self.timeout:
            raise ValueError(f"lease_seconds ({self.lease_seconds}) must be at least twice timeout ({self.timeout:g})")
        return self


class WebSettings(_Section):
    listen: str = "127.0.0.1:8025"
    # The viewer's frame (a stored mail's HTML) is served by a listener of its own, another origin,
    # that reads no session: "host:port"; empty: the host of `listen`, its port + 1 (0 stays 0).
    frame_listen: str = ""
    # The origin browsers reach that listener at, e.g. "https://mailview.example.net". Browsers send
    # cookies by host name, not by port: give it a host name of its own and the area's cookies are
    # never sent to it. Empty: the area request's own scheme and host, with the frame listener's port.
    frame_origin: str = ""
    # Whether the customer area shows the body of held mail before a purge (headers always).
    show_held_body: bool = True
    # API requests per token and minute (a token bucket shared by every web process and node, kept in
    # the store, refilled continuously); 0: no limit.
    api_rate_per_minute: int = Field(600, ge=0, le=1_000_000)
    api_burst: int = Field(60, ge=1, le=100_000)  # requests a token may make at once before the rate applies
    # Test messages ("Send a test message", POST .../email/test) a hosting may send per rolling hour; 0: none.
    test_sends_per_hour: int = Field(5, ge=0, le=1000)
    # A process that runs only the web part (`--split`, or `--parts web`) lowers its CPU priority by
    # this much (nice(2)), so that customers polling the API never take a core from accepting mail.
    nice: int = Field(10, ge=0, le=19)
    # ...and, on Linux, runs under SCHED_IDLE: it gets a core only when the mail leaves one free, so
    # a flood of web requests costs the mail nothing (0.68x of its rate with nice alone, 0.98x with
    # both, measured). Off: the web competes at its nice level.
    idle_priority: bool = True
    # A process that runs the web part beside intake (the one-process default) serves at most this
    # many web requests per second while it is accepting mail; they wait their turn, none is refused.
    # So customers polling the areas or the API never hold up mail. 0: no cap.
    mail_first_rate: int = Field(20, ge=0, le=100_000)

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        parse_host_port(value, listening=True)
        return value

    @field_validator("frame_listen")
    @classmethod
    def _frame_listen(cls, value: str) -> str:
        if value:
            parse_host_port(value, listening=True)
        return value

    @field_validator("frame_origin")
    @classmethod
    def _frame_origin(cls, value: str) -> str:
        value = value.rstrip("/")
        if value and not valid_origin(value):
            raise ValueError(f"{value[:80]!r} is not an origin: scheme://host[:port], e.g. https://mailview.example.net")
        return value

    def frame_address(self) -> tuple[str, int]:
        """Where the frame listener binds: frame_listen, else listen's host and its port + 1."""
        if self.frame_listen:
            return parse_host_port(self.frame_listen, listening=True)
        host, port = parse_host_port(self.listen, listening=True)
        return host, port + 1 if port else 0


class Settings(BaseSettings):
    """Everything scriptmail reads from its configuration."""

    model_config = SettingsConfigDict(
        env_prefix="SCRIPTMAIL_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    database_url: str = "sqlite:///var/scriptmail.db"
    hostname: str = Field(default_factory=socket.getfqdn)
    node: str = Field(default_factory=socket.gethostname)
    processes: int = Field(1, ge=1, le=64)
    split: bool = False  # intake, delivery and web each in processes of their own (serve --split)
    timezone: str = "UTC"  # where a "day" starts: sent today, max per day, the daily report
    intake: IntakeSettings = Field(default_factory=IntakeSettings)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    control: ControlSettings = Field(default_factory=ControlSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    bounces: BouncesSettings = Field(default_factory=BouncesSettings)
    reports: ReportsSettings = Field(default_factory=ReportsSettings)
    domains: DomainsSettings = Field(default_factory=DomainsSettings)
    webhooks: WebhooksSettings = Field(default_factory=WebhooksSettings)
    plans: dict[str, PlanSettings] = Field(default_factory=dict)  # merged over the built-in plans

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if not value.startswith(("sqlite:///", "postgresql+psycopg://")):
            raise ValueError("must start with sqlite:/// or postgresql+psycopg://")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a time zone name (e.g. Europe/Madrid)") from None
        return value

    @field_validator("plans")
    @classmethod
    def _plans(cls, value: dict[str, PlanSettings]) -> dict[str, PlanSettings]:
        for name in value:
            if not _PLAN_RE.match(name):
                raise ValueError(f"plan name {name!r}: use letters, digits, '-' and '_' (at most 64)")
        return {**_builtin_plans(), **value}

    @model_validator(mode="after")
    def _default_plan(self) -> Settings:
        if self.control.default_plan not in self.plans:
            raise ValueError(f"control.default_plan: no plan named {self.control.default_plan!r}")
        if not self.control.notify_from:
            self.control.notify_from = f"postmaster@{self.hostname}"
        return self

    def plan(self, name: str) -> PlanSettings:
        """A hosting's plan; one removed from the configuration falls back to the default plan."""
        return self.plans.get(name) or self.plans[self.control.default_plan]

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _CONFIG_FILE.get("path")
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)


# The TOML source is chosen per load; pydantic-settings asks for sources on the class.
_CONFIG_FILE: dict[str, Path | None] = {"path": None}


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        lines.append(f"{key}: {message}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Read the file (if any) and the environment; raise ConfigError naming each bad key."""
    chosen = path if path is not None else os.environ.get(CONFIG_ENV) or None
    file_path = Path(chosen) if chosen else None
    if file_path is not None and not file_path.is_file():
        raise ConfigError(f"configuration file {file_path} does not exist")
    _CONFIG_FILE["path"] = file_path
    try:
        return Settings(**overrides)
    except ValidationError as error:
        raise ConfigError(_describe(error)) from None
    except ValueError as error:  # TOML syntax errors arrive as ValueError subclasses
        raise ConfigError(f"cannot read {file_path}: {error}") from None
    finally:
        _CONFIG_FILE["path"] = None
