"""Every string a person reads is marked and the pt-BR catalogues are complete: no template or script holds prose
outside {% translate %} / gettext(), makemessages finds no string the catalogues lack (django.po for templates and
Python, djangojs.po for the scripts), none is left untranslated or fuzzy, and a Brazilian browser gets the pages
and the scripts' words in Portuguese."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from tests.console.js_strings import _readable, is_prose, unmarked
from tests.conversations.inbox_support import make_agent, session_client

BASE = Path(settings.BASE_DIR)
LOCALE = BASE / "locale"
PO = LOCALE / "pt_BR" / "LC_MESSAGES" / "django.po"
JS_PO = LOCALE / "pt_BR" / "LC_MESSAGES" / "djangojs.po"
IGNORED = [".venv", "var", "tests", "bench", "static/vendor/*"]
# Strings that read like words but are code or names (header and key names, CSS, brand and product names,
# example values in placeholders).
CODE = frozenset({"use strict", "Accept", "Content-Type", "Idempotency-Key", "Escape", "ArrowDown", "ArrowUp", "Enter",
                  "Tab", "Files", "Esc", "pill state-", "img, video", "#tpl-fields input", "(prefers-color-scheme: dark)",
                  "btn small", "badge ok", ".presets button", "Reach", "· Reach", "WhatsApp", "vip, newsletter",
                  "city=Lisbon", "America/Sao_Paulo"})


@pytest.fixture(scope="module", autouse=True)
def compiled():
    """The .mo files are build outputs (make messages); build them here when missing or older than the .po."""
    stale = [po for po in (PO, JS_PO) if not po.with_suffix(".mo").exists()
             or po.with_suffix(".mo").stat().st_mtime < po.stat().st_mtime]
    if stale:
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


@pytest.mark.parametrize("domain", ["django", "djangojs"])
def test_catalogue_is_complete(tmp_path, domain):
    assert shutil.which("xgettext"), "GNU gettext is needed (apt-get install gettext)"
    po = LOCALE / "pt_BR" / "LC_MESSAGES" / f"{domain}.po"
    entries = _entries(po.read_text(encoding="utf-8"))
    assert entries and all(msgstr and not fuzzy for _, msgstr, fuzzy in entries)
    # makemessages over a copy of the sources and the catalogues (makemessages writes into the locale directory
    # next to the files it scans, so it runs in the copy): every marked string must already be in the catalogue
    copy = tmp_path / "src"
    for part in ("apps", "reach", "templates", "static", "locale"):
        shutil.copytree(BASE / part, copy / part, ignore=shutil.ignore_patterns("__pycache__", "vendor", "*.mo"))
    script = ("import django; django.setup(); from django.core.management import call_command; "
              f"call_command('makemessages', locale=['pt_BR'], domain={domain!r}, ignore_patterns={IGNORED!r}, "
              "no_obsolete=True, verbosity=0)")
    subprocess.run([sys.executable, "-c", script], cwd=copy, check=True,
                   env={**os.environ, "DJANGO_SETTINGS_MODULE": "reach.settings", "PYTHONPATH": str(copy)})
    regenerated = copy / "locale" / "pt_BR" / "LC_MESSAGES" / f"{domain}.po"
    assert regenerated.stat().st_mtime_ns > po.stat().st_mtime_ns  # it did run and rewrite the copy
    fresh = _entries(regenerated.read_text(encoding="utf-8"))
    untranslated = [msgid for msgid, msgstr, fuzzy in fresh if not msgstr or fuzzy]
    assert untranslated == []
    assert {m for m, _, _ in fresh} == {m for m, _, _ in entries}


def _scripts() -> list[Path]:
    return sorted(p for p in (BASE / "static").rglob("*.js") if "vendor" not in p.parts)


def _templates() -> list[Path]:
    return sorted((BASE / "templates").rglob("*.html"))


def test_the_scanner_finds_what_is_left_unmarked():
    """What the scanner counts as words (a lone lowercase word such as "selected" is not: too like code)."""
    found = unmarked('x.textContent = "No conversations here."; y.innerHTML = `<b title="Read ${when}">${n} '
                     'people selected</b>`; z = gettext("Marked words"); k = "conv-list"; s = "/a b/";'
                     ' r = /it\'s "quoted"/g; w = `${ok ? `<i>${gettext("Nested")}</i>` : "Not nested"}`;')
    assert [text for _, text in found] == ["No conversations here.", "Read", "people selected", "Not nested"]


@pytest.mark.parametrize("script", _scripts(), ids=lambda p: str(p.relative_to(BASE)))
def test_no_script_shows_words_outside_gettext(script):
    assert unmarked(script.read_text(encoding="utf-8"), CODE) == []


def _template_prose(src: str) -> list[str]:
    """Prose in a template's text and readable attributes that no {% translate %}/{% blocktranslate %} holds."""
    src = re.sub(r"\{%\s*blocktranslate.*?\{%\s*endblocktranslate\s*%\}", " ", src, flags=re.S)
    src = re.sub(r"\{#.*?#\}", " ", src, flags=re.S)
    src = re.sub(r"\{%.*?%\}|\{\{.*?\}\}", "\x00", src, flags=re.S)
    src = re.sub(r"<(script|style)\b.*?</\1>", " ", src, flags=re.S)
    pieces = (piece.strip() for part in _readable(src) for piece in part.split("\x00"))
    return [piece for piece in pieces if piece and piece not in CODE and is_prose(piece)]


@pytest.mark.parametrize("template", _templates(), ids=lambda p: str(p.relative_to(BASE)))
def test_no_template_shows_words_outside_translate(template):
    assert _template_prose(template.read_text(encoding="utf-8")) == []


@pytest.mark.django_db
def test_a_brazilian_browser_gets_portuguese(workspace):
    owner = make_agent(workspace, username="olivia", role="owner")
    client = session_client(owner, workspace)
    html = client.get("/settings/keys/", HTTP_ACCEPT_LANGUAGE="pt-BR,pt;q=0.9").content.decode()
    assert 'lang="pt-br"' in html and "Caixa de entrada" in html and "Criar uma chave" in html
    client.post("/i18n/setlang/", {"language": "en", "next": "/contacts/"})
    assert "Create a key" in client.get("/settings/keys/", HTTP_ACCEPT_LANGUAGE="pt-BR").content.decode()


@pytest.mark.django_db
def test_the_inbox_and_its_script_speak_portuguese(workspace):
    """The rendered inbox in pt-BR keeps none of the English page's words, and the script's catalogue is
    Portuguese."""
    agent = make_agent(workspace, username="ana", role="agent")
    client = session_client(agent, workspace)

    def words(language: str) -> set[str]:
        html = client.get("/inbox/", HTTP_ACCEPT_LANGUAGE=language).content.decode()
        assert 'src="/jsi18n/"' in html  # the catalogue loads before inbox.js
        html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
        return {piece.strip() for piece in _readable(html) if is_prose(piece.strip())}

    english, portuguese = words("en"), words("pt-BR")
    assert {"Pick a conversation", "Needs reply", "Keyboard shortcuts"} <= english
    same_in_both = {"Reach", "WhatsApp", "Messenger", "Instagram", "SMS", "Sandbox", "Emoji", "● Online", "Use", "Enter",
                    "Shift", "Esc"}  # names, keys
    assert english & portuguese <= same_in_both | {workspace.name, agent.display_name}
    catalog = client.get("/jsi18n/", HTTP_ACCEPT_LANGUAGE="pt-BR").content.decode()
    assert "Nenhuma conversa aqui." in catalog and "%(n)s conversas" in catalog
