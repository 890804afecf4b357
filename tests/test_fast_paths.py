"""The structures that make Jacobians fast must not change what is computed or counted."""
import numpy as np
import pytest

import jacobian_lab as jl
from jacobian_lab import prediction
from jacobian_lab.accounting import TANGENT, counting


def _counted(f, x, mode, batch_size=None):
    with counting() as c:
        J = jl.jacobian(f, x, mode=mode, batch_size=batch_size)
    return J, c.costs()


def test_auto_predicts_every_call_so_value_dependent_programs_get_the_cheaper_order():
    # The same function object and input shape trace different programs: for x[0] > 0
    # a scalar (reverse is cheaper), otherwise an outer product (forward is cheaper).
    def f(x):
        return np.sum(np.sin(x)) if x[0] > 0 else np.outer(x, np.ones(40)).ravel()

    for x in (np.full(30, 0.5), np.full(30, -0.5)):
        measured = {m: _counted(f, x, m)[1] for m in ("forward", "reverse")}
        totals = {m: sum(c.values(), jl.Cost()).total() for m, c in measured.items()}
        chosen = jl.measure(f, x, mode="auto", repeat=1).mode
        assert totals[chosen] == min(totals.values()), (x[0], totals)
        np.testing.assert_allclose(jl.jacobian(f, x), jl.jacobian(f, x, mode=chosen), rtol=1e-12)


def test_auto_gives_the_chosen_modes_jacobian():
    for name in jl.problems.names():
        p = jl.problems.get(name)
        mode = jl.predict(p.f, p.x).choose()[0]
        first, again = jl.jacobian(p.f, p.x), jl.jacobian(p.f, p.x)
        np.testing.assert_allclose(first, jl.jacobian(p.f, p.x, mode=mode), rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(first, again)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
@pytest.mark.parametrize("batch_size", [None, 1, 2])
@pytest.mark.parametrize("f", [
    lambda x: np.broadcast_to(np.sum(x), (3,)),  # a read-only broadcast derivative
    lambda x: x,                                   # the seeds themselves
    lambda x: x[1:],                               # a view of the seeds
    lambda x: np.sum(x * x),
    lambda x: np.outer(x, x),
])
def test_the_result_is_a_fresh_writeable_array(f, mode, batch_size):
    x = np.linspace(0.5, 1.5, 4)
    J = jl.jacobian(f, x, mode=mode, batch_size=batch_size)
    assert J.flags.writeable
    expected = jl.jacobian(f, x, mode="reverse" if mode == "forward" else "forward", batch_size=1)
    np.testing.assert_allclose(J, expected, rtol=1e-12, atol=1e-12)
    J[...] = 0.0  # writing into it touches nothing else
    np.testing.assert_allclose(jl.jacobian(f, x, mode=mode, batch_size=batch_size), expected, rtol=1e-12)


def test_tape_replay_counts_the_tangent_work_of_a_forward_pass():
    def f(x):
        _dead = np.exp(x) * 3.0  # traced, never returned: forward mode still pushes its tangent
        h = np.tanh(np.ones((3, 4)) @ x + x[:3] ** 2)
        return np.concatenate([h, np.sum(h, keepdims=True) * x[1:2]])

    x = np.linspace(-1.0, 1.0, 4)
    _, pullback = jl.engines.get("reverse").vjp(f, x)
    for k in (1, 3):
        with counting() as replayed:
            prediction._replay_forward(pullback.tape, np.zeros((k, 4)))
        with counting() as ran:
            jl.engines.get("forward").jvp(f, x, np.zeros((k, 4)))
        assert replayed.cost(TANGENT) == ran.cost(TANGENT)


@pytest.mark.parametrize("shapes", [
    ((3, 4), (4,)), ((4,), (4, 3)), ((2, 3, 4), (4,)), ((3, 4), (4, 2)), ((4,), (4,)),
    ((2, 3, 4), (4, 5)), ((3, 4), (2, 4, 5)),
])
@pytest.mark.parametrize("traced", ["a", "b", "both"])
def test_matmul_counts_and_values_do_not_depend_on_the_folded_form(shapes, traced):
    rng = np.random.default_rng(0)
    a0, b0 = rng.standard_normal(shapes[0]), rng.standard_normal(shapes[1])
    na = a0.size

    def f(v):
        a = v[:na].reshape(shapes[0]) if traced in ("a", "both") else a0
        b = v[na:].reshape(shapes[1]) if traced in ("b", "both") else b0
        return np.tanh(a @ b)

    x = np.concatenate([a0.ravel(), b0.ravel()])
    reference = None
    for mode in ("forward", "reverse"):
        for batch_size in (None, 1, 3):
            J, costs = _counted(f, x, mode, batch_size)
            assert costs == jl.predict(f, x).cost(mode, batch_size)
            reference = J if reference is None else reference
            np.testing.assert_allclose(J, reference, rtol=1e-10, atol=1e-12)
    eps = 1e-6
    fd = np.stack([(f(x + eps * e) - f(x - eps * e)) / (2 * eps) for e in np.eye(x.size)], axis=-1)
    np.testing.assert_allclose(reference, fd, rtol=1e-5, atol=1e-7)


def test_memory_budget_is_reused_briefly():
    from jacobian_lab import memory

    first = memory.budget()
    assert memory.budget() == first and memory.budget(123) == 123


FULL_COLLECTIONS_OFF = 1 << 30  # the third threshold while a tape is recorded (`collection_paused`)


@pytest.mark.parametrize("entry", ["jacrev", "auto", "jit"])
def test_full_collections_are_held_off_while_a_tape_is_recorded_and_swept_and_then_restored(entry):
    """A full collection walks every record of a long tape: none runs while one is recorded, swept or replayed
    (where a third of a reverse Jacobian of a scalar loop went), and the thresholds are restored afterwards,
    after an error in f too; the collector stays off where the caller turned it off."""
    import gc

    seen, before = [], gc.get_threshold()

    def f(x):
        seen.append(gc.get_threshold())
        return np.sum(x ** 2)

    fun = {"jacrev": jl.jacrev(f), "auto": jl.jacobian(f), "jit": jl.jit(jl.jacobian(f))}[entry]
    fun(np.ones(3))
    assert seen and all(t == before[:2] + (FULL_COLLECTIONS_OFF,) for t in seen) and gc.get_threshold() == before

    def failing(x):
        raise ValueError("f's own")

    with pytest.raises(ValueError, match="f's own"):
        {"jacrev": jl.jacrev, "auto": jl.jacobian, "jit": lambda g: jl.jit(jl.jacobian(g))}[entry](failing)(np.ones(3))
    assert gc.get_threshold() == before and gc.isenabled()
    gc.disable()
    try:
        fun(np.full(3, 2.0))
        assert not gc.isenabled() and gc.get_threshold() == before
    finally:
        gc.enable()


def test_cycles_f_leaves_behind_are_collected_while_its_tape_is_recorded():
    """Only full collections wait: the young generations' run as f allocates, so a loop that leaves a cycle
    holding a large array behind at every step does not hold them all until the derivative ends."""
    import gc
    import weakref

    class Node:
        pass

    alive, left = weakref.WeakSet(), []

    def f(x):
        for _ in range(300):
            a, b = Node(), Node()
            a.other, b.other, a.payload = b, a, np.empty(1000)
            alive.add(a)
        left.append(len(alive))
        return np.sum(x ** 2)

    gc.collect()
    jl.jacrev(f)(np.ones(3))
    assert left[0] < 100  # young collections freed most of the 300 as f ran (all of them are held without)


def test_full_collections_run_again_only_when_the_last_of_concurrent_recordings_ends():
    import gc
    import threading

    from jacobian_lab.engines.base import collection_paused

    inside, release, before = threading.Event(), threading.Event(), gc.get_threshold()

    def hold():
        with collection_paused():
            inside.set()
            release.wait(10)

    worker = threading.Thread(target=hold)
    worker.start()
    inside.wait(10)
    with collection_paused():
        assert gc.get_threshold()[2] == FULL_COLLECTIONS_OFF
    assert gc.get_threshold()[2] == FULL_COLLECTIONS_OFF  # the other thread's recording still runs
    release.set()
    worker.join()
    assert gc.get_threshold() == before


def test_thresholds_set_while_collections_are_held_off_stay():
    """Thresholds f (or another thread) set meanwhile are kept when the pause ends: it gave back the ones it
    saved on entry, undoing them."""
    import gc

    before = gc.get_threshold()

    def f(x):
        gc.set_threshold(5000, 50, 50)
        return np.sum(x ** 2)

    try:
        jl.jacrev(f)(np.ones(3))
        assert gc.get_threshold() == (5000, 50, 50)

        def g(x):
            gc.set_threshold(6000)  # the first alone: the pause's third threshold stays until it ends
            return np.sum(x ** 2)

        jl.jacrev(g)(np.ones(3))
        assert gc.get_threshold() == (6000, 50, 50)
    finally:
        gc.set_threshold(*before)
