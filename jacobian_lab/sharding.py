"""Passes spread over an executor: seed batches computed side by side.

A Jacobian's passes are independent (one batch of one-hot seeds each), so
``jacobian(f, x, executor=pool)`` hands all but the first to `pool`: any object
with ``submit(fn, *args) -> future`` and ``future.result()``, such as a
`concurrent.futures.ThreadPoolExecutor` or `ProcessPoolExecutor`, or a Dask
``Client``. The first pass runs in the caller: it fixes the output's shape and
stages a reverse tape's VJP rules once, so that sweeps on other threads only
read the tape.

Threads share the caller's memory, so they sweep (or replay forward) the
caller's tape when there is one, and otherwise call f themselves, several at
once; NumPy releases the GIL inside its loops, so passes over large arrays
overlap. An executor of your own whose workers are threads of this process
says so with an attribute ``shares_memory = True``. Any other executor gets f
and x and evaluates f again per pass (reverse mode records its own tape there),
so f must pickle. Each pass is
counted in its worker and the counts are merged into the caller's: FLOPs are
those that ran, wherever they ran.

>>> from concurrent.futures import ThreadPoolExecutor
>>> import numpy as np, jacobian_lab as jl
>>> with ThreadPoolExecutor(max_workers=2) as pool:
...     J = jl.jacobian(np.sin, np.zeros(4), mode="reverse", batch_size=1, executor=pool)
>>> J.diagonal()
array([1., 1., 1., 1.])
"""
from __future__ import annotations

import collections
import contextvars
import itertools
import multiprocessing
import os
import pickle
import threading
import traceback
from concurrent.futures import BrokenExecutor, ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np

from . import memory
from .accounting import Counter, active_counter, counting


def check_executor(executor) -> None:
    """Refuse anything that cannot take passes: it must have submit(fn, *args) -> future."""
    if executor is not None and not callable(getattr(executor, "submit", None)):
        raise TypeError(f"executor must have a submit(fn, *args) method returning a future (a "
                        f"concurrent.futures.ThreadPoolExecutor, ProcessPoolExecutor or a Dask Client), "
                        f"got {type(executor).__name__}")


def shares_memory(executor) -> bool:
    """Whether the executor's workers are threads of this process (they may use its tapes): a ThreadPoolExecutor's
    are, and for another one (your own, or a Dask ``Client(processes=False)``) you say so by setting its
    ``shares_memory`` attribute true.

    >>> from concurrent.futures import ThreadPoolExecutor
    >>> shares_memory(ThreadPoolExecutor(1)), shares_memory(object())
    (True, False)
    """
    declared = getattr(executor, "shares_memory", None)
    if declared is None:
        return isinstance(executor, ThreadPoolExecutor)
    if not isinstance(declared, (bool, np.bool_)):
        raise TypeError(f"executor.shares_memory must be True or False, got {type(declared).__name__}")
    return bool(declared)


def workers(executor, passes: int) -> int:
    """How many passes may run at once: the executor's worker count, at most `passes`.

    A concurrent.futures pool knows its workers; a Dask Client reports the threads of every worker of
    its cluster (``nthreads()``); anything else is assumed to have this machine's cores.
    """
    count = getattr(executor, "_max_workers", None)
    nthreads = getattr(executor, "nthreads", None)
    if count is None and callable(nthreads):
        count = sum(nthreads().values())
    return max(1, min(count or os.cpu_count() or 1, passes))


def map_passes(executor, task, ranges, *args):
    """``(lo, hi, task(lo, hi, *args))`` for every seed range, in order, computed on `executor`.

    At most twice the executor's workers are submitted ahead of the block being
    read, so finished blocks waiting to be placed never add up to another
    Jacobian. When the caller is counting, each pass counts in its worker and
    the count is merged here. A failed pass cancels the passes not yet started
    and its exception is raised here, once the passes already running have
    ended: the caller may retry with smaller passes (a pass stopped by the
    memory budget), and the work of every pass that ran, the failed one's up
    to its failure, is counted as in a serial loop.
    """
    if _in_own_worker(executor):
        # f runs jl.jacobian with the pool it runs on: passes submitted from here could wait for a
        # worker that waits for them, so they run here, in order
        for lo, hi in ranges:
            yield lo, hi, task(lo, hi, *args)
        return
    count = active_counter() is not None
    if isinstance(executor, ProcessPoolExecutor):
        _check_pickles(task)
    pending = iter(ranges)
    window = collections.deque()
    settings = tuple(var.get() for var in _INHERITED)

    def submit_next():
        for lo, hi in itertools.islice(pending, 1):
            window.append((lo, hi, _submit(executor, count, settings, task, lo, hi, *args)))

    for _ in range(2 * workers(executor, len(ranges))):
        submit_next()
    local = shares_memory(executor)
    try:
        while window:
            lo, hi, future = window.popleft()
            if local and future.cancel():
                # not started: its workers are busy, maybe waiting for this thread (two pools whose tasks
                # compute Jacobians on each other), so the caller runs it, as it would without a pool
                block = task(lo, hi, *args)
            else:
                block = _result(future, count)
            submit_next()
            yield lo, hi, block
    finally:
        # an executor's futures need only result(); those that can be cancelled are
        running = [future for _, _, future in window if getattr(future, "cancel", lambda: False)() is False]
        for future in running:
            try:
                _result(future, count)
            except Exception:  # noqa: BLE001 - the first failure is the one raised
                pass


def _in_own_worker(executor) -> bool:
    """Whether this thread is one of a thread pool's workers: a new worker runs its first task before
    the pool lists it, and its arguments hold the pool's work queue (another pool's workers may bear
    the same name)."""
    thread = threading.current_thread()
    if thread in getattr(executor, "_threads", ()):
        return True
    queue = getattr(executor, "_work_queue", None)
    return queue is not None and any(arg is queue for arg in getattr(thread, "_args", ()))


def _result(future, count: bool):
    """A pass's block, its work (the work of a failed pass too) merged into the caller's count."""
    try:
        returned = future.result()
    except BrokenExecutor as error:  # a worker died while the pass ran (os._exit, a crash, out of memory)
        raise _broken(error) from error
    except Exception as error:
        counter = getattr(error, "pass_counter", None)
        if count and counter is not None:
            active_counter().merge(counter)
        raise
    if type(returned) is not tuple or len(returned) != 2 or count and not isinstance(returned[1], Counter):
        raise TypeError(f"the executor's future gave {type(returned).__name__}, not what the task it was given "
                        "returned: its result() must return the value of fn(*args) as submit(fn, *args) ran it")
    block, counter = returned
    if count:
        active_counter().merge(counter)
    return block


def _submit(executor, *args):
    """``executor.submit(_pass, *args)``; an executor that is shut down is named as the cause."""
    try:
        future = executor.submit(_pass, *args)
    except BrokenExecutor as error:  # a RuntimeError too, but not a shutdown: a worker died
        raise _broken(error) from error
    except RuntimeError as error:  # concurrent.futures: "cannot schedule new futures after shutdown"
        if "shutdown" not in str(error) and "shut down" not in str(error):
            raise  # the executor's own failure, named by it
        raise RuntimeError(f"the executor takes no more passes ({error}); pass one that is still open, "
                           "e.g. inside its `with ThreadPoolExecutor() as pool:` block") from error
    if not callable(getattr(future, "result", None)):
        raise TypeError(f"executor.submit returned {type(future).__name__}, not a future: the executor must "
                        "return an object whose result() gives the task's value (concurrent.futures.Future)")
    return future


def _broken(error) -> RuntimeError:
    return RuntimeError(f"the executor is broken ({error}): one of its workers died, out of memory, in a crash "
                        "of compiled code or by os._exit in f; make a new one")


#: The caller's settings a pass keeps in its worker: what budget refusals call the matrix ("Hessian").
_INHERITED = (memory.MATRIX,)


def _pass(count: bool, settings: tuple, task, lo: int, hi: int, *args):
    """One pass in a worker: its result and, when counted, its `Counter`.

    It runs in a context of its own: an executor that runs tasks in the caller's own
    thread must not let the pass count into the caller's counter as well. Only the
    caller's `settings` (of `_INHERITED`) are carried into it.
    """
    context = contextvars.Context()
    for var, value in zip(_INHERITED, settings):
        context.run(var.set, value)
    try:
        return context.run(_in_context, count, task, lo, hi, *args)
    except Exception as error:
        if not _in_worker_process() or _pickles(error):
            raise
        # in a worker process, an exception that does not pickle would break the pool and lose its message
        sent = RuntimeError(f"f raised {type(error).__module__}.{type(error).__qualname__} in a worker process: "
                            f"{error} (its type cannot be sent back by pickle; the traceback follows)\n"
                            + "".join(traceback.format_exception(error)))
        sent.pass_counter = getattr(error, "pass_counter", None)
        raise sent from None


def _in_worker_process() -> bool:
    """Whether this is a process pool's worker, which runs its tasks in its main thread (a thread pool
    inside a child process runs them in threads of its own, and sends nothing by pickle)."""
    return multiprocessing.parent_process() is not None and threading.current_thread() is threading.main_thread()


def _pickles(value) -> bool:
    try:
        pickle.loads(pickle.dumps(value))
    except Exception:  # noqa: BLE001 - any failure to round-trip is one
        return False
    return True


def _in_context(count, task, lo, hi, *args):
    if not count:
        return task(lo, hi, *args), None
    with counting() as counter:
        try:
            return task(lo, hi, *args), counter
        except Exception as error:  # its work until the failure ran: the caller counts it too
            error.pass_counter = counter
            raise


def _check_pickles(task) -> None:
    # Worker processes receive f by pickle; a lambda or a nested function fails there, in a
    # feeder thread, with a message that does not say which argument was at fault.
    try:
        pickle.dumps(task)
    except (pickle.PicklingError, AttributeError, TypeError) as error:
        raise TypeError(
            f"f cannot be sent to the executor's worker processes ({error}); define f with def at "
            "module level (lambdas and nested functions do not pickle), or pass a ThreadPoolExecutor"
        ) from error
