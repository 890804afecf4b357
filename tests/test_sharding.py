"""Passes spread over an executor give the serial Jacobian, bit for bit, and count what ran."""
import multiprocessing
import os
import threading
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jacobian_lab as jl
from jacobian_lab import memory, problems, sharding
from jacobian_lab.accounting import counting


@pytest.fixture(scope="module")
def pool():
    with ThreadPoolExecutor(max_workers=2) as executor:
        yield executor


class InProcess:
    """An executor that is not a ThreadPoolExecutor: it runs each task at once, in the caller.

    The harness treats it like a remote one (it cannot assume the caller's tape is
    safe to share), which exercises the path Dask clients and process pools take."""

    def __init__(self):
        self.submitted = 0

    def submit(self, fn, *args):
        self.submitted += 1
        future = Future()
        try:
            future.set_result(fn(*args))
        except Exception as error:  # noqa: BLE001 - handed back through the future, as executors do
            future.set_exception(error)
        return future


def chained(x):
    """Module level, so that worker processes can unpickle it."""
    return np.sin(x[1:]) * np.exp(x[:-1]) + np.cumsum(x)[1:] ** 2


CASES = [
    ("bratu", problems.bratu_problem(n=60)),
    ("curve", problems.curve_problem(m=50)),
    ("seed", problems.seed_problem(n=40)),
]


def _counted(f, x, **options):
    with counting() as counter:
        J = jl.jacobian(f, x, batch_size=7, **options)
    return J, counter


@pytest.mark.parametrize("mode", ["forward", "reverse", "auto"])
@pytest.mark.parametrize("name, problem", CASES, ids=[name for name, _ in CASES])
def test_threads_give_the_serial_jacobian_and_its_counts(pool, name, problem, mode):
    jl.prediction.clear_cache()
    J, serial = _counted(problem.f, problem.x, mode=mode)
    jl.prediction.clear_cache()  # auto mode probes again, as it did for the serial count
    K, sharded = _counted(problem.f, problem.x, mode=mode, executor=pool)
    assert np.array_equal(J, K)
    assert sharded.costs() == serial.costs()
    assert (sharded.passes, sharded.batch_size) == (serial.passes, serial.batch_size)


def test_a_remote_executor_evaluates_f_again_and_counts_it():
    x = np.linspace(0.0, 1.0, 30)
    primal = jl.count_flops(chained, x)
    executor = InProcess()
    for mode in ("forward", "reverse"):
        J, counter = _counted(chained, x, mode=mode, executor=executor)
        assert np.array_equal(J, jl.jacobian(chained, x, mode=mode, batch_size=7))
        # 30 inputs or 29 outputs, 7 seeds per pass: 5 passes. Forward mode evaluates f in every
        # pass anyway; reverse mode records a tape per pass on a remote worker.
        assert counter.cost("primal") == 5 * primal
        assert counter.passes == 5
    assert executor.submitted == 4 + 4  # every pass but the caller's first


class SharedInProcess(InProcess):
    shares_memory = True


def test_an_executor_that_says_it_shares_memory_uses_the_callers_tape_and_counts_as_serial():
    """An in-process executor of one's own was taken for a remote one: f ran again per pass (64 primal flops
    against 16 serially)."""
    x = np.linspace(0.0, 1.0, 30)
    for mode in ("forward", "reverse", "auto"):
        jl.prediction.clear_cache()
        J, serial = _counted(chained, x, mode=mode)
        jl.prediction.clear_cache()  # auto mode probes again, as it did for the serial count
        K, shared = _counted(chained, x, mode=mode, executor=SharedInProcess())
        assert np.array_equal(J, K)
        assert shared.costs() == serial.costs() and shared.passes == serial.passes


def test_shares_memory_is_true_or_false():
    """Any value was taken for its truth: a string "no", a method or a mock read as True."""
    executor = SharedInProcess()
    executor.shares_memory = "no"
    with pytest.raises(TypeError, match="executor.shares_memory must be True or False, got str"):
        jl.jacobian(chained, np.ones(4), mode="reverse", batch_size=1, executor=executor)


_NOISE = np.random.default_rng(7)


def _scaled_by_a_draw(x):
    return x * _NOISE.uniform(1.0, 2.0)


@pytest.mark.parametrize("options", [dict(mode="forward"), dict(mode="forward", executor=InProcess()),
                                     dict(mode="reverse", executor=InProcess())], ids=["forward", "forward, remote",
                                                                                       "reverse, remote"])
def test_a_random_f_is_refused_where_passes_evaluate_it_again(options):
    """Each forward pass (and a remote worker's sweep) evaluates f again: a random f would give
    blocks of J from different functions."""
    with pytest.raises(ValueError, match="other values in the pass from seed 2 .*deterministic"):
        jl.jacobian(_scaled_by_a_draw, np.ones(6), batch_size=2, **options)


@pytest.mark.parametrize("options", [dict(mode="forward"), dict(mode="reverse", executor=InProcess())],
                         ids=["forward", "reverse, remote"])
def test_an_f_whose_shape_changes_between_passes_is_named_so(options):
    calls = iter(range(100))

    def stateful(x):  # 4 outputs, then 3, then 4, ...
        return x[: 4 - next(calls) % 2] * 2.0

    with pytest.raises(ValueError, match=r"f returned shape \(3,\) in the pass from seed \d+, and shape \(4,\) in the "
                                         r"first one, at the same x: .* keeps state between calls"):
        jl.jacobian(stateful, np.arange(1.0, 7.0), batch_size=1, **options)


def test_a_random_scalar_f_is_refused_and_rounding_differences_are_not():
    with pytest.raises(ValueError, match="other values in the pass from seed 1 "):  # a NumPy scalar output
        jl.jacfwd(lambda x: np.sum(x) * _NOISE.random(), batch_size=1)(np.arange(1.0, 5.0))
    calls = iter(range(100))

    def rounded_otherwise(x):  # as BLAS with another thread count in a worker: the last bits differ
        return np.sin(x) * (1.0 + 1e-14 * next(calls))

    J = jl.jacobian(rounded_otherwise, np.ones(6), mode="forward", batch_size=2)
    np.testing.assert_allclose(np.diag(J), np.cos(1.0), rtol=1e-12)


def test_one_evaluation_of_a_random_f_gives_its_jacobian():
    for options in (dict(mode="reverse", batch_size=2), dict(mode="forward", batch_size=6)):
        J = jl.jacobian(_scaled_by_a_draw, np.ones(6), **options)
        np.testing.assert_array_equal(J, J[0, 0] * np.eye(6))  # one draw's Jacobian


def test_worker_processes_take_a_module_level_function():
    x = np.linspace(0.0, 1.0, 30)
    with ProcessPoolExecutor(max_workers=2) as executor:
        for mode in ("forward", "reverse"):
            J = jl.jacobian(chained, x, mode=mode, batch_size=5, executor=executor)
            assert np.array_equal(J, jl.jacobian(chained, x, mode=mode, batch_size=5))
        with pytest.raises(TypeError, match="define f with def at module level"):
            jl.jacobian(lambda v: v * 2.0, x, mode="forward", batch_size=5, executor=executor)


def scaled_where_reshape_is_a_view(x):
    r = x.reshape(-1)  # NumPy's reshape of a reversed vector is a view, of reversed rows a copy
    r *= 2.0
    return x * 1.0


def test_worker_processes_get_x_laid_out_as_the_caller_lays_it_out():
    """Pickle lays an array out in C or F order; f may read the layout."""
    with ProcessPoolExecutor(max_workers=2) as executor:
        for x in (np.arange(1.0, 13.0)[::-1], np.arange(1.0, 13.0).reshape(3, 4)[::-1]):
            for mode in ("forward", "reverse"):
                J = jl.jacobian(scaled_where_reshape_is_a_view, x, mode=mode, batch_size=2, executor=executor)
                assert np.array_equal(J, jl.jacobian(scaled_where_reshape_is_a_view, x, mode=mode)), (x.strides, mode)
                assert np.array_equal(J.reshape(x.size, x.size).diagonal(), np.full(x.size, 3.0 - x.ndim))


def test_structured_inputs_and_jacfwd_jacrev_take_the_executor(pool):
    params = {"a": np.linspace(0.1, 1.0, 9), "b": np.full(4, 0.5)}

    def f(p):
        return np.concatenate([np.sin(p["a"]) * np.sum(p["b"]), p["b"] ** 3])

    for make in (jl.jacfwd, jl.jacrev):
        J, K = make(f, batch_size=2)(params), make(f, batch_size=2, executor=pool)(params)
        assert all(np.array_equal(J[key], K[key]) for key in params)


def test_a_failing_pass_raises_its_own_error_in_the_caller(pool):
    calls = iter(range(100))
    lock = threading.Lock()

    def f(x):
        with lock:
            call = next(calls)
        if call == 3:
            raise ArithmeticError("the fourth evaluation fails")
        return np.sin(x)

    with pytest.raises(ArithmeticError, match="fourth evaluation"):
        jl.jacobian(f, np.ones(10), mode="forward", batch_size=2, executor=pool)


@pytest.mark.parametrize("workers", [1, 2])
def test_the_work_of_failed_and_abandoned_passes_is_counted(workers):
    # A pass stopped by the memory budget is retried with fewer seeds; the work it and the passes
    # already running on other workers did ran, and counts, as the failed pass's does in a serial loop.
    evaluations = {"started": 0, "finished": 0}
    lock = threading.Lock()

    def f(x):
        s = np.sin(x)
        with lock:
            evaluations["started"] += 1
            if evaluations["started"] == 4:
                raise ArithmeticError("the fourth evaluation fails")
        with lock:
            evaluations["finished"] += 1
        return s * x

    x = np.linspace(0.0, 1.0, 8)
    with ThreadPoolExecutor(max_workers=workers) as executor, counting() as counter:
        with pytest.raises(ArithmeticError):
            jl.jacobian(f, x, mode="forward", batch_size=1, executor=executor)
    started, finished = evaluations["started"], evaluations["finished"]
    assert counter.cost("primal") == jl.Cost(flops=8 * finished, transcendentals=8 * started)
    assert counter.passes == finished


class Deferred:
    """Futures that run their task when asked for the result: submitting is free, so only
    the harness's own window limits how many are outstanding."""

    _max_workers = 2

    def __init__(self):
        self.outstanding = self.most_outstanding = 0

    def submit(self, fn, *args):
        self.outstanding += 1
        self.most_outstanding = max(self.most_outstanding, self.outstanding)
        executor = self

        class Later:
            def result(self):
                executor.outstanding -= 1
                return fn(*args)

            def cancel(self):
                return True

        return Later()


def test_passes_are_submitted_a_few_workers_ahead():
    executor = Deferred()
    x = np.linspace(0.0, 1.0, 30)
    J = jl.jacobian(chained, x, mode="forward", batch_size=1, executor=executor)
    assert np.array_equal(J, jl.jacobian(chained, x, mode="forward", batch_size=1))
    assert executor.outstanding == 0 and executor.most_outstanding == 4  # twice the workers, of 29 passes


def test_an_object_without_submit_is_refused():
    with pytest.raises(TypeError, match="submit"):
        jl.jacobian(np.sin, np.ones(3), executor=4)
    with pytest.raises(TypeError, match="submit"):
        jl.jacrev(np.sin, executor=object())


class _Deferred:
    """A future with result() alone: what the executor protocol asks for."""

    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def result(self, timeout=None):
        return self.fn(*self.args)


class _Lazy:
    def __init__(self, returns_future=True):
        self.returns_future = returns_future

    def submit(self, fn, *args):
        return _Deferred(fn, args) if self.returns_future else None


def test_an_executor_needs_futures_with_result_only():
    np.testing.assert_array_equal(jl.jacobian(np.sin, np.ones(4), mode="forward", batch_size=1, executor=_Lazy()),
                                  jl.jacobian(np.sin, np.ones(4), mode="forward", batch_size=1))
    calls = iter(range(100))

    def failing(x):
        if next(calls) == 2:
            raise ArithmeticError("the third evaluation fails")
        return np.sin(x)

    with pytest.raises(ArithmeticError, match="third evaluation"):  # its own error, not one about cancel()
        jl.jacobian(failing, np.ones(6), mode="forward", batch_size=1, executor=_Lazy())
    with pytest.raises(TypeError, match="submit returned NoneType, not a future"):
        jl.jacobian(np.sin, np.ones(4), mode="forward", batch_size=1, executor=_Lazy(returns_future=False))


class _Refusing:
    def submit(self, fn, *args):
        raise RuntimeError("the cluster is down")


class _Garbled:
    def submit(self, fn, *args):
        return _Done(np.zeros(3))  # not fn(*args)


class _Done:
    def __init__(self, value):
        self.value = value

    def result(self, timeout=None):
        return self.value


def test_an_executors_own_failure_and_a_future_giving_something_else_are_named():
    with pytest.raises(RuntimeError, match="^the cluster is down$"):  # not taken for a shutdown
        jl.jacobian(np.sin, np.ones(4), mode="forward", batch_size=1, executor=_Refusing())
    with pytest.raises(TypeError, match=r"the executor's future gave ndarray, not what the task it was given "
                                        r"returned: its result\(\) must return the value of fn\(\*args\)"):
        jl.jacobian(np.sin, np.ones(4), mode="forward", batch_size=1, executor=_Garbled())


@pytest.mark.parametrize("make", [ThreadPoolExecutor, ProcessPoolExecutor])
def test_an_executor_that_was_shut_down_is_named_as_the_cause(make):
    executor = make(max_workers=1)
    executor.shutdown()
    for mode in ("forward", "reverse"):
        with pytest.raises(RuntimeError, match="takes no more passes.*still open"):
            jl.jacobian(chained, np.ones(6), mode=mode, batch_size=2, executor=executor)


def test_a_process_pool_with_a_dead_worker_is_named_as_broken():
    """concurrent.futures' BrokenProcessPool is a RuntimeError, which was taken for a shutdown."""
    executor = ProcessPoolExecutor(max_workers=1)
    with pytest.raises(Exception):
        executor.submit(os._exit, 1).result()  # the worker dies: the pool is broken
    with pytest.raises(RuntimeError, match="the executor is broken .*one of its workers died.*make a new one"):
        jl.jacobian(chained, np.ones(6), mode="forward", batch_size=2, executor=executor)
    executor.shutdown()


@pytest.mark.parametrize("workers", [1, 2])
def test_f_may_use_the_pool_it_runs_on(workers):
    """A pass submitted from one of the pool's own workers waited for a worker that waited for it: the
    calls hung. From a worker, the passes run in that worker."""
    x = np.linspace(0.0, 1.0, 6)
    with ThreadPoolExecutor(workers) as executor:
        tasks = [executor.submit(jl.jacobian, chained, x, mode=mode, batch_size=1, executor=executor)
                 for mode in ("forward", "reverse")]
        for task, mode in zip(tasks, ("forward", "reverse")):
            assert np.array_equal(task.result(timeout=60), jl.jacobian(chained, x, mode=mode, batch_size=1))


def _deep(x):
    y = np.sin(x)
    for _ in range(6):
        y = np.tanh(y * 1.1 + np.roll(y, 1))
    return y[:50]


@pytest.mark.parametrize("mode", ["forward", "auto"])
def test_a_pass_over_its_workers_share_of_the_budget_runs_in_the_caller(mode):
    """Each worker's passes get the budget divided by the workers; a seed that fits the whole budget but
    not a share was refused with 2 or 4 workers, where the serial call succeeds."""
    x = np.linspace(0.0, 1.0, 2000)
    serial = jl.jacobian(_deep, x, mode=mode, max_memory=3 << 19)
    with ThreadPoolExecutor(4) as executor:
        J = jl.jacobian(_deep, x, mode=mode, max_memory=3 << 19, executor=executor)
    assert np.array_equal(J, serial)


def _sines(x):
    y = x
    for _ in range(5):
        y = np.sin(y) + 0.5 * y
    return y[:-1] * y[1:]


@pytest.mark.parametrize("batch_size", [2, 1, None])
def test_passes_that_fit_the_budget_but_not_a_workers_share_run_as_without_the_executor(batch_size):
    """Auto mode's tape sized the passes to a worker's share of the budget and refused them (its advice,
    batch_size <= 1 or None, failing too), where the serial call fits: they now run one at a time."""
    x = np.random.default_rng(3).standard_normal(11)
    for mode in ("auto", "reverse") if batch_size != 2 else ("auto",):  # 2 cotangents fit no sweep: reverse refuses
        jl.jacobian(_sines, x, mode=mode, batch_size=batch_size, max_memory=4000)  # auto's first call probes
        with counting() as serial_count:
            serial = jl.jacobian(_sines, x, mode=mode, batch_size=batch_size, max_memory=4000)
        with ThreadPoolExecutor(2) as executor, counting() as count:
            J = jl.jacobian(_sines, x, mode=mode, batch_size=batch_size, max_memory=4000, executor=executor)
        np.testing.assert_array_equal(J, serial)
        assert count.total() == serial_count.total()  # no pass ran in a worker's share and stopped there


class Diverged(Exception):
    """An exception whose __init__ takes other arguments than its message: pickle cannot rebuild it."""

    def __init__(self, step, where):
        super().__init__(f"diverged at step {step} ({where})")


def diverges_in_workers(x):
    if multiprocessing.parent_process() is not None:
        raise Diverged(7, "a worker")
    return np.sin(x)


def test_an_error_that_does_not_pickle_comes_back_from_a_worker_process_with_its_message():
    """It broke the pool (BrokenProcessPool: a process terminated abruptly) and its message was lost."""
    with ProcessPoolExecutor(max_workers=1) as executor:
        with pytest.raises(RuntimeError, match=r"(?s)f raised test_sharding\.Diverged in a worker process: diverged "
                                               r"at step 7 \(a worker\).*Traceback"):
            jl.jacobian(diverges_in_workers, np.ones(4), mode="forward", batch_size=1, executor=executor)
        assert np.array_equal(jl.jacobian(chained, np.ones(4), mode="forward", batch_size=1, executor=executor),
                              jl.jacobian(chained, np.ones(4), mode="forward", batch_size=1))  # the pool works


def test_jit_refuses_an_executor(pool):
    with pytest.raises(TypeError, match=r"takes no executor; compile jacobian\(sin\), built without executor="):
        jl.jit(jl.jacobian(np.sin, executor=pool))


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_hessians_take_the_executor(pool, mode):
    def f(x):
        return np.sum(np.sin(x[1:]) * x[:-1] ** 2) + np.sum(x ** 4)

    x = np.linspace(-1.0, 1.0, 20)
    with counting() as serial:
        H = jl.hessian(f, x, mode=mode, batch_size=3)
    with counting() as sharded:
        K = jl.hessian(f, mode=mode, batch_size=3, executor=pool)(x)
    assert np.array_equal(H, K)
    assert sharded.costs() == serial.costs()
    with pytest.raises(TypeError, match=r"takes no executor; compile hessian\(f.*\), built without executor="):
        jl.jit(jl.hessian(f, mode=mode, executor=pool))  # named as the Hessian function it is


@settings(derandomize=True, max_examples=40, deadline=None)
@given(n=st.integers(1, 24), m=st.integers(1, 24), batch=st.integers(1, 9), workers=st.integers(1, 3),
       mode=st.sampled_from(["forward", "reverse", "auto"]))
def test_any_schedule_on_any_pool_gives_the_serial_jacobian_and_counts(n, m, batch, workers, mode):
    rng = np.random.default_rng(n * 100 + m)
    A = rng.standard_normal((m, n))

    def f(x):
        return np.tanh(A @ np.sin(x)) * x[0]

    x = rng.standard_normal(n)
    jl.prediction.clear_cache()
    with counting() as serial:
        J = jl.jacobian(f, x, mode=mode, batch_size=batch)
    jl.prediction.clear_cache()  # auto mode probes again, as it did for the serial count
    with ThreadPoolExecutor(max_workers=workers) as executor, counting() as sharded:
        K = jl.jacobian(f, x, mode=mode, batch_size=batch, executor=executor)
    assert np.array_equal(J, K)
    assert (sharded.costs(), sharded.passes) == (serial.costs(), serial.passes)


def test_the_window_follows_the_workers_an_executor_reports():
    class Cluster(InProcess):  # reports its workers as a Dask Client does: threads per worker address
        def nthreads(self):
            return {"tcp://a": 4, "tcp://b": 2}

    assert sharding.workers(Cluster(), 100) == 6 and sharding.workers(Cluster(), 3) == 3
    assert sharding.workers(ThreadPoolExecutor(max_workers=5), 100) == 5
    assert sharding.workers(InProcess(), 100) == (os.cpu_count() or 1)


@pytest.mark.parametrize("prefix", ["w_x", "w"])
def test_only_the_pools_own_workers_run_passes_in_place(prefix):
    """A worker of a pool named "w_x" (threads w_x_0, ...), or of another pool named "w" too, was taken
    for one of pool "w"'s, so its passes ran one after another in that thread instead of on the pool."""
    with ThreadPoolExecutor(1, thread_name_prefix="w") as pool, ThreadPoolExecutor(1, thread_name_prefix=prefix) as other:
        assert pool.submit(sharding._in_own_worker, pool).result()  # its first task: not yet listed in _threads
        assert pool.submit(sharding._in_own_worker, pool).result()
        assert not other.submit(sharding._in_own_worker, pool).result()


def test_two_pools_whose_tasks_compute_jacobians_on_each_other_do_not_wait_for_each_other():
    """A task on C using D and one on D using C, one worker each: each waited for the other's only
    worker, forever. A pass no worker has started runs in the caller."""
    x = np.linspace(0.0, 1.0, 6)
    with ThreadPoolExecutor(1) as c, ThreadPoolExecutor(1) as d:
        started = threading.Barrier(2)

        def on(executor):
            started.wait(timeout=30)  # both workers busy before either submits a pass
            return jl.jacobian(chained, x, mode="forward", batch_size=1, executor=executor)

        tasks = [c.submit(on, d), d.submit(on, c)]
        for task in tasks:
            assert np.array_equal(task.result(timeout=60), jl.jacobian(chained, x, mode="forward", batch_size=1))


def _exits_in_a_worker(x):
    if multiprocessing.parent_process() is not None:
        os._exit(1)  # a worker process that dies while it runs a pass
    return np.sin(x)


def test_a_worker_process_dying_during_a_pass_is_named_as_broken():
    with ProcessPoolExecutor(max_workers=1) as executor:
        with pytest.raises(RuntimeError, match="the executor is broken .*by os._exit in f; make a new one"):
            jl.jacobian(_exits_in_a_worker, np.ones(4), mode="forward", batch_size=2, executor=executor)


def _refusals_wording(lo, hi):
    return memory._products()


@pytest.mark.parametrize("kind", [ThreadPoolExecutor, ProcessPoolExecutor])
def test_a_pass_keeps_the_callers_name_for_the_matrix_it_builds(kind):
    """Budget refusals in a worker offered jvp/vjp for a Hessian: the worker's empty context read the
    default, "Jacobian"."""
    with kind(max_workers=1) as executor, memory.building("Hessian"):
        [(_, _, block)] = sharding.map_passes(executor, _refusals_wording, [(0, 1)])
    assert block.startswith("jl.hvp")


def raises_unpicklable(lo, hi):
    raise Diverged(lo, "a thread")


def test_an_error_in_a_thread_of_a_child_process_keeps_its_type():
    """A thread pool in a child process sends nothing by pickle, but an error that does not pickle was
    replaced by a RuntimeError there as in a process pool's worker."""
    with ProcessPoolExecutor(max_workers=1) as executor:
        assert executor.submit(_thread_pool_error_type).result() == "Diverged"


def _thread_pool_error_type():
    with ThreadPoolExecutor(1) as pool:
        try:
            list(sharding.map_passes(pool, raises_unpicklable, [(0, 1)]))
        except Exception as error:  # noqa: BLE001 - its type is what is checked
            return type(error).__name__
