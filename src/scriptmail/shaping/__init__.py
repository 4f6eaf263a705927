"""Traffic shaping per provider "site": which site a domain belongs to, its limits, and whether it
may take another connection or message now. Pure decisions; delivery asks, delivery reports."""
