"""Charts of reports (``--chart FILE``): matplotlib's Agg backend, imported only for a chart.

Lines for time series, bars for rankings. ``.png``, ``.svg``, or ``.html``: the SVG chart, the
rows as a table and as a JSON block, with nothing from outside the file (no script, stylesheet,
font or image). The numbers are those of ``--format json``.
"""

from __future__ import annotations

import html
import json
import sys
import warnings
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from bankwx_cli.errors import ValidationError

SUFFIXES = (".png", ".svg", ".html")
# Fonts with Chinese glyphs, the first installed one is used for PNG and SVG text.
CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Zen Hei",
             "WenQuanYi Micro Hei", "SimHei", "Microsoft YaHei", "PingFang SC",
             "AR PL UMing CN", "Droid Sans Fallback")  # fmt: skip


def check(path: Path) -> None:
    """Refuse, before the report runs, a chart that cannot be written: another suffix, a
    folder that does not exist, matplotlib missing (ValidationError, exit 1)."""
    if path.suffix.lower() not in SUFFIXES:
        raise ValidationError(
            f"--chart '{path}' has the suffix '{path.suffix}': use .png, .svg or .html."
        )
    folder = path.parent
    if not folder.is_dir():
        raise ValidationError(
            f"--chart '{path}': the folder '{folder}' does not exist. Create it first "
            f"(mkdir -p {folder}) or choose another path."
        )
    if find_spec("matplotlib") is None:
        raise ValidationError(
            "--chart needs matplotlib, which is not installed: install the extra "
            "bankwx[charts] (pip install 'bankwx[charts]')."
        )


def _cjk_font(plt: Any) -> str | None:
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FONTS if name in installed), None)


def _label(row: dict[str, Any], key: str | None) -> str:
    value = row.get(key) if key else None
    text = str(value) if value is not None else "-"
    return text if len(text) <= 30 else text[:29] + "…"


def figure(req: Any, rows: list[dict[str, Any]], main: str, time_series: bool) -> Any:
    """The chart as a matplotlib figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    font = _cjk_font(plt)
    if font is not None:
        matplotlib.rcParams["font.sans-serif"] = [font, "DejaVu Sans"]
    else:
        rows_text = " ".join(str(v) for r in rows for v in r.values())
        if any(ord(ch) > 0x2E80 for ch in rows_text):
            sys.stderr.write(
                "Warning: no font with Chinese characters is installed (e.g. Noto Sans CJK); "
                "the chart's Chinese text shows as boxes.\n"
            )
    matplotlib.rcParams["svg.fonttype"] = "path"
    fig, ax = plt.subplots(figsize=(10, 5))
    from bankwx_cli.domain import reports

    if time_series:
        series: dict[str, list[tuple[str, float]]] = {}
        split = reports.split_shown(req)
        for row in rows:
            name = " ".join(str(row.get(c) or "-") for c in split) or main
            series.setdefault(name, []).append((str(row["period"])[:16], float(row[main] or 0)))
        for name, points in series.items():
            ax.plot([p for p, _ in points], [v for _, v in points], marker="o", label=name)
        if len(series) > 1:
            ax.legend()
        ax.tick_params(axis="x", rotation=45)
    else:
        label_key = (
            "group"
            if req.split == "group"
            else reports.LABEL.get(
                "unmatched" if req.report == "keywords" and req.unmatched else req.report
            )
        )
        totals: dict[str, float] = {}
        for row in rows:
            label = _label(row, label_key)
            totals[label] = totals.get(label, 0.0) + float(row.get(main) or 0)
        ranked = sorted(totals.items(), key=lambda item: -item[1])[:20]
        ax.barh([k for k, _ in reversed(ranked)], [v for _, v in reversed(ranked)])
    ax.set_title(f"{req.report} ({req.account}): {main}")
    fig.tight_layout()
    return fig


def draw(path: Path, req: Any, outcome: Any, columns: list[str]) -> None:
    """Write the chart of a report's rows to path (its suffix chooses the format)."""
    from bankwx_cli.commands._cli import to_row
    from bankwx_cli.domain import reports

    rows = [to_row(r) for r in outcome.rows]
    main = reports.MAIN["unmatched" if req.report == "keywords" and req.unmatched else req.report]
    with warnings.catch_warnings():  # without a CJK font: our one warning, not one a glyph
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        _save(path, req, rows, main, outcome.time_series, columns)


def _save(
    path: Path, req: Any, rows: list[dict[str, Any]], main: str, time_series: bool,
    columns: list[str],
) -> None:  # fmt: skip
    import io

    import matplotlib.pyplot as plt

    fig = figure(req, rows, main, time_series)
    suffix = path.suffix.lower()
    try:
        if suffix == ".png":
            fig.savefig(path, format="png", dpi=100)
            return
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None})
        svg = buffer.getvalue()
    finally:
        plt.close(fig)
    if suffix == ".svg":
        path.write_text(svg, encoding="utf-8")
        return
    path.write_text(_html(req, svg, rows, columns), encoding="utf-8")


def _html(req: Any, svg: str, rows: list[dict[str, Any]], columns: list[str]) -> str:
    start = svg.find("<svg")
    inline = svg[start:] if start >= 0 else svg
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_text(row.get(c)))}</td>" for c in columns) + "</tr>"
        for row in rows
    )
    data = json.dumps(rows, ensure_ascii=False, indent=2).replace("</", "<\\/")
    title = html.escape(f"bankwx {req.report} report ({req.account})")
    return (
        '<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="utf-8">'
        f"<title>{title}</title></head><body>\n<h1>{title}</h1>\n{inline}\n"
        f'<table border="1"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>\n'
        f'<pre id="rows">{html.escape(data)}</pre>\n</body></html>\n'
    )


def _text(value: Any) -> str:
    return "" if value is None else str(value)
