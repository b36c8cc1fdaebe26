"""Small helpers for hot write paths that the ORM makes costly in CPU, not in the database."""

from __future__ import annotations

from django.db import connections, router
from django.db.models import Model
from django.db.models.fields import AutoFieldMixin

_insert_sql: dict[tuple[type[Model], int, str], tuple[str, list]] = {}


def insert_new(objs: list[Model]) -> None:
    """INSERT new instances of one model in one statement. Writes what bulk_create would (every concrete
    field after pre_save, so auto_now and defaults apply), but builds the SQL once per model and row
    count: compiling the INSERT is most of bulk_create's cost for a single row on a hot path. For models
    whose primary key is set in Python (our prefixed ids), not auto-increment ones."""
    if not objs:
        return
    model = type(objs[0])
    meta = model._meta
    if isinstance(meta.pk, AutoFieldMixin):
        raise TypeError(f"insert_new needs a primary key set in Python; {model.__name__} auto-increments")
    alias = router.db_for_write(model)
    connection = connections[alias]
    key = (model, len(objs), alias)
    cached = _insert_sql.get(key)
    if cached is None:
        fields = list(meta.concrete_fields)
        quote = connection.ops.quote_name
        row = "(" + ", ".join(["%s"] * len(fields)) + ")"
        # Identifiers come from the model's metadata, quoted; values are parameters.
        sql = (f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) VALUES "  # noqa: S608
               + ", ".join([row] * len(objs)))
        cached = _insert_sql[key] = (sql, fields)
    sql, fields = cached
    params = []
    for obj in objs:
        if type(obj) is not model:
            raise TypeError("insert_new takes instances of one model")
        for field in fields:
            params.append(field.get_db_prep_save(field.pre_save(obj, True), connection=connection))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
    for obj in objs:
        obj._state.adding = False
        obj._state.db = alias
