"""Small helpers for hot write paths that the ORM makes costly in CPU, not in the database."""

from __future__ import annotations

from django.db import connections, router
from django.db.models import Model
from django.db.models.fields import AutoFieldMixin

_insert_sql: dict[tuple[type[Model], int, str], tuple[str, list]] = {}


def insert_statement(objs: list[Model], *, skip_conflicts: bool = False) -> tuple[str, list]:
    """The INSERT of these new instances of one model, as (sql, params): what bulk_create would write
    (every concrete field after pre_save, so auto_now and defaults apply), with the SQL built once per
    model and row count, as compiling it is most of bulk_create's cost for one row on a hot path. Build
    it before opening a transaction to keep Python out of the time the transaction holds its locks.
    For models whose primary key is set in Python (our prefixed ids), not auto-increment ones.
    skip_conflicts: ON CONFLICT DO NOTHING, as bulk_create(ignore_conflicts=True) writes it."""
    model = type(objs[0])
    meta = model._meta
    if isinstance(meta.pk, AutoFieldMixin):
        raise TypeError(f"insert_new needs a primary key set in Python; {model.__name__} auto-increments")
    connection = connections[router.db_for_write(model)]
    key = (model, len(objs), connection.alias, skip_conflicts)
    cached = _insert_sql.get(key)
    if cached is None:
        fields = list(meta.concrete_fields)
        quote = connection.ops.quote_name
        row = "(" + ", ".join(["%s"] * len(fields)) + ")"
        # Identifiers come from the model's metadata, quoted; values are parameters.
        sql = (f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) VALUES "  # noqa: S608
               + ", ".join([row] * len(objs)) + (" ON CONFLICT DO NOTHING" if skip_conflicts else ""))
        cached = _insert_sql[key] = (sql, fields)
    sql, fields = cached
    params = []
    for obj in objs:
        if type(obj) is not model:
            raise TypeError("insert_new takes instances of one model")
        for field in fields:
            params.append(field.get_db_prep_save(field.pre_save(obj, True), connection=connection))
    return sql, params


_insert_select_sql: dict[tuple, tuple[str, list]] = {}


def insert_select_statement(obj: Model, *, source: str, exprs: dict[str, str] | None = None) -> tuple[str, list]:
    """The INSERT of one new instance as `INSERT INTO t (columns) SELECT … FROM <source>`, as (sql, params):
    a row for each row of `source` (a CTE of the same statement), so the write happens only if `source`
    has its row. `exprs` maps attnames to SQL over `source` (e.g. {"contact_id": "ok.contact_id"}); every
    other column takes the instance's value, cast to the column's type (a bare parameter in a SELECT
    list has no type to take from the column, as it has in VALUES). Same values as insert_statement."""
    model = type(obj)
    meta = model._meta
    exprs = exprs or {}
    connection = connections[router.db_for_write(model)]
    key = (model, source, tuple(sorted(exprs.items())), connection.alias)
    cached = _insert_select_sql.get(key)
    if cached is None:
        fields = list(meta.concrete_fields)
        quote = connection.ops.quote_name
        selected = ", ".join(exprs.get(f.attname) or f"%s::{f.cast_db_type(connection)}" for f in fields)
        # Identifiers come from the model's metadata and `exprs`/`source` are the caller's SQL; values are parameters.
        sql = (f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "  # noqa: S608
               f"SELECT {selected} FROM {source}")
        cached = _insert_select_sql[key] = (sql, [f for f in fields if f.attname not in exprs])
    sql, fields = cached
    return sql, [field.get_db_prep_save(field.pre_save(obj, True), connection=connection) for field in fields]


def insert_run(objs: list[Model], statement: tuple[str, list]) -> None:
    """Execute a statement from insert_statement(objs) and mark the instances saved."""
    alias = router.db_for_write(type(objs[0]))
    with connections[alias].cursor() as cursor:
        cursor.execute(*statement)
    for obj in objs:
        obj._state.adding = False
        obj._state.db = alias


def insert_new(objs: list[Model]) -> None:
    """INSERT new instances of one model in one statement (see insert_statement)."""
    if objs:
        insert_run(objs, insert_statement(objs))


def execute_server_bound(sql: str, params: list, *, alias: str = "default") -> list[tuple]:
    """Execute one statement with server-side binding and return its rows (PostgreSQL, psycopg 3).

    Django's default cursor binds client-side: psycopg quotes every parameter into the SQL text in
    Python. For a large hot statement (dozens of parameters) that quoting is a measurable share of the
    request; bound server-side, the parameters travel beside the SQL as they are. Same connection,
    same transaction, and the statement goes through Django's cursor wrapper (query logging, execute
    wrappers) like any other."""
    from django.db.backends.postgresql.base import ServerBindingCursor

    connection = connections[alias]
    connection.ensure_connection()
    raw = ServerBindingCursor(connection.connection)
    wrapped = connection.make_debug_cursor(raw) if connection.queries_logged else connection.make_cursor(raw)
    with wrapped as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()



def execute_together(statements: list[tuple[str, list]], *, alias: str = "default") -> None:
    """Run write statements that return nothing, in this order and in the caller's transaction, in ONE round
    trip where the database takes several statements in one execute (PostgreSQL through Django's client-side
    binding cursor), else one by one. A hot path's writes then cost one wait on the database, not one each."""
    connection = connections[alias]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and not connection.settings_dict.get("OPTIONS", {}).get(
                "server_side_binding") and len(statements) > 1:
            cursor.execute("; ".join(sql for sql, _ in statements), [p for _, params in statements for p in params])
            return
        for sql, params in statements:
            cursor.execute(sql, params)


class CompiledRead:
    """A hot read whose SQL Django compiles once per process and shape, then runs with the caller's values.

    Compiling is most of a small query's cost in CPU (0.3-0.7 ms each, measured on the receive road, against
    0.1-0.2 ms for the round trip), and a hot path's reads have a handful of fixed shapes. `build` takes the
    values as keyword arguments (strings, lists of strings, or None) and returns the queryset; calling the
    read returns what iterating that queryset returns: model instances, select_related filled in, deferred
    fields deferred. The first call of each shape (which values are None, how long each list is) compiles
    `build` with markers in place of the values and notes where each marker lands among the parameters; later
    calls put the values there (lists of up to MAX_LIST values). A value the ORM would change on its way to the SQL (a lower-cased iexact, a
    cast) leaves its marker unfound and is refused at compile time, so a read is either the queryset's own
    SQL or an error. Each use is pinned to its queryset by a test (tests/core/test_compiled_read.py)."""

    # A list longer than this runs as the plain queryset: one cached shape per length stays a short list, and
    # compiling is a small part of a long read anyway.
    MAX_LIST = 64

    def __init__(self, build):
        self._build = build
        self._shapes: dict = {}

    def __call__(self, *, using: str = "default", **values) -> list:
        if any(isinstance(v, list | tuple) and not 0 < len(v) <= self.MAX_LIST for v in values.values()):
            return list(self._build(**values).using(using))  # an empty IN: Django answers without a query
        key = (using, tuple(sorted((name, None if v is None else len(v) if isinstance(v, list | tuple) else -1)
                                   for name, v in values.items())))
        shape = self._shapes.get(key)
        if shape is None:
            shape = self._shapes[key] = self._compile(using, values)
        sql, slots, compiler, model, init_list, start, end, populators = shape
        params = [value if name is None else values[name] if index < 0 else values[name][index]
                  for name, index, value in slots]
        with connections[using].cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        objs = []
        for row in compiler.results_iter(results=[rows]):
            obj = model.from_db(using, init_list, row[start:end])
            for populator in populators:
                populator.populate(row, obj)
            objs.append(obj)
        return objs

    def _compile(self, using: str, values: dict) -> tuple:
        from django.db.models.query import get_related_populators

        markers: dict[str, tuple[str, int]] = {}
        marked: dict = {}
        for name, value in values.items():
            if value is None:
                marked[name] = None
            elif isinstance(value, list | tuple):
                marked[name] = [f"\x1fcompiled-read:{name}:{i}\x1f" for i in range(len(value))]
                markers.update((m, (name, i)) for i, m in enumerate(marked[name]))
            else:
                marked[name] = f"\x1fcompiled-read:{name}\x1f"
                markers[marked[name]] = (name, -1)
        compiler = self._build(**marked).using(using).query.get_compiler(using=using)
        sql, params = compiler.as_sql()
        slots = [(*markers[p], None) if isinstance(p, str) and p in markers else (None, -1, p) for p in params]
        if {(name, index) for name, index, _ in slots if name is not None} != set(markers.values()):
            raise TypeError("a value of this read does not reach its SQL unchanged; keep it a queryset")
        klass_info, select = compiler.klass_info, compiler.select
        if klass_info is None or compiler.annotation_col_map:
            raise TypeError("a compiled read returns model instances, without annotations")
        fields = klass_info["select_fields"]
        start, end = fields[0], fields[-1] + 1
        init_list = [column[0].target.attname for column in select[start:end]]
        return (sql, slots, compiler, klass_info["model"], init_list, start, end,
                get_related_populators(klass_info, select, using))


# PostgreSQL's deadlock_detected and serialization_failure: the transaction lost a race and may simply run again.
TRANSIENT_SQLSTATES = ("40P01", "40001")


def is_transient_db_error(exc: BaseException) -> bool:
    """A database error that running the same transaction again can succeed after (a lost deadlock)."""
    cause = getattr(exc, "__cause__", None)
    return getattr(cause, "sqlstate", None) in TRANSIENT_SQLSTATES
