"""Suppression lists: addresses that are not attempted any more, per hosting and for the platform."""
