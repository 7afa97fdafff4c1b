"""What a buyer reads from a sweep: the best plan of every scenario, where along each axis the answer flips
and which limits decide it on either side, and a heatmap of the winning device over two axes."""

from __future__ import annotations

from pathlib import Path

from planner.errors import Problem, SweepError


def read_results(results: Path) -> list[dict]:
    import pyarrow.parquet as pq

    parts = sorted(results.glob("part-*.parquet")) if results.is_dir() else []
    if not parts:
        raise SweepError(Problem("no sweep results here", file=str(results),
                                 fix="run `planner sweep SWEEP.yaml -o FOLDER` first"))
    rows = [r for part in parts for r in pq.read_table(part).to_pylist()]
    return sorted(rows, key=lambda r: r["index"])


def axes_of(rows: list[dict]) -> list[str]:
    return [c.removeprefix("axis:") for c in rows[0] if c.startswith("axis:")]


def answer(row: dict) -> str:
    if row["status"] not in ("optimal", "feasible"):
        return row["status"]
    return f"{row['devices']} x {row['device']} ({row['provider']} {row['pricing']})"


def flips(rows: list[dict]) -> list[dict]:
    """Adjacent scenarios along one axis, the others held, whose answers differ."""
    axes = axes_of(rows)
    out = []
    for axis in axes:
        others = [a for a in axes if a != axis]
        lines: dict[tuple, list[dict]] = {}
        for r in rows:
            lines.setdefault(tuple(str(r[f"axis:{a}"]) for a in others), []).append(r)
        for held, line in lines.items():
            line = sorted(line, key=lambda r: (isinstance(r[f"axis:{axis}"], str), r[f"axis:{axis}"]))
            for a, b in zip(line, line[1:]):
                if answer(a) != answer(b):
                    out.append({"axis": axis, "held": dict(zip(others, held)), "from": a[f"axis:{axis}"],
                                "to": b[f"axis:{axis}"], "answer_before": answer(a), "answer_after": answer(b),
                                "tight_before": decider(a), "tight_after": decider(b)})
    return out


def decider(row: dict) -> str:
    """The limits that decide a plan: the tight ones, else the closest with its slack."""
    if row.get("tight_limits"):
        return row["tight_limits"]
    if row.get("closest_limit"):
        return f"{row['closest_limit']} ({row['closest_slack_pct']:g}% slack)"
    return ""


def heatmap(rows: list[dict], x: str, y: str, out: Path) -> None:
    axes = axes_of(rows)
    for name in (x, y):
        if name not in axes:
            raise SweepError(Problem(f"`{name}` is not an axis of this sweep", fix=f"use one of: {', '.join(axes)}"))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SweepError(Problem("the heatmap needs matplotlib", fix="pip install 'planner[plot]'")) from None
    # Other axes are held at their first value: one cell per (x, y).
    first = {a: rows[0][f"axis:{a}"] for a in axes if a not in (x, y)}
    cells = [r for r in rows if all(r[f"axis:{a}"] == v for a, v in first.items())]
    xs = sorted({r[f"axis:{x}"] for r in cells}, key=lambda v: (isinstance(v, str), v))
    ys = sorted({r[f"axis:{y}"] for r in cells}, key=lambda v: (isinstance(v, str), v))
    winners = sorted({r["device"] or r["status"] for r in cells})
    grid = [[float("nan")] * len(xs) for _ in ys]
    for r in cells:
        grid[ys.index(r[f"axis:{y}"])][xs.index(r[f"axis:{x}"])] = winners.index(r["device"] or r["status"])
    fig, ax = plt.subplots(figsize=(1.2 + 0.8 * len(xs), 1.2 + 0.5 * len(ys)))
    cmap = plt.get_cmap("tab10", max(len(winners), 1))
    ax.imshow(grid, cmap=cmap, vmin=-0.5, vmax=len(winners) - 0.5, aspect="auto", origin="lower")
    ax.set_xticks(range(len(xs)), [str(v) for v in xs], rotation=45, ha="right")
    ax.set_yticks(range(len(ys)), [str(v) for v in ys])
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    handles = [plt.Rectangle((0, 0), 1, 1, color=cmap(i)) for i in range(len(winners))]
    ax.legend(handles, winners, loc="upper left", bbox_to_anchor=(1.01, 1), title="winning device")
    title = "Winning device" + (f" ({', '.join(f'{k}={v}' for k, v in first.items())})" if first else "")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
