"""YAML front matter: split it from the body and load it safely.

Loading uses libyaml's safe loader (no object construction, ever), keeps
timestamps as strings so that impossible dates get our own error with a field
name, bounds alias expansion (a "billion laughs" file is refused, not
expanded), and remembers the line of every top-level key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from newsbot.errors import ArticleError

MAX_NODES = 5_000
_FENCE = "---"


class _Loader(yaml.CSafeLoader):
    """Safe loader without implicit timestamps; dates are parsed with field-level errors."""

    # Replaces PyYAML's class-level table (an instance attribute in its stubs, so no ClassVar).
    yaml_implicit_resolvers = {  # noqa: RUF012
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.CSafeLoader.yaml_implicit_resolvers.items()
    }


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
    try:
        node = loader.get_single_node()
        if node is None:
            return {}, {}
        if not isinstance(node, yaml.MappingNode):
            raise ArticleError(
                "front matter must be a mapping of 'field: value' lines",
                line=node.start_mark.line + first_line,
            )
        _check_size(node, first_line)
        data = loader.construct_document(node)  # type: ignore[no-untyped-call]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = None if mark is None else mark.line + first_line
        problem = exc.problem or exc.context or "invalid YAML"
        raise ArticleError(f"invalid YAML: {problem}", line=line) from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow, such as a control
        line = source.count("\n", 0, exc.position) + first_line
        raise ArticleError(
            f"invalid YAML: character U+{exc.character:04X} is not allowed", line=line
        ) from None
    except yaml.YAMLError as exc:
        raise ArticleError(f"invalid YAML: {exc}") from None
    except RecursionError:
        raise ArticleError("invalid YAML: nested too deeply") from None
    finally:
        loader.dispose()
    key_lines = {
        str(key.value): key.start_mark.line + first_line
        for key, _ in node.value
        if isinstance(key, yaml.ScalarNode)
    }
    return {str(key): value for key, value in data.items()}, key_lines


def _check_size(root: yaml.Node, first_line: int) -> None:
    """Refuse documents whose aliases would expand past `MAX_NODES` nodes."""
    seen = 0
    stack = [root]
    while stack:
        node = stack.pop()
        seen += 1
        if seen > MAX_NODES:
            raise ArticleError(
                f"front matter too large once aliases are expanded (over {MAX_NODES} values)",
                line=root.start_mark.line + first_line,
            )
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack.extend((key, value))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
