"""Commands for secrets and keys: `encrypt`, `decrypt`, `keys new` (registered on the app)."""

from __future__ import annotations

from js7certctl.cli import app

__all__ = ["app"]
