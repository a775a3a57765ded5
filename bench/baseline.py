"""Check out a baseline commit beside this tree, so a benchmark runs both trees' own code in the same run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()


def before(path: str) -> str:
    """Return the commit before the one that added ``path`` (what a change is measured against), or HEAD."""
    added = git("log", "--format=%H", "--diff-filter=A", "--", path).split()
    return f"{added[-1]}^" if added else "HEAD"


@contextmanager
def baseline_tree(ref: str, *scripts: Path) -> Iterator[Path]:
    """Yield a temporary worktree of ``ref`` holding this tree's ``scripts`` (the benchmark), removed after."""
    tmp = Path(tempfile.mkdtemp(prefix="panorama-baseline-"))
    tree = tmp / "tree"
    git("worktree", "add", "--detach", str(tree), ref)
    try:
        for script in scripts:
            shutil.copy(script, tree / script.relative_to(ROOT))
        yield tree
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


def run_in(tree: Path, module: str, *args: str) -> str:
    """Run ``python -m module args`` with ``tree``'s code; return its stdout (stderr passes through)."""
    out = subprocess.run([sys.executable, "-m", module, *args], cwd=tree,
                         env={**os.environ, "PYTHONPATH": str(tree)}, stdout=subprocess.PIPE, text=True)
    if out.returncode:
        raise RuntimeError(f"{module} in {tree} failed ({out.returncode})")
    return out.stdout


def alternating(stack, tree: str | None, commit: str | None, rounds: int) -> Iterator[tuple[str, Path]]:
    """Yield (label, tree) to measure: the baseline (an existing ``tree``, else ``commit`` checked out for the
    run and removed by ``stack``, else none) and this tree, alternately ``rounds`` times (the load drifts)."""
    base = Path(tree) if tree else stack.enter_context(baseline_tree(commit)) if commit else None
    for n in range(1, rounds + 1):
        suffix = f" #{n}" if rounds > 1 else ""
        for name, where in (("baseline", base), ("this", ROOT)):
            if where is not None:
                print(f"{name}{suffix} ({where}):", file=sys.stderr)
                yield name + suffix, where
