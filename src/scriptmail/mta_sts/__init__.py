"""MTA-STS (RFC 8461): which MX hosts of a recipient domain mail may go to, and whether it must
go over TLS with a certificate that names them."""
