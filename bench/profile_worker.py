"""Run a module under cProfile in every thread and write one stats file at exit (``bench.alerts --profile``).

``python -m bench.profile_worker OUT.prof -m feeds.ingest --transport stream``: the worker's evaluation runs in
three threads (the ingest loop, the reconcile thread, the alert tick), which ``python -m cProfile`` alone would
not see. Read the file with ``python -m pstats OUT.prof``. Profiling slows the process: its rates are not figures.
"""

from __future__ import annotations

import atexit
import cProfile
import pstats
import runpy
import signal
import sys
import threading
import time


def main() -> None:
    """Profile ``-m module args...`` in every thread it starts; merge the stats into ``sys.argv[1]`` at exit."""
    out, flag, module, *rest = sys.argv[1:]
    if flag != "-m":
        raise SystemExit("usage: python -m bench.profile_worker OUT.prof -m MODULE [ARGS...]")
    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()
    run = threading.Thread.run

    def profiled(self) -> None:
        prof = cProfile.Profile(time.thread_time)
        with lock:
            profiles.append(prof)
        prof.enable()
        try:
            run(self)
        finally:
            prof.disable()

    threading.Thread.run = profiled  # why: threads started by the module are profiled from their first call
    main_prof = cProfile.Profile(time.thread_time)
    profiles.append(main_prof)

    def dump() -> None:
        main_prof.disable()
        with lock:
            stats = None
            for prof in profiles:
                prof.create_stats()
                if not prof.stats:
                    continue
                stats = pstats.Stats(prof) if stats is None else (stats.add(prof) or stats)
        if stats is not None:
            stats.dump_stats(out)

    atexit.register(dump)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # a polite stop still writes the file
    sys.argv = [module, *rest]
    main_prof.enable()
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
