"""Numbered plain-SQL migrations, one folder per backend."""

from __future__ import annotations

from importlib import resources

__all__ = ["migrations"]


def migrations(backend: str) -> list[tuple[str, str]]:
    """``(name, sql)`` of every migration of ``backend``, in order."""
    folder = resources.files(__name__).joinpath(backend)
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [(f.name.removesuffix(".sql"), f.read_text(encoding="utf-8")) for f in files]
