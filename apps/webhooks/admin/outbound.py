"""Admin for us -> subscribers."""
