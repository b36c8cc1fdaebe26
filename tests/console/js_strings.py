"""The strings of a script that a person reads, found without running it: a small JavaScript scanner (string,
template and regex literals, comments) that reports prose not passed to gettext()/ngettext().

Prose: two words with a space between them, or a capitalised word ("Yesterday"). Template literals are HTML:
their text and their title/aria-label/placeholder/alt/label attributes count, the markup does not. A string that
looks like prose but is code (a header name, a key name) is listed by the caller."""

from __future__ import annotations

import re
from html.parser import HTMLParser

# the first argument of gettext(…) / gettext_noop(…), and the first two of ngettext(…)
_MARKED = re.compile(r'\b(?:n?gettext|gettext_noop)\(\s*("(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\')'
                     r'(?:\s*,\s*("(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'))?')
_BEFORE_REGEX = set("(,=:[!&|?{};+-*%<>~^")


def literals(src: str) -> list[tuple[str, str, int]]:
    """(kind, text, offset): 'q' for a quoted string, 't' for a template literal (its text parts joined by NUL)."""
    out: list[tuple[str, str, int]] = []
    stack: list[list] = []  # open template literals: [parts, offset, depth of ${ } braces]
    last, i, n = "", 0, len(src)
    while i < n:
        c = src[i]
        if stack and stack[-1][2] == 0:  # in a template's text
            parts = stack[-1][0]
            if c == "\\":
                parts[-1] += src[i:i + 2]
                i += 2
            elif c == "`":
                _parts, start, _depth = stack.pop()
                out.append(("t", "\x00".join(_parts), start))
                i, last = i + 1, "`"
            elif src.startswith("${", i):
                stack[-1][2] = 1
                parts.append("")
                i, last = i + 2, "{"
            else:
                parts[-1] += c
                i += 1
            continue
        if src.startswith("//", i):
            j = src.find("\n", i)
            i = n if j < 0 else j
        elif src.startswith("/*", i):
            j = src.find("*/", i + 2)
            i = n if j < 0 else j + 2
        elif c in "\"'":
            j = i + 1
            while j < n and src[j] != c:
                j += 2 if src[j] == "\\" else 1
            out.append(("q", src[i + 1:j], i))
            i, last = j + 1, c
        elif c == "`":
            stack.append([[""], i, 0])
            i += 1
        elif c == "/" and (last in _BEFORE_REGEX or not last or re.search(r"\breturn\s*$", src[max(0, i - 10):i])):
            j, in_class = i + 1, False
            while j < n and (in_class or src[j] != "/"):
                if src[j] == "\\":
                    j += 1
                elif src[j] in "[]":
                    in_class = src[j] == "["
                j += 1
            i, last = j + 1, "/"
        else:
            if stack and c in "{}":
                stack[-1][2] += 1 if c == "{" else -1
                if stack[-1][2] == 0:
                    i += 1
                    continue
            if not c.isspace():
                last = c
            i += 1
    return out


class _Readable(HTMLParser):
    ATTRIBUTES = {"title", "aria-label", "placeholder", "alt", "label"}

    def __init__(self):
        super().__init__()
        self.parts: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.parts += [v for k, v in attrs if k in self.ATTRIBUTES and v]

    def handle_data(self, data):
        self.parts.append(data)


def _readable(text: str) -> list[str]:
    parser = _Readable()
    parser.feed(text)
    parser.close()
    return parser.parts


def is_prose(text: str) -> bool:
    text = re.sub(r"&\w+;", " ", text)
    return bool(re.search(r"[A-Za-z]{2,}[,.:;!?]?\s+[—–-]?\s*[A-Za-z]{2,}", text)
                or re.search(r"(^|[^A-Za-z])[A-Z][a-z]{2,}", text))


def unmarked(src: str, code: frozenset[str] = frozenset()) -> list[tuple[int, str]]:
    """(line, text) of each piece of prose in the script not passed to gettext/ngettext; `code` are exceptions."""
    marked = set()
    for m in _MARKED.finditer(src):
        marked.update(m.start(g) for g in (1, 2) if m.group(g))
    found = []
    for kind, text, start in literals(src):
        if kind == "q" and (start in marked or text in code):
            continue
        pieces = _readable(text.replace("\x00", " ")) if kind == "t" or "<" in text else [text]
        for piece in pieces:
            piece = piece.strip()
            if piece and piece not in code and is_prose(piece):
                found.append((src.count("\n", 0, start) + 1, piece))
    return found
