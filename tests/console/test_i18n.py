"""Every console string is marked and the pt-BR catalogue is complete: makemessages finds no string the
catalogue lacks, none is left untranslated or fuzzy, and a Brazilian browser gets the pages in Portuguese."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from tests.conversations.inbox_support import make_agent, session_client

LOCALE = Path(settings.BASE_DIR) / "locale"
PO = LOCALE / "pt_BR" / "LC_MESSAGES" / "django.po"


@pytest.fixture(scope="module", autouse=True)
def compiled():
    """The .mo is a build output (make messages); build it here when it is missing or older than the .po."""
    mo = PO.with_suffix(".mo")
    if not mo.exists() or mo.stat().st_mtime < PO.stat().st_mtime:
        assert shutil.which("msgfmt"), "GNU gettext's msgfmt is needed to compile the translations"
        call_command("compilemessages", locale=["pt_BR"], ignore_patterns=[".venv", "var", "*site-packages*"],
                     verbosity=0)


def _entries(text: str) -> list[tuple[str, str, bool]]:
    """(msgid, first msgstr, fuzzy) per entry; continuation lines joined."""
    out = []
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        current = None
        for line in block.splitlines():
            if line.startswith(("msgid ", "msgid_plural ", "msgstr ", "msgstr[0] ", "msgstr[1] ")):
                current, _sep, value = line.partition(" ")
                fields[current] = json.loads(value)
            elif line.startswith('"') and current:
                fields[current] += json.loads(line)
        if fields.get("msgid"):
            out.append((fields["msgid"], fields.get("msgstr", fields.get("msgstr[0]", "")), "#, fuzzy" in block))
    return out


def test_catalogue_is_complete(tmp_path):
    assert shutil.which("xgettext"), "GNU gettext is needed (apt-get install gettext)"
    entries = _entries(PO.read_text(encoding="utf-8"))
    assert entries and all(msgstr and not fuzzy for _, msgstr, fuzzy in entries)
    # makemessages over the sources now, into a copy of the catalogue: every marked string must be in it
    copy = tmp_path / "locale"
    shutil.copytree(LOCALE, copy)
    script = ("import django, sys; django.setup(); from django.conf import settings; "
              "settings.LOCALE_PATHS = [sys.argv[1]]; from django.core.management import call_command; "
              "call_command('makemessages', locale=['pt_BR'], ignore_patterns=['.venv', 'var', 'tests', 'bench'], "
              "no_obsolete=True, verbosity=0)")
    subprocess.run([sys.executable, "-c", script, str(copy)], cwd=settings.BASE_DIR, check=True,
                   env={**os.environ, "DJANGO_SETTINGS_MODULE": "reach.settings"})
    fresh = _entries((copy / "pt_BR" / "LC_MESSAGES" / "django.po").read_text(encoding="utf-8"))
    untranslated = [msgid for msgid, msgstr, fuzzy in fresh if not msgstr or fuzzy]
    assert untranslated == []
    assert {m for m, _, _ in fresh} == {m for m, _, _ in entries}


@pytest.mark.django_db
def test_a_brazilian_browser_gets_portuguese(workspace):
    owner = make_agent(workspace, username="olivia", role="owner")
    client = session_client(owner, workspace)
    html = client.get("/settings/keys/", HTTP_ACCEPT_LANGUAGE="pt-BR,pt;q=0.9").content.decode()
    assert 'lang="pt-br"' in html and "Caixa de entrada" in html and "Criar uma chave" in html
    client.post("/i18n/setlang/", {"language": "en", "next": "/contacts/"})
    assert "Create a key" in client.get("/settings/keys/", HTTP_ACCEPT_LANGUAGE="pt-BR").content.decode()
