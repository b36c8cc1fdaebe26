"""Prefixed, time-sortable ids (`msg_01HNQ…`) built on ULIDs."""

from __future__ import annotations

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
