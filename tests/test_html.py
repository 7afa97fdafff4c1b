"""The HTML report, rendered in a real headless browser (Debian's Chromium driven by Playwright): no console
errors, nothing fetched, the charts drawn, the text a planner forwards present, readable at phone width."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from planner.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _chromium() -> str:
    path = os.environ.get("PLANNER_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "the browser tests need Chromium: apt-get install chromium (the README's test command does)"
    return path


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=_chromium(), headless=True, args=["--no-sandbox"])
        yield b
        b.close()


def _render(tmp_path: Path, example: str, *extra: str) -> Path:
    out = tmp_path / f"{example}.html"
    result = CliRunner().invoke(main, ["solve", str(ROOT / "examples" / f"{example}.yaml"), "--format", "html",
                                       "-o", str(out), "--reproducible", *extra])
    assert result.exit_code in (0, 3), result.output
    return out


def _open(browser, path: Path, width: int = 1000):
    page = browser.new_page(viewport={"width": width, "height": 900})
    errors, fetched = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("request", lambda r: fetched.append(r.url) if not r.url.startswith(("file:", "data:")) else None)
    page.goto(path.as_uri())
    return page, errors, fetched


def test_the_solve_report_draws_its_charts_and_says_what_a_planner_forwards(browser, tmp_path):
    page, errors, fetched = _open(browser, _render(tmp_path, "llama3-70b-chat"))
    assert errors == [] and fetched == []
    text = page.inner_text("body")
    for expected in ("8 × h200-sxm", "medium confidence", "latency.tpot", "Why not the others", "Where the decision flips",
                     "stays best while its price is at most",
                     "estimated prediction", "The spec it answers"):
        assert expected in text, expected
    bars = page.locator("svg.whynot rect.bar")
    assert bars.count() >= 5 and page.locator("svg.whynot rect.bar.chosen").count() == 1
    # Every bar has a drawn width, and the chosen plan's bar is the shortest (it is the cheapest).
    widths = [float(bars.nth(i).get_attribute("width")) for i in range(bars.count())]
    assert all(w > 0 for w in widths)
    chosen = float(page.locator("svg.whynot rect.bar.chosen").get_attribute("width"))
    assert chosen == min(widths)
    assert page.locator("#limits svg.slack").count() >= 5
    box = page.locator("svg.whynot").bounding_box()
    assert box["width"] > 300 and box["height"] > 100


def test_an_infeasible_spec_shows_the_conflicting_limits(browser, tmp_path):
    page, errors, _ = _open(browser, _render(tmp_path, "impossible-tiny-budget"))
    assert errors == []
    text = page.inner_text("body")
    assert "no plan meets every limit" in text and "conflict" in text


def test_the_report_reads_on_a_phone(browser, tmp_path):
    page, errors, _ = _open(browser, _render(tmp_path, "llama3-70b-chat", "--no-explain"), width=390)
    assert errors == []
    # Nothing but the tables' own scrolling boxes is wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot = tmp_path / "phone.png"
    page.screenshot(path=str(shot), clip={"x": 0, "y": 0, "width": 390, "height": 700})
    assert shot.stat().st_size > 5_000


def test_an_html_report_into_a_missing_folder_is_refused_before_any_work(tmp_path):
    result = CliRunner().invoke(main, ["solve", str(ROOT / "examples" / "llama3-70b-chat.yaml"), "--format", "html",
                                       "-o", str(tmp_path / "nowhere" / "r.html")])
    assert result.exit_code == 2 and "folder does not exist" in result.output


def _page_of(tmp_path: Path, name: str, args: list[str]) -> Path:
    out = tmp_path / f"{name}.html"
    result = CliRunner().invoke(main, args + ["--format", "html", "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_compare_pareto_tier_and_sweep_pages_render_their_charts(browser, tmp_path):
    examples = ROOT / "examples"
    pages = {
        "compare": (_page_of(tmp_path, "compare", ["compare", str(examples / "small-model-serving.yaml")]),
                    "svg.compare rect.bar"),
        "pareto": (_page_of(tmp_path, "pareto", ["compare", str(examples / "llama3-70b-chat.yaml"), "--pareto",
                                                 "cost,tpot"]), "svg.pareto circle.point"),
        "tier": (_page_of(tmp_path, "tier", ["tier", str(sorted((examples / "edge").glob("*.yaml"))[0])]),
                 "#limits svg.slack"),
        "fleet": (_page_of(tmp_path, "fleet", ["compare", str(examples / "fleets" / "three-workloads.yaml")]),
                  "svg.fleet rect.bar"),
    }
    import shutil as sh

    sh.copy(examples / "llama3-70b-chat.yaml", tmp_path / "chat.yaml")
    (tmp_path / "sweep.yaml").write_text("base: chat.yaml\naxes:\n  - {path: workload.traffic.requests_per_s, "
                                         "values: [2, 20]}\n  - {path: workload.slo.tpot_ms, values: [30, 90]}\n")
    assert CliRunner().invoke(main, ["sweep", str(tmp_path / "sweep.yaml"), "-o", str(tmp_path / "res"),
                                     "--workers", "1"]).exit_code == 0
    pages["sweep"] = (_page_of(tmp_path, "sweep", ["sweep", "--summarize", str(tmp_path / "res")]),
                      "svg.heatmap rect.cell")
    for name, (path, selector) in pages.items():
        page, errors, fetched = _open(browser, path)
        assert errors == [] and fetched == [], name
        assert page.locator(selector).count() >= 2, name
    pareto, _, _ = _open(browser, pages["pareto"][0])
    assert pareto.locator("svg.pareto line.slo").count() == 1  # the spec's TPOT limit is drawn
    assert pareto.locator("svg.pareto circle.point.chosen").count() == 1
