"""Time ingest's validation (``feeds.schema.parse_message``) against the baseline commit's, in the same run.

``PYTHONPATH=. .venv/bin/python -m bench.schema``: the same messages (the city mix, 20 events a message, as the
simulator and the soak publish them) parsed by this tree's code and by the baseline's (by default the commit
before msgspec replaced pydantic), each in a process of its own, best of ``--rounds``. Clock: around the loop
over every message (decode, validate, the transport's rules), divided by the events that came out valid.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from bench.baseline import ROOT, baseline_tree, before, git, run_in


def child(events: int, per_message: int, rounds: int) -> dict:
    """Parse the messages with this tree's code; return µs per event and how many were valid."""
    import gc

    import orjson

    from bench.ingest import generate_events
    from dashboard.core.city import load_city
    from feeds.schema import parse_message

    aliases = load_city("shenzhen").aliases
    by_domain: dict[str, list] = {}
    for domain, ev in generate_events(events, 7, 600, mix="city"):
        ev.pop("domain", None)
        by_domain.setdefault(domain, []).append(ev)
    messages = [(d, orjson.dumps(evs[i:i + per_message])) for d, evs in by_domain.items()
                for i in range(0, len(evs), per_message)]
    now = int(time.time() * 1000) + 3_600_000
    best, valid = float("inf"), 0
    gc.freeze()  # as the shipped worker does
    for _ in range(rounds):
        t = time.perf_counter()
        valid = sum(len(parse_message(raw, d, aliases, now).events) for d, raw in messages)
        best = min(best, time.perf_counter() - t)
    return {"events": events, "valid": valid, "us_per_event": round(best / max(1, valid) * 1e6, 2)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.schema", description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--per-message", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--baseline", help="commit to compare with (default: the one before msgspec)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.events, args.per_message, args.rounds)))
        return 0
    ref = args.baseline or before_msgspec()
    argv_child = ["--child", "--events", str(args.events), "--per-message", str(args.per_message),
                  "--rounds", str(args.rounds)]
    with baseline_tree(ref, Path(__file__), ROOT / "bench" / "baseline.py") as tree:
        base = json.loads(run_in(tree, "bench.schema", *argv_child).splitlines()[-1])
    now = json.loads(run_in(ROOT, "bench.schema", *argv_child).splitlines()[-1])
    print(f"parse_message, {args.events:,} events of the city mix, {args.per_message} a message, best of "
          f"{args.rounds} (µs an event: decode, validate, the transport's rules)")
    print(f"  baseline {git('rev-parse', '--short', ref)}: {base['us_per_event']:.2f} µs ({base['valid']:,} valid)")
    print(f"  now      {git('rev-parse', '--short', 'HEAD')}: {now['us_per_event']:.2f} µs ({now['valid']:,} valid)"
          f"  {base['us_per_event'] / now['us_per_event']:.1f}x")
    return 0


def before_msgspec() -> str:
    """The commit before msgspec entered requirements.txt."""
    for sha in git("log", "--format=%H", "--", "requirements.txt").split():
        if "msgspec" not in git("show", f"{sha}^:requirements.txt"):
            return f"{sha}^"
    return before("requirements.txt")


if __name__ == "__main__":
    sys.exit(main())
