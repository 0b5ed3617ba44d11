"""What a CI system tells us through its environment: commit, pull request, pipeline.

Used for audit-log defaults (the pull/merge request URL as ticket link, the pipeline URL in the
comment), for `--no-input` (implied whenever ``CI`` is set) and for GitHub annotations.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from js7certctl.keystore.base import AUDIT_TEXT_MAX as MAX_AUDIT_TEXT


@dataclass(frozen=True, slots=True)
class CiContext:
    system: str | None = None  # "github", "gitlab", "ci" (another system) or None
    commit: str | None = None
    change_url: str | None = None  # pull request / merge request
    pipeline_url: str | None = None

    @property
    def active(self) -> bool:
        return self.system is not None

    def default_comment(self, revision: str | None) -> str:
        comment = f"js7certctl apply {revision[:12] if revision else 'local'}"
        if self.pipeline_url:
            comment += f" (pipeline {self.pipeline_url})"
        return audit_text(comment)

    def default_ticket_link(self) -> str | None:
        link = self.change_url or self.pipeline_url
        return audit_text(link) if link else None


def audit_text(text: str) -> str:
    """Fit JOC's audit-log rules: at most 255 characters, no angle brackets."""
    cleaned = text.replace("<", "(").replace(">", ")")
    return cleaned if len(cleaned) <= MAX_AUDIT_TEXT else cleaned[: MAX_AUDIT_TEXT - 1] + "…"


def _truthy(value: str | None) -> bool:
    return bool(value) and str(value).lower() not in ("0", "false", "no")


def _github_pr_number(env: Mapping[str, str]) -> str | None:
    path = env.get("GITHUB_EVENT_PATH")
    if path:
        try:
            with open(path, encoding="utf-8") as handle:
                event = json.load(handle)
            number = (event.get("pull_request") or {}).get("number")
            if number:
                return str(number)
        except (OSError, ValueError, AttributeError):
            pass
    match = re.match(r"refs/pull/(\d+)/", env.get("GITHUB_REF", ""))
    return match.group(1) if match else None


def detect(env: Mapping[str, str]) -> CiContext:
    if _truthy(env.get("GITHUB_ACTIONS")):
        server = env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
        repository = env.get("GITHUB_REPOSITORY")
        number = _github_pr_number(env)
        change = f"{server}/{repository}/pull/{number}" if repository and number else None
        run_id = env.get("GITHUB_RUN_ID")
        pipeline = f"{server}/{repository}/actions/runs/{run_id}" if repository and run_id else None
        return CiContext("github", env.get("GITHUB_SHA"), change, pipeline)
    if _truthy(env.get("GITLAB_CI")):
        project = env.get("CI_MERGE_REQUEST_PROJECT_URL") or env.get("CI_PROJECT_URL")
        iid = env.get("CI_MERGE_REQUEST_IID")
        change = f"{project}/-/merge_requests/{iid}" if project and iid else None
        return CiContext("gitlab", env.get("CI_COMMIT_SHA"), change, env.get("CI_PIPELINE_URL"))
    if _truthy(env.get("CI")):
        return CiContext("ci", None, None, None)
    return CiContext()


def github_annotation(
    severity: str, path: str, line: int, column: int, title: str, message: str
) -> str:
    """A GitHub Actions workflow command that annotates a file line."""

    def prop(value: str) -> str:
        return (
            value.replace("%", "%25")
            .replace("\r", "%0D")
            .replace("\n", "%0A")
            .replace(":", "%3A")
            .replace(",", "%2C")
        )

    def data(value: str) -> str:
        return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")

    level = "error" if severity == "error" else "warning"
    return (
        f"::{level} file={prop(path)},line={line},col={column},title={prop(title)}::{data(message)}"
    )
