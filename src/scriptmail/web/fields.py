"""What the API accepts in a field, spelled as JSON Schema patterns, so that the document and the
server refuse exactly the same values (the stores' checks in store.hostings, restated)."""

from __future__ import annotations

from scriptmail.store import hostings

# hostings.check_name
NAME_PATTERN = r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$"
# hostings.check_email's first look (IDNA's own rules are checked behind it).
EMAIL_PATTERN = hostings.EMAIL_PATTERN
# The same first look for a form's `pattern` attribute (a JavaScript pattern, compiled with the `v`
# flag: Unicode classes, and ( ) [ ] - escaped inside a class). type="email" would refuse a UTF-8
# local part, so the address fields are text fields with this pattern.
_FORM_LABEL = r"[\p{L}\p{N}](?:[\p{L}\p{N}\p{M}\-]*[\p{L}\p{N}\p{M}])?"
FORM_EMAIL_PATTERN = rf'[^@\s<>"\(\),:;\\\[\]]{{1,64}}@{_FORM_LABEL}(?:\.{_FORM_LABEL})+'
PLAN_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
# An Idempotency-Key: visible ASCII, up to 255 characters.
KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"
# Free text in a query: no control characters (PostgreSQL refuses NUL).
TEXT_PATTERN = r"^[^\x00-\x1f\x7f]*$"
