"""Bounces: VERP envelope senders that name their recipient, and the reading of what comes back to them
(delivery status notifications, feedback reports, plain-text bounces, auto-replies). Pure: no I/O here."""
