"""Throughput and failure-rate charts as inline SVG, drawn on the server (no script, no CDN)."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

from bss.monitoring import Bucket

WIDTH, HEIGHT, PAD = 600, 170, 28
# The pages' one time format, to the minute: the day chart spans two dates.
AXIS_FORMAT = "%Y-%m-%d %H:%M UTC"


def _label(bucket: Bucket, fmt: str) -> str:
    return bucket.start.strftime(fmt)


def _axis(buckets: Sequence[Bucket], step: float, fmt: str) -> list[str]:
    """Ticks and times under the bars: where the window starts, its middle, and where it ends,
    each with its date and zone (the day chart spans two dates)."""
    if not buckets:
        return []
    n = len(buckets)
    ticks = [(0, buckets[0].start, "start")]
    if n > 2:
        ticks.append((n // 2, buckets[n // 2].start, "middle"))
    if n > 1:
        ticks.append((n, buckets[-1].start + (buckets[1].start - buckets[0].start), "end"))
    out = []
    for i, when, anchor in ticks:
        x = PAD + i * step
        out.append(
            f'<line x1="{x:.1f}" y1="{HEIGHT - PAD}" x2="{x:.1f}" y2="{HEIGHT - PAD + 4}" '
            f'stroke="#9aa5b1"/><text class="axis" x="{x:.1f}" y="{HEIGHT - 8}" font-size="10" '
            f'fill="#52606d" text-anchor="{anchor}">{escape(when.strftime(fmt))}</text>'
        )
    return out


def throughput_chart(buckets: Sequence[Bucket], *, title: str, fmt: str = AXIS_FORMAT) -> Markup:
    """Stacked bars of jobs succeeded and failed per interval, with the failure rate as a line."""
    n = max(len(buckets), 1)
    top = max((b.succeeded + b.failed for b in buckets), default=0) or 1
    plot_w, plot_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD
    step = plot_w / n
    bar = max(step * 0.8, 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" '
        'stroke="#9aa5b1"/>',
        f'<text x="2" y="{PAD + 4}" font-size="10" fill="#52606d">{top}</text>',
        f'<text x="2" y="{HEIGHT - PAD}" font-size="10" fill="#52606d">0</text>',
        f'<text x="{WIDTH - PAD + 2}" y="{PAD + 4}" font-size="10" fill="#9b1c1c">100%</text>',
    ]
    rate_points = []
    for i, b in enumerate(buckets):
        x = PAD + i * step + (step - bar) / 2
        ok_h = plot_h * b.succeeded / top
        failed_h = plot_h * b.failed / top
        base = HEIGHT - PAD
        tip = escape(f"{_label(b, fmt)}: {b.succeeded} succeeded, {b.failed} failed")
        parts.append(f'<g class="bucket"><title>{tip}</title>')
        if b.succeeded:
            parts.append(
                f'<rect class="ok" x="{x:.1f}" y="{base - ok_h:.1f}" width="{bar:.1f}" '
                f'height="{ok_h:.1f}" fill="#52b788"/>'
            )
        if b.failed:
            parts.append(
                f'<rect class="failed" x="{x:.1f}" y="{base - ok_h - failed_h:.1f}" '
                f'width="{bar:.1f}" height="{failed_h:.1f}" fill="#e5484d"/>'
            )
        parts.append("</g>")
        if b.failure_rate is not None:
            rate_points.append(f"{x + bar / 2:.1f},{base - plot_h * b.failure_rate:.1f}")
    if len(rate_points) > 1:
        parts.append(
            f'<polyline class="failure-rate" points="{" ".join(rate_points)}" fill="none" '
            'stroke="#9b1c1c" stroke-width="1.5" stroke-dasharray="4 2"/>'
        )
    for point in rate_points if len(rate_points) == 1 else ():
        x, y = point.split(",")
        parts.append(f'<circle class="failure-rate" cx="{x}" cy="{y}" r="2.5" fill="#9b1c1c"/>')
    parts += _axis(buckets, step, fmt)
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every interpolated text above is escaped)
