"""The failure-rate report as one self-contained HTML file: tables plus charts drawn as inline SVG.

Charts are rendered with matplotlib's SVG backend (text as paths, no fonts or scripts to fetch), and a
Content-Security-Policy forbids every network fetch, so the file reads the same offline as online.
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Callable, Sequence
from typing import Final

import matplotlib
import numpy as np
import polars as pl
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from pipelines.reporting import (
    FailureReport,
    ReportCharts,
    code_cells,
    group_cells,
    report_title,
    totals_sentence,
)

# Chart ids, in the order they appear; the browser test looks for each.
CHART_IDS: Final = ("daily-failure-rate", "top-failure-codes", "country-channel-heatmap", "delivery-time")
_CSP: Final = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
_XML_PROLOGUE: Final = re.compile(r"^.*?(?=<svg)", re.DOTALL)


def render_html(report: FailureReport, charts: ReportCharts) -> str:
    """The whole report as one HTML document with no external reference."""
    title = report_title(report)
    figures = [
        ("daily-failure-rate", "Daily failure rate per channel", _daily_failure_rate(charts)),
        ("top-failure-codes", "Top failure codes", _top_failure_codes(report)),
        ("country-channel-heatmap", "Failure rate, country x channel", _country_channel_heatmap(charts)),
        ("delivery-time", "Delivery time of delivered outgoing messages", _delivery_time(charts)),
    ]
    body = [
        f"<h1>{_e(title)}</h1>",
        f'<p class="meta">Generated {_e(report.generated_at.isoformat(timespec="seconds"))}. '
        f"Window [{_e(report.window.start.isoformat())}, {_e(report.window.end.isoformat())}); "
        f"changes are against [{_e(report.previous.start.isoformat())}, "
        f"{_e(report.previous.end.isoformat())}). Intervals are 95% Wilson intervals.</p>",
        f'<p class="totals">{_e(" ".join(totals_sentence(report)))}</p>',
        '<div class="charts">',
        *(
            f'<figure class="chart" id="{chart_id}"><figcaption>{_e(caption)}</figcaption>{svg}</figure>'
            for chart_id, caption, svg in figures
        ),
        "</div>",
        "<h2>Groups</h2>",
        _html_table(*group_cells(report), "groups"),
        "<h2>Top failure codes</h2>",
        _html_table(*code_cells(report), "failure-codes"),
    ]
    return _PAGE.format(csp=_CSP, title=_e(title), body="\n".join(body))


_PAGE: Final = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #1f2933; }}
h1 {{ font-size: 1.4rem; }}
.meta {{ color: #52606d; font-size: 0.85rem; }}
.charts {{ display: grid; grid-template-columns: repeat(auto-fit, minmax(560px, 1fr)); gap: 1rem; }}
figure.chart {{ margin: 0; border: 1px solid #d9e2ec; padding: 0.5rem; }}
figure.chart svg {{ width: 100%; height: auto; }}
figcaption {{ font-weight: 600; margin-bottom: 0.25rem; }}
table {{ border-collapse: collapse; font-size: 0.8rem; margin-bottom: 1.5rem; }}
th, td {{ border-bottom: 1px solid #d9e2ec; padding: 0.2rem 0.5rem; text-align: left; }}
td.num, th.num {{ text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }}
</style>
</head>
<body>
{body}
</body>
</html>
"""


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _html_table(headers: Sequence[str], rows: Sequence[Sequence[str]], table_id: str) -> str:
    numeric = [all(_looks_numeric(row[i]) for row in rows) and bool(rows) for i in range(len(headers))]

    def cells(tag: str, values: Sequence[str]) -> str:
        return "".join(
            f"<{tag}{' class=num' if numeric[i] else ''}>{_e(value)}</{tag}>"
            for i, value in enumerate(values)
        )

    body = "".join(f"<tr>{cells('td', row)}</tr>" for row in rows)
    return (
        f'<table id="{table_id}"><thead><tr>{cells("th", headers)}</tr></thead><tbody>{body}</tbody></table>'
    )


def _looks_numeric(text: str) -> bool:
    return bool(re.fullmatch(r"[-+]?[\d,.]+(%| pp)?( - [\d,.]+%)?|-", text))


# -- charts -------------------------------------------------------------------------------------------------


def _svg(chart_id: str, draw: Callable[[Axes], None], *, size: tuple[float, float] = (7.5, 4.0)) -> str:
    """Draw on a fresh figure and return its inline <svg> element (deterministic ids per chart)."""
    with matplotlib.rc_context({"svg.hashsalt": chart_id, "svg.fonttype": "path", "font.size": 9}):
        figure = Figure(figsize=size, layout="constrained")
        draw(figure.add_subplot())
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    return _XML_PROLOGUE.sub("", buffer.getvalue(), count=1)


def _no_data(axes: Axes, what: str) -> None:
    axes.text(0.5, 0.5, f"no {what} in this window", ha="center", va="center", color="#52606d")
    axes.set_axis_off()


def _daily_failure_rate(charts: ReportCharts) -> str:
    frame = charts.daily_by_channel
    days = sorted(frame["day"].unique().to_list())

    def draw(axes: Axes) -> None:
        if frame.is_empty():
            return _no_data(axes, "messages")
        # Days as positions, not dates: one day or ninety, the axis never asks for thousands of ticks.
        position = {day: index for index, day in enumerate(days)}
        for (channel,), rows in frame.sort("channel", "day").group_by("channel", maintain_order=True):
            x = [position[day] for day in rows["day"]]
            axes.plot(x, (rows["failure_rate"] * 100).to_list(), marker="o", label=channel)
        step = max(1, len(days) // 10)
        axes.set_xticks(range(0, len(days), step), [day.strftime("%m-%d") for day in days[::step]])
        axes.set_xlim(-0.5, len(days) - 0.5)
        axes.set_ylabel("failure rate (%)")
        axes.set_ylim(bottom=0)
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        axes.tick_params(axis="x", labelrotation=30)
        return None

    return _svg("daily-failure-rate", draw)


def _top_failure_codes(report: FailureReport) -> str:
    codes = report.top_failure_codes

    def draw(axes: Axes) -> None:
        if codes.is_empty():
            return _no_data(axes, "failures")
        labels = [
            f"{code} {name or category or ''}".strip()
            for code, name, category in codes.select("failure_code", "failure_name", "category").iter_rows()
        ]
        positions = np.arange(len(labels))
        axes.barh(positions, codes["n_failed"].to_list(), color="#c0392b")
        axes.set_yticks(positions, labels)
        axes.invert_yaxis()
        axes.set_xlabel("failed messages")
        axes.grid(axis="x", alpha=0.3)
        return None

    return _svg("top-failure-codes", draw)


def _country_channel_heatmap(charts: ReportCharts) -> str:
    frame = charts.country_by_channel
    countries = sorted(frame["country"].unique().to_list())
    channels = sorted(frame["channel"].unique().to_list())

    def draw(axes: Axes) -> None:
        if frame.is_empty():
            return _no_data(axes, "messages")
        grid = np.full((len(countries), len(channels)), np.nan)
        for country, channel, rate in frame.select("country", "channel", "failure_rate").iter_rows():
            grid[countries.index(country), channels.index(channel)] = rate * 100
        image = axes.imshow(grid, cmap="Reds", aspect="auto", vmin=0)
        axes.set_xticks(range(len(channels)), channels, rotation=30, ha="right")
        axes.set_yticks(range(len(countries)), countries)
        dark = np.nanmax(grid) * 0.6
        for (row, column), value in np.ndenumerate(grid):
            if not np.isnan(value):
                color = "white" if value > dark else "black"
                axes.text(column, row, f"{value:.1f}", ha="center", va="center", fontsize=7, color=color)
        axes.figure.colorbar(image, ax=axes, label="failure rate (%)")
        return None

    return _svg("country-channel-heatmap", draw, size=(7.5, 0.6 + 0.35 * max(len(countries), 4)))


def _delivery_time(charts: ReportCharts) -> str:
    frame = charts.delivery_seconds.filter(pl.col("delivery_seconds") > 0)

    def draw(axes: Axes) -> None:
        if frame.is_empty():
            return _no_data(axes, "delivered messages")
        seconds = frame["delivery_seconds"]
        bins = np.geomspace(max(float(seconds.min()), 0.1), float(seconds.max()) * 1.01, 40)
        for (platform,), rows in frame.sort("platform").group_by("platform", maintain_order=True):
            axes.hist(
                rows["delivery_seconds"].to_numpy(), bins=bins, histtype="step", linewidth=1.5, label=platform
            )
        axes.set_xscale("log")
        axes.set_xlabel("seconds from created to delivered (log scale)")
        axes.set_ylabel("messages")
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7)
        return None

    return _svg("delivery-time", draw)
