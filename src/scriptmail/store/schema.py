"""The tables. Times are UTC seconds since the epoch (float), identical on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    text,
)

from scriptmail.model import HostingState, Origin, RecipientStatus

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only makes INTEGER PRIMARY KEY an alias of the rowid; BIGINT elsewhere.
Id = BigInteger().with_variant(Integer(), "sqlite")


def _one_of(column: str, values: type) -> str:
    return f"{column} IN ({', '.join(repr(v.value) for v in values)})"


hostings = Table(
    "hostings",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(253), nullable=False, unique=True),
    Column("owner_email", String(320), nullable=False),
    Column("uid", Integer, nullable=True, unique=True),
    Column("smtp_password_hash", String(200), nullable=True),
    Column("plan", String(64), nullable=False, server_default="default"),
    Column("state", String(16), nullable=False, server_default=HostingState.ACTIVE.value),
    Column("report_to", String(320), nullable=True),
    Column("language", String(8), nullable=False, server_default="en"),
    Column("created_at", Float, nullable=False),
    Column("purge_started_at", Float, nullable=True),  # mail queued before this is what the purge deletes
    Column("notices", Integer, nullable=False, server_default="1"),  # 1: failed mail is notified to its sender (DSN)
    # A deleted hosting keeps its row (renamed to "deleted~<id>~<name>") so its log stays readable.
    Column("deleted_at", Float, nullable=True),
    CheckConstraint(_one_of("state", HostingState), name="state"),
)

messages = Table(
    "messages",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("hosting_id", Id, ForeignKey("hostings.id"), nullable=False),
    Column("received_at", Float, nullable=False),
    Column("envelope_from", String(320), nullable=False),
    Column("subject", Text, nullable=False, server_default=""),
    Column("message_id", String(998), nullable=False, server_default=""),
    Column("size", Integer, nullable=False),
    Column("origin", String(16), nullable=False),
    Column("client", String(255), nullable=False, server_default=""),
    Column("script", Text, nullable=False, server_default=""),
    Column("cwd", Text, nullable=False, server_default=""),
    Column("command", Text, nullable=False, server_default=""),
    Column("score", Float, nullable=False, server_default="0"),  # content score (control.content, rspamd)
    Column("score_reasons", Text, nullable=False, server_default=""),
    # Released by its owner while the hosting is blocked: delivery sends it, the rest stay held.
    Column("released_at", Float, nullable=True),
    CheckConstraint(_one_of("origin", Origin), name="origin"),
    Index("ix_messages_hosting_received", "hosting_id", "received_at"),
)

# Kept apart from messages so a body can be freed once no recipient needs it.
bodies = Table(
    "bodies",
    metadata,
    Column("message_id", Id, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True),
    Column("data", LargeBinary, nullable=False),
)

recipients = Table(
    "recipients",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("message_id", Id, ForeignKey("messages.id"), nullable=False),
    Column("hosting_id", Id, ForeignKey("hostings.id"), nullable=False),
    Column("address", String(320), nullable=False),
    Column("domain", String(255), nullable=False),
    Column("status", String(16), nullable=False),
    Column("queued_at", Float, nullable=False),
    Column("next_attempt_at", Float, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_code", Integer, nullable=True),
    Column("last_text", Text, nullable=False, server_default=""),
    Column("lease_owner", String(128), nullable=True),
    Column("lease_until", Float, nullable=True),
    Column("held_at", Float, nullable=True),  # when it was held: held mail expires after a while
    Column("updated_at", Float, nullable=False),
    CheckConstraint(_one_of("status", RecipientStatus), name="status"),
    Index("ix_recipients_status_due", "status", "next_attempt_at"),
    # A hosting's recipients of one status, newest change first: its bounces, its queue.
    Index("ix_recipients_hosting_status_updated", "hosting_id", "status", "updated_at"),
    # A hosting's log, newest first, a page at a time (keyset on id): the customer area's log.
    Index("ix_recipients_hosting_id", "hosting_id", "id"),
    Index("ix_recipients_message", "message_id"),
    # What waits now, per domain (a site's deferred count): only the deferred rows are in it.
    Index(
        "ix_recipients_deferred_domain", "domain", "status",
        sqlite_where=text("status = 'deferred'"), postgresql_where=text("status = 'deferred'"),
    ),  # fmt: skip
)

# The state history of each hosting: who changed what, when and why (shown to the customer).
hosting_events = Table(
    "hosting_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("hosting_id", Id, ForeignKey("hostings.id"), nullable=False),
    Column("at", Float, nullable=False),
    Column("actor", String(16), nullable=False),
    Column("action", String(16), nullable=False),
    Column("from_state", String(16), nullable=False),
    Column("to_state", String(16), nullable=False),
    Column("reason", Text, nullable=False, server_default=""),
    Column("evidence", Text, nullable=False, server_default=""),  # JSON: what an automatic block saw
    Column("false_positive_at", Float, nullable=True),  # an operator said the block was wrong...
    Column("false_positive_by", String(320), nullable=False, server_default=""),
    Column("false_positive_note", Text, nullable=False, server_default=""),  # ...and why
    Index("ix_hosting_events_hosting_at", "hosting_id", "at"),
)

# One row per running process (node): its leases are named after it, so two live processes must
# never share a name; the heartbeat tells a crashed registration from a live one.
nodes = Table(
    "nodes",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("hostname", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("heartbeat_at", Float, nullable=False),
)

attempts = Table(
    "attempts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("recipient_id", Id, ForeignKey("recipients.id"), nullable=False),
    Column("at", Float, nullable=False),
    Column("node", String(128), nullable=False, server_default=""),
    Column("mx_host", String(300), nullable=False, server_default=""),
    Column("code", Integer, nullable=True),
    Column("text", Text, nullable=False, server_default=""),
    Column("duration", Float, nullable=False),
    Index("ix_attempts_recipient", "recipient_id"),
)

# Per hosting and minute, what happened: the hourly quota, the automatic blocks and the volume
# charts read these small rows instead of scanning the log. Pruned after a while by the scheduler.
COUNTER_NAMES = (
    "accepted", "flagged", "dispatched", "sent", "bounced", "unknown_user", "expired", "complaints", "held", "suppressed",
)  # fmt: skip


# Counter rows are striped: a writer adds to its own stripe of a key (store.activity.stripe_of)
# and readers sum over the stripes. Writers in several processes (PostgreSQL) then never wait on
# one another's row lock, which each would hold through its commit's WAL flush; SQLite has one
# writer and keeps stripe 0.
def _stripe() -> Column:
    return Column("stripe", SmallInteger, primary_key=True, server_default="0")


def _counters() -> list[Column]:
    """Messages accepted by intake (and those scored as spam), recipients sent for the first time,
    sent, bounced (hard), bounced as unknown users, expired (given up or held too long), complaints,
    recipients put on hold (at intake for a blocked hosting, or when it is blocked), and recipients
    not attempted because a suppression list has their address."""
    return [Column(name, Integer, nullable=False, server_default="0") for name in COUNTER_NAMES]


activity = Table(
    "activity",
    metadata,
    Column("hosting_id", Id, ForeignKey("hostings.id"), primary_key=True),
    Column("minute", Integer, primary_key=True),  # UTC seconds // 60
    _stripe(),
    *_counters(),
    Index("ix_activity_minute", "minute"),
)

# The same counters per hosting and day (the platform's time zone), kept as long as the log:
# the 30-day chart and the daily report read these.
activity_daily = Table(
    "activity_daily",
    metadata,
    Column("hosting_id", Id, ForeignKey("hostings.id"), primary_key=True),
    Column("day", Integer, primary_key=True),  # date.toordinal() of the local day
    _stripe(),
    *_counters(),
)

# Since each hosting was created: what the reference API calls `sent` and `bounce`.
hosting_totals = Table(
    "hosting_totals",
    metadata,
    Column("hosting_id", Id, ForeignKey("hostings.id"), primary_key=True),
    _stripe(),
    Column("sent", BigInteger, nullable=False, server_default="0"),
    Column("bounced", BigInteger, nullable=False, server_default="0"),
    Column("expired", BigInteger, nullable=False, server_default="0"),
    Column("purged", BigInteger, nullable=False, server_default="0"),
    Column("complaints", BigInteger, nullable=False, server_default="0"),
    Column("suppressed", BigInteger, nullable=False, server_default="0"),
)

# Messages per originating script and hosting: "which script sends what".
script_counts = Table(
    "script_counts",
    metadata,
    Column("hosting_id", Id, ForeignKey("hostings.id"), primary_key=True),
    Column("script", String(500), primary_key=True),  # "" for mail without one
    _stripe(),
    Column("messages", BigInteger, nullable=False, server_default="0"),
    Column("recipients", BigInteger, nullable=False, server_default="0"),
    Column("last_at", Float, nullable=False, server_default="0"),
    Column("bounced", BigInteger, nullable=False, server_default="0"),  # recipients that bounced (hard), DSNs included
)

# Keys shared by every node (the VERP secret), created on first use.
secrets = Table(
    "secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", LargeBinary, nullable=False),
)

# Every report that came back to a VERP address (DSN, ARF, text bounce), parsed or not.
inbound_reports = Table(
    "inbound_reports",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("recipient_id", Id, ForeignKey("recipients.id"), nullable=False),
    Column("received_at", Float, nullable=False),
    Column("kind", String(16), nullable=False),  # dsn, arf, plain, auto-reply, unparsed
    Column("client", String(255), nullable=False, server_default=""),
    Column("summary", Text, nullable=False, server_default=""),
    Column("data", LargeBinary, nullable=False),  # the report as received (capped)
    Index("ix_inbound_reports_recipient", "recipient_id"),
)

# One row per hosting and day whose error report went out: the key makes it exactly once.
report_runs = Table(
    "report_runs",
    metadata,
    Column("hosting_id", Id, ForeignKey("hostings.id"), primary_key=True),
    Column("day", Integer, primary_key=True),  # date.toordinal() of the reported day
    Column("sent_at", Float, nullable=False),
    Column("failures", Integer, nullable=False),
    Column("message_id", Id, nullable=True),  # the report's own queue id; none when nothing failed
    Column("late", Integer, nullable=False, server_default="0"),
)

# Jobs that must run on one node at a time (a purge, the policy sweep...): whoever holds the
# row's unexpired lease runs it; a crashed holder's lease runs out and another node takes over.
leases = Table(
    "leases",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("owner", String(200), nullable=False),
    Column("until", Float, nullable=False),
)

# People who log in to the customer or operator area, or use the API.
users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("password_hash", String(200), nullable=False),
    Column("operator", Integer, nullable=False, server_default="0"),
    Column("language", String(8), nullable=False, server_default="en"),
    Column("created_at", Float, nullable=False),
)

# Which hostings a customer owns (an operator reaches every hosting without rows here).
user_hostings = Table(
    "user_hostings",
    metadata,
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("hosting_id", Id, ForeignKey("hostings.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_user_hostings_hosting", "hosting_id"),
)

# API bearer tokens: only a hash is kept; the token itself is shown once, at creation.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("label", String(200), nullable=False, server_default=""),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
    Column("last_used_at", Float, nullable=True),
    Column("revoked_at", Float, nullable=True),
    # An operator token's reach: read, manage or provision; NULL for a person's own token (a
    # customer's hostings, or an operator's present reach, which is `manage`).
    Column("scope", String(16), nullable=True),
)

# Customer-area sessions: the cookie holds a random id, the store only its hash.
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("seen_at", Float, nullable=False),
    Column("flash", Text, nullable=False, server_default=""),  # one message for the next page
)

# Failed logins per account and per address, for growing delays.
login_failures = Table(
    "login_failures",
    metadata,
    Column("key", String(400), primary_key=True),  # "account:<email>" or "ip:<address>"
    Column("failures", Integer, nullable=False),
    Column("last_at", Float, nullable=False),
)

# Every change made through the admin API or the CLI: which token (never its secret) or command,
# when, what, and the object before and after (JSON). Operators read it; nothing deletes it.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("token_id", Id, nullable=True),  # no foreign key: the entry outlives a deleted user's token
    Column("actor", String(400), nullable=False),  # "token 7 (ops@example.net)", "operator ops@example.net", "cli (uid 0)"
    Column("action", String(64), nullable=False),  # hosting.create, hosting.delete, token.create...
    Column("target", String(400), nullable=False, server_default=""),
    Column("before", Text, nullable=True),
    Column("after", Text, nullable=True),
    # The hosting a change concerns (None: an account, a user, a platform-wide endpoint): its owner
    # reads its trail by it. by_operator: 1 when the platform made the change, 0 for its customer.
    Column("hosting", String(253), nullable=True),
    Column("by_operator", Integer, nullable=False, server_default="1"),
    Index("ix_audit_log_at", "at"),
    Index("ix_audit_log_hosting", "hosting", "id"),
)

# Answers to POSTs that carried an Idempotency-Key, per token: the same key and body get the same
# answer again; the same key with another body is refused.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("token_id", Id, primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("status", Integer, nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)

# Webhook endpoints: platform-wide (hosting_id NULL, the operator's) or for one hosting (its
# customer's). The secret signs every request, so it is kept; it is shown once, at creation or
# rotation. After a rotation the previous secret also signs until previous_until.
webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("hosting_id", Id, ForeignKey("hostings.id", ondelete="CASCADE"), nullable=True),
    Column("url", Text, nullable=False),
    Column("events", Text, nullable=False),  # event types, comma-separated
    Column("description", String(200), nullable=False, server_default=""),
    Column("secret", String(100), nullable=False),
    Column("previous_secret", String(100), nullable=True),
    Column("previous_until", Float, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(320), nullable=False, server_default=""),
    Column("failing_since", Float, nullable=True),  # first failure since the last success
    Column("disabled_at", Float, nullable=True),  # set when it kept failing; nothing more is queued for it
    Column("disabled_reason", Text, nullable=False, server_default=""),
    Index("ix_webhook_endpoints_hosting", "hosting_id"),
)

# The outbox: one row per event and subscribed endpoint, written in the same transaction as the
# event's cause, sent from here at least once. `id` is the webhook-id of every attempt.
webhook_messages = Table(
    "webhook_messages",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("endpoint_id", Id, ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False),
    Column("hosting_id", Id, nullable=True),
    Column("event_type", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("payload", Text, nullable=False),  # the JSON body, fixed once written
    Column("status", String(16), nullable=False),  # pending, delivered, failed
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", Float, nullable=False),
    Column("lease_owner", String(200), nullable=True),
    Column("lease_until", Float, nullable=True),
    Column("delivered_at", Float, nullable=True),
    Index("ix_webhook_messages_status_due", "status", "next_attempt_at"),
    Index("ix_webhook_messages_endpoint", "endpoint_id", "id"),
)

# Every attempt to send a webhook message: the endpoint's delivery log.
webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("endpoint_id", Id, ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False),
    Column("webhook_message_id", Id, ForeignKey("webhook_messages.id", ondelete="CASCADE"), nullable=False),
    Column("at", Float, nullable=False),
    Column("node", String(200), nullable=False, server_default=""),
    Column("status_code", Integer, nullable=True),  # none: no HTTP answer (refused, timeout, not HTTP)
    Column("duration", Float, nullable=False),
    Column("error", Text, nullable=False, server_default=""),
    Column("excerpt", Text, nullable=False, server_default=""),  # the start of the answer's body
    Index("ix_webhook_attempts_endpoint", "endpoint_id", "id"),
    Index("ix_webhook_attempts_message", "webhook_message_id"),
)

# Sending domains (DKIM): one hosting each; `domain` is the A-label. The state follows its keys:
# pending until DNS holds them, verified, or failing with the reason shown to the customer.
DOMAIN_STATES = ("pending", "verified", "failing")

sending_domains = Table(
    "sending_domains",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("hosting_id", Id, ForeignKey("hostings.id"), nullable=False),
    Column("domain", String(253), nullable=False, unique=True),
    Column("state", String(16), nullable=False, server_default="pending"),
    Column("reason", Text, nullable=False, server_default=""),
    Column("created_at", Float, nullable=False),
    Column("checked_at", Float, nullable=True),
    Column("verified_at", Float, nullable=True),
    CheckConstraint("state IN ('pending', 'verified', 'failing')", name="state"),
    Index("ix_sending_domains_hosting", "hosting_id"),
)

# A domain's keys: the private key is Fernet-encrypted under the master key file (never clear here).
# `active` keys sign (once verified); a new key from a rotation waits inactive until DNS holds it;
# a replaced key stays listed in the DNS instructions until `retire_after`.
dkim_keys = Table(
    "dkim_keys",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("domain_id", Id, ForeignKey("sending_domains.id", ondelete="CASCADE"), nullable=False),
    Column("selector", String(63), nullable=False),
    Column("algorithm", String(16), nullable=False),
    Column("public_key", Text, nullable=False),
    Column("private_key", LargeBinary, nullable=False),
    Column("state", String(16), nullable=False, server_default="pending"),
    Column("reason", Text, nullable=False, server_default=""),
    Column("active", Integer, nullable=False, server_default="0"),
    Column("created_at", Float, nullable=False),
    Column("retire_after", Float, nullable=True),
    CheckConstraint("state IN ('pending', 'verified', 'failing')", name="state"),
    Index("ix_dkim_keys_domain", "domain_id", "selector", unique=True),
)

# The From domains each hosting actually sends with, counted by intake's bulk insert (one upsert per
# commit): how many messages, and how many were signed with the domain's key, with the platform's, or
# failed to sign. A domain here without a sending_domains row is "seen, not set up".
from_domains = Table(
    "from_domains",
    metadata,
    Column("hosting_id", Id, ForeignKey("hostings.id"), primary_key=True),
    Column("domain", String(253), primary_key=True),
    _stripe(),
    Column("messages", BigInteger, nullable=False, server_default="0"),
    Column("signed", BigInteger, nullable=False, server_default="0"),
    Column("platform", BigInteger, nullable=False, server_default="0"),
    Column("failed", BigInteger, nullable=False, server_default="0"),
    Column("last_at", Float, nullable=False, server_default="0"),
)

# Addresses that are not attempted any more: a hosting's list (scope = its id), filled by delivery
# results and by its owner, and the platform's (scope 0): addresses, whole domains and patterns.
suppressions = Table(
    "suppressions",
    metadata,
    Column("scope", Id, primary_key=True),  # the hosting's id; 0: the platform's list
    Column("value", String(320), primary_key=True),  # lower-case address, domain or pattern
    Column("kind", String(8), nullable=False),  # address, domain, pattern (suppression.rules.Kind)
    Column("reason", String(32), nullable=False),  # no-such-user, repeated-failure, manual
    Column("code", Integer, nullable=True),  # the SMTP reply that put it there, if any
    Column("reply", Text, nullable=False, server_default=""),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=True),  # None: until removed (the platform's list)
    Column("notified", Integer, nullable=False, server_default="0"),  # 1 once a sender got a notice for it
    Index("ix_suppressions_kind", "kind"),  # the few patterns, read at every claim
)

# Notices to senders (DSN) still to write, and the ones written: one row per recipient that
# failed, expired or is delayed, inserted in the same transaction as that outcome.
notice_events = Table(
    "notice_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("recipient_id", Id, nullable=False),
    Column("message_id", Id, nullable=False),
    Column("action", String(8), nullable=False),  # failed, delayed (RFC 3464 Action)
    Column("created_at", Float, nullable=False),
    Column("done_at", Float, nullable=True),  # None: still to do
    Column("outcome", String(16), nullable=False, server_default=""),  # sent, or why none was sent
    Column("sender", String(320), nullable=False, server_default=""),  # whom the notice went to (the hourly cap)
    Column("notice_id", Id, nullable=True),  # the notice's own queue id
    # The hosting was blocked as spam or bounce when the recipient failed (no notice: backscatter);
    # None for events written before this was recorded, which the hosting's state now decides.
    Column("quiet", Integer, nullable=True),
    Index("ix_notice_events_done", "done_at"),
    Index("ix_notice_events_message", "message_id", "done_at"),  # a body is kept while its notice waits
    Index("ix_notice_events_recipient", "recipient_id"),
    Index("ix_notice_events_sender", "sender", "done_at"),
)

# MTA-STS policies of recipient domains (RFC 8461 §5.1), kept past a restart so that an attacker
# who blocks the policy lookups after one cannot turn a domain's enforce mode off.
mta_sts_policies = Table(
    "mta_sts_policies",
    metadata,
    Column("domain", String(255), primary_key=True),  # the recipient domain, as delivery names it
    Column("policy_id", String(32), nullable=False),  # the id of the TXT record it was fetched for
    Column("mode", String(8), nullable=False),  # enforce, testing, none
    Column("mx", Text, nullable=False, server_default=""),  # the mx patterns, one per line
    Column("max_age", Integer, nullable=False),
    Column("fetched_at", Float, nullable=False),
)

# Test messages a hosting's owner sent from the customer area or the API ("Send a test message"):
# counted per rolling hour (web.test_sends_per_hour), and what became of each, shown live. The row
# is written before the message is handed to intake, so a refused test still counts.
test_sends = Table(
    "test_sends",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("hosting_id", Id, ForeignKey("hostings.id"), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("requested_by", String(320), nullable=False, server_default=""),
    Column("sender", String(320), nullable=False),
    Column("address", String(320), nullable=False),
    Column("queue_id", Id, nullable=True),  # the message intake committed; None: not (yet) accepted
    Column("refused", Text, nullable=False, server_default=""),  # intake's refusal, if it refused
    Column("dkim", String(16), nullable=False, server_default=""),  # signed, platform, failed, "" (unsigned)
    Column("dkim_domain", String(253), nullable=False, server_default=""),  # the d= of its signature
    Index("ix_test_sends_hosting_created", "hosting_id", "created_at"),
)

# The API's rate limit per token, shared by every web process and node (store.rate_limits): the
# token's theoretical arrival time (GCRA) and whether its last request was allowed.
api_rate_limits = Table(
    "api_rate_limits",
    metadata,
    Column("token_id", Id, primary_key=True, autoincrement=False),
    Column("tat", Float, nullable=False),
    Column("ok", Integer, nullable=False, server_default="1"),
)

# What each delivery node's traffic shaping and pools look like now (scriptmail.shaping): busy or
# slowed sites and the pools, rewritten by the node every few seconds, never per message. The
# CLI, the operator pages and the metrics read it, so every node shows the same picture.
delivery_sites = Table(
    "delivery_sites",
    metadata,
    Column("node", String(64), primary_key=True),
    Column("kind", String(8), primary_key=True),  # site, pool
    Column("name", String(253), primary_key=True),
    Column("data", Text, nullable=False),  # JSON: limits, level, reason, counts
    Column("updated_at", Float, nullable=False),
)

# A site's rate shared by every delivery process and node (store.site_shares, shaping.budget): the
# theoretical arrival time of its per-minute and per-hour rates. On SQLite these rows live in a
# file of their own beside the database, so that shaping never waits for the mail's commits.
site_budgets = Table(
    "site_budgets",
    metadata,
    Column("site", String(253), primary_key=True),
    Column("minute_tat", Float, nullable=False, server_default="0"),
    Column("hour_tat", Float, nullable=False, server_default="0"),
)

# The connections each delivery process holds open to a site, as a lease: a process renews it while
# it runs, so a killed one stops counting once `expires_at` has passed.
site_slots = Table(
    "site_slots",
    metadata,
    Column("site", String(253), primary_key=True),
    Column("holder", String(96), primary_key=True),
    Column("connections", Integer, nullable=False),
    Column("expires_at", Float, nullable=False),
    Index("ix_site_slots_holder", "holder"),
)

# The site of each recipient domain whose site delivery found from its MX hosts (google for a
# domain hosted at Google), so that readers can count a site's deferred mail without DNS.
# Written by delivery nodes with their snapshot; rows not seen for longer than a recipient lives go.
domain_sites = Table(
    "domain_sites",
    metadata,
    Column("domain", String(255), primary_key=True),
    Column("site", String(253), nullable=False),
    Column("seen_at", Float, nullable=False),
    Index("ix_domain_sites_seen_at", "seen_at"),
)

# A site's slow-down shared by every delivery process and node (store.site_slowdowns, shaping.slowdown):
# one process told to slow down writes it, the others read it each second. Beside the SQLite
# database like site_budgets.
site_slowdowns = Table(
    "site_slowdowns",
    metadata,
    Column("site", String(253), primary_key=True),
    Column("level", Integer, nullable=False),
    Column("slowed_at", Float, nullable=False),
    Column("paused_until", Float, nullable=False),
    Column("recovers_at", Float, nullable=False),
    Column("ends_at", Float, nullable=False),  # nothing left of it after this: the readers skip it
    Column("reason", Text, nullable=False, server_default=""),
    Index("ix_site_slowdowns_ends_at", "ends_at"),
)
