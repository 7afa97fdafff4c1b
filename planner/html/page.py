"""One self-contained HTML page: inline styles, inline SVG charts, no script and nothing fetched, so it
opens offline, prints on A4 and reads on a phone."""

from __future__ import annotations

from html import escape

STYLE = """
:root { --ink:#1d2330; --muted:#5b6475; --line:#d9dde5; --accent:#2b6cb0; --good:#2f855a; --warn:#b7791f;
        --bad:#c53030; --chosen:#2b6cb0; --other:#a0aec0; }
* { box-sizing: border-box; }
body { font: 15px/1.45 -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; color: var(--ink);
       margin: 0 auto; padding: 16px; max-width: 980px; }
h1 { font-size: 1.5em; margin: 0.2em 0; } h2 { font-size: 1.15em; margin: 1.4em 0 0.4em;
     border-bottom: 1px solid var(--line); padding-bottom: 4px; }
.status { display: inline-block; padding: 2px 8px; border-radius: 10px; font-size: 0.85em; color: #fff; }
.status.optimal, .status.ok { background: var(--good); } .status.feasible { background: var(--warn); }
.status.infeasible, .status.timeout, .status.error { background: var(--bad); }
.headline { font-size: 1.2em; margin: 0.4em 0 0.8em; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(180px, 1fr)); gap: 8px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; }
.card .k { color: var(--muted); font-size: 0.82em; } .card .v { font-size: 1.15em; font-weight: 600; }
table { border-collapse: collapse; width: 100%; margin: 0.3em 0; }
th, td { text-align: left; padding: 4px 6px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 600; font-size: 0.85em; } td.num { text-align: right;
     font-variant-numeric: tabular-nums; white-space: nowrap; }
.note { color: var(--muted); font-size: 0.88em; } .tag { font-size: 0.78em; padding: 1px 6px; border-radius: 8px;
     border: 1px solid var(--line); white-space: nowrap; } .tag.binding { border-color: var(--bad); color: var(--bad); }
.tag.tight { border-color: var(--warn); color: var(--warn); }
pre { background: #f6f8fa; padding: 10px; overflow-x: auto; font-size: 0.85em; border-radius: 6px; }
svg text { font: 12px -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; fill: var(--ink); }
.scroll { overflow-x: auto; }
@media (max-width: 600px) { body { padding: 8px; font-size: 14px; } th, td { padding: 3px 4px; } }
@media print { body { max-width: none; } h2 { break-after: avoid; } table, svg, .card { break-inside: avoid; } }
"""


def e(value) -> str:
    return escape("" if value is None else str(value))


def number(value, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, str):
        return e(value)
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def table(head: list[str], rows: list[list[str]], numeric: set[int] = frozenset()) -> str:
    """Cells are HTML already (escape text with `e`)."""
    th = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>"
                                    for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f'<div class="scroll"><table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table></div>'


def section(title: str, body: str, anchor: str) -> str:
    return f'<section id="{anchor}"><h2>{e(title)}</h2>{body}</section>'


def page(title: str, body: str) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{e(title)}</title><style>{STYLE}</style></head><body>{body}"
            "<p class=\"note\">Written by planner. Figures are predictions of its analytical model unless "
            "marked otherwise; each carries its provenance and expected error.</p></body></html>\n")
