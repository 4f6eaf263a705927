"""Control: the hosting state machine and (later) the sending policy. Pure: no I/O here."""
