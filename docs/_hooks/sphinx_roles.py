"""MkDocs hook: render the Sphinx roles used in the docstrings as plain code.

The docstrings are Google style, rendered as Markdown by mkdocstrings, but refer to
other objects the Sphinx way (``:class:`PostCommitError```), which Markdown would show
as ``:class:`` followed by the code span. This drops the role and keeps the code span.
It also turns reStructuredText's ``Text::`` (a colon before a literal block) into
``Text:``.
"""

from __future__ import annotations

import re
from typing import Any

_ROLE = re.compile(r":(?:class|meth|func|attr|exc|mod|data|obj):(<code>)")
_LITERAL_COLON = re.compile(r"::</p>")


def on_page_content(html: str, **_: Any) -> str:
    """Rewrite the roles in a page's HTML (only API reference pages have any)."""
    return _LITERAL_COLON.sub(":</p>", _ROLE.sub(r"\1", html))
