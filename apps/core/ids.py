"""Prefixed, time-sortable ids (`msg_01HNQ…`) built on ULIDs."""

from __future__ import annotations

import os
import time

from django.db import models
from ulid import ULID


def new_id(prefix: str) -> str:
    return f"{prefix}_{ULID()}"


class PrefixedIdField(models.CharField):
    """Primary key holding `<prefix>_<ULID>`; the default is generated in Python."""

    def __init__(self, *args, prefix: str = "", **kwargs):
        self.prefix = prefix
        kwargs.setdefault("max_length", 40)
        kwargs.setdefault("primary_key", True)
        kwargs.setdefault("editable", False)
        kwargs.pop("default", None)
        super().__init__(*args, **kwargs)

    def get_default(self):
        return new_id(self.prefix)

    def has_default(self) -> bool:
        return True

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["prefix"] = self.prefix
        kwargs.pop("default", None)
        return name, path, args, kwargs


# Crockford's base32, as ULIDs spell it.
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
SQL_ID_SEQ_CHARS = 5  # 32**5 = 33,554,432 ids per batch


def new_id_batch_prefix(prefix: str) -> str:
    """The first part of `<prefix>_<ULID>` for a batch of ids generated in SQL: the ULID's 48-bit time and
    55 fresh random bits (not ULID()'s: it is monotonic, so two ULIDs of one millisecond share their first
    bits). `sql_id_expression` appends the last 25 bits from a per-row sequence number, so a batch's ids are
    valid ULIDs, unique within the batch, time-sortable and in sequence order."""
    value = (time.time_ns() // 1_000_000) << 80 | (int.from_bytes(os.urandom(7), "big") >> 1) << 25
    text = "".join(_CROCKFORD[(value >> (5 * i)) & 31] for i in range(25, -1, -1))
    return f"{prefix}_{text[:26 - SQL_ID_SEQ_CHARS]}"


def sql_id_expression(*, prefix_sql: str, seq_sql: str) -> str:
    """PostgreSQL expression: `prefix_sql` (the batch prefix) followed by `seq_sql` (0 <= seq < 32**5, a bigint
    expression) in 5 base32 characters."""
    chars = " || ".join(
        f"substr('{_CROCKFORD}', ((({seq_sql}) >> {5 * shift}) & 31)::int + 1, 1)"
        for shift in range(SQL_ID_SEQ_CHARS - 1, -1, -1)
    )
    return f"({prefix_sql} || {chars})"
