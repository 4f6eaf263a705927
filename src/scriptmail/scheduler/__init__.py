"""Jobs that run by themselves: held-mail expiry, purges, the policy sweep, counter pruning."""
