"""Meta -> us write layer."""
