"""Intake: the SMTP submission server, the sendmail command and its socket, maildrop pickup."""
