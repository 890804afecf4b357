"""The jacobian-lab command line, through main(argv) and as the installed console script."""
import importlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jacobian_lab import chain, cli, memory, problems
from jacobian_lab.memory import MemoryBudgetError
from jacobian_lab.cli import (
    UsageError,
    build_parser,
    load_target,
    main,
    parse_shape,
    parse_sizes,
)

USER_CODE = textwrap.dedent("""
    import numpy as np

    def softplus_sum(x):
        return np.sum(np.log1p(np.exp(x)), axis=-1)

    def curve(p):
        t = np.linspace(0.0, 1.0, 7)
        return p[0] * np.exp(-p[1] * t)

    def explode(x):
        raise RuntimeError("the model diverged")

    def cube(x):
        return x ** 3

    def hog(x):
        raise MemoryError("Unable to allocate 7.28 TiB for an array with shape (1000000, 1000000)")

    def forgot_return(x):
        np.sum(x ** 2)

    def svd_values(x):
        return np.linalg.svd(x.reshape(2, -1))[1]

    CONSTANT = 3
""")


@pytest.fixture
def user_file(tmp_path):
    path = tmp_path / "user_funcs.py"
    path.write_text(USER_CODE)
    return path


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(err, code, expected_code):
    assert code == expected_code, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "error:" in lines[0]


# ---------------------------------------------------------------- compare


def test_compare_builtin_prints_table_and_verdict(capsys):
    code, out, err = run(capsys, "compare", "seed", "--n", "40", "--repeat", "1")
    assert code == 0, err
    assert "R^40 -> R^1" in out
    for label in ("forward, 1 seed/pass", "forward, vector", "reverse, 1 seed/sweep", "reverse, batched", "auto"):
        assert label in out
    verdict = [line for line in out.splitlines() if line.startswith("verdict:")]
    assert len(verdict) == 1 and "reverse is" in verdict[0] and "cheaper in FLOPs + transcendentals" in verdict[0]
    assert "\x1b[" not in out  # no colour codes off a terminal


def test_compare_of_compiled_and_sparse_rows_alone_prints_its_verdict(capsys):
    code, out, err = run(capsys, "compare", "seed", "--n", "20", "--repeat", "1", "--modes", "jit,sparse")
    assert code == 0, err
    assert "verdict: no forward or reverse row was measured" in out


def test_compare_json_is_the_comparison(capsys):
    code, out, _ = run(capsys, "compare", "curve", "--m", "30", "--modes", "forward,reverse", "--repeat", "1",
                       "--json")
    assert code == 0
    data = json.loads(out)
    assert (data["n"], data["m"]) == (4, 30)
    assert [m["label"] for m in data["measurements"]] == ["forward, vector", "reverse, batched"]
    assert data["best"] == "forward, vector"
    assert data["verdict"].startswith("forward is")
    p = problems.get("curve", m=30)
    forward = data["measurements"][0]
    assert forward["passes"] == 1 and forward["total"]["flops"] > 0
    assert data["prediction"]["primal"]["flops"] > 0 and np.isclose(forward["max_abs_diff"], 0.0)
    assert p.m == data["m"]
    # what was compared, as the table's first lines say
    assert (data["target"], data["problem"], data["expected_winner"]) == ("curve", "curve", p.winner)
    assert data["summary"] == p.summary


def test_compare_threads_measures_the_same_work(capsys):
    args = ("compare", "bratu", "--n", "60", "--modes", "forward-7,reverse-7,auto", "--repeat", "1", "--json")
    rows = {}
    for extra in ((), ("--threads", "2")):
        code, out, _ = run(capsys, *args, *extra)
        assert code == 0
        data = json.loads(out)
        rows[extra] = [(m["label"], m["passes"], m["total"], m["max_abs_diff"]) for m in data["measurements"]]
        assert data["threads"] == (2 if extra else None)  # the JSON says how the passes ran
    assert rows[()] == rows[("--threads", "2")]
    code, out, _ = run(capsys, *args[:-1], "--threads", "2")
    assert code == 0 and "ran their passes on 2 threads" in out
    assert all(passes == 9 for label, passes, _, _ in rows[()] if not label.startswith("auto"))
    code, _, err = run(capsys, "compare", "--threads", "0")
    assert code == 2 and "--threads" in err


def test_compare_sparse_row_on_a_banded_problem(capsys):
    code, out, _ = run(capsys, "compare", "bratu", "--n", "40", "--modes", "forward,sparse", "--repeat", "1",
                       "--json")
    assert code == 0
    dense, sparse = json.loads(out)["measurements"]
    assert (sparse["label"], sparse["compressed"], sparse["passes"], sparse["batch_size"]) == ("sparse -> forward", True, 1, 3)
    assert sparse["cost"]["tangent"]["flops"] * 40 == 3 * dense["cost"]["tangent"]["flops"]
    assert sparse["max_abs_diff"] == 0.0 and json.loads(out)["best"] == "sparse -> forward"


# ---------------------------------------------------------------- sparsity


def test_sparsity_of_a_banded_problem(capsys):
    code, out, _ = run(capsys, "sparsity", "bratu", "--n", "30")
    assert code == 0
    assert "R^30 -> R^28" in out
    assert "pattern: 84 of 840 entries (10 %), at most 3 in a row and 3 in a column" in out
    # pulling a row of three entries would cost a cotangent and save no color
    assert "seeds: forward 3 (column colors), reverse 3 (row colors), bidirectional 3 (no row is worth pulling" in out
    assert "sparse_jacobian takes forward mode: 3 seeds instead of dense reverse mode's 28 seeds" in out


def test_sparsity_json_and_plot_of_a_function(capsys, user_file, tmp_path):
    target = tmp_path / "pattern.png"
    code, out, err = run(capsys, "sparsity", f"{user_file}:softplus_sum", "--shape", "4,5", "--json",
                         "--plot", str(target))
    assert code == 0 and "figure written" in err
    data = json.loads(out)  # row i of the (4, 5) input feeds output i alone
    assert (data["m"], data["n"], data["entries"], data["widest_row"], data["widest_column"]) == (4, 20, 20, 5, 1)
    assert data["target"] == f"{user_file}:softplus_sum" and "problem" not in data
    # the 5 columns of a row need 5 colors; the rows share no column, so one cotangent gives them all
    assert data["seeds"] == {"forward": 5, "reverse": 1, "bidirectional": 1} and data["sparse_jacobian"] == "reverse"
    assert data["pulled_rows"] == 4  # every row as large as the next: pulling all is the bidirectional plan
    assert Image.open(target).size[0] > 100


def test_sparsity_of_a_square_jacobian_names_both_dense_orders(capsys, tmp_path):
    path = tmp_path / "square.py"
    path.write_text("import numpy as np\n\ndef f(x):\n    return np.cumsum(x)\n")
    code, out, _ = run(capsys, "sparsity", f"{path}:f", "--shape", "6")
    assert code == 0 and "as many as dense forward or reverse mode's 6 seeds" in out


def test_sparsity_of_a_gradient_takes_one_reverse_seed(capsys):
    code, out, _ = run(capsys, "sparsity", "seed", "--n", "50")
    assert code == 0 and ("sparse_jacobian takes reverse mode: 1 seed, as many as dense reverse mode's 1 seed: "
                           "the pattern does not compress") in out
    assert "bidirectional 1 (every row pulled)" in out


def test_sparsity_refuses_a_dense_pattern_over_the_memory_budget_before_reading_it(capsys, monkeypatch):
    monkeypatch.setattr(memory, "budget", lambda max_memory=None: 1_000_000)  # under 300 x 300 entries' 2.06 MiB
    monkeypatch.setattr(importlib.import_module("jacobian_lab.sparsity"), "recorded_pattern", _not_read)
    code, _, err = run(capsys, "sparsity", "dense", "--n", "300")
    assert_one_line_error(err, code, 2)
    assert ("every output of dense depends on every input: its 300 x 300 sparsity pattern (90,000 entries) takes "
            "2.06 MiB to work out, over the memory budget of 977 KiB; try smaller sizes (--n)") in err


def test_sparsity_refuses_a_dense_pattern_too_long_to_read_and_reads_a_sparse_one(capsys, monkeypatch):
    """The dense size of a pattern the structure does not show dense refuses nothing: a band of 3n entries
    is read at a size whose dense pattern would take too long."""
    from jacobian_lab import cli

    monkeypatch.setattr(cli.limits, "MAX_PATTERN_ENTRIES", 1000)
    code, _, err = run(capsys, "sparsity", "seed", "--n", "2000")
    assert_one_line_error(err, code, 2)
    assert ("every output of seed depends on every input: its 1 x 2,000 sparsity pattern (2,000 entries) would take "
            "too long to wait for; try smaller sizes (--n)") in err
    code, out, _ = run(capsys, "sparsity", "bratu", "--n", "2000")
    assert code == 0 and "pattern: 5,994 of 3,996,000 entries" in out


def test_sparsity_usage_errors(capsys, user_file):
    code, _, err = run(capsys, "sparsity", "nope")
    assert_one_line_error(err, code, 2)
    code, _, err = run(capsys, "sparsity", f"{user_file}:softplus_sum")
    assert_one_line_error(err, code, 2)
    assert "needs an input" in err
    code, _, err = run(capsys, "sparsity", f"{user_file}:explode", "--shape", "3")
    assert_one_line_error(err, code, 1)
    assert "the model diverged" in err


def test_compare_batch_size_adds_rows(capsys):
    code, out, _ = run(capsys, "compare", "dense", "--n", "12", "--modes", "forward", "--batch-size", "4",
                       "--repeat", "1", "--json")
    assert code == 0
    rows = json.loads(out)["measurements"]
    assert [r["label"] for r in rows] == ["forward, vector", "forward, 4 seeds/pass", "reverse, 4 seeds/sweep"]
    assert rows[1]["passes"] == 3 and rows[2]["passes"] == 3


def test_compare_plot_writes_png(tmp_path, capsys):
    target = tmp_path / "sub" / "phases.png"
    code, _, err = run(capsys, "compare", "seed", "--n", "30", "--repeat", "1", "--plot", str(target))
    assert code == 0
    assert "figure written" in err
    with Image.open(target) as image:
        image.verify()
    with Image.open(target) as image:
        assert image.format == "PNG"
        assert 500 <= image.width <= 3000 and 300 <= image.height <= 2000


def test_compare_plot_svg(tmp_path, capsys):
    target = tmp_path / "phases.svg"
    code, _, _ = run(capsys, "compare", "tall_to_wide", "--n", "3", "--m", "2", "--repeat", "1",
                     "--modes", "forward,reverse", "--plot", str(target))
    assert code == 0
    text = target.read_text()
    assert text.startswith("<?xml") and "<svg" in text


def _never(*args, **kwargs):
    raise AssertionError("the run started before its output path was checked")


@pytest.mark.parametrize("argv,module,name", [
    (("compare", "seed", "--n", "5", "--plot", "{plot}"), "jacobian_lab.compare", "compare"),
    (("sparsity", "seed", "--n", "5", "--plot", "{plot}"), "jacobian_lab.sparsity", "recorded"),
    (("sweep", "seed", "--n", "5,10", "--plot", "{plot}"), "jacobian_lab.sweep", "sweep"),
    (("chain", "3", "4", "--plot", "{plot}"), "jacobian_lab.chain", "plan"),
    (("report", "--out", "{folder}"), "jacobian_lab.report", "build_report"),
])
@pytest.mark.parametrize("where,problem", [
    # root may write anywhere else: /proc takes no new files
    ("/proc", "cannot create a file in the folder '/proc' (the system says: "),
    ("{tmp}/x.npy", "'{tmp}/x.npy' is a file, not a folder"),
])
def test_an_output_path_that_cannot_be_written_is_refused_before_the_run(
        capsys, monkeypatch, tmp_path, argv, module, name, where, problem):
    (tmp_path / "x.npy").write_bytes(b"")
    where, problem = where.format(tmp=tmp_path), problem.format(tmp=tmp_path)
    monkeypatch.setattr(importlib.import_module(module), name, _never)  # jacobian_lab.compare is also a function
    argv = [a.format(plot=f"{where}/figure.png", folder=f"{where}/report") for a in argv]
    code, out, err = run(capsys, *argv)
    assert_one_line_error(err, code, 2)
    option = "--out" if argv[0] == "report" else "--plot"
    assert f"{option} '{where}/" in err and problem in err and out == ""


@pytest.mark.parametrize("json_output", [False, True])
def test_a_figure_that_fails_to_save_after_the_run_keeps_the_result(capsys, monkeypatch, tmp_path, json_output):
    def disk_full(fig, path, dpi=110):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(importlib.import_module("jacobian_lab.plots"), "save", disk_full)
    plot = tmp_path / "phases.png"
    code, out, err = run(capsys, "compare", "seed", "--n", "5", "--repeat", "1", "--modes", "forward,reverse",
                         "--plot", str(plot), *(["--json"] if json_output else []))
    assert_one_line_error(err, code, 1)
    assert f"could not be written to '{plot}': No space left on device" in err
    if json_output:
        assert json.loads(out)["n"] == 5
    else:
        assert "verdict:" in out


@pytest.mark.parametrize("command", ["compare", "sparsity", "sweep", "chain", "report"])
def test_help_says_missing_folders_are_created(capsys, command):
    code, out, _ = run(capsys, command, "--help")
    assert code == 0
    said = "created with any missing parents" if command == "report" else "missing folders are created"
    assert said in " ".join(out.split())


def test_compare_user_function_file_with_shape(user_file, capsys):
    code, out, err = run(capsys, "compare", f"{user_file}:softplus_sum", "--shape", "3,5", "--repeat", "1",
                         "--json")
    assert code == 0, err
    data = json.loads(out)
    assert (data["n"], data["m"]) == (15, 3)
    assert all(m["max_abs_diff"] < 1e-12 for m in data["measurements"])


def test_compare_a_scalar_function_of_a_scalar(user_file, capsys):
    code, out, err = run(capsys, "compare", f"{user_file}:cube", "--shape", "", "--repeat", "1", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert (data["n"], data["m"]) == (1, 1) and all(m["max_abs_diff"] == 0.0 for m in data["measurements"])


@pytest.mark.parametrize("text, shape", [("3,5", (3, 5)), ("3x5", (3, 5)), ("3 5", (3, 5)), ("(15,)", (15,)),
                                         ("15,", (15,)), ("[3, 5]", (3, 5)), ("()", ())])
def test_shapes_are_read_as_written(text, shape):
    assert parse_shape(text) == shape


@pytest.mark.parametrize("text", ["3,x", "x", "3,,5", "3;5"])
def test_a_shape_with_a_missing_or_unknown_size_is_refused(text):
    with pytest.raises(UsageError, match=r"--shape|each dimension"):
        parse_shape(text)


@pytest.mark.parametrize("argv, expected", [
    (("sweep", "seed", "--n", "-10,10"), "--n must be a positive integer, got '-10'"),
    (("sweep", "curve", "--m", "-3.5,10"), "--m must be"),
    (("compare", "seed", "--n", "-5"), "parameter n must be a positive int"),
    (("chain", "--json", "-5", "3"), "widths must be positive integers; got -5")])  # a flag's next word: its own
def test_a_negative_size_list_is_named_not_taken_for_an_option(capsys, argv, expected):
    code, _, err = run(capsys, *argv)
    assert_one_line_error(err, code, 2)
    assert expected in err


@pytest.mark.parametrize("argv, option", [(("compare", "seed", "--n", "1000000000000"), "--n/--m"),
                                          (("sweep", "seed", "--n", "10,1e12"), "--n/--m"),
                                          (("compare", "numpy:sin", "--shape", "1000000,1000000"), "--shape")])
def test_a_size_too_large_for_the_memory_is_refused_before_it_is_built(capsys, argv, option):
    code, _, err = run(capsys, *argv)
    assert_one_line_error(err, code, 2)
    assert "of memory free; choose a smaller " + option in err


@pytest.mark.parametrize("name, n, k", [("dense", 1000, 1000), ("tall_to_wide", 3000, 1000)])
def test_a_problem_whose_weights_would_not_fit_is_refused_before_they_are_drawn(capsys, monkeypatch, name, n, k):
    """Its x passes the size check, and its n x n (or k x n) weights were drawn until the system ended the process
    without a word (dense at n = 50,000, 18.6 GiB); here the memory free is a byte short of room for them."""
    free = 8 * n * k * problems.WEIGHTS_SHARE - 1
    monkeypatch.setattr(memory, "available_bytes", lambda: free)
    code, _, err = run(capsys, "compare", name, "--n", str(n))
    assert_one_line_error(err, code, 2)
    assert f"{name}'s " in err and "weights take" in err
    assert err.rstrip().endswith("of memory free; choose a smaller " + ("n" if name == "dense" else "n or m"))


def test_a_sweep_point_too_long_to_wait_for_is_refused(capsys):
    code, _, err = run(capsys, "sweep", "seed", "--n", "300000,10")
    assert_one_line_error(err, code, 2)
    assert "'forward, vector' (300,000 passes" in err and "--modes" not in err


def test_repeated_modes_give_one_row_each(capsys):
    code, out, _ = run(capsys, "compare", "seed", "--n", "10", "--modes", "forward,forward,reverse", "--repeat", "1",
                       "--json")
    assert code == 0 and [m["label"] for m in json.loads(out)["measurements"]] == ["forward, vector", "reverse, batched"]


def test_a_function_failing_on_an_npz_input_is_told_it_got_a_dict(tmp_path, capsys):
    np.savez(tmp_path / "two.npz", a=np.ones(3), b=np.ones(2))
    code, _, err = run(capsys, "compare", "numpy:sin", "--x-file", str(tmp_path / "two.npz"))
    assert code == 1 and "its input is a dict of the .npz file's arrays: a, b" in err


def test_compare_refuses_rows_too_long_to_wait_for(capsys):
    code, _, err = run(capsys, "compare", "seed", "--n", "300000", "--modes", "forward-1,reverse")
    assert_one_line_error(err, code, 2)
    assert "'forward, 1 seed/pass' (300,000 passes" in err and "leave it out with --modes reverse" in err
    # auto and jit run (or record) the cheaper order: where both orders are too long, so are they; so is sparse
    # where its plan takes as many seeds (a dense pattern), which the refusal once named as the way out
    code, _, err = run(capsys, "compare", "dense", "--n", "5000", "--modes", "reverse,auto,jit,sparse")
    assert_one_line_error(err, code, 2)
    assert ("the rows 'reverse, batched' (97 passes, 2.5e+11 FLOPs), 'auto' (97 passes, 2.5e+11 FLOPs), 'jit' "
            "(97 passes, 2.5e+11 FLOPs) and 'sparse' (1 pass, 2.5e+11 FLOPs) would take too long to wait for; "
            "choose a smaller size") in err
    # a banded pattern's three seeds: sparse is the way out
    code, _, err = run(capsys, "compare", "bratu", "--n", "300000", "--modes", "reverse,sparse")
    assert_one_line_error(err, code, 2)
    assert "the row 'reverse, batched' (" in err and "leave it out with --modes sparse" in err


def test_forward_rows_too_long_for_xs_size_are_refused_before_f_is_traced(capsys, monkeypatch):
    from jacobian_lab import prediction

    def traced(*args, **kwargs):
        raise AssertionError("f was traced: at this size the refusal follows from x's size alone")

    monkeypatch.setattr(prediction, "predict", traced)
    code, _, err = run(capsys, "compare", "seed", "--n", "100000000")
    assert_one_line_error(err, code, 2)
    assert ("the rows 'forward, 1 seed/pass' (100,000,000 passes) and 'forward, vector' (100,000,000 passes) would "
            "take too long to wait for; leave them out with --modes reverse-1,reverse,auto,jit,sparse (whose cost "
            "is priced once f is traced, which at this size takes a while), or choose a smaller size") in err


def test_a_jit_row_is_priced_at_the_compressed_seeds_its_first_call_records(capsys, monkeypatch):
    """bratu's Jacobian is tridiagonal: jit's first call records 3 compressed seeds, not a dense order."""
    from jacobian_lab import cli

    monkeypatch.setattr(cli.limits, "MAX_FLOPS", 1e6)  # below bratu's dense orders at n = 400, above 3 seeds' work
    code, _, err = run(capsys, "compare", "bratu", "--n", "400", "--modes", "forward,jit", "--repeat", "1")
    assert_one_line_error(err, code, 2)
    assert "the row 'forward, vector' (1 pass, 1.1e+06 FLOPs) would take too long" in err
    assert "leave it out with --modes jit" in err
    code, out, err = run(capsys, "compare", "bratu", "--n", "400", "--modes", "jit", "--repeat", "1", "--json")
    assert code == 0, err
    assert json.loads(out)["measurements"][0]["label"] == "jit -> sparse forward"


def _not_read(*args, **kwargs):
    raise AssertionError("the pattern was read")


def test_the_sparse_row_of_a_dense_pattern_is_priced_without_reading_it(capsys, monkeypatch):
    """Its plan is the cheaper dense order's seeds, as reading the pattern gives it: at n = 12,000 the pattern
    read before the refusal took 15 s and 6.8 GB."""
    from jacobian_lab import cli

    sparsity = importlib.import_module("jacobian_lab.sparsity")
    monkeypatch.setattr(cli.limits, "MAX_FLOPS", 1e6)  # below dense's orders at n = 100, and so below its sparse row
    refusals = []
    # priced from the structure alone, then read (the structure taken to show nothing)
    for name, replacement in (("recorded_pattern", _not_read), ("dense", lambda pullback: False)):
        with monkeypatch.context() as patched:
            patched.setattr(sparsity, name, replacement)
            code, _, err = run(capsys, "compare", "dense", "--n", "100", "--modes", "reverse,sparse")
        assert_one_line_error(err, code, 2)
        refusals.append(err)
    assert "'sparse' (1 pass, " in refusals[0] and refusals[0] == refusals[1]


def test_compare_user_function_table(user_file, capsys):
    code, out, _ = run(capsys, "compare", f"{user_file}:curve", "--shape", "2", "--repeat", "1")
    assert code == 0
    assert "input of shape (2,)" in out and "verdict: forward" in out


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".txt"])
def test_compare_user_function_x_file(user_file, tmp_path, capsys, suffix):
    x = np.linspace(-1.0, 1.0, 6)
    path = tmp_path / f"x{suffix}"
    if suffix == ".npy":
        np.save(path, x)
    elif suffix == ".npz":
        np.savez(path, x=x)
    else:
        np.savetxt(path, x)
    code, out, err = run(capsys, "compare", f"{user_file}:softplus_sum", "--x-file", str(path),
                         "--modes", "reverse", "--repeat", "1", "--json")
    assert code == 0, err
    assert json.loads(out)["n"] == 6


def test_an_x_file_is_read_as_the_api_takes_x(user_file, tmp_path, capsys):
    from jacobian_lab.cli.targets import UsageError, _check_input

    assert _check_input(np.ones(3, np.float32)).dtype == np.float32  # float32 runs float32, as jl.compare(f, x32)
    assert _check_input(np.arange(3)).dtype == np.float64
    with pytest.raises(UsageError, match="boolean, which has no derivative"):
        _check_input(np.ones(3, bool))
    np.save(tmp_path / "x32.npy", np.linspace(-1.0, 1.0, 6, dtype=np.float32))
    code, out, err = run(capsys, "compare", f"{user_file}:softplus_sum", "--x-file", str(tmp_path / "x32.npy"),
                         "--modes", "reverse", "--repeat", "1", "--json")
    assert code == 0 and json.loads(out)["n"] == 6, err


@pytest.mark.parametrize("suffix", [".txt", ".csv"])
def test_an_empty_x_file_is_one_line_without_numpy_warnings(user_file, tmp_path, capsys, suffix):
    empty = tmp_path / f"x{suffix}"
    empty.write_text("")
    with warnings.catch_warnings(record=True) as caught:  # pytest would otherwise keep the warning off stderr
        warnings.simplefilter("always")
        code, _, err = run(capsys, "compare", f"{user_file}:softplus_sum", "--x-file", str(empty))
    assert_one_line_error(err, code, 2)
    assert "the input is empty" in err and "holds at least one number" in err
    assert [str(w.message) for w in caught] == []


def test_a_ragged_text_file_says_rows_must_match(user_file, tmp_path, capsys):
    ragged = tmp_path / "x.csv"
    ragged.write_text("1,2,3\n4,5\n")
    code, _, err = run(capsys, "compare", f"{user_file}:softplus_sum", "--x-file", str(ragged))
    assert_one_line_error(err, code, 2)
    assert "every row of a text file must hold as many numbers" in err and "usecols" not in err


@pytest.mark.parametrize("name,kind,how", [
    ("x.npy", ".npy array", "np.save(path, x)"),
    ("x.npz", ".npz archive", "np.savez(path, x=x)"),
])
@pytest.mark.parametrize("content", ["1 2 3\n", ""])
def test_a_text_file_named_like_a_numpy_file_says_how_to_write_one(user_file, tmp_path, capsys, name, kind, how,
                                                                   content):
    (tmp_path / name).write_text(content)
    code, _, err = run(capsys, "compare", f"{user_file}:softplus_sum", "--x-file", str(tmp_path / name))
    assert_one_line_error(err, code, 2)
    assert f"is not a NumPy {kind} file; write one with {how}" in err
    assert "pickle" not in err


def test_compare_module_function(tmp_path, capsys, monkeypatch):
    (tmp_path / "jl_cli_user_module.py").write_text(USER_CODE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "jl_cli_user_module", raising=False)
    code, out, err = run(capsys, "compare", "jl_cli_user_module:softplus_sum", "--shape", "4",
                         "--modes", "forward,reverse", "--repeat", "1", "--json")
    assert code == 0, err
    assert json.loads(out)["n"] == 4


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_json_stays_parseable_when_the_function_prints_and_has_infinities(tmp_path, capsys):
    """What f (or its module, as it is imported) prints goes to stderr under --json; an infinite
    max|dJ| (sqrt's slope at 0 is infinite) is null, as JavaScript writes it: Infinity is no JSON."""
    path = tmp_path / "chatty.py"
    path.write_text("import numpy as np\nprint('loading')\n\ndef f(x):\n    print('debug', x.shape)\n"
                    "    return np.sqrt(x)\n")
    (tmp_path / "x.csv").write_text("0,1,2\n")
    code, out, err = run(capsys, "compare", f"{path}:f", "--x-file", str(tmp_path / "x.csv"), "--modes",
                         "forward,reverse", "--repeat", "1", "--json")
    assert code == 0, err
    data = json.loads(out, parse_constant=lambda name: pytest.fail(f"{name} in the JSON"))
    assert [m["max_abs_diff"] for m in data["measurements"]] == [0.0, None]  # the reverse row's is inf
    assert "loading" in err and "debug" in err


def test_a_file_imports_the_modules_beside_it(tmp_path, capsys, monkeypatch):
    """As `python model.py` runs it: the file's folder is on the path, wherever the command runs."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "jl_cli_helper_beside.py").write_text("def twice(x):\n    return 2.0 * x\n")
    (folder / "model.py").write_text("import numpy as np\nfrom jl_cli_helper_beside import twice\n\n"
                                     "def f(x):\n    return np.sin(twice(x))\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the folder added is gone after the test
    code, out, err = run(capsys, "compare", f"{folder / 'model.py'}:f", "--shape", "3", "--repeat", "1", "--json")
    assert code == 0, err
    assert json.loads(out)["measurements"][0]["max_abs_diff"] == 0.0


def test_a_reader_gone_under_rich_ends_the_command_quietly(capsys, monkeypatch):
    """rich's console answers a closed pipe with SystemExit(1), which was reported as f calling sys.exit."""
    def rich_on_a_closed_pipe(args):
        try:
            raise BrokenPipeError(32, "Broken pipe")
        except BrokenPipeError:
            raise SystemExit(1)

    monkeypatch.setattr(cli.commands, "cmd_problems", rich_on_a_closed_pipe)
    monkeypatch.setattr(cli, "_reader_gone", lambda: 1)  # the real one points the test's stdout at /dev/null
    assert main(["problems"]) == 1 and capsys.readouterr().err == ""


@pytest.mark.parametrize("where, expected_code, message", [
    ("import sys\nsys.exit(3)\ndef f(x):\n    return x\n", 2,
     'it called sys.exit(3) as it was imported; put the code that runs it as a script under `if __name__ == '),
    ("import sys\ndef f(x):\n    sys.exit(5)\n", 1, "the function called sys.exit(5); return its value instead"),
])
def test_code_that_exits_is_named_rather_than_silent(tmp_path, capsys, where, expected_code, message):
    path = tmp_path / "exits.py"
    path.write_text(where)
    code, _, err = run(capsys, "compare", f"{path}:f", "--shape", "3", "--repeat", "1")
    assert_one_line_error(err, code, expected_code)
    assert message in err


def test_compare_default_is_seed_at_1000():
    args = build_parser().parse_args(["compare"])
    assert args.target is None and args.repeat == 3
    assert problems.get("seed").n == 1000  # what the default target resolves to


# ------------------------------------------------------------------ sweep


def test_sweep_json_and_progress(capsys):
    code, out, err = run(capsys, "sweep", "wide_to_tall", "--n", "80,5,20,5", "--m", "20", "--repeat", "1", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["axis"] == "n" and [p["n"] for p in data["points"]] == [5, 20, 80]
    assert all(p["m"] == 20 for p in data["points"])
    crossing = data["series"][0]["crossover"]
    assert crossing is not None and 5 < crossing["size"] < 80
    assert all(p["seconds"]["forward"] > 0 and p["seconds"]["reverse"] > 0 for p in data["points"])
    assert "3/3" in err  # the progress bar went to stderr
    # the sweep's summary names no size; each point's names its own
    assert data["summary"].startswith("Chain through a bottleneck: x (n)") and "R^5" not in data["summary"]
    assert [p["summary"].split(":")[1].split(",")[0] for p in data["points"]] == [
        f" R^{n} -> R^10 -> R^20" for n in (5, 20, 80)]


def test_a_sweep_says_which_sizes_a_problem_runs_instead_and_sweeps_each_once(capsys):
    code, out, err = run(capsys, "sweep", "mlp_loss", "--n", "22,30,50", "--repeat", "1", "--json")
    assert code == 0 and "mlp_loss runs n = 30 as 22 and 50 as 44, the sizes it takes" in err
    assert [p["n"] for p in json.loads(out)["points"]] == [22, 44]


@pytest.mark.parametrize("command", ["compare", "sparsity"])
def test_compare_and_sparsity_say_which_size_a_problem_runs_instead(capsys, command):
    code, out, err = run(capsys, command, "mlp_loss", "--n", "30", *(("--modes", "reverse", "--repeat", "1")
                                                                     if command == "compare" else ()), "--json")
    assert code == 0 and f"jacobian-lab {command}: mlp_loss runs n = 30 as 22, the size it takes" in err
    assert json.loads(out)["n"] == 22


def test_a_sweep_with_equal_costs_names_them_rather_than_a_crossover(capsys):
    code, out, _ = run(capsys, "sweep", "dense", "--n", "4,8", "--repeat", "1")
    assert code == 0 and "cost the same FLOPs at every size" in out
    # forward's passes split at 1000 seeds, so reverse wins there by 0.3 %: equal before, no crossover
    code, out, _ = run(capsys, "sweep", "dense", "--n", "100,1000", "--repeat", "1")
    assert "reverse is cheaper elsewhere, and the two cost the same at n = 100" in out and "crossover at" not in out


def test_sweep_table_and_plot(tmp_path, capsys):
    target = tmp_path / "sweep.png"
    code, out, _ = run(capsys, "sweep", "seed", "--n", "5,10,20", "--repeat", "1", "--plot", str(target))
    assert code == 0
    assert "no crossover for n in [5, 20]: reverse is cheaper throughout" in out
    with Image.open(target) as image:
        assert image.format == "PNG" and image.width >= 800 and image.height >= 300


def test_sweep_of_a_banded_problem_adds_the_sparse_series(capsys):
    code, out, _ = run(capsys, "sweep", "bratu", "--n", "10,40", "--repeat", "1", "--json")
    assert code == 0
    points = json.loads(out)["points"]
    for p in points:  # three seeds against n - 2 or n: the compressed work is a fraction of either order's
        assert 0 < p["flops"]["sparse"] < min(p["flops"]["forward"], p["flops"]["reverse"]) / 2
        assert p["cost"]["sparse"]["tangent"]["flops"] > 0 and p["seconds"]["sparse"] > 0
    code, out, _ = run(capsys, "sweep", "seed", "--n", "5,10", "--repeat", "1", "--json")
    assert all("sparse" not in p["flops"] for p in json.loads(out)["points"])  # one row: nothing to compress


def test_sweep_fixed_n_problem_sweeps_m(capsys):
    code, out, _ = run(capsys, "sweep", "curve", "--m", "5,50", "--repeat", "1", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["axis"] == "m" and [p["m"] for p in data["points"]] == [5, 50]
    assert {p["n"] for p in data["points"]} == {4}


# ------------------------------------------------------------------ chain


def test_chain_prints_plan_table(capsys):
    code, out, _ = run(capsys, "chain", "100", "1", "100", "100", "100")
    assert code == 0
    assert out.strip() == chain.plan([100, 1, 100, 100, 100]).table()
    assert "34.00x" in out and "(J4 (J3 J2)) J1" in out


def test_chain_widths_are_read_as_sizes_are(capsys):
    """"1e2" was refused as no integer, where --n takes it."""
    code, out, _ = run(capsys, "chain", "1e2", "1", "100", "100", "100")
    assert code == 0 and out.strip() == chain.plan([100, 1, 100, 100, 100]).table()


def test_chain_widths_beyond_a_floats_integers_are_read_exactly(capsys):
    code, out, _ = run(capsys, "chain", "9007199254740993", "1", "3", "--json")
    assert code == 0 and json.loads(out) == chain.plan([2 ** 53 + 1, 1, 3]).to_dict()


def test_chain_json_and_plot(tmp_path, capsys):
    target = tmp_path / "chain.png"
    code, out, _ = run(capsys, "chain", "10", "1000", "10", "1000", "1", "--json", "--plot", str(target))
    assert code == 0
    assert json.loads(out) == chain.plan([10, 1000, 10, 1000, 1]).to_dict()
    with Image.open(target) as image:
        assert image.format == "PNG" and image.width >= 500 and image.height >= 300


# --------------------------------------------------------------- problems


def test_problems_lists_every_problem(capsys):
    code, out, _ = run(capsys, "problems")
    assert code == 0
    lines = out.strip().splitlines()
    assert [line.split()[0] for line in lines] == problems.names()
    assert all(len(line) > 20 for line in lines)


def test_problems_json(capsys):
    code, out, _ = run(capsys, "problems", "--json")
    assert code == 0
    assert [p["name"] for p in json.loads(out)] == problems.names()


# ------------------------------------------------------------------- help


@pytest.mark.parametrize("command", ["compare", "sweep", "report", "chain", "problems"])
def test_help_has_examples(capsys, command):
    code, out, _ = run(capsys, command, "--help")
    assert code == 0
    assert "examples:" in out and f"jacobian-lab {command}" in out


def test_top_level_help_and_no_command(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "compare" in out and "examples:" in out
    code, out, _ = run(capsys)  # the bare command asks what it can do: no error
    assert code == 0 and "COMMAND" in out


# ----------------------------------------------------------- bad arguments

BAD = [
    (("compare", "no_such_problem"), 2, "unknown problem"),
    (("compare", "seed", "--n", "-5"), 2, "positive"),
    (("compare", "seed", "--n", "0"), 2, "positive"),
    (("compare", "seed", "--m", "3"), 2, "takes no parameter m"),
    (("compare", "curve", "--n", "10"), 2, "fixed at 4"),
    (("compare", "seed", "--n", "ten"), 2, "integer"),
    (("compare", "seed", "--modes", "forward,sideways"), 2, "unknown mode"),
    (("compare", "seed", "--repeat", "0"), 2, "positive"),
    (("compare", "seed", "--batch-size", "-1"), 2, "positive"),
    (("compare", "seed", "--plot", "out.gif"), 2, ".png"),
    (("compare", "seed", "--shape", "3"), 2, "--n/--m"),
    (("compare", "{missing}:f", "--shape", "3"), 2, "not found"),
    (("compare", "{user}:no_such_function", "--shape", "3"), 2, "no attribute"),
    (("compare", "{user}:CONSTANT", "--shape", "3"), 2, "not callable"),
    (("compare", "{user}:softplus_sum"), 2, "--shape"),
    (("compare", "{user}:softplus_sum", "--shape", "0"), 2, "positive"),
    (("compare", "{user}:softplus_sum", "--shape=-2,3"), 2, "positive"),
    (("compare", "{user}:softplus_sum", "--shape", "-2,3"), 2, "--shape"),
    (("compare", "{user}:softplus_sum", "--x-file", "{missing_npy}"), 2, "not found"),
    (("compare", "{user}:softplus_sum", "--n", "3"), 2, "--shape"),
    (("compare", "no_such_module_xyz:f", "--shape", "3"), 2, "cannot import"),
    (("compare", "{user}:explode", "--shape", "3"), 1, "the model diverged"),
    (("compare", "{user}:svd_values", "--shape", "6"), 1, "full_matrices=False"),
    (("compare", "{user}:forgot_return", "--shape", "3"), 1, "returned None; it must return a real array"),
    (("compare", "seed", "--seed", "-1"), 2, "--seed: expected a non-negative integer"),
    (("sparsity", "seed", "--seed", "-1"), 2, "--seed: expected a non-negative integer"),
    (("sweep", "no_such_problem"), 2, "unknown problem"),
    (("sweep", "seed", "--seed", "-1"), 2, "--seed: expected a non-negative integer"),
    (("sweep", "seed", "--n", "0,10"), 2, "positive"),
    (("sweep", "seed", "--n", "-10"), 2, "positive"),
    (("sweep", "seed", "--m", "10"), 2, "takes no parameter m"),
    (("sweep", "curve", "--n", "10"), 2, "fixed at 4"),
    (("chain", "3", "0", "2"), 2, "positive"),
    (("chain", "3", "-2", "2"), 2, "positive"),
    (("chain", "3"), 2, "at least 2"),
    (("chain", "3", "x"), 2, "integer"),
    (("chain", "3", "2.5"), 2, "width must be an integer, got '2.5'"),
    (("report", "--problems", "nope"), 2, "unknown problem"),
    (("report", "--problems", ""), 2, "(none given)"),
    (("no_such_command",), 2, "invalid choice"),
    (("compare", "seed", "--frobnicate"), 2, "unrecognized arguments: --frobnicate (see 'jacobian-lab compare --help')"),
    (("--frobnicate",), 2, "unrecognized arguments: --frobnicate (see 'jacobian-lab --help')"),
]


def _fill(argv, user_file, tmp_path):
    names = {"user": user_file, "missing": tmp_path / "missing.py", "missing_npy": tmp_path / "missing.npy"}
    return [a.format(**names) for a in argv]


@pytest.mark.parametrize("argv,expected,fragment", BAD, ids=[" ".join(a) for a, _, _ in BAD])
def test_bad_arguments_one_line_no_traceback(capsys, user_file, tmp_path, argv, expected, fragment):
    code, _, err = run(capsys, *_fill(argv, user_file, tmp_path))
    assert_one_line_error(err, code, expected)
    assert fragment in err


def _allocate(*args, **kwargs):
    raise MemoryError("Unable to allocate 74.5 GiB for an array with shape (100000, 100000)")


@pytest.mark.parametrize("argv,hint", [
    (("compare", "dense", "--n", "100000"), "try smaller sizes (--n)"),
    (("compare", "dense"), "try smaller sizes (--n, --m)"),
    (("compare", "wide_to_tall", "--n", "10", "--m", "100000"), "try smaller sizes (--n, --m)"),
    (("compare", "{user}:softplus_sum", "--shape", "100000000000"), "try smaller sizes (--shape)"),
    (("sparsity", "{user}:softplus_sum", "--x-file", "big.npy"), "try a smaller input than --x-file 'big.npy'"),
])
def test_out_of_memory_is_one_line_naming_the_sizes_given(capsys, monkeypatch, user_file, tmp_path, argv, hint):
    monkeypatch.setattr(cli.targets, "resolve", _allocate)
    code, _, err = run(capsys, *_fill(argv, user_file, tmp_path))
    assert_one_line_error(err, code, 2)
    assert "out of memory (Unable to allocate 74.5 GiB" in err
    assert err.rstrip().endswith(f"; {hint}")


def test_out_of_memory_in_chain_names_its_widths(capsys, monkeypatch):
    monkeypatch.setattr(chain, "plan", _allocate)
    code, _, err = run(capsys, "chain", "100000", "100000")
    assert_one_line_error(err, code, 2)
    assert "try smaller widths" in err and "--n" not in err


def _over_budget(*args, **kwargs):
    raise MemoryBudgetError("the dense 60000x60000 Jacobian needs 26.8 GiB, over the memory budget of 11.4 GiB")


@pytest.mark.parametrize("argv,module,name,hint", [
    (("compare", "{user}:softplus_sum", "--shape", "3"), "jacobian_lab.compare", "compare", "(--shape)"),
    (("sparsity", "dense", "--n", "5"), "jacobian_lab.sparsity", "recorded", "(--n)"),
    (("sweep", "seed", "--n", "5,10"), "jacobian_lab.sweep", "sweep", "(--n)"),
    (("report", "--out", "{tmp}/r", "--problems", "seed"), "jacobian_lab.report", "build_report", "(--problems)"),
])
def test_a_request_too_large_for_memory_exits_2_like_a_bad_size(capsys, monkeypatch, user_file, tmp_path, argv,
                                                                module, name, hint):
    """Running out of the memory budget anywhere in the run is reported as a size to shrink, not a failure."""
    monkeypatch.setattr(importlib.import_module(module), name, _over_budget)
    argv = [a.format(user=user_file, tmp=tmp_path) for a in argv]
    code, _, err = run(capsys, *argv)
    last = err.strip().splitlines()[-1]  # sweep and report draw their progress bar above it
    assert code == 2 and "Traceback" not in err, err
    assert last.startswith(f"jacobian-lab {argv[0]}: error: out of memory (the dense 60000x60000 Jacobian needs")
    assert f"{hint}" in last and "failed" not in err
    # a dense Jacobian too large for compare: its sparse row stores the entries alone
    assert last.endswith("--modes sparse alone (its entries, not the dense matrix)") == (argv[0] == "compare")


def test_a_function_out_of_memory_at_the_shape_given_exits_2(capsys, user_file):
    code, _, err = run(capsys, "compare", f"{user_file}:hog", "--shape", "3")
    assert_one_line_error(err, code, 2)
    assert "out of memory (Unable to allocate 7.28 TiB" in err and err.rstrip().endswith("(--shape)")


def test_a_reader_that_stops_reading_ends_the_command_quietly(capsys, monkeypatch, tmp_path):
    """`jacobian-lab problems --json | head -3`: the pipe closes, and no error is printed."""
    def write_to_closed_pipe(args):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(cli.commands, "cmd_problems", write_to_closed_pipe)
    with open(tmp_path / "stdout", "w") as stdout:  # a real file descriptor, which the command points at /dev/null
        monkeypatch.setattr(sys, "stdout", stdout)
        code = main(["problems", "--json"])
    assert code == 1 and capsys.readouterr().err == ""


def test_debug_shows_traceback(capsys, user_file):
    code, _, err = run(capsys, "compare", f"{user_file}:explode", "--shape", "3", "--debug")
    assert code == 1
    assert "Traceback" in err and "RuntimeError: the model diverged" in err


def test_helpers():
    assert parse_sizes("10, 100,1e3") == [10, 100, 1000]
    assert parse_shape("3x4") == (3, 4) and parse_shape("") == ()
    with pytest.raises(UsageError):
        parse_sizes("2.5")
    with pytest.raises(UsageError):
        load_target("numpy")
    assert load_target("numpy:linalg.norm") is np.linalg.norm


# ------------------------------------------------------ installed script


def _script():
    candidate = Path(sys.executable).with_name("jacobian-lab")
    found = str(candidate) if candidate.exists() else shutil.which("jacobian-lab")
    if found is None:
        message = "the jacobian-lab console script is not installed (pip install -e .)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def _run_script(*argv, cwd=None):
    return subprocess.run([_script(), *argv], check=False, capture_output=True, text=True, timeout=120, cwd=cwd)


def test_console_script_compare_json():
    proc = _run_script("compare", "seed", "--n", "50", "--repeat", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["n"] == 50 and data["best"] == "jit -> reverse"  # the compiled gradient does the least work
    assert data["verdict"].startswith("reverse is")


def test_console_script_default_compare():
    proc = _run_script("compare", "--repeat", "1")
    assert proc.returncode == 0, proc.stderr
    assert "R^1000 -> R^1" in proc.stdout and "verdict: reverse" in proc.stdout


def test_numpys_warnings_show_once_at_fs_own_line(tmp_path):
    (tmp_path / "roots.py").write_text("import numpy as np\ndef roots(x):\n    return np.sqrt(x)\n")
    np.save(tmp_path / "x.npy", np.array([1.0, np.nan, -1.0]))
    proc = _run_script("compare", "roots.py:roots", "--x-file", "x.npy", "--repeat", "1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    warned = [line for line in proc.stderr.splitlines() if "RuntimeWarning" in line]
    assert len(warned) == 1 and warned[0].startswith(str(tmp_path / "roots.py") + ":3:"), proc.stderr


def test_what_numpy_warned_only_inside_the_derivatives_is_said_once(tmp_path):
    (tmp_path / "roots.py").write_text("import numpy as np\ndef roots(x):\n    return np.sqrt(x)\n")
    np.save(tmp_path / "x.npy", np.array([0.0, 1.0]))  # sqrt(0) is fine; its derivative divides by zero
    proc = _run_script("compare", "roots.py:roots", "--x-file", "x.npy", "--repeat", "1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "RuntimeWarning" not in proc.stderr  # no line of the package's
    said = [line for line in proc.stderr.splitlines() if "NumPy also warned while computing derivatives" in line]
    assert len(said) == 1 and "divide by zero encountered in divide" in said[0], proc.stderr


def test_console_script_user_file(user_file, tmp_path):
    proc = _run_script("compare", f"{user_file.name}:softplus_sum", "--shape", "5", "--repeat", "1",
                       "--plot", "phases.png", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "verdict:" in proc.stdout
    with Image.open(tmp_path / "phases.png") as image:
        assert image.format == "PNG" and image.width >= 500


@pytest.mark.parametrize("argv,expected", [
    (("compare", "nope"), 2),
    (("compare", "seed", "--n", "-1"), 2),
    (("chain", "4", "0"), 2),
    (("compare", "{user}:explode", "--shape", "2"), 1),
])
def test_console_script_errors(user_file, tmp_path, argv, expected):
    proc = _run_script(*_fill(argv, user_file, tmp_path))
    assert proc.returncode == expected
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and proc.stdout == ""


def test_python_dash_m():
    proc = subprocess.run([sys.executable, "-m", "jacobian_lab", "chain", "2", "3", "4", "5", "--json"],
                          check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["optimal_flops"] == 128


def test_compare_npz_with_several_arrays_passes_a_dict(tmp_path, capsys):
    source = tmp_path / "model.py"
    source.write_text(
        "import numpy as np\n"
        "def layer(p):\n"
        "    return np.tanh(p['W'] @ p['x'] + p['b'])\n"
    )
    rng = np.random.default_rng(0)
    npz = tmp_path / "point.npz"
    np.savez(npz, W=rng.normal(size=(3, 4)), x=rng.normal(size=4), b=rng.normal(size=3))
    assert main(["compare", f"{source}:layer", "--x-file", str(npz), "--json", "--repeat", "1"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["n"], data["m"]) == (12 + 4 + 3, 3)
    assert all(m["max_abs_diff"] < 1e-12 for m in data["measurements"])


def test_a_seed_beside_an_x_file_is_refused(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.ones(3))
    code, _, err = run(capsys, "compare", "numpy:sin", "--x-file", str(tmp_path / "x.npy"), "--seed", "4")
    assert_one_line_error(err, code, 2)
    assert "--seed draws the random input of --shape" in err and "--x-file input has nothing to draw" in err
    code, _, err = run(capsys, "compare", "numpy:sin", "--shape", "4", "--seed", "4", "--modes", "reverse",
                       "--repeat", "1")
    assert code == 0, err  # where it draws x, it is taken
