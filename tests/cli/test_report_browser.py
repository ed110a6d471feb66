"""report.html from `sinklab inspect` in a real headless browser (Debian's
chromium): the page loads from a file:// URL with no console messages, every
section reports that it rendered, and a screenshot is drawn."""
import os
import pathlib
import re
import subprocess
import tempfile

import pytest

from cli_util import ASSETS, MODEL, binary

TEXT = ASSETS / "text" / "tinystories_valid_excerpt.txt"
CHROMIUM = os.environ.get("SINKLAB_CHROMIUM", "/usr/bin/chromium")
SECTIONS = ["title", "sec-verdict", "sec-sinks", "sec-maps", "sec-massive", "sec-values", "sec-propagation", "sec-experts",
            "sec-task"]

pytestmark = [
    pytest.mark.skipif(not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)),
                       reason=f"chromium is not installed at {CHROMIUM} (scripts/setup.sh installs it)"),
]
needs_assets = pytest.mark.skipif(not (MODEL.exists() and TEXT.exists()),
                                  reason=f"assets missing: {MODEL} or {TEXT} (set SINKLAB_ASSETS)")


def chromium(page, *extra):
    """Runs headless chromium on a local page; returns (stdout, console lines)."""
    with tempfile.TemporaryDirectory() as profile:
        r = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
             "--enable-logging=stderr", "--v=0", *extra, pathlib.Path(page).resolve().as_uri()],
            capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    console = [line for line in r.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    return r.stdout, console


def rendered(dom, section):
    m = re.search(r'<[a-z]+ [^>]*id="%s"[^>]*>' % section, dom)
    assert m, f"section {section} is missing from the page"
    return 'data-rendered="ok"' in m.group(0)


@pytest.fixture(scope="module")
def report_html(tmp_path_factory):
    if not (MODEL.exists() and TEXT.exists()):
        pytest.skip(f"assets missing: {MODEL} or {TEXT} (set SINKLAB_ASSETS)")
    out = tmp_path_factory.mktemp("browser")
    r = subprocess.run([binary(), "inspect", "-m", str(MODEL), "-f", str(TEXT), "--tokens", "128", "--out", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return out / "report.html"


def test_console_errors_are_detected(tmp_path):
    """The check itself works: a page with a failing script is caught."""
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><body><p id='x'>x</p><script>null.x;</script></body></html>")
    _, console = chromium(bad, "--dump-dom")
    assert any("Uncaught" in line for line in console), console


def test_every_section_renders_without_console_messages(report_html):
    dom, console = chromium(report_html, "--dump-dom")
    assert console == [], "console messages:\n" + "\n".join(console)
    assert 'class="err"' not in dom
    m = re.search(r'data-sections-rendered="([^"]*)"', dom)
    assert m, "the page script did not finish"
    assert m.group(1).split() == SECTIONS
    for section in SECTIONS:
        assert rendered(dom, section), section
    assert "<title>sinklab inspect: llama, 128 tokens</title>" in dom
    verdict = dom[dom.index('id="sec-verdict"'):dom.index('id="sec-sinks"')]
    assert 'id="verdict-text"' in verdict and ("sink on token 0" in verdict or "no sink: max" in verdict)
    assert "soaks up a head" in verdict
    # The figures are really there: the sink heat map has one cell per (layer, head),
    # each attention map is a canvas, the charts are SVG polylines and bars.
    sinks = dom[dom.index('id="sec-sinks"'):dom.index('id="sec-maps"')]
    assert sinks.count("<title>layer ") == 5 * 8
    assert "Sink_0^0.3 = " in sinks and '<select id="key-select">' in sinks
    maps = dom[dom.index('id="sec-maps"'):dom.index('id="sec-massive"')]
    assert maps.count("<canvas") == 4
    massive = dom[dom.index('id="sec-massive"'):dom.index('id="sec-values"')]
    assert "No massive activations" in massive and massive.count("<tr") >= 6
    values = dom[dom.index('id="sec-values"'):dom.index('id="sec-propagation"')]
    assert values.count("<polyline") == 5
    prop = dom[dom.index('id="sec-propagation"'):dom.index('id="sec-experts"')]
    assert prop.count("<title>position ") == 128 and prop.count("<polyline") == 3
    experts = dom[dom.index('id="sec-experts"'):]
    assert "Not applicable: dense model" in experts


def test_screenshot(report_html, tmp_path):
    png = tmp_path / "report.png"
    _, console = chromium(report_html, f"--screenshot={png}", "--window-size=1280,2000")
    assert console == [], "console messages:\n" + "\n".join(console)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1280, 2000)


@pytest.mark.skipif(not MODEL.exists(), reason=f"assets missing: {MODEL} (set SINKLAB_ASSETS)")
def test_hostile_text_stays_data(tmp_path):
    """Markup, comment openers and invalid UTF-8 in the text neither break the page nor run."""
    text = tmp_path / "hostile.txt"
    text.write_bytes(b'Once </script><script>console.log("injected")</script> <!-- "q" \\ \xff\xfe upon & a time')
    out = tmp_path / "out"
    r = subprocess.run([binary(), "inspect", "-m", str(MODEL), "-f", str(text), "--out", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    dom, console = chromium(out / "report.html", "--dump-dom")
    assert console == [], "console messages:\n" + "\n".join(console)
    m = re.search(r'data-sections-rendered="([^"]*)"', dom)
    assert m and m.group(1).split() == SECTIONS
    assert "&lt;/script&gt;&lt;script&gt;" in dom  # shown as text in the preview


@pytest.mark.skipif(not MODEL.exists(), reason=f"assets missing: {MODEL} (set SINKLAB_ASSETS)")
def test_litm_page_renders_its_u_curves(tmp_path):
    page = tmp_path / "litm.html"
    r = subprocess.run([binary(), "litm", "-m", str(MODEL), "--pairs", "3,4", "--query-positions", "3", "--trials", "2",
                        "--ablate", "sink", "--html", str(page)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    dom, console = chromium(page, "--dump-dom")
    assert console == [], "console messages:\n" + "\n".join(console)
    m = re.search(r'data-sections-rendered="([^"]*)"', dom)
    assert m and m.group(1).split() == ["title-body", "sec-accuracy", "sec-logprob", "sec-table"]
    # One chart per list size in each figure section, one line per condition in each chart.
    for section, nxt in (("sec-accuracy", "sec-logprob"), ("sec-logprob", "sec-table")):
        part = dom[dom.index(f'id="{section}"'):dom.index(f'id="{nxt}"')]
        assert part.count("<svg") == 2 and part.count("<polyline") == 4
    assert dom[dom.index('id="sec-table"'):].count("<tr") == 1 + 2 * 6
    # No axis title overlaps a tick label, at a narrow and a wide window.
    for size in ("420,900", "1600,1000"):
        dom, _ = chromium(page, "--dump-dom", f"--window-size={size}")
        assert 'data-text-overlaps="0"' in dom, size


@needs_assets
def test_ppl_comparison_page_draws_one_curve_per_cache(tmp_path):
    page = tmp_path / "ppl.html"
    r = subprocess.run([binary(), "ppl", "-m", str(MODEL), "-f", str(TEXT), "--max-tokens", "300",
                        "--cache", "dense,window:window=32,sink:sink=4,window=28", "--html", str(page)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    dom, console = chromium(page, "--dump-dom")
    assert console == [], "console messages:\n" + "\n".join(console)
    m = re.search(r'data-sections-rendered="([^"]*)"', dom)
    assert m and m.group(1).split() == ["title-body", "sec-nll", "sec-table"]
    part = dom[dom.index('id="sec-nll"'):dom.index('id="sec-table"')]
    assert part.count("<polyline") == 3
    assert dom[dom.index('id="sec-table"'):].count("<tr") == 1 + 3
    assert 'data-text-overlaps="0"' in dom
