"""What the API accepts in a field, spelled as JSON Schema patterns, so that the document and the
server refuse exactly the same values (the stores' checks in store.hostings, restated)."""

from __future__ import annotations

# hostings.check_name
NAME_PATTERN = r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$"
# hostings.check_email, without the case-insensitive flag (a JSON Schema pattern has none).
EMAIL_PATTERN = r"^[^@\s<>\"(),:;\\\[\]]{1,64}@[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+$"
PLAN_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
# An Idempotency-Key: visible ASCII, up to 255 characters.
KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"
# Free text in a query: no control characters (PostgreSQL refuses NUL).
TEXT_PATTERN = r"^[^\x00-\x1f\x7f]*$"
