"""The HTML + Markdown report: structure, files, self-containedness."""
import base64
import json
import os
import re
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

import jacobian_lab as jl
from jacobian_lab import problems
from jacobian_lab import report as report_module
from jacobian_lab.cli import main
from jacobian_lab.compare import ratios_text
from jacobian_lab.report import DEFAULT_SIZES, _report_figures, build_report

SIZES = {"seed": {"n": 30}, "curve": {"m": 30}}
GRID = (5, 10, 40)


class Page(HTMLParser):
    """Collects what the checks need; raises on nothing, so also counts the tags it saw."""

    def __init__(self):
        super().__init__()
        self.images, self.links, self.scripts, self.ids, self.tables, self.stack = [], [], [], set(), 0, []
        self.text = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag not in ("img", "meta", "link", "br", "hr", "input"):
            self.stack.append(tag)
        if tag == "img":
            self.images.append(attrs)
        if tag == "link":
            self.links.append(attrs)
        if tag == "script":
            self.scripts.append(attrs)
        if tag == "table":
            self.tables += 1
        if "id" in attrs:
            self.ids.add(attrs["id"])

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    index = build_report(out, problems=["seed", "curve"], sizes=SIZES, grid=GRID, repeat=1)
    return index


def parse(index: Path) -> Page:
    page = Page()
    page.feed(index.read_text(encoding="utf-8"))
    page.close()
    assert page.stack == [], f"unclosed tags: {page.stack}"
    return page


def test_files_written(report):
    out = report.parent
    assert report.name == "index.html"
    assert (out / "report.md").is_file() and (out / "data.json").is_file()
    data = json.loads((out / "data.json").read_text())
    assert list(data["problems"]) == ["seed", "curve"]
    assert data["problems"]["seed"]["comparison"]["n"] == 30
    assert data["problems"]["curve"]["sweeps"][0]["axis"] == "m"


def test_html_parses_and_every_image_exists(report):
    page = parse(report)
    # overview (3) + seed (phases, n sweep) + curve (phases, m sweep)
    assert len(page.images) == 7
    for image in page.images:
        src = image["src"]
        assert not re.match(r"^[a-z]+://", src), src
        path = report.parent / src
        assert path.is_file(), src
        with Image.open(path) as png:
            assert png.format == "PNG" and png.width >= 500 and png.height >= 300
        assert image.get("alt")
    assert {"seed", "curve", "summary", "overview"} <= page.ids
    assert page.tables >= 1 + 2 * 2  # summary, then a comparison and a sweep table per problem


def test_html_is_self_contained(report):
    page = parse(report)
    html = report.read_text(encoding="utf-8")
    assert page.scripts == []  # no JavaScript at all
    for link in page.links:
        assert link.get("rel") == "icon" and link["href"].startswith("data:")
    assert "http://" not in html and "https://" not in html
    assert "@import" not in html and "url(" not in html


def test_tables_come_from_comparison_rows(report):
    page = parse(report)
    text = " ".join(page.text)
    for header in ("mode", "passes", "primal flops", "deriv flops", "total/f", "peak MiB", "tape MiB", "max|dJ|"):
        assert header in text
    for label in ("forward, 1 seed/pass", "reverse, batched", "auto -> reverse", "auto -> forward"):
        assert label in text
    assert "Verdict: reverse is" in text and "Verdict: forward is" in text
    assert "no crossover for n in [5, 40]: reverse is cheaper throughout" in text
    assert "`" not in text  # the command to reproduce a row is code, not text between backticks
    assert "cheaper order" in text and "cheapest row" in text  # the expected order beside the cheaper one
    assert ("<code>jacobian-lab compare PROBLEM</code> with those sizes (<code>--n N</code>, and <code>--m M</code> "
            "where a problem takes one) reproduces") in report.read_text(encoding="utf-8")
    assert "Times are from one run." in text  # repeat=1
    seed = problems.get("seed", **SIZES["seed"])
    assert ratios_text(jl.predict(seed.f, seed.x))[1:] + "." in text  # as the command line words them


def test_markdown_mirrors_the_report(report):
    md = (report.parent / "report.md").read_text(encoding="utf-8")
    assert md.startswith("# jacobian_lab report")
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert len(images) == 7
    for src in images:
        assert (report.parent / src).is_file()
    assert "| mode | passes |" in md and "## seed" in md and "## curve" in md


def test_embedded_report(tmp_path):
    index = build_report(tmp_path, problems=["tall_to_wide"], sizes={"tall_to_wide": {"n": 3, "m": 4}},
                         grid=(2, 6), repeat=1, embed=True)
    page = parse(index)
    assert len(page.images) == 3 + 1 + 2  # overview, phases, sweeps over n and over m
    for image in page.images:
        prefix = "data:image/png;base64,"
        assert image["src"].startswith(prefix)
        assert base64.b64decode(image["src"][len(prefix):])[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_banded_problem_gets_its_pattern_figure(tmp_path):
    index = build_report(tmp_path, problems=["bratu", "dense"], sizes={"bratu": {"n": 40}, "dense": {"n": 6}},
                         grid=(8, 16), repeat=1)
    names = {p.name for p in (tmp_path / "figures").glob("*.png")}
    assert "bratu_pattern.png" in names and "dense_pattern.png" not in names  # a full pattern shrinks nothing
    assert {p.name for p in _report_figures(tmp_path / "figures")} == names  # what a rebuild replaces
    markdown = (tmp_path / "report.md").read_text()
    assert "114 of 1,520 entries: 3 seeds in forward mode instead of 38" in markdown
    assert "The problems run at bratu n = 40, dense n = 6, chosen for a report" in markdown
    # the eager dense orders' FLOPs, not a compiled program's (which pushes compressed seeds itself)
    problem = problems.get("bratu", n=40)
    eager = min(jl.predict(problem.f, problem.x).total(mode).total() for mode in ("forward", "reverse"))
    assert f"against {eager:,.0f} for the cheaper eager dense order" in markdown
    assert Image.open(tmp_path / "figures" / "bratu_pattern.png").size[0] > 100
    assert index.is_file()


def test_rebuild_removes_stale_figures_and_keeps_other_files(tmp_path):
    build_report(tmp_path, problems=["seed"], sizes={"seed": {"n": 8}}, grid=(4, 8), repeat=1)
    mine = tmp_path / "figures" / "lecture_diagram.png"  # a file of the user's in the same folder
    mine.write_bytes(b"not ours")
    build_report(tmp_path, problems=["dense"], sizes={"dense": {"n": 4}}, grid=(2, 4), repeat=1)
    names = sorted(p.name for p in (tmp_path / "figures").glob("*.png"))
    assert not any(n.startswith("seed") for n in names)
    assert "dense_phases.png" in names
    assert mine.read_bytes() == b"not ours"
    assert {p.name for p in _report_figures(tmp_path / "figures")} == set(names) - {mine.name}


@pytest.mark.parametrize("stop_at", [0, 3])
def test_a_rebuild_stopped_before_it_is_written_leaves_the_earlier_report_whole(tmp_path, monkeypatch, stop_at):
    """Ctrl-C while the problems are measured (stop_at 0) or their figures drawn: the report there is the earlier
    one, every file as it was, and no folder of the stopped one is left."""
    build_report(tmp_path, problems=["seed"], sizes={"seed": {"n": 8}}, grid=(4, 8), repeat=1)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    saved, save = [], report_module.plots.save

    def interrupted(*args, **kwargs):
        if len(saved) == stop_at:
            raise KeyboardInterrupt
        saved.append(save(*args, **kwargs))
        return saved[-1]

    monkeypatch.setattr(report_module.plots, "save", interrupted)
    measure = report_module.compare
    monkeypatch.setattr(report_module, "compare", lambda *a, **k: interrupted() if stop_at == 0 else measure(*a, **k))
    with pytest.raises(KeyboardInterrupt):
        build_report(tmp_path, problems=["dense"], sizes={"dense": {"n": 4}}, grid=(2, 4), repeat=1)
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.json", "figures", "index.html", "report.md"]


def test_build_report_refuses_a_folder_where_it_writes_a_file_before_any_work(tmp_path, monkeypatch):
    """It had replaced the figures, data.json and report.md when index.html, a folder, failed last."""
    build_report(tmp_path, problems=["seed"], sizes={"seed": {"n": 8}}, grid=(4, 8), repeat=1)
    (tmp_path / "index.html").unlink()
    (tmp_path / "index.html").mkdir()
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    monkeypatch.setattr(report_module, "compare", lambda *a, **k: pytest.fail("the report was computed"))
    with pytest.raises(FileExistsError, match="index.html' is a folder, where the report writes its index.html"):
        build_report(tmp_path, problems=["dense"], sizes={"dense": {"n": 4}}, grid=(2, 4), repeat=1)
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_figures_linked_elsewhere_are_written_there(tmp_path):
    """figures/ a link to another folder, on another file system where there is one (/dev/shm): a move from
    beside the report failed there (EXDEV) once the earlier figures were deleted."""
    shm = Path("/dev/shm")
    other = shm.is_dir() and os.access(shm, os.W_OK) and os.stat(shm).st_dev != os.stat(tmp_path).st_dev
    out = tmp_path / "out"
    out.mkdir()
    with tempfile.TemporaryDirectory(dir=shm if other else tmp_path) as elsewhere:
        (out / "figures").symlink_to(elsewhere, target_is_directory=True)
        for problem, size in (("seed", {"n": 8}), ("curve", {"m": 8})):  # the second replaces the first's
            build_report(out, problems=[problem], sizes={problem: size}, grid=(4, 8), repeat=1)
            names = sorted(p.name for p in Path(elsewhere).iterdir())
            assert names == sorted(p.name for p in _report_figures(Path(elsewhere))) and len(names) == 5
            assert all(name.startswith(("overview", problem)) for name in names)


def test_unknown_problem_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown problem"):
        build_report(tmp_path, problems=["nope"])


def test_default_sizes_cover_every_problem():
    assert set(DEFAULT_SIZES) == set(problems.names())
    for name, size in DEFAULT_SIZES.items():
        problems.get(name, **size)


def test_report_command(tmp_path, capsys):
    out = tmp_path / "cli-report"
    code = main(["report", "--out", str(out), "--problems", "seed,tall_to_wide", "--repeat", "1"])
    stdout, stderr = capsys.readouterr()
    assert code == 0, stderr
    page = parse(out / "index.html")
    assert stdout.splitlines() == [str(out / "index.html"), str(out / "report.md"), str(out / "data.json"),
                                   f"{out / 'figures'}{os.sep} ({len(page.images)} figures)"]
    assert len(page.images) == 3 + 2 + 3
    assert all((out / image["src"]).is_file() for image in page.images)


@pytest.mark.parametrize("out", ["", "  "])
def test_report_command_refuses_an_empty_out(tmp_path, capsys, monkeypatch, out):
    monkeypatch.chdir(tmp_path)  # where an empty --out would write
    code = main(["report", "--out", out, "--problems", "tall_to_wide", "--repeat", "1"])
    stdout, stderr = capsys.readouterr()
    assert code == 2 and stdout == ""
    assert stderr.strip() == ("jacobian-lab report: error: --out is empty; give the folder to write the report "
                              "into, e.g. --out report")
    assert list(tmp_path.iterdir()) == []


def test_a_report_file_that_is_a_dangling_link_is_replaced_not_written_through(tmp_path, capsys):
    """index.html a link to where nothing is (or to a folder the user may not look into, where the check raised
    PermissionError): the report puts its own file there, and writes nothing where the link pointed."""
    out, target = tmp_path / "out", tmp_path / "elsewhere" / "x.html"
    out.mkdir()
    (out / "index.html").symlink_to(target)
    assert main(["report", "--out", str(out), "--problems", "seed", "--repeat", "1"]) == 0
    capsys.readouterr()
    assert not (out / "index.html").is_symlink() and "<html" in (out / "index.html").read_text()
    assert not target.parent.exists()


@pytest.mark.parametrize("name, make", [("index.html", "folder"), ("data.json", "folder"), ("figures", "file")])
def test_report_command_refuses_an_out_it_could_not_write_into_before_the_run(tmp_path, capsys, monkeypatch, name,
                                                                             make):
    """A folder where index.html goes failed with IsADirectoryError once the whole report was computed."""
    def refused(*args, **kwargs):
        raise AssertionError("the report was built")

    monkeypatch.setattr(report_module, "build_report", refused)
    path = tmp_path / "out" / name
    path.parent.mkdir()
    if make == "folder":
        path.mkdir()
    else:
        path.write_text("x")
    code = main(["report", "--out", str(tmp_path / "out"), "--problems", "seed", "--repeat", "1"])
    stdout, stderr = capsys.readouterr()
    assert code == 2 and stdout == ""
    assert stderr.strip().endswith(f"{str(path)!r} is a {'folder' if make == 'folder' else 'file'}, where the report "
                                   f"writes its {name}; move it or choose another --out")


def test_report_command_refuses_a_report_file_it_cannot_overwrite_before_the_run(tmp_path, capsys, monkeypatch):
    """A read-only index.html failed with PermissionError once the report was computed, its figures rewritten."""
    import jacobian_lab.cli as cli

    def refused(*args, **kwargs):
        raise AssertionError("the report was built")

    monkeypatch.setattr(report_module, "build_report", refused)
    (tmp_path / "out").mkdir()
    index = tmp_path / "out" / "index.html"
    index.write_text("an earlier report")
    index.chmod(0o444)
    writable = cli.os.access  # root may write a read-only file: the test asks as another user would
    monkeypatch.setattr(cli.os, "access", lambda p, mode: writable(p, mode) and Path(p) != index)
    code = main(["report", "--out", str(tmp_path / "out"), "--problems", "seed", "--repeat", "1"])
    stdout, stderr = capsys.readouterr()
    assert code == 2 and stdout == ""
    assert stderr.strip().endswith(f"{str(index)!r} exists and cannot be overwritten; make it writable or choose "
                                   "another --out")


def test_report_command_drops_a_repeated_problem(tmp_path, capsys, monkeypatch):
    built = []

    def recording(out, problems=None, **kwargs):
        built.append(list(problems))
        return build_report(out, problems=problems, sizes={"seed": {"n": 10}}, grid=(5, 10), repeat=1)

    monkeypatch.setattr(report_module, "build_report", recording)
    out = tmp_path / "twice"
    code = main(["report", "--out", str(out), "--problems", "seed,tall_to_wide,seed", "--repeat", "1"])
    assert code == 0, capsys.readouterr().err
    assert built == [["seed", "tall_to_wide"]]
    page = (out / "index.html").read_text(encoding="utf-8")
    assert page.count('<h2 id="seed">') == 1 and page.count('<h2 id="tall_to_wide">') == 1


def test_build_report_keeps_the_first_place_of_a_repeated_problem(tmp_path):
    index = build_report(tmp_path, problems=["tall_to_wide", "seed", "tall_to_wide"], sizes=SIZES, grid=GRID,
                         repeat=1)
    page = index.read_text(encoding="utf-8")
    assert page.count('<h2 id="tall_to_wide">') == 1
    assert page.index('<h2 id="tall_to_wide">') < page.index('<h2 id="seed">')
    assert list(json.loads((tmp_path / "data.json").read_text())["problems"]) == ["tall_to_wide", "seed"]
