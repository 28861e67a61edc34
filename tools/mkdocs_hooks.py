"""MkDocs hooks for the docs site (mkdocs.yml ``hooks:``): the docstrings are written for Python's
own tools, with Sphinx roles (``:class:`Translator```); the rendered API pages show the name alone."""

from __future__ import annotations

import re
from typing import Any

_ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj):(?=<code>)")


def on_post_page(output: str, **kwargs: Any) -> str:
    """Drop a Sphinx role's prefix in front of the code it marks (``:class:<code>X</code>`` -> ``<code>X</code>``)."""
    return _ROLE.sub("", output)
