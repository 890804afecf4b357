"""measure() and compare(): fields, rows, table, JSON, verdict."""
import json
import re
import sys

import numpy as np
import pytest

import jacobian_lab as jl
from jacobian_lab.accounting import Cost, counting

from helpers import central_differences

compare_module = sys.modules["jacobian_lab.compare"]  # jl.compare is the function


def seed(n=200):
    return jl.problems.get("seed", n=n)


def test_measure_reports_passes_costs_time_and_memory():
    p = seed()
    m = jl.measure(p.f, p.x, mode="forward", batch_size=1, repeat=2)
    assert m.mode == "forward" and m.batch_size == 1 and m.passes == p.n
    assert m.cost["primal"] == p.n * jl.count_flops(p.f, p.x)
    assert m.cost["cotangent"] == Cost()
    assert m.total == m.cost["primal"] + m.cost["tangent"]
    assert m.seconds > 0 and m.peak_bytes > 0 and m.tape_bytes == 0
    np.testing.assert_allclose(m.jacobian, p.jacobian_exact(p.x), rtol=1e-12)


def test_a_timed_sample_repeats_a_short_run_until_it_lasts_5_ms(monkeypatch):
    """One run of a fast Jacobian is one timer reading; a sample averages as many runs as fill 5 ms,
    and a run that long is a sample of its own (the first run, which sized the samples, included)."""
    clock = [0.0]
    monkeypatch.setattr(compare_module.time, "perf_counter", lambda: clock[0])

    def run_taking(seconds, calls):
        def run():
            calls.append(1)
            clock[0] += seconds
        return run

    fast, slow = [], []
    assert compare_module._timed(run_taking(1e-4, fast), repeat=3) == pytest.approx(1e-4)
    assert len(fast) == 1 + 3 * 50  # the sizing run, then 3 samples of 50 runs
    assert compare_module._timed(run_taking(0.02, slow), repeat=3) == pytest.approx(0.02)
    assert len(slow) == 3


def test_reverse_measurement_holds_a_tape():
    p = seed()
    m = jl.measure(p.f, p.x, mode="reverse")
    assert m.passes == 1 and m.tape_bytes >= p.x.nbytes
    assert m.cost["tangent"] == Cost()


def test_measure_auto_says_what_it_chose_and_why():
    p = jl.problems.get("curve", m=50)
    m = jl.measure(p.f, p.x, mode="auto", repeat=1)
    assert m.mode == "forward"
    assert "forward" in m.reason and "flops + " in m.reason and "transcendentals" in m.reason


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_measure_rejects_bad_repeat(bad):
    with pytest.raises(ValueError, match="repeat"):
        jl.measure(np.sin, np.ones(2), repeat=bad)


def test_measure_takes_a_numpy_integer_repeat():
    # batch_size takes np.int64 (a size read off an array); repeat refused it
    m = jl.measure(np.sin, np.ones(2), repeat=np.int64(2))
    assert m.passes == 1


def test_measure_rejects_unknown_mode():
    with pytest.raises(ValueError, match="mode"):
        jl.measure(np.sin, np.ones(2), mode="sideways")


def test_compare_default_rows_and_best():
    p = seed(300)
    c = jl.compare(p.f, p.x, repeat=1)
    labels = [m.label for m in c.measurements]
    assert labels[:4] == ["forward, 1 seed/pass", "forward, vector", "reverse, 1 seed/sweep", "reverse, batched"]
    assert labels[4:] == ["auto -> reverse", "jit -> reverse", "sparse -> reverse"]
    assert c.best.mode == "reverse"
    for m in c.measurements:  # the sparse row's is a (1, 300) scipy.sparse array
        J = m.jacobian.toarray() if m.compressed else m.jacobian
        np.testing.assert_allclose(J.reshape(p.x.shape), c.measurements[0].jacobian, rtol=1e-12, atol=1e-12)
        assert c.max_abs_diff(m) < 1e-12


def test_a_sparse_row_keeps_its_jacobian_sparse_and_compares_where_entries_are_stored():
    """The sparse row's Jacobian was made dense: 3 GB for a 60,000-entry matrix at n = 20,000, beyond any budget."""
    import scipy.sparse

    f = lambda u: u[2:] - 2.0 * u[1:-1] + np.exp(u[:-2])  # noqa: E731
    x = np.linspace(0.0, 1.0, 5000)
    c = jl.compare(f, x, modes=["sparse", "sparse"], repeat=1)
    first, second = c.measurements
    assert scipy.sparse.issparse(first.jacobian) and first.jacobian.shape == (4998, 5000)
    assert first.peak_bytes < 20_000_000 and c.max_abs_diff(second) == 0.0  # the dense J would be 200 MB
    dense = jl.compare(f, x[:50], modes=["forward", "sparse"], repeat=1)
    assert dense.max_abs_diff(dense.measurements[1]) < 1e-15
    empty = jl.compare(np.floor, x[:50], modes=["sparse", "sparse"], repeat=1)  # no entry stored in either
    assert empty.max_abs_diff(empty.measurements[1]) == 0.0


def test_compare_table_and_verdict():
    p = seed(300)
    c = jl.compare(p.f, p.x, repeat=1)
    text = c.table()
    for heading in ("passes", "primal flops", "deriv flops", "total", "total/f", "ms", "peak MiB", "tape MiB"):
        assert heading in text
    flops_ratio = c.measurements[1].total.total() / c.measurements[3].total.total()
    assert f"reverse is {flops_ratio:.3g}x cheaper in FLOPs + transcendentals for this 1x300 Jacobian" in c.verdict()
    assert c.verdict() in " ".join(text.split())
    assert "OPS(f+VJP)/OPS(f) = 2.25" in text


def test_a_row_asking_for_more_seeds_than_there_are_says_how_many_it_pushed():
    c = jl.compare(np.sin, np.ones(5), modes=["forward-100", "reverse-3"], repeat=1)
    assert [(m.label, m.batch_size, m.passes) for m in c.measurements] == [
        ("forward, 5 seeds/pass (of 100 asked)", 5, 1), ("reverse, 3 seeds/sweep", 3, 2)]
    c = jl.compare(np.sum, np.ones(5), modes=["reverse-3"], repeat=1)
    assert c.measurements[0].label == "reverse, 1 seed/sweep (of 3 asked)"  # as reverse-1's row reads


def test_a_row_of_k_seeds_is_written_as_the_integer_it_is():
    """forward-01 was taken and labelled "01 seeds/pass"; forward-0 was an "unknown mode"."""
    for bad in ("forward-01", "forward-0", "reverse--2"):
        with pytest.raises(ValueError, match="is the number of seeds per (pass|sweep), written as an integer"):
            jl.compare(np.sin, np.ones(5), modes=[bad], repeat=1)


def test_a_jit_row_of_compressed_seeds_says_so():
    p = jl.problems.get("bratu", n=40)
    row = jl.compare(p.f, p.x, modes=["jit"], repeat=1).measurements[0]
    assert isinstance(jl.jit(jl.jacobian(p.f)).program(p.x), jl.program.CompressedProgram)
    assert row.label == "jit -> sparse forward" and row.batch_size == 3
    assert row.reason.startswith("compiled: the forward program of 3 compressed seeds")


def test_jit_row_measures_the_compiled_program():
    """The row counts one replay: exactly the program's cost, which the verdict leaves out."""
    p = jl.problems.get("dense", n=12)
    c = jl.compare(p.f, p.x, modes=["forward", "reverse", "jit"], repeat=1)
    row = c.measurements[2]
    program = jl.jit(jl.jacobian(p.f)).program(p.x)
    assert (row.label, row.mode, row.compiled, row.tape_bytes) == ("jit -> forward", "forward", True, 0)
    assert row.cost == program.costs and row.passes == len(program.seeds)
    assert f"{len(program.equations)} operations" in row.reason
    assert row.total.total() < min(m.total.total() for m in c.measurements[:2])  # W's seed product folded
    assert c.best is row and c.to_dict()["measurements"][2]["compiled"] is True
    without = jl.compare(p.f, p.x, modes=["forward", "reverse"], repeat=1)
    assert c.verdict().split(";")[0] == without.verdict().split(";")[0]  # the FLOP verdict; times vary


def test_compare_to_dict_is_json_ready():
    p = jl.problems.get("dense", n=10)
    d = json.loads(json.dumps(jl.compare(p.f, p.x, modes=["forward", "reverse-3"], repeat=1).to_dict()))
    assert (d["n"], d["m"]) == (10, 10)
    assert [m["batch_size"] for m in d["measurements"]] == [10, 3]
    assert d["measurements"][1]["passes"] == 4
    assert d["prediction"]["primal"] == jl.count_flops(p.f, p.x).to_dict()


def test_compare_user_function_against_finite_differences():
    f = lambda x: np.stack([np.sum(x ** 3), np.prod(x[:2])])  # noqa: E731
    x = np.array([0.5, -1.5, 2.0])
    c = jl.compare(f, x, modes=["forward", "reverse", "auto"], repeat=1)
    for m in c.measurements:
        np.testing.assert_allclose(m.jacobian, central_differences(f, x), rtol=1e-6)


def test_compare_rejects_unknown_row():
    with pytest.raises(ValueError, match="forward-K"):
        jl.compare(np.sin, np.ones(2), modes=["sideways"])


def test_compare_refuses_an_empty_list_of_rows():
    # it used to return a Comparison whose best, table and verdict failed with internal errors
    with pytest.raises(ValueError, match="at least one row"):
        jl.compare(np.sin, np.ones(2), modes=[])


def test_compare_takes_one_row_given_as_a_string():
    # iterating the string used to ask for the rows "r", "e", "v", ...
    c = jl.compare(np.sin, np.ones(2), modes="reverse", repeat=1)
    assert [m.label for m in c.measurements] == ["reverse, batched"]


@pytest.mark.parametrize("modes, measured", [(("jit",), "no forward or reverse row was"),
                                              (("jit", "sparse"), "no forward or reverse row was"),
                                              (("auto",), "only reverse mode was")])
def test_the_verdict_of_rows_that_are_not_both_orders_says_what_to_add(modes, measured):
    c = jl.compare(lambda x: np.sum(np.sin(x)), np.ones(5), modes=modes, repeat=1)
    assert c.verdict() == f"{measured} measured for this 1x5 Jacobian; add forward and reverse rows to compare the orders"
    assert c.table().endswith(c.verdict())


def test_the_verdict_times_the_fastest_of_rows_with_the_fewest_flops():
    # "reverse, 1 seed/sweep" and "reverse, batched" count the same FLOPs; the verdict's time is the batched one's.
    f = lambda x: np.sin(x[1:]) * np.exp(x[:-1])  # noqa: E731
    comparison = jl.compare(f, np.linspace(0.0, 1.0, 60), modes=("forward", "reverse-1", "reverse"), repeat=1)
    fwd, one, batched = comparison.measurements
    assert one.total == batched.total and fwd.total.total() > one.total.total()
    fwd.seconds, one.seconds, batched.seconds = 0.25, 1.0, 0.5  # the times set, so the verdict's ratio is known
    assert comparison.verdict().endswith("but measured 2x slower")


def test_a_near_tie_is_told_apart_from_a_tie():
    comparison = jl.compare(lambda x: np.sin(x[1:]) * np.exp(x[:-1]), np.linspace(0.0, 1.0, 6),
                            modes=("forward", "reverse"), repeat=1)
    fwd, rev = comparison.measurements
    fwd.cost, rev.cost = {"tangent": jl.Cost(1004, 0)}, {"cotangent": jl.Cost(1000, 0)}  # set: the ratio is known
    assert comparison.verdict().startswith("reverse is 1.004x cheaper in FLOPs + transcendentals")
    fwd.cost = {"tangent": jl.Cost(1000, 0)}
    assert comparison.verdict().startswith("forward and reverse cost the same FLOPs")


def test_measure_and_compare_take_an_executor_and_count_the_same_work():
    from concurrent.futures import ThreadPoolExecutor

    f = lambda x: np.sin(x[1:]) * np.exp(x[:-1])  # noqa: E731
    x = np.linspace(0.0, 1.0, 40)
    serial = jl.compare(f, x, modes=("forward-5", "reverse-5"), repeat=1)
    with ThreadPoolExecutor(max_workers=2) as pool:
        sharded = jl.compare(f, x, modes=("forward-5", "reverse-5"), repeat=1, executor=pool)
        alone = jl.measure(f, x, mode="forward", batch_size=5, repeat=1, executor=pool)
    for a, b in zip(serial.measurements, sharded.measurements):
        assert (a.label, a.passes, a.cost) == (b.label, b.passes, b.cost)
        assert np.array_equal(a.jacobian, b.jacobian)
    assert alone.cost == serial.measurements[0].cost and alone.passes == 8


@pytest.mark.parametrize("forward_seconds, expected", [(2.0, "reverse measured 2x faster"),
                                                       (0.5, "forward measured 2x faster")])
def test_with_equal_flops_the_verdict_names_the_faster_order(forward_seconds, expected):
    comparison = jl.compare(np.sin, np.linspace(0.0, 1.0, 12), modes=("forward", "reverse"), repeat=1)
    fwd, rev = comparison.measurements
    assert fwd.total == rev.total
    fwd.seconds, rev.seconds = forward_seconds, 1.0
    assert comparison.verdict() == (f"forward and reverse cost the same FLOPs + transcendentals for this 12x12 "
                                    f"Jacobian; {expected}")


@pytest.mark.parametrize("f, x, shape", [
    (lambda x: np.ones(3), np.ones(3), "3x3"),   # no output depends on x
    (lambda x: x[::-1], np.ones(3), "3x3"),      # J is a permutation, found without arithmetic
    (np.sin, np.ones(0), "0x0"),                 # an empty x: no entries at all
])
def test_verdict_when_neither_order_does_any_work(f, x, shape):
    verdict = jl.compare(f, x, modes=["forward", "reverse"], repeat=1).verdict()
    assert "forward and reverse do no derivative work" in verdict and shape in verdict
    assert "cheaper" not in verdict and "faster" not in verdict  # "forward is 0x cheaper", timings of nothing


def test_max_difference_counts_equal_nans_as_equal():
    with np.errstate(invalid="ignore"):
        same = jl.compare(lambda x: x * np.nan, np.array([2.0, 1.0]), modes=["forward", "reverse", "auto"], repeat=1)
        # sin at NaN: forward's column of the second seed holds 0 * cos(nan) = NaN at (0, 1), reverse's row of
        # the second seed at (1, 0): the orders disagree there, and no tolerance makes them agree
        crossed = jl.compare(np.sin, np.array([np.nan, 1.0]), modes=["forward-1", "forward", "reverse"], repeat=1)
    assert all(np.isnan(m.jacobian).all() for m in same.measurements)
    assert [same.max_abs_diff(m) for m in same.measurements] == [0.0, 0.0, 0.0]
    assert [row["max|dJ|"] for row in crossed.rows()] == [0.0, 0.0, np.inf]
    assert "nan" not in same.table().split("max|dJ|")[1]


def test_max_difference_of_equal_infinities_is_zero():
    with np.errstate(divide="ignore", invalid="ignore"):
        c = jl.compare(lambda x: np.sqrt(x) * 2.0, np.array([0.0]), modes=["forward", "reverse"], repeat=1)
    assert np.isposinf(c.measurements[1].jacobian).all()
    assert c.max_abs_diff(c.measurements[1]) == 0.0


@pytest.mark.parametrize("f", [np.sin, np.sum])
def test_an_empty_x_is_measured_and_predicted_as_one_pass_of_no_seeds(f):
    x = np.ones(0)
    c = jl.compare(f, x, modes=["forward", "reverse"], repeat=1)
    for m in c.measurements:
        assert (m.batch_size, m.passes) == c.prediction.schedule(m.mode)
        assert m.cost == c.prediction.cost(m.mode)
    assert c.measurements[0].batch_size == 0  # forward seeds x's 0 entries; f still runs once


def _outer_rows(x):
    return (x[:, None] * np.sin(x)[None, :]).ravel()  # 20 -> 400: forward wins


@pytest.mark.parametrize("f, x, max_memory", [
    (_outer_rows, np.linspace(0.0, 1.0, 20), None),
    (_outer_rows, np.linspace(0.0, 1.0, 20), 80_000),    # the budget sizes the forward passes on the tape
    (_outer_rows, np.linspace(0.0, 1.0, 20), 100_000),
    (lambda x: np.concatenate([np.sin(x)] * 50), np.linspace(0.0, 1.0, 20), 200_000),
    (lambda x: np.sum(np.sin(np.exp(x ** 2))), np.ones(50), None),   # reverse wins
    (lambda x: np.tanh(np.outer(x, x)).sum(axis=0), np.ones(20), 50_000),
])
def test_measure_auto_measures_what_auto_mode_runs(f, x, max_memory):
    """Auto mode replays the tape it recorded: f once, passes sized before they run. measure("auto") must count
    that call, not a jacobian in the chosen order, which has no tape (and stops and retries under a budget)."""
    jl.jacobian(f, x, max_memory=max_memory)  # auto mode: its choice then remembered, so no call below probes
    m = jl.measure(f, x, mode="auto", repeat=1, max_memory=max_memory)
    with counting() as c:
        J = jl.jacobian(f, x, max_memory=max_memory)
    prediction = jl.predict(f, x)
    assert m.mode == prediction.mode(max_memory=max_memory)
    assert (m.batch_size, m.passes, m.cost, m.tape_bytes) == (c.batch_size, c.passes, c.costs(), c.tape_bytes)
    np.testing.assert_array_equal(m.jacobian, J)
    # and as predicted: the order auto picks, on its tape (a forward order evaluates f once)
    assert m.cost == prediction.cost("auto", max_memory=max_memory)
    assert (m.batch_size, m.passes) == prediction.schedule("auto", max_memory=max_memory)


def test_compare_takes_the_prediction_its_caller_has_and_the_cli_predicts_once(monkeypatch, capsys):
    import importlib

    from jacobian_lab import cli, prediction

    compare_module = importlib.import_module("jacobian_lab.compare")  # jl.compare is the function

    f, x = (lambda v: np.sum(np.sin(v) ** 2)), np.linspace(0.1, 1.0, 6)
    given = jl.predict(f, x)
    assert jl.compare(f, x, modes=["forward", "reverse"], repeat=1, prediction=given).prediction is given
    calls = []
    counted = prediction.predict
    for module in (prediction, compare_module):  # the command line's and the comparison's own
        monkeypatch.setattr(module, "predict", lambda *a: calls.append(1) or counted(*a))
    assert cli.main(["compare", "seed", "--n", "20", "--modes", "forward,reverse", "--repeat", "1"]) == 0
    assert len(calls) == 1  # the size check's prediction serves the comparison


def test_a_prediction_of_another_jacobians_shape_is_refused():
    f, x = (lambda v: np.sin(v) * 2.0), np.linspace(0.1, 1.0, 3)
    of_another_x = jl.predict(f, np.ones(5))
    of_another_f = jl.predict(lambda v: np.outer(v, v), x)  # 9x3, not 3x3
    measures = [lambda p, mode=mode: jl.measure(f, x, mode=mode, repeat=1, prediction=p)
                for mode in ("auto", "forward", "reverse", "jit", "sparse")]  # all but auto ignored it
    for call in [lambda p: jl.compare(f, x, repeat=1, prediction=p), *measures]:
        with pytest.raises(ValueError, match=r"prediction is of a 5x5 Jacobian, where x has 3 entries: pass "
                                             r"jl.predict\(f, x\) of this f and x"):
            call(of_another_x)
        with pytest.raises(ValueError, match=r"prediction is of a 9x3 Jacobian, where f's at this x is 3x3"):
            call(of_another_f)
        with pytest.raises(TypeError, match="prediction must be what jl.predict"):
            call("auto")


def test_table_returns_the_whole_table_inside_a_notebook(monkeypatch, capsys):
    """rich sends what it prints inside Jupyter to the notebook's display, not to the console's file:
    table() returned the verdict alone and the table appeared as a side effect."""
    import builtins

    class ZMQInteractiveShell:  # what rich takes for a Jupyter kernel
        pass

    monkeypatch.setattr(builtins, "get_ipython", ZMQInteractiveShell, raising=False)
    c = jl.compare(lambda x: np.sum(np.sin(x)), np.ones(5), modes=("forward", "reverse"), repeat=1)
    text = c.table()
    assert "forward" in text.split("verdict:")[0] and "reverse" in text.split("verdict:")[0]
    assert capsys.readouterr().out == ""


def test_a_verdict_writes_a_large_ratio_in_digits_and_one_seed_in_the_singular():
    """"reverse is 1.11e+03x cheaper" and "compressed: 1 seeds" as the command line printed them."""
    p = jl.problems.get("seed", n=5000)
    c = jl.compare(p.f, p.x, repeat=1)
    assert re.match(r"reverse is \d,\d{3}x cheaper in FLOPs \+ transcendentals for this 1x5000 Jacobian; "
                    r"measured [\d,.]+x faster$",
                    c.verdict())
    (sparse,) = [m for m in c.measurements if m.compressed]
    assert sparse.reason.startswith("compressed: 1 seed for the 1x5000 pattern")
