"""Tiny SVG charts for the benchmark report (no matplotlib).

hbar(): horizontal bars, optionally grouped, linear or log scale, with a text
label after each bar (value and ratio); line(): lines over categorical x with
a linear or log y axis.  Both return the SVG document as a string.
"""
import math
from xml.sax.saxutils import escape

FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"
PALETTE = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860",
           "#da8bc3", "#8c8c8c", "#ccb974", "#64b5cd"]


def fmt_ns(ns):
    """Nanoseconds as text with three significant digits: "2.68 µs"."""
    if ns is None:
        return "n/a"
    for div, unit in ((1e9, "s"), (1e6, "ms"), (1e3, "µs")):
        if ns >= div:
            return "%s %s" % ("%.3g" % (ns / div), unit)
    return "%.3g ns" % ns


def _tw(text, size=12):
    """Rough text width in px."""
    return len(text) * size * 0.56


def _text(x, y, s, size=12, anchor="start", weight="normal", fill="#222", extra=""):
    return ('<text x="%.1f" y="%.1f" font-size="%d" text-anchor="%s" font-weight="%s" '
            'fill="%s"%s>%s</text>' % (x, y, size, anchor, weight, fill, extra, escape(s)))


class _Scale:
    def __init__(self, lo, hi, log, x0, x1):
        self.log = log
        if log:
            lo = max(lo, 1e-12)
            self.lo = 10 ** math.floor(math.log10(lo))
            self.hi = 10 ** math.ceil(math.log10(max(hi, lo * 10)))
        else:
            self.lo = 0.0
            self.hi = hi * 1.05 if hi > 0 else 1.0
            mag = 10 ** math.floor(math.log10(self.hi))
            for step in (0.1, 0.2, 0.25, 0.5, 1, 2, 2.5, 5, 10):
                if self.hi / (step * mag) <= 6:
                    self.step = step * mag
                    break
            self.hi = math.ceil(self.hi / self.step) * self.step
        self.x0, self.x1 = x0, x1

    def __call__(self, v):
        if self.log:
            v = max(v, self.lo)
            f = (math.log10(v) - math.log10(self.lo)) / (math.log10(self.hi) - math.log10(self.lo))
        else:
            f = (v - self.lo) / (self.hi - self.lo)
        return self.x0 + f * (self.x1 - self.x0)

    def ticks(self):
        if self.log:
            e0, e1 = int(round(math.log10(self.lo))), int(round(math.log10(self.hi)))
            return [10 ** e for e in range(e0, e1 + 1)]
        t, out = self.lo, []
        while t <= self.hi + 1e-9:
            out.append(t)
            t += self.step
        return out


def hbar(title, groups, fmt=fmt_ns, log=True, subtitle="", axis_label="",
         ref=None, series_names=None, width=900):
    """groups: [(group_label, [(series_idx, value, annotation)])].  A group with
    one bar is a plain row.  ref: (value, label) draws a dashed vertical line."""
    label_w = max([_tw(g[0], 12) for g in groups] + [80]) + 20
    label_w = min(label_w, 420)
    bar_h, gap, ggap = 18, 4, 12
    top = 58 if subtitle else 40
    legend_h = 24 if series_names and len(series_names) > 1 else 0
    top += legend_h
    x0, x1 = label_w, width - 190
    vals = [b[1] for g in groups for b in g[1] if b[1] is not None and b[1] > 0]
    if not vals:
        vals = [1.0]
    sc = _Scale(min(vals), max(vals + ([ref[0]] if ref else [])), log, x0, x1)
    y = top
    body = []
    for glabel, bars in groups:
        gh = len(bars) * (bar_h + gap) - gap
        body.append(_text(x0 - 8, y + gh / 2 + 4, glabel, 12, "end"))
        for si, v, ann in bars:
            color = PALETTE[si % len(PALETTE)]
            if v is None or v <= 0:
                body.append(_text(x0 + 4, y + bar_h - 5, ann or "n/a", 11, fill="#888"))
            else:
                w = max(sc(v) - x0, 1.0)
                body.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%d" fill="%s"/>'
                            % (x0, y, w, bar_h, color))
                body.append(_text(x0 + w + 5, y + bar_h - 5, ann, 11))
            y += bar_h + gap
        y += ggap - gap
    height = y + 40
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'viewBox="0 0 %d %d" font-family="%s">' % (width, height, width, height, FONT),
           '<rect width="100%" height="100%" fill="white"/>',
           _text(12, 22, title, 15, weight="bold")]
    if subtitle:
        out.append(_text(12, 40, subtitle, 11, fill="#555"))
    if legend_h:
        lx = 12
        for i, n in enumerate(series_names):
            if not n:
                continue
            out.append('<rect x="%d" y="%d" width="12" height="12" fill="%s"/>'
                       % (lx, top - legend_h - 4, PALETTE[i % len(PALETTE)]))
            out.append(_text(lx + 16, top - legend_h + 6, n, 11))
            lx += 30 + _tw(n, 11)
    for t in sc.ticks():
        x = sc(t)
        out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>'
                   % (x, top - 4, x, y))
        out.append(_text(x, y + 14, fmt(t), 10, "middle", fill="#555"))
    out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#888"/>' % (x0, top - 4, x0, y))
    if axis_label:
        out.append(_text((x0 + x1) / 2, y + 30, axis_label, 11, "middle", fill="#555"))
    out.extend(body)
    if ref:
        x = sc(ref[0])
        out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#c44e52" '
                   'stroke-dasharray="5,3" stroke-width="1.5"/>' % (x, top - 6, x, y))
        out.append(_text(x + 3, top - 8, ref[1], 10, fill="#c44e52"))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def line(title, xs, series, log=True, fmt=fmt_ns, subtitle="", x_label="",
         y_label="", ref=None, width=900, height=380):
    """xs: category labels; series: [(name, [y or None per x][, opts])], opts
    {"color": palette index, "dash": True} (same colour, dashed: a p99 line
    beside its p50)."""
    left, right, top, bottom = 80, 200, 50 if subtitle else 36, 50
    x0, x1 = left, width - right
    ya, yb = height - bottom, top
    vals = [v for ser in series for v in ser[1] if v is not None and v > 0]
    if ref:
        vals.append(ref[0])
    if not vals:
        vals = [1.0]
    lo, hi = min(vals), max(vals)
    sc = _Scale(lo, hi, log, ya, yb)
    n = len(xs)

    def X(i):
        return x0 + (x1 - x0) * (i + 0.5) / n
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'viewBox="0 0 %d %d" font-family="%s">' % (width, height, width, height, FONT),
           '<rect width="100%" height="100%" fill="white"/>',
           _text(12, 22, title, 15, weight="bold")]
    if subtitle:
        out.append(_text(12, 40, subtitle, 11, fill="#555"))
    for t in sc.ticks():
        y = sc(t)
        out.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>' % (x0, y, x1, y))
        out.append(_text(x0 - 6, y + 4, fmt(t), 10, "end", fill="#555"))
    for i, xl in enumerate(xs):
        out.append(_text(X(i), ya + 16, str(xl), 11, "middle", fill="#333"))
    out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#888"/>' % (x0, ya, x1, ya))
    out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#888"/>' % (x0, yb, x0, ya))
    if x_label:
        out.append(_text((x0 + x1) / 2, ya + 36, x_label, 11, "middle", fill="#555"))
    if y_label:
        out.append(_text(14, (ya + yb) / 2, y_label, 11, "middle", fill="#555",
                         extra=' transform="rotate(-90 14 %.1f)"' % ((ya + yb) / 2)))
    if ref:
        y = sc(ref[0])
        out.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#c44e52" '
                   'stroke-dasharray="5,3" stroke-width="1.5"/>' % (x0, y, x1, y))
        out.append(_text(x1 + 4, y + 4, ref[1], 10, fill="#c44e52"))
    ly = top + 6
    for si, ser in enumerate(series):
        name, ys = ser[0], ser[1]
        opts = ser[2] if len(ser) > 2 else {}
        color = PALETTE[opts.get("color", si) % len(PALETTE)]
        dash = ' stroke-dasharray="6,4"' if opts.get("dash") else ""
        pts = [(X(i), sc(v)) for i, v in enumerate(ys) if v is not None and v > 0]
        if len(pts) > 1:
            out.append('<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"/>'
                       % (color, dash, " ".join("%.1f,%.1f" % p for p in pts)))
        for (px, py) in pts:
            out.append('<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"/>' % (px, py, color))
        if dash:
            out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"%s/>'
                       % (x1 + 12, ly + 6, x1 + 28, ly + 6, color, dash))
        else:
            out.append('<rect x="%d" y="%d" width="12" height="12" fill="%s"/>' % (x1 + 16, ly, color))
        out.append(_text(x1 + 32, ly + 10, name, 11))
        ly += 18
    out.append("</svg>")
    return "\n".join(out) + "\n"
