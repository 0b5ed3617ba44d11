"""Batch encryption: every leaf string of a YAML or JSON mapping becomes an ``enc:`` value.

The rules, the same for YAML and JSON:

- every string value is encrypted (its exact text as UTF-8; an empty string too), in mappings and
  lists at any depth; keys are never touched;
- a string that already starts with ``enc:`` is left alone, so a file can be run again after
  values were added;
- numbers, booleans and dates are left as they are and reported by path: JS7 decrypts only string
  values, and encrypting ``5432`` would turn a number into a string. Quote a value to have it
  encrypted;
- null stays null.

YAML is rewritten in place: each string scalar's text is replaced by its ``enc:`` value (in the
same quotes; block scalars become plain one-line scalars), at the positions ruamel.yaml's composer
reports, and everything else, comments, key order, indentation, anchors and blank lines, stays
byte for byte. (A ruamel round trip keeps comments too, but its emitter examines every character
of every new value in Python: five times slower for 10,000 RSA-3072 values.) The result is parsed
again and compared with the input, node by node, before it is returned. JSON is re-encoded with
the input's indentation and key order.

Nothing here prints; errors never quote the input, because it holds secrets.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from js7certctl.envelope import PREFIX
from js7certctl.errors import Js7CertCtlError

__all__ = ["BatchError", "BatchResult", "detect_format", "encrypt_document"]

Format = Literal["yaml", "json"]


class BatchError(Js7CertCtlError):
    """The values file cannot be read as a YAML or JSON mapping (never quotes its content)."""


@dataclass(slots=True)
class BatchResult:
    """The re-encoded document and what was done, by path (``db.password``, ``hosts[2]``)."""

    text: str
    encrypted: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # numbers, booleans, dates: not encrypted
    non_ascii: list[str] = field(default_factory=list)


def detect_format(path: Path, data: bytes) -> Format:
    """JSON for ``*.json`` (or content starting with ``{`` under another name), else YAML."""
    suffix = path.suffix.lower()
    if suffix == ".json":
        return "json"
    if suffix in (".yaml", ".yml"):
        return "yaml"
    return "json" if data.lstrip().startswith(b"{") else "yaml"


def encrypt_document(
    data: bytes, fmt: Format, encrypt: Callable[[str], str], *, source: str = "the values file"
) -> BatchResult:
    """Encrypt every leaf string of a YAML or JSON mapping with ``encrypt`` (text -> enc: value)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BatchError(f"{source} is not UTF-8 text (bad byte at offset {exc.start}).") from None
    if fmt == "json":
        return _json(text, encrypt, source)
    return _yaml(text, encrypt, source)


def _child(path: str, key: object) -> str:
    if isinstance(key, int) and not isinstance(key, bool):
        return f"{path}[{key}]"
    name = str(key)
    if re.fullmatch(r"[\w\-]+", name):
        return f"{path}.{name}" if path else name
    return f"{path}[{json.dumps(name, ensure_ascii=False)}]"


class _Strings:
    """Encrypts one string value and records what was done with it."""

    def __init__(self, encrypt: Callable[[str], str], result: BatchResult) -> None:
        self._encrypt = encrypt
        self.result = result

    def __call__(self, text: str, path: str) -> str | None:
        """The ``enc:`` value for ``text``, or None when it is encrypted already."""
        if text.startswith(PREFIX):
            self.result.already.append(path)
            return None
        if not text.isascii():
            self.result.non_ascii.append(path)
        try:
            encrypted = self._encrypt(text)
        except UnicodeEncodeError:
            raise BatchError(
                f"the value at {path or 'the top'} is not valid Unicode text (a lone surrogate?)."
            ) from None
        self.result.encrypted.append(path)
        return encrypted


# ----------------------------------------------------------------------------------------- JSON


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise BatchError(f"the key {json.dumps(key, ensure_ascii=False)} appears twice.")
        result[key] = value
    return result


def _json_indent(text: str) -> int | str | None:
    match = re.search(r"\n([ \t]+)\S", text)
    if match is None:
        return None
    indent = match.group(1)
    return indent if "\t" in indent else len(indent)


def _json_walk(value: Any, path: str, strings: _Strings) -> Any:
    if isinstance(value, str):
        encrypted = strings(value, path)
        return value if encrypted is None else encrypted
    if isinstance(value, dict):
        for key, item in value.items():
            value[key] = _json_walk(item, _child(path, key), strings)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            value[index] = _json_walk(item, _child(path, index), strings)
    elif value is not None:
        strings.result.kept.append(path)
    return value


def _json(text: str, encrypt: Callable[[str], str], source: str) -> BatchResult:
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        # exc.msg names the problem only; exc.doc (the whole input) is never shown.
        raise BatchError(
            f"{source} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}."
        ) from None
    except BatchError as exc:
        raise BatchError(f"{source} cannot be used: {exc.message}") from None
    except RecursionError:
        raise BatchError(f"{source} is nested too deeply.") from None
    if not isinstance(data, dict):
        raise BatchError(f"{source} must hold a JSON object (a mapping of names to values).")
    result = BatchResult(text="")
    try:
        _json_walk(data, "", _Strings(encrypt, result))
        out = json.dumps(data, indent=_json_indent(text), ensure_ascii=False)
    except RecursionError:
        raise BatchError(f"{source} is nested too deeply.") from None
    result.text = out + ("\n" if text.endswith("\n") else "")
    return result


# ----------------------------------------------------------------------------------------- YAML

_TAG = "tag:yaml.org,2002:"
_STR = _TAG + "str"
_NULL = _TAG + "null"
_MERGE = _TAG + "merge"
# Deeper flow nesting than this is refused before parsing: the C parser crashes the process on
# flow collections nested tens of thousands deep (../shared/notes.md), and no values file needs it.
MAX_FLOW_DEPTH = 500
# Node properties (`&anchor`, `!tag`) stand before a scalar inside its span; they are kept.
_PROPERTIES = re.compile(r"(?:[&!]\S*\s+)*")


def _yaml_error(exc: Any, source: str) -> str:
    """A message for a ruamel error that never quotes the input (which holds secrets).

    ruamel's own text can: a duplicate key's message quotes both values, and the scanner quotes
    the offending character; only the parser's and composer's token names are used as they are.
    """
    from ruamel.yaml.composer import ComposerError
    from ruamel.yaml.constructor import ConstructorError
    from ruamel.yaml.scanner import ScannerError

    mark = exc.problem_mark or exc.context_mark
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = str(exc.problem or exc.context or "syntax error")
    if isinstance(exc, ComposerError) and "another document" in problem:
        return f"{source} holds more than one YAML document; give one."
    if isinstance(exc, ConstructorError):
        problem = "a value cannot be read"
    elif isinstance(exc, ScannerError):
        problem = re.sub(r"'[^']*'|\"[^\"]*\"", "a character", problem)
    return f"{source} is not valid YAML{where}: {problem}."


def flow_depth(text: str) -> int:
    """The deepest nesting of brackets, counting every bracket (also inside quotes: an upper
    bound, cheap because only the brackets are looked at)."""
    depth = deepest = 0
    for char in re.sub(r"[^\[\]{}]+", "", text):
        depth = depth + 1 if char in "[{" else max(depth - 1, 0)
        deepest = max(deepest, depth)
    return deepest


def _compose(text: str, source: str) -> Any:
    """The one document's root node (ruamel.yaml's composer: nodes with positions)."""
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    from js7certctl.yamlnodes import compose_all

    if flow_depth(text) > MAX_FLOW_DEPTH:
        raise BatchError(f"{source} is nested more than {MAX_FLOW_DEPTH} levels deep.")
    try:
        documents = [node for node in compose_all(text) if node is not None]
    except MarkedYAMLError as exc:
        raise BatchError(_yaml_error(exc, source)) from None
    except (YAMLError, RecursionError):
        raise BatchError(f"{source} is not valid YAML (or is nested too deeply).") from None
    if len(documents) > 1:
        raise BatchError(f"{source} holds {len(documents)} YAML documents; give one.")
    if not documents or type(documents[0]).__name__ != "MappingNode":
        raise BatchError(f"{source} must hold a YAML mapping (names and values) at the top.")
    return documents[0]


class _YamlRewriter:
    """Walks a composed node tree once (an anchored node only where it is defined) and collects
    the text edits; ``scalars`` lists every scalar as (tag, value) after the edits, in walk order,
    for the check of the result."""

    def __init__(self, text: str, strings: _Strings) -> None:
        self._text = text
        self._strings = strings
        self._seen: set[int] = set()
        self._keys: set[int] = set()
        self._edited: set[int] = set()
        self.edits: list[tuple[int, int, str]] = []
        self.scalars: list[tuple[str, str]] = []

    def walk(self, node: Any, path: str, flow: bool = False) -> None:
        """Walk ``node``; ``flow``: it stands inside a flow collection (``{...}``, ``[...]``)."""
        if id(node) in self._seen:
            return
        self._seen.add(id(node))
        kind = type(node).__name__
        if kind == "MappingNode":
            self._mapping(node, path, flow or bool(node.flow_style))
        elif kind == "SequenceNode":
            flow = flow or bool(node.flow_style)
            for index, item in enumerate(node.value):
                self.walk(item, _child(path, index), flow)
        else:
            self._scalar(node, path, flow)

    def _mapping(self, node: Any, path: str, flow: bool) -> None:
        names: dict[str, int] = {}
        for key, value in node.value:
            self._keys.add(id(key))
            is_scalar = type(key).__name__ == "ScalarNode"
            if is_scalar and str(key.tag) == _MERGE:
                self.scalars.append((_MERGE, str(key.value)))
                self.walk(value, path, flow)
                continue
            name = str(key.value) if is_scalar else "?"
            if is_scalar and id(key) not in self._seen:
                if name in names:
                    raise BatchError(
                        f"the key {json.dumps(name, ensure_ascii=False)} appears twice in one "
                        f"mapping (lines {names[name]} and {key.start_mark.line + 1})."
                    )
                names[name] = key.start_mark.line + 1
            self.walk(key, _child(path, name), flow)  # walked for the check, never edited
            self.walk(value, _child(path, name), flow)

    def _scalar(self, node: Any, path: str, flow: bool) -> None:
        tag = str(node.tag)
        value = str(node.value)
        if id(node) in self._keys or tag != _STR:
            if tag not in (_STR, _NULL) and id(node) not in self._keys:
                self._strings.result.kept.append(path)
            self.scalars.append((tag, value))
            return
        encrypted = self._strings(value, path)
        if encrypted is None:
            self.scalars.append((tag, value))
            return
        self.scalars.append((tag, encrypted))
        self._edited.add(id(node))
        start, end = node.start_mark.index, node.end_mark.index
        span = self._text[start:end]
        skip = _PROPERTIES.match(span)
        start += skip.end() if skip else 0
        body = self._text[start:end]
        style = node.style
        if style in ('"', "'"):
            replacement = f"{style}{encrypted}{style}"  # an enc: value needs no escaping
        elif style in ("|", ">"):
            replacement = encrypted + body[len(body.rstrip()) :]  # keep the line breaks after it
        elif flow:
            replacement = f'"{encrypted}"'  # a ':' in a plain scalar ends it in flow context
        else:
            replacement = encrypted  # plain: Base64, spaces and ':' without a space after it
        self.edits.append((start, end, replacement))

    def check_keys(self) -> None:
        if self._keys & self._edited:
            raise BatchError(
                "an anchored string value is also used as a key (through an alias); "
                "write the key out."
            )


def _splice(text: str, edits: list[tuple[int, int, str]]) -> str:
    parts: list[str] = []
    position = 0
    for start, end, replacement in sorted(edits):
        parts.append(text[position:start])
        parts.append(replacement)
        position = end
    parts.append(text[position:])
    return "".join(parts)


def _yaml(text: str, encrypt: Callable[[str], str], source: str) -> BatchResult:
    result = BatchResult(text="")
    rewriter = _YamlRewriter(text, _Strings(encrypt, result))
    try:
        rewriter.walk(_compose(text, source), "")
    except RecursionError:
        raise BatchError(f"{source} is nested too deeply.") from None
    rewriter.check_keys()
    out = _splice(text, rewriter.edits)
    # The result must read back as exactly the input with the new values: same structure, same
    # keys and other values, the enc: values where the strings were.
    check = _YamlRewriter(out, _Strings(lambda _: PREFIX, BatchResult(text="")))
    try:
        check.walk(_compose(out, source), "")
    except (BatchError, RecursionError):
        check.scalars = []
    if check.scalars != rewriter.scalars:
        raise BatchError(
            f"{source} could not be rewritten safely (this is a bug in js7certctl; please report "
            "it); nothing was written."
        )
    result.text = out
    return result
