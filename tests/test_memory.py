"""Memory budget: refuse oversized Jacobians before allocating; size batches to fit."""
import warnings

import numpy as np
import pytest

import jacobian_lab as jl
from jacobian_lab.accounting import counting
from jacobian_lab import memory
from jacobian_lab.memory import MemoryBudgetError, budget, readable


@pytest.mark.parametrize("mode", ["forward", "reverse", "auto"])
def test_dense_result_over_budget_is_refused_with_its_size(mode):
    f = lambda x: np.tanh(x)  # noqa: E731  -> 2000 x 2000 float64 Jacobian: 32 MB
    with pytest.raises(MemoryBudgetError) as err:
        jl.jacobian(f, np.ones(2000), mode=mode, max_memory=10_000_000)
    message = str(err.value)
    assert "2000x2000" in message and "needs 30.5 MiB" in message and "of 9.54 MiB" in message
    assert "max_memory" in message and "jl.sparse_jacobian for one with few entries per row" in message
    assert isinstance(err.value, MemoryError)


def _rosenbrock(x):
    return np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


HESSIANS = [lambda f, **kw: jl.hessian(f, **kw), lambda f, **kw: jl.jit(jl.hessian(f, **kw))]


@pytest.mark.parametrize("hessian", HESSIANS)
@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_a_hessian_over_budget_is_named_with_the_fixes_that_apply_to_it(hessian, mode):
    """A Hessian's refusal spoke of a Jacobian and offered jvp/vjp, which do not nest, and a slice of
    the outputs of a scalar f."""
    with pytest.raises(MemoryBudgetError) as err, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # jit: not compiled, past the budget; computed eagerly, which refuses
        hessian(_rosenbrock, mode=mode, max_memory=2000)(np.linspace(-1.0, 1.0, 30))
    message = str(err.value)
    assert "the dense 30x30 Hessian needs 7.03 KiB" in message and "jl.hvp" in message
    assert "Jacobian" not in message and "jvp/vjp" not in message and "slice of the outputs" not in message
    with pytest.raises(MemoryBudgetError, match="use reverse mode where one of its sweeps fits, a larger max_memory "
                                                "or jl.hvp"):  # the Hessian fits, one forward seed does not
        jl.hessian(lambda x: np.sum(np.outer(x, x) ** 2), np.linspace(-1.0, 1.0, 30), max_memory=9000)
    with pytest.raises(MemoryBudgetError, match="Jacobian needs .* jvp/vjp"):  # the wording is the Hessian's alone
        jl.jacobian(np.sin, np.ones(30), max_memory=2000)


def test_refusal_happens_before_any_derivative_work_in_reverse():
    with counting() as c, pytest.raises(MemoryBudgetError):
        jl.jacobian(np.tanh, np.ones(2000), mode="reverse", max_memory=10_000_000)
    assert c.cost("cotangent").total() == 0


def test_batch_none_picks_the_largest_batch_that_fits():
    f = lambda x: np.tanh(np.outer(x, x)).ravel()[:50]  # noqa: E731   m = 50 outputs, n = 20
    x = np.linspace(0, 1, 20)
    prediction = jl.predict(f, x)
    seed_bytes = prediction.seed_bytes
    room = 50 * 20 * 8 + 7 * seed_bytes + seed_bytes // 2   # the result plus 7.5 seeds' working set
    step, passes = prediction.schedule("reverse", None, room)
    assert (step, passes) == (7, 8)
    m = jl.measure(f, x, mode="reverse", repeat=1, max_memory=room)
    assert (m.batch_size, m.passes) == (7, 8)
    np.testing.assert_allclose(m.jacobian, jl.jacfwd(f)(x), rtol=1e-12)


def test_batch_none_keeps_the_widest_cotangent_of_a_sweep_cache_sized():
    from jacobian_lab.harness import PASS_ELEMENTS

    f = lambda x: np.exp(np.outer(x, x)).sum(axis=1)  # noqa: E731   widest recorded value: n * n
    x = np.linspace(0, 1, 100)
    step = PASS_ELEMENTS // 100 ** 2
    assert 1 < step < 100
    m = jl.measure(f, x, mode="reverse", repeat=1)
    assert (m.batch_size, m.passes) == (step, -(-100 // step))
    assert jl.predict(f, x).schedule("reverse") == (step, m.passes)
    np.testing.assert_allclose(m.jacobian, jl.jacfwd(f)(x), rtol=1e-12)


def test_explicit_batch_over_budget_names_a_batch_that_fits():
    f = lambda x: np.tanh(np.outer(x, x)).ravel()[:50]  # noqa: E731
    x = np.linspace(0, 1, 20)
    seed_bytes = jl.predict(f, x).seed_bytes
    room = 50 * 20 * 8 + 4 * seed_bytes
    with pytest.raises(MemoryBudgetError, match="batch_size <= 4"):
        jl.jacobian(f, x, mode="reverse", batch_size=50, max_memory=room)


def test_auto_avoids_reverse_when_its_tape_does_not_fit():
    # one output, so reverse is far cheaper in FLOPs, but its tape cannot fit the budget
    f = lambda x: np.sum(np.sin(np.exp(x ** 2)))  # noqa: E731
    x = np.linspace(-1, 1, 1000)
    prediction = jl.predict(f, x)
    assert prediction.choose()[0] == "reverse"
    mode, reason = prediction.choose(max_memory=prediction.tape_bytes // 2)
    assert mode == "forward" and "max_memory" in reason


def test_auto_with_a_batch_size_takes_the_order_whose_passes_fit():
    """At 2 seeds a pass, forward's fit the budget and reverse's sweep does not: auto mode took reverse by
    its FLOPs and was refused, after advising batch_size <= 2 for forward passes of 3."""
    p = jl.problems.get("dense", n=3)
    with pytest.raises(MemoryBudgetError, match="batch_size <= 2"):
        jl.jacobian(p.f, p.x, batch_size=3, max_memory=241)
    prediction = jl.predict(p.f, p.x)
    assert prediction.ops("reverse", 2, 241) < prediction.ops("forward", 2, 241)  # reverse would win on FLOPs
    mode, reason = prediction.choose(batch_size=2, max_memory=241)
    assert mode == "forward" and "a sweep of batch_size = 2 seeds would not fit" in reason
    with counting() as counter:
        J = jl.jacobian(p.f, p.x, batch_size=2, max_memory=241)
    np.testing.assert_allclose(J, p.jacobian_exact(p.x), rtol=1e-12)
    assert counter.passes == 2  # forward: 3 columns, 2 at a time


@pytest.mark.parametrize("bad", [0, -5, "1GB", True, float("nan"), -np.inf])
def test_bad_max_memory(bad):
    with pytest.raises(ValueError, match="max_memory"):
        jl.jacobian(np.sin, np.ones(3), mode="reverse", max_memory=bad)


def test_default_budget_is_half_the_available_memory():
    assert 0 < budget() < 2**50
    assert budget(12345) == 12345


def _outer_head(x):
    return np.tanh(np.outer(x, x)).ravel()[:50]


def test_forward_batch_over_budget_is_refused_naming_a_batch_that_fits():
    x = np.linspace(0, 1, 20)
    with pytest.raises(MemoryBudgetError, match=r"batch_size <= \d+") as err:
        jl.jacobian(_outer_head, x, mode="forward", batch_size=20, max_memory=60_000)
    assert "forward pass with 20 tangent seeds" in str(err.value)


def test_forward_batch_none_shrinks_to_fit_the_budget():
    x = np.linspace(0, 1, 20)
    m = jl.measure(_outer_head, x, mode="forward", repeat=1, max_memory=60_000)
    assert 1 < m.batch_size < 20
    np.testing.assert_allclose(m.jacobian, jl.jacrev(_outer_head)(x), rtol=1e-12)
    # the pass that outgrew the budget stopped; then every seed went through once
    assert m.passes == -(-20 // m.batch_size)
    full = jl.measure(_outer_head, x, mode="forward", batch_size=m.batch_size, repeat=1)
    assert m.cost["primal"].total() > full.cost["primal"].total()  # the stopped pass's work is counted


def test_measure_reports_the_passes_that_ran():
    x = np.linspace(0, 1, 20)
    assert (jl.measure(_outer_head, x, mode="reverse", batch_size=7, repeat=1).passes) == 8  # 50 outputs
    assert (jl.measure(_outer_head, x, mode="forward", batch_size=6, repeat=1).passes) == 4
    assert jl.measure(lambda v: np.ones(3), x, mode="reverse", repeat=1).passes == 1


def test_max_memory_takes_numpy_numbers_and_inf_as_no_limit():
    assert budget(np.int64(10**6)) == 10**6 and budget(np.float32(2048)) == 2048
    assert budget(np.inf) > 2**62
    J = jl.jacobian(np.sin, np.zeros(3), max_memory=np.inf)
    assert np.array_equal(J, np.eye(3))


def _sum_sin(x):
    return np.sum(np.sin(x))  # of 1000 elements: an 8,000-byte gradient, 8,000 bytes of tangents a seed


def test_a_single_seed_over_budget_is_not_told_to_shrink_its_batch():
    with pytest.raises(MemoryBudgetError, match="forward pass with 1 tangent seed needs") as err:
        jl.jacfwd(_sum_sin, batch_size=1, max_memory=8100)(np.ones(1000))
    assert "batch_size" not in str(err.value)


@pytest.mark.parametrize("batch_size", [5, 3, None])
def test_forward_mode_names_a_result_over_budget_as_the_other_orders_do(batch_size):
    """Without a tape, forward mode learns the result's size from a pass, which stopped first: it blamed the
    tangents and advised batch sizes that could not help, where reverse and auto name the 12x12 result."""
    f = lambda x: np.convolve(x, np.array([1.0, -2.0, 1.0]), mode="same") + x ** 3  # noqa: E731
    for mode in ("forward", "reverse", "auto"):
        with pytest.raises(MemoryBudgetError, match=r"the dense 12x12 Jacobian needs 1.12 KiB, over the memory budget"):
            jl.jacobian(f, np.linspace(-1.0, 1.0, 12), mode=mode, batch_size=batch_size, max_memory=400)


def test_a_forward_pass_over_budget_retries_with_at_most_half_the_seeds(monkeypatch):
    from jacobian_lab import harness

    steps, run = [], harness._columns

    def attempt(push, x, step, *args):
        steps.append(step)
        return run(push, x, step, *args)

    monkeypatch.setattr(harness, "_columns", attempt)
    rng = np.random.default_rng(0)
    layers = [rng.normal(size=(200, 200)) / 14 for _ in range(5)]

    def deep(x):  # a pass stops part way through the layers: what it created is a low estimate
        for W in layers:
            x = np.tanh(W @ x)
        return x[:50] * x[50:100]

    x = np.linspace(0.0, 1.0, 200)
    J = jl.jacobian(deep, x, mode="forward", max_memory=200_000)
    np.testing.assert_allclose(J, jl.jacrev(deep)(x), rtol=1e-12, atol=1e-15)
    assert all(b <= a // 2 for a, b in zip(steps, steps[1:])) and len(steps) <= 8  # not one seed fewer at a time


def test_a_batch_over_budget_on_a_tape_is_refused_before_any_pass_runs():
    f = lambda x: np.concatenate([np.sin(x)] * 50)  # noqa: E731   m = 50 n: auto takes forward, on its tape
    x = np.linspace(0, 1, 20)
    seed_bytes = 8 * (20 + 1000)  # one seed's tangents: sin(x) and the concatenation
    tight = 1000 * 20 * 8 + 3 * seed_bytes
    for _ in range(2):  # the first call remembers the order chosen, so the second counts the harness alone
        with counting() as c, pytest.raises(MemoryBudgetError, match="forward pass with 20 tangent seeds") as err:
            jl.jacobian(f, x, batch_size=20, max_memory=tight)
    assert "batch_size <= 3" in str(err.value)
    assert c.cost("tangent") == jl.Cost() and c.passes == 0


@pytest.mark.parametrize("call, expected", [
    # the dense 4x4 result: 128 bytes, over a budget of one byte
    (lambda: jl.jacobian(np.sin, np.ones(4), max_memory=1), "needs 128 bytes, over the memory budget of 1 byte"),
    (lambda: jl.jacfwd(_sum_sin, batch_size=1, max_memory=8100)(np.ones(1000)),
     "more than 100 bytes of tangents, what max_memory leaves beside the result"),
    (lambda: jl.jacobian(np.sin, np.ones(2000), max_memory=5 * 2**20), "needs 30.5 MiB, over the memory budget of 5 MiB"),
    (lambda: jl.jacobian(np.sin, np.ones(20000), max_memory=2**30), "needs 2.98 GiB, over the memory budget of 1 GiB"),
])
def test_memory_messages_give_bytes_in_the_unit_they_fill(call, expected):
    with pytest.raises(MemoryBudgetError) as err:
        call()
    assert expected in str(err.value)
    assert "e-" not in str(err.value) and "e+" not in str(err.value)


def test_a_sweep_over_budget_names_its_bytes_in_kib():
    f = lambda x: np.tanh(np.outer(x, x)).ravel()[:50]  # noqa: E731
    x = np.linspace(0, 1, 20)
    seed_bytes = jl.predict(f, x).seed_bytes
    room = 4 * seed_bytes
    with pytest.raises(MemoryBudgetError) as err:
        jl.jacobian(f, x, mode="reverse", batch_size=50, max_memory=50 * 20 * 8 + room)
    assert f"needs about {readable(50 * seed_bytes)}, over the {readable(room)} left" in str(err.value)
    assert readable(room).endswith(" KiB")


def test_auto_names_the_memory_reverse_would_need_readably():
    prediction = jl.predict(lambda x: np.sum(np.sin(np.exp(x ** 2))), np.linspace(-1, 1, 1000))
    _, reason = prediction.choose(max_memory=prediction.tape_bytes // 2)
    assert f"reverse would need {readable(prediction.reverse_bytes)} " in reason
    assert f"over max_memory = {readable(prediction.tape_bytes // 2)}" in reason and "GiB" not in reason


def _copies(x):
    return np.concatenate([np.sin(x)] * 50)  # m = 50 n: auto takes forward, on its tape


def _suggests_batches(message):
    return "batch_size" in message


def test_a_batch_on_a_tape_that_not_one_seed_fits_is_told_only_fixes_that_can_work():
    """Not one seed's tangents fit: no batch size helps (batch_size=None stops the same way), and one reverse
    sweep does not fit either, so only a larger max_memory and products are suggested."""
    x = np.linspace(0, 1, 20)
    prediction = jl.predict(_copies, x)
    tight = prediction.dense_bytes + 4_000
    assert prediction.tangent_bytes > 4_000 and prediction.seed_bytes > 4_000
    for batch_size in (20, None, 1):
        with pytest.raises(MemoryBudgetError) as err:
            jl.jacobian(_copies, x, batch_size=batch_size, max_memory=tight)
        message = str(err.value)
        assert not _suggests_batches(message) and "reverse mode" not in message, (batch_size, message)
        assert "a larger max_memory" in message and "jvp/vjp" in message
    np.testing.assert_allclose(jl.jacobian(_copies, x, max_memory=4 * tight), jl.jacrev(_copies)(x), rtol=1e-12)


def test_a_batch_on_a_tape_that_one_seed_may_fit_is_told_to_run_unsized():
    """A float32 x's tangents are priced at 8 bytes an element but may take 4: batch_size=None takes one seed per
    pass, which fits here, and one reverse sweep (float32 cotangents) fits too."""
    x = np.linspace(0, 1, 20).astype(np.float32)
    prediction = jl.predict(_copies, x)
    room = 6_000
    assert prediction.tangent_bytes // 2 <= room < prediction.tangent_bytes and prediction.seed_bytes <= room
    with pytest.raises(MemoryBudgetError) as err:
        jl.jacobian(_copies, x, batch_size=20, max_memory=prediction.dense_bytes + room)
    message = str(err.value)
    assert "batch_size=None" in message and "batch_size <=" not in message and "reverse mode" in message
    for mode in ("auto", "reverse"):  # the fixes it names work
        J = jl.jacobian(_copies, x, mode, max_memory=prediction.dense_bytes + room)
        np.testing.assert_allclose(J, jl.jacrev(_copies)(x), rtol=1e-6)


def test_a_sweep_that_not_one_cotangent_fits_is_not_told_to_shrink_its_batch():
    x = np.linspace(0, 1, 20)
    with pytest.raises(MemoryBudgetError) as err:
        jl.jacobian(_outer_head, x, mode="reverse", batch_size=50, max_memory=50 * 20 * 8 + 100)
    message = str(err.value)
    assert not _suggests_batches(message) and "one cotangent alone needs about" in message
    assert "a larger max_memory" in message and "jvp/vjp" in message
    assert "forward mode" not in message  # one seed's tangents do not fit 100 bytes either


@pytest.mark.parametrize("batch_size", [None, 1])
def test_a_sweep_of_one_cotangent_over_the_budget_is_refused_as_a_forward_pass_of_one_seed(batch_size):
    """The budget bounds one sweep as it bounds one forward pass: where neither order fits one seed,
    reverse mode refuses as auto mode and forward mode do (it used to run one cotangent at a time)."""
    x = np.linspace(0, 1, 20)
    prediction = jl.predict(_outer_head, x)
    budget = prediction.dense_bytes + prediction.seed_bytes // 2
    for mode in ("reverse", "auto", "forward"):
        with pytest.raises(MemoryBudgetError) as err:
            jl.jacobian(_outer_head, x, mode, batch_size=batch_size, max_memory=budget)
        assert not _suggests_batches(str(err.value)) and "a larger max_memory" in str(err.value)
        if mode == "auto":  # which weighed the sweep first: its refusal named the forward pass alone
            assert f"nor does a reverse sweep (about {readable(prediction.seed_bytes)})" in str(err.value)
    message = str(err.value)
    with pytest.raises(MemoryBudgetError, match="a sweep with 1 cotangent needs about") as err:
        jl.jacobian(_outer_head, x, "reverse", batch_size=batch_size, max_memory=budget)
    assert "forward mode" not in str(err.value) and "one cotangent alone" not in str(err.value)
    assert "use reverse mode," not in message  # forward mode, without a tape, says when it would work


def test_a_forward_pass_whose_seeds_each_outgrow_the_budget_is_not_told_to_shrink_its_batch():
    # without a tape: the pass of 10 seeds stops at its first tangent, 80,000 bytes, 8,000 a seed, over 100;
    # so is the 8 MB result, which is what no batch size mends
    with pytest.raises(MemoryBudgetError) as err:
        jl.jacfwd(np.sin, batch_size=10, max_memory=100)(np.ones(1000))
    message = str(err.value)
    assert "the dense 1000x1000 Jacobian needs 7.63 MiB" in message and not _suggests_batches(message)
    assert "a larger max_memory" in message and "jvp/vjp" in message
    with pytest.raises(MemoryBudgetError):  # a batch size of 1 would not have fitted
        jl.jacfwd(np.sin, batch_size=1, max_memory=100)(np.ones(1000))


def test_a_forward_pass_that_a_smaller_batch_may_fit_still_names_one():
    # 10 seeds of sin's tangents take 80,000 bytes, 4 of them fit 40,000: a smaller batch is worth naming
    import re

    with pytest.raises(MemoryBudgetError) as err:
        jl.jacfwd(lambda x: np.sum(np.sin(x)), batch_size=10, max_memory=40_000)(np.ones(1000))
    # the pass stopped part way, so its bytes so far bound the batch from above: batch_size=None comes first
    fits = re.search(r"use batch_size=None, which sizes the passes to fit, a smaller batch_size \(batch_size <= "
                     r"(\d+) at most: the pass stopped part way, so fewer may be needed\), reverse mode where one "
                     "of its sweeps fits or a larger max_memory", str(err.value))
    assert fits and 1 <= int(fits.group(1)) < 10
    assert jl.jacfwd(lambda x: np.sum(np.sin(x)), max_memory=40_000)(np.ones(1000)).shape == (1000,)  # as advised


# --- the constants f combines with x -------------------------------------------------------------
def _peak_bytes(call) -> int:
    import tracemalloc

    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("order", ["forward", "reverse"])
def test_a_broadcast_constant_is_not_materialised(order):
    """np.broadcast_to(row, (300, 4000)) repeats 32 KiB of row: the forward engine reads it as it is,
    and the tape keeps it as the broadcast it is, over a copy of row."""
    row = np.linspace(0.0, 1.0, 4000)
    wide = np.broadcast_to(row, (300, 4000))  # 9.2 MiB as a copy
    f = lambda x: np.tanh(wide @ x)  # noqa: E731
    x = np.linspace(-1.0, 1.0, 4000)
    if order == "forward":
        peak = _peak_bytes(lambda: jl.jvp(f, x, x))
    else:
        peak = _peak_bytes(lambda: jl.vjp(f, x)[1](np.ones(300)))
    materialised = wide.size * wide.itemsize
    assert peak < materialised // 20


def test_the_tape_keeps_a_strided_constant_with_its_strides():
    """A view keeps its layout in the tape, as the forward engine reads it: the orders round alike."""
    from jacobian_lab import snapshots

    A = np.arange(24.0).reshape(4, 6)
    for view in (A[::2, ::-1].T, np.broadcast_to(A[1], (5, 6)), A[1:, 2:]):
        kept = snapshots.snapshot(view)
        assert kept.strides == view.strides and not kept.flags.writeable and snapshots.immutable(kept)
        np.testing.assert_array_equal(kept, view)
        assert snapshots.root(kept).nbytes <= 2 * np.unique(view).size * view.itemsize
    column = A[:, 2]  # spans most of A: copied compactly
    assert snapshots.snapshot(column).strides == (8,)
    _, pullback = jl.engines.get("reverse").vjp(lambda x: x * A[::2, ::-1].T, np.ones((6, 2)))
    record = pullback.tape.records[-1]
    assert record.args[1].strides == A[::2, ::-1].T.strides
    np.testing.assert_array_equal(pullback(np.ones((1, 6, 2)))[0], A[::2, ::-1].T)


def test_the_tape_counts_the_copies_it_keeps_of_constants_apart_from_its_memory():
    """The tape's copies of f's writeable constants (operands and parameters alike) are counted in
    `Tape.kept_bytes`; an array that is read-only already is kept as it is and costs nothing. The
    tape memory the budget holds (`fresh_bytes`, `tape_bytes`) leaves them out, as it leaves out
    f's own arrays: it is the same whether f's constants are writeable or not."""
    rng = np.random.default_rng(0)
    W, row, lo = rng.normal(size=(200, 200)), rng.normal(size=200), np.full(200, -0.5)
    wide = np.broadcast_to(row, (50, 200))
    f = lambda x: np.sum(np.clip(np.tanh(W @ x), lo, None)) + wide @ x  # noqa: E731
    x = np.linspace(-1.0, 1.0, 200)

    def tape():
        return jl.engines.get("reverse").vjp(f, x)[1].tape

    copied, budgeted = tape(), jl.measure(f, x, mode="reverse", repeat=1).tape_bytes
    assert copied.kept_bytes == W.nbytes + row.nbytes + lo.nbytes  # the broadcast costs its row
    for array in (W, row, lo):
        array.flags.writeable = False
    assert tape().kept_bytes == 0
    assert jl.measure(f, x, mode="reverse", repeat=1).tape_bytes == budgeted == copied.fresh_bytes


def test_the_tape_memory_counts_the_copy_a_primitive_returns_a_view_of():
    """ravel of a transpose copies, then views the copy (as reshape does): the tape holds the copy, which tape_bytes
    (and the budget a tape is held to) left out as a view, so 30 such steps held 236 MiB where 7 were counted."""
    x = np.linspace(0.0, 1.0, 900)

    def f(x):
        z = np.ravel(np.reshape(x, (30, 30)).T)  # reshape and transpose are views of x; ravel's copy is not
        return np.sum(z**2)

    vectors = 2 * x.nbytes  # ravel's copy and the square, beside the scalar sum
    assert jl.measure(f, x, mode="reverse", repeat=1).tape_bytes == jl.predict(f, x).tape_bytes == vectors + 8


@pytest.mark.parametrize("mode", ["forward", "reverse", "auto"])
def test_compiling_past_the_budget_computes_eagerly_with_a_warning(mode):
    x, result = np.full(200, 0.5), 200 * 200 * 8  # the Hessian: 312.5 KiB, and as much again of seeds
    jitted = jl.jit(jl.hessian(_rosenbrock, mode=mode, max_memory=1.25 * result))
    with pytest.warns(UserWarning, match=r"jit: the Hessian of _rosenbrock is computed without compiling, because "
                                         r"compiling the dense 200x200 Hessian keeps it and the 200x200 \w+ seeds "
                                         r"of its passes, 625 KiB, over the memory budget of 391 KiB"):
        H = jitted(x)
    np.testing.assert_array_equal(H, jl.hessian(_rosenbrock, mode=mode)(x))
    with pytest.raises(Exception, match="a larger max_memory lets it compile"):
        jitted.program(x)


def test_auto_compiles_one_order_where_both_do_not_fit():
    x, result = np.full(200, 0.5), 200 * 200 * 8
    both = jl.jit(jl.hessian(_rosenbrock, mode="auto"))
    one = jl.jit(jl.hessian(_rosenbrock, mode="auto", max_memory=3 * result))  # J and seeds once, not twice
    np.testing.assert_array_equal(one(x), both(x))
    assert one.program(x).mode == "forward" and one.compiles == 1


def test_the_hessians_of_a_vector_valued_f_over_budget_are_told_fixes_that_take_them():
    with pytest.raises(MemoryBudgetError) as err:
        jl.hessian(lambda x: x ** 3, np.full(300, 0.5), max_memory=1 << 20)
    assert str(err.value) == (
        "the 300 dense 300x300 Hessians of f's outputs need 206 MiB, over the memory budget of 1 MiB (max_memory). "
        "Differentiate fewer outputs, pass a larger max_memory, or use jl.hvp of a scalar function of them "
        "(one output, or a weighted sum).")
    v = np.zeros(300)
    v[7] = 1.0  # what it names works: the Hessian-vector product of one output, here 6 x_7 e_7
    np.testing.assert_allclose(jl.hvp(lambda x: (x ** 3)[7], np.full(300, 0.5), v), 3.0 * v)


def test_a_gradient_frees_each_recorded_value_once_its_sweep_has_passed_it():
    import tracemalloc

    def f(v):
        return np.sum(np.tanh(v) ** 2) + 0.01 * np.sum(v[1:] * v[:-1]) + np.log(np.sum(np.exp(np.sin(v))))

    x = np.random.default_rng(2).standard_normal(200_000)

    def peak(call):
        call()  # first-call work (imports, caches) out of the way
        tracemalloc.start()
        try:
            result = call()
            return tracemalloc.get_traced_memory()[1], result
        finally:
            tracemalloc.stop()

    kept, via_vjp = peak(lambda: jl.vjp(f, x)[1](1.0))  # a pullback the caller may call again keeps its tape
    freed, gradient = peak(lambda: jl.grad(f)(x))
    np.testing.assert_array_equal(gradient, via_vjp)
    assert freed < 0.75 * kept, (freed, kept)


def test_a_compiled_jacobian_keeps_its_compressed_program_where_no_dense_order_fits():
    def band(x):
        return x[2:] * x[1:-1] * x[:-2] + np.sin(x[2:])

    x = np.random.default_rng(0).standard_normal(40)
    jitted = jl.jit(jl.jacobian(band, max_memory=38 * 40 * 8 + 2000))  # J and 3 seeds fit, 40x40 seeds do not
    np.testing.assert_array_equal(jitted(x), jl.jacobian(band, x))
    assert jitted.program(x).mode == "forward" and sum(jitted.program(x).seeds) == 3


@pytest.mark.parametrize("make", [jl.jacrev, jl.jacobian, jl.grad], ids=["jacrev", "auto", "grad"])
def test_a_tape_outgrowing_the_budget_stops_f_where_it_outgrows_it(make, monkeypatch):
    """The tape was recorded whole and only then refused: 1 GB held under a 200 MB budget, and the message
    called it a sweep of one cotangent; a gradient, under the default budget, ran into NumPy's MemoryError."""
    import tracemalloc

    def f(x):
        for _ in range(200):
            x = x * 0.999 + 0.001 * np.sin(x)
        return np.sum(x)

    from jacobian_lab import harness

    x = np.linspace(-1.0, 1.0, 10_000)  # 80 KB a value: the whole tape would hold about 48 MB
    monkeypatch.setattr(memory, "recently_available", lambda: 4_000_000)  # the default budget: half of it
    monkeypatch.setattr(harness, "RECORDED_BYTES", 1_000_000)  # (64 MiB: smaller tapes are recorded whole)
    tracemalloc.start()
    try:
        with pytest.raises(MemoryBudgetError, match=r"the tape of f's values that sweeps read .* "
                                                     r"passed .* operations: .* Forward mode keeps no tape"):
            make(f)(x)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 6_000_000  # the limit (2 MB of budget, 4 MB for grad) and the value that passed it
    monkeypatch.undo()
    v = np.random.default_rng(0).normal(size=x.size)  # the whole gradient, checked along a direction by a JVP
    np.testing.assert_allclose(np.dot(make(f)(x), v), jl.jvp(f, x, v)[1], rtol=1e-12)


def test_a_gradient_may_hold_all_the_memory_the_process_can_take(monkeypatch):
    """grad, vjp and value_and_grad take no max_memory: their tape was held to half the memory free, which refused
    gradients that fit. A grad sweep frees the tape as it goes, so it may hold all of it, and is refused past."""
    from jacobian_lab import harness

    def f(x):
        for _ in range(40):
            x = x * 0.999 + 0.001 * np.sin(x)
        return np.sum(x)

    x = np.linspace(-1.0, 1.0, 10_000)  # about 12.8 MB of tape: four values of 80 KB a step
    monkeypatch.setattr(harness, "RECORDED_BYTES", 1_000_000)
    monkeypatch.setattr(memory, "recently_available", lambda: 16_000_000)  # refused under half of it before
    assert jl.grad(f)(x).shape == x.shape
    monkeypatch.setattr(memory, "recently_available", lambda: 6_000_000)
    with pytest.raises(MemoryBudgetError, match=r"passed 5.72 MiB after .* operations: the memory this process "
                                                 r"can take now"):
        jl.grad(f)(x)


@pytest.mark.parametrize("make, advice", [
    (jl.sparse_jacobian, "A sparsity pattern is read off that tape"),
    (lambda f: (lambda x: jl.sparsity(f, x)), "A sparsity pattern is read off that tape"),
    (lambda f: jl.jit(jl.sparse_jacobian(f)), "A sparsity pattern is read off that tape"),
], ids=["sparse_jacobian", "sparsity", "jit(sparse_jacobian)"])
def test_every_tape_stops_f_where_it_outgrows_what_the_process_can_take(make, advice, monkeypatch):
    """Sparse Jacobians, patterns and compiled Jacobians recorded their tape whole, with no limit: past the
    memory the process can take, NumPy failed part way, after f had run as far as it could."""
    from jacobian_lab import harness

    def f(x):
        for _ in range(200):
            x = x * 0.999 + 0.001 * np.sin(x)
        return x[1:] - x[:-1]

    x = np.linspace(-1.0, 1.0, 10_000)  # 80 KB a value: the whole tape would hold about 48 MB
    monkeypatch.setattr(harness, "RECORDED_BYTES", 1_000_000)
    monkeypatch.setattr(memory, "recently_available", lambda: 2_000_000)
    with pytest.raises(MemoryBudgetError, match=r"passed 1.91 MiB after \d+ operations: the memory this process "
                                                 rf"can take now. {advice}") as refused:
        make(f)(x)
    assert int(str(refused.value).split(" after ")[1].split()[0]) < 100  # of about 800


def test_a_compiled_jacobians_tape_is_held_to_its_max_memory(monkeypatch):
    """Recorded whole, as in jit's sparse paths, and refused after f had run, if not first by NumPy."""
    from jacobian_lab import harness

    def f(x):
        for _ in range(200):
            x = x * 0.999 + 0.001 * np.sin(x)
        return np.sum(x)

    monkeypatch.setattr(harness, "RECORDED_BYTES", 1_000_000)
    with pytest.raises(MemoryBudgetError, match=r"passed 1.91 MiB after \d+ operations: more than the memory budget "
                                                 r"of 1.91 MiB \(max_memory\) leaves.*A compiled Jacobian records"):
        jl.jit(jl.jacobian(f, mode="forward", max_memory=2_000_000))(np.linspace(-1.0, 1.0, 10_000))


def test_the_default_budget_is_what_the_address_space_limit_and_the_cgroup_leave(monkeypatch, tmp_path):
    """Half the memory the OS had free was the budget under a ulimit -v or a container's limit too: past them
    NumPy failed with a bare MemoryError, or the process was killed."""
    import resource

    free = memory._system_available()
    monkeypatch.setattr(memory, "_system_available", lambda: free)  # it moves as other processes run
    own, group = tmp_path / "cgroup", tmp_path / "groups" / "job"
    own.write_text("0::/job\n")
    group.mkdir(parents=True)
    (group / "memory.max").write_text("max\n")
    (group / "memory.current").write_text("3000\n")
    (group / "memory.stat").write_text("anon 1000\ninactive_file 2000\n")  # file cache the kernel reclaims
    monkeypatch.setattr(memory, "OWN_GROUP", str(own))
    monkeypatch.setattr(memory, "CGROUPS", str(tmp_path / "groups"))
    assert memory.available_bytes() <= free
    (group / "memory.max").write_text(f"{(1 << 30) + 1000}\n")
    assert memory.available_bytes() == min(1 << 30, memory._address_space_room(), free)
    monkeypatch.setattr(resource, "getrlimit", lambda which: (1 << 20, resource.RLIM_INFINITY))
    assert memory.available_bytes() == 0  # a 1 MiB address space is used up by Python itself
