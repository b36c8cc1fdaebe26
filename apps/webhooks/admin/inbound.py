"""Admin for Meta -> us."""
