#!/usr/bin/env python3
"""Latency percentile spectra (keel-bench --hist files) as one SVG plot,
with the standard library only: x = percentile on a log(1/(1-p)) scale,
y = latency in µs on a log scale. Usage: latency-svg.py OUT.svg FILE..."""
import math
import os
import sys

W, H, L, R, T, B = 900, 560, 70, 220, 20, 50
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]


def load(path):
    pts = []
    for line in open(path).read().splitlines()[1:]:
        p, v = line.split()[:2]
        p, v = float(p), float(v)
        if v > 0 and p < 100:
            pts.append((-math.log10(max(1 - p / 100, 1e-6)), v))
    return pts


def main(out, files):
    series = [(os.path.basename(f)[:-4].split("-", 3)[-1], load(f)) for f in files]
    ys = [v for _, pts in series for _, v in pts]
    if not ys:
        return
    y0, y1 = math.floor(math.log10(min(ys))), math.ceil(math.log10(max(ys)))
    y1 = max(y1, y0 + 1)
    x1 = 5.0
    sx = lambda x: L + (W - L - R) * min(x, x1) / x1
    sy = lambda v: T + (H - T - B) * (1 - (math.log10(v) - y0) / (y1 - y0))
    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
         f'<rect width="{W}" height="{H}" fill="white"/>']
    for x, label in [(0.301, "50"), (1, "90"), (2, "99"), (3, "99.9"), (4, "99.99"), (5, "99.999")]:
        o.append(f'<line x1="{sx(x):.1f}" y1="{T}" x2="{sx(x):.1f}" y2="{H - B}" stroke="#ddd"/>')
        o.append(f'<text x="{sx(x):.1f}" y="{H - B + 16}" text-anchor="middle">{label}</text>')
    for e in range(y0, y1 + 1):
        o.append(f'<line x1="{L}" y1="{sy(10 ** e):.1f}" x2="{W - R}" y2="{sy(10 ** e):.1f}" stroke="#ddd"/>')
        o.append(f'<text x="{L - 6}" y="{sy(10 ** e) + 4:.1f}" text-anchor="end">{10 ** e:g}</text>')
    o.append(f'<text x="{(L + W - R) / 2}" y="{H - 10}" text-anchor="middle">percentile</text>')
    o.append(f'<text x="16" y="{(T + H - B) / 2}" transform="rotate(-90 16 {(T + H - B) / 2})" text-anchor="middle">latency (µs)</text>')
    for i, (name, pts) in enumerate(series):
        c = COLORS[i % len(COLORS)]
        path = " ".join(f"{sx(x):.1f},{sy(v):.1f}" for x, v in pts if x <= x1)
        o.append(f'<polyline fill="none" stroke="{c}" stroke-width="2" points="{path}"/>')
        o.append(f'<line x1="{W - R + 15}" y1="{T + 10 + 18 * i}" x2="{W - R + 35}" y2="{T + 10 + 18 * i}" stroke="{c}" stroke-width="3"/>')
        o.append(f'<text x="{W - R + 40}" y="{T + 14 + 18 * i}">{name}</text>')
    o.append("</svg>")
    open(out, "w").write("\n".join(o))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
