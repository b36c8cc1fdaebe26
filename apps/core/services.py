"""Core write layer: workspaces, memberships, API keys, the event log and the audit log."""

from __future__ import annotations

import contextvars
import hashlib
import json
import logging
import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.text import slugify

from apps.core import hooks
from apps.core.errors import NotFound, PermissionDeniedError, ValidationFailed
from apps.core.events import event_types_known
from apps.core.ids import new_id
from apps.core.models import API_SCOPES, ApiKey, AuditLog, Event, Membership, User, Workspace
from apps.core.selectors import API_KEYS_GENERATION, api_keys_forget
from apps.core.sql import execute_server_bound, insert_new, insert_select_statement, insert_statement

logger = logging.getLogger("reach.core")

# --- workspaces -----------------------------------------------------------------------------


@transaction.atomic
def workspace_create(*, name: str, slug: str | None = None, plan: str = Workspace.Plan.STANDARD,
                     owner: User | None = None) -> Workspace:
    """Create a live workspace, its sandbox twin, and whatever the apps provision for them."""
    slug = slugify(slug or name)[:64]
    if not slug:
        raise ValidationFailed("A workspace needs a name that makes a slug.", field="slug")
    if Workspace.objects.filter(slug=slug, is_sandbox=False).exists():
        raise ValidationFailed(f"The slug {slug!r} is taken.", field="slug")
    # New workspaces send MARKETING only to contacts with an opt-in on record (contacts.selectors
    # .marketing_requires_opt_in); the sandbox twin follows its live workspace's settings.
    live = Workspace.objects.create(name=name, slug=slug, plan=plan, settings={"marketing_requires_opt_in": True})
    sandbox = Workspace.objects.create(name=name, slug=slug, plan=plan, is_sandbox=True, sandbox_of=live)
    if owner is not None:
        Membership.objects.create(workspace=live, user=owner, role=Membership.Role.OWNER)
    for provision in hooks.workspace_provisioners():
        provision(live=live, sandbox=sandbox)
    return live


def membership_set(*, workspace: Workspace, user: User, role: str) -> Membership:
    membership, _ = Membership.objects.update_or_create(workspace=workspace.live, user=user, defaults={"role": role})
    return membership


def member_invite(*, workspace: Workspace, email: str, role: str, invited_by: User | None = None,
                  link_base: str = "") -> tuple[Membership, bool]:
    """Add a person to the workspace by email with a role. A new address gets an account with no
    password and an email with a link to choose one. Returns (membership, account_created)."""
    from django.contrib.auth.tokens import default_token_generator
    from django.core.exceptions import ValidationError as DjangoValidationError
    from django.core.mail import send_mail
    from django.core.validators import validate_email
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except DjangoValidationError:
        raise ValidationFailed("Enter a valid email address.", field="email") from None
    if role not in Membership.Role.values:
        raise ValidationFailed("Unknown role.", field="role")
    live = workspace.live
    with transaction.atomic():
        user = User.objects.filter(email__iexact=email).order_by("date_joined").first()
        created = user is None
        if created:
            user = User(username=email[:150], email=email)
            user.set_unusable_password()
            user.save()
        if Membership.objects.filter(workspace=live, user=user).exists():
            raise ValidationFailed("This person is already a member.", field="email")
        membership = Membership.objects.create(workspace=live, user=user, role=role)
    if created:
        link = (f"{link_base}/reset/{urlsafe_base64_encode(force_bytes(user.pk))}/"
                f"{default_token_generator.make_token(user)}/")
        inviter = (invited_by.display_name or invited_by.username) if invited_by else "Reach"
        transaction.on_commit(lambda: send_mail(
            f"{inviter} invited you to {live.name} on Reach",
            f"Choose a password to join {live.name}: {link}\n", None, [email], fail_silently=True))
    return membership, created


def _owners_left(live: Workspace, excluding: Membership) -> bool:
    return Membership.objects.filter(workspace=live, role=Membership.Role.OWNER).exclude(pk=excluding.pk).exists()


@transaction.atomic
def member_role_change(*, membership: Membership, role: str, actor_role: str) -> Membership:
    """Only an owner grants or takes away the owner role; a workspace always keeps one owner."""
    if role not in Membership.Role.values:
        raise ValidationFailed("Unknown role.", field="role")
    membership = Membership.objects.select_for_update().get(pk=membership.pk)
    if Membership.Role.OWNER in (role, membership.role) and actor_role != Membership.Role.OWNER:
        raise PermissionDeniedError("Only an owner can grant or remove the owner role.")
    if membership.role == Membership.Role.OWNER and role != Membership.Role.OWNER and not _owners_left(
            membership.workspace, membership):
        raise ValidationFailed("A workspace needs at least one owner.", field="role")
    membership.role = role
    membership.save(update_fields=["role"])
    return membership


@transaction.atomic
def member_remove(*, membership: Membership, actor_role: str) -> None:
    membership = Membership.objects.select_for_update().get(pk=membership.pk)
    if membership.role == Membership.Role.OWNER:
        if actor_role != Membership.Role.OWNER:
            raise PermissionDeniedError("Only an owner can remove an owner.")
        if not _owners_left(membership.workspace, membership):
            raise ValidationFailed("A workspace needs at least one owner.", field="role")
    membership.delete()


# --- API keys -------------------------------------------------------------------------------


def membership_side_remember(*, user: User, workspace_id: str | None, sandbox: bool) -> None:
    """The side (live or sandbox) the user chose in the browser, kept for their next session. workspace_id:
    the session's chosen live workspace; None means their first (tenant_for_session's default)."""
    qs = Membership.objects.filter(user=user)
    membership = (qs.filter(workspace_id=workspace_id).first() if workspace_id else None) or \
        qs.order_by("created_at").first()
    if membership is not None and membership.sandbox_preferred is not sandbox:
        Membership.objects.filter(pk=membership.pk).update(sandbox_preferred=sandbox)


def hash_api_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def api_key_create(*, workspace: Workspace, name: str, sandbox: bool, scopes: Iterable[str] | None = None,
                   waba_id: str = "", created_by: User | None = None) -> tuple[ApiKey, str]:
    """Returns the key row and the secret. The secret is never stored and cannot be shown again."""
    scopes = list(scopes) if scopes is not None else list(API_SCOPES)
    unknown = sorted(set(scopes) - set(API_SCOPES))
    if unknown:
        raise ValidationFailed(f"Unknown scopes: {', '.join(unknown)}", field="scopes")
    if not scopes:
        raise ValidationFailed("A key needs at least one scope.", field="scopes")
    live = workspace.live
    if waba_id:
        # Checked through the registered resolver so core stays ignorant of the wabas app.
        from apps.core.selectors import waba_exists

        if not waba_exists(workspace=live.sandbox if sandbox else live, waba_id=waba_id):
            raise NotFound("No such WABA in this workspace.", details={"field": "waba"})
    secret = ("ak_test_" if sandbox else "ak_live_") + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        workspace=live, name=name or "API key", is_sandbox=sandbox, prefix=secret[:14],
        secret_hash=hash_api_key(secret), scopes=scopes, waba_id=waba_id or "", created_by=created_by,
    )
    return key, secret


def api_key_revoke(*, api_key: ApiKey, now: datetime | None = None) -> ApiKey:
    ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=now or timezone.now())
    # Caches of authenticated keys (apps.core.selectors): this process's goes now, every process's when
    # the revocation commits and the key generation changes.
    api_keys_forget()
    transaction.on_commit(_api_keys_new_generation)
    api_key.refresh_from_db()
    return api_key


def _api_keys_new_generation() -> None:
    from apps.core.redis import get_redis

    api_keys_forget()
    try:
        get_redis().set(API_KEYS_GENERATION, secrets.token_hex(8))
    except Exception:  # other processes then see the revocation when their entry expires
        logger.exception("could not announce an API key revocation to the key caches")


def api_key_touch(*, api_key: ApiKey, now: datetime) -> None:
    """Record use, at most once a minute per key, so a busy key does not turn reads into writes."""
    resolution = timedelta(seconds=settings.API_KEY_LAST_USED_RESOLUTION_SECONDS)
    if api_key.last_used_at and now - api_key.last_used_at < resolution:
        return
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
    api_key.last_used_at = now


# --- event log --------------------------------------------------------------------------------


def _reserve_sequences(workspace_id: str, count: int) -> int:
    """Bump the workspace's counter by `count` under its row lock; returns the last number reserved.
    The lock is held until the writer commits, so sequences become visible in order."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE core_workspace SET event_sequence = event_sequence + %s WHERE id = %s RETURNING event_sequence",
            [count, workspace_id],
        )
        row = cursor.fetchone()
    if row is None:
        raise NotFound("No such workspace.")
    return int(row[0])


def event_append(*, workspace: Workspace, type: str, data: dict[str, Any]) -> Event:
    return event_append_many(workspace=workspace, events=[(type, data)])[0]


# Events appended inside events_batched(): workspace id -> [workspace, [(marker, Event awaiting a sequence)]].
_batched_events: contextvars.ContextVar[dict | None] = contextvars.ContextVar("reach_batched_events", default=None)


@contextmanager
def events_batched() -> Iterator[None]:
    """Inside a writer's transaction that handles many items (a batch of inbound webhooks): collect the
    events appended and reserve their sequences at the end, once per workspace, in workspace-id order.
    The workspace counter's row lock is then the last lock the transaction takes, after every contact,
    conversation and message row, the order every other writer follows, so two such batches cannot
    deadlock on it. Nested uses join the outermost one."""
    if _batched_events.get() is not None:
        yield
        return
    pending: dict = {}
    reset = _batched_events.set(pending)
    try:
        yield
    finally:
        _batched_events.reset(reset)
    # Rows appended inside a savepoint that was rolled back since must go too. Django drops the on-commit
    # callbacks of a rolled-back savepoint, so each append's marker callback tells whether it survived.
    alive = {id(func) for _, func, _ in connection.run_on_commit}
    for workspace_id in sorted(pending):
        workspace, appended = pending[workspace_id]
        rows = [row for marker, row in appended if id(marker) in alive]
        if rows:
            _events_insert(workspace=workspace, rows=rows)


class _SavepointMarker:
    """A no-op on-commit callback: it survives exactly as long as the savepoint it was registered in."""

    def __call__(self) -> None:
        pass


def event_append_many(*, workspace: Workspace, events: list[tuple[str, dict[str, Any]]]) -> list[Event]:
    """Append events inside the caller's transaction (required: an event must share the fate of the
    change it describes). Listeners hear about them after commit. Inside events_batched() the rows get
    their sequence (and are inserted) when the batch ends."""
    if not events:
        return []
    if not connection.in_atomic_block:
        raise RuntimeError("event_append must run inside the writer's transaction")
    event_types_known(etype for etype, _ in events)
    now = timezone.now()
    rows = [Event(id=new_id("evt"), workspace_id=workspace.pk, type=etype, data=data, created_at=now)
            for etype, data in events]
    pending = _batched_events.get()
    if pending is not None:
        entry = pending.setdefault(workspace.pk, [workspace, []])
        if entry[0]._state.adding:  # prefer a loaded Workspace: its envelope can travel with the event
            entry[0] = workspace
        marker = _SavepointMarker()
        transaction.on_commit(marker)
        entry[1].extend((marker, row) for row in rows)
        return rows
    _events_insert(workspace=workspace, rows=rows)
    return rows


def event_append_with_writes(*, workspace: Workspace, type: str, data: dict[str, Any],
                             writes: list[tuple[str, list]]) -> Event:
    """PostgreSQL: the caller's writes and this event in ONE statement, so ONE transaction even outside
    an atomic block. `writes` are INSERT/UPDATE statements without RETURNING, as (sql, params).

    A send appends its event after its own writes, and the event's counter row lock is then held until
    the commit. As separate statements, every writer of the workspace queued behind that lock for the
    round trips (and, under load, the waits for the GIL) between the counter bump and the COMMIT; here
    the lock is taken at the end of the statement and, in autocommit, released by its implicit commit
    with no Python in between. The counter UPDATE's WHERE reads every write's result, so the writes run
    to completion first: the workspace row is still the last lock taken, the order every writer follows.
    Inside an atomic block it is one statement of the caller's transaction, as event_append is."""
    row, _ = _event_with_writes(workspace=workspace, type=type, data=data, writes=writes)
    if row is None:
        raise NotFound("No such workspace.")
    return row


def event_append_with_guarded_writes(*, workspace: Workspace, type: str, data: dict[str, Any],
                                     guard: tuple[str, list], guard_name: str, writes: list[tuple[str, list]],
                                     data_sql: str = "", returning: str = "") -> tuple[Event | None, tuple]:
    """event_append_with_writes behind a guard: `guard` is (CTEs, params), placed before the writes, one of
    which, `guard_name`, has at most one row. The writes must write nothing without that row (they select
    from it, or their WHERE reads it); the counter and the event follow it too. Returns (the event,
    the `returning` values), or (None, ()) when the guard had no row and nothing at all was written.
    data_sql: a jsonb expression (over the guard) merged into the event's data."""
    return _event_with_writes(workspace=workspace, type=type, data=data, writes=writes, guard=guard,
                              guard_name=guard_name, data_sql=data_sql, returning=returning)


def _event_with_writes(*, workspace: Workspace, type: str, data: dict[str, Any], writes: list[tuple[str, list]],
                       guard: tuple[str, list] | None = None, guard_name: str = "", data_sql: str = "",
                       returning: str = "") -> tuple[Event | None, tuple]:
    if connection.vendor != "postgresql":
        raise RuntimeError("event_append_with_writes is for PostgreSQL; use the writes and event_append")
    event_types_known((type,))
    row = Event(id=new_id("evt"), workspace_id=workspace.pk, type=type, data=data, created_at=timezone.now())
    sql, fields = _numbered_insert_template(1, writes=[write_sql for write_sql, _ in writes],
                                            leading=guard[0] if guard else "", guard=guard_name,
                                            data_sql=data_sql, returning=returning)
    params = [*guard[1]] if guard else []
    params += [p for _, write_params in writes for p in write_params]
    params += [1, workspace.pk, 1, 1]
    params.extend(f.get_db_prep_save(f.pre_save(row, True), connection=connection) for f in fields)
    rows = execute_server_bound(sql, params)
    if not rows:
        return None, ()
    _number([row], rows[0][0])
    if data_sql:  # the data as stored, merged in SQL (jsonb comes back as text: Django decodes JSON itself)
        row.data = json.loads(rows[0][1]) if isinstance(rows[0][1], str) else rows[0][1]
        extra = rows[0][2:]
    else:
        extra = rows[0][1:]
    _events_inserted(workspace=workspace, rows=[row])
    return row, tuple(extra)


_numbered_insert_sql: dict[tuple, tuple[str, list]] = {}


def _numbered_insert_template(count: int, *, writes: list[str] = (), leading: str = "", guard: str = "",
                              data_sql: str = "", returning: str = "") -> tuple[str, list]:
    """(sql, fields): bump the counter by `count` and insert that many rows numbered from it, after the
    data-modifying statements `writes` (whose parameters come first): the counter's WHERE reads each
    write's result, so they run to completion before it takes the workspace row's lock.

    leading: the caller's CTEs (SQL), placed before `writes`, whose parameters come before theirs.
    guard: the name of one of them (at most one row) without whose row nothing is numbered
    or inserted: the statement then returns no row. data_sql: a jsonb expression merged into each row's
    data. returning: extra RETURNING columns."""
    key = (count, tuple(writes), leading, guard, data_sql, returning)
    cached = _numbered_insert_sql.get(key)
    if cached is None:
        fields = [f for f in Event._meta.concrete_fields if f.attname != "sequence"]
        columns = ", ".join(f.column for f in fields)
        row = "(" + ", ".join(["%s"] * (len(fields) + 1)) + ")"
        selected = ", ".join(f"v.{f.column} || {data_sql}" if data_sql and f.attname == "data" else "v." + f.column
                             for f in fields)
        values = ", ".join([row] * count)
        ctes = [f"w{i} AS ({write} RETURNING 1)" for i, write in enumerate(writes)]
        after_writes = "".join(f" AND (SELECT count(*) FROM w{i}) >= 0" for i in range(len(writes)))  # noqa: S608
        if guard:
            after_writes += f" AND EXISTS (SELECT 1 FROM {guard})"  # noqa: S608 - the caller's CTE name
        # Identifiers come from the model's metadata and the writes are the caller's SQL; values are parameters.
        bump = ("WITH " + "".join(cte + ", " for cte in ([leading] if leading else []) + ctes)  # noqa: S608
                + "seq AS (UPDATE core_workspace SET event_sequence = event_sequence + %s WHERE id = %s"
                + after_writes + " RETURNING event_sequence)")
        # With writes, a missing workspace must fail the statement rather than commit them without their
        # event: the row then gets a NULL sequence, which the column refuses. A guarded statement wrote
        # nothing when its guard had no row, so no row is inserted either.
        if writes and not guard:
            source = f"(VALUES {values}) AS v(ord, {columns}) LEFT JOIN seq ON true"
        else:
            source = f"seq, (VALUES {values}) AS v(ord, {columns})"
        insert = (
            f" INSERT INTO core_event ({columns}, sequence) SELECT {selected}, seq.event_sequence - %s + v.ord"  # noqa: S608
            f" FROM {source} RETURNING sequence" + (", data" if data_sql else "") + (f", {returning}" if returning else ""))
        cached = (bump + insert, fields)
        if count <= 64 and len(_numbered_insert_sql) < 256:  # the usual shapes; others build their own
            _numbered_insert_sql[key] = cached
    return cached


def _events_insert_numbered(workspace_id: str, rows: list[Event]) -> int:
    """PostgreSQL: bump the counter and insert the rows numbered from it in ONE statement. The counter's
    row lock is held from here to the commit; doing both at once takes a round trip (and, under load, a
    wait for the GIL) out of that window, which every writer of the workspace queues behind."""
    sql, fields = _numbered_insert_template(len(rows))
    params: list = [len(rows), workspace_id, len(rows)]
    for ordinal, event in enumerate(rows, start=1):
        params.append(ordinal)
        params.extend(f.get_db_prep_save(f.pre_save(event, True), connection=connection) for f in fields)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        numbers = [number for (number,) in cursor.fetchall()]
    if not numbers:
        raise NotFound("No such workspace.")
    return max(numbers)


def _events_insert(*, workspace: Workspace, rows: list[Event]) -> None:
    numbered = connection.vendor == "postgresql"
    last = _events_insert_numbered(workspace.pk, rows) if numbered else _reserve_sequences(workspace.pk, len(rows))
    _number(rows, last)
    if not numbered:
        insert_new(rows)
    _events_inserted(workspace=workspace, rows=rows)


def _number(rows: list[Event], last: int) -> None:
    """The rows' sequences, ending at the counter's new value."""
    for i, row in enumerate(rows):
        row.sequence = last - len(rows) + 1 + i


def _events_inserted(*, workspace: Workspace, rows: list[Event]) -> None:
    """Mark the stored (numbered) rows saved and announce them on commit."""
    for row in rows:
        row._state.adding, row._state.db = False, connection.alias
    # A loaded workspace lets the envelope travel with the announcement; a bare Workspace(pk=…) does not
    # know whether it is a sandbox, so listeners read those rows back.
    loaded = not workspace._state.adding
    committed = [hooks.CommittedEvent(e.id, e.workspace_id, e.sequence, e.type,
                                      event_envelope(event=e, workspace=workspace) if loaded else None)
                 for e in rows]
    transaction.on_commit(lambda: hooks.notify_events_committed(committed))


def event_envelope(*, event: Event, workspace: Workspace | None = None) -> dict[str, Any]:
    """The public shape of an event (API.md, webhook bodies, the inbox stream)."""
    ws = workspace or event.workspace
    return {
        "id": event.id,
        "type": event.type,
        "created_at": event.created_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if event.created_at else None,
        "workspace_id": ws.sandbox_of_id if ws.is_sandbox else ws.pk,
        "sandbox": ws.is_sandbox,
        "sequence": event.sequence,
        "data": event.data,
    }


# --- audit log -----------------------------------------------------------------------------------


def audit_record(*, action: str, workspace: Workspace | None = None, actor_user: User | None = None,
                 api_key: ApiKey | None = None, target_type: str = "", target_id: str = "",
                 status_code: int | None = None, ip_address: str | None = None, request_id: str = "",
                 details: dict | None = None) -> AuditLog:
    record = _audit_log(action=action, workspace=workspace, actor_user=actor_user, api_key=api_key,
                        target_type=target_type, target_id=target_id, status_code=status_code,
                        ip_address=ip_address, request_id=request_id, details=details)
    insert_new([record])
    return record


def audit_record_statement(*, source: str = "", **entry: Any) -> tuple[str, list]:
    """audit_record's INSERT, unexecuted (same arguments): for a writer that runs its writes as one
    statement (event_append_with_writes). source: a CTE of that statement; the record is written only
    if it has a row (event_append_with_guarded_writes)."""
    if source:
        return insert_select_statement(_audit_log(**entry), source=source)
    return insert_statement([_audit_log(**entry)])


def _audit_log(*, action: str, workspace: Workspace | None = None, actor_user: User | None = None,
               api_key: ApiKey | None = None, target_type: str = "", target_id: str = "",
               status_code: int | None = None, ip_address: str | None = None, request_id: str = "",
               details: dict | None = None) -> AuditLog:
    # By id: assigning the related instances costs a type check per field, on every API write.
    return AuditLog(
        workspace_id=workspace.pk if workspace is not None else None,
        actor_user_id=actor_user.pk if actor_user is not None and actor_user.pk else None,
        api_key_id=api_key.pk if api_key is not None else None, action=action[:200], target_type=target_type[:64], target_id=str(target_id)[:64], status_code=status_code,
        ip_address=ip_address or None, request_id=request_id[:64], details=details or {},
    )


# --- demo ----------------------------------------------------------------------------------------------


@transaction.atomic
def demo_ensure(*, slug: str = "demo", username: str = "admin") -> tuple[Workspace, User, str | None, bool]:
    """Create the demo workspace and admin once. Returns (workspace, user, password or None, created)."""
    existing = Workspace.objects.filter(slug=slug, is_sandbox=False).first()
    if existing is not None:
        user = User.objects.filter(username=username).first()
        return existing, user, None, False
    password = secrets.token_urlsafe(12)
    user = User.objects.filter(username=username).first()
    if user is None:
        user = User.objects.create_superuser(username=username, email="admin@example.com", password=password)
    else:
        user.set_password(password)
        user.is_staff = user.is_superuser = True
        user.save(update_fields=["password", "is_staff", "is_superuser"])
    workspace = workspace_create(name="Demo", slug=slug, owner=user)
    return workspace, user, password, True


# --- user tokens, devices, push preferences (the mobile API) ----------------------------------------


class InvalidCredentials(ValidationFailed):
    status, code, default_message = 401, "INVALID_CREDENTIALS", "The username or password is wrong."


def user_token_create(*, username: str, password: str, device_name: str, workspace_slug: str = "",
                      request=None) -> tuple[Any, str]:
    """POST /api/v1/auth/token: check the password (through Django's authenticate, so a lockout backend
    sees it), pick the workspace (the named one, else the user's first) and mint `ut_…`. The secret is
    returned once; only its hash is stored."""
    from django.contrib.auth import authenticate

    from apps.core.models import UserToken

    user = authenticate(request, username=username, password=password)
    if user is None or not user.is_active:
        raise InvalidCredentials()
    memberships = Membership.objects.select_related("workspace").filter(user=user, workspace__is_sandbox=False)
    if workspace_slug:
        memberships = memberships.filter(workspace__slug=workspace_slug)
    membership = memberships.order_by("created_at").first()
    if membership is None:
        raise NotFound("You are not a member of that workspace.", details={"field": "workspace"})
    secret = "ut_" + secrets.token_urlsafe(32)
    token = UserToken.objects.create(user=user, workspace=membership.workspace, device_name=device_name[:100],
                                     prefix=secret[:10], secret_hash=hash_api_key(secret))
    return token, secret


def user_token_revoke(*, user: User, token_id: str, now: datetime | None = None) -> bool:
    from apps.core.models import UserToken

    return bool(UserToken.objects.filter(pk=token_id, user=user, revoked_at__isnull=True)
                .update(revoked_at=now or timezone.now()))


def user_token_touch(*, token, now: datetime) -> None:
    """last_used_at, at most once a minute per token (no write per request)."""
    from apps.core.models import UserToken

    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        UserToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now


def device_register(*, user: User, workspace: Workspace, platform: str, push_token: str):
    """Register (or re-own) a push token: one device row per token and workspace."""
    from apps.core.models import Device

    digest = hashlib.sha256(push_token.encode()).hexdigest()
    device, _ = Device.objects.update_or_create(
        workspace=workspace, push_token_hash=digest,
        defaults={"user": user, "platform": platform, "push_token": push_token})
    return device


def device_delete(*, user: User, device_id: str) -> bool:
    from apps.core.models import Device

    return Device.objects.filter(pk=device_id, user=user).delete()[0] > 0


def devices_forget_tokens(*, push_tokens: list[str]) -> int:
    """FCM said these registration tokens are no longer valid (UNREGISTERED / INVALID_ARGUMENT)."""
    from apps.core.models import Device

    hashes = [hashlib.sha256(t.encode()).hexdigest() for t in push_tokens]
    return Device.objects.filter(push_token_hash__in=hashes).delete()[0] if hashes else 0


def push_preference_set(*, user: User, workspace: Workspace, enabled: bool | None = None,
                        unassigned: bool | None = None):
    from apps.core.models import PushPreference

    pref, _ = PushPreference.objects.get_or_create(user=user, workspace=workspace)
    changed = []
    if enabled is not None:
        pref.enabled, changed = enabled, [*changed, "enabled"]
    if unassigned is not None:
        pref.unassigned, changed = unassigned, [*changed, "unassigned"]
    if changed:
        pref.save(update_fields=[*changed, "updated_at"])
    return pref
