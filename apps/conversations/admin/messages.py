"""Admin for the messages side."""
