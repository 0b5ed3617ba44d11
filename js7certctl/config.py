"""The repository config `js7certctl.yaml`: parsing with path:line problems, and defaults."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from js7certctl.errors import UsageError, ValidationFailed
from js7certctl.model import Problem
from js7certctl.yamlnodes import Checker, YNode, parse_documents

CONFIG_NAME = "js7certctl.yaml"
DEFAULT_KEYSTORE = ".js7certctl/keystore.db"
DEFAULT_JOB_RESOURCE_FOLDER = "/Encryption"
BACKENDS = ("local", "joc")


@dataclass(frozen=True, slots=True)
class Policy:
    expiry_warning_days: int = 30
    min_rsa_bits: int = 2048
    protect: tuple[str, ...] = ()
    prune: bool = True
    scope: tuple[str, ...] = ("*",)
    max_deletes: int = 10

    def in_scope(self, alias: str) -> bool:
        return any(fnmatch.fnmatchcase(alias, pattern) for pattern in self.scope)

    def is_protected(self, alias: str) -> bool:
        return any(fnmatch.fnmatchcase(alias, pattern) for pattern in self.protect)


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    backend: str
    path: str | None = None  # local: keystore file, relative to the base folder
    url: str | None = None  # joc: e.g. https://joc.example.com:4443
    ca_bundle: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    job_resource_folder: str | None = None  # targets.NAME.defaults.jobResourceFolder
    manifests: tuple[str, ...] | None = None  # targets.NAME.manifests
    policy: Policy | None = None  # the effective policy when the target overrides any of it


@dataclass(frozen=True, slots=True)
class Config:
    """The effective config. ``path`` is repository-relative (None when there is no file)."""

    path: str | None = None
    manifests: tuple[str, ...] = (".",)
    job_resource_folder: str = DEFAULT_JOB_RESOURCE_FOLDER
    policy: Policy = field(default_factory=Policy)
    targets: dict[str, Target] = field(
        default_factory=lambda: {"local": Target(name="local", backend="local")}
    )
    default_target: str = "local"
    problems: tuple[Problem, ...] = ()  # what parse_config found (a target with errors is left out)

    def target(self, name: str | None) -> Target:
        chosen = name or self.default_target
        if chosen not in self.targets:
            errors = [p for p in self.problems if p.is_error]
            if errors:  # most likely the target itself has errors: show them, not "unknown"
                raise ValidationFailed(errors, "the config has errors.")
            known = ", ".join(sorted(self.targets)) or "none"
            raise UsageError(
                f"unknown target {chosen!r}; the targets defined are: {known}",
                hint=f"Define it under `targets:` in {self.path or CONFIG_NAME}.",
            )
        return self.targets[chosen]

    def policy_for(self, target: Target) -> Policy:
        return target.policy or self.policy

    def manifests_for(self, target: Target) -> tuple[str, ...]:
        return target.manifests if target.manifests is not None else self.manifests

    def job_resource_folder_for(self, target: Target) -> str:
        return target.job_resource_folder or self.job_resource_folder


_TOP = ("manifests", "defaults", "policy", "targets", "defaultTarget")
_POLICY = ("expiryWarningDays", "minRsaBits", "protect", "prune", "scope", "maxDeletes")
_TARGET = (
    "backend",
    "path",
    "url",
    "caBundle",
    "clientCert",
    "clientKey",
    "defaults",
    "manifests",
    "policy",
)


def check_folder(checker: Checker, node: YNode, where: str) -> str | None:
    """A JS7 inventory folder: absolute, no empty segments, no trailing slash."""
    value = checker.string(node, where)
    if value is None:
        return None
    if not value.startswith("/"):
        checker.error(
            node, "folder-not-absolute", f"{where} must be an absolute folder such as /Encryption"
        )
        return None
    if value != "/" and (value.endswith("/") or "//" in value):
        checker.error(
            node,
            "folder-invalid",
            f"{where} {value!r} must not end with '/' or contain '//'",
        )
        return None
    return value


def _patterns(checker: Checker, node: YNode, where: str) -> tuple[str, ...] | None:
    items = checker.string_list(node, where)
    return None if items is None else tuple(v for _, v in items)


def _policy(checker: Checker, node: YNode, base: Policy, where: str) -> Policy:
    fields = checker.mapping(node, where, allowed=_POLICY)
    if fields is None:
        return base
    policy = base
    for name, (_, value) in fields.items():
        if name == "expiryWarningDays":
            days = checker.integer(value, f"{where}.expiryWarningDays", minimum=0)
            if days is not None:
                policy = replace(policy, expiry_warning_days=days)
        elif name == "minRsaBits":
            bits = checker.integer(value, f"{where}.minRsaBits", minimum=512)
            if bits is not None:
                policy = replace(policy, min_rsa_bits=bits)
        elif name == "maxDeletes":
            count = checker.integer(value, f"{where}.maxDeletes", minimum=0)
            if count is not None:
                policy = replace(policy, max_deletes=count)
        elif name == "prune":
            flag = checker.boolean(value, f"{where}.prune")
            if flag is not None:
                policy = replace(policy, prune=flag)
        elif name == "protect":
            patterns = _patterns(checker, value, f"{where}.protect")
            if patterns is not None:
                policy = replace(policy, protect=patterns)
        elif name == "scope":
            patterns = _patterns(checker, value, f"{where}.scope")
            if patterns is not None:
                policy = replace(policy, scope=patterns)
    return policy


def _manifest_list(checker: Checker, node: YNode, where: str) -> tuple[str, ...] | None:
    if node.kind == "scalar" and node.tag == "str":
        items = [(node, str(node.value))]
    else:
        got = checker.string_list(node, where)
        if got is None:
            return None
        items = got
    result: list[str] = []
    for item, value in items:
        if value.startswith("/") or (len(value) > 1 and value[1] == ":"):
            checker.error(item, "path-absolute", f"{where} entries must be relative to the config")
            continue
        result.append(value)
    if not result and not checker.problems:
        checker.error(node, "empty", f"{where} must name at least one file or folder")
    return tuple(result)


def _defaults(checker: Checker, node: YNode, where: str) -> str | None:
    fields = checker.mapping(node, where, allowed=("jobResourceFolder",))
    if fields and "jobResourceFolder" in fields:
        return check_folder(checker, fields["jobResourceFolder"][1], f"{where}.jobResourceFolder")
    return None


def _target(checker: Checker, name: str, key: YNode, node: YNode, policy: Policy) -> Target | None:
    where = f"targets.{name}"
    fields = checker.mapping(node, where, allowed=_TARGET, required=("backend",), at=key)
    if fields is None:
        return None
    before = len(checker.problems)
    backend = None
    if "backend" in fields:
        bnode = fields["backend"][1]
        backend = checker.string(bnode, f"{where}.backend")
        if backend is not None and backend not in BACKENDS:
            checker.error(
                bnode,
                "unknown-backend",
                f"{where}.backend must be one of {', '.join(BACKENDS)}, not {backend!r}",
            )
            backend = None
    strings: dict[str, str | None] = {}
    for opt in ("path", "url", "caBundle", "clientCert", "clientKey"):
        if opt in fields:
            strings[opt] = checker.string(fields[opt][1], f"{where}.{opt}")
    url = strings.get("url")
    if backend == "joc":
        if "url" not in fields:
            checker.error(key, "missing-field", f"{where} is missing the field 'url'")
        elif url is not None and not url.lower().startswith(("http://", "https://")):
            checker.error(
                fields["url"][1],
                "url-invalid",
                f"{where}.url must start with https:// (or http://), e.g. https://joc:4443",
            )
        if "path" in fields:
            checker.error(fields["path"][0], "unknown-field", f"{where}.path is for local targets")
    if backend == "local":
        for opt in ("url", "caBundle", "clientCert", "clientKey"):
            if opt in fields:
                checker.error(fields[opt][0], "unknown-field", f"{where}.{opt} is for joc targets")
    if ("clientCert" in fields) != ("clientKey" in fields):
        checker.error(key, "missing-field", f"{where} needs both clientCert and clientKey")
    folder = (
        _defaults(checker, fields["defaults"][1], f"{where}.defaults")
        if "defaults" in fields
        else None
    )
    manifests = (
        _manifest_list(checker, fields["manifests"][1], f"{where}.manifests")
        if "manifests" in fields
        else None
    )
    target_policy = (
        _policy(checker, fields["policy"][1], policy, f"{where}.policy")
        if "policy" in fields
        else None
    )
    if len(checker.problems) > before or backend is None:
        return None
    return Target(
        name=name,
        backend=backend,
        path=strings.get("path"),
        url=url,
        ca_bundle=strings.get("caBundle"),
        client_cert=strings.get("clientCert"),
        client_key=strings.get("clientKey"),
        job_resource_folder=folder,
        manifests=manifests,
        policy=target_policy,
    )


def parse_config(data: bytes, path: str) -> tuple[Config, list[Problem]]:
    """Parse the config file's bytes; ``path`` (repository-relative) is used in problems."""
    docs, problems = parse_documents(data, path)
    checker = Checker(path)
    checker.problems.extend(problems)
    config = Config(path=path)
    real = [d for d in docs if d is not None]
    if problems:
        return replace(config, problems=tuple(checker.problems)), checker.problems
    if not real:
        return config, checker.problems  # an empty config means all defaults
    if len(real) > 1:
        checker.error(real[1], "config-documents", "the config must be a single YAML document")
    fields = checker.mapping(real[0], "the config", allowed=_TOP)
    if fields is None:
        return replace(config, problems=tuple(checker.problems)), checker.problems
    if "manifests" in fields:
        manifests = _manifest_list(checker, fields["manifests"][1], "manifests")
        if manifests:
            config = replace(config, manifests=manifests)
    if "defaults" in fields:
        folder = _defaults(checker, fields["defaults"][1], "defaults")
        if folder:
            config = replace(config, job_resource_folder=folder)
    if "policy" in fields:
        config = replace(config, policy=_policy(checker, fields["policy"][1], Policy(), "policy"))
    targets = dict(config.targets)
    if "targets" in fields:
        tnode = fields["targets"][1]
        tfields = checker.mapping(tnode, "targets")
        for name, (key, value) in (tfields or {}).items():
            if not name or any(c.isspace() for c in name):
                checker.error(key, "target-name", f"target name {name!r} must not contain spaces")
                continue
            target = _target(checker, name, key, value, config.policy)
            if target is not None:
                targets[name] = target
            else:
                targets.pop(name, None)
    config = replace(config, targets=targets)
    if "defaultTarget" in fields:
        node = fields["defaultTarget"][1]
        chosen = checker.string(node, "defaultTarget")
        if chosen is not None:
            declared = set(tfields_names(fields))
            if chosen not in targets and chosen not in declared:
                checker.error(
                    node,
                    "unknown-target",
                    f"defaultTarget {chosen!r} is not defined under targets "
                    f"(known: {', '.join(sorted(targets))})",
                )
            else:
                config = replace(config, default_target=chosen)
    problems = sorted(checker.problems, key=Problem.sort_key)
    return replace(config, problems=tuple(problems)), problems


def tfields_names(fields: dict[str, tuple[YNode, YNode]]) -> Sequence[str]:
    if "targets" not in fields or fields["targets"][1].kind != "map":
        return ()
    return [str(k.value) for k, _ in fields["targets"][1].value]
