"""`enc:` values and JS7 inventory references in a repository's YAML and JSON files.

One pass over the files of a :class:`~js7certctl.source.Source` (the working tree or a Git
revision) finds:

- every string value that is a JS7 encrypted value: it starts with ``enc:``, or it is a JS7
  expression string holding one (``"\\"enc:...\\""`` in JSON, as JOC's Git integration writes
  argument values), with its file, line, key path and exact span in the text, so that it can be
  rewritten in place;
- every ``jobResourceNames`` list, at any depth (JOC's own dependency resolver looks for them
  the same way): workflows name Job Resources at workflow level and per job, job templates too;
- exported Job Resources that JOC wrote for a certificate alias (``*.jobresource.json`` with an
  ``encipherment_certificate`` argument).

JS7 inventory objects are recognised by the file names JOC's Git integration writes:
``<name>.<type>.json`` (``.workflow.json``, ``.jobresource.json``, ``.jobtemplate.json``, ...).

Which alias a value is for: with private keys, the one whose key opens it; without keys, what the
references tell (:func:`attribute`). Files are read in batches, never through a subprocess per
file, and files without ``enc:``, ``jobResourceNames`` or ``encipherment_certificate`` in them are
not parsed at all. Plaintexts never leave :func:`opens`; nothing here prints.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from js7certctl.envelope import (
    PREFIX,
    EncryptedValue,
    PrivateKey,
    PublicKey,
    decrypt_value,
    parse_value,
)
from js7certctl.errors import CryptoError

__all__ = [
    "INVENTORY_TYPES",
    "MAX_SCAN_BYTES",
    "Attribution",
    "BlastRadius",
    "BlastReport",
    "EncValue",
    "ObjectRef",
    "Scan",
    "ScannedFile",
    "attribute",
    "blast_report",
    "fits",
    "format_path",
    "inventory_type",
    "opens",
    "public_keys_from",
    "references",
    "scan_bytes",
    "scan_source",
]

SCAN_SUFFIXES = (".json", ".yaml", ".yml")
MAX_SCAN_BYTES = 16 * 1024 * 1024
_READ_BATCH = 500
_INTERESTING = (PREFIX.encode(), b"jobResourceNames", b"encipherment_certificate")
JOB_RESOURCE_NAMES = "jobResourceNames"
ENCIPHERMENT_CERTIFICATE = "encipherment_certificate"
ENCIPHERMENT_KEY_PATH = "encipherment_private_key_path"
# The arguments of the Job Resource JOC writes for an alias, whose spans are recorded.
ENCIPHERMENT_ARGUMENTS = (
    ("arguments", ENCIPHERMENT_CERTIFICATE),
    ("arguments", ENCIPHERMENT_KEY_PATH),
)

# The object types JOC's Git integration (and its export) writes, as `<name>.<type>.json`.
INVENTORY_TYPES = {
    "workflow": "workflow",
    "jobresource": "Job Resource",
    "jobtemplate": "job template",
    "fileordersource": "file order source",
    "schedule": "schedule",
    "calendar": "calendar",
    "lock": "resource lock",
    "noticeboard": "notice board",
    "includescript": "script include",
    "script": "script include",
    "jobclass": "job class",
    "report": "report",
}
_INVENTORY_NAME = re.compile(r"(?P<name>[^/]+)\.(?P<type>" + "|".join(INVENTORY_TYPES) + r")\.json")


def inventory_type(path: str) -> tuple[str, str] | None:
    """(type, object name) of a JS7 inventory file named ``<name>.<type>.json``, or None."""
    match = _INVENTORY_NAME.fullmatch(path.rsplit("/", 1)[-1])
    if match is None:
        return None
    return match.group("type"), match.group("name")


# ------------------------------------------------------------------------------------ findings

Key = str | int


def format_path(keys: Sequence[Key]) -> str:
    """``jobs.charge.defaultArguments.token``, ``tokens[2]``, ``arguments["a b"]``."""
    out = ""
    for key in keys:
        if isinstance(key, int):
            out += f"[{key}]"
        elif re.fullmatch(r"[\w\-]+", key):
            out += f".{key}" if out else key
        else:
            out += f"[{json.dumps(key, ensure_ascii=False)}]"
    return out or "(top)"


@dataclass(frozen=True, slots=True)
class EncValue:
    """One ``enc:`` value: where it is and how it is written (never what it decrypts to)."""

    file: str
    line: int  # 1-based
    column: int  # 1-based, in characters
    keys: tuple[Key, ...]  # the key path
    start: int  # span of the string in the file's text (after a BOM), for rewriting
    end: int
    full: str  # the whole string value (with JS7 expression quotes, trailing white space)
    inner: str  # the enc: value itself
    quote: str  # "" or the JS7 expression quote around it ('"' or "'")
    style: str  # "json", or the YAML style: "" (plain), '"', "'", "|", ">"
    chain: tuple[int, ...]  # ids of the enclosing mappings, outermost first

    @property
    def path(self) -> str:
        return format_path(self.keys)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    def replaced(self, new_inner: str) -> str:
        """The whole string value with ``new_inner`` in place of the enc: value."""
        return self.full.replace(self.inner, new_inner, 1)


def _enc_parts(value: str) -> tuple[str, str] | None:
    """(inner enc: value, quote) when ``value`` is a JS7 encrypted value, plain or quoted."""
    if value.startswith(PREFIX):
        return value.rstrip(), ""
    if len(value) > len(PREFIX) + 1 and value[0] in "\"'" and value[1:].startswith(PREFIX):
        text = value.rstrip()
        if len(text) > 2 and text[-1] == value[0]:
            return text[1:-1], value[0]
    return None


@dataclass(slots=True)
class ScannedFile:
    """A file that holds ``enc:`` values or Job Resource references."""

    path: str
    fmt: str  # "json" or "yaml"
    bom: str  # "\ufeff" when the file starts with a byte order mark, else ""
    text: str  # the text after the BOM
    values: list[EncValue] = field(default_factory=list)
    # mapping id -> [(Job Resource name, line)]; mapping id -> (key path, enclosing mapping ids)
    names: dict[int, list[tuple[str, int]]] = field(default_factory=dict)
    scopes: dict[int, tuple[tuple[Key, ...], tuple[int, ...]]] = field(default_factory=dict)
    inventory: tuple[str, str] | None = None  # (type, name) for JS7 inventory objects
    encipherment: bool = False  # an exported Job Resource that JOC wrote for an alias
    # For Job Resources: key path -> (start, end, value) of the encipherment arguments.
    strings: dict[tuple[Key, ...], tuple[int, int, str]] = field(default_factory=dict)

    def all_names(self) -> set[str]:
        return {name for entries in self.names.values() for name, _ in entries}

    def names_in(self, chain: Sequence[int]) -> set[str]:
        return {name for sid in chain for name, _ in self.names.get(sid, ())}


class _Lines:
    """Offsets -> 1-based (line, column); lookups at increasing offsets count on from the last
    one, so a file is counted through once."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._offset = 0
        self._line = 1

    def at(self, offset: int) -> tuple[int, int]:
        text = self._text
        if offset < self._offset:
            self._offset, self._line = 0, 1
        self._line += text.count("\n", self._offset, offset)
        self._offset = offset
        return self._line, offset - text.rfind("\n", 0, offset)


# ----------------------------------------------------------------------------------------- JSON

_JSON_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[{}\[\],:]|[^\s{}\[\],:"]+')


class _JFrame:
    __slots__ = ("chain", "expect_key", "index", "is_object", "key", "keys", "names_of")

    def __init__(
        self, is_object: bool, keys: tuple[Key, ...], chain: tuple[int, ...], names_of: int | None
    ) -> None:
        self.is_object = is_object
        self.keys = keys
        self.chain = chain
        self.key: str = ""
        self.index = 0
        self.expect_key = is_object
        self.names_of = names_of


def _json_string(token: str) -> str:
    return token[1:-1] if "\\" not in token else str(json.loads(token))


def _walk_json(scanned: ScannedFile) -> None:
    """Find enc: values and jobResourceNames in valid JSON text, with their exact spans."""
    text = scanned.text
    lines: _Lines | None = None
    stack: list[_JFrame] = []
    next_id = 0
    capture = scanned.inventory is not None and scanned.inventory[0] == "jobresource"
    for match in _JSON_TOKEN.finditer(text):
        token = match.group()
        first = token[0]
        top = stack[-1] if stack else None
        if first == '"':
            if top is None:
                continue  # a string as the whole document
            if top.is_object and top.expect_key:
                top.key = _json_string(token)
                top.expect_key = False
                continue
            value = _json_string(token)
            if capture and top.is_object and (*top.keys, top.key) in ENCIPHERMENT_ARGUMENTS:
                scanned.strings[(*top.keys, top.key)] = (match.start(), match.end(), value)
            if top.names_of is not None:
                lines = lines or _Lines(text)
                scanned.names.setdefault(top.names_of, []).append(
                    (value, lines.at(match.start())[0])
                )
            parts = _enc_parts(value)
            if parts is not None:
                lines = lines or _Lines(text)
                line, column = lines.at(match.start())
                child: Key = top.key if top.is_object else top.index
                scanned.values.append(
                    EncValue(
                        file=scanned.path,
                        line=line,
                        column=column,
                        keys=(*top.keys, child),
                        start=match.start(),
                        end=match.end(),
                        full=value,
                        inner=parts[0],
                        quote=parts[1],
                        style="json",
                        chain=top.chain,
                    )
                )
        elif first in "{[":
            if top is None:
                keys: tuple[Key, ...] = ()
                chain: tuple[int, ...] = ()
            else:
                keys = (*top.keys, top.key if top.is_object else top.index)
                chain = top.chain
            if first == "{":
                sid = next_id
                next_id += 1
                chain = (*chain, sid)
                scanned.scopes[sid] = (keys, chain)
                stack.append(_JFrame(True, keys, chain, None))
            else:
                names_of = (
                    top.chain[-1]
                    if top is not None and top.is_object and top.key == JOB_RESOURCE_NAMES
                    else None
                )
                stack.append(_JFrame(False, keys, chain, names_of))
        elif first in "}]":
            stack.pop()
        elif first == "," and top is not None:
            if top.is_object:
                top.expect_key = True
            else:
                top.index += 1


# A `"jobResourceNames":` key in JSON text (inside a string its quotes are escaped: `\"`).
_NAMES_KEY = re.compile(r'"' + JOB_RESOURCE_NAMES + r'"\s*:')


def _json_structure(scanned: ScannedFile, document: Any) -> bool:
    """Find the jobResourceNames of parsed JSON without tokenizing it (for files without enc:
    values, where only the mappings holding names need ids); lines are found by searching the
    text. False when the text cannot be matched up with the document (duplicate keys)."""
    text = scanned.text
    keys_at = [
        m.end() for m in _NAMES_KEY.finditer(text) if not m.start() or text[m.start() - 1] != "\\"
    ]
    if not keys_at:
        return True
    lines = _Lines(text)
    found = 0
    next_id = 0

    def names_at(position: int, names: list[Any]) -> list[tuple[str, int]]:
        out: list[tuple[str, int]] = []
        for name in names:
            if not isinstance(name, str):
                continue
            at = text.find(json.dumps(name, ensure_ascii=False), position)
            if at < 0:
                out.append((name, lines.at(position)[0]))
                continue
            out.append((name, lines.at(at)[0]))
            position = at + 1
        return out

    def materialize(path: Any) -> tuple[Key, ...]:
        keys: list[Key] = []
        while path is not None:
            path, key = path
            keys.append(key)
        return tuple(reversed(keys))

    # `path` is a linked list (parent, key), made into a tuple only where names are found.
    def visit(node: Any, path: Any, chain: tuple[int, ...]) -> None:
        nonlocal next_id, found
        if type(node) is dict:
            sid = -1
            if JOB_RESOURCE_NAMES in node:
                sid = next_id
                next_id += 1
                chain = (*chain, sid)
                scanned.scopes[sid] = (materialize(path), chain)
            for key, value in node.items():
                if key == JOB_RESOURCE_NAMES:
                    if found < len(keys_at) and type(value) is list:
                        scanned.names.setdefault(sid, []).extend(names_at(keys_at[found], value))
                    found += 1
                if type(value) is dict or type(value) is list:
                    visit(value, (path, key), chain)
        else:
            for index, item in enumerate(node):
                if type(item) is dict or type(item) is list:
                    visit(item, (path, index), chain)

    if type(document) is dict or type(document) is list:
        visit(document, None, ())
    return found == len(keys_at)


# ----------------------------------------------------------------------------------------- YAML

_TAG_STR = "tag:yaml.org,2002:str"
_TAG_MERGE = "tag:yaml.org,2002:merge"
# Node properties (`&anchor`, `!tag`) stand before a scalar inside its span.
_PROPERTIES = re.compile(r"(?:[&!]\S*\s+)*")


def compose_yaml(text: str, *, keep_empty: bool = False) -> list[Any]:
    """The documents' root nodes (ruamel.yaml's composer, C parser when available); empty
    documents are left out unless ``keep_empty`` (then they are None).

    Raises ``ValueError`` with a message that never quotes the text.
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    from js7certctl.batch import MAX_FLOW_DEPTH, flow_depth

    if flow_depth(text) > MAX_FLOW_DEPTH:
        raise ValueError(f"nested more than {MAX_FLOW_DEPTH} levels deep")
    try:
        nodes = list(YAML(typ="safe").compose_all(text))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ValueError(f"not valid YAML{where}") from None
    except (YAMLError, RecursionError):
        raise ValueError("not valid YAML (or nested too deeply)") from None
    return nodes if keep_empty else [node for node in nodes if node is not None]


class _YamlWalker:
    def __init__(self, scanned: ScannedFile) -> None:
        self.scanned = scanned
        self.seen: set[int] = set()
        self.next_id = 0

    def walk(self, node: Any, keys: tuple[Key, ...], chain: tuple[int, ...]) -> None:
        if id(node) in self.seen:
            return  # an alias: walked where the anchor is
        self.seen.add(id(node))
        kind = type(node).__name__
        if kind == "MappingNode":
            sid = self.next_id
            self.next_id += 1
            inner = (*chain, sid)
            self.scanned.scopes[sid] = (keys, inner)
            for key, value in node.value:
                is_scalar = type(key).__name__ == "ScalarNode"
                if is_scalar and str(key.tag) == _TAG_MERGE:
                    self.walk(value, keys, chain)
                    continue
                name = str(key.value) if is_scalar else "?"
                if name == JOB_RESOURCE_NAMES and type(value).__name__ == "SequenceNode":
                    self.scanned.names.setdefault(sid, []).extend(
                        (str(item.value), item.start_mark.line + 1)
                        for item in value.value
                        if type(item).__name__ == "ScalarNode"
                    )
                self.walk(value, (*keys, name), inner)
        elif kind == "SequenceNode":
            for index, item in enumerate(node.value):
                self.walk(item, (*keys, index), chain)
        elif str(node.tag) == _TAG_STR:
            value = str(node.value)
            parts = _enc_parts(value)
            if parts is None:
                return
            start, end = node.start_mark.index, node.end_mark.index
            skip = _PROPERTIES.match(self.scanned.text, start, end)
            if skip is not None:
                start = skip.end()
            self.scanned.values.append(
                EncValue(
                    file=self.scanned.path,
                    line=node.start_mark.line + 1,
                    column=node.start_mark.column + 1,
                    keys=keys,
                    start=start,
                    end=end,
                    full=value,
                    inner=parts[0],
                    quote=parts[1],
                    style=node.style or "",
                    chain=chain,
                )
            )


def yaml_scalars(text: str) -> list[tuple[str, str, int]]:
    """Every scalar of every document as (tag, value, start of its text after any anchor or
    tag), in walk order (an aliased node once)."""
    out: list[tuple[str, str, int]] = []
    seen: set[int] = set()

    def walk(node: Any) -> None:
        if id(node) in seen:
            return
        seen.add(id(node))
        kind = type(node).__name__
        if kind == "MappingNode":
            for key, value in node.value:
                walk(key)
                walk(value)
        elif kind == "SequenceNode":
            for item in node.value:
                walk(item)
        else:
            start = node.start_mark.index
            skip = _PROPERTIES.match(text, start, node.end_mark.index)
            out.append((str(node.tag), str(node.value), skip.end() if skip else start))

    for root in compose_yaml(text):
        walk(root)
    return out


# ----------------------------------------------------------------------------------------- scan


def _format_of(path: str) -> str:
    return "json" if path.lower().endswith(".json") else "yaml"


def scan_bytes(path: str, data: bytes) -> ScannedFile | str | None:
    """Scan one file: the findings, a reason to skip it (str), or None when nothing is there."""
    if len(data) > MAX_SCAN_BYTES:
        return f"larger than {MAX_SCAN_BYTES // (1024 * 1024)} MiB"
    if not any(marker in data for marker in _INTERESTING):
        return None
    try:
        decoded = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not UTF-8 text (bad byte at offset {exc.start})"
    bom = "\ufeff" if decoded.startswith("\ufeff") else ""
    scanned = ScannedFile(
        path=path,
        fmt=_format_of(path),
        bom=bom,
        text=decoded[len(bom) :],
        inventory=inventory_type(path),
    )
    if scanned.fmt == "json":
        try:
            document = json.loads(scanned.text)
        except json.JSONDecodeError as exc:
            return f"not valid JSON (line {exc.lineno})"
        except RecursionError:
            return "not valid JSON (nested too deeply)"
        try:
            exact = b"enc:" in data or (
                scanned.inventory is not None and scanned.inventory[0] == "jobresource"
            )
            if exact or not _json_structure(scanned, document):
                scanned.names.clear()
                scanned.scopes.clear()
                _walk_json(scanned)
        except (RecursionError, IndexError, ValueError):
            return "not valid JSON"
        if scanned.inventory is not None and scanned.inventory[0] == "jobresource":
            arguments = document.get("arguments") if isinstance(document, dict) else None
            scanned.encipherment = isinstance(arguments, dict) and (
                ENCIPHERMENT_CERTIFICATE in arguments
            )
    else:
        try:
            walker = _YamlWalker(scanned)
            for root in compose_yaml(scanned.text):
                walker.walk(root, (), ())
        except ValueError as exc:
            return str(exc)
        except RecursionError:
            return "not valid YAML (nested too deeply)"
    if not scanned.values and not scanned.names and not scanned.encipherment:
        return None
    return scanned


@dataclass(slots=True)
class Scan:
    """What one pass over a repository found."""

    files: list[ScannedFile] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    examined: int = 0  # YAML and JSON files looked at
    inventory_files: int = 0  # JS7 inventory objects (`<name>.<type>.json`)

    @property
    def values(self) -> Iterator[EncValue]:
        for scanned in self.files:
            yield from scanned.values

    @property
    def encipherment(self) -> set[str]:
        """Names of exported Job Resources that JOC wrote for an alias."""
        return {f.inventory[1] for f in self.files if f.encipherment and f.inventory is not None}


def _candidates(source: Any, folder: str) -> tuple[list[str], list[tuple[str, str]]]:
    """The YAML and JSON files under ``folder``; in the working tree symlinks and files over the
    size limit are left out without reading them."""
    from js7certctl.source import WorktreeSource

    paths = [p for p in source.walk(folder) if p.lower().endswith(SCAN_SUFFIXES)]
    if not isinstance(source, WorktreeSource):
        return paths, []
    root = os.path.realpath(source.root)
    kept: list[str] = []
    skipped: list[tuple[str, str]] = []
    for path in paths:
        try:
            info = os.lstat(os.path.join(root, path))
        except OSError:
            continue
        if stat.S_ISLNK(info.st_mode):
            skipped.append((path, "a symlink (not followed)"))
        elif info.st_size > MAX_SCAN_BYTES:
            skipped.append((path, f"larger than {MAX_SCAN_BYTES // (1024 * 1024)} MiB"))
        else:
            kept.append(path)
    return kept, skipped


def scan_source(source: Any, folder: str = "") -> Scan:
    """Scan every YAML and JSON file under ``folder`` of ``source`` (skipping dot entries)."""
    paths, skipped = _candidates(source, folder)
    scan = Scan(skipped=skipped, examined=len(paths))
    scan.inventory_files = sum(1 for p in paths if inventory_type(p) is not None)
    for offset in range(0, len(paths), _READ_BATCH):
        batch = paths[offset : offset + _READ_BATCH]
        contents = source.read_many(batch)
        for path in batch:
            result = scan_bytes(path, contents[path])
            if isinstance(result, str):
                scan.skipped.append((path, result))
            elif result is not None:
                scan.files.append(result)
    return scan


# ------------------------------------------------------------------------------ keys and values


def fits(public_key: PublicKey | PrivateKey, value: EncryptedValue) -> bool:
    """Whether the wrapped key has the shape a value for ``public_key`` has (length, EC point)."""
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

    wrapped = value.wrapped_key
    if isinstance(public_key, RSAPublicKey | RSAPrivateKey):
        return len(wrapped) == (public_key.key_size + 7) // 8
    size = (public_key.curve.key_size + 7) // 8
    rest = 16 + 20  # the encrypted one-time key and the HMAC-SHA1 tag
    if not wrapped:
        return False
    if wrapped[0] == 0x04:
        return len(wrapped) == 1 + 2 * size + rest
    if wrapped[0] in (0x02, 0x03):
        return len(wrapped) == 1 + size + rest
    return False


def opens(private_key: PrivateKey, value: EncryptedValue) -> bytes | None:
    """The plaintext when ``private_key`` opens ``value`` and it is UTF-8 text, else None.

    A wrong RSA key is detected by the padding checks only with high probability (OpenSSL's
    implicit rejection turns a bad padding into a pseudo-random one-time key); JS7 values hold
    text, and also requiring valid UTF-8 makes a false match practically impossible (about one in
    10^9 per wrong key and value). The caller must not keep, print or write the plaintext.
    """
    if not fits(private_key, value):
        return None
    try:
        plain = decrypt_value(private_key, value)
    except CryptoError:
        return None
    try:
        plain.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return plain


@dataclass(frozen=True, slots=True)
class Attribution:
    """Which alias a value is for, and how that is known."""

    alias: str | None
    how: str | None = None  # "key" (a given key opens it) or "reference" (inferred)
    candidates: tuple[str, ...] = ()  # the aliases the references point to, when not exactly one
    inferred: str | None = None  # the alias the references point to (also when a key was given)
    problem: str | None = None  # why the value is not a valid JS7 value


def _job_resource_aliases(scan: Scan, encipherment: Collection[str]) -> dict[str, set[str]]:
    """Job Resource name -> the encipherment aliases included together with it."""
    result: dict[str, set[str]] = {}
    for scanned in scan.files:
        for sid in scanned.names:
            _, chain = scanned.scopes[sid]
            effective = scanned.names_in(chain)
            together = {n for n in effective if n in encipherment}
            for name in effective:
                result.setdefault(name, set()).update(together - {name})
    return result


def _inferred(
    scanned: ScannedFile,
    value: EncValue,
    encipherment: Collection[str],
    by_job_resource: Mapping[str, set[str]],
) -> set[str]:
    if scanned.inventory is not None and scanned.inventory[0] == "jobresource":
        return set(by_job_resource.get(scanned.inventory[1], ()))
    names = scanned.names_in(value.chain) or scanned.all_names()
    return {n for n in names if n in encipherment}


def attribute(
    scan: Scan,
    *,
    encipherment: Collection[str],
    public_keys_of: Callable[[str], Sequence[PublicKey]] = lambda _alias: (),
    keys: Sequence[tuple[str, PrivateKey]] = (),
) -> list[tuple[EncValue, Attribution]]:
    """Attribute every value of ``scan`` to an alias.

    Without ``keys``: a value in a JS7 object whose Job Resource references (its job's and its
    workflow's ``jobResourceNames``; for a Job Resource, those of the workflows and jobs that
    include it) name exactly one alias's Job Resource (one of ``encipherment``) is for that alias,
    unless its wrapped key fits none of that alias's known certificates (``public_keys_of``: the
    manifest's and the live one). With ``keys`` (alias, private key): the alias whose key opens
    it, or None.
    """
    encipherment = set(encipherment)
    by_job_resource = _job_resource_aliases(scan, encipherment)
    fitting: dict[str, Sequence[PublicKey]] = {}
    result: list[tuple[EncValue, Attribution]] = []
    for scanned in scan.files:
        for value in scanned.values:
            try:
                parsed = parse_value(value.inner)
            except CryptoError as exc:
                result.append((value, Attribution(None, problem=exc.message)))
                continue
            candidates = _inferred(scanned, value, encipherment, by_job_resource)
            inferred: str | None = None
            if len(candidates) == 1:
                (alias,) = candidates
                if alias not in fitting:
                    fitting[alias] = public_keys_of(alias)
                known = fitting[alias]
                if not known or any(fits(key, parsed) for key in known):
                    inferred = alias
            shown = tuple(sorted(candidates)) if inferred is None else ()
            if keys:
                opener = next((name for name, key in keys if opens(key, parsed) is not None), None)
                how = "key" if opener is not None else None
                result.append((value, Attribution(opener, how, shown, inferred)))
            else:
                how = "reference" if inferred is not None else None
                result.append((value, Attribution(inferred, how, shown, inferred)))
    return result


def public_keys_from(certificates: Mapping[str, Sequence[str]]) -> Callable[[str], list[PublicKey]]:
    """alias -> the public keys of its certificate texts, parsed once on demand; texts that
    cannot be read (a live entry may hold anything) are left out."""
    from js7certctl.envelope import load_public_key

    cache: dict[str, list[PublicKey]] = {}

    def public_keys_of(alias: str) -> list[PublicKey]:
        if alias not in cache:
            found: list[PublicKey] = []
            for text in certificates.get(alias, ()):
                try:
                    found.append(load_public_key(text.encode("utf-8", "replace"))[0])
                except CryptoError:
                    continue
            cache[alias] = found
        return cache[alias]

    return public_keys_of


# ------------------------------------------------------------------------------- blast radius


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """A JS7 inventory object (or one of its jobs) naming a Job Resource."""

    kind: str  # "workflow", "jobtemplate", ... (the file's type)
    name: str  # the object's name (from its file name)
    file: str  # repository-relative path
    line: int
    job: str | None = None  # the job's name, or the key path of the part that names it

    def describe(self) -> str:
        kind = INVENTORY_TYPES.get(self.kind, self.kind)
        what = f"job {self.job} of {kind} {self.name}" if self.job else f"{kind} {self.name}"
        return f"{what} ({self.file}:{self.line})"


def _part_name(kind: str, keys: tuple[Key, ...]) -> str | None:
    if not keys:
        return None
    if kind == "workflow" and len(keys) == 2 and keys[0] == "jobs":
        return str(keys[1])
    return format_path(keys)


def references(scan: Scan) -> dict[str, list[ObjectRef]]:
    """Job Resource name -> the inventory objects (and jobs) naming it in ``jobResourceNames``."""
    found: dict[str, list[ObjectRef]] = {}
    for scanned in scan.files:
        if scanned.inventory is None:
            continue
        kind, name = scanned.inventory
        for sid, entries in scanned.names.items():
            part = _part_name(kind, scanned.scopes[sid][0])
            for resource, line in entries:
                found.setdefault(resource, []).append(
                    ObjectRef(kind, name, scanned.path, line, part)
                )
    return found


@dataclass(frozen=True, slots=True)
class BlastRadius:
    """What in the repository uses one alias's Job Resource."""

    job_resource: str  # the Job Resource's name (for a rename: the old alias)
    references: tuple[ObjectRef, ...] = ()
    values: int = 0  # enc: values known (by reference) to be encrypted for it


@dataclass(frozen=True, slots=True)
class BlastReport:
    """The blast radius of a plan's updates, deletes and renames, with what the scan covered."""

    inventory_objects: int  # JS7 inventory files in the repository
    values: int  # enc: values found in the repository
    by_alias: dict[str, BlastRadius]  # keyed by the change's alias

    @property
    def shown(self) -> bool:
        """Whether there is anything to report (the repository holds inventory or values)."""
        return bool(self.inventory_objects or self.values)


def blast_report(
    scan: Scan,
    aliases: Mapping[str, str],
    *,
    encipherment: Collection[str],
    public_keys_of: Callable[[str], Sequence[PublicKey]] = lambda _alias: (),
) -> BlastReport:
    """``aliases``: change alias -> the Job Resource name to look for (the old alias of a
    rename, else the alias itself)."""
    names = set(encipherment) | scan.encipherment | set(aliases.values())
    attributed = attribute(scan, encipherment=names, public_keys_of=public_keys_of)
    counts = Counter(a.alias for _, a in attributed if a.alias is not None)
    refs = references(scan)
    by_alias = {
        alias: BlastRadius(resource, tuple(refs.get(resource, ())), counts[resource])
        for alias, resource in aliases.items()
    }
    return BlastReport(scan.inventory_files, len(attributed), by_alias)
