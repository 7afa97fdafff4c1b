"""Inline SVG charts: a slack bar per limit and a sorted horizontal bar chart (why-not, side by side)."""

from __future__ import annotations

from planner.html.page import e, number


def slack_bar(value: float | None, limit: float | None, binding: bool = False, width: int = 140) -> str:
    """How much of a limit the plan uses: the filled share is value / limit (capped at the frame)."""
    if value is None or not limit:
        return ""
    share = max(0.0, min(1.0, abs(value) / abs(limit)))
    colour = "var(--bad)" if binding else ("var(--warn)" if share >= 0.95 else "var(--good)")
    filled = round(share * (width - 2), 1)
    return (f'<svg class="slack" width="{width}" height="12" role="img" aria-label="{share:.0%} of the limit">'
            f'<rect x="0.5" y="0.5" width="{width - 1}" height="11" fill="none" stroke="var(--line)"/>'
            f'<rect class="used" x="1" y="1" width="{filled}" height="10" fill="{colour}"/></svg>')


def bar_chart(items: list[tuple[str, float | None, bool, str]], unit: str, css_class: str,
              label_width: int = 190, width: int = 640) -> str:
    """(label, value, chosen, note) sorted ascending; a None value is drawn as an empty row with its note."""
    rows = sorted(items, key=lambda i: (i[1] is None, i[1] if i[1] is not None else 0.0))
    finite = [v for _, v, _, _ in rows if v is not None]
    top = max(finite) if finite else 1.0
    bar_w = width - label_width - 150  # room for the value after the longest bar
    height = 22 * len(rows) + 8
    parts = [f'<svg class="{css_class}" viewBox="0 0 {width} {height}" width="100%" role="img" '
             f'aria-label="{e(unit)} by option">']
    for i, (label, value, chosen, note) in enumerate(rows):
        y = 4 + 22 * i
        parts.append(f'<text x="{label_width - 6}" y="{y + 14}" text-anchor="end">{e(label)}</text>')
        if value is None:
            text = note or "impossible"
            short = text if len(text) <= 60 else text[:57] + "..."
            parts.append(f'<text x="{label_width}" y="{y + 14}" class="ruled-out" fill="var(--bad)">'
                         f'{e(short)}<title>{e(text)}</title></text>')
            continue
        w = max(1.0, bar_w * value / top) if top > 0 else 1.0
        colour = "var(--chosen)" if chosen else "var(--other)"
        parts.append(f'<rect class="bar{" chosen" if chosen else ""}" x="{label_width}" y="{y + 3}" '
                     f'width="{w:.1f}" height="15" fill="{colour}"><title>{e(note)}</title></rect>')
        parts.append(f'<text x="{label_width + w + 6:.1f}" y="{y + 14}">{number(value)} {e(unit)}</text>')
    parts.append("</svg>")
    return "".join(parts)
