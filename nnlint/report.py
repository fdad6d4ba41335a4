"""The probe as pictures: ``nnlint --report DIR`` writes one self-contained HTML file per
checked model, and ``nnlint.check(...)`` returns a ``Report`` whose ``_repr_html_`` shows
the same page inline in Jupyter.

A page has: the findings, each linked to its layer in the module tree and showing its source
line; the module tree with output shapes and parameter counts (as torchinfo prints them);
per-layer weight-gradient norm and output std on a log scale in execution order; and the
dead-ReLU / saturation fraction of every activation. Charts are matplotlib SVG embedded in
the page (the optional extra ``nnlint[report]``); nothing is fetched when the page opens.
Without matplotlib the page keeps its tables and says how to get the charts.
"""

from __future__ import annotations

import html
import io
import math
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

SEVERITY_COLOR = {"error": "#c62828", "warning": "#ef6c00", "info": "#1565c0"}
CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.meta{color:#555;font-size:13px} table{border-collapse:collapse;font-size:13px;width:100%}
th,td{text-align:left;padding:3px 8px;border-bottom:1px solid #eee;vertical-align:top}
th{background:#f5f5f5} td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.hit{background:#fff3e0} code,pre{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}
pre{background:#f7f7f7;padding:4px 8px;margin:4px 0;overflow-x:auto}
.sev{font-weight:600} .chart svg{max-width:100%;height:auto} .note{color:#777;font-size:13px}
a{color:#1565c0;text-decoration:none} a:hover{text-decoration:underline}
"""


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        if v == 0 or not math.isfinite(v):
            return str(v)
        return f"{v:.{digits}g}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _anchor(module: str) -> str:
    return "mod-" + (re.sub(r"[^\w.-]", "_", module) or "root")


def _source_line(path: str, line: int, cell: int | None) -> str:
    try:
        if cell:
            from nnlint import notebook

            book = notebook.parse(path, Path(path).read_text(encoding="utf-8-sig"))
            lines = book.cell(cell).source.split("\n")
        else:
            lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except Exception:
        return ""
    return lines[line - 1].strip() if 0 < line <= len(lines) else ""


# ---------------------------------------------------------------------------------------
# charts (matplotlib, SVG)


def _svg(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    text = buf.getvalue()
    return text[text.find("<svg") :]


GRADIENT_CODES = ("NN303", "NN304", "NN302")  # vanishing, exploding, non-finite: the chart's subject


def _charts(stats: dict[str, Any], codes: dict[str, list[str]]) -> tuple[list[str], str | None]:
    """(SVG strings, why there are none)."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError:
        return [], "charts need matplotlib: pip install 'nnlint[report]'"
    out = []
    layers = [l for l in stats.get("layers") or [] if l.get("grad_norm") or l.get("out_std")]
    if layers:
        names = [l["module"] for l in layers]
        x = list(range(len(layers)))
        fig, (a1, a2) = plt.subplots(2, 1, figsize=(max(6.5, 0.55 * len(layers) + 2), 5.6), sharex=True)
        colors = [
            "#c62828"
            if any(c in GRADIENT_CODES for c in codes.get(n, ()))
            else "#ef9a9a"
            if codes.get(n)
            else "#1565c0"
            for n in names
        ]
        g = [l.get("grad_norm") or float("nan") for l in layers]
        s = [l.get("out_std") or float("nan") for l in layers]
        bars = a1.bar(x, [v if v and v > 0 else float("nan") for v in g], color=colors)
        for bar, n in zip(bars, names):
            hit = [c for c in codes.get(n, ()) if c in GRADIENT_CODES]
            if hit:
                a1.annotate(
                    " ".join(sorted(set(hit))),
                    (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    xytext=(0, 3),
                    textcoords="offset points",
                    ha="center",
                    fontsize=9,
                    color="#c62828",
                    fontweight="bold",
                )
        a1.set_yscale("log")
        a1.set_ylabel("weight-gradient norm")
        a1.set_title(
            "Per layer, in execution order (dark red: a gradient finding, light red: another finding)", fontsize=10
        )
        a2.plot(x, [v if v and v > 0 else float("nan") for v in s], marker="o", color="#2e7d32", label="output std")
        ins = [l.get("in_std") or float("nan") for l in layers]
        a2.plot(
            x,
            [v if v and v > 0 else float("nan") for v in ins],
            marker=".",
            linestyle=":",
            color="#777",
            label="input std",
        )
        a2.set_yscale("log")
        a2.set_ylabel("activation std")
        a2.legend(fontsize=8)
        a2.set_xticks(x)
        a2.set_xticklabels(names, rotation=45, ha="right", fontsize=8)
        for ax in (a1, a2):
            ax.grid(True, which="major", axis="y", alpha=0.3)
        out.append(_svg(fig))
    acts = [
        a
        for a in stats.get("activations") or []
        if a.get("dead_frac") is not None or a.get("saturated_frac") is not None
    ]
    if acts:
        labels = [
            f"{a['module'] or a['kind']}"
            + (f" ({a.get('where') or 'line ' + str(a['line'])})" if a.get("line") else "")
            for a in acts
        ]
        x = list(range(len(acts)))
        fig, ax = plt.subplots(figsize=(max(6.5, 0.55 * len(acts) + 2), 3.2))
        dead = [a.get("dead_frac") or 0.0 for a in acts]
        sat = [a.get("saturated_frac") or 0.0 for a in acts]
        ax.bar([i - 0.2 for i in x], dead, width=0.4, color="#6a1b9a", label="dead (ReLU family)")
        ax.bar([i + 0.2 for i in x], sat, width=0.4, color="#ef6c00", label="saturated (sigmoid/tanh)")
        ax.set_ylim(0, 1)
        ax.set_ylabel("fraction of units")
        ax.set_title("Activations", fontsize=10)
        ax.set_xticks(x)
        ax.set_xticklabels(labels, rotation=45, ha="right", fontsize=8)
        ax.legend(fontsize=8)
        ax.grid(True, axis="y", alpha=0.3)
        out.append(_svg(fig))
    return out, None


# ---------------------------------------------------------------------------------------
# the page


def render(
    stats: dict[str, Any] | None, diagnostics: Iterable[Any], *, fragment: bool = False, title: str | None = None
) -> str:
    diags = list(diagnostics)
    stats = stats or {}
    model = stats.get("model") or title or "model"
    modules = stats.get("modules") or []
    known = {m["name"] for m in modules}
    flagged = {d.module for d in diags if getattr(d, "module", None)}
    codes: dict[str, list[str]] = {}
    for d in diags:
        if getattr(d, "module", None):
            codes.setdefault(d.module, []).append(d.code)
    parts: list[str] = []
    e = html.escape
    parts.append(f"<h1>nnlint: {e(model)}</h1>")
    meta = []
    if stats.get("path"):
        meta.append(f"<code>{e(stats['path'])}</code>")
    if stats.get("device"):
        meta.append(f"probed on {e(str(stats['device']))}, batch {e(str(stats.get('batch_size')))}")
    loss = stats.get("loss")
    if loss:
        meta.append(f"loss {e(_fmt(loss.get('value')))} ({e(str(loss.get('kind')))}, {e(str(loss.get('source')))})")
    if meta:
        parts.append(f"<div class='meta'>{' · '.join(meta)}</div>")

    parts.append(f"<h2>Findings ({len(diags)})</h2>")
    if diags:
        rows = []
        for d in diags:
            sev = d.severity.value if hasattr(d.severity, "value") else str(d.severity)
            where = f"cell {d.cell}, line {d.line}" if getattr(d, "cell", None) else f"line {d.line}"
            mod = getattr(d, "module", None)
            layer = (
                f"<a href='#{_anchor(mod)}'><code>{e(mod)}</code></a>"
                if mod and mod in known
                else (f"<code>{e(mod)}</code>" if mod else "")
            )
            src = _source_line(d.path, d.line, getattr(d, "cell", None))
            rows.append(
                f"<tr><td class='sev' style='color:{SEVERITY_COLOR.get(sev, '#222')}'>{e(d.code)}</td>"
                f"<td>{layer}</td><td><code>{e(os.path.basename(d.path))}</code> {e(where)}"
                + (f"<pre>{e(src)}</pre>" if src else "")
                + f"</td><td>{e(d.message)}</td></tr>"
            )
        parts.append(
            "<table><tr><th>code</th><th>layer</th><th>where</th><th>message</th></tr>" + "".join(rows) + "</table>"
        )
    else:
        parts.append("<p class='note'>No findings.</p>")

    charts, why = _charts(stats, codes) if stats else ([], None)
    if charts or why:
        parts.append("<h2>Gradients and activations</h2>")
        parts.extend(f"<div class='chart'>{svg}</div>" for svg in charts)
        if why:
            parts.append(f"<p class='note'>{e(why)}</p>")

    if modules:
        parts.append("<h2>Modules</h2>")
        rows = []
        for m in modules:
            depth = 0 if not m["name"] else m["name"].count(".") + 1
            name = m["name"] or f"({model})"
            cls = " class='hit'" if m["name"] in flagged else ""
            shape = "×".join(str(s) for s in m["out_shape"]) if m.get("out_shape") else ""
            rows.append(
                f"<tr id='{_anchor(m['name'])}'{cls}><td style='padding-left:{8 + 16 * depth}px'><code>{e(name)}</code></td>"
                f"<td>{e(m['type'])}</td><td><code>{e(shape)}</code></td><td class='num'>{_fmt(m.get('params'))}</td>"
                f"<td class='num'>{_fmt(m.get('grad_norm'))}</td><td class='num'>{_fmt(m.get('out_std'))}</td></tr>"
            )
        parts.append(
            "<table><tr><th>module</th><th>type</th><th>output shape</th><th>params</th>"
            "<th>‖∂loss/∂output‖</th><th>output std</th></tr>" + "".join(rows) + "</table>"
        )
    body = "\n".join(parts)
    if fragment:
        return f"<div class='nnlint-report'><style>{CSS.replace('body{', '.nnlint-report{')}</style>{body}</div>"
    return (
        f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>nnlint: {e(model)}</title>"
        f"<style>{CSS}</style></head><body>\n{body}\n</body></html>\n"
    )


def _cell_lines(stats: dict[str, Any]) -> None:
    """A notebook's activation lines (in the cells' program) as 'cell C, line L'."""
    path = str(stats.get("path") or "")
    if not path.endswith(".ipynb"):
        return
    try:
        from nnlint import notebook

        book = notebook.parse(path, Path(path).read_text(encoding="utf-8-sig"))
    except Exception:
        return
    for a in stats.get("activations") or []:
        where = book.locate(a["line"]) if a.get("line") else None
        if where:
            a["where"] = f"cell {where[0]}, line {where[1]}"


def _file_name(stats: dict[str, Any]) -> str:
    stem = os.path.splitext(os.path.basename(str(stats.get("path") or "model")))[0]
    return re.sub(r"[^\w.-]", "_", f"{stem}-{stats.get('model') or 'model'}") + ".html"


def write_reports(result: Any, folder: Path | str, err: TextIO | None = None) -> list[str]:
    """One HTML file per probed model in ``result.stats``; returns the paths written."""
    folder = Path(folder)
    stats_list = list(getattr(result, "stats", None) or [])
    if not stats_list:
        if err is not None:
            err.write("nnlint: --report: no model was probed, so there is nothing to draw\n")
        return []
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for stats in stats_list:
        _cell_lines(stats)
        diags = [
            d
            for d in result.diagnostics
            if d.path == stats.get("path")
            and d.model in (stats.get("model"), None)
            and d.pass_ in ("graph", "probe", "data")
        ] + [
            d
            for d in result.diagnostics
            if d.path == stats.get("path") and d.pass_ in ("source", "tool") and d.model == stats.get("model")
        ]
        target = folder / _file_name(stats)
        target.write_text(render(stats, diags), encoding="utf-8")
        written.append(str(target))
    return written
