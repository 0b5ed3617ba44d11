"""Key rotation: a new key pair and certificate for an alias, and every value re-encrypted.

:func:`prepare` does all the work in memory and checks it before anything is written: it finds the
alias's manifest, checks that the old key belongs to its certificate, scans the repository for
``enc:`` values (:mod:`js7certctl.secrets`), opens each with the old key and encrypts the
plaintext at once for the new certificate (the plaintext is never kept, printed or written),
splices the new values into the files' text in place and re-parses every changed file to check
that only those values changed, and edits the manifest (the certificate file or the inline
``certificate``, and ``privateKeyPath``), which is checked by loading the manifests again.
:func:`write` then writes the key first (mode 0600, never overwritten), then the changed files,
each atomically and only if it still holds what was scanned.

Formatting is kept byte for byte outside the changed values: YAML comments, quoting, block
scalars, anchors; JSON indentation, key order, escapes and the JS7 expression quotes of
``"\\"enc:...\\""``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from js7certctl.envelope import PREFIX, Encryptor, PrivateKey, key_matches, load_public_key
from js7certctl.errors import CryptoError, Js7CertCtlError
from js7certctl.model import DesiredCert
from js7certctl.secrets import (
    ENCIPHERMENT_ARGUMENTS,
    EncValue,
    Scan,
    ScannedFile,
    compose_yaml,
    opens,
    scan_bytes,
    scan_source,
    yaml_scalars,
)
from js7certctl.source import Source, SourceInfo

__all__ = [
    "FileEdit",
    "RewriteError",
    "Rotation",
    "RotationError",
    "edit_manifest",
    "prepare",
    "rewrite_values",
    "write",
]

# A stand-in for the new values in a dry run: it has the shape of a value (three fields).
DRY_RUN_VALUE = PREFIX + "REVOYWtleQ== RHJ5LXJ1bg== ZHJ5LXJ1bg=="


class RotationError(Js7CertCtlError):
    """The rotation cannot be done as asked; nothing was written."""


class RewriteError(RotationError):
    """A file could not be rewritten safely (never quotes its content)."""


# ------------------------------------------------------------------------------ YAML scalars

_PLAIN_SAFE = re.compile(r"[A-Za-z0-9_/.\\~][A-Za-z0-9_/.\\~:@+=-]*")


def replace_scalar(span: str, style: str, new: str) -> str:
    """The text of a YAML scalar written in ``style`` (as ``span``) holding ``new`` instead.

    Plain, quoted and block styles are kept; a block scalar keeps its header (indicator and any
    comment), its content indentation and what follows its last character.
    """
    if style == "":
        if "\n" in new or not (new.startswith(PREFIX) or _PLAIN_SAFE.fullmatch(new)):
            return json.dumps(new, ensure_ascii=False)
        return new
    if style == '"':
        return json.dumps(new, ensure_ascii=False)
    if style == "'":
        if "\n" in new:
            return json.dumps(new, ensure_ascii=False)
        return "'" + new.replace("'", "''") + "'"
    header, _, rest = span.partition("\n")
    lead = re.match(r"((?:[ \t]*\n)*)([ \t]*)", rest)
    blank, indent = (lead.group(1), lead.group(2)) if lead else ("", "  ")
    if not indent:
        indent = "  "
    trailing = rest[len(rest.rstrip()) :]
    lines = new.rstrip("\n").split("\n")
    if style == ">" and len(lines) > 1:
        raise RewriteError("a folded (>) block scalar cannot hold several lines")
    if style == ">":
        lines = _refold(rest.rstrip(), lines[0])
    content = "\n".join(indent + line if line else line for line in lines)
    return header + "\n" + blank + content + trailing


def _refold(content: str, new: str) -> list[str]:
    """``new`` folded over as many lines as the old folded content, when the old lines broke
    between space-separated fields (as a long enc: value is folded): the same number of fields
    on each line. Otherwise one line."""
    old_lines = [line.strip() for line in content.split("\n")]
    if len(old_lines) < 2 or any(not line or "  " in line for line in old_lines):
        return [new]
    counts = [len(line.split(" ")) for line in old_lines]
    fields = new.split(" ")
    if sum(counts) != len(fields):
        return [new]
    out: list[str] = []
    for count in counts:
        out.append(" ".join(fields[:count]))
        fields = fields[count:]
    return out


def _splice(text: str, edits: Sequence[tuple[int, int, str]]) -> str:
    parts: list[str] = []
    position = 0
    for start, end, replacement in sorted(edits):
        if start < position:
            raise RewriteError("two edits overlap")
        parts.append(text[position:start])
        parts.append(replacement)
        position = end
    parts.append(text[position:])
    return "".join(parts)


# ------------------------------------------------------------------------------ value rewriting


def _json_raw(raw: str, new_full: str) -> str:
    out = json.dumps(new_full, ensure_ascii=False)
    if "\\/" in raw:  # keep escaped slashes as the writer had them
        out = out.replace("/", "\\/")
    return out


def _set_path(document: Any, keys: Sequence[str | int], value: str) -> None:
    target = document
    for key in keys[:-1]:
        target = target[key]
    target[keys[-1]] = value


def expression_like(old: str, new: str) -> str:
    r"""``new`` written as ``old`` is: a JS7 expression string (in double quotes, with ``\`` and
    ``"`` escaped as ``\\`` and ``\"``) when ``old`` is one, line breaks as the two characters
    ``\n`` when ``old`` has them so, and ending in a line break when ``old`` does."""
    quote = '"' if len(old) >= 2 and old[0] == old[-1] == '"' else ""
    body = old[1:-1] if quote else old
    text = new.rstrip("\n")
    if body.endswith(("\n", "\\n")):
        text += "\n"
    if quote:
        text = text.replace("\\", "\\\\").replace('"', '\\"')
    if "\\n" in body and "\n" not in body:
        text = text.replace("\n", "\\n")
    return quote + text + quote


def rewrite_values(
    scanned: ScannedFile,
    new_inner: Mapping[int, str],
    strings: Mapping[tuple[str | int, ...], str] | None = None,
) -> bytes:
    """The file's bytes with the values at the given indexes of ``scanned.values`` replaced
    by new enc: values (and, in JSON, the recorded ``scanned.strings`` at the given key paths by
    new strings); everything else stays byte for byte. The result is parsed again and must hold
    exactly the old content with those values changed, or :class:`RewriteError`."""
    text = scanned.text
    strings = strings or {}
    edits: list[tuple[int, int, str]] = []
    for keys, new_string in strings.items():
        start, end, _ = scanned.strings[keys]
        edits.append((start, end, _json_raw(text[start:end], new_string)))
    for index, inner in new_inner.items():
        value = scanned.values[index]
        raw = text[value.start : value.end]
        new_full = value.replaced(inner)
        if value.style == "json":
            replacement = _json_raw(raw, new_full)
        else:
            replacement = replace_scalar(raw, value.style, new_full)
        edits.append((value.start, value.end, replacement))
    out = _splice(text, edits)
    _check_rewrite(scanned, out, new_inner, strings)
    return (scanned.bom + out).encode("utf-8")


def _check_rewrite(
    scanned: ScannedFile,
    out: str,
    new_inner: Mapping[int, str],
    strings: Mapping[tuple[str | int, ...], str],
) -> None:
    broken = RewriteError(
        f"{scanned.path} could not be rewritten safely (this is a bug in js7certctl; please "
        "report it); nothing was written."
    )
    again = scan_bytes(scanned.path, (scanned.bom + out).encode("utf-8"))
    if not isinstance(again, ScannedFile) or len(again.values) != len(scanned.values):
        raise broken
    for index, (old, new) in enumerate(zip(scanned.values, again.values, strict=True)):
        wanted = new_inner.get(index, old.inner)
        if new.keys != old.keys or new.inner != wanted or new.quote != old.quote:
            raise broken
    replaced = {
        scanned.values[i].start: scanned.values[i].replaced(v) for i, v in new_inner.items()
    }
    try:
        if scanned.fmt == "json":
            expected = json.loads(scanned.text)
            for index, inner in new_inner.items():
                value = scanned.values[index]
                _set_path(expected, value.keys, value.replaced(inner))
            for keys, new_string in strings.items():
                _set_path(expected, keys, new_string)
            same = json.loads(out) == expected
        elif strings:
            same = False
        else:
            before = [
                (tag, replaced.get(start, value))
                for tag, value, start in yaml_scalars(scanned.text)
            ]
            after = [(tag, value) for tag, value, _ in yaml_scalars(out)]
            same = before == after
    except (ValueError, KeyError, IndexError, TypeError, RecursionError):
        same = False
    if not same:
        raise broken


# ------------------------------------------------------------------------------------ manifests


def _mapping_get(node: Any, name: str) -> tuple[Any, Any] | None:
    for key, value in node.value:
        if type(key).__name__ == "ScalarNode" and str(key.value) == name:
            return key, value
    return None


def edit_manifest(
    text: str,
    document: int,
    *,
    certificate: str | None = None,
    private_key_path: str | None = None,
    where: str = "the manifest",
) -> str:
    """The manifest's text with the inline ``spec.certificate`` and/or ``spec.privateKeyPath`` of
    one document replaced (``privateKeyPath`` is added when missing)."""
    try:
        documents = compose_yaml(text, keep_empty=True)
    except ValueError as exc:
        raise RewriteError(f"{where} cannot be read: {exc}") from None
    if document >= len(documents) or documents[document] is None:
        raise RewriteError(f"{where} changed since it was loaded; run the command again")
    root = documents[document]
    spec = _mapping_get(root, "spec") if type(root).__name__ == "MappingNode" else None
    if spec is None or type(spec[1]).__name__ != "MappingNode":
        raise RewriteError(f"{where} has no spec mapping to update")
    spec_node = spec[1]
    edits: list[tuple[int, int, str]] = []
    for name, new in (("certificate", certificate), ("privateKeyPath", private_key_path)):
        if new is None:
            continue
        found = _mapping_get(spec_node, name)
        if found is not None and type(found[1]).__name__ == "ScalarNode":
            node = found[1]
            start, end = node.start_mark.index, node.end_mark.index
            if start == end:  # `privateKeyPath:` with nothing after it
                edits.append((start, end, " " + json.dumps(new, ensure_ascii=False)))
            else:
                edits.append((start, end, replace_scalar(text[start:end], node.style or "", new)))
            continue
        if found is not None:
            raise RewriteError(f"spec.{name} in {where} is not a single value; edit it by hand")
        if name == "certificate":
            raise RewriteError(f"{where} has no inline spec.certificate to update")
        first = spec_node.value[0][0] if spec_node.value else None
        line_start = text.rfind("\n", 0, first.start_mark.index) + 1 if first is not None else -1
        if (
            first is None
            or spec_node.flow_style
            or text[line_start : first.start_mark.index].strip()
        ):
            raise RewriteError(
                f"spec in {where} is written in flow style; add privateKeyPath by hand"
            )
        indent = text[line_start : first.start_mark.index]
        line = f"{indent}privateKeyPath: {json.dumps(new, ensure_ascii=False)}\n"
        edits.append((line_start, line_start, line))
    return _splice(text, edits)


class OverlaySource:
    """A source with some files' contents replaced (to check edits before writing them)."""

    def __init__(self, base: Source, overlay: Mapping[str, bytes]) -> None:
        self._base = base
        self._overlay = dict(overlay)

    @property
    def info(self) -> SourceInfo:
        return self._base.info

    @property
    def root(self) -> Path:
        return self._base.root

    def kind(self, path: str) -> str:
        return "file" if path in self._overlay else self._base.kind(path)

    def resolve(self, path: str) -> str:
        return self._base.resolve(path)

    def walk(self, folder: str) -> list[str]:
        return self._base.walk(folder)

    def sizes(self, paths: list[str]) -> dict[str, int]:
        rest = [p for p in paths if p not in self._overlay]
        result = self._base.sizes(rest) if rest else {}
        result.update({p: len(self._overlay[p]) for p in paths if p in self._overlay})
        return result

    def read_many(self, paths: list[str]) -> dict[str, bytes]:
        rest = [p for p in paths if p not in self._overlay]
        result = self._base.read_many(rest) if rest else {}
        result.update({p: self._overlay[p] for p in paths if p in self._overlay})
        return result

    def set_base(self, base: str, dirty: bool) -> None:
        self._base.set_base(base, dirty)


# --------------------------------------------------------------------------------------- rotation


@dataclass(slots=True)
class FileEdit:
    """One file to replace: what it held when scanned and what it will hold."""

    path: str  # repository-relative
    original: bytes
    new: bytes
    what: str  # "certificate", "manifest", "values" or "jobresource" (JOC's export)
    values: int = 0  # re-encrypted values in it
    detail: str = ""  # the fields changed (manifest; the Job Resource JOC exported)


@dataclass(slots=True)
class Rotation:
    """Everything a rotation changes, computed and checked, not yet written."""

    alias: str
    desired: DesiredCert
    old_key_path: str | None  # the manifest's privateKeyPath before
    new_key_path: str | None  # after
    opened: list[EncValue] = field(default_factory=list)  # values re-encrypted
    left_alone: list[EncValue] = field(default_factory=list)  # values the old key does not open
    edits: list[FileEdit] = field(default_factory=list)
    scan: Scan | None = None
    dry_run: bool = False

    @property
    def value_edits(self) -> list[FileEdit]:
        return [e for e in self.edits if e.what == "values"]


def find_alias(workspace: Any, target: Any, alias: str) -> tuple[DesiredCert, list[DesiredCert]]:
    """The alias's manifest entry (and all entries), refusing an ambiguous or missing alias."""
    from js7certctl.errors import SourceError

    try:
        result = workspace.load(target)
    except SourceError as exc:
        raise RotationError(f"alias {alias!r} cannot be looked up: {exc.message}") from None
    if any(
        p.rule == "duplicate-alias" and f"alias {alias!r}" in p.message for p in result.problems
    ):
        raise RotationError(
            f"alias {alias!r} is defined more than once in the manifests; run `js7certctl "
            "validate` and keep one definition before rotating it."
        )
    found = next((c for c in result.certs if c.alias == alias), None)
    if found is None:
        errors = [p for p in result.problems if p.is_error]
        hint = (
            f"The manifests have {len(errors)} error(s), which may hide it: run `js7certctl "
            "validate`."
            if errors
            else "Check the alias with `js7certctl validate`; `keys new` makes a new one."
        )
        raise RotationError(f"alias {alias!r} is not in the manifests.", hint=hint)
    return found, result.certs


def check_old_key(desired: DesiredCert, old_key: PrivateKey) -> None:
    """The old key must belong to the alias's certificate in the manifests."""
    try:
        current, _ = load_public_key(desired.certificate.encode("ascii"))
    except CryptoError as exc:
        raise RotationError(
            f"the certificate of alias {desired.alias!r} cannot be used: {exc.message}"
        ) from None
    if not key_matches(old_key, current):
        raise RotationError(
            f"the old key does not belong to the certificate of alias {desired.alias!r} in the "
            f"manifests ({desired.origin.cert_file or desired.origin.path}); nothing was written.",
            hint="Give the private key the Agents use for this alias now (--old-key FILE).",
        )


def prepare(
    workspace: Any,
    target: Any,
    alias: str,
    old_key: PrivateKey,
    *,
    new_certificate: str | None,
    new_key_path: str | None,
    now: datetime,
    progress: Callable[[str], None] = lambda _text: None,
) -> Rotation:
    """Compute and check the whole rotation; ``new_certificate`` None is a dry run (the new
    values are stand-ins then, and the manifest edits are not checked by loading)."""
    desired, all_certs = find_alias(workspace, target, alias)
    check_old_key(desired, old_key)
    rotation = Rotation(
        alias=alias,
        desired=desired,
        old_key_path=desired.private_key_path,
        new_key_path=new_key_path if new_key_path is not None else desired.private_key_path,
        dry_run=new_certificate is None,
    )
    rotation.edits.extend(
        _manifest_edits(workspace, desired, all_certs, new_certificate, new_key_path)
    )
    progress("Scanning the repository for enc: values")
    scan = scan_source(workspace.source, "")
    rotation.scan = scan
    encrypt: Callable[[bytes], str] | None = None
    if new_certificate is not None:
        new_public, _ = load_public_key(new_certificate.encode("ascii"))
        encryptor = Encryptor(new_public)

        def encrypt(plain: bytes) -> str:
            return encryptor.encrypt(plain).to_string()

    from js7certctl.envelope import parse_value

    taken = {e.path for e in rotation.edits}
    for scanned in scan.files:
        strings = _encipherment_strings(scanned, alias, new_certificate, new_key_path)
        replacements: dict[int, str] = {}
        for index, value in enumerate(scanned.values):
            try:
                parsed = parse_value(value.inner)
            except CryptoError:
                rotation.left_alone.append(value)
                continue
            plain = opens(old_key, parsed)
            if plain is None:
                rotation.left_alone.append(value)
                continue
            replacements[index] = encrypt(plain) if encrypt is not None else DRY_RUN_VALUE
            del plain
            rotation.opened.append(value)
        if not replacements and not strings:
            continue
        if scanned.path in taken:
            raise RotationError(
                f"{scanned.path} holds both the certificate of alias {alias!r} and values "
                "encrypted for it; move the values to another file."
            )
        original = (scanned.bom + scanned.text).encode("utf-8")
        new = rewrite_values(scanned, replacements, strings)
        rotation.edits.append(
            FileEdit(
                scanned.path,
                original,
                new,
                "values" if replacements else "jobresource",
                values=len(replacements),
                detail=", ".join(str(keys[-1]) for keys in strings),
            )
        )
    if new_certificate is not None:
        _check_manifests(workspace, target, rotation, new_certificate, now)
    return rotation


def _encipherment_strings(
    scanned: ScannedFile, alias: str, new_certificate: str | None, new_key_path: str | None
) -> dict[tuple[str | int, ...], str]:
    """New values for the Job Resource JOC exported for ``alias`` (when the repository holds
    it): ``encipherment_certificate`` and ``encipherment_private_key_path``, in their style."""
    if scanned.inventory != ("jobresource", alias) or not scanned.encipherment:
        return {}
    certificate = (
        new_certificate or "-----BEGIN CERTIFICATE-----\nDRYRUN\n-----END CERTIFICATE-----\n"
    )
    news = {ENCIPHERMENT_ARGUMENTS[0]: certificate, ENCIPHERMENT_ARGUMENTS[1]: new_key_path}
    return {
        keys: expression_like(scanned.strings[keys][2], new)
        for keys, new in news.items()
        if new is not None and keys in scanned.strings
    }


def _manifest_edits(
    workspace: Any,
    desired: DesiredCert,
    all_certs: Sequence[DesiredCert],
    new_certificate: str | None,
    new_key_path: str | None,
) -> list[FileEdit]:
    source = workspace.source
    origin = desired.origin
    certificate = (
        new_certificate or "-----BEGIN CERTIFICATE-----\nDRYRUN\n-----END CERTIFICATE-----\n"
    )
    edits: list[FileEdit] = []
    if origin.cert_file is not None:
        sharing = [
            c.alias
            for c in all_certs
            if c.alias != desired.alias and c.origin.cert_file == origin.cert_file
        ]
        if sharing:
            raise RotationError(
                f"the certificate file {origin.cert_file} is also used by alias(es) "
                f"{', '.join(sorted(sharing))}; rotating {desired.alias!r} would change them "
                "too. Give each alias its own certificate file first."
            )
        original = source.read_many([origin.cert_file])[origin.cert_file]
        edits.append(
            FileEdit(origin.cert_file, original, certificate.encode("ascii"), "certificate")
        )
    if origin.cert_file is None or new_key_path is not None:
        original = source.read_many([origin.path])[origin.path]
        fields = [
            name
            for name, given in (
                ("certificate", origin.cert_file is None),
                ("privateKeyPath", new_key_path is not None),
            )
            if given
        ]
        try:
            text = original.decode("utf-8")
        except UnicodeDecodeError:
            raise RewriteError(f"the manifest {origin.path} is not UTF-8 text") from None
        bom = "\ufeff" if text.startswith("\ufeff") else ""
        new_text = edit_manifest(
            text[len(bom) :],
            origin.document,
            certificate=certificate if origin.cert_file is None else None,
            private_key_path=new_key_path,
            where=f"the manifest {origin.path}",
        )
        edits.append(
            FileEdit(
                origin.path,
                original,
                (bom + new_text).encode("utf-8"),
                "manifest",
                detail=", ".join(fields),
            )
        )
    return edits


def _check_manifests(
    workspace: Any, target: Any, rotation: Rotation, new_certificate: str, now: datetime
) -> None:
    """Load the manifests with the edits applied: the alias must hold the new certificate and
    key path, and no new error may appear."""
    from js7certctl import certs

    overlay: Source = OverlaySource(workspace.source, {e.path: e.new for e in rotation.edits})
    before = workspace.load(target, now=now)
    after = replace(workspace, source=overlay).load(target, now=now)
    found = next((c for c in after.certs if c.alias == rotation.alias), None)
    facts = certs.live_facts(new_certificate)
    wrong = (
        found is None
        or facts is None
        or found.fingerprint != facts.fingerprint
        or found.private_key_path != rotation.new_key_path
    )
    old_errors = {(p.path, p.rule, p.message) for p in before.errors}
    new_errors = [p for p in after.errors if (p.path, p.rule, p.message) not in old_errors]
    # The old certificate's own findings (an expired certificate) go away; nothing may be added.
    new_errors = [p for p in new_errors if not p.rule.startswith("cert-")]
    if wrong or new_errors:
        details = "; ".join(p.format() for p in new_errors[:3])
        raise RewriteError(
            f"the manifest of alias {rotation.alias!r} could not be updated safely"
            + (f" ({details})" if details else "")
            + "; nothing was written."
        )


# ----------------------------------------------------------------------------------------- write


@dataclass(slots=True)
class Written:
    key: Path | None = None
    files: list[str] = field(default_factory=list)


def _absolute(root: Path, path: str) -> Path:
    return root / path


def check_unchanged(root: Path, edits: Sequence[FileEdit]) -> None:
    """Every file must still hold what was scanned (no edit in between)."""
    for edit in edits:
        target = _absolute(root, edit.path)
        try:
            current = target.read_bytes()
        except OSError:
            current = None
        if current != edit.original:
            raise RotationError(
                f"{edit.path} changed while js7certctl was working; nothing was written. "
                "Run the command again."
            )
        if os.path.islink(target):
            raise RotationError(f"{edit.path} is a symlink; js7certctl does not write through it.")


def write(
    root: Path,
    rotation: Rotation,
    key_path: Path,
    key_pem: bytes,
    written: Callable[[FileEdit], None] = lambda _edit: None,
) -> Written:
    """Write the private key (new file, 0600), then every changed file atomically with its mode.

    On a failure part way, :class:`RotationError` says what was written and what was not.
    """
    from js7certctl import secretio

    check_unchanged(root, rotation.edits)
    done = Written()
    secretio.write_new_file(key_path, key_pem, mode=0o600, what="the private key file")
    done.key = key_path
    order = sorted(rotation.edits, key=lambda e: (e.what == "values", e.path))
    for index, edit in enumerate(order):
        target = _absolute(root, edit.path)
        try:
            mode = os.stat(target).st_mode & 0o7777
            secretio.write_file_atomic(target, edit.new, mode=mode, what=edit.path)
        except (OSError, Js7CertCtlError) as exc:
            rest = [e.path for e in order[index:]]
            raise RotationError(
                f"the rotation stopped part way: {edit.path} could not be written "
                f"({getattr(exc, 'message', type(exc).__name__)}). Written: the key "
                f"{key_path}{''.join(', ' + p for p in done.files)}. Not written: "
                f"{', '.join(rest)}.",
                hint="Undo the written files with `git checkout -- FILE...` (and delete the new "
                "key), or fix the cause and finish by hand.",
            ) from None
        done.files.append(edit.path)
        written(edit)
    return done
