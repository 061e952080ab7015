"""report.html opens in a real browser: headless Chromium loads it, decodes both figures and lays out the tables
(the SVQA table's grouped header included).

Chromium comes from Debian's ``chromium`` package (``/usr/bin/chromium``; CI installs it). A copy of the report
gets a probe script that, once the page has loaded, writes each image's decoded size and each table's row count
and rendered width into the DOM, which ``--dump-dom`` prints. Skipped where no browser is installed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
PROBE = """<script>
window.addEventListener('load', () => {
  const images = [...document.images].map(
    i => `${i.dataset.file}=${i.complete ? i.naturalWidth : 0}x${i.naturalHeight}`);
  const tables = [...document.querySelectorAll('table')].map(t => `${t.id}=${t.rows.length}:${t.offsetWidth}`);
  const banner = document.getElementById('banner');
  const groups = [...document.querySelectorAll('#per-type th.group')].map(th => {
    const box = th.getBoundingClientRect();
    return {text: th.textContent, span: th.colSpan, left: box.left, right: box.right, top: box.top,
            height: box.height};
  });
  const labels = [...document.querySelectorAll('#per-type thead tr:nth-child(2) th')].map(th => {
    const box = th.getBoundingClientRect();
    return {text: th.textContent, left: box.left, right: box.right, top: box.top};
  });
  const probe = document.createElement('pre');
  probe.id = 'probe';
  probe.textContent = JSON.stringify({images, tables, groups, labels, banner: banner ? banner.offsetHeight : -1});
  document.body.appendChild(probe);
});
</script>"""


def find_browser() -> str | None:
    candidates = [os.environ.get("DUALVGR_CHROMIUM", "")] + [shutil.which(name) or "" for name in BROWSERS]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(find_browser() is None, reason=f"no headless browser found (looked for {', '.join(BROWSERS)} "
                       f"and $DUALVGR_CHROMIUM): install Debian's chromium package"),
]


def render_in_browser(html_path, tmp_path) -> dict:
    browser = find_browser()
    page = tmp_path / "probe.html"
    page.write_text(html_path.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
               f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000", "--window-size=1200,900",
               "--dump-dom", page.as_uri()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    match = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S)
    assert match, f"{browser} did not run the page's load handler (rc {done.returncode}): {done.stderr[-2000:]}"
    return json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&"))


def _tables(probe: dict) -> dict[str, tuple[int, int]]:
    out = {}
    for item in probe["tables"]:
        name, sizes = item.rsplit("=", 1)
        rows, width = sizes.split(":")
        out[name] = (int(rows), int(width))
    return out


def test_report_html_renders_tables_and_figures(msvd_report, tmp_path):
    probe = render_in_browser(msvd_report.html, tmp_path)
    images = dict(item.split("=") for item in probe["images"])
    assert set(images) == {"accuracy_by_type.png", "training_curves.png"}, probe["images"]
    for name, size in images.items():
        width, height = map(int, size.split("x"))
        assert width > 300 and height > 200, f"{name} was not decoded by the browser ({size})"
    tables = _tables(probe)
    assert tables["per-type"][0] == 1 + 4 + 3, "header + HME, HGA, HCRN, TSN + paper, reproduced, Δ"
    assert tables["seeds"][0] == 1 + 3
    for name in ("headline", "per-type", "per-type-detail", "audit-results", "audit-implementation", "provenance",
                 "ledger"):
        assert name in tables and tables[name][1] > 200, f"table {name} missing or not laid out: {tables.get(name)}"
    assert probe["banner"] == -1, "no banner on a paper reproduction"


def test_demo_banner_is_visible(demo_report, tmp_path):
    probe = render_in_browser(demo_report.html, tmp_path)
    assert probe["banner"] > 20, "the demo's not-comparable banner must be displayed"
    assert len(probe["images"]) == 2 and all(not s.endswith("=0x0") for s in probe["images"]), probe["images"]


def test_svqa_grouped_header_is_laid_out_over_its_columns(svqa_report, tmp_path):
    probe = render_in_browser(svqa_report.html, tmp_path)
    tables = _tables(probe)
    assert tables["per-type"][0] == 2 + 3 + 3, "two header rows + Unified-Attn, SA+TA-GRU, STRN + paper, ours, Δ"
    groups, labels = probe["groups"], probe["labels"]
    assert [(g["text"], g["span"]) for g in groups] == [
        ("Integer comparison", 3), ("Attribute comparison", 5), ("Query", 5)], groups
    assert len(labels) == 13, labels
    start = 0
    for group in groups:
        covered = labels[start:start + group["span"]]
        start += group["span"]
        assert group["height"] > 10, f"{group['text']} is not displayed: {group}"
        assert abs(group["left"] - covered[0]["left"]) < 1 and abs(group["right"] - covered[-1]["right"]) < 1, \
            f"{group['text']} does not span its columns {[c['text'] for c in covered]}: {group} vs {covered}"
        assert all(c["top"] > group["top"] for c in covered), f"{group['text']} must sit above its columns"
    assert probe["banner"] == -1 and len(probe["images"]) == 2
    assert all(not size.endswith("=0x0") for size in probe["images"]), probe["images"]
