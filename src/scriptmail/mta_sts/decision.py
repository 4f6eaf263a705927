"""What a domain's MTA-STS policy means for one delivery (RFC 8461 §4, §5). Pure."""

from __future__ import annotations

from dataclasses import dataclass

from scriptmail.mta_sts.policy import Mode, Policy


@dataclass(frozen=True, slots=True)
class TlsDemand:
    """How the SMTP client must treat each MX host of a domain with a policy in force.

    `enforce`: STARTTLS with a certificate valid for the MX name, or that host is not used.
    `testing`: the same is tried, a failure is reported and the mail goes as it would without.
    """

    domain: str
    mode: Mode

    @property
    def enforced(self) -> bool:
        return self.mode is Mode.ENFORCE

    def label(self) -> str:
        return f"MTA-STS policy of {self.domain} ({self.mode.value})"


@dataclass(frozen=True, slots=True)
class Plan:
    hosts: tuple[str, ...]  # the MX hosts to try, in their order
    demand: TlsDemand | None  # None: opportunistic TLS, as without a policy
    unlisted: tuple[str, ...] = ()  # MX hosts the policy does not list (left out in enforce)
    refusal: str = ""  # non-empty: no host may be tried; the mail is deferred with this text


def plan(domain: str, policy: Policy | None, hosts: list[str]) -> Plan:
    """Which of the domain's MX hosts to try and with what TLS demand, given its policy."""
    if policy is None or policy.mode is Mode.NONE:
        return Plan(tuple(hosts), None)
    demand = TlsDemand(domain, policy.mode)
    unlisted = tuple(host for host in hosts if not policy.lists(host))
    if policy.mode is Mode.TESTING:
        return Plan(tuple(hosts), demand, unlisted)
    listed = tuple(host for host in hosts if policy.lists(host))
    refusal = ""
    if not listed:
        refusal = f"{demand.label()}: none of the MX hosts ({', '.join(hosts)}) is listed in the policy"
    return Plan(listed, demand, unlisted, refusal)
