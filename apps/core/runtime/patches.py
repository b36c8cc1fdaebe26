"""Patches of third-party code other than Daphne's (daphne_requests): each applied from one place."""

from __future__ import annotations


def psycopg_cache_larger_statements() -> None:
    """psycopg parses a query's placeholders again on every execution once it is over 4,096 bytes or 50
    parameters; below that it keeps the parse in an LRU cache. The send API's single statement (message,
    conversation, audit and event: ~60 parameters) is over both, and re-parsing it was ~10% of a send's
    CPU. Raise both bounds (the cache keeps its 128 entries)."""
    try:
        from psycopg import _queries
    except ImportError:  # a psycopg that moved it: only the cache is lost
        return
    if getattr(_queries, "MAX_CACHED_STATEMENT_PARAMS", 0) < 256:
        _queries.MAX_CACHED_STATEMENT_PARAMS = 256
    if getattr(_queries, "MAX_CACHED_STATEMENT_LENGTH", 0) < 16384:
        _queries.MAX_CACHED_STATEMENT_LENGTH = 16384
