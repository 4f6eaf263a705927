"""Delivery status notifications (RFC 3464) that scriptmail sends to the senders of failed mail."""
