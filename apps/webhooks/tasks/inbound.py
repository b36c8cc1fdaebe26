"""Tasks for Meta -> us."""
