"""Run Lighthouse on every page of the embedded default: ``PYTHONPATH=. .venv/bin/python -m bench.lighthouse``.

Starts ``python app.py`` (the embedded default: in-process bus, SQLite, simulator) in a temporary folder on free
ports, signs in as its demo admin (the password it prints once), lets the simulator run, then runs Lighthouse
(npm ``lighthouse``, pinned in package.json) with the system Chromium on /, /wall, /district/<code>,
/dispatch, /briefings (desktop preset) and /m (mobile preset), passing the session cookie by --extra-headers.
With ``--baseline-commit REF`` it measures REF's tree the same way first (bench.baseline's worktree).
Targets are reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Iterator

import requests

from bench.baseline import ROOT, alternating
from bench.procs import free_port

PAGES = (("/", "desktop"), ("/wall", "desktop"), ("/district/440304", "desktop"), ("/dispatch", "desktop"),
         ("/briefings", "desktop"), ("/m", "mobile"))
TARGETS = "accessibility >= 95 everywhere; /m LCP <= 3 s (mobile); performance >= 80 on /, /wall, /district"
LIGHTHOUSE = ROOT / "node_modules" / ".bin" / "lighthouse"
CHROME = os.environ.get("CHROME_PATH", "/usr/bin/chromium")
_DEMO = re.compile(r"^\s+(demo-admin)\s+admin\s+(\S+)\s*$")


def answers(url: str) -> bool:
    """Tell whether the server at ``url`` answers HTTP yet."""
    try:
        requests.get(url + "/login", timeout=5)
        return True
    except requests.ConnectionError:
        return False


@contextmanager
def embedded(tree: Path, warm_s: float) -> Iterator[tuple[str, str]]:
    """Run ``tree``'s embedded default in a temporary folder; yield its URL and a signed-in session cookie."""
    tmp = Path(tempfile.mkdtemp(prefix="panorama-lh-"))
    port, ws_port = free_port(), free_port()
    env = {**os.environ, "PYTHONPATH": str(tree), "PANORAMA_PORT": str(port), "PANORAMA_WS_PORT": str(ws_port),
           "DATABASE_URL": f"sqlite:///{tmp / 'panorama.db'}", "PYTHONUNBUFFERED": "1"}
    env.pop("REDIS_URL", None)
    log = open(tmp / "app.log", "w+")
    proc = subprocess.Popen([sys.executable, str(tree / "app.py")], cwd=tmp, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        password = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            text = (tmp / "app.log").read_text()
            password = password or next((m.group(2) for m in map(_DEMO.match, text.splitlines()) if m), None)
            if password and "open http" in text and answers(url):  # printed just before it listens
                break
            time.sleep(0.5)
        else:
            raise RuntimeError(f"the embedded default did not start:\n{(tmp / 'app.log').read_text()[-3000:]}")
        res = requests.post(url + "/api/session", json={"username": "demo-admin", "password": password},
                            headers={"Origin": url}, timeout=30)
        res.raise_for_status()
        time.sleep(warm_s)  # the simulator's first minutes of events, so the pages have something to draw
        yield url, f"panorama_session={res.cookies['panorama_session']}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


def lighthouse(url: str, cookie: str, preset: str, keep: Path | None = None) -> dict:
    """Run Lighthouse once on ``url`` with ``preset`` (``desktop`` or ``mobile``); return its figures."""
    # uses-text-compression re-reads every body over DevTools, which times out on plotly on the busy VM; the
    # bytes that travelled are in total-byte-weight anyway.
    argv = [str(LIGHTHOUSE), url, "--output=json", "--output-path=stdout", "--quiet",
            "--only-categories=performance,accessibility", "--skip-audits=uses-text-compression",
            "--chrome-flags=--headless=new --no-sandbox", "--max-wait-for-load=90000",
            f"--extra-headers={json.dumps({'Cookie': cookie})}"]
    if preset == "desktop":
        argv.append("--preset=desktop")  # the mobile form factor and throttling are Lighthouse's default
    for attempt in range(3):  # a DevTools call can time out on a loaded machine: try again, say so
        try:
            out = subprocess.run(argv, env={**os.environ, "CHROME_PATH": CHROME}, capture_output=True, text=True,
                                 timeout=400)
        except subprocess.TimeoutExpired:
            print(f"  lighthouse {url} took over 400 s (attempt {attempt + 1})", file=sys.stderr)
            continue
        if not out.returncode:
            break
        print(f"  lighthouse {url} failed (attempt {attempt + 1}): {out.stderr.strip()[-300:]}", file=sys.stderr)
    else:  # a miss is counted and said, and the run goes on to the other pages
        return {"failed": "3 attempts failed (on a loaded machine: Lighthouse's 'the page stopped responding')"}
    report = json.loads(out.stdout)
    if keep:
        keep.write_text(out.stdout)
    audits, cats = report["audits"], report["categories"]
    failing = sorted(a for a in (r["id"] for r in cats["accessibility"]["auditRefs"])
                     if audits[a].get("score") == 0)
    return {"performance": round(100 * (cats["performance"]["score"] or 0)),
            "accessibility": round(100 * (cats["accessibility"]["score"] or 0)),
            "fcp_s": round(audits["first-contentful-paint"]["numericValue"] / 1000, 2),
            "lcp_s": round(audits["largest-contentful-paint"]["numericValue"] / 1000, 2),
            # tasks' time past 50 ms between FCP and interactive; all main-thread work from navigation start to
            # the trace's end (which a live page that never falls quiet pushes out)
            "tbt_ms": round(audits["total-blocking-time"]["numericValue"]),
            "tti_s": round(audits["interactive"]["numericValue"] / 1000, 1),
            "mainthread_s": round(audits["mainthread-work-breakdown"]["numericValue"] / 1000, 1),
            "bytes": int(audits["total-byte-weight"]["numericValue"]),
            "failing": failing}


def measure(tree: Path, warm_s: float, reports: Path | None = None, pages=PAGES) -> dict[str, dict]:
    """Start ``tree``'s embedded default and run Lighthouse on each page; return figures by page."""
    with embedded(tree, warm_s) as (url, cookie):
        results = {}
        for path, preset in pages:
            keep = reports / f"{path.strip('/').replace('/', '-') or 'panorama'}.json" if reports else None
            before = os.getloadavg()[0]
            results[path] = {"preset": preset, **lighthouse(url + path, cookie, preset, keep)}
            # the machine is shared: the 1-minute load average as the page's run began and ended
            results[path]["load"] = [round(before, 2), round(os.getloadavg()[0], 2)]
            print(f"  {path:<18} {preset:<8} {fmt(results[path])}", file=sys.stderr, flush=True)
        return results


def fmt(r: dict) -> str:
    """Return one page's figures on one line."""
    if r.get("failed"):
        return f"NOT MEASURED: {r['failed']}  load {r['load'][0]:.1f}-{r['load'][1]:.1f}"
    return (f"perf {r['performance']:>3}  a11y {r['accessibility']:>3}  FCP {r['fcp_s']:>4.2f} s  "
            f"LCP {r['lcp_s']:>5.2f} s  TBT {r['tbt_ms']:>6} ms  TTI {r['tti_s']:>5.1f} s  "
            f"main thread {r['mainthread_s']:>5.1f} s  {r['bytes'] / 1e6:>5.2f} MB  load {r['load'][0]:.1f}-{r['load'][1]:.1f}" + (f"  failing: {', '.join(r['failing'])}" if r["failing"] else ""))


def folder(reports: str | None, name: str) -> Path | None:
    """Return (made) the folder for one tree's reports, or None when they are not kept."""
    if not reports:
        return None
    path = Path(reports) / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.lighthouse", description=__doc__.split("\n\n")[0])
    p.add_argument("--baseline-commit", metavar="REF", help="also measure REF's tree, first, the same way")
    p.add_argument("--warm-s", type=float, default=15, help="seconds of simulated city before measuring")
    p.add_argument("--output", metavar="FILE", help="also write the figures as JSON to FILE")
    p.add_argument("--pages", help="comma-separated paths of PAGES to measure (default: all of them)")
    p.add_argument("--reports", metavar="DIR", help="keep each page's whole Lighthouse report (JSON) in DIR")
    p.add_argument("--baseline-tree", metavar="DIR", help="also measure the checkout in DIR (instead of a commit's)")
    p.add_argument("--rounds", type=int, default=1,
                   help="measure the baseline and this tree this many times each, alternating (the load drifts)")
    args = p.parse_args(argv)
    if not LIGHTHOUSE.exists():
        print("lighthouse is not installed: run `npm ci` first", file=sys.stderr)
        return 2
    pages = tuple(p for p in PAGES if not args.pages or p[0] in args.pages.split(","))
    load = os.getloadavg()
    runs = {}
    with ExitStack() as stack:
        for label, tree in alternating(stack, args.baseline_tree, args.baseline_commit, args.rounds):
            runs[label] = measure(tree, args.warm_s, folder(args.reports, label.replace(" #", "-")), pages)
    print(f"\nLighthouse {subprocess.run([str(LIGHTHOUSE), '--version'], capture_output=True, text=True).stdout.strip()}"
          f", Chromium {CHROME}; load average at start {load[0]:.2f} on {os.cpu_count()} cores. Targets: {TARGETS}")
    for path, _ in pages:
        for name, results in runs.items():
            print(f"{path:<18} {name:<12} {fmt(results[path])}")
    if args.output:
        Path(args.output).write_text(json.dumps(runs, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
