"""Exports of what a hosting's pages list (the log, the bounces, the suppressed addresses), as CSV
or JSON, a chunk at a time: rows go in, bytes come out, nothing is held but the current batch."""
