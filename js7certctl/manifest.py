"""Manifests -> :class:`DesiredCert` entries, with every problem as ``path:line:column``.

A manifest file holds one or more YAML documents of kind ``EncryptionCertificate``. Problems are
collected across all files (never just the first) so that one run tells the user everything.
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import io
import os
import pickle
import posixpath
import re
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from js7certctl import certs
from js7certctl.config import Policy, check_folder
from js7certctl.errors import SourceError
from js7certctl.model import CertFacts, DesiredCert, Origin, Problem, Severity
from js7certctl.source import PathEscape, Source, normalize
from js7certctl.yamlnodes import MAX_FILE_BYTES, Checker, YNode, parse_documents, too_large

API_VERSION = "js7certctl/v1"
KIND = "EncryptionCertificate"
YAML_SUFFIXES = (".yaml", ".yml")
MAX_CERTIFICATE_FILE_BYTES = 1024 * 1024

_TOP = ("apiVersion", "kind", "metadata", "spec")
_METADATA = ("alias", "labels", "previousAliases")
_SPEC = ("certificate", "certificateFile", "privateKeyPath", "jobResourceFolder", "agents")

JAVA_RESERVED = frozenset(
    [
        "abstract",
        "assert",
        "boolean",
        "break",
        "byte",
        "case",
        "catch",
        "char",
        "class",
        "const",
        "continue",
        "default",
        "do",
        "double",
        "else",
        "enum",
        "extends",
        "final",
        "finally",
        "float",
        "for",
        "goto",
        "if",
        "implements",
        "import",
        "instanceof",
        "int",
        "interface",
        "long",
        "native",
        "new",
        "package",
        "private",
        "protected",
        "public",
        "return",
        "short",
        "static",
        "strictfp",
        "super",
        "switch",
        "synchronized",
        "this",
        "throw",
        "throws",
        "transient",
        "try",
        "void",
        "volatile",
        "while",
        "true",
        "false",
        "null",
    ]
)
_FORBIDDEN = set("!?~'\"}[]{@:;#/\\^$%&*()+=")
_WINDOWS_ABSOLUTE = re.compile(r"^(?:[A-Za-z]:[\\/]|\\\\)")
# Letters, digits, '_', '.' and '-', starting and ending with neither '.' nor '-': such an alias
# breaks none of the rules below but the '..'/'--' and reserved-word ones (the common case).
_PLAIN_ALIAS = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?")


def alias_problem(alias: str) -> str | None:
    """Why ``alias`` breaks JS7's object-name rules, or None when it is a valid name."""
    if (
        _PLAIN_ALIAS.fullmatch(alias)
        and ".." not in alias
        and "--" not in alias
        and alias not in JAVA_RESERVED
    ):
        return None
    if not alias:
        return "alias must not be empty"
    if any(c.isspace() for c in alias):
        return f"alias {alias!r} must not contain whitespace"
    bad = sorted({c for c in alias if c in _FORBIDDEN})
    if bad:
        return f"alias {alias!r} must not contain {' '.join(bad)}"
    if alias[0] in ".-" or alias[-1] in ".-":
        return f"alias {alias!r} must not start or end with '.' or '-'"
    if ".." in alias or "--" in alias:
        return f"alias {alias!r} must not contain '..' or '--'"
    if alias in JAVA_RESERVED:
        return f"alias {alias!r} is a Java reserved word, which JS7 does not allow as a name"
    if any(ord(c) < 32 or ord(c) == 127 for c in alias):
        return f"alias {alias!r} must not contain control characters"
    return None


def is_absolute_key_path(path: str) -> bool:
    return path.startswith("/") or bool(_WINDOWS_ABSOLUTE.match(path))


@dataclass(slots=True)
class LoadResult:
    """Everything the manifests declare, plus every problem found."""

    certs: list[DesiredCert] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.is_error]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if not p.is_error]

    @property
    def ok(self) -> bool:
        return not self.errors


# From this many manifest files on, a forked child loads half of them (see _in_two_processes);
# below it forking gains nothing (at 1,000 files it breaks even on 2 cores).
PARALLEL_MIN_FILES = 2000


@dataclass(slots=True)
class _Pending:
    """A document whose fields checked out, waiting for its certificate to be parsed."""

    path: str
    document: int
    line: int  # of the document (its tree is not kept: loading 10,000 stays linear)
    column: int
    alias: str
    alias_node: YNode
    cert_node: YNode
    cert_text: str | None  # inline PEM
    cert_file: str | None  # resolved repository-relative path
    private_key_path: str | None
    job_resource_folder: str
    agents: tuple[str, ...]
    labels: tuple[tuple[str, str], ...]
    previous_aliases: tuple[str, ...]
    previous_nodes: tuple[YNode, ...]
    agents_managed: bool
    problems: list[Problem] = field(default_factory=list)  # of its certificate (_prepare)
    cert: DesiredCert | None = None  # the entry, when its certificate is usable (_prepare)


def find_manifest_files(
    source: Source, base: str, entries: Sequence[str], config_path: str | None
) -> tuple[list[str], list[Problem]]:
    """The manifest files named by the config's ``manifests`` (files, or folders searched)."""
    where = config_path or (base or ".")
    problems: list[Problem] = []
    files: set[str] = set()
    for entry in entries:
        try:
            path = source.resolve(normalize(posixpath.join(base, entry)))
        except PathEscape as exc:
            problems.append(
                Problem(
                    where,
                    1,
                    1,
                    Severity.ERROR,
                    "manifests-path",
                    f"manifests entry {entry!r}: {exc.reason}",
                )
            )
            continue
        kind = source.kind(path)
        if kind == "dir":
            for found in source.walk(path):
                if found.endswith(YAML_SUFFIXES):
                    real = _manifest_file(source, found, problems)
                    if real is not None:
                        files.add(real)
        elif kind == "file":
            files.add(path)
        else:
            problems.append(
                Problem(
                    where,
                    1,
                    1,
                    Severity.ERROR,
                    "manifests-path",
                    f"manifests entry {entry!r} does not exist",
                )
            )
    if config_path is not None:
        files.discard(config_path)
    return sorted(files), problems


def _manifest_file(source: Source, path: str, problems: list[Problem]) -> str | None:
    """The file a found manifest path really is (symlinks followed inside the tree), or None
    with a problem when it leads out of the repository, nowhere, or to no regular file."""
    try:
        real = source.resolve(path)
    except PathEscape as exc:
        problems.append(
            Problem(
                path,
                1,
                1,
                Severity.ERROR,
                "manifest-escape",
                f"this manifest is not read: {exc.reason}; keep manifests inside the repository",
            )
        )
        return None
    kind = source.kind(real)
    if kind == "file":
        return real
    if kind == "missing":
        rule, message = (
            "manifest-missing",
            f"this manifest is a symlink to {real}, which does not exist",
        )
    elif kind == "dir":
        rule, message = "manifest-not-file", f"this manifest is a symlink to the folder {real}"
    else:
        rule, message = (
            "manifest-not-file",
            "this manifest is not a regular file (a pipe, socket or device)",
        )
    problems.append(Problem(path, 1, 1, Severity.ERROR, rule, message + "; remove it"))
    return None


def load_manifests(
    source: Source,
    *,
    base: str,
    entries: Sequence[str],
    config_path: str | None,
    job_resource_folder: str,
    policy: Policy,
    now: datetime,
) -> LoadResult:
    """Load, check and health-check every manifest. Raises SourceError when none is found."""
    files, problems = find_manifest_files(source, base, entries, config_path)
    result = LoadResult(problems=problems, files=files)
    if not files:
        if problems:
            return result
        where = f"{source.info.repository or source.root}/{base}".rstrip("/")
        raise SourceError(
            f"no manifests found (no *.yaml or *.yml files under {where}"
            + (f" at {source.info.ref}" if source.info.ref else "")
            + ")",
            hint="Create one with `js7certctl init`, or list the manifest folders under "
            "`manifests:` in js7certctl.yaml.",
        )
    with _collector_paused():
        _load_files(source, files, result, job_resource_folder, policy, now)
    result.problems.sort(key=Problem.sort_key)
    return result


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while the manifests are loaded.

    Loading makes many small objects that live on and frees few, so the collector would walk
    the growing heap again and again without finding garbage (a third of the time for 10,000
    manifests). Nothing made here forms reference cycles; the collector resumes afterwards.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _load_files(
    source: Source,
    files: list[str],
    result: LoadResult,
    job_resource_folder: str,
    policy: Policy,
    now: datetime,
) -> None:
    health = certs.HealthPolicy(
        expiry_warning_days=policy.expiry_warning_days, min_rsa_bits=policy.min_rsa_bits
    )

    # Read here, once: a forked child shares what was read, and so does what reads the source
    # after the load (a Git tree caches the blobs; the plan's blast radius reads them again).
    sizes = source.sizes(files)
    contents = source.read_many([p for p in files if sizes[p] <= MAX_FILE_BYTES])

    def work(paths: list[str]) -> _Batch:
        return _load_batch(source, paths, sizes, contents, job_resource_folder, health, now)

    pending: list[_Pending] = []
    for batch in _in_two_processes(work, files):
        result.problems.extend(batch.problems)
        pending.extend(batch.pending)
    _finish(pending, result, policy)


@dataclass(slots=True)
class _Batch:
    """What loading some of the files found, in file order (picklable: a child sends it)."""

    problems: list[Problem] = field(default_factory=list)
    pending: list[_Pending] = field(default_factory=list)
    warnings: list[tuple[str, type[Warning], str, int]] = field(default_factory=list)


def _load_batch(
    source: Source,
    paths: list[str],
    sizes: dict[str, int],
    contents: dict[str, bytes],
    job_resource_folder: str,
    health: certs.HealthPolicy,
    now: datetime,
) -> _Batch:
    """Parse and check ``paths`` (read into ``contents`` unless too large), then read, parse and
    health-check their certificates: all that needs no other file (what runs in parallel)."""
    batch = _Batch()
    for path in paths:
        if path not in contents:  # never read whole: it could be any size
            batch.problems.append(too_large(path, sizes[path]))
            continue
        checker = Checker(path)
        docs, parse_problems = parse_documents(contents[path], path)
        checker.problems.extend(parse_problems)
        if not parse_problems and not any(d is not None for d in docs):
            checker.error(
                None,
                "empty-file",
                "the file is empty; a manifest needs apiVersion, kind, metadata and spec",
            )
        for index, doc in enumerate(docs):
            if doc is None:
                continue
            item = _check_document(checker, source, path, index, doc, job_resource_folder)
            if item is not None:
                batch.pending.append(item)
        batch.problems.extend(checker.problems)
    cert_files = sorted({p.cert_file for p in batch.pending if p.cert_file is not None})
    cert_sizes = source.sizes(cert_files) if cert_files else {}
    cert_contents = source.read_many(
        [f for f in cert_files if cert_sizes[f] <= MAX_CERTIFICATE_FILE_BYTES]
    )
    parsed_files: dict[str, tuple[certs.ParsedCert | None, list[certs.Finding]]] = {}
    for name in cert_files:
        if name not in cert_contents:  # never read whole: it could be any size
            size = f"{cert_sizes[name] / (1024 * 1024):.1f} MiB"
            parsed_files[name] = (
                None,
                [
                    certs.Finding(
                        Severity.ERROR,
                        "certificate-file-too-large",
                        f"the file is {size}, too large for a certificate (a certificate has a few "
                        f"KiB; files are limited to {MAX_CERTIFICATE_FILE_BYTES // 1024} KiB)",
                    )
                ],
            )
        else:
            parsed_files[name] = certs.parse_certificate_text(cert_contents[name], source=name)
    for item in batch.pending:
        if item.cert_file is not None:
            parsed, findings = parsed_files[item.cert_file]
            prefix = f"certificateFile {item.cert_file}: "
        else:
            assert item.cert_text is not None
            parsed, findings = certs.parse_certificate_text(item.cert_text, source=item.path)
            prefix = ""
        _prepare(item, parsed, findings, prefix, health, now)
    return batch


def _prepare(
    item: _Pending,
    parsed: certs.ParsedCert | None,
    findings: list[certs.Finding],
    prefix: str,
    health: certs.HealthPolicy,
    now: datetime,
) -> None:
    """The item's certificate problems and, when its certificate is usable, its entry."""
    line, column = item.cert_node.line, item.cert_node.column
    item.problems = [
        Problem(item.path, line, column, finding.severity, finding.rule, prefix + finding.message)
        for finding in findings
    ]
    if parsed is None:
        return
    facts: CertFacts = parsed.facts
    item.problems.extend(
        Problem(item.path, line, column, finding.severity, finding.rule, finding.message)
        for finding in certs.health_findings(facts, health, now)
    )
    item.cert = DesiredCert(
        alias=item.alias,
        certificate=parsed.pem,
        private_key_path=item.private_key_path,
        job_resource_folder=item.job_resource_folder,
        agents=item.agents,
        facts=facts,
        origin=Origin(
            path=item.path,
            document=item.document,
            line=item.line,
            column=item.column,
            cert_line=line,
            cert_column=column,
            cert_file=item.cert_file,
        ),
        labels=item.labels,
        previous_aliases=item.previous_aliases,
        agents_managed=item.agents_managed,
    )


class _BatchPickler(pickle.Pickler):
    """Pickles the loader's dataclasses as calls of their classes with the fields in order.

    Their own pickling (``__getstate__``/``__setstate__`` of frozen slotted dataclasses) sets
    every field in a Python loop: twice the time, which the parent pays while it waits.
    """

    def reducer_override(self, obj: Any) -> Any:
        names = _pickled_fields().get(type(obj))
        if names is None:
            return NotImplemented
        return type(obj), tuple(getattr(obj, name) for name in names)


@functools.cache
def _pickled_fields() -> dict[type, tuple[str, ...]]:
    classes: tuple[type, ...] = (_Pending, DesiredCert, Origin, CertFacts, Problem, YNode)
    return {
        cls: tuple(f.name for f in dataclasses.fields(cls))
        for cls in classes
        if all(f.init for f in dataclasses.fields(cls))
    }


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def _in_two_processes(work: Callable[[list[str]], _Batch], files: list[str]) -> list[_Batch]:
    """``work`` over ``files``: with two CPUs or more, a forked child takes the second half.

    Only for many files (below that, forking costs more than it saves), on Linux (macOS does
    not support forking a process that may have used its system frameworks, e.g. for proxy
    settings) and while the process runs a single thread (a fork copies no other thread, and
    any lock another thread holds would stay locked in the child). The child sends its batch back
    pickled through a pipe and any warnings it saw, which are issued here. Whatever goes wrong
    with the child (it fails, dies or is killed), its half is loaded here instead, so the
    result is always the one a single process gives.
    """
    if (
        len(files) < PARALLEL_MIN_FILES
        or not sys.platform.startswith("linux")
        or threading.active_count() != 1
        or _usable_cpus() < 2
    ):
        return [work(files)]
    half = len(files) // 2
    mine, theirs = files[:half], files[half:]
    read_fd, write_fd = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(read_fd)
        os.close(write_fd)
        return [work(files)]
    if pid == 0:  # the child: never returns
        code = 1
        try:
            os.close(read_fd)
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                batch = work(theirs)
            batch.warnings = [(str(w.message), w.category, w.filename, w.lineno) for w in seen]
            # Pickled in memory first: into the pipe it would wait for the parent at every
            # 64 KiB, making the parent wait for the pickling once it reads.
            buffer = io.BytesIO()
            _BatchPickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(batch)
            with os.fdopen(write_fd, "wb") as out:
                out.write(buffer.getbuffer())
            code = 0
        finally:
            os._exit(code)
    os.close(write_fd)
    child: int | None = pid
    pipe = os.fdopen(read_fd, "rb")
    try:
        first = work(mine)
        data = pipe.read()
        _, status = os.waitpid(pid, 0)
        child = None
        second: _Batch | None = None
        if os.waitstatus_to_exitcode(status) == 0:
            try:
                loaded = pickle.loads(data)  # noqa: S301 (our own child's batch)
            except Exception:  # a damaged batch: load that half here
                loaded = None
            second = loaded if isinstance(loaded, _Batch) else None
        if second is None:
            second = work(theirs)
        else:
            for message, category, filename, lineno in second.warnings:
                warnings.warn_explicit(message, category, filename, lineno)
    finally:
        pipe.close()
        if child is not None:  # interrupted: take the child down with us
            try:
                os.kill(child, signal.SIGKILL)
                os.waitpid(child, 0)
            except OSError:
                pass
    return [first, second]


def _check_document(
    checker: Checker,
    source: Source,
    path: str,
    index: int,
    doc: YNode,
    default_folder: str,
) -> _Pending | None:
    before = sum(1 for p in checker.problems if p.is_error)
    top = checker.mapping(doc, "the manifest", allowed=_TOP, required=_TOP)
    if top is None:
        return None
    if "apiVersion" in top:
        node = top["apiVersion"][1]
        value = checker.string(node, "apiVersion")
        if value is not None and value != API_VERSION:
            checker.error(node, "api-version", f"unknown apiVersion {value!r}; use {API_VERSION}")
    if "kind" in top:
        node = top["kind"][1]
        value = checker.string(node, "kind")
        if value is not None and value != KIND:
            checker.error(node, "kind", f"unknown kind {value!r}; use {KIND}")

    alias: str | None = None
    alias_node: YNode | None = None
    labels: list[tuple[str, str]] = []
    previous: list[str] = []
    previous_nodes: list[YNode] = []
    if "metadata" in top:
        mkey, mnode = top["metadata"]
        meta = checker.mapping(mnode, "metadata", allowed=_METADATA, required=("alias",), at=mkey)
        if meta is not None:
            if "alias" in meta:
                alias_node = meta["alias"][1]
                alias = checker.string(alias_node, "metadata.alias")
                if alias is not None:
                    why = alias_problem(alias)
                    if why:
                        checker.error(alias_node, "alias-name", why)
            if "labels" in meta:
                lmap = checker.mapping(meta["labels"][1], "metadata.labels")
                for name, (_, lvalue) in (lmap or {}).items():
                    if lvalue.kind == "scalar" and lvalue.tag in ("str", "int", "float", "bool"):
                        labels.append((name, str(lvalue.value)))
                    else:
                        checker.error(lvalue, "type", f"metadata.labels.{name} must be a string")
            if "previousAliases" in meta:
                for pnode, pvalue in (
                    checker.string_list(meta["previousAliases"][1], "metadata.previousAliases")
                    or []
                ):
                    why = alias_problem(pvalue)
                    if why:
                        checker.error(pnode, "alias-name", f"previousAliases: {why}")
                    elif pvalue in previous:
                        checker.error(
                            pnode, "duplicate-previous-alias", f"{pvalue!r} is listed twice"
                        )
                    else:
                        previous.append(pvalue)
                        previous_nodes.append(pnode)

    cert_node: YNode | None = None
    cert_text: str | None = None
    cert_file: str | None = None
    key_path: str | None = None
    folder = default_folder
    agents: list[str] = []
    agents_managed = False
    if "spec" in top:
        skey, snode = top["spec"]
        spec = checker.mapping(snode, "spec", allowed=_SPEC, at=skey)
        if spec is not None:
            has_inline = "certificate" in spec
            has_file = "certificateFile" in spec
            if has_inline and has_file:
                checker.error(
                    spec["certificateFile"][0],
                    "certificate-both",
                    "spec has both certificate and certificateFile; keep one",
                )
            elif not has_inline and not has_file:
                checker.error(
                    skey,
                    "missing-field",
                    "spec is missing the field 'certificate' or 'certificateFile'",
                )
            elif has_inline:
                cert_node = spec["certificate"][1]
                cert_text = checker.string(cert_node, "spec.certificate")
            else:
                cert_node = spec["certificateFile"][1]
                cert_file = _cert_file(checker, source, path, cert_node)
            if "privateKeyPath" in spec:
                pnode = spec["privateKeyPath"][1]
                if pnode.kind == "scalar" and pnode.tag == "null":
                    checker.warning(
                        pnode,
                        "private-key-path",
                        "privateKeyPath is empty: the Agents cannot find their private key",
                    )
                else:
                    key_path = checker.string(pnode, "spec.privateKeyPath", allow_empty=True)
                    if key_path is not None and not key_path.strip():
                        checker.warning(
                            pnode,
                            "private-key-path",
                            "privateKeyPath is empty: the Agents cannot find their private key",
                        )
                        key_path = None
                    elif key_path is not None and not is_absolute_key_path(key_path):
                        checker.warning(
                            pnode,
                            "private-key-path",
                            f"privateKeyPath {key_path!r} is relative; "
                            "Agents need an absolute path (or C:\\... on Windows)",
                        )
            else:
                checker.warning(
                    skey,
                    "private-key-path",
                    "spec has no privateKeyPath: the Agents cannot find their private key",
                )
            if "jobResourceFolder" in spec:
                folder = (
                    check_folder(checker, spec["jobResourceFolder"][1], "spec.jobResourceFolder")
                    or folder
                )
            if "agents" in spec:
                agents_managed = True
                seen: dict[str, YNode] = {}
                for anode, agent in checker.string_list(spec["agents"][1], "spec.agents") or []:
                    if agent in seen:
                        checker.error(
                            anode,
                            "duplicate-agent",
                            f"Agent {agent!r} is listed twice (first at line {seen[agent].line})",
                        )
                        continue
                    seen[agent] = anode
                    agents.append(agent)

    errors = sum(1 for p in checker.problems if p.is_error)
    if errors > before or alias is None or alias_node is None or cert_node is None:
        return None
    if cert_text is None and cert_file is None:
        return None
    return _Pending(
        path=path,
        document=index,
        line=doc.line,
        column=doc.column,
        alias=alias,
        alias_node=alias_node,
        cert_node=cert_node,
        cert_text=cert_text,
        cert_file=cert_file,
        private_key_path=key_path,
        job_resource_folder=folder,
        agents=tuple(sorted(agents)),
        labels=tuple(labels),
        previous_aliases=tuple(previous),
        previous_nodes=tuple(previous_nodes),
        agents_managed=agents_managed,
    )


def _cert_file(checker: Checker, source: Source, path: str, node: YNode) -> str | None:
    value = checker.string(node, "spec.certificateFile")
    if value is None:
        return None
    try:
        resolved = source.resolve(normalize(posixpath.join(posixpath.dirname(path), value)))
    except PathEscape as exc:
        if "absolute" in exc.reason:
            message = (
                f"certificateFile {value!r} is an absolute path; "
                "use a path relative to the manifest"
            )
        else:
            message = f"certificateFile {value!r} is not allowed: {exc.reason}"
        checker.error(node, "certificate-file-escape", message)
        return None
    kind = source.kind(resolved)
    if kind == "missing":
        at = f" at {source.info.ref}" if source.info.ref else ""
        checker.error(
            node,
            "certificate-file-missing",
            f"certificateFile {value!r} does not exist{at} (looked for {resolved})",
        )
        return None
    if kind != "file":
        checker.error(node, "certificate-file-not-file", f"certificateFile {value!r} is not a file")
        return None
    return resolved


def _finish(pending: list[_Pending], result: LoadResult, policy: Policy) -> None:
    """What needs every document at once: scope, duplicate aliases, case clashes, renames."""
    by_alias: dict[str, _Pending] = {}
    by_folded: dict[str, _Pending] = {}
    for item in pending:
        result.problems.extend(item.problems)
        if item.cert is None:
            continue
        a_line, a_col = item.alias_node.line, item.alias_node.column
        if not policy.in_scope(item.alias):
            result.problems.append(
                Problem(
                    item.path,
                    a_line,
                    a_col,
                    Severity.ERROR,
                    "alias-out-of-scope",
                    f"alias {item.alias!r} is outside the target's scope "
                    f"({', '.join(policy.scope)}); change policy.scope or the alias",
                )
            )
        first = by_alias.get(item.alias)
        if first is not None:
            result.problems.append(
                Problem(
                    item.path,
                    a_line,
                    a_col,
                    Severity.ERROR,
                    "duplicate-alias",
                    f"alias {item.alias!r} is also defined at "
                    f"{first.path}:{first.alias_node.line}:{first.alias_node.column}",
                )
            )
            result.problems.append(
                Problem(
                    first.path,
                    first.alias_node.line,
                    first.alias_node.column,
                    Severity.ERROR,
                    "duplicate-alias",
                    f"alias {item.alias!r} is also defined at {item.path}:{a_line}:{a_col}",
                )
            )
            continue
        by_alias[item.alias] = item
        folded = item.alias.casefold()
        other = by_folded.get(folded)
        if other is not None:
            result.problems.append(
                Problem(
                    item.path,
                    a_line,
                    a_col,
                    Severity.WARNING,
                    "alias-case",
                    f"alias {item.alias!r} differs only in case from {other.alias!r} at "
                    f"{other.path}:{other.alias_node.line}",
                )
            )
        else:
            by_folded[folded] = item
        result.certs.append(item.cert)
    _check_renames([p for p in pending if p.alias in by_alias and by_alias[p.alias] is p], result)
    result.certs.sort(key=lambda c: c.alias)


def _check_renames(items: list[_Pending], result: LoadResult) -> None:
    """previousAliases must name neither a current alias nor the same old alias twice."""
    current = {item.alias: item for item in items}
    claimed: dict[str, tuple[_Pending, YNode]] = {}
    for item in items:
        for old, node in zip(item.previous_aliases, item.previous_nodes, strict=True):
            if old == item.alias:
                message = f"previousAliases lists the alias {old!r} itself"
            elif old in current:
                other = current[old]
                message = (
                    f"previousAliases lists {old!r}, which is still an alias at "
                    f"{other.path}:{other.alias_node.line}; remove one of them"
                )
            elif old in claimed:
                first, first_node = claimed[old]
                message = (
                    f"{old!r} is also a previous alias of {first.alias!r} at "
                    f"{first.path}:{first_node.line}; an alias can be renamed only once"
                )
            else:
                claimed[old] = (item, node)
                continue
            result.problems.append(
                Problem(
                    item.path, node.line, node.column, Severity.ERROR, "rename-conflict", message
                )
            )
