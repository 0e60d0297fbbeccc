"""Open the report in headless Debian Chromium: sections, console errors, tooltips, pixels.

Needs ``chromium`` on PATH and the ``playwright`` Python package (both installed by
``scripts/install_browser.sh``; Playwright drives the system browser, nothing is downloaded).
"""

from __future__ import annotations

import io
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from antigenscout.report import SECTIONS, write_html

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Debian chromium is not installed (run scripts/install_browser.sh)",
)
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # chromium is there, so the driver must be too
        pytest.fail(
            "chromium is installed but the playwright package is not: run "
            "scripts/install_browser.sh"
        )
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            args=ARGS,
            viewport={"width": 1280, "height": 900},
            offline=True,
        )
        yield context
        context.close()


def _open(browser: object, html: Path) -> tuple[object, list[str]]:
    page = browser.new_page()  # type: ignore[attr-defined]
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(html.as_uri())
    page.wait_for_load_state("load")
    return page, errors + [f"network: {u}" for u in requests if not u.startswith("file:")]


def test_report_in_browser(browser: object, full_run: Path, tmp_path: Path) -> None:  # noqa: PLR0915
    from PIL import Image

    html = write_html(full_run)
    page, errors = _open(browser, html)
    for sid, heading in SECTIONS.items():
        sec = page.locator(f"section#{sid}")
        assert sec.count() == 1, sid
        assert sec.locator("h2").inner_text().strip() == heading

    # hovering a scatter point shows a tooltip naming the target and its numbers
    tip = page.locator("#tooltip")
    assert not tip.is_visible()
    point = page.locator('svg[data-set="candidates"] .pts.front circle').first
    point.scroll_into_view_if_needed()
    point.hover()
    assert tip.is_visible()
    text = tip.inner_text()
    idx = int(point.get_attribute("data-i"))
    import pandas as pd

    t = pd.read_csv(full_run / "targets.tsv", sep="\t")
    assert text.splitlines()[0] == t["target"][idx]
    assert "tumour coverage" in text
    assert "vital risk" in text

    # body-map cells explain fraction × weight
    cell = page.locator("#body-map .cells rect").first
    cell.scroll_into_view_if_needed()
    cell.hover()
    assert tip.is_visible()
    assert "·" in tip.inner_text()
    page.mouse.move(0, 0)
    assert not tip.is_visible()

    # the candidate table filters and sorts
    rows = page.locator("#coverage-risk table.sortable tbody tr")
    assert rows.count() == min(50, len(t))
    page.fill("#coverage-risk input[type=search]", "CD3")
    names = [r.locator("td").nth(1).inner_text() for r in rows.all()]
    assert names
    assert all("CD3" in n for n in names)
    page.fill("#coverage-risk input[type=search]", "")
    page.locator("#coverage-risk table.sortable th", has_text=re.compile("^coverage$")).click()
    first = rows.first.locator("td").nth(1).inner_text()
    assert first == t.sort_values("tumor_coverage", ascending=False)["target"].iloc[0]
    page.check("#coverage-risk input[data-filter=front]")
    assert rows.count() == int((t["pareto_rank"] == 1).sum())

    # clicking a point jumps to its explanation card
    page.locator('svg[data-set="candidates"] circle[data-i="0"]').click()
    card = f"document.getElementById('explain-{t['target'][0]}')"
    page.wait_for_function(f"Math.abs({card}.getBoundingClientRect().top) < 120")

    assert errors == []

    page.evaluate("window.scrollTo(0, 0)")
    png = page.screenshot(full_page=True)
    (tmp_path / "report.png").write_bytes(png)
    with Image.open(io.BytesIO(png)) as im:
        rgb = im.convert("RGB")
        assert rgb.size[0] >= 1200
        assert rgb.size[1] > 3000
        colours = rgb.getcolors(maxcolors=1 << 24)
        assert len(colours) > 500, "screenshot looks blank"
        white = (
            max(c for c, col in colours if col == (255, 255, 255))
            if any(col == (255, 255, 255) for _, col in colours)
            else 0
        )
        assert white < 0.9 * rgb.size[0] * rgb.size[1]

    pdf = page.pdf(format="A4", print_background=True)
    assert pdf[:4] == b"%PDF"
    assert len(pdf) > 50_000
    page.close()


@pytest.mark.parametrize("kind", ["gates", "sim"])
def test_partial_runs_render_without_errors(
    browser: object, kind: str, gates_run: Path, sim_run: Path
) -> None:
    run = gates_run if kind == "gates" else sim_run
    page, errors = _open(browser, write_html(run))
    hover = page.locator("svg [data-tip], svg [data-i]").first
    hover.scroll_into_view_if_needed()
    hover.hover()
    assert page.locator("#tooltip").is_visible()
    assert errors == []
    page.close()


def test_hostile_labels_fire_no_dialog(browser: object, tmp_path: Path) -> None:
    import antigenscout_tests_synthetic_run as synthetic  # registered by conftest.py

    run = synthetic.write_hostile_run(tmp_path)
    html = write_html(run, tmp_path / "hostile.html")
    dialogs: list[str] = []
    page = browser.new_page()  # type: ignore[attr-defined]

    def on_dialog(d: object) -> None:
        dialogs.append(d.message)  # type: ignore[attr-defined]
        d.dismiss()  # type: ignore[attr-defined]

    page.on("dialog", on_dialog)
    page.goto(html.as_uri())
    page.wait_for_load_state("load")
    # exercise the scripted parts: tooltips, table filter with a hostile query, row clicks
    for sel in ('svg[data-set="candidates"] circle', "#body-map .cells rect", "#gates td"):
        loc = page.locator(sel)
        for k in range(min(loc.count(), 5)):
            loc.nth(k).scroll_into_view_if_needed()
            loc.nth(k).hover(force=True)
    page.fill("#coverage-risk input[type=search]", synthetic.HOSTILE["img"])
    page.locator("#coverage-risk table.sortable tbody tr").first.click()
    page.fill("#coverage-risk input[type=search]", "")
    page.locator("#coverage-risk table.sortable th").nth(1).click()  # sort by target name
    page.wait_for_timeout(300)
    counts = page.evaluate(
        "['img', 'iframe', 'script', 'body svg[onload]'].map("
        "s => document.querySelectorAll(s).length)"
    )
    title = page.title()
    page.close()
    assert dialogs == []
    assert counts == [0, 0, 3, 0]
    assert synthetic.HOSTILE["img"] in title


def test_tables_fit_a_1400px_page(browser: object, full_run: Path) -> None:
    page, errors = _open(browser, write_html(full_run))
    page.set_viewport_size({"width": 1400, "height": 900})
    more = page.locator("#coverage-risk .showmore")
    if more.is_visible():
        more.click()
    sizes = page.evaluate(
        "Array.from(document.querySelectorAll('#overview .scroll, #coverage-risk .tablewrap,"
        " #gates .scroll')).map(e => [e.scrollWidth, e.clientWidth])"
    )
    assert len(sizes) == 3
    assert all(sw <= cw + 1 for sw, cw in sizes), sizes
    assert page.evaluate("document.documentElement.scrollWidth") <= 1400
    assert errors == []
    page.close()
