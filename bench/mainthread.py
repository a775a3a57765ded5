"""Count what a live page's main thread does: ``PYTHONPATH=. .venv/bin/python -m bench.mainthread``.

Starts the embedded default as bench.lighthouse does (and ``--baseline-commit REF``'s tree first), opens each page
in headless Chromium signed in as the demo admin, and for ``--seconds`` from navigation start records: the long
tasks (over 50 ms, the browser's PerformanceObserver), each graph's Plotly redraws (``Plotly.react`` calls and
their synchronous time), the Dash store writes from the page's own code (``dash_clientside.set_props``), Dash's
redux actions (each a pass over every component of the page), the largest-paint entries, and a CPU profile
(DevTools' sampling profiler) whose heaviest scripts it prints. ``--baseline-tree DIR`` measures a checkout
already there instead of a commit's, and ``--rounds N`` alternates the two trees N times (the load drifts).
Lighthouse's scores swing with the machine's load; these counts (redraws, writes) do not, so they say what a
change removed even on a loaded machine.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from bench.baseline import alternating
from bench.lighthouse import embedded

PAGES = ("/", "/wall", "/district/440304")
# Installed before any page script: records long tasks and largest paints, and wraps Plotly and set_props.
PROBE_JS = """
window.__mt = {lt: [], lcp: [], calls: {}};
new PerformanceObserver((l) => { for (const e of l.getEntries()) __mt.lt.push([e.startTime, e.duration]); })
    .observe({type: 'longtask', buffered: true});
new PerformanceObserver((l) => { for (const e of l.getEntries()) __mt.lcp.push([e.startTime, e.size,
    e.element ? e.element.tagName + '.' + e.element.className : null]); })
    .observe({type: 'largest-contentful-paint', buffered: true});
(function () {
    const rec = (k, ms) => { const c = __mt.calls[k] = __mt.calls[k] || [0, 0]; c[0] += 1; c[1] += ms; };
    const name = (gd) => (gd && gd.parentElement && gd.parentElement.id) || (gd && gd.id) || '?';
    let plotly;
    Object.defineProperty(window, 'Plotly', {configurable: true, get() { return plotly; }, set(v) {
        plotly = v;
        const react = v && v.react;
        if (react && !react.__mt) {
            v.react = function (gd) {
                const t0 = performance.now();
                const out = react.apply(this, arguments);
                rec('Plotly.react ' + name(gd), performance.now() - t0);
                return out;
            };
            v.react.__mt = true;
        }
    }});
    const wrap = setInterval(() => {
        const dc = window.dash_clientside;
        if (dc && dc.set_props && !dc.set_props.__mt) {
            const setProps = dc.set_props;
            dc.set_props = function (id) { rec('set_props ' + JSON.stringify(id), 0); return setProps.apply(this, arguments); };
            dc.set_props.__mt = true;
        }
        // Dash's actions: each one is a pass of react-redux over every component of the page
        const store = window.store;
        if (store && store.dispatch && !store.dispatch.__mt) {
            const dispatch = store.dispatch;
            store.dispatch = function (a) {
                __mt.actions = (__mt.actions || 0) + 1;
                return dispatch.apply(this, arguments);
            };
            store.dispatch.__mt = true;
        }
        if (dc && dc.set_props && dc.set_props.__mt && store && store.dispatch.__mt) {
            clearInterval(wrap);
        }
    }, 50);
})();
"""


def browser():
    """Return a headless Chromium driven by Selenium, at a desktop size."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1350,940",
                f"--user-data-dir={tempfile.mkdtemp(prefix='panorama-mt-')}"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    driver.set_page_load_timeout(120)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": PROBE_JS})
    return driver


def heaviest(profile: dict, top: int) -> list[tuple[str, float]]:
    """Return the ``top`` scripts by self time in a DevTools CPU profile, in seconds."""
    nodes = {n["id"]: n for n in profile["nodes"]}
    spent: collections.Counter = collections.Counter()
    for sample, dt in zip(profile["samples"], profile["timeDeltas"]):
        frame = nodes[sample]["callFrame"]
        url = frame["url"].split("?")[0].rsplit("/", 1)[-1] or frame["functionName"] or "?"
        spent[url] += dt / 1e6
    return [(k, round(v, 2)) for k, v in spent.most_common(top)]


def measure(tree: Path, pages, seconds: float, warm_s: float) -> dict:
    """Start ``tree``'s embedded default and record each page's main thread for ``seconds``."""
    out = {}
    with embedded(tree, warm_s) as (url, cookie):
        driver = browser()
        try:
            driver.get(url + "/login")
            name, value = cookie.split("=", 1)
            driver.add_cookie({"name": name, "value": value})
            for path in pages:
                load = os.getloadavg()[0]
                driver.execute_cdp_cmd("Profiler.enable", {})
                driver.execute_cdp_cmd("Profiler.start", {})
                driver.get(url + path)
                time.sleep(seconds)  # the window measured: from navigation start, the page left alone
                profile = driver.execute_cdp_cmd("Profiler.stop", {})["profile"]
                mt = driver.execute_script("return window.__mt")
                long_tasks = [(s, d) for s, d in mt["lt"] if s <= seconds * 1000]
                out[path] = {
                    "actions": mt.get("actions", 0),
                    "long_tasks": len(long_tasks),
                    "blocking_ms": round(sum(max(0.0, d - 50) for _, d in long_tasks)),
                    "longest_ms": round(max((d for _, d in long_tasks), default=0)),
                    "calls": {k: [n, round(ms)] for k, (n, ms) in sorted(mt["calls"].items())},
                    "lcp": [[round(s), size, el] for s, size, el in mt["lcp"]],
                    "scripts_s": heaviest(profile, 8),
                    "load": [round(load, 2), round(os.getloadavg()[0], 2)],
                }
                print(f"  {path}: {json.dumps(out[path], ensure_ascii=False)}", file=sys.stderr, flush=True)
        finally:
            driver.quit()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.mainthread", description=__doc__.split("\n\n")[0])
    p.add_argument("--baseline-commit", metavar="REF", help="also measure REF's tree, first, the same way")
    p.add_argument("--pages", default=",".join(PAGES), help="comma-separated paths")
    p.add_argument("--seconds", type=float, default=20, help="how long each page is watched from navigation start")
    p.add_argument("--warm-s", type=float, default=15, help="seconds of simulated city before measuring")
    p.add_argument("--baseline-tree", metavar="DIR", help="also measure the checkout in DIR (instead of a commit's)")
    p.add_argument("--rounds", type=int, default=1,
                   help="measure the baseline and this tree this many times each, alternating (the load drifts)")
    p.add_argument("--output", metavar="FILE", help="also write the figures as JSON to FILE")
    args = p.parse_args(argv)
    pages = args.pages.split(",")
    runs = {}
    with ExitStack() as stack:
        for label, tree in alternating(stack, args.baseline_tree, args.baseline_commit, args.rounds):
            runs[label] = measure(tree, pages, args.seconds, args.warm_s)
    print(f"\nfirst {args.seconds:.0f} s of each page from navigation start; {os.cpu_count()} cores")
    for path in pages:
        for name, results in runs.items():
            r = results[path]
            redraws = {k.removeprefix("Plotly.react "): v for k, v in r["calls"].items() if k.startswith("Plotly")}
            writes = sum(n for k, (n, _) in r["calls"].items() if k.startswith("set_props"))
            print(f"{path:<18} {name:<12} long tasks {r['long_tasks']:>3}  past 50 ms {r['blocking_ms']:>6} ms  "
                  f"longest {r['longest_ms']:>5} ms  store writes {writes:>3}  Dash actions {r['actions']:>5}  "
                  f"redraws {redraws}  "
                  f"load {r['load'][0]:.1f}-{r['load'][1]:.1f}")
    if args.output:
        Path(args.output).write_text(json.dumps(runs, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
