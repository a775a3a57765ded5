"""bench.memdump: Chromium's memory-infra dumps read by process type and allocator, and their slopes; the soak's PSS
without file-backed pages."""

from __future__ import annotations

import pytest

from bench import memdump

MIB = 2**20


def _scalar(n: int, units: str = "bytes") -> dict:
    return {"type": "scalar", "units": units, "value": format(n, "x")}


def _events(renderer_malloc: int, renderer_v8: int, footprint: int) -> list[dict]:
    """One dump as Chromium 156 writes it: labels as metadata, totals and allocators as separate "v" events."""
    alloc = lambda size, eff=None: {"attrs": {"size": _scalar(size), "effective_size": _scalar(size if eff is None else eff)}}  # noqa: E731
    return [
        {"ph": "M", "pid": 10, "name": "process_name", "args": {"name": "Browser"}},
        {"ph": "M", "pid": 20, "name": "process_name", "args": {"name": "Renderer"}},
        {"ph": "M", "pid": 21, "name": "process_name", "args": {"name": "Renderer"}},
        {"ph": "M", "pid": 30, "name": "process_name", "args": {"name": "Service: network.mojom.NetworkService"}},
        {"ph": "X", "pid": 20, "name": "MemoryDumpManager::InvokeOnMemoryDump", "args": {}},
        {"ph": "v", "pid": 20, "name": "periodic_interval",
         "args": {"dumps": {"level_of_detail": "light",
                            "process_totals": {"private_footprint_bytes": format(footprint, "x")}}}},
        {"ph": "v", "pid": 20, "name": "periodic_interval", "args": {"dumps": {"allocators": {
            "malloc": alloc(renderer_malloc + MIB, renderer_malloc),
            "malloc/partitions": alloc(renderer_malloc),  # children are not counted again
            "v8": alloc(renderer_v8),
            "cc": alloc(4 * MIB, 2 * MIB),  # effective: the rest is owned by shared memory
            "blink_objects": {},
            "blink_objects/Node": {"attrs": {"object_count": _scalar(1300, "objects")}},
            "mojo": {},  # no size: left out
        }}}},
        {"ph": "v", "pid": 21, "name": "periodic_interval", "args": {"dumps": {
            "process_totals": {"private_footprint_bytes": format(3 * MIB, "x")},
            "allocators": {"malloc": alloc(2 * MIB), "blink_objects/Node": {"attrs": {
                "object_count": _scalar(12, "objects")}}}}}},
        {"ph": "v", "pid": 10, "name": "periodic_interval", "args": {"dumps": {
            "process_totals": {"private_footprint_bytes": format(40 * MIB, "x")},
            "allocators": {"malloc": alloc(30 * MIB), "global": alloc(99 * MIB),
                           "global/3A04": alloc(99 * MIB)}}}},
        {"ph": "v", "pid": 30, "name": "periodic_interval", "args": {"dumps": {
            "allocators": {"partition_alloc": alloc(MIB)}}}},
    ]


def test_parse_reads_each_process_top_level_allocators_by_label():
    procs = memdump.parse(_events(50 * MIB, 20 * MIB, 120 * MIB))
    assert {pid: p["type"] for pid, p in procs.items()} == {10: "browser", 20: "renderer", 21: "renderer",
                                                            30: "utility"}
    r = procs[20]
    assert r["private_footprint"] == 120 * MIB
    assert r["allocators"] == {"malloc": {"size": 51 * MIB, "effective": 50 * MIB},
                               "v8": {"size": 20 * MIB, "effective": 20 * MIB},
                               "cc": {"size": 4 * MIB, "effective": 2 * MIB}}
    assert r["blink_objects"] == {"Node": 1300}
    assert "global" not in procs[10]["allocators"]  # the browser's cross-process edges are no allocator
    assert procs[30]["private_footprint"] is None


def test_by_type_sums_the_renderers_effective_sizes():
    types = memdump.by_type(memdump.parse(_events(50 * MIB, 20 * MIB, 120 * MIB)))
    r = types["renderer"]
    assert r["processes"] == r["answered"] == 2
    assert r["private_footprint"] == 123 * MIB
    assert r["allocators"] == {"malloc": 52 * MIB, "v8": 20 * MIB, "cc": 2 * MIB}
    assert r["allocated"] == 74 * MIB  # effective sizes add up; sizes would count cc's shared part twice
    assert r["blink_objects"] == {"Node": 1312}
    assert types["browser"]["allocators"] == {"malloc": 30 * MIB}


def test_summarise_names_the_allocator_that_grows():
    # malloc grows 2 MiB an hour (48 a day), v8 stays at 20 MiB; dumps every 10 minutes for 2 hours, the
    # first 30 minutes left out as warm-up (a first dump far above the rest must not count)
    dumps = []
    for i in range(13):
        t = i * 600
        malloc = (80 if i == 0 else 50) * MIB + int(2 * MIB * t / 3600)
        dumps.append({"t": t, "types": memdump.by_type(memdump.parse(_events(malloc, 20 * MIB, malloc + 40 * MIB)))})
    dumps.insert(3, {"t": 1900, "error": "RuntimeError('timed out')"})  # a dump missed counts nothing
    # incomplete dumps: a renderer missing, or one too busy to answer (its footprint, no allocators)
    partial = memdump.parse(_events(50 * MIB, 20 * MIB, 90 * MIB))
    del partial[21]
    dumps.insert(5, {"t": 3000, "types": memdump.by_type(partial)})
    busy = memdump.parse(_events(50 * MIB, 20 * MIB, 90 * MIB))
    busy[20]["allocators"] = {}
    assert memdump.by_type(busy)["renderer"]["answered"] == 1
    dumps.insert(7, {"t": 4000, "types": memdump.by_type(busy)})
    out = memdump.summarise(dumps, warmup_s=1800)
    r = out["renderer"]
    assert r["malloc"]["slope"]["mib_per_day"] == pytest.approx(48, abs=0.5)
    assert r["malloc"]["slope"]["n"] == 10
    assert r["malloc"]["first_mib"] == 82.0 and r["malloc"]["peak_mib"] == 82.0
    assert r["v8"]["slope"]["mib_per_day"] == pytest.approx(0, abs=0.1)
    assert r["private_footprint"]["slope"]["mib_per_day"] == pytest.approx(48, abs=0.5)
    assert r["allocated"]["slope"]["mib_per_day"] == pytest.approx(48, abs=0.5)
    assert out["browser"]["malloc"]["slope"]["mib_per_day"] == pytest.approx(0, abs=0.1)


def test_an_allocator_that_appears_later_counts_zero_before():
    dumps = [{"t": i * 60, "types": {"renderer": {"processes": 1, "private_footprint": 10 * MIB,
                                                  "allocated": 0, "allocators": {} if i < 3 else {"cc": 6 * MIB},
                                                  "blink_objects": {}}}} for i in range(6)]
    cc = memdump.summarise(dumps, warmup_s=0)["renderer"]["cc"]
    assert (cc["first_mib"], cc["last_mib"]) == (0.0, 6.0)
    assert cc["slope"]["mib_per_day"] > 0


def test_a_real_dump_of_headless_chromium(tmp_path):
    """A real memory-infra dump of the Chromium the soak drives: the page's renderer reports V8, Oilpan and
    malloc, and Chromium's private footprint."""
    from bench.procs import quit_browser
    from bench.soak import start_browser

    driver = start_browser(tmp_path / "profile")
    try:
        driver.get("data:text/html,<p>wall</p><svg width='200' height='100'><circle r='40' cx='50' cy='50'/></svg>")
        for _ in range(3):  # a process that misses Chromium's dump timeout on a loaded machine fails the dump
            events, complete = memdump.take(memdump.browser_socket(driver))
            if complete:
                break
        types = memdump.by_type(memdump.parse(events))
    finally:
        quit_browser(driver)
    assert complete
    r = types["renderer"]
    assert {"v8", "blink_gc", "malloc"} <= set(r["allocators"])
    assert r["private_footprint"] > r["allocators"]["v8"] > 0
    assert r["blink_objects"]["Document"] >= 1
    assert "browser" in types and types["browser"]["allocators"]["malloc"] > 0


def test_smaps_pss_reads_the_anonymous_and_file_parts():
    from bench.soak import smaps_pss

    text = ("55d0c0a00000-7ffd1a3f1000 ---p 00000000 00:00 0                          [rollup]\n"
            "Rss:              475000 kB\nPss:              128000 kB\nPss_Dirty:         90000 kB\n"
            "Pss_Anon:          80000 kB\nPss_File:          40000 kB\nPss_Shmem:          8000 kB\n"
            "Shared_Clean:     300000 kB\nPrivate_Dirty:     85000 kB\n")
    pss = smaps_pss(text)
    assert pss["Pss_Anon"] + pss["Pss_Shmem"] == 88000 * 1024
    assert pss["Pss"] == pss["Pss_Anon"] + pss["Pss_File"] + pss["Pss_Shmem"]
    assert "Rss" not in pss and "Private_Dirty" not in pss


def test_tree_pss_own_leaves_out_the_shared_files():
    """On a real process tree: the anonymous part is positive and below the whole PSS (the interpreter's
    binary and libraries are file-backed)."""
    import os
    import subprocess
    import sys

    import psutil

    from bench.soak import tree_memory, tree_pss_own

    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        own = tree_pss_own(os.getpid())
        assert 0 < own < tree_memory(os.getpid(), "pss")
        assert psutil.Process(child.pid).ppid() == os.getpid()
    finally:
        child.communicate(b"")


def test_the_soak_keeps_an_error_with_its_traceback():
    """An ingest worker's ERROR record with the traceback under it, up to the next record (bench.soak)."""
    from bench.soak import log_warnings

    log = ("2026-12-07 12:18:41,400 INFO feeds.ingest: batch 5000\n"
           "2026-12-07 12:18:41,509 ERROR feeds.alerting: alert evaluation after a batch failed\n"
           "Traceback (most recent call last):\n"
           '  File "feeds/alerting.py", line 500, in _run\n'
           "psycopg.errors.DeadlockDetected: deadlock detected\n"
           "2026-12-07 12:18:42,000 INFO feeds.ingest: batch 5000\n"
           "2026-12-07 12:19:00,000 WARNING feeds.consumers: could not trim soak:x\n")
    assert log_warnings(log) == [
        "2026-12-07 12:18:41,509 ERROR feeds.alerting: alert evaluation after a batch failed\n"
        "Traceback (most recent call last):\n"
        '  File "feeds/alerting.py", line 500, in _run\n'
        "psycopg.errors.DeadlockDetected: deadlock detected",
        "2026-12-07 12:19:00,000 WARNING feeds.consumers: could not trim soak:x"]
