"""The peak memory a run allocates, traced with `tracemalloc`, which is the process's, not the run's.

`measure` and `compare` read ``peak_bytes`` here. Tracing is shared with the
caller and with other threads, so:

* a caller's own tracing is kept on (its peak is reset to read the run's), not
  stopped;
* one traced run goes at a time (a second one's stop would end the first's
  tracing), and a run inside another's f gives its peak on to the enclosing one;
* tracing started here is stopped when no other thread is running jacobian_lab:
  on CPython before 3.12, stopping it while another thread allocates through
  NumPy can crash the process (that thread's allocation hook reads the tables
  the stop frees). Until then a helper thread waits to stop it.

Threads computing with NumPy outside jacobian_lab are not seen; beside them,
``tracemalloc.start()`` before measuring keeps tracing on throughout.

>>> import numpy as np
>>> result, peak = traced_peak(lambda: np.ones(1 << 20).sum())
>>> float(result), peak >= 8 << 20
(1048576.0, True)
"""
from __future__ import annotations

import sys
import threading
import time
import tracemalloc

_LOCK = threading.RLock()
_started = False  # tracing is on because a run here started it (and no one has stopped it yet)
_carried: list[int] = []  # per run in progress, the largest peak a run inside it read before resetting the peak
_stopping: threading.Thread | None = None


def traced_peak(run):
    """``(run(), the peak bytes traced while it ran)``, above what was allocated when it began."""
    global _started
    with _LOCK:
        if tracemalloc.is_tracing():
            current, peak = tracemalloc.get_traced_memory()
            if _carried:  # the enclosing run's peak so far, which the reset would lose
                _carried[-1] = max(_carried[-1], peak)
            tracemalloc.reset_peak()
        else:
            tracemalloc.start()
            _started, current = True, 0
        _carried.append(0)
        try:
            result = run()
            peak = max(tracemalloc.get_traced_memory()[1], _carried[-1])
        finally:
            _carried.pop()
            if _carried:
                _carried[-1] = max(_carried[-1], tracemalloc.get_traced_memory()[1])
            elif _started:
                _stop_when_alone()
        return result, peak - current


def _stop_when_alone() -> None:
    """Stop the tracing started here now, if no other thread runs jacobian_lab, else from a helper thread once
    none does. Called holding `_LOCK`."""
    global _started, _stopping
    if not _others_running():
        tracemalloc.stop()
        _started = False
    elif _stopping is None or not _stopping.is_alive():
        _stopping = threading.Thread(target=_wait_and_stop, name="jacobian_lab tracemalloc stop", daemon=True)
        _stopping.start()


def _wait_and_stop() -> None:
    global _started
    while True:
        time.sleep(0.005)
        with _LOCK:
            if not _started:  # stopped already
                return
            if not _others_running():
                tracemalloc.stop()
                _started = False
                return


def _others_running() -> bool:
    """Whether a thread other than this one is running jacobian_lab's code (one of its frames is this
    package's): it may be allocating through NumPy."""
    me = threading.get_ident()
    for ident, frame in sys._current_frames().items():
        while ident != me and frame is not None:
            if frame.f_globals.get("__name__", "").startswith("jacobian_lab."):
                return True
            frame = frame.f_back
    return False
