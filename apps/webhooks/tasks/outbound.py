"""Tasks for us -> subscribers."""
