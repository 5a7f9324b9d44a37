"""Placeholder: filled in by the issue-18 work on this feature."""

from __future__ import annotations

from typing import Any


def register(bp: Any, routes: Any) -> None:
    """Adds this feature's routes to the desk blueprint (none yet)."""
