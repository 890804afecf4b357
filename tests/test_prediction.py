"""predict(): exact agreement with the counted work, auto mode, cheap-gradient ratios."""
import math

import numpy as np
import pytest
import scipy.sparse
import scipy.special
from helpers import assert_fd_close, central_differences

import jacobian_lab as jl
from jacobian_lab.accounting import Cost, counting

SMALL = {"seed": {"n": 40}, "mlp_loss": {"n": 66}, "curve": {"m": 30}, "dense": {"n": 25},
         "bratu": {"n": 40}, "wide_to_tall": {"n": 30, "m": 20}, "tall_to_wide": {"n": 6, "m": 9}}


def small(name):
    return jl.problems.get(name, **SMALL[name])


def counted(f, x, mode, batch_size):
    with counting() as c:
        jl.jacobian(f, x, mode=mode, batch_size=batch_size)
    return c.costs()


@pytest.mark.parametrize("name", jl.problems.names())
@pytest.mark.parametrize("mode", ["forward", "reverse"])
@pytest.mark.parametrize("batch_size", [None, 1, 7])
def test_prediction_equals_measured_count(name, mode, batch_size):
    p = small(name)
    assert jl.predict(p.f, p.x).cost(mode, batch_size) == counted(p.f, p.x, mode, batch_size)


@pytest.mark.parametrize("name", jl.problems.names())
def test_prediction_at_default_sizes_equals_measurement(name):
    p = jl.problems.get(name)
    prediction = jl.predict(p.f, p.x)
    for mode in ("forward", "reverse"):
        m = jl.measure(p.f, p.x, mode=mode, repeat=1, prediction=prediction)
        assert m.cost == prediction.cost(mode)
        assert m.passes == prediction.schedule(mode)[1]


@pytest.mark.parametrize("name", jl.problems.names())
def test_cheap_gradient_ratios_within_three(name):
    p = jl.problems.get(name)
    prediction = jl.predict(p.f, p.x)
    assert 1.0 < prediction.jvp_ratio() <= 3.0
    assert 1.0 < prediction.vjp_ratio() <= 3.0


def test_cheap_gradient_ratios_of_an_f_without_arithmetic_are_undefined():
    """They read 0.00 (a ratio that is never below 1 by definition) where f only moves values."""
    prediction = jl.predict(lambda x: x[::-1].ravel(), np.ones((3, 2)))
    assert math.isnan(prediction.jvp_ratio()) and math.isnan(prediction.vjp_ratio())
    table = jl.compare(lambda x: x[::-1].ravel(), np.ones((3, 2)), modes=["forward"], repeat=1).table()
    assert "cheap-gradient ratios: none, as f does no arithmetic" in table


@pytest.mark.parametrize("name", jl.problems.names())
@pytest.mark.parametrize("batch_size", [None, 1])
def test_auto_never_picks_the_costlier_order(name, batch_size):
    p = small(name)
    measured = {m: counted(p.f, p.x, m, batch_size) for m in ("forward", "reverse")}
    totals = {m: sum(c.values(), Cost()).total() for m, c in measured.items()}
    mode, reason = jl.predict(p.f, p.x).choose(batch_size)
    assert totals[mode] <= min(totals.values())
    assert mode in reason or "both" in reason


@pytest.mark.parametrize("name", jl.problems.names())
def test_the_float_totals_auto_compares_are_the_predicted_costs(name):
    prediction = jl.predict(small(name).f, small(name).x)
    for batch_size in (None, 1, 7):
        for mode in ("forward", "reverse"):
            assert prediction.ops(mode, batch_size) == prediction.total(mode, batch_size).total()
        assert prediction.mode(batch_size) == prediction.choose(batch_size)[0]


def test_auto_follows_cost_not_shape():
    # n = 3 inputs, m = 4 outputs, but the outputs share one expensive subexpression that
    # forward mode must push 3 tangents through and reverse only needs once per row.
    def f(x):
        h = np.tanh(np.outer(x, x)).sum()
        return np.stack([h, 2 * h, 3 * h, 4 * h])
    x = np.array([0.1, 0.2, 0.3])
    prediction = jl.predict(f, x)
    mode, _ = prediction.choose()
    fwd, rev = prediction.total("forward").total(), prediction.total("reverse").total()
    assert mode == ("forward" if fwd <= rev else "reverse")


def test_seed_problem_counts_exactly():
    # sum(sin(exp(x**2))) at n = 1000: x**2 (N flops), exp, sin (N transcendentals each), sum (N - 1).
    p = jl.problems.get("seed", n=1000)
    assert jl.count_flops(p.f, p.x) == Cost(1999, 2000)
    prediction = jl.predict(p.f, p.x)
    assert prediction.primal == Cost(1999, 2000)
    # reverse: sum -> broadcast (0); sin: cos(x) staged once (N transc) then g*cos (N);
    # exp: g*out (N); square: 2x staged (N), g*2x (N)  => 4N flops + N transcendentals
    assert prediction.cost("reverse")["cotangent"] == Cost(4000, 1000)
    # forward, one seed per pass: per pass 2x and cos(x) (N flops, N transc) plus
    # t*2x, t*exp, t*cos (3N) and the sum of the tangent (N - 1)
    assert prediction.cost("forward", 1)["tangent"] == 1000 * Cost(1000 + 3000 + 999, 1000)
    assert prediction.cost("forward", 1)["primal"] == 1000 * Cost(1999, 2000)


def test_vector_mode_evaluates_the_primal_once_per_pass():
    p = jl.problems.get("seed", n=100)
    prediction = jl.predict(p.f, p.x)
    assert prediction.cost("forward", 10)["primal"] == 10 * prediction.primal
    assert prediction.cost("forward", 100)["primal"] == prediction.primal
    assert prediction.cost("reverse", 1)["primal"] == prediction.primal


@pytest.mark.parametrize("mode", ["Forward", "rev", "jit", None])
def test_a_mode_other_than_the_two_orders_and_auto_is_refused(mode):
    # anything but "forward" used to be priced as reverse mode, without a word
    prediction = jl.predict(lambda x: np.sin(x) * x[0], np.ones(4))
    for ask in (prediction.total, prediction.cost, prediction.ops, prediction.schedule, prediction.exact):
        with pytest.raises(ValueError, match="mode must be 'forward', 'reverse' or 'auto'.*prediction.mode()"):
            ask(mode)


def test_staging_is_paid_once_per_tape():
    p = jl.problems.get("seed", n=50)
    prediction = jl.predict(p.f, p.x)
    assert prediction.staging == Cost(50, 50)  # 2x and cos(x)
    y, pullback = jl.vjp(p.f, p.x)
    with counting() as c:
        pullback(np.ones(()))
        pullback(np.ones(()))
    assert c.cost("cotangent") == prediction.staging + 2 * prediction.cotangent.per_seed


def test_predict_accepts_structured_inputs():
    f = lambda p: np.sum(p["w"] * p["b"])  # noqa: E731
    x = {"w": np.ones(3), "b": np.arange(3.0)}
    prediction = jl.predict(f, x)
    assert (prediction.n, prediction.m) == (6, 1)
    assert prediction.primal == Cost(5, 0)


def test_counting_an_auto_jacobian_includes_the_prediction_that_chose_it():
    p = jl.problems.get("seed", n=50)
    prediction = jl.predict(p.f, p.x)
    t, u = prediction.tangent, prediction.cotangent
    jl.prediction.clear_cache()
    with counting() as first:
        jl.jacobian(p.f, p.x)                      # auto: reverse, sweeping the prediction's tape
    assert first.cost("primal") == prediction.primal  # the tape is recorded once
    assert first.cost("tangent") == 2 * t.fixed + 3 * t.per_seed       # forward probes of 1 and 2 seeds
    # probe sweeps of 1, 1 and 2 seeds (staging on the first), then the real sweep of 1 seed
    assert first.cost("cotangent") == prediction.staging + 4 * u.fixed + 5 * u.per_seed
    with counting() as again:
        jl.jacobian(p.f, p.x)                      # the same tape: its costs are known, no probes run
    assert again.costs() == counted(p.f, p.x, "reverse", None)


def _reused(f, x):
    """The prediction auto mode makes for (f, x) with whatever the cache already holds."""
    from jacobian_lab.harness import prepare
    return jl.prediction.probe(*prepare(f, x), reuse=True)[0]


def _power(p):
    return lambda x: np.sum(x ** p)  # x ** 3 differentiates through a square, x ** 2.5 through a power


def _gather(indices):
    return lambda x: np.sum(x[np.array(indices)])  # repeated indices cost adds in reverse


def _traced_power(x):
    return np.sum(x[1:] ** x[0])  # the exponent is traced: no square however it is valued


def _det(x):
    return np.linalg.det(x[:4].reshape(2, 2)) * x[4:]  # LU's cofactor where a is well conditioned, else the SVD's


X = np.linspace(0.5, 1.5, 6)
X3 = np.concatenate([[3.0], X[1:]])
NEAR_SINGULAR = np.array([1.0, 1.0, 1.0, 1.0 + 1e-6, 0.5, 0.7])  # cond ~ 4e6, past ε^(-1/4)


@pytest.mark.parametrize("first, x_first, second, x_second", [
    (_power(3.0), X, _power(2.5), X),
    (_power(np.array(3.0)), X, _power(np.array(2.5)), X),
    (_power(np.float64(3.0)), X, _power(np.array(3.0)), X),
    (np.prod, X, np.prod, np.where(X > 1, 0.0, X)),  # zeros take prod's exact route
    (_gather([0, 1]), X, _gather([1, 1]), X),
    (_traced_power, X3, _traced_power, X),
    (_det, X, _det, NEAR_SINGULAR),
    (scipy.special.gammaln, X, scipy.special.gammaln, X - 1.0),  # a negative element takes the reflection
    (scipy.special.gamma, X - 1.0, scipy.special.gamma, X),
])
def test_a_reused_prediction_is_what_a_fresh_one_would_be(first, x_first, second, x_second):
    jl.prediction.clear_cache()
    _reused(first, x_first)
    assert _reused(second, x_second) == jl.predict(second, x_second)
    assert _reused(first, x_first) == jl.predict(first, x_first)


def test_nested_counting_blocks_add_up():
    with counting() as outer:
        with counting() as inner:
            jl.jacrev(lambda x: np.sum(x ** 2))(np.ones(3))
        jl.jacrev(lambda x: np.sum(x ** 2))(np.ones(3))
    assert outer.total() == 2 * inner.total() and outer.passes == 2 * inner.passes == 2


def test_a_tape_that_cannot_be_keyed_is_probed_every_time(monkeypatch):
    from jacobian_lab.engines.reverse import Tape

    monkeypatch.setattr(Tape, "signature", lambda self, output, pattern=False: ({"not": "hashable"},))
    jl.prediction.clear_cache()
    p = small("seed")
    for _ in range(2):
        with counting() as c:
            J = jl.jacobian(p.f, p.x)
        assert c.cost("tangent") != Cost()  # the forward probes ran again
        np.testing.assert_allclose(J, p.jacobian_exact(p.x), rtol=1e-12)
    assert not jl.prediction._DERIVATIVE_COSTS


def test_a_nan_constant_finds_its_remembered_costs():
    """NaN != NaN: a signature holding a NaN equalled no other, so every auto call probed again, the caches
    filled, and measure counted the probes beside the Jacobian."""
    f = lambda x: np.fmax(x, float("nan")) * np.sin(x)  # noqa: E731  (fmax ignores NaN)
    x = np.linspace(0.1, 1.0, 5)
    jl.prediction.clear_cache()
    budget = 10 ** 9  # a decision is kept per budget: the default one follows the memory free at each call
    for _ in range(3):
        jl.jacobian(f, x, max_memory=budget)
    assert len(jl.prediction._DECISIONS) == len(jl.prediction._DERIVATIVE_COSTS) == 1
    assert (jl.measure(f, x, mode="auto", repeat=1, max_memory=budget).total
            == jl.predict(f, x).total("auto", max_memory=budget))


def test_a_budget_that_moves_decides_again_from_the_remembered_prediction(monkeypatch):
    """The default budget is half the memory free, read anew between calls: each new reading made a new key, so
    every call walked the tape for f's own cost again, and the cache filled with one entry per reading."""
    from jacobian_lab import memory
    from jacobian_lab.engines.reverse import Tape

    readings = iter(range(8 << 30, 9 << 30, 1 << 20))
    monkeypatch.setattr(memory, "recently_available", lambda: next(readings))
    walks = []
    primal_cost = Tape.primal_cost
    monkeypatch.setattr(Tape, "primal_cost", lambda self: walks.append(1) or primal_cost(self))
    f, x = (lambda v: np.tanh(np.outer(v, v)).sum(axis=0)), np.linspace(0.1, 1.0, 40)
    jl.prediction.clear_cache()
    for _ in range(4):
        assert_fd_close(jl.jacobian(f, x), central_differences(f, x))
    assert len(walks) == len(jl.prediction._DECISIONS) == 1
    assert _chosen(f, x) == "forward"  # a tie: forward
    monkeypatch.setattr(memory, "recently_available", lambda: 1 << 17)  # 64 KiB: forward's passes of one seed
    assert _chosen(f, x) == jl.predict(f, x).mode() == "reverse"
    assert len(walks) == 1


def equal_coo(duplicates: int):
    """diag(2) on 10 points, each entry stored as `duplicates` COO entries summing to it."""
    r = np.repeat(np.arange(10), duplicates)
    return scipy.sparse.coo_matrix((np.full(10 * duplicates, 2.0 / duplicates), (r, r)), shape=(10, 10))


STALE_CANDIDATES = {  # f remembered first, then g: equal signatures once, though their rules work differently
    "a constant exponent with a zero": (lambda x: (x ** np.arange(1.0, 4.0))[np.arange(6) % 3],
                                        lambda x: (x ** np.arange(0.0, 3.0))[np.arange(6) % 3], np.ones(3)),
    "a constant base with a zero": (lambda x: (np.arange(1.0, 4.0) ** x)[np.arange(6) % 3],
                                    lambda x: (np.arange(0.0, 3.0) ** x)[np.arange(6) % 3], np.full(3, 1.5)),
    "COO entries stored as duplicates": (lambda x: np.sin(equal_coo(1) @ x)[np.arange(18) % 10],
                                         lambda x: np.sin(equal_coo(32) @ x)[np.arange(18) % 10],
                                         np.linspace(0.1, 1.0, 10)),
}


@pytest.mark.parametrize("f, g, x", STALE_CANDIDATES.values(), ids=STALE_CANDIDATES)
def test_auto_takes_no_order_remembered_for_a_tape_that_works_differently(f, g, x):
    jl.prediction.clear_cache()
    jl.jacobian(f, x, batch_size=1)
    measured = jl.measure(g, x, mode="auto", batch_size=1, repeat=1)
    jl.prediction.clear_cache()
    fresh = jl.measure(g, x, mode="auto", batch_size=1, repeat=1)
    assert (measured.mode, measured.total) == (fresh.mode, fresh.total)
    assert measured.total == jl.predict(g, x).total("auto", 1)


def test_a_sort_of_a_new_x_at_every_step_finds_its_costs_remembered():
    """A sort's permutation changes no rule's work: an optimization loop over a median, a trimmed sum, probed again
    at every step, as long as the permutation entered the key (and the cache kept each one's bytes)."""
    f = lambda v: np.sum(np.sort(v)[:50]) + np.median(v)  # noqa: E731
    rng = np.random.default_rng(5)
    jl.prediction.clear_cache()
    for _ in range(4):
        x = rng.standard_normal(100)
        assert_fd_close(jl.jacobian(f, x), central_differences(f, x))
    assert len(jl.prediction._DERIVATIVE_COSTS) == len(jl.prediction._DECISIONS) == 1


def test_values_a_signature_holds_enter_it_as_a_digest_past_64_bytes():
    """prod's rules work differently with a zero, so its operand enters the key by value: as a digest, so the
    256 keys the caches hold do not keep 256 copies of a large x."""
    from jacobian_lab.engines import reverse

    def signature(x):
        _, pullback = jl.engines.get("reverse").vjp(np.prod, x)
        return pullback.tape.signature(pullback.output)

    x = np.linspace(0.5, 1.5, 100_000)
    y = x.copy()
    y[7] = 0.0
    key = signature(x)
    assert key == signature(x.copy()) and key != signature(y)
    assert len(repr(key)) < 2000  # the operand's 800,000 bytes are not in it
    small_x = np.array([1.0, 2.0])
    assert (small_x.dtype.str, small_x.tobytes()) == reverse._value(small_x)  # short values as they are


def test_a_constant_exponent_is_keyed_by_its_zeros_alone():
    """Only whether a constant exponent holds a zero changes power's rules: new nonzero exponents every call
    (a schedule, a temperature) reuse one remembered cost, without keeping each exponent's bytes."""
    x = np.linspace(0.5, 1.5, 1000)
    jl.prediction.clear_cache()
    for p in np.linspace(1.5, 2.5, 5):
        jl.jacobian(lambda v: np.sum(v ** np.full(1000, p)), x)
    assert len(jl.prediction._DERIVATIVE_COSTS) == len(jl.prediction._DECISIONS) == 1


VALUE_DEPENDENT = {
    "mask": lambda x: np.sum(np.where(x > 0, x ** 2, np.sin(x))),
    "boolean index": lambda x: np.sum(x[x > 0] ** 3),
    "sort": lambda x: np.sort(x)[:3] * 2,
    "argmax": lambda x: x[np.argmax(x)] * x,
    "max with ties": lambda x: np.max(x) * x,
    "clip": lambda x: np.clip(x, -0.5, 0.5) ** 2,
    "prod with zeros": lambda x: np.prod(x) + x,
    "computed gather": lambda x: np.take(x, np.argsort(x)) * x,
    "branch": lambda x: x ** 2 if x[0] > 0 else np.outer(x, x).ravel(),
    "traced exponent": lambda x: np.abs(x[1:]) ** x[0],
}
POINTS = [np.random.default_rng(0).uniform(-1, 1, 6), np.array([0.0, 0, 0, 1, 1, -1]),
          np.array([2.0, -1, 0.5, 0.5, 0, 3]), np.zeros(6), np.ones(6)]


def _chosen(f, x, batch_size=None, max_memory=None):
    """The order auto mode takes for (f, x) with whatever the caches already hold."""
    from jacobian_lab.harness import prepare
    return jl.prediction.choose_order(*prepare(f, x), batch_size, max_memory)[0]


@pytest.mark.parametrize("name", VALUE_DEPENDENT)
def test_value_dependent_programs_reuse_only_exact_predictions_and_choices(name):
    f = VALUE_DEPENDENT[name]
    jl.prediction.clear_cache()
    with np.errstate(all="ignore"):
        for x in POINTS * 2:
            assert _reused(f, x) == jl.predict(f, x), x
            for batch_size, max_memory in ((None, None), (1, None), (2, 10_000), (None, 3_000)):
                fresh = jl.predict(f, x).mode(batch_size, max_memory)
                assert _chosen(f, x, batch_size, max_memory) == fresh, (x, batch_size, max_memory)


def test_auto_forward_replays_its_tape_evaluating_f_once():
    p = small("curve")  # 4 parameters -> 30 outputs: forward wins
    prediction = jl.predict(p.f, p.x)
    assert prediction.choose(2)[0] == "forward"
    jl.jacobian(p.f, p.x, batch_size=2)            # remember the tape's costs
    with counting() as c:
        J = jl.jacobian(p.f, p.x, batch_size=2)    # two passes of two seeds over one tape
    assert c.cost("primal") == prediction.primal
    assert c.cost("tangent") == prediction.tangent.over(2, 4) and c.passes == 2
    assert c.cost("cotangent") == Cost()
    np.testing.assert_allclose(J, p.jacobian_exact(p.x), rtol=1e-12, atol=1e-12)
    # jacfwd evaluates f once per pass, which auto's replay saves
    assert counted(p.f, p.x, "forward", 2)["primal"] == 2 * prediction.primal


def test_auto_forward_replay_shrinks_its_passes_to_the_memory_budget():
    f = lambda x: np.concatenate([np.sin(x)] * 50)  # noqa: E731   m = 50 n: forward wins
    x = np.linspace(0, 1, 20)
    J = jl.jacobian(f, x)
    tight = J.nbytes + 3 * (20 + 1000) * 8   # the result plus the tangents of three seeds
    with counting() as c:
        J_tight = jl.jacobian(f, x, max_memory=tight)
    assert 1 <= c.batch_size <= 3 and c.passes >= 7
    np.testing.assert_array_equal(J_tight, J)
    with pytest.raises(jl.MemoryBudgetError, match="batch_size <="):
        jl.jacobian(f, x, batch_size=20, max_memory=tight)


def _comparisons_then_double(x):
    k = 0.0
    while np.any(x > k):  # more comparisons for larger x: primal work that leaves no record
        k += 1.0
    return x * 2.0


def test_auto_decides_again_whenever_an_input_of_the_choice_changes(monkeypatch):
    built = []
    predict = jl.prediction._predict
    monkeypatch.setattr(jl.prediction, "_predict", lambda *a: built.append(1) or predict(*a))
    jl.prediction.clear_cache()
    x = np.linspace(-1.0, 0.5, 8)
    calls = [(x, None, None), (x, None, None), (x, 2, None), (x, 2, None), (x, None, 4_000), (x + 1.0, None, None)]
    counts = []
    for point, batch_size, max_memory in calls:
        _chosen(_comparisons_then_double, point, batch_size, max_memory)
        counts.append(len(built))
    # repeated calls reuse the choice; a batch size, a budget or more primal work (x + 1 takes
    # more comparisons, with the same records) make a new one
    assert counts == [1, 1, 2, 2, 3, 4]


def _tape_and_count(f, x):
    with counting() as c, np.errstate(all="ignore"):
        _, pullback = jl.engines.get("reverse").vjp(f, x)
    return pullback.tape.primal_cost(), c.cost("primal")


def _nondifferentiable_use(name):
    """f computing NumPy's `name` of x (a comparison, rounding, ...), then returning 2 x."""
    from test_rules import EXAMPLES
    from jacobian_lab.rules.elementwise import stop_gradient
    named = {"det_sign": lambda a: np.linalg.slogdet(a).sign, "stop_gradient": stop_gradient,
             "lu_factor": jl.rules.lu.lu_factor}
    e = EXAMPLES[name][0]
    if e.args[0].dtype.kind == "i":  # positions of an index: the primitive on the example's own operands
        named[name] = lambda x, *rest, **params: jl.primitives.REGISTRY[name](e.args[0], *rest, **params)
    fn = named.get(name) or getattr(np, name)
    return (lambda x: (fn(x, *e.args[1:], **e.params), x * 2.0)[1]), e.args[0] * 1.0


def test_the_tape_tells_the_primal_work_counting_finds():
    """Auto mode takes f's work from the tape instead of counting it: the two must agree."""
    from test_jit import _operands_of
    from test_rules import CASES, NONDIFFERENTIABLE
    cases = [_operands_of(*case.values) for case in CASES]
    cases += [_nondifferentiable_use(name) for name in NONDIFFERENTIABLE]
    cases += [(VALUE_DEPENDENT[name], x) for name in VALUE_DEPENDENT for x in POINTS]
    cases += [(small(name).f, small(name).x) for name in jl.problems.names()]
    cases.append((_comparisons_then_double, np.linspace(-1.0, 2.5, 8)))
    for f, x in cases:
        tape, count = _tape_and_count(f, x)
        assert tape == count, f
    assert len(cases) > 200
    # what the tape does not see: work a NumPy function implemented here does on constants alone
    w = np.arange(1.0, 6.0)
    tape, count = _tape_and_count(lambda x: np.average(x, weights=w), np.ones(5))
    assert count - tape == Cost(4, 0)  # the sum of the constant weights


def _two_layers():
    """tanh(W tanh(W x)) * sum(x), 50 -> 50: forward and reverse predict the same FLOPs unbounded."""
    rng = np.random.default_rng(1)
    W = rng.normal(size=(50, 50))
    return (lambda x: np.tanh(W @ np.tanh(W @ x)) * x.sum()), rng.normal(size=50)


# The result takes 20,000 bytes, a seed's tangents or cotangents about 2,000 more: the first
# three budgets bind, the others leave room for all 50 seeds in one pass.
BUDGETS = (30_000, 40_000, 100_000, 200_000, 10**9)


@pytest.mark.parametrize("max_memory", BUDGETS)
def test_reverse_prediction_under_a_memory_budget_equals_the_count(max_memory):
    f, x = _two_layers()
    prediction = jl.predict(f, x)
    m = jl.measure(f, x, mode="reverse", repeat=1, max_memory=max_memory)
    assert m.cost == prediction.cost("reverse", max_memory=max_memory)
    assert (m.batch_size, m.passes) == prediction.schedule("reverse", max_memory=max_memory)


@pytest.mark.parametrize("max_memory", BUDGETS)
def test_forward_passes_on_a_tape_are_sized_to_the_budget_as_predicted(max_memory):
    """Auto mode's forward order: f recorded once, passes replayed on the tape, none stopped."""
    from jacobian_lab.harness import columns, prepare

    f, x = _two_layers()
    prediction = jl.predict(f, x)
    step, passes = prediction.schedule("forward", max_memory=max_memory)
    g, x_flat = prepare(f, x)
    with counting() as c:
        J = columns(g, x_flat, max_memory=max_memory, recorded=jl.engines.get("reverse").vjp(g, x_flat))
    assert (c.batch_size, c.passes) == (step, passes)
    assert c.costs() == {"primal": prediction.primal, "tangent": prediction.tangent.over(passes, x.size),
                         "cotangent": Cost()}
    np.testing.assert_allclose(J, jl.jacrev(f)(x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("max_memory", BUDGETS)
def test_forward_mode_counts_the_prediction_exactly_when_the_prediction_says_so(max_memory):
    f, x = _two_layers()
    prediction = jl.predict(f, x)
    m = jl.measure(f, x, mode="forward", repeat=1, max_memory=max_memory)
    counted_as_predicted = m.cost == prediction.cost("forward", max_memory=max_memory)
    assert counted_as_predicted == prediction.exact("forward", max_memory=max_memory)
    assert prediction.exact("forward", max_memory=max_memory) == (max_memory >= 200_000)
    if not counted_as_predicted:  # without a tape, a pass outgrew the budget and stopped: more work, never less
        assert m.total.total() > prediction.total("forward", max_memory=max_memory).total()


@pytest.mark.parametrize("max_memory", BUDGETS)
def test_auto_under_a_memory_budget_takes_the_order_that_costs_less(max_memory):
    f, x = _two_layers()
    mode = jl.predict(f, x).mode(max_memory=max_memory)
    counted = {}
    for order in ("forward", "reverse"):
        with counting() as c:
            jl.jacobian(f, x, mode=order, max_memory=max_memory)
        counted[order] = c.total().total()
    jl.jacobian(f, x, max_memory=max_memory)  # auto mode: its prediction remembered, then counted alone
    with counting() as c:
        jl.jacobian(f, x, max_memory=max_memory)
    assert counted[mode] == min(counted.values())
    assert c.total().total() <= counted[mode]  # auto's forward replays its tape: f once, not once per pass


@pytest.mark.parametrize("max_memory", [None, 2_000])
def test_auto_reason_names_its_total_flops_plus_transcendentals(max_memory):
    # 342 flops and 9 exp for reverse: the figures compared are flops + transcendentals, not FLOPs
    prediction = jl.predict(lambda x: x[1:] * np.exp(x[:-1]), np.linspace(-1.0, 1.0, 10))
    mode, reason = prediction.choose(max_memory=max_memory)
    other = "reverse" if mode == "forward" else "forward"
    cost = prediction.total(mode, max_memory=max_memory)
    assert cost.transcendentals > 0
    assert (f"{mode} predicts a total of {cost.total():,.0f} ({cost.flops:,} flops + {cost.transcendentals:,} "
            f"transcendentals, weighted 1) vs {prediction.ops(other, max_memory=max_memory):,.0f} for {other}") in reason
    assert "FLOPs" not in reason


def test_a_tie_names_the_total_too():
    prediction = jl.predict(lambda x: x * 2.0, np.ones(1))  # 1 -> 1: the same work either way
    mode, reason = prediction.choose()
    assert (mode, prediction.ops("forward")) == ("forward", prediction.ops("reverse"))
    assert reason.startswith(f"forward and reverse both predict a total of {prediction.ops('forward'):,.0f} "
                             "(flops + transcendentals, weighted 1)")


def _broadcasting(x):
    return np.tanh(x[:, None] * x[None, :]).sum(axis=0) + np.sin(x) * x


DTYPES = (np.float16, np.float32, np.float64, np.longdouble)
# The 20 x 20 result takes 1,600 or 3,200 bytes, one seed's tangents or cotangents 3,760 to 14,720:
# one seed fits each budget, and each sizes the passes of some dtype.
DTYPE_BUDGETS = (20_000, 40_000, 60_000, 200_000)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("max_memory", DTYPE_BUDGETS + (None,))
def test_passes_are_predicted_in_the_dtype_the_harness_computes_in(dtype, max_memory):
    """J and a sweep's cotangents are float64 for a float16 or longdouble x (float32 for float32): the
    prediction sizes passes in those bytes, so it runs the passes it predicts at every budget."""
    from jacobian_lab.harness import columns, prepare, result_dtype

    x = np.linspace(0.1, 1.0, 20).astype(dtype)
    prediction = jl.predict(_broadcasting, x)
    assert prediction.itemsize == result_dtype(x).itemsize
    assert prediction.dense_bytes == jl.jacobian(_broadcasting, x).nbytes
    for mode in ("forward", "reverse"):
        if not prediction.exact(mode, max_memory=max_memory):
            continue  # forward mode without a tape outgrows this budget: not predicted
        m = jl.measure(_broadcasting, x, mode=mode, repeat=1, max_memory=max_memory)
        assert (m.batch_size, m.passes) == prediction.schedule(mode, max_memory=max_memory), mode
        assert m.cost == prediction.cost(mode, max_memory=max_memory), mode
    # forward passes replayed on a tape, as auto mode runs them, are sized up front at every budget
    g, x_flat = prepare(_broadcasting, x)
    step, passes = prediction.schedule("forward", max_memory=max_memory)
    with counting() as c:
        columns(g, x_flat, max_memory=max_memory, recorded=jl.engines.get("reverse").vjp(g, x_flat))
    assert (c.batch_size, c.passes) == (step, passes)
    assert c.cost("tangent") == prediction.tangent.over(passes, x.size)


def test_the_dtype_budgets_bind():
    """The budgets above size the passes of every dtype, so the schedules they check are not all one pass."""
    for dtype in DTYPES:
        prediction = jl.predict(_broadcasting, np.linspace(0.1, 1.0, 20).astype(dtype))
        for mode in ("forward", "reverse"):
            schedules = {prediction.schedule(mode, max_memory=b) for b in DTYPE_BUDGETS}
            assert len(schedules) >= 2 and (20, 1) in schedules | {prediction.schedule(mode)}, (dtype, mode)


@pytest.mark.parametrize("name", jl.problems.names())
@pytest.mark.parametrize("batch_size", [None, 1, 7])
def test_the_prediction_of_auto_is_the_count_of_an_auto_call(name, batch_size):
    """cost("auto") is the order auto mode picks, built on its one tape: a forward order evaluates f once."""
    p = small(name)
    prediction = jl.predict(p.f, p.x)
    mode = prediction.mode(batch_size)
    jl.jacobian(p.f, p.x, batch_size=batch_size)      # the choice remembered: the count below is the Jacobian's
    with counting() as c:
        jl.jacobian(p.f, p.x, batch_size=batch_size)
    assert c.costs() == prediction.cost("auto", batch_size)
    assert (c.batch_size, c.passes) == prediction.schedule("auto", batch_size) == prediction.schedule(mode, batch_size)
    assert prediction.exact("auto", batch_size)
    assert prediction.ops("auto", batch_size) == prediction.total("auto", batch_size).total()
    if mode == "reverse":
        assert prediction.cost("auto", batch_size) == prediction.cost("reverse", batch_size)
    else:  # jacfwd evaluates f in each of its passes, auto's replay once
        _, passes = prediction.schedule("forward", batch_size)
        assert prediction.cost("auto", batch_size)["primal"] == prediction.primal
        assert prediction.cost("forward", batch_size)["primal"] == passes * prediction.primal
        assert prediction.cost("auto", batch_size)["tangent"] == prediction.cost("forward", batch_size)["tangent"]


def test_curve_one_seed_per_pass_auto_evaluates_f_once():
    p = jl.problems.get("curve")  # R^4 -> R^m: forward, 4 passes of one seed
    prediction = jl.predict(p.f, p.x)
    assert prediction.mode(1) == "forward" and prediction.schedule("auto", 1) == (1, 4)
    assert prediction.cost("auto", 1)["primal"] == prediction.primal
    assert prediction.cost("forward", 1)["primal"] == 4 * prediction.primal
    jl.jacobian(p.f, p.x, batch_size=1)   # the choice remembered: the count below is the Jacobian's
    m = jl.measure(p.f, p.x, mode="auto", batch_size=1, repeat=1)
    assert m.cost == prediction.cost("auto", 1) and (m.batch_size, m.passes) == (1, 4)


def _assert_auto_as_predicted(f, x, max_memory):
    prediction = jl.predict(f, x)
    jl.jacobian(f, x, max_memory=max_memory)   # the choice remembered: the count below is the Jacobian's
    m = jl.measure(f, x, mode="auto", repeat=1, max_memory=max_memory)
    assert m.mode == prediction.mode(max_memory=max_memory)
    assert m.cost == prediction.cost("auto", max_memory=max_memory)
    assert (m.batch_size, m.passes) == prediction.schedule("auto", max_memory=max_memory)


@pytest.mark.parametrize("max_memory", BUDGETS)
def test_the_prediction_of_auto_under_a_memory_budget_is_measured(max_memory):
    _assert_auto_as_predicted(*_two_layers(), max_memory)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("max_memory", DTYPE_BUDGETS + (None,))
def test_the_prediction_of_auto_holds_in_every_dtype(dtype, max_memory):
    _assert_auto_as_predicted(_broadcasting, np.linspace(0.1, 1.0, 20).astype(dtype), max_memory)


@pytest.mark.parametrize("f, x, batch_size", [
    (lambda x: (x[:, None] * np.sin(x)[None, :]).ravel(), np.linspace(0.0, 1.0, 6), 1),   # forward: 6 passes
    (lambda x: np.sin(np.exp(x ** 2))[:3] * x[::-1][:3], np.linspace(0.0, 1.0, 8), 1),   # reverse: 3 sweeps
    (lambda x: np.sum(np.sin(np.exp(x ** 2))), np.ones(50), None),                      # reverse: 1 sweep
])
def test_a_first_auto_call_counts_its_probes_and_a_repeated_one_the_jacobian_alone(f, x, batch_size):
    """The probes of a tape not seen before: sweeps of 1, 1 and 2 cotangents (the first stages the VJP rules,
    which a reverse order then reuses) counted as passes, and forward replays of 1 and 2 tangents, which are
    not. measure("auto") and Prediction.cost("auto") are the repeated call's count."""
    prediction = jl.predict(f, x)
    mode, (t, u) = prediction.mode(batch_size), (prediction.tangent, prediction.cotangent)
    jl.prediction.clear_cache()
    with counting() as first:
        jl.jacobian(f, x, batch_size=batch_size)
    with counting() as again:
        jl.jacobian(f, x, batch_size=batch_size)
    assert again.costs() == prediction.cost("auto", batch_size)
    assert (again.batch_size, again.passes) == prediction.schedule("auto", batch_size)
    staged = Cost() if mode == "reverse" else prediction.staging  # a forward order stages nothing of its own
    assert first.costs() == {"primal": again.cost("primal"),
                             "tangent": again.cost("tangent") + 2 * t.fixed + 3 * t.per_seed,
                             "cotangent": again.cost("cotangent") + staged + 3 * u.fixed + 4 * u.per_seed}
    assert first.passes == again.passes + 3 and first.batch_size == max(again.batch_size, 2)
    jl.prediction.clear_cache()
    m = jl.measure(f, x, mode="auto", batch_size=batch_size, repeat=1)
    assert (m.mode, m.cost, m.batch_size, m.passes) == (mode, again.costs(), again.batch_size, again.passes)


def test_the_reason_writes_a_ratio_near_a_thousand_in_digits():
    """"(1e+03x fewer)" for a ratio of 999.7 where the verdict beside it said 1,000."""
    p = jl.problems.get("seed", n=2221)
    reason = jl.predict(p.f, p.x).choose()[1]
    assert reason.endswith("vs 19,982,318 for forward (1,000x fewer) for this 1x2221 Jacobian")
