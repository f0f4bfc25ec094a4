"""The HTML report: one self-contained file that a real headless Chromium loads without console errors, with
its four SVG charts present and drawn, and a screenshot that is not blank.

The console check is proven able to fail: the same page with one external image must log a console message.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner
from PIL import Image, ImageStat

from pipelines.report_cli import report_command
from pipelines.report_html import CHART_IDS

if TYPE_CHECKING:
    from tests.browser import Chromium

pytest_plugins = ["tests.demo_warehouse", "tests.browser"]


@pytest.fixture(scope="module")
def report_page(
    demo_data_dir: Path, demo_days: list[dt.date], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    page = tmp_path_factory.mktemp("html") / "report.html"
    first, last = demo_days
    result = CliRunner().invoke(
        report_command,
        ["--start", str(first), "--end", str(last), "--format", "html", "--output", str(page)],
        env={"BIRD_ETL_DATA_DIR": str(demo_data_dir)},
        standalone_mode=False,
    )
    assert result.exception is None, result.exception
    return page


def test_the_file_references_nothing_outside_itself(report_page: Path) -> None:
    html = report_page.read_text()
    assert not re.search(r"""(?:src|href)\s*=\s*["'](?!#|data:)""", html)
    assert not re.search(r"url\((?!#)", html)  # SVG clip paths point inside the file: url(#id)
    assert "<script" not in html and "@import" not in html
    assert "Content-Security-Policy" in html
    for chart_id in CHART_IDS:
        figure = html.split(f'id="{chart_id}"', 1)[1].split("</figure>", 1)[0]
        assert "<svg" in figure and figure.count("<path") > 10, chart_id


def test_chromium_renders_the_report_without_console_errors(
    chromium: Chromium, report_page: Path, tmp_path: Path
) -> None:
    assert chromium.console_messages(report_page, tmp_path / "profile-console") == []

    dom = chromium.run(report_page, tmp_path / "profile-dom", "--dump-dom").stdout
    for chart_id in CHART_IDS:
        figure = dom.split(f'id="{chart_id}"', 1)[1].split("</figure>", 1)[0]
        assert re.search(r"<svg[^>]*viewBox=\"0 0 [1-9]", figure), chart_id
        assert figure.count("<path") > 10, chart_id

    screenshot = tmp_path / "report.png"
    chromium.run(
        report_page, tmp_path / "profile-shot", f"--screenshot={screenshot}", "--window-size=1400,1800"
    )
    image = Image.open(screenshot).convert("L")
    assert image.size == (1400, 1800)
    (spread,) = ImageStat.Stat(image).stddev
    histogram = image.histogram()
    not_white = 1 - histogram[255] / sum(histogram)
    assert spread > 20 and not_white > 0.05, (spread, not_white)


def test_the_console_check_sees_a_blocked_external_load(
    chromium: Chromium, report_page: Path, tmp_path: Path
) -> None:
    tampered = tmp_path / "tampered.html"
    tampered.write_text(
        report_page.read_text().replace("<body>", '<body><img src="http://127.0.0.1:9/pixel.png">', 1)
    )
    messages = chromium.console_messages(tampered, tmp_path / "profile")
    assert any("127.0.0.1:9/pixel.png" in message for message in messages), messages
