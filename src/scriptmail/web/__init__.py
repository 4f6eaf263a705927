"""The web part: the REST API (reference paths under /1.0), metrics, and later the customer area."""
