"""Printing of benchmark results."""

from __future__ import annotations

HEADER = ("kernel", "elements", "dtype", "nnfast ms", "numpy ms", "nnfast Gelem/s",
          "nnfast GB/s", "speedup")


def rows(measurements):
    for m in measurements:
        ms = m.median("nnfast") * 1e3
        yield (m.kernel, f"{m.elements:.3g}", m.dtype, f"{ms:.4g}", f"{m.median('numpy') * 1e3:.4g}",
               f"{m.elements / m.median('nnfast') / 1e9:.3g}", f"{m.gigabytes_per_second('nnfast'):.3g}",
               f"{m.speedup():.1f}x")


def table(measurements):
    body = list(rows(measurements))
    widths = [max(len(str(r[i])) for r in [HEADER, *body]) for i in range(len(HEADER))]
    def line(r):
        return "  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
    return "\n".join([line(HEADER), line(["-" * w for w in widths]), *map(line, body)])
