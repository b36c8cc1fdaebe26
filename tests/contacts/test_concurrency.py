"""Race-safety of the upserts on the (workspace, phone) unique constraint, with real concurrent
transactions (PostgreSQL; SQLite serialises writers anyway)."""

import threading

import pytest
from django.db import connection, connections

from apps.contacts import imports, services
from apps.contacts.models import Contact

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs concurrent PostgreSQL transactions"),
]


def _in_threads(count, fn):
    barrier = threading.Barrier(count)
    results, errors = [], []

    def run(i):
        try:
            barrier.wait(timeout=10)
            results.append(fn(i))
        except Exception as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return results, errors


def test_concurrent_upserts_of_one_phone_make_one_contact(workspace):
    results, errors = _in_threads(8, lambda i: services.contact_upsert_by_phone(
        workspace=workspace, phone="+447700900001", name=f"N{i}").pk)
    assert errors == []
    assert len(set(results)) == 1
    assert Contact.objects.filter(workspace=workspace).count() == 1


def test_concurrent_api_upsert_and_import_agree(workspace):
    import io

    data = b"phone,name\n" + b"".join(f"+4477009{i:05d},Row {i}\n".encode() for i in range(300))

    def work(i):
        if i == 0:
            return imports.contacts_import_csv(workspace=workspace, fileobj=io.BytesIO(data), batch_size=50).created
        return [services.contact_upsert(workspace=workspace, phone=f"+4477009{n:05d}")[1] for n in range(i, 300, 7)]

    results, errors = _in_threads(4, work)
    assert errors == []
    assert Contact.objects.filter(workspace=workspace).count() == 300
