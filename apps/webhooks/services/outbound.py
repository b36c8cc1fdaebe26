"""us -> subscribers write layer."""
