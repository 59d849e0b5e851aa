"""Throughput and failure-rate charts as inline SVG, drawn on the server (no script, no CDN)."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

from bss.monitoring import Bucket

WIDTH, HEIGHT, PAD = 600, 170, 28


def _label(bucket: Bucket, fmt: str) -> str:
    return bucket.start.strftime(fmt)


def throughput_chart(buckets: Sequence[Bucket], *, title: str, fmt: str = "%H:%M") -> Markup:
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
    if buckets:
        parts.append(
            f'<text x="{PAD}" y="{HEIGHT - 8}" font-size="10" fill="#52606d">'
            f"{escape(_label(buckets[0], fmt))}</text>"
            f'<text x="{WIDTH - PAD}" y="{HEIGHT - 8}" font-size="10" fill="#52606d" '
            f'text-anchor="end">{escape(_label(buckets[-1], fmt))}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every interpolated text above is escaped)
