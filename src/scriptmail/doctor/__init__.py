"""`scriptmail doctor`: pure checks of what probes of a running installation found, each saying
what is wrong and how to fix it."""
