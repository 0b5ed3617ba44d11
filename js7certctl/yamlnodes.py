"""YAML text -> small position-carrying node trees, and a checker that reports every problem.

The only module that parses YAML for reading (ruamel.yaml). It composes node trees (no Python
object construction), which keeps every line and column, reports each duplicate key instead of
stopping at the first, and never expands aliases: an alias to an already-seen node is refused, so
an alias bomb costs nothing. The C parser is used when available; files that look deeply nested
go to the pure-Python parser, whose recursion is bounded, because the C parser crashes the
process on such input (../shared/notes.md).
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from js7certctl.model import Problem, Severity

MAX_FILE_BYTES = 1024 * 1024
MAX_DEPTH = 64
# More opening brackets than this and we do not trust the C parser with the file.
_SUSPICIOUS_BRACKETS = 2000
# Block nesting needs a column per level or two (a mapping's sequence may share its column) or
# two characters on one line ("- - - x"), so lines no longer than this bound block nesting far
# below the depth (some 20,000 levels) at which the C parser crashes; longer lines go to the
# pure-Python parser.
_SUSPICIOUS_LINE = 1000
# Flow brackets nested deeper than this are refused before parsing: the pure-Python scanner
# takes time quadratic in the flow depth. The count ignores quoting, so it can only err towards
# refusing text with more than this many unclosed brackets inside quoted scalars.
_MAX_FLOW_DEPTH = 1000

_TAG_PREFIX = "tag:yaml.org,2002:"


@dataclass(slots=True)
class YNode:
    """One YAML node: ``kind`` is "map", "seq" or "scalar"; positions are 1-based."""

    kind: str
    tag: str  # for scalars: "str", "int", "float", "bool", "null" or the full tag
    value: Any  # scalar: the Python value; seq: list[YNode]; map: list[tuple[YNode, YNode]]
    line: int
    column: int

    @property
    def type_name(self) -> str:
        if self.kind == "map":
            return "a mapping"
        if self.kind == "seq":
            return "a list"
        return {
            "str": "a string",
            "int": "an integer",
            "float": "a number",
            "bool": "a boolean",
            "null": "empty",
        }.get(self.tag, f"a value tagged {self.tag}")


class _TooDeep(Exception):
    def __init__(self, line: int, column: int) -> None:
        super().__init__("too deep")
        self.line = line
        self.column = column


class _AliasUsed(Exception):
    def __init__(self, line: int, column: int) -> None:
        super().__init__("alias")
        self.line = line
        self.column = column


def _scalar_value(tag: str, text: str) -> tuple[str, Any]:
    short = tag[len(_TAG_PREFIX) :] if tag.startswith(_TAG_PREFIX) else tag
    if short == "str":
        return "str", text
    if short == "null":
        return "null", None
    if short == "bool":
        return "bool", text.lower() in ("true", "yes", "on")
    if short == "int":
        cleaned = text.replace("_", "")
        try:
            return "int", int(cleaned, 0) if cleaned[:2].lower() in ("0x", "0o", "0b") else int(
                cleaned
            )
        except ValueError:
            return "str", text
    if short == "float":
        try:
            return "float", float(text.replace("_", ""))
        except ValueError:
            return "str", text
    return short, text


def _convert(node: Any, seen: set[int] | None, depth: int) -> YNode:
    """``node`` as a YNode tree; ``seen`` collects the nodes met so far (None when the text has
    no anchor, so no node can be met twice)."""
    mark = node.start_mark
    line = mark.line + 1
    column = mark.column + 1
    if depth > MAX_DEPTH:
        raise _TooDeep(line, column)
    if seen is not None:
        if id(node) in seen:
            raise _AliasUsed(line, column)
        seen.add(id(node))
    kind = type(node).__name__
    if kind == "ScalarNode":
        known = _SHORT_TAGS.get(id(node.ctag))
        if known == "str":
            return YNode("scalar", "str", node.value, line, column)
        if known is not None and known not in ("int", "float"):
            value: Any = node.value
            if known == "null":
                value = None
            elif known == "bool":
                value = value.lower() in ("true", "yes", "on")
            return YNode("scalar", known, value, line, column)
        tag, value = _scalar_value(str(node.tag), str(node.value))
        return YNode("scalar", tag, value, line, column)
    depth += 1
    if kind == "MappingNode":
        pairs = [(_convert(k, seen, depth), _convert(v, seen, depth)) for k, v in node.value]
        return YNode("map", "map", pairs, line, column)
    return YNode("seq", "seq", [_convert(v, seen, depth) for v in node.value], line, column)


# Tag objects shared by every node the fast loader resolves, by id -> short name. They live as
# long as the module, so an id found here is always one of them.
_SHORT_TAGS: dict[int, str] = {}


@functools.cache
def _fast_loader() -> Any:
    """The C parser with a resolver that does per scalar only what ruamel's does (None if the
    C extension is missing).

    ``YAML(typ="safe")`` costs about 0.15 ms to set up per file (it globs for plug-ins) and its
    resolver recomputes the YAML version's rules for every scalar. This class composes with
    ruamel.yaml.clib directly and resolves plain scalars with the same YAML 1.2 rules,
    precomputed once, returning shared tag objects.
    """
    try:
        from ruamel.yaml import cyaml
    except ImportError:  # no ruamel.yaml.clib: the pure-Python parser does it all
        return None
    c_parser: Any = getattr(cyaml, "CParser")  # noqa: B009 (not re-exported for mypy)
    from ruamel.yaml.nodes import ScalarNode, SequenceNode
    from ruamel.yaml.resolver import implicit_resolvers
    from ruamel.yaml.tag import Tag

    tags: dict[str, Any] = {}

    def shared(full: str) -> Any:
        if full not in tags:
            tags[full] = Tag(suffix=full)
            short = full[len(_TAG_PREFIX) :] if full.startswith(_TAG_PREFIX) else full
            _SHORT_TAGS[id(tags[full])] = short
        return tags[full]

    table: dict[str | None, list[tuple[Any, Any]]] = {}
    for versions, tag, regexp, first in implicit_resolvers:
        if (1, 2) in versions:
            chars: list[str | None] = list(first) if first else [None]
            for char in chars:
                table.setdefault(char, []).append((shared(tag), regexp))
    anywhere = table.pop(None, [])
    rules = {char: [*resolvers, *anywhere] for char, resolvers in table.items()}
    str_tag = shared(_TAG_PREFIX + "str")
    seq_tag = shared(_TAG_PREFIX + "seq")
    map_tag = shared(_TAG_PREFIX + "map")

    class Loader(c_parser):  # type: ignore[misc]
        def descend_resolver(self, current_node: Any, current_index: Any) -> None:
            pass

        def ascend_resolver(self) -> None:
            pass

        def resolve(self, kind: Any, value: str, implicit: Any) -> Any:
            if kind is ScalarNode:
                if implicit[0]:
                    for tag, regexp in rules.get(value[:1], anywhere):
                        if regexp.match(value):
                            return tag
                return str_tag
            return seq_tag if kind is SequenceNode else map_tag

    return Loader


_WIDE_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)


def _decode(data: bytes, path: str) -> tuple[str | None, Problem | None]:
    for bom, name in _WIDE_BOMS:
        if data.startswith(bom):
            # PowerShell's `>` writes UTF-16: say so rather than "binary file".
            return None, Problem(
                path,
                1,
                1,
                Severity.ERROR,
                "yaml-encoding",
                f"the file is {name} text; save it as UTF-8",
            )
    if b"\x00" in data[:8192]:
        return None, Problem(
            path, 1, 1, Severity.ERROR, "yaml-binary", "this is a binary file, not YAML text"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        column = exc.start - (before.rfind(b"\n") + 1) + 1
        return None, Problem(
            path,
            line,
            column,
            Severity.ERROR,
            "yaml-encoding",
            f"byte 0x{data[exc.start]:02x} is not valid UTF-8; save the file as UTF-8",
        )
    return text, None


def _yaml_error_problem(exc: Exception, path: str, text: str) -> Problem:
    position = getattr(exc, "position", None)
    if isinstance(position, int):  # a ReaderError: a character YAML does not allow
        line, column = _position(text, min(max(position, 0), len(text)))
        character = getattr(exc, "character", None)
        what = f"U+{character:04X}" if isinstance(character, int) else "a character"
        return Problem(
            path,
            line,
            column,
            Severity.ERROR,
            "yaml-syntax",
            f"invalid YAML: the character {what} is not allowed in YAML text; remove it",
        )
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    context_mark = getattr(exc, "context_mark", None)
    if "end of stream" in str(problem) and context and context_mark is not None:
        # An unclosed quote or block: the end of the file says nothing; where it opened does.
        what = str(context).removeprefix("while scanning ").removeprefix("while parsing ")
        return Problem(
            path,
            context_mark.line + 1,
            context_mark.column + 1,
            Severity.ERROR,
            "yaml-syntax",
            f"invalid YAML: {what} starts here but is never closed (the file ends first)",
        )
    mark = getattr(exc, "problem_mark", None) or context_mark
    line = (mark.line + 1) if mark is not None else 1
    column = (mark.column + 1) if mark is not None else 1
    message = f"invalid YAML: {problem}"
    if context:
        message += f" ({context})"
    index = getattr(mark, "index", None)
    at_tab = isinstance(index, int) and 0 <= index < len(text) and text[index] == "\t"
    if at_tab or "'\\t'" in str(problem):
        message += "; indent with spaces, not tabs"
    return Problem(path, line, column, Severity.ERROR, "yaml-syntax", message)


def _has_long_line(text: str) -> bool:
    if len(text) <= _SUSPICIOUS_LINE:
        return False
    return any(len(line) > _SUSPICIOUS_LINE for line in text.split("\n"))


def _flow_too_deep(text: str) -> tuple[int, int] | None:
    """The 1-based line and column where brackets first nest deeper than _MAX_FLOW_DEPTH."""
    depth = 0
    for match in re.finditer(r"[\[\]{}]", text):
        if match.group() in "[{":
            depth += 1
            if depth > _MAX_FLOW_DEPTH:
                return _position(text, match.start())
        elif depth:
            depth -= 1
    return None


def _position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


_ANCHOR = re.compile(r"&([^\s,\[\]{}]+)")


def _alias_use(text: str, line: int, column: int) -> tuple[int, int]:
    """Where the anchored node at ``line:column`` is first used by an alias (``*name``).

    The composer hands back the anchored node itself, so its position is the anchor's; the alias
    that uses it is found in the text (best effort: the anchor's position when not found).
    """
    offset = sum(len(part) + 1 for part in text.split("\n")[: line - 1]) + column - 1
    anchor = _ANCHOR.match(text, offset)
    if anchor is None:
        return line, column
    use = re.compile(r"\*" + re.escape(anchor.group(1)) + r"(?![^\s,\[\]{}])")
    found = use.search(text, anchor.end())
    return _position(text, found.start()) if found else (line, column)


def too_large(path: str, size: int, max_bytes: int = MAX_FILE_BYTES) -> Problem:
    """The problem for a YAML file too large to read (checked before reading it, if possible)."""
    return Problem(
        path,
        1,
        1,
        Severity.ERROR,
        "file-too-large",
        f"file is {size / (1024 * 1024):.1f} MiB; files are limited to {max_bytes // 1024} KiB, "
        "split it into smaller manifests",
    )


def parse_documents(
    data: bytes, path: str, *, max_bytes: int = MAX_FILE_BYTES
) -> tuple[list[YNode | None], list[Problem]]:
    """Parse every document of a YAML stream into :class:`YNode` trees.

    Returns the documents (``None`` for an empty document) and the problems that stopped parsing.
    On a syntax error the documents before it are still returned.
    """
    if len(data) > max_bytes:
        return [], [too_large(path, len(data), max_bytes)]
    text, problem = _decode(data, path)
    if text is None:
        assert problem is not None
        return [], [problem]

    from ruamel.yaml.error import YAMLError

    brackets = text.count("[") + text.count("{")
    if brackets > _SUSPICIOUS_BRACKETS:
        too_deep = _flow_too_deep(text)
        if too_deep is not None:
            return [], [
                Problem(
                    path,
                    too_deep[0],
                    too_deep[1],
                    Severity.ERROR,
                    "yaml-too-deep",
                    f"YAML is nested too deeply to read (brackets more than {_MAX_FLOW_DEPTH} "
                    "levels deep)",
                )
            ]
    suspicious = brackets > _SUSPICIOUS_BRACKETS or _has_long_line(text)
    docs: list[YNode | None] = []
    problems: list[Problem] = []
    old_limit = sys.getrecursionlimit()
    try:
        if suspicious:
            sys.setrecursionlimit(min(old_limit, 3000))
        for node in _compose_all(text, pure=suspicious):
            if node is None:
                docs.append(None)
                continue
            if type(node).__name__ == "ScalarNode" and str(node.tag).endswith(":null"):
                docs.append(None)
                continue
            # An alias needs an anchor (&name): without one in the text, no node repeats.
            docs.append(_convert(node, set() if "&" in text else None, 0))
    except YAMLError as exc:
        problems.append(_yaml_error_problem(exc, path, text))
    except RecursionError:
        problems.append(
            Problem(
                path, 1, 1, Severity.ERROR, "yaml-too-deep", "YAML is nested too deeply to read"
            )
        )
    except _TooDeep as exc:
        problems.append(
            Problem(
                path,
                exc.line,
                exc.column,
                Severity.ERROR,
                "yaml-too-deep",
                f"YAML is nested more than {MAX_DEPTH} levels deep",
            )
        )
    except _AliasUsed as exc:
        line, column = _alias_use(text, exc.line, exc.column)
        problems.append(
            Problem(
                path,
                line,
                column,
                Severity.ERROR,
                "yaml-alias",
                "YAML aliases (*name) are not supported here; write the value out",
            )
        )
    finally:
        sys.setrecursionlimit(old_limit)
    return docs, problems


def compose_all(text: str) -> Iterator[Any]:
    """ruamel.yaml's node trees of the stream's documents: the same nodes, tags and positions
    as ``YAML(typ="safe").compose_all(text)``, made with the C parser when it is installed and
    without that class's set-up and per-scalar resolver costs (about 0.1 ms per call and a
    third of the time of small documents). Like it, the C parser crashes on brackets nested tens
    of thousands deep: bound the nesting first."""
    return _compose_all(text, pure=False)


def _compose_all(text: str, *, pure: bool) -> Iterator[Any]:
    """The node trees of the stream's documents: C parser and fast resolver unless ``pure``."""
    loader_class = None if pure else _fast_loader()
    if loader_class is None:
        from ruamel.yaml import YAML

        yield from YAML(typ="safe", pure=True).compose_all(text)
        return
    loader = loader_class(text)
    try:
        while loader.check_node():
            yield loader.get_node()
    finally:
        loader.dispose()


class Checker:
    """Collects problems for one file while a caller walks its nodes against a schema."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[Problem] = []

    def add(self, node: YNode | None, severity: Severity, rule: str, message: str) -> None:
        line, column = (node.line, node.column) if node is not None else (1, 1)
        self.problems.append(Problem(self.path, line, column, severity, rule, message))

    def error(self, node: YNode | None, rule: str, message: str) -> None:
        self.add(node, Severity.ERROR, rule, message)

    def warning(self, node: YNode | None, rule: str, message: str) -> None:
        self.add(node, Severity.WARNING, rule, message)

    def mapping(
        self,
        node: YNode,
        where: str,
        *,
        allowed: Sequence[str] | None = None,
        required: Sequence[str] = (),
        at: YNode | None = None,
    ) -> dict[str, tuple[YNode, YNode]] | None:
        """The mapping's keys -> (key node, value node); reports type, duplicate, unknown, missing.

        A missing field is reported at ``at`` (the parent key) when given, else at the mapping.
        """
        if node.kind != "map":
            self.error(node, "type", f"{where} must be a mapping, not {node.type_name}")
            return None
        result: dict[str, tuple[YNode, YNode]] = {}
        for key, value in node.value:
            if key.kind != "scalar" or key.tag not in ("str", "int", "bool", "float"):
                self.error(key, "type", f"keys of {where} must be strings")
                continue
            name = str(key.value)
            if name in result:
                first = result[name][0]
                self.error(
                    key,
                    "duplicate-key",
                    f"duplicate key {name!r} in {where} (first at line {first.line})",
                )
                continue
            result[name] = (key, value)
            if allowed is not None and name not in allowed:
                hint = _suggest(name, allowed)
                self.error(key, "unknown-field", f"unknown field {name!r} in {where}{hint}")
        for name in required:
            if name not in result:
                self.error(at or node, "missing-field", f"{where} is missing the field {name!r}")
        return result

    def string(self, node: YNode, where: str, *, allow_empty: bool = False) -> str | None:
        if node.kind != "scalar" or node.tag not in ("str",):
            if node.kind == "scalar" and node.tag in ("int", "float"):
                self.error(
                    node,
                    "type",
                    f'{where} must be a string, not {node.type_name} (quote it: "{node.value}")',
                )
            else:
                self.error(node, "type", f"{where} must be a string, not {node.type_name}")
            return None
        value = str(node.value)
        if not allow_empty and not value.strip():
            self.error(node, "empty", f"{where} must not be empty")
            return None
        return value

    def integer(self, node: YNode, where: str, *, minimum: int | None = None) -> int | None:
        if node.kind != "scalar" or node.tag != "int":
            self.error(node, "type", f"{where} must be an integer, not {node.type_name}")
            return None
        value = int(node.value)
        if minimum is not None and value < minimum:
            self.error(node, "range", f"{where} must be at least {minimum}, not {value}")
            return None
        return value

    def boolean(self, node: YNode, where: str) -> bool | None:
        if node.kind != "scalar" or node.tag != "bool":
            self.error(node, "type", f"{where} must be true or false, not {node.type_name}")
            return None
        return bool(node.value)

    def string_list(self, node: YNode, where: str) -> list[tuple[YNode, str]] | None:
        if node.kind != "seq":
            self.error(node, "type", f"{where} must be a list of strings, not {node.type_name}")
            return None
        items: list[tuple[YNode, str]] = []
        for item in node.value:
            value = self.string(item, f"each entry of {where}")
            if value is not None:
                items.append((item, value))
        return items


def _suggest(name: str, allowed: Sequence[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(allowed), n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f"; allowed: {', '.join(allowed)}"


def iter_scalars(node: YNode) -> Iterator[YNode]:
    """Every scalar below ``node`` (for scans of whole documents)."""
    if node.kind == "scalar":
        yield node
    elif node.kind == "seq":
        for item in node.value:
            yield from iter_scalars(item)
    else:
        for key, value in node.value:
            yield from iter_scalars(key)
            yield from iter_scalars(value)
