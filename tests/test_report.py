"""report.md / report.html / CSV exports of a run folder (a stand-in adapter, so no framework is needed)."""

from __future__ import annotations

import base64
import os
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from markdown_it import MarkdownIt

from harness.cli import main
from harness.conformance.runner import TABLES, run_suite
from harness.report import ReportError, load_run, md_table, write_report

SUITE = """
name = "fake-report"
[defaults]
adapters = ["fake"]
steps = 30
records = 6
dtypes = ["float32", "float64"]
devices = ["cpu"]
shapes = { w = [3, 4], b = [2] }

[[case]]
name = "good"
seed = 1
args.fake = { lr = 0.01, momentum = 0.9 }

[[case]]
name = "drifts"
seed = 2

[[parity]]
name = "defaults"
presets = ["torch", "keras", "keras_jax", "tf1", "optax"]
steps = 50

[[parity]]
name = "copied | settings"
settings = { lr = 1e-3, momentum = 0.9 }
presets = ["torch", "keras", "optax"]
steps = 50
"""


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    from harness.adapters import ADAPTERS, AdapterInfo

    mp = pytest.MonkeyPatch()
    mp.setitem(ADAPTERS, "fake", AdapterInfo("fake", "tests.fake_adapter:Fake", "torch", "fake"))
    mp.setenv("FAKE_2", "drift")
    tmp = tmp_path_factory.mktemp("report")
    (tmp / "fake.toml").write_text(SUITE)
    run_suite(tmp / "fake.toml", out=tmp / "run")
    write_report(tmp / "run")
    mp.undo()
    return tmp / "run"


def test_csv_exports_match_the_parquet_tables(run_dir) -> None:
    for name in TABLES:
        parquet = pd.read_parquet(run_dir / f"{name}.parquet")
        csv = pd.read_csv(run_dir / f"{name}.csv", keep_default_na=False, na_values=[""])
        assert len(parquet) == len(csv) > 0, name
        assert list(parquet.columns) == list(csv.columns)
    hist = pd.read_csv(run_dir / "ulp_histogram.csv")
    summary = pd.read_parquet(run_dir / "summary.parquet")
    per_task = hist.groupby(["case", "adapter", "dtype"])["count"].sum()
    assert set(per_task) == {14}  # every parameter element (3*4 + 2) in exactly one bin
    good64 = hist[(hist["case"] == "good") & (hist["dtype"] == "float64")]
    assert good64.set_index("label")["count"]["0"] == 14  # the stand-in is the reference: bitwise equal
    assert len(summary) == 4


def _gfm(text: str):
    return MarkdownIt("commonmark").enable("table").parse(text)


def test_report_md_verdict_first_then_failures_then_parity_and_valid_gfm(run_dir) -> None:
    text = (run_dir / "report.md").read_text()
    lines = text.splitlines()
    assert lines[0] == "# RMSprop conformance: suite `fake-report`"
    assert lines[2].startswith("**FAIL: 2 ok, 2 fail in ")
    sections = [ln for ln in lines if ln.startswith("## ")]
    assert sections[:2] == ["## Failing cases", "## Cross-framework parity"]
    assert "| drifts | fake | float32@cpu | fail | parameters:" in text
    assert "| drifts | fake | float64@cpu | fail | parameters:" in text
    # every table renders as a table with the same number of cells in each row (a stray "|" in a
    # cell, here in a scenario name, would add a column)
    tokens = _gfm(text)
    tables = [i for i, t in enumerate(tokens) if t.type == "table_open"]
    assert len(tables) == 3, "failing cases + two parity scenarios"
    for start in tables:
        widths, cells = [], 0
        for t in tokens[start:]:
            if t.type in ("th_open", "td_open"):
                cells += 1
            elif t.type == "tr_close":
                widths.append(cells)
                cells = 0
            elif t.type == "table_close":
                break
        assert len(set(widths)) == 1 and len(widths) >= 2, widths
    table_lines = [ln for ln in lines if ln.startswith("|")]
    rendered = MarkdownIt("commonmark").enable("table").render(text)
    assert rendered.count("<tr>") == len(table_lines) - len(tables)  # every table line became a row
    assert "torch vs keras (= keras_jax)" in text  # bitwise-identical presets are folded into one row
    assert "default lr" in text and "initial accumulator" in text


def test_md_table_escapes_pipes_and_newlines() -> None:
    frame = pd.DataFrame({"a|b": ["x | y", "line\nbreak"], "c": [1.23456, "<b>"]})
    tokens = _gfm(md_table(frame))
    cells = [t.content for t in tokens if t.type == "inline"]
    assert cells == ["a|b", "c", "x | y", "1.23", "line break", "&lt;b>"]
    assert "<td>&lt;b&gt;</td>" in MarkdownIt("commonmark").enable("table").render(md_table(frame))  # text, no tag


def test_report_html_is_self_contained(run_dir) -> None:
    page = (run_dir / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page
    assert not re.search(r"""(src|href)=["'](?!data:)""", page), "every resource is embedded"
    images = re.findall(r'<img alt="([^"]*)" src="data:image/png;base64,([^"]+)"', page)
    alts = [a for a, _ in images]
    assert "SGD and RMSprop trajectories over contour lines" in alts and "ULP histograms" in alts
    assert {"parity heat map defaults", "attribution heat map defaults", "divergence vs step: good",
            "divergence vs step: drifts"} <= set(alts)
    for _, data in images:
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"
    assert 'class="verdict FAIL"' in page and "Environment" in page and "fake-report" in page


REQUIRE_BROWSER = bool(os.environ.get("RMSPROP_HARNESS_REQUIRE_BROWSER"))


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _render(path: Path) -> tuple[list[str], list, str, int]:
    """Open ``path`` in headless Chromium: (console errors/warnings, page errors and failed requests;
    [alt, complete, naturalWidth, naturalHeight] per image; the title; the number of tables)."""
    if REQUIRE_BROWSER:  # .ci/run installs both: a missing one must fail there, not skip
        from playwright import sync_api as playwright
    else:
        playwright = pytest.importorskip("playwright.sync_api")
    errors: list[str] = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page()
            page.on("console", lambda m: errors.append(f"console {m.type}: {m.text}") if m.type in (
                "error", "warning") else None)
            page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
            page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url[:80]}"))
            page.goto(path.as_uri(), wait_until="load")
            images = page.evaluate("() => [...document.images].map(i => [i.alt, i.complete, i.naturalWidth, "
                                   "i.naturalHeight])")
            title = page.title()
            tables = page.evaluate("() => document.querySelectorAll('table').length")
        finally:
            browser.close()
    return errors, images, title, tables


needs_chromium = pytest.mark.skipif(not _chromium() and not REQUIRE_BROWSER, reason="chromium is not installed "
                                    "(Debian: apt-get install chromium; .ci/run installs it)")


@needs_chromium
def test_report_html_renders_in_headless_chromium_with_every_image(run_dir) -> None:
    errors, images, title, tables = _render(run_dir / "report.html")
    assert not errors, errors
    assert len(images) == (run_dir / "report.html").read_text().count("<img ") == 8, images
    broken = [alt for alt, complete, w, h in images if not (complete and w > 100 and h > 100)]
    assert not broken, broken
    assert title == "rmsprop-harness: fake-report (FAIL)" and tables >= 5


@needs_chromium
def test_the_browser_check_catches_a_broken_image_and_a_console_error(tmp_path) -> None:
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><html><head><title>t</title></head><body>'
                    '<img alt="broken" src="data:image/png;base64,iVBORw0KGgoAAAA=">'
                    '<script>console.error("boom")</script></body></html>')
    errors, images, _, _ = _render(page)
    assert any("boom" in e for e in errors)
    assert images[0][0] == "broken" and images[0][2] == 0


def test_report_cli_and_bad_run_folder(run_dir, tmp_path, capsys) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    for name in ("report.md", "report.html", "summary.csv"):
        (copy / name).unlink()
    assert main(["report", str(copy)]) == 0
    assert {"report.md", "report.html", "summary.csv"} <= {p.name for p in copy.iterdir()}
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"rmsprop-harness: error: {tmp_path / 'nowhere'}: no such run folder"
    (copy / "parity.parquet").write_bytes(b"not parquet")
    with pytest.raises(ReportError, match=r"parity\.parquet: does not match its checksum in run\.json"):
        load_run(copy)


def test_a_run_without_parity_or_rows_still_reports(tmp_path) -> None:
    from harness.adapters import ADAPTERS, AdapterInfo

    mp = pytest.MonkeyPatch()
    mp.setitem(ADAPTERS, "fake", AdapterInfo("fake", "tests.fake_adapter:Fake", "torch", "fake"))
    mp.setenv("FAKE_MISSING", "fake is not installed")
    path = tmp_path / "s.toml"
    path.write_text("[defaults]\nadapters = ['fake']\nsteps = 5\n[[case]]\nname = 'a'\n")
    try:
        run_suite(path, out=tmp_path / "run")
    finally:
        mp.undo()
    write_report(tmp_path / "run")
    md = (tmp_path / "run" / "report.md").read_text()
    assert "**PASS: 2 skipped" in md and "no `[[parity]]` scenarios" in md
    assert "<img" in (tmp_path / "run" / "report.html").read_text()  # the seed picture is always there


def test_divergence_figure_draws_infinite_and_zero_divergence() -> None:
    from harness.report.plots import divergence_figure

    rows = pd.DataFrame({"case": "c", "adapter": ["a", "a", "b", "b"], "dtype": "float32", "device": "cpu",
                         "step": [1, 2, 1, 2], "budget_ratio": [0.0, float("inf"), 1.0, float("nan")],
                         "tolerance": 10.0})
    assert divergence_figure(rows, "c")[:8] == b"\x89PNG\r\n\x1a\n"
