"""Plain-file HTML templates with `{{ name }}` fields, and the static files' cache-busting tags.

A field is looked up in the render context first (values are HTML-escaped, except names ending
in `_html`, which the caller built from escaped parts, and `_json`, which `script_json` made
safe for a `<script type="application/json">` block), then in the message catalogue (`web.*`
and other keys, translated and escaped). An unknown field is an error, not an empty string.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import i18n

WEB_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"

_FIELD = re.compile(r"\{\{\s*([A-Za-z0-9_.]+)\s*\}\}")


@dataclass(frozen=True)
class Assets:
    templates: dict[str, str]
    static_tags: dict[str, str]  # file name -> short content hash, for ?v= cache busting

    def static_url(self, name: str) -> str:
        return f"/static/{name}?v={self.static_tags[name]}"


def load_assets() -> Assets:
    """Read every template and hash every static file (blocking: call it off the loop)."""
    templates = {p.name: p.read_text(encoding="utf-8") for p in TEMPLATES_DIR.glob("*.html")}
    tags = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:10]
        for p in STATIC_DIR.iterdir()
        if p.is_file()
    }
    return Assets(templates, tags)


def script_json(value: object) -> str:
    """JSON that cannot end the <script> element it is embedded in."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def render(template: str, lang: str, context: Mapping[str, object]) -> str:
    def field(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in context:
            value = str(context[name])
            return value if name.endswith(("_html", "_json")) else html.escape(value)
        if name in i18n.catalogue(i18n.DEFAULT_LANGUAGE):
            text = i18n.t(name, lang)
            if _placeholders(text):
                raise KeyError(f"message {name!r} needs parameters: pass it in the context")
            return html.escape(text)
        raise KeyError(f"template field {name!r} is not in the context or the catalogue")

    return _FIELD.sub(field, template)
