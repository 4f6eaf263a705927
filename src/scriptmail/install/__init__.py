"""`scriptmail install`: what a production Debian server needs (account, directories, the
sendmail links, configuration, systemd units), planned as plain values and then written."""
