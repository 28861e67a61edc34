"""The guide is a site that builds with warnings as errors (a broken link, a missing page or a
stale API reference fails), and the README's links lead somewhere."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_docs_site_builds_with_warnings_as_errors(tmp_path):
    mkdocs = shutil.which("mkdocs") or str(Path(sys.executable).parent / "mkdocs")
    out = subprocess.run([mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")], cwd=ROOT,
                         capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    api = (tmp_path / "site" / "api" / "index.html").read_text()
    assert "Translator" in api and "ConvertOptions" in api and "load_config" in api  # the reference is generated


def test_every_relative_link_of_the_readme_and_architecture_leads_to_a_file():
    for page in ("README.md", "ARCHITECTURE.md", "datasets/README.md"):
        text = (ROOT / page).read_text()
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if "://" in target:
                continue
            assert (ROOT / page).parent.joinpath(target).exists(), f"{page} links to {target}, which does not exist"


def test_the_readme_reads_in_five_minutes():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 160, f"README.md has {len(lines)} lines; details belong in docs/"
    assert max(len(line) for line in lines if not line.startswith("|")) <= 130
