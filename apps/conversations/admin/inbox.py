"""Admin for the inbox side."""
