"""Chromium's memory-infra dumps over the DevTools protocol: each process's memory by allocator (issue 12).

The renderer's RSS and USS say how much it holds, not what: the JS heap after a GC is a small part of it. A
memory-infra dump asks every Chromium process's dump providers (PartitionAlloc, malloc, V8, Oilpan's blink_gc,
Skia, cc's tiles, font caches, shared memory, ...) for their totals, the numbers chrome://tracing shows. The
browser computes each allocator's ``effective_size`` (a suballocation, e.g. cc's tiles in shared memory or
Skia's caches in malloc, counted once, with its owner), so the top-level allocators' effective sizes add up.

A dump is a short tracing session on the browser's DevTools socket (chromedriver's ``execute_cdp_cmd`` returns
no events, and the dump arrives as ``Tracing.dataCollected`` events): ``Tracing.start`` with only the
``disabled-by-default-memory-infra`` category and no periodic triggers, ``Tracing.requestMemoryDump``,
``Tracing.end``. It costs each process a little memory while it runs (the trace buffers), so a soak that
judges memory should take few.
"""

from __future__ import annotations

import json
import urllib.request
from collections import Counter

from bench.slope import mib_fit

CATEGORY = "disabled-by-default-memory-infra"
# Chromium's process labels (trace metadata "process_name") -> the process types bench.soak reports by.
PROCESS_TYPES = {"Browser": "browser", "Renderer": "renderer", "WebUI Top Renderer": "renderer (webui)",
                 "GPU Process": "gpu-process"}
MIB = 2**20


def browser_socket(driver) -> str:
    """The browser-wide DevTools websocket of the driver's Chromium (its own debugging port)."""
    address = driver.capabilities["goog:chromeOptions"]["debuggerAddress"]
    with urllib.request.urlopen(f"http://{address}/json/version", timeout=10) as r:
        return json.load(r)["webSocketDebuggerUrl"]


def take(url: str, level: str = "light", deterministic: bool = True, timeout: float = 120) -> tuple[list[dict], bool]:
    """One global memory dump of every process of the browser at ``url`` (its DevTools socket): (the trace
    events, whether every process dumped). ``deterministic`` forces a GC in each process first, as the soak's
    JS heap figure does. Chromium reports failure when a process did not answer in time (a loaded machine):
    the processes that did are still in the events."""
    from websockets.sync.client import connect

    with connect(url, max_size=None, open_timeout=30) as ws:
        next_id = 0
        events: list[dict] = []
        complete = False

        def call(method: str, params: dict | None = None) -> dict:
            nonlocal next_id, complete
            next_id += 1
            ws.send(json.dumps({"id": next_id, "method": method, "params": params or {}}))
            while True:
                msg = json.loads(ws.recv(timeout=timeout))
                if msg.get("method") == "Tracing.dataCollected":
                    events.extend(msg["params"]["value"])
                elif msg.get("method") == "Tracing.tracingComplete":
                    complete = True
                elif msg.get("id") == next_id:
                    if "error" in msg:
                        raise RuntimeError(f"{method}: {msg['error']}")
                    return msg.get("result", {})

        call("Tracing.start", {"traceConfig": {"includedCategories": [CATEGORY], "excludedCategories": ["*"],
                                               "memoryDumpConfig": {"triggers": []}},
                               "transferMode": "ReportEvents"})
        try:
            done = call("Tracing.requestMemoryDump", {"deterministic": deterministic, "levelOfDetail": level})
        finally:
            call("Tracing.end")
            while not complete:
                msg = json.loads(ws.recv(timeout=timeout))
                if msg.get("method") == "Tracing.dataCollected":
                    events.extend(msg["params"]["value"])
                complete = msg.get("method") == "Tracing.tracingComplete"
        if not done.get("success") and not any(e.get("ph") == "v" for e in events):
            raise RuntimeError(f"Tracing.requestMemoryDump failed: {done}")
    return events, bool(done.get("success"))


def _bytes(attr: dict | None) -> int | None:
    """A dump attribute's value: scalars are hex strings of bytes (or objects)."""
    if not attr or attr.get("type") != "scalar":
        return None
    return int(attr["value"], 16)


def process_type(label: str | None) -> str:
    if label is None:
        return "unknown"
    if label.startswith("Service:"):
        return "utility"
    return PROCESS_TYPES.get(label, label.lower())


def parse(events: list[dict]) -> dict[int, dict]:
    """Trace events of one dump -> {pid: {"type", "private_footprint", "allocators": {name: {"size",
    "effective"}}, "blink_objects": {name: count}}}, one entry per process that dumped.

    Only the top-level allocators (``malloc``, ``partition_alloc``, ``v8``, ...); the browser's ``global``
    dumps (shared-memory edges between processes) are left out.
    """
    labels = {e["pid"]: e["args"]["name"] for e in events
              if e.get("ph") == "M" and e.get("name") == "process_name" and "name" in e.get("args", {})}
    out: dict[int, dict] = {}
    for e in events:
        if e.get("ph") != "v":
            continue
        dumps = e.get("args", {}).get("dumps", {})
        proc = out.setdefault(e["pid"], {"type": process_type(labels.get(e["pid"])), "private_footprint": None,
                                         "allocators": {}, "blink_objects": {}})
        totals = dumps.get("process_totals") or {}
        if "private_footprint_bytes" in totals:
            proc["private_footprint"] = int(totals["private_footprint_bytes"], 16)
        for name, dump in (dumps.get("allocators") or {}).items():
            attrs = dump.get("attrs") or {}
            if name.startswith("blink_objects/"):
                count = _bytes(attrs.get("object_count"))
                if count is not None:
                    proc["blink_objects"][name.split("/", 1)[1]] = count
            elif "/" not in name and name != "global":
                size = _bytes(attrs.get("size"))
                if size is not None:
                    eff = _bytes(attrs.get("effective_size"))
                    proc["allocators"][name] = {"size": size, "effective": size if eff is None else eff}
    return {pid: p for pid, p in out.items() if p["allocators"] or p["private_footprint"] is not None}


def by_type(processes: dict[int, dict]) -> dict[str, dict]:
    """Per-process dumps summed by process type: {type: {"processes", "answered", "private_footprint",
    "allocators": {name: effective bytes}, "allocated": sum of the effective sizes, "blink_objects"}}.

    ``answered``: processes whose own dump providers answered. The browser measures every process's private
    footprint itself; a process too busy to answer within Chromium's timeout has a footprint and no allocators.
    """
    out: dict[str, dict] = {}
    for proc in processes.values():
        t = out.setdefault(proc["type"], {"processes": 0, "answered": 0, "private_footprint": 0,
                                          "allocators": {}, "allocated": 0, "blink_objects": {}})
        t["processes"] += 1
        t["answered"] += bool(proc["allocators"])
        t["private_footprint"] += proc["private_footprint"] or 0
        for name, a in proc["allocators"].items():
            t["allocators"][name] = t["allocators"].get(name, 0) + a["effective"]
            t["allocated"] += a["effective"]
        for name, n in proc["blink_objects"].items():
            t["blink_objects"][name] = t["blink_objects"].get(name, 0) + n
    return out


def summarise(dumps: list[dict], warmup_s: float) -> dict[str, dict]:
    """Dumps [{"t": s, "types": by_type(...)}] -> {type: {series: {"first_mib", "last_mib", "peak_mib",
    "slope"}}} for each allocator, the allocators' sum ("allocated") and Chromium's private footprint; slopes
    (bench.slope.mib_fit) over the dumps at or after ``warmup_s``. An allocator missing from a dump counts 0
    there (Chromium drops an empty one's dump). A dump in which a process of the type did not answer, or with
    more or fewer processes of the type than most dumps (a spare renderer), is left out of that type's series:
    its sums are not comparable."""
    good = [d for d in dumps if d.get("types")]
    out: dict[str, dict] = {}
    for kind in sorted({k for d in good for k in d["types"]}):
        counts = Counter(d["types"][kind]["processes"] for d in good if kind in d["types"])
        usual = max(counts, key=lambda n: (counts[n], n))
        names = sorted({a for d in good for a in d["types"].get(kind, {}).get("allocators", {})})
        series: dict[str, list[tuple[float, float]]] = {"private_footprint": [], "allocated": []}
        for d in good:
            t = d["types"].get(kind)
            if t is None or t["processes"] != usual or t.get("answered", t["processes"]) != t["processes"]:
                continue
            series["private_footprint"].append((d["t"], t["private_footprint"]))
            series["allocated"].append((d["t"], t["allocated"]))
            for name in names:
                series.setdefault(name, []).append((d["t"], t["allocators"].get(name, 0)))
        out[kind] = {}
        for name, pts in series.items():
            if not pts:
                continue
            steady = [p for p in pts if p[0] >= warmup_s]
            out[kind][name] = {"first_mib": round(pts[0][1] / MIB, 1), "last_mib": round(pts[-1][1] / MIB, 1),
                               "peak_mib": round(max(y for _, y in pts) / MIB, 1), "slope": mib_fit(steady)}
    return out
