"""Printing and saving benchmark results (measure.py makes them)."""

from __future__ import annotations

import json

HEADER = ("kernel", "elements", "dtype", "nnfast ms", "GB/s", "roofline GB/s", "% roofline",
          "x numpy", "x torch", "torch % roofline")
#: Shown only when a case measured torch's default path beside its fastest (adam_gpt2small).
DEFAULT_COLUMN = "x torch default"


def _ratio(x):
    return "-" if x is None else f"{x:.2f}x"


def _row(m, with_default):
    torch_fraction = (f"{100 * m.roofline_fraction('torch'):.0f}%" if "torch" in m.seconds
                      else "-")
    row = (m.kernel, f"{m.elements:.3g}", m.dtype, f"{m.median('nnfast') * 1e3:.4g}",
           f"{m.gigabytes_per_second('nnfast'):.1f}", f"{m.gigabytes_per_second('roofline'):.1f}",
           f"{100 * m.roofline_fraction():.0f}%", _ratio(m.speedup("numpy")),
           _ratio(m.speedup("torch")), torch_fraction)
    return row + (_ratio(m.speedup("torch_default")),) if with_default else row


def table(measurements):
    with_default = any("torch_default" in m.seconds for m in measurements)
    header = HEADER + (DEFAULT_COLUMN,) if with_default else HEADER
    body = [_row(m, with_default) for m in measurements]
    widths = [max(len(str(r[i])) for r in [header, *body]) for i in range(len(header))]

    def line(cells):
        return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, body)])


def overhead_line(medians):
    adam, add = medians["adam_step"], medians["np.add"]
    return (f"call overhead: adam_step on 1,000 float32 = {adam * 1e6:.2f} us, "
            f"np.add(a, b, out=c) on 1,000 = {add * 1e6:.2f} us: {adam / add:.2f}x")


def save_json(path, machine, measurements, overhead):
    with open(path, "w") as f:
        json.dump({"machine": machine,
                   "results": [vars(m) for m in measurements],
                   "call_overhead_seconds": overhead}, f, indent=1)


def save_plot(path, measurements):
    """Bars of % of roofline per kernel, nnfast and its peers side by side."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("--plot needs matplotlib: pip install \"nnfast[plot]\"") from None
    impls = [i for i in ("nnfast", "torch", "numpy") if any(i in m.seconds for m in measurements)]
    labels = [f"{m.kernel}\n{m.elements:.0e} {m.dtype}" for m in measurements]
    width = 0.8 / len(impls)
    fig, ax = plt.subplots(figsize=(max(8, 0.55 * len(measurements)), 5))
    for k, impl in enumerate(impls):
        values = [100 * m.roofline_fraction(impl) if impl in m.seconds else 0 for m in measurements]
        ax.bar([i + k * width for i in range(len(measurements))], values, width, label=impl)
    ax.axhline(100, color="black", linewidth=0.8)
    ax.set_xticks([i + width * (len(impls) - 1) / 2 for i in range(len(measurements))])
    ax.set_xticklabels(labels, rotation=90, fontsize=7)
    ax.set_ylabel("% of roofline (same-traffic kernel)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
