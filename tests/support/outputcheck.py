"""What no output may carry, checked on the text every reader would see.

An output is looked at on every level a reader decodes: the file's text, the
text and attribute values of its XML or JSON, and the HTML held inside them
where the format says it is HTML (an RSS description is HTML escaped in XML;
``&amp;#x1b;`` there becomes a control character in the reader's HTML view;
in a plain-text Atom summary it is only the text "&#x1b;"). At each level:

- no character XML forbids, no C1 control, surrogate or noncharacter, raw or as
  a character reference;
- every bidirectional embedding, override and isolate closed within the
  XML element, HTML block, attribute or string that holds it, in proper
  nesting (in HTML a control may span inline elements, as the bidirectional
  algorithm runs over a whole block: ``RLI <b>name</b> PDI`` is fine);
- no script: no ``script``, ``iframe``, ``object`` or ``embed`` element, no
  ``on…`` attribute, no address with a scheme other than http(s) or mailto.

The checks are written here from the specifications (XML 1.0, UAX #9, HTML),
not taken from newsbot's own code, so that they can tell it is wrong.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import lxml.html
from lxml import etree

NONCHARACTERS = "\ufdd0-\ufdef" + "".join(
    chr(plane + 0xFFFE) + chr(plane + 0xFFFF) for plane in range(0, 0x110000, 0x10000)
)
FORBIDDEN = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff{NONCHARACTERS}]")
"""Controls but tab, LF and CR (C1 and DEL too), surrogates and noncharacters."""
REFERENCE = re.compile(r"&#(?:[xX]([0-9a-fA-F]+)|([0-9]+));?")
RSS_HTML = frozenset({"description", "{http://purl.org/rss/1.0/modules/content/}encoded"})
JSON_HTML = frozenset({"content_html"})
OPENERS = {"\u202a": "\u202c", "\u202b": "\u202c", "\u202d": "\u202c", "\u202e": "\u202c"}
OPENERS |= {"\u2066": "\u2069", "\u2067": "\u2069", "\u2068": "\u2069"}
CLOSERS = frozenset("\u202c\u2069")
# HTML's block-level elements, and those of a page's head: where a bidi paragraph ends.
HTML_BLOCKS = frozenset(
    "address article aside blockquote body caption dd details div dl dt fieldset figcaption "
    "figure footer form h1 h2 h3 h4 h5 h6 head header hr html li main nav ol p pre section "
    "summary table tbody td tfoot th thead title tr ul".split()
)
SCRIPT_ELEMENTS = frozenset({"script", "iframe", "object", "embed", "frame", "frameset"})
URL_ATTRIBUTES = frozenset({"href", "src", "action", "formaction", "poster", "srcset", "data"})
SAFE_SCHEMES = frozenset({"http", "https", "mailto", ""})


def forbidden(text: str, references: bool = True) -> list[str]:
    """Forbidden characters of ``text``, raw or (in markup) written as character references."""
    found = FORBIDDEN.findall(text)
    for match in REFERENCE.finditer(text) if references else ():
        number = int(match.group(1), 16) if match.group(1) else int(match.group(2))
        if number == 0 or number > 0x10FFFF or FORBIDDEN.match(chr(number)):
            found.append(match.group())
    return found


def balanced(text: str) -> bool:
    """Whether every embedding, override and isolate of ``text`` is closed, properly nested."""
    waiting: list[str] = []
    for char in text:
        if char in OPENERS:
            waiting.append(OPENERS[char])
        elif char in CLOSERS and (not waiting or waiting.pop() != char):
            return False
    return not waiting


def _html_problems(html: str, where: str, document: bool = False) -> Iterator[str]:
    """Script, event handlers, odd schemes and open bidirectional controls in an HTML text."""
    if not html.strip():
        return
    try:
        if document:
            root = lxml.html.document_fromstring(html)
        else:
            root = lxml.html.fragment_fromstring(html, create_parent="div")
    except ValueError as exc:  # lxml refuses what decodes to a forbidden character
        yield f"{where}: {exc}"
        return
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        if element.tag in SCRIPT_ELEMENTS:
            yield f"{where}: <{element.tag}> element"
        for name, value in element.attrib.items():
            if name.lower().startswith("on"):
                yield f"{where}: event handler {name}={value!r}"
            scheme = urlsplit(value.strip()).scheme.lower() if name in URL_ATTRIBUTES else ""
            if scheme not in SAFE_SCHEMES:
                yield f"{where}: {name} with scheme {scheme!r}"
            if not balanced(value):
                yield f"{where}: open bidirectional control in {name}={value!r}"
            yield from (f"{where}: {name} holds {c!r}" for c in forbidden(value, False))
        text = "".join(element.itertext())
        if (element.tag in HTML_BLOCKS or element is root) and not balanced(text):
            yield f"{where}: open bidirectional control in <{element.tag}> {text[:80]!r}"


def _text_problems(text: str, where: str, is_html: bool = False) -> Iterator[str]:
    """Problems of one decoded text: its characters, its bidi controls, the HTML it may be."""
    yield from (f"{where}: {char!r}" for char in forbidden(text, references=is_html))
    if not balanced(text):
        yield f"{where}: open bidirectional control in {text[:80]!r}"
    if is_html:
        yield from _html_problems(text, where + " (as HTML)")


def _xml_problems(root: etree._Element, name: str) -> Iterator[str]:
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        where = f"{name} <{etree.QName(element).localname}>"
        for attribute, value in element.attrib.items():
            yield from _text_problems(value, f"{where} @{attribute}")
        if element.text:
            is_html = element.tag in RSS_HTML or element.get("type") in ("html", "xhtml")
            yield from _text_problems(element.text, where, is_html)
        if not balanced("".join(element.itertext())):
            yield f"{where}: open bidirectional control"


def _json_strings(value: object, key: str = "") -> Iterator[tuple[str, str]]:
    """(key, string) of every string of a JSON document."""
    if isinstance(value, str):
        yield key, value
    elif isinstance(value, list):
        for item in value:
            yield from _json_strings(item, key)
    elif isinstance(value, dict):
        for name, item in value.items():
            yield "", str(name)
            yield from _json_strings(item, str(name))


def problems(name: str, data: bytes) -> list[str]:
    """Everything wrong with the output file ``name`` holding ``data``, on every level."""
    text = data.decode("utf-8")
    markup = not name.endswith(".json")  # JSON escapes are checked in the parsed strings
    found = [f"{name}: {char!r}" for char in forbidden(text, references=markup)]
    if name.endswith(".json"):
        for key, string in _json_strings(json.loads(text)):
            found += _text_problems(string, f"{name} {key}", key in JSON_HTML)
    elif name.endswith(".xml"):
        found += _xml_problems(etree.fromstring(data), name)
    elif name.endswith(".html"):
        found += _html_problems(text, name, document=True)
    return found


def tree_problems(root: Path) -> dict[str, list[str]]:
    """`problems` of every file under ``root`` that has any."""
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix in (".json", ".xml", ".html"):
            name = path.relative_to(root).as_posix()
            if issues := problems(name, path.read_bytes()):
                found[name] = issues
    return found


def html_problems(html: str) -> list[str]:
    """`problems` of an HTML fragment (an article body)."""
    return [f"body: {c!r}" for c in forbidden(html)] + list(_html_problems(html, "body"))


def text_problems(text: str, where: str) -> list[str]:
    """`problems` of a plain text (a title, a status)."""
    return list(_text_problems(text, where))
