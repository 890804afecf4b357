"""Figures (jacobian_lab.plots) and the sweep data behind them (jacobian_lab.sweep)."""
import io
import math
import re
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

import jacobian_lab as jl
from jacobian_lab import plots, problems
from jacobian_lab.chain import plan
from jacobian_lab.sweep import Crossover, crossover, default_grid, sizes_taken, sweep


@pytest.fixture(scope="module")
def comparisons():
    out = {}
    for name, size in (("seed", {"n": 40}), ("curve", {"m": 40}), ("dense", {"n": 10})):
        p = problems.get(name, **size)
        out[name] = jl.compare(p.f, p.x, repeat=1)
    return out


@pytest.fixture(scope="module")
def crossing_sweep():
    return sweep("wide_to_tall", n=[5, 20, 80], m=[20], repeat=1)


def png_of(fig: Figure) -> Image.Image:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    buffer.seek(0)
    image = Image.open(buffer)
    image.load()
    return image


def check_figure(fig, min_width=500, min_height=300):
    assert isinstance(fig, Figure)
    image = png_of(fig)
    assert image.format == "PNG"
    assert min_width <= image.width <= 2500 and min_height <= image.height <= 1500
    # a figure that drew something is not one flat colour
    extrema = image.convert("L").getextrema()
    assert extrema[0] < 100 and extrema[1] > 200
    for ax in fig.axes:
        assert ax.get_xlabel() and ax.get_ylabel()
    assert any(ax.get_title() for ax in fig.axes) or fig._suptitle is not None
    return image


def test_phase_bars(comparisons):
    fig = plots.phase_bars(comparisons["seed"], title="seed")
    check_figure(fig)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    assert "FLOPs" in ax.get_ylabel()
    assert "seed" in ax.get_title() and "1x40 Jacobian" in ax.get_title()
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["primal (evaluating f)", "tangent (JVP rules)", "cotangent (VJP rules)"]
    # side by side on the log axis: a mode's phase bars add up to its total, which is printed above them
    measurements = comparisons["seed"].measurements
    sums = {}
    for patch in ax.patches:
        assert patch.get_y() == 0  # not stacked
        x = round(patch.get_x() + patch.get_width() / 2)
        sums[x] = sums.get(x, 0) + patch.get_height()
    assert [sums[i] for i in range(len(measurements))] == pytest.approx([m.total.total() for m in measurements])
    assert sum(text.get_text().startswith("total ") for text in ax.texts) == len(measurements)


def test_phase_bars_draw_every_phase_above_the_axis():
    """The axis started a decade below the smallest total, so a small primal phase beside large
    derivative phases (wide_to_tall's 5,060 against totals of 1e5) fell under it and vanished."""
    c = jl.compare(lambda x: np.outer(np.sin(x), x[:20]).ravel(), np.ones(60), modes=("forward", "reverse"),
                   repeat=1)
    ax = plots.phase_bars(c).axes[0]
    heights = [patch.get_height() for patch in ax.patches if patch.get_height() > 0]
    assert min(heights) > ax.get_ylim()[0]


def test_chain_costs_of_chains_past_int64():
    """Exact counts of widths of two million pass int64: matplotlib refused them as Python ints."""
    ax = plots.chain_costs(plan([2_000_000] * 3)).axes[0]
    assert max(patch.get_height() for patch in ax.patches) == float(2 * 2_000_000 ** 3)


@pytest.mark.filterwarnings("error")
def test_phase_bars_of_a_function_without_derivative_work_draw_no_empty_legend():
    c = jl.compare(lambda x: x[::-1], np.ones(3), modes=("forward", "reverse"), repeat=1)
    fig = plots.phase_bars(c)  # matplotlib warned: no artists with labels to put in the legend
    assert fig.axes[0].get_legend() is None and not fig.axes[0].patches


def assert_labelled_in_seconds(fig, ax):
    """A time axis reads in µs, ms or s: no 9×10⁻⁵ beside 8×10⁻⁵ where it spans less than a decade."""
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_yticklabels() + ax.get_yticklabels(minor=True) if t.get_text()]
    assert labels and all(re.fullmatch(r"[\d.]+ (µs|ms|s)", label) for label in labels), labels


def test_seconds_read_in_the_unit_that_fits():
    assert [plots._seconds(v) for v in (4.2e-5, 1e-3, 0.25, 3.0)] == ["42 µs", "1 ms", "250 ms", "3 s"]
    # at the units' edges, rounded before the unit is chosen
    assert [plots._seconds(v) for v in (0.9995, 9.9996e-4, 9.9996e-7)] == ["1 s", "1 ms", "1 µs"]


def test_time_vs_flops(comparisons):
    fig = plots.time_vs_flops(comparisons)
    check_figure(fig)
    ax = fig.axes[0]
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    assert "wall time" in ax.get_ylabel() and "FLOPs" in ax.get_xlabel()
    assert_labelled_in_seconds(fig, ax)
    assert len(ax.collections) == sum(len(c.measurements) for c in comparisons.values())


def test_memory_bars(comparisons):
    fig = plots.memory_bars(comparisons)
    check_figure(fig)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log" and ax.get_ylabel() in ("memory (KiB)", "memory (MiB)")
    assert [t.get_text() for t in ax.get_xticklabels()] == list(comparisons)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(label.startswith("tape") for label in labels)
    assert not any(label.startswith("auto") for label in labels)  # auto repeats the row of its order
    assert len(labels) == len(set(labels))  # one entry per kind of row
    # each problem's rows side by side, every one drawn: as many peak bars as rows without auto
    rows = sum(1 for c in comparisons.values() for m in c.measurements if not (m.label or m.mode).startswith("auto"))
    peaks = [p for p in ax.patches if p.get_hatch() is None]
    assert len(peaks) == rows


def test_cheap_gradient(comparisons):
    preds = {name: c.prediction for name, c in comparisons.items()}
    fig = plots.cheap_gradient(preds)
    check_figure(fig)
    ax = fig.axes[0]
    lines = [line for line in ax.get_lines() if list(line.get_ydata()) == [3, 3]]
    assert lines, "the reference ω = 3 is drawn"
    heights = sorted(round(p.get_height(), 6) for p in ax.patches if p.get_width() < 0.5)
    expected = sorted(round(r, 6) for p in preds.values() for r in (p.jvp_ratio(), p.vjp_ratio()))
    assert heights == expected
    assert all(1 <= h <= 6 for h in heights)


def test_sweep_plot_draws_the_sparse_series_where_it_was_measured(crossing_sweep):
    from jacobian_lab.sweep import sweep

    banded = sweep("bratu", n=[10, 20, 40], repeat=1)
    ax_flops = plots.sweep_plot(banded).axes[0]
    line = next(line for line in ax_flops.get_lines() if line.get_label().startswith("sparse"))
    assert list(line.get_ydata()) == banded.series()[0].flops("sparse")
    assert not any(line.get_label().startswith("sparse") for line in plots.sweep_plot(crossing_sweep).axes[0].get_lines())


def test_sweep_plot_marks_crossover(crossing_sweep):
    fig = plots.sweep_plot(crossing_sweep)
    check_figure(fig, min_width=900)
    ax_flops, ax_time = fig.axes
    for ax in (ax_flops, ax_time):
        assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
        assert ax.get_xlabel() == "n (number of inputs)"
    assert "FLOPs" in ax_flops.get_ylabel() and "wall time" in ax_time.get_ylabel()
    assert_labelled_in_seconds(fig, ax_time)
    labels = [t.get_text() for t in ax_flops.get_legend().get_texts()]
    assert any(label.startswith("FLOP crossover n ≈") for label in labels)
    c = crossing_sweep.series()[0].crossover()
    marker = next(line for line in ax_flops.get_lines() if line.get_label().startswith("FLOP crossover"))
    assert marker.get_xdata()[0] == pytest.approx(c.size)
    assert "FLOP crossover at n" in fig._suptitle.get_text()


def test_sweep_plot_says_when_no_crossover():
    fig = plots.sweep_plot(sweep("seed", n=[5, 50], repeat=1))
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "no crossover in grid: reverse is cheaper throughout" in labels
    assert "no FLOP crossover for n in [5, 50]: reverse is cheaper throughout" in fig._suptitle.get_text()
    equal = plots.sweep_plot(sweep("dense", n=[100, 1000], repeat=1))  # equal at 100, reverse cheaper at 1000
    assert "the two cost the same at n = 100" in equal._suptitle.get_text()
    labels = [t.get_text() for t in equal.axes[0].get_legend().get_texts()]  # it read "reverse is cheaper elsewhere"
    assert "no crossover in grid: reverse cheaper, equal at n = 100" in labels


def test_the_notes_of_many_series_wrap_within_the_figure():
    """Four series' notes made one line of about 1,800 pixels on a figure of 1,200: both ends cut off."""
    fig = plots.sweep_plot(sweep("wide_to_tall", n=[10, 30], m=[10, 30, 100], repeat=1))
    fig.canvas.draw()
    box = fig._suptitle.get_window_extent()
    assert 0 <= box.x0 and box.x1 <= fig.bbox.width


def test_sweep_plot_several_series():
    fig = plots.sweep_plot(sweep("wide_to_tall", n=[5, 20, 80], m=[10, 40], repeat=1))
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "forward (vector), m = 10" in labels and "reverse (batched), m = 40" in labels


def test_many_series_share_one_legend_below_the_panels_and_their_notes():
    """Twelve series named in each panel's legend made 36 entries, running past the figure over the title; the same
    note for several series was written once per series, and the colours of the default cycle repeated."""
    m = [2, 3, 5, 8, 10, 13, 20, 30, 50, 80, 100, 130]
    fig = plots.sweep_plot(sweep("wide_to_tall", n=[10, 100], m=m, repeat=1))
    fig.canvas.draw()
    assert [ax.get_legend() for ax in fig.axes] == [None, None] and len(fig.legends) == 1
    legend = fig.legends[0]
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels[:14] == ["forward (vector)", "reverse (batched)", *(f"m = {v}" for v in m)]
    assert labels[14:] in (["FLOP crossover"], ["FLOP crossover", "time crossover"])  # times cross where they do
    box, panels = legend.get_window_extent(), [ax.get_window_extent() for ax in fig.axes]
    assert box.y0 >= 0 and all(box.y1 < panel.y0 for panel in panels)
    colors = {tuple(handle.get_color()) for handle in legend.legend_handles[2:14]}
    assert len(colors) == 12
    assert "reverse is cheaper throughout (m = 2, 3, 5, 8)" in fig._suptitle.get_text().replace("\n", " ")


def test_notes_name_one_size_as_a_size_and_write_thousands_as_the_axes_do():
    one, wide = sweep("seed", n=[50], timed=False), sweep("seed", n=[10, 1000], timed=False)
    fig = plots.sweep_plot(one)
    assert "no FLOP crossover for n = 50:" in fig._suptitle.get_text()  # was "n in [50, 50]"
    assert [t.get_text() for t in fig.axes[1].texts] == ["not timed"]  # a log axis of no data warned
    assert one.describe_crossovers() == ["m = 1: no crossover for n = 50: reverse is cheaper throughout"]
    assert "n in [10, 1,000]" in wide.describe_crossovers()[0]  # the plot's "1,000", not "1000"


def test_title_notes_wrap_between_brackets_not_inside_them():
    text = "; ".join(f"no FLOP crossover for n in [10, 100]: reverse is cheaper (m = {k})" for k in range(9))
    lines = plots._wrapped(text, 60).splitlines()
    assert " ".join(lines) == text and len(lines) > 5
    assert all(line.count("[") == line.count("]") and line.count("(") == line.count(")") for line in lines)


def test_chain_costs():
    p = plan([100, 1, 100, 100, 100])
    fig = plots.chain_costs(p)
    check_figure(fig)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["forward", "reverse", "optimal"]
    assert [b.get_height() for b in ax.patches] == [p.forward_flops, p.reverse_flops, p.optimal_flops]
    texts = " ".join(t.get_text() for t in ax.texts)
    assert "(J4 (J3 J2)) J1" in texts and "60,000 FLOPs" in texts
    assert "34x cheaper" in ax.get_title()


def test_chain_costs_of_equal_orders_and_of_one_stage():
    equal = plots.chain_costs(plan([10, 10, 10])).axes[0]  # one product: every order is that product
    assert "as cheap as the better pure mode" in equal.get_title() and "1x" not in equal.get_title()
    single = plots.chain_costs(plan([3, 3])).axes[0]
    assert single.get_yscale() == "linear" and [b.get_height() for b in single.patches] == [0, 0, 0]
    assert "no product to form" in single.get_title()


def test_pattern_colors_draws_every_entry_in_whole_rows_and_columns():
    row = jl.sparsity(lambda x: np.sum(x ** 2), np.ones(30))  # one row: an image a row tall, not a thin line
    ax = plots.pattern_colors(row, jl.coloring(row), title="gradient").axes[0]
    assert len(ax.images) == 1 and list(ax.get_yticks()) == [0]
    assert ax.images[0].get_array().count() == 30  # every entry drawn, nothing else
    assert "30 column colors, ten hues repeating" in ax.get_title()
    band = jl.sparsity(lambda x: x[1:] * x[:-1], np.ones(8))
    ax = plots.pattern_colors(band, jl.coloring(band)).axes[0]
    assert ax.images[0].get_array().count() == band.nnz and "2 column colors" in ax.get_title()


def test_save_png_svg_and_rejects_other(tmp_path):
    fig = plots.chain_costs(plan([3, 4, 5]))
    png = plots.save(fig, tmp_path / "a" / "chain.png")
    with Image.open(png) as image:
        assert image.format == "PNG" and image.width >= 500
    svg = plots.save(fig, tmp_path / "chain.SVG")
    assert "<svg" in svg.read_text()
    with pytest.raises(ValueError, match="png"):
        plots.save(fig, tmp_path / "chain.gif")


def test_figures_from_threads_need_no_pyplot(tmp_path):
    import inspect

    widths = [[3, 4, 5], [5, 4, 3], [10, 1, 10], [2, 9, 2, 9]]
    with ThreadPoolExecutor(4) as pool:
        paths = list(pool.map(lambda w: plots.save(plots.chain_costs(plan(w)), tmp_path / f"{len(w)}{w[0]}.png"),
                              widths))
    for path in paths:
        with Image.open(path) as image:
            assert image.width >= 500
    assert "import matplotlib.pyplot" not in inspect.getsource(plots)  # no global figure manager, no display
    assert "from matplotlib import pyplot" not in inspect.getsource(plots)


# ------------------------------------------------------------------- sweep data


def test_crossover_interpolates_on_log_axes():
    c = crossover([10, 100, 1000], [20, 200, 2000], [100, 100, 100])
    assert c.size == pytest.approx(50.0) and c.flops == pytest.approx(100.0) and c.forward_below
    c = crossover([10, 100], [100, 1], [1, 100])
    assert c.size == pytest.approx(math.sqrt(1000)) and not c.forward_below


def test_crossover_edge_cases():
    assert crossover([10, 100], [1, 2], [5, 6]) is None
    assert crossover([1, 2, 3], [4, 5, 6], [4, 5, 6]).everywhere
    touching = crossover([1, 2, 3], [1, 2, 1], [2, 2, 3])
    assert touching is None
    at_point = crossover([1, 2, 3], [1, 2, 4], [2, 2, 3])
    assert at_point.size == 2 and at_point.forward_below
    # equal from the grid's first point, or up to its last: the curves meet the edge, no side is cheaper there
    assert crossover([10, 100, 300, 1000], [5, 50, 80, 2001], [5, 50, 80, 2000]) is None
    assert crossover([10, 100, 300], [4, 50, 80], [5, 50, 80]) is None
    with pytest.raises(ValueError):
        crossover([1, 2], [1], [1, 2])
    assert Crossover(30.0, 1.0, False).describe("m") == \
        "crossover at m = 30: reverse cheaper below, forward above"
    # an interpolated crossing names the grid points around it: bratu's FLOPs tie at n = 16 exactly, and the
    # grid 10, 100, 1000 puts the crossing at 26.3
    c = crossover([10, 100, 1000], [10.0, 1000.0, 100000.0], [30.0, 300.0, 3000.0])
    assert c.between == (10, 100)
    assert c.describe() == f"crossover at n ≈ {c.size:.3g} (interpolated between 10 and 100): forward cheaper " \
        "below, reverse above"


def test_sweep_flops_are_the_prediction_and_times_are_measured(crossing_sweep):
    for point in crossing_sweep.points:
        p = problems.get("wide_to_tall", n=point.n, m=point.m)
        pred = jl.predict(p.f, p.x)
        assert point.flops("forward") == pred.total("forward").total()
        assert point.flops("reverse") == pred.total("reverse").total()
        assert point.seconds["forward"] > 0 and point.seconds["reverse"] > 0
    c = crossing_sweep.series()[0].crossover()
    assert 5 < c.size < 80 and c.forward_below  # the n = m = 20 tie lies on the grid
    assert c.size == pytest.approx(20.0)


def test_sweep_grids_and_axes():
    assert sizes_taken("dense") == ("n",) and sizes_taken("curve") == ("m",)
    assert default_grid("curve")["n"] is None
    mlp = sweep("mlp_loss", timed=False)  # its default grid held n = 10, which mlp_loss refuses (n >= 22)
    assert [p.n for p in mlp.points] == mlp.grid["n"] == [22, 88, 286, 990]  # the sizes it ran at
    (cheapest,) = {r["cheaper"] for r in sweep("bratu", n=[10, 100], timed=False).rows()}
    assert cheapest == "sparse"  # it compared forward with reverse alone, beside a smaller sparse column
    assert [p.n for p in sweep("mlp_loss", n=[30, 40, 100], timed=False).points] == [22, 88]  # 22 was run twice
    mixed = sweep("bratu", n=[3, 10, 100], timed=False)  # compressed seeds are fewer from n = 10 on
    rows = mixed.rows()  # the sparse column vanished where one point had none
    assert [r["sparse FLOPs"] is None for r in rows] == [True, False, False]
    assert [r["cheaper"] for r in rows] == ["reverse", "sparse", "sparse"]
    (series,) = mixed.series()
    assert series.has("sparse") and np.isnan(series.flops("sparse")[0]) and "  — " in mixed.table()
    square = sweep("dense", n=[4, 8], repeat=1, timed=False)
    (series,) = square.series()
    assert series.relation() == "m = n" and series.crossover().everywhere
    bratu = sweep("bratu", n=[5, 9], repeat=1, timed=False)
    assert bratu.series()[0].relation() == "m = n - 2"
    curve = sweep("curve", m=[8, 20], repeat=1, timed=False)
    assert curve.axis == "m" and curve.series()[0].relation() == "n = 4"
    with pytest.raises(ValueError, match="takes no parameter m"):
        sweep("seed", m=[3])
    rows = curve.rows()
    assert [r["cheaper"] for r in rows] == ["forward", "forward"]
    data = curve.to_dict()
    assert data["axis"] == "m" and len(data["points"]) == 2 and data["series"][0]["crossover"] is None


def test_sweep_progress_callback():
    calls = []
    sweep("seed", n=[3, 6], repeat=1, timed=False, progress=lambda *a: calls.append(a))
    assert [c[:2] for c in calls] == [(1, 2), (2, 2)]


def test_mlp_loss_sweep_uses_actual_n():
    r = sweep("mlp_loss", n=[44, 100], repeat=1, timed=False)
    assert [p.n for p in r.points] == [44, 88]
    assert np.all(np.diff([p.flops("forward") for p in r.points]) > 0)
