"""YAML front matter: split it from the body and load it safely.

Loading uses libyaml's safe loader (no object construction, ever), keeps
timestamps as strings so that impossible dates get our own error with a field
name, bounds alias expansion (a "billion laughs" file is refused, not
expanded), refuses a key given twice in one mapping (YAML would keep the last
silently), and remembers the line of every top-level key. A YAML error names
the field whose value it is in, found by scanning the tokens up to the error.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml

from newsbot.errors import ArticleError

MAX_NODES = 5_000
_FENCE = "---"
# What libyaml's reader refuses; masked when looking for the field an error is in.
_UNREADABLE = re.compile("[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_MERGE = "tag:yaml.org,2002:merge"
Construct = Callable[[yaml.Node], Any]
# Line breaks to libyaml; newsbot and editors break lines at LF only.
_YAML_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")
_OTHER_BREAK = re.compile("[\r\x85\u2028\u2029]")
_OPENING = (yaml.BlockMappingStartToken, yaml.BlockSequenceStartToken)
_FLOW_OPENING = (yaml.FlowMappingStartToken, yaml.FlowSequenceStartToken)
_CLOSING = (yaml.BlockEndToken, yaml.FlowMappingEndToken, yaml.FlowSequenceEndToken)


class _Loader(yaml.CSafeLoader):
    """Safe loader without implicit timestamps; dates are parsed with field-level errors."""

    # Replaces PyYAML's class-level table (an instance attribute in its stubs, so no ClassVar).
    yaml_implicit_resolvers = {  # noqa: RUF012
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.CSafeLoader.yaml_implicit_resolvers.items()
    }


@dataclass(frozen=True, slots=True)
class _Lines:
    """libyaml's line numbers as lines of the file: it breaks lines at U+2028 and U+2029 too."""

    source: str
    first_line: int

    def of(self, yaml_line: int) -> int:
        """The file line of 0-based line ``yaml_line`` of the YAML source."""
        if yaml_line == 0 or not _OTHER_BREAK.search(self.source):
            return yaml_line + self.first_line
        breaks = _YAML_BREAK.finditer(self.source)
        found = next(itertools.islice(breaks, yaml_line - 1, None), None)
        position = len(self.source) if found is None else found.end()
        return self.source.count("\n", 0, position) + self.first_line


@dataclass(frozen=True, slots=True)
class FrontMatter:
    """The loaded mapping, the line of each key in the file, and the body after it."""

    fields: dict[str, Any]
    lines: dict[str, int]
    body: str
    body_line: int


def split(text: str) -> FrontMatter:
    """Split ``---``-fenced YAML front matter from the Markdown body and load it."""
    lines = text.split("\n")
    if not lines or lines[0].rstrip() != _FENCE:
        raise ArticleError("no front matter: the file must start with a line '---'", line=1)
    for index in range(1, len(lines)):
        if lines[index].rstrip() in (_FENCE, "..."):
            break
    else:
        raise ArticleError("front matter is not closed: no second '---' line", line=1)
    source = "\n".join(lines[1:index])
    fields, key_lines = load(source, first_line=2)
    rest = lines[index + 1 :]
    blank = next((n for n, line in enumerate(rest) if line), len(rest))
    body = "\n".join(rest[blank:]).rstrip("\n")
    return FrontMatter(fields=fields, lines=key_lines, body=body, body_line=index + 2 + blank)


def load(source: str, first_line: int = 1) -> tuple[dict[str, Any], dict[str, int]]:
    """Load a YAML mapping; errors carry the line in the file (``first_line`` is line 1 of it)."""
    loader = _Loader(source)
    lines = _Lines(source, first_line)
    try:
        node = loader.get_single_node()
        if node is None:
            return {}, {}
        if not isinstance(node, yaml.MappingNode):
            raise ArticleError(
                "front matter must be a mapping of 'field: value' lines",
                line=lines.of(node.start_mark.line),
            )
        _check_nodes(node, lines, loader.construct_object)
        key_lines = {
            str(loader.construct_object(key)): lines.of(key.start_mark.line)  # type: ignore[no-untyped-call]
            for key, _ in node.value
            if isinstance(key, yaml.ScalarNode) and key.tag != _MERGE
        }
        data = loader.construct_document(node)  # type: ignore[no-untyped-call]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = None if mark is None else mark.line
        problem = exc.problem or exc.context or "invalid YAML"
        raise _invalid(problem, lines, line) from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow, such as a control
        line = len(_YAML_BREAK.findall(source, 0, exc.position))
        problem = f"character U+{exc.character:04X} is not allowed"
        raise _invalid(problem, lines, line) from None
    except yaml.YAMLError as exc:
        raise ArticleError(f"invalid YAML: {exc}") from None
    except RecursionError:
        raise ArticleError("invalid YAML: nested too deeply") from None
    finally:
        loader.dispose()
    return {str(key): value for key, value in data.items()}, key_lines


def _invalid(problem: str, lines: _Lines, line: int | None) -> ArticleError:
    """The error for a YAML problem at 0-based YAML line ``line``, naming the field it is in."""
    if line is None:
        return ArticleError(f"invalid YAML: {problem}")
    field = _field_at(lines.source, line)
    return ArticleError(f"invalid YAML: {problem}", line=lines.of(line), field=field)


def _field_at(source: str, line: int) -> str | None:
    """The top-level key whose entry holds 0-based YAML line ``line`` of ``source``, if any.

    The tokens are read up to the error (they stop there); characters the YAML
    reader refuses are masked first, as it refuses the whole text otherwise.
    """
    tokens = yaml.scan(_UNREADABLE.sub(" ", source), Loader=yaml.CSafeLoader)
    found: str | None = None
    depth = 0
    key_next = False
    try:
        for token in tokens:
            if token.start_mark.line > line:
                break
            if key_next and isinstance(token, yaml.ScalarToken):
                found = token.value
            key_next = depth == 1 and isinstance(token, yaml.KeyToken)
            if isinstance(token, _OPENING + _FLOW_OPENING):
                depth += 1
            elif isinstance(token, _CLOSING):
                depth -= 1
    except yaml.YAMLError:
        pass
    return found


def _check_nodes(root: yaml.Node, lines: _Lines, construct: Construct) -> None:
    """Refuse repeated keys, and documents whose aliases would expand past `MAX_NODES` nodes.

    Repeated keys are looked for here, in the composed nodes, rather than while
    constructing: merge keys (``<<``) rewrite mappings during construction, and
    a key that overrides a merged one is not a repeat.
    """
    seen = 0
    stack: list[tuple[yaml.Node, str | None]] = [(root, None)]
    while stack:
        node, field = stack.pop()
        seen += 1
        if seen > MAX_NODES:
            raise ArticleError(
                f"front matter too large once aliases are expanded (over {MAX_NODES} values)",
                line=lines.of(root.start_mark.line),
            )
        if isinstance(node, yaml.MappingNode):
            _refuse_repeated_keys(node, field, lines, construct)
            for key, value in node.value:
                name = field or (str(key.value) if isinstance(key, yaml.ScalarNode) else None)
                stack.extend(((key, name), (value, name)))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, field) for item in node.value)


def _refuse_repeated_keys(
    node: yaml.MappingNode,
    field: str | None,
    lines: _Lines,
    construct: Callable[[yaml.Node], Any],
) -> None:
    """Refuse a key given twice in ``node``; ``field`` is the top-level key ``node`` is under.

    Keys are compared as constructed, as the mapping will hold them: ``0`` and
    ``00``, or ``1`` and ``true``, are one key to Python.
    """
    seen: dict[Any, int] = {}
    for key, _ in node.value:
        if not isinstance(key, yaml.ScalarNode) or key.tag == _MERGE:
            continue
        line = lines.of(key.start_mark.line)
        value = construct(key)
        earlier = seen.get(value)
        if earlier is not None:
            where = f"on lines {earlier} and {line}" if earlier != line else f"on line {line}"
            what = "given twice" if field is None else f"key '{key.value}' given twice"
            raise ArticleError(
                f"{what}, {where}; keep one", line=line, field=field or str(key.value)
            )
        seen[value] = line
