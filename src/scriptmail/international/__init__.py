"""International mail (RFC 6531, RFC 5890): UTF-8 local parts, IDN domains, and when SMTPUTF8 is needed."""
