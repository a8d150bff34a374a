"""Docs are part of the product: every route and every setting is written down somewhere a user reads."""

from __future__ import annotations

import re
from pathlib import Path

from reservekit.settings import Settings
from reservekit.web.app import create_app

ROOT = Path(__file__).resolve().parents[2]
_PARAM = re.compile(r"\{[^}]*\}")


def _docs_text() -> str:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]
    return "\n".join(page.read_text(encoding="utf-8") for page in pages)


def test_every_route_in_the_openapi_document_is_in_the_docs(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path, key_pepper="0123456789abcdef" * 4))
    routes = {_PARAM.sub("{}", path.rstrip("/") or "/") for path in app.openapi_schema.paths or {}}
    docs = _PARAM.sub("{}", _docs_text())
    missing = sorted(route for route in routes if not route.startswith("/schema") and route not in docs)
    assert missing == []


def test_every_setting_is_in_the_docs() -> None:
    settings_source = (ROOT / "src" / "reservekit" / "settings.py").read_text(encoding="utf-8")
    names = set(re.findall(r"RESERVEKIT_[A-Z0-9_]+", settings_source))
    docs = _docs_text()
    assert sorted(name for name in names if name not in docs) == []
