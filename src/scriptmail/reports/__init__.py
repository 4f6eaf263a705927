"""Reports: the daily error report (and later volume aggregation). Pure: no I/O here."""
