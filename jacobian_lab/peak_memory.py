"""The peak memory a run allocates, traced with `tracemalloc`, which is the process's, not the run's.

`measure` and `compare` read ``peak_bytes`` here. Tracing is shared with the
caller and with other threads, so:

* a caller's own tracing is kept on (its peak is reset to read the run's), not
  stopped;
* runs may overlap (in threads, or one inside another's f): one that resets the
  peak first hands the peak so far to those in progress, and tracing started
  here stops when the last of them ends, and no other thread is running
  jacobian_lab: on CPython before 3.12, stopping it while another thread
  allocates through NumPy can crash the process (that thread's allocation hook
  reads the tables the stop frees). Until then a helper thread, started with the
  tracing, waits to stop it (and stops what a Ctrl-C leaves on).

Threads computing with NumPy outside jacobian_lab are not seen; beside them,
``tracemalloc.start()`` before measuring keeps tracing on throughout.

>>> import numpy as np
>>> result, peak = traced_peak(lambda: np.ones(1 << 20).sum())
>>> float(result), peak >= 8 << 20
(1048576.0, True)
"""
from __future__ import annotations

import _thread
import sys
import threading
import time
import tracemalloc

_LOCK = threading.Lock()  # held for the bookkeeping only, never while a run runs
_runs: dict[object, int] = {}  # each run in progress -> the largest peak read before another run reset it
_started = False  # tracing is on because a run here started it (and no one has stopped it yet)
_stopping = False  # a helper thread is waiting to stop it


def traced_peak(run):
    """``(run(), the peak bytes traced while it ran)``, above what was allocated when it began."""
    global _started
    token = object()
    try:
        with _LOCK:
            current = _begin(token)
        result = run()
        with _LOCK:
            peak = max(tracemalloc.get_traced_memory()[1], _runs[token])
    finally:
        with _LOCK:
            _runs.pop(token, None)
            if _started and not _runs and not _others_running():  # else the helper thread stops it
                tracemalloc.stop()
                _started = False
    return result, max(peak - current, 0)  # f may have stopped a caller's tracing: nothing traced then


def _begin(token) -> int:
    """Trace from here for the run `token`: the bytes traced now (the run's peak is read above them)."""
    global _started, _stopping
    if tracemalloc.is_tracing():
        current, peak = tracemalloc.get_traced_memory()
        for other in _runs:  # the reset would lose their peaks so far
            _runs[other] = max(_runs[other], peak)
        tracemalloc.reset_peak()
    else:
        _started = True
        if not _stopping:  # first: it stops what an interrupt leaves on. _thread's start, one C call:
            _stopping = True  # threading's waits on a Condition, which a Ctrl-C breaks (RuntimeError)
            _thread.start_new_thread(_wait_and_stop, ())
        tracemalloc.start()
        current = 0
    _runs[token] = 0
    return current


def _wait_and_stop() -> None:
    """While tracing started here is on: stop it once no run is in progress and no other thread runs
    jacobian_lab. The last run to end stops it itself where it can; this stops it where another thread was
    inside jacobian_lab then, or a Ctrl-C fell between the run's end and the stop."""
    global _started, _stopping
    try:
        while True:
            time.sleep(0.005)
            with _LOCK:
                if _started and not _runs and not _others_running():
                    tracemalloc.stop()
                    _started = False
                if not _started:
                    _stopping = False  # under the lock: a run starting tracing next starts a helper of its own
                    return
    except BaseException:  # (at the interpreter's exit) the next run to start tracing starts another
        _stopping = False
        raise


def _others_running() -> bool:
    """Whether a thread other than this one is running jacobian_lab's code (one of its frames is this
    package's): it may be allocating through NumPy."""
    me = threading.get_ident()
    for ident, frame in sys._current_frames().items():
        while ident != me and frame is not None:
            if frame.f_globals.get("__name__", "").startswith("jacobian_lab.") and frame.f_globals is not globals():
                return True  # (this module's frames alone are a helper thread's, or a run's bookkeeping)
            frame = frame.f_back
    return False
