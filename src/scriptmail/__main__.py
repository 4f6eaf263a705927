"""`python -m scriptmail`: the same as the `scriptmail` command (the supervisor starts its copies so)."""

from scriptmail.cli import main

main()
