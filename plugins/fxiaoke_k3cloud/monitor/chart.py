"""Runs over time as an inline SVG line chart, drawn on the server (no JavaScript, no CDN).

The x axis is the run's start time (a full resync's window starts in 1970, and manual runs repeat a window:
neither is a time axis); points and tooltips name the run's state as Airflow shows it.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from fxiaoke_k3cloud.monitor.queries import RunView
from fxiaoke_k3cloud.monitor.text import fmt_time, fmt_window

#: The series the page plots, with colours that stay apart for colour-blind readers (Okabe–Ito).
SERIES: tuple[tuple[str, str], ...] = (
    ("created", "#009E73"),
    ("updated", "#0072B2"),
    ("rejected", "#E69F00"),
    ("failed", "#D55E00"),
    ("parked", "#CC79A7"),
)
WIDTH, HEIGHT = 760, 240
LEFT, RIGHT, TOP, BOTTOM = 58, 12, 14, 58
#: The audit store's run status → the Airflow DAG run state (``report`` fails a partial run: it is red there).
AIRFLOW_STATES = {"success": "success", "partial": "failed", "failed": "failed", "abandoned": "failed",
                  "running": "running"}


def airflow_state(status: str) -> str:
    return AIRFLOW_STATES.get(status, status)
#: Pixels one "01-05 03:30" tick label needs, so neighbours never overlap.
LABEL_WIDTH = 72


def _nice_max(value: int) -> int:
    """Round the top of the y axis up to 1, 2 or 5 × 10^k so the ticks are readable numbers."""
    if value <= 4:
        return 4
    magnitude = 10 ** (len(str(value)) - 1)
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def runs_chart(runs: Sequence[RunView], *, title: str, x_label: str = "run start (UTC)",
               y_label: str = "records per run") -> str:
    """SVG of the runs' counters, oldest run on the left. ``runs`` may come newest first."""
    ordered = sorted(runs, key=lambda r: (r.started_at, r.pk))
    if not ordered:
        return '<p class="muted">No runs to chart yet.</p>'
    top = _nice_max(max(max(r.counts.get(name, 0) for name, _ in SERIES) for r in ordered))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(len(ordered) - 1, 1)

    def x(i: int) -> float:
        return LEFT + (i * step if len(ordered) > 1 else plot_w / 2)

    def y(v: int) -> float:
        return TOP + plot_h - (v / top) * plot_h

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for k in range(5):
        v = round(top * k / 4)
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(v):.1f}" y2="{y(v):.1f}" class="grid"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end" class="tick">{v}</text>')
    # At most ~8 x labels, so long histories stay legible.
    every = max(1, -(-len(ordered) // 8), int(-(-LABEL_WIDTH // max(step, 1))))
    last = len(ordered) - 1
    for i, run in enumerate(ordered):
        # The newest run is always labelled; a regular label too close before it is dropped.
        if (i % every == 0 and x(last) - x(i) >= LABEL_WIDTH) or i == last:
            label = fmt_time(run.started_at)[5:16]
            # Edge labels are anchored inwards so they are not clipped by the SVG's box.
            anchor = "end" if i == last and len(ordered) > 1 else "start" if i == 0 and len(ordered) > 1 else "middle"
            parts.append(f'<text x="{x(i):.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="{anchor}" class="tick">'
                         f"{escape(label)}</text>")
    for name, colour in SERIES:
        points = " ".join(f"{x(i):.1f},{y(r.counts.get(name, 0)):.1f}" for i, r in enumerate(ordered))
        parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for i, run in enumerate(ordered):
            value = run.counts.get(name, 0)
            tip = (f"{name} {value} — run {run.pk} ({airflow_state(run.status)}), started {fmt_time(run.started_at)}, "
                   f"window {fmt_window(run.window_start, run.window_end)}")
            parts.append(f'<circle cx="{x(i):.1f}" cy="{y(value):.1f}" r="3" fill="{colour}">'
                         f"<title>{escape(tip)}</title></circle>")
    parts.append(f'<text x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - BOTTOM + 32}" text-anchor="middle" '
                 f'class="axis">{escape(x_label)}</text>')
    parts.append(f'<text x="14" y="{TOP + plot_h / 2:.1f}" text-anchor="middle" class="axis" '
                 f'transform="rotate(-90 14 {TOP + plot_h / 2:.1f})">{escape(y_label)}</text>')
    for i, run in enumerate(ordered):  # failed runs marked on the x axis, in Airflow's words
        if airflow_state(run.status) != "success":
            parts.append(f'<text x="{x(i):.1f}" y="{TOP + plot_h + 5:.1f}" text-anchor="middle" class="state '
                         f'{escape(airflow_state(run.status))}">▲<title>{escape(airflow_state(run.status))}</title></text>')
    lx = LEFT
    for name, colour in SERIES:
        parts.append(f'<rect x="{lx}" y="{HEIGHT - 14}" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{lx + 14}" y="{HEIGHT - 5}" class="legend">{escape(name)}</text>')
        lx += 90
    parts.append("</svg>")
    return "".join(parts)
