"""A report's independent per-run work (matching, TIDE) on every core.

Each item runs in its own worker process, whole, so its numbers are the
ones a serial build computes; results come back in the items' order.
Workers are spawned, not forked: the report process has OpenMP threads
running (numba's parallel kernels), which a forked child cannot use. They
run numba single-threaded (the cores are already shared out) and live for
one :func:`map_runs` call. ``REPORT_WORKERS=1`` keeps everything in the
report process.
"""
import multiprocessing
import os
from typing import Callable, List, Sequence


def workers() -> int:
    """Worker processes: ``REPORT_WORKERS``, default the CPU count."""
    value = os.environ.get('REPORT_WORKERS', '')
    return max(1, int(value) if value.strip() else (os.cpu_count() or 1))


def _single_threaded() -> None:
    try:
        import numba
        numba.set_num_threads(1)
    except ImportError:
        pass


def map_runs(fn: Callable, items: Sequence[tuple]) -> List:
    """``[fn(*item) for item in items]``, on :func:`workers` processes when
    there are two items or more.

    Args:
        fn: A module-level function (it is imported by name in the
            workers); it should catch what it expects to fail and return
            it, as an exception ends the whole map.
        items: Its arguments, one tuple per call (picklable).
    """
    items = list(items)
    n = min(workers(), len(items))
    if n <= 1:
        return [fn(*item) for item in items]
    ctx = multiprocessing.get_context('spawn')
    with ctx.Pool(n, initializer=_single_threaded) as pool:
        return pool.starmap(fn, items, chunksize=1)
