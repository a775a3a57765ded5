"""Take a page's V8 heap snapshot over the DevTools protocol and summarise it by constructor."""

from __future__ import annotations

import json
import re
import urllib.request
from collections import Counter

from websockets.sync.client import connect


def page_socket(driver) -> str:
    """The DevTools websocket of the driver's page (chromedriver's own debugging port; no second browser)."""
    address = driver.capabilities["goog:chromeOptions"]["debuggerAddress"]
    with urllib.request.urlopen(f"http://{address}/json", timeout=10) as r:
        targets = json.load(r)
    return next(t["webSocketDebuggerUrl"] for t in targets if t.get("type") == "page")


class HeapSession:
    """One DevTools connection to the page kept open across snapshots, so object ids stay comparable.

    chromedriver's execute_cdp_cmd returns no events and a snapshot arrives as HeapProfiler.addHeapSnapshotChunk
    events, so this talks to the page's DevTools socket itself. Use as a context manager.
    """

    def __init__(self, driver, timeout: float = 300):
        self.url = page_socket(driver)
        self.timeout = timeout
        self.ws = None
        self.next_id = 0

    def __enter__(self) -> "HeapSession":
        self.ws = connect(self.url, max_size=None, open_timeout=30)
        self.call("HeapProfiler.enable")
        return self

    def __exit__(self, *exc) -> None:
        self.ws.close()

    def call(self, method: str, params: dict | None = None, chunks: list | None = None) -> dict:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params or {}}))
        while True:
            msg = json.loads(self.ws.recv(timeout=self.timeout))
            if msg.get("method") == "HeapProfiler.addHeapSnapshotChunk" and chunks is not None:
                chunks.append(msg["params"]["chunk"])
            elif msg.get("id") == self.next_id:
                return msg

    def snapshot(self) -> dict:
        """A full heap snapshot (after a GC) as parsed JSON."""
        chunks: list[str] = []
        self.call("HeapProfiler.collectGarbage")
        self.call("HeapProfiler.takeHeapSnapshot", {"reportProgress": False, "captureNumericValue": False}, chunks)
        return json.loads("".join(chunks))


_SNAPSHOT_ID = re.compile(r" @\d+")  # "scope @350929": one name per closure kind, not per object


def worker_heaps(driver, timeout: float = 20) -> list[int]:
    """Used JS heap (bytes, after a GC) of each dedicated worker of the page, e.g. maplibre's tile workers.

    Their heaps are in the renderer's RSS but not in the page's heap: CDP reaches them only by attaching to them.
    """
    with connect(page_socket(driver), max_size=None, open_timeout=30) as ws:
        ws.send(json.dumps({"id": 1, "method": "Target.setAutoAttach",
                            "params": {"autoAttach": True, "waitForDebuggerOnStart": False, "flatten": True}}))
        sessions: list[str] = []
        done = False
        while not done:  # the attach events come before the command's reply
            msg = json.loads(ws.recv(timeout=timeout))
            if msg.get("method") == "Target.attachedToTarget" and msg["params"]["targetInfo"]["type"] == "worker":
                sessions.append(msg["params"]["sessionId"])
            done = msg.get("id") == 1
        used = []
        for n, sid in enumerate(sessions):
            ws.send(json.dumps({"id": 100 + 2 * n, "sessionId": sid, "method": "HeapProfiler.collectGarbage"}))
            ws.send(json.dumps({"id": 101 + 2 * n, "sessionId": sid, "method": "Runtime.getHeapUsage"}))
            while True:
                msg = json.loads(ws.recv(timeout=timeout))
                if msg.get("id") == 101 + 2 * n:
                    used.append(int(msg.get("result", {}).get("usedSize", 0)))
                    break
    return used


def summarise(snap: dict) -> dict:
    """Snapshot -> {"by_constructor": {"type:name": [count, self bytes]}, "detached": detached DOM objects}.

    Names of strings and numbers are their values, so those are grouped by type alone.
    """
    meta = snap["snapshot"]["meta"]
    fields = meta["node_fields"]
    width = len(fields)
    types = meta["node_types"][0]
    i_type, i_name, i_size = fields.index("type"), fields.index("name"), fields.index("self_size")
    i_det = fields.index("detachedness") if "detachedness" in fields else None
    nodes, strings = snap["nodes"], snap["strings"]
    count: Counter = Counter()
    size: Counter = Counter()
    detached = 0
    for k in range(0, len(nodes), width):
        kind = types[nodes[k + i_type]]
        name = kind if kind in ("string", "number", "concatenated string", "sliced string", "code", "hidden") \
            else f"{kind}:{_SNAPSHOT_ID.sub('', strings[nodes[k + i_name]][:80])}"
        count[name] += 1
        size[name] += nodes[k + i_size]
        if i_det is not None and nodes[k + i_det] == 2:
            detached += 1
    return {"by_constructor": {k: [count[k], size[k]] for k in count}, "detached": detached,
            "total_bytes": sum(size.values()), "objects": sum(count.values())}


def growth(before: dict, after: dict, top: int = 25) -> list[dict]:
    """What grew between two summaries, by bytes then count: [{name, count, bytes, d_count, d_bytes}]."""
    a, b = before["by_constructor"], after["by_constructor"]
    rows = []
    for name in set(a) | set(b):
        c0, s0 = a.get(name, (0, 0))
        c1, s1 = b.get(name, (0, 0))
        if c1 != c0 or s1 != s0:
            rows.append({"name": name, "count": c1, "bytes": s1, "d_count": c1 - c0, "d_bytes": s1 - s0})
    rows.sort(key=lambda r: (r["d_bytes"], r["d_count"]), reverse=True)
    return rows[:top]


def _name(kind: str, raw: str) -> str:
    return kind if kind in _ANONYMOUS else f"{kind}:{_SNAPSHOT_ID.sub('', raw[:80])}"


_ANONYMOUS = ("string", "number", "concatenated string", "sliced string", "code", "hidden")


def retainers(snap: dict, names: set[str]) -> Counter:
    """Edges into objects of the given constructor names, as 'owner -[edge]-> name': diff two of these to see
    which owner keeps more of them (how the map's listeners were found: maplibre's Map._oneTimeListeners)."""
    meta = snap["snapshot"]["meta"]
    fields, types = meta["node_fields"], meta["node_types"][0]
    efields, etypes = meta["edge_fields"], meta["edge_types"][0]
    w, ew = len(fields), len(efields)
    i_type, i_name, i_edges = fields.index("type"), fields.index("name"), fields.index("edge_count")
    e_type, e_name, e_to = efields.index("type"), efields.index("name_or_index"), efields.index("to_node")
    nodes, edges, strings = snap["nodes"], snap["edges"], snap["strings"]
    label = [_name(types[nodes[k + i_type]], strings[nodes[k + i_name]]) for k in range(0, len(nodes), w)]
    out: Counter = Counter()
    e = 0
    for n in range(len(label)):
        for _ in range(nodes[n * w + i_edges]):
            to = edges[e + e_to] // w
            kind = etypes[edges[e + e_type]]
            if label[to] in names and kind != "weak":
                edge = "[i]" if kind in ("element", "hidden") else strings[edges[e + e_name]]
                out[f"{label[n]} -[{kind} {edge}]-> {label[to]}"] += 1
            e += ew
    return out
