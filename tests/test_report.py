"""The probe as pictures: ``nnlint --report DIR`` pages, ``Report._repr_html_``, and a real
browser rendering the page (headless Chromium; skipped where /usr/bin/chromium is absent)."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "fixtures" / "probe" / "seed_weights_100.py"
CHROMIUM = "/usr/bin/chromium"

pytest.importorskip("matplotlib")
torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    from nnlint.cli import main

    folder = tmp_path_factory.mktemp("report")
    out, err = io.StringIO(), io.StringIO()
    code = main(["--isolated", "--no-cache", "--report", str(folder), str(SEED)], stdout=out, stderr=err)
    assert code == 1, err.getvalue()
    pages = sorted(folder.glob("*.html"))
    assert [p.name for p in pages] == ["seed_weights_100-Net.html"], err.getvalue()
    assert f"report written to {pages[0]}" in err.getvalue()
    return pages[0]


def test_page_is_self_contained_with_charts_tree_and_findings(page):
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text), "the page must not fetch anything"
    assert text.count("<svg") >= 2  # per-layer chart and activation chart
    assert ">NN304<" in text  # the exploding layer is marked on the gradient chart
    for name, shape, params in (("conv1", "8×32×26×26", "320"), ("fc1", "8×128", "1,179,776")):
        assert f"<code>{name}</code>" in text and shape in text and params in text
    # findings link to their layer's row and show the source line
    assert "href='#mod-conv1'" in text and "id='mod-conv1'" in text
    assert "self.conv1 = nn.Conv2d(1, 32, 3)" in text


def test_repr_html_in_jupyter():
    import importlib.util

    spec = importlib.util.spec_from_file_location("seed_weights_100_for_report", SEED)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    import nnlint

    report = nnlint.check(mod.Net(), torch.randn(8, 1, 28, 28), loss=torch.nn.CrossEntropyLoss())
    assert report.stats and report.stats["layers"]
    html = report._repr_html_()
    assert html.startswith("<div class='nnlint-report'>") and "<svg" in html and "NN304" in html


def test_no_probe_no_page(tmp_path):
    from nnlint.cli import main

    src = tmp_path / "plain.py"
    src.write_text("import torch\nx = torch.zeros(3)\n")
    err = io.StringIO()
    main(["--isolated", "--no-cache", "--report", str(tmp_path / "out"), str(src)], stdout=io.StringIO(), stderr=err)
    assert "nothing to draw" in err.getvalue()
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (.ci/run installs it)")
def test_page_renders_in_chromium(page, tmp_path):
    shot = tmp_path / "report.png"
    proc = subprocess.run([CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars",
                           f"--screenshot={shot}", "--window-size=1200,1900", page.as_uri()],
                          capture_output=True, timeout=180)
    assert shot.exists(), proc.stderr.decode(errors="replace")[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 50_000  # a blank page is a few kB; charts and tables are far more
    # the page is not blank: count distinct colours in a downscaled copy when Pillow is here
    try:
        from PIL import Image
    except ImportError:
        return
    img = Image.open(shot).convert("RGB").resize((120, 190))
    colours = {c for _, c in img.getcolors(120 * 190)}
    assert any(r > 150 and g < 90 and b < 90 for r, g, b in colours), "no red (the NN304 bar) on the page"
