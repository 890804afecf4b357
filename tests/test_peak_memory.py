"""The traced peak memory of `measure`: tracemalloc shared with the caller, other runs and other threads."""
from __future__ import annotations

import threading
import time
import tracemalloc

import numpy as np
import pytest

import jacobian_lab as jl
from jacobian_lab import peak_memory
from jacobian_lab.peak_memory import traced_peak


@pytest.fixture(autouse=True)
def _no_tracing_left():
    yield
    for _ in range(200):  # a stop handed to the helper thread
        if not tracemalloc.is_tracing():
            break
        time.sleep(0.01)
    assert not tracemalloc.is_tracing()


def f(x):
    return np.sum(np.sin(x) ** 2)


def test_a_callers_tracing_stays_on_and_the_peak_is_the_runs():
    tracemalloc.start()
    try:
        big = np.ones(4_000_000)  # 32 MB the caller allocated and freed before
        del big
        jl.measure(f, np.ones(1000), mode="reverse")  # its first call's caches
        peak = jl.measure(f, np.ones(1000), mode="reverse").peak_bytes
        assert tracemalloc.is_tracing() and 0 < peak < 1 << 20
    finally:
        tracemalloc.stop()


def test_a_run_inside_another_gives_its_peak_to_the_enclosing_one():
    def outer():
        inner = traced_peak(lambda: np.ones(1 << 20).sum())[1]  # 8 MiB, freed before the outer run ends
        return inner

    inner, peak = traced_peak(outer)
    assert inner >= 8 << 20 and peak >= inner


def test_tracing_is_stopped_only_once_no_other_thread_runs_jacobian_lab():
    """Stopping tracemalloc while another thread allocates can crash CPython before 3.12: here the other thread
    is inside a Jacobian (its f waits), so the stop waits for it to leave."""
    inside, leave = threading.Event(), threading.Event()

    def waiting(x):
        inside.set()
        leave.wait(10)
        return x * 2.0

    other = threading.Thread(target=lambda: jl.jacobian(waiting, np.ones(3)))
    other.start()
    try:
        assert inside.wait(10)
        jl.measure(f, np.ones(10), mode="reverse", repeat=1)
        time.sleep(0.05)
        assert tracemalloc.is_tracing()
    finally:
        leave.set()
        other.join()
    for _ in range(200):
        if not tracemalloc.is_tracing():
            break
        time.sleep(0.01)
    assert not tracemalloc.is_tracing() and not peak_memory._started


def test_a_run_waiting_for_a_run_in_another_thread_finishes():
    """Runs held a lock for their whole length: a measure whose f waited for a measure on a worker thread never
    finished."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        def outer():
            inner = pool.submit(traced_peak, lambda: np.ones(1 << 18).sum())
            return inner.result(timeout=10)[1]

        inner_peak, peak = traced_peak(outer)
    assert inner_peak >= 2 << 20 and peak >= inner_peak


def test_overlapping_runs_in_two_threads_each_read_their_own_peak():
    started, second_done = threading.Event(), threading.Event()

    def first():
        big = np.ones(1 << 20)  # 8 MiB, freed before the other run resets the peak
        del big
        started.set()
        second_done.wait(10)
        return 0

    out = {}
    thread = threading.Thread(target=lambda: out.update(first=traced_peak(first)[1]))
    thread.start()
    started.wait(10)
    out["second"] = traced_peak(lambda: np.ones(1 << 16).sum())[1]
    second_done.set()
    thread.join()
    assert out["first"] >= 8 << 20 and out["second"] < 4 << 20


def test_the_helper_thread_starts_without_threadings_wait(monkeypatch):
    """threading.Thread.start waits on a Condition, which a Ctrl-C arriving then breaks: the measure raised
    RuntimeError('release unlocked lock') instead of KeyboardInterrupt. The helper starts by one C call."""
    def waiting(self):
        raise RuntimeError("threading.Thread.start was called")

    monkeypatch.setattr(threading.Thread, "start", waiting)
    assert jl.measure(f, np.ones(10), mode="reverse", repeat=1).peak_bytes > 0
