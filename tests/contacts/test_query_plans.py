"""The list's filters must be answerable from indexes. Small test tables make the planner prefer a
sequential scan or the plain workspace index, so seqscan is switched off (and, for search, the btree
alternatives are dropped inside the test's transaction): the plan then shows whether an index *matches*
the query. bench/contacts_import.py prints the same plans at 100,000 rows, where they are chosen freely."""

import pytest
from django.db import connection, transaction

from apps.contacts import selectors
from apps.core.tenancy import Tenant

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="trigram indexes exist on PostgreSQL only"),
]


def _plan(qs, *, only_search_indexes: bool = False) -> str:
    sql, params = qs.query.sql_with_params()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        if only_search_indexes:  # rolled back with the savepoint
            cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'contacts_contact' "
                           "AND indexname NOT LIKE '%%pkey' AND indexname NOT LIKE '%%trgm'")
            for (name,) in cursor.fetchall():
                cursor.execute(f'DROP INDEX "{name}"')
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.fixture
def contacts(workspace, other_workspace):
    import io

    from apps.contacts.imports import contacts_import_csv

    # Realistic shape: several workspaces, most never asked (no consent row), a few opted out, few tagged.
    for ws, start, count in ((workspace, 0, 1000), (other_workspace, 1000, 3000)):
        rows = "".join(f"+4477009{start + i:05d},Person {start + i},{'vip' if i % 50 == 0 else 'regular'}\n"
                       for i in range(count))
        contacts_import_csv(workspace=ws, fileobj=io.BytesIO(("phone,name,tags\n" + rows).encode()))
    with connection.cursor() as cursor:
        cursor.execute("UPDATE contacts_contact SET opted_in = false WHERE phone LIKE '%%7'")
        cursor.execute("ANALYZE contacts_contact")
        cursor.execute("ANALYZE contacts_contacttag")


def test_name_search_uses_the_trigram_index(workspace, contacts):
    qs = selectors.contact_list(tenant=Tenant(workspace=workspace, scopes=frozenset()), search="erson 123")
    plan = _plan(qs, only_search_indexes=True)
    assert "contact_ws_name_trgm" in plan
    assert "Seq Scan" not in plan


def test_phone_search_uses_the_trigram_index(workspace, contacts):
    # The selector ORs this branch with the name branch; at 100k rows the bench shows the BitmapOr of both.
    from apps.contacts.models import Contact

    assert "phone__contains" in _selector_source()
    qs = Contact.objects.filter(workspace=workspace, phone__contains="900123")
    plan = _plan(qs, only_search_indexes=True)
    assert "contact_ws_phone_trgm" in plan
    assert "Seq Scan" not in plan


def _selector_source() -> str:
    import inspect

    return inspect.getsource(selectors.contact_list)


def test_tag_and_opted_in_filters_use_their_indexes(workspace, contacts):
    tenant = Tenant(workspace=workspace, scopes=frozenset())
    assert "contacttag_ws_name" in _plan(selectors.contact_list(tenant=tenant, tag="vip"))
    assert "contact_ws_opted_in" in _plan(selectors.contact_list(tenant=tenant, opted_in="true"))


def test_the_list_page_walks_the_workspace_id_index(workspace, contacts):
    qs = selectors.contact_list(tenant=Tenant(workspace=workspace, scopes=frozenset())).order_by("-pk")[:26]
    assert "contact_ws_id" in _plan(qs)
