"""The rooms of the code: the layers import only downward and nothing below the web layer imports Flask or Dash
(the contracts are in pyproject.toml, checked by import-linter on the real import graph)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_import_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stdout + out.stderr
    assert "2 kept, 0 broken" in out.stdout, out.stdout


def test_a_broken_contract_is_caught(tmp_path):
    """The check can fail: a copy of the tree where storage imports the web layer breaks the layers contract."""
    tree = tmp_path / "tree"
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "dashboard", "feeds", "callbacks",
                            "layouts", "pyproject.toml"], cwd=ROOT, check=True, capture_output=True,
                           text=True).stdout.split()
    for rel in files:
        src = ROOT / rel
        if src.is_file() and (rel.endswith(".py") or rel == "pyproject.toml"):
            dst = tree / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(src.read_bytes())
    queries = tree / "dashboard/storage/queries.py"
    queries.write_text(queries.read_text() + "\nfrom dashboard.web import auth  # noqa: E402,F401\n")
    lint = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run([str(lint), "--no-cache"], cwd=tree, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(tree)})
    assert out.returncode != 0
    assert "dashboard.storage.queries -> dashboard.web.auth" in out.stdout
