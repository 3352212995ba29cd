"""Printing and saving benchmark results (measure.py makes them)."""

from __future__ import annotations

import json
import textwrap

#: What the roofline is, printed above the column legend.
ROOFLINE_NOTE = (
    "roofline: a trivial kernel with the same memory traffic as the kernel (the same arrays\n"
    "  read, updated in place and written, one add per element), compiled for the same\n"
    "  instruction set and run on the same threads by nnfast's C++: the rate this machine\n"
    "  attains for that traffic. It is measured, not a bound: where the arrays fit in cache,\n"
    "  memory does not bound either kernel, call overhead and instruction scheduling decide,\n"
    "  and a kernel can beat it (over 100%).")

LEGEND_WIDTH = 92  # characters a legend line wraps at

#: Every column the table can show, in order, with its legend entry (None: self-evident).
COLUMNS = {
    "kernel": None,
    "shape": "elements; rows x classes for the losses over rows; tensors and total elements "
             "for a list",
    "dtype": None,
    "nnfast ms": "median time of one nnfast call",
    "GB/s": "nnfast's rate over the bytes the kernel must move (each array read once, "
            "written once)",
    "roofline GB/s": "the roofline kernel's rate",
    "% roofline": "roofline time / nnfast time",
    "x numpy": "NumPy's time / nnfast's (nnfast.reference, the same formulas in NumPy)",
    "x torch": "PyTorch's time / nnfast's, on the path in 'torch path'",
    "torch path": "the PyTorch path compared: fused or foreach (torch.optim), lion-pytorch "
                  "(its Lion), aten out= (the op writing into a preallocated output), "
                  "autograd (forward and backward), vector_norm",
    "torch % roofline": "roofline time / PyTorch's time",
    "x torch default": "time of torch.optim's default CPU path (its per-tensor for-loop) / "
                       "nnfast's",
    "x deepspeed": "DeepSpeed's time / nnfast's (DeepSpeedCPUAdam, adamw_mode for AdamW; "
                   "DeepSpeedCPUAdagrad; DeepSpeedCPULion)",
    "x fp32": "16-bit rows: nnfast's time on float32 arrays of the same values / its time in "
              "the row's layout",
    "x torch, torch scaler": "AMP rows: PyTorch's time / nnfast's with torch.amp.GradScaler "
                             "(nnfast ms and x torch are with nnfast.torch.GradScaler)",
}

#: Columns shown only when some measurement has the implementation they need.
_NEEDS = {"x torch": "torch", "torch path": "torch", "torch % roofline": "torch",
          "x torch default": "torch_default", "x deepspeed": "deepspeed",
          "x fp32": "nnfast_fp32", "x torch, torch scaler": "nnfast_torch_scaler"}


def _ratio(x):
    return "-" if x is None else f"{x:.2f}x"


def _cells(m):
    """{column: text} of one measurement (columns it has no value for are left out)."""
    cells = {"kernel": m.kernel, "shape": m.shape, "dtype": m.dtype,
             "nnfast ms": f"{m.median('nnfast') * 1e3:.4g}",
             "GB/s": f"{m.gigabytes_per_second('nnfast'):.1f}",
             "roofline GB/s": f"{m.gigabytes_per_second('roofline'):.1f}",
             "% roofline": f"{100 * m.roofline_fraction():.0f}%",
             "x numpy": _ratio(m.speedup("numpy"))}
    if "torch" in m.seconds:
        cells.update({"x torch": _ratio(m.speedup("torch")),
                      "torch path": m.paths.get("torch", "-"),
                      "torch % roofline": f"{100 * m.roofline_fraction('torch'):.0f}%"})
    if "torch_default" in m.seconds:
        cells["x torch default"] = _ratio(m.speedup("torch_default"))
    if "deepspeed" in m.seconds:
        cells["x deepspeed"] = _ratio(m.speedup("deepspeed"))
    if "nnfast_fp32" in m.seconds:
        cells["x fp32"] = _ratio(m.speedup("nnfast_fp32"))
    if "nnfast_torch_scaler" in m.seconds:
        cells["x torch, torch scaler"] = _ratio(m.speedup("torch", "nnfast_torch_scaler"))
    return cells


def shown_columns(measurements):
    """The columns of COLUMNS the table shows for these measurements."""
    return [c for c in COLUMNS
            if c not in _NEEDS or any(_NEEDS[c] in m.seconds for m in measurements)]


def table(measurements):
    """The results as an aligned text table, one row per measurement."""
    header = shown_columns(measurements)
    body = [[_cells(m).get(c, "-") for c in header] for m in measurements]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]

    def line(cells):
        return "  ".join(c.ljust(w) if i <= 1 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, body)])


def legend(measurements):
    """What the roofline is and what each shown column means (only columns shown)."""
    entries = [(c, COLUMNS[c]) for c in shown_columns(measurements) if COLUMNS[c]]
    width = max(len(c) for c, _ in entries)
    lines = [ROOFLINE_NOTE, "columns (medians of interleaved samples):"]
    for column, text in entries:
        lines += textwrap.wrap(text, LEGEND_WIDTH, initial_indent=f"  {column.ljust(width)}  ",
                               subsequent_indent=" " * (width + 4))
    return "\n".join(lines)


def overhead_line(medians):
    """One line comparing the median time of a 1,000-element adam_step with np.add's."""
    adam, add = medians["adam_step"], medians["np.add"]
    return (f"call overhead: adam_step on 1,000 float32 = {adam * 1e6:.2f} us, "
            f"np.add(a, b, out=c) on 1,000 = {add * 1e6:.2f} us: {adam / add:.2f}x")


def save_json(path, machine, measurements, overhead):
    """Writes the machine description, every measurement (raw per-call seconds, shape,
    peer paths) and the call-overhead samples to path as JSON."""
    with open(path, "w") as f:
        json.dump({"machine": machine,
                   "results": [vars(m) for m in measurements],
                   "call_overhead_seconds": overhead}, f, indent=1)


#: Bars above this % of roofline are cut at it and labelled with their value, so that
#: one cache-resident outlier does not flatten the rest.
PLOT_CLIP_PERCENT = 200
PLOT_BAR_INCHES = 0.09  # the height of one bar
_FAMILIES = ("optimizers", "activations", "losses")
_PLOT_IMPLS = ("nnfast", "torch", "deepspeed", "numpy")


def save_plot(path, measurements, title):
    """Horizontal bars of % of roofline, one panel per kernel family, nnfast and its
    peers side by side in each row; `title` heads the figure (machine and versions).
    Needs matplotlib (its importability is checked before the run)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    families = [f for f in _FAMILIES if any(m.family == f for m in measurements)]
    groups = {f: [m for m in measurements if m.family == f] for f in families}
    impls = [i for i in _PLOT_IMPLS if any(i in m.seconds for m in measurements)]
    rows = [len(groups[f]) for f in families]
    inches_per_row = PLOT_BAR_INCHES * len(impls) + 0.06
    fig, axes = plt.subplots(len(families), 1, squeeze=False, sharex=True,
                             figsize=(10, 1.2 + 0.5 * len(families) + inches_per_row * sum(rows)),
                             gridspec_kw={"height_ratios": rows}, constrained_layout=True)
    height = 0.8 / len(impls)
    colors = {"nnfast": "tab:blue", "torch": "tab:orange", "deepspeed": "tab:green",
              "numpy": "tab:gray"}
    for ax, family in zip(axes[:, 0], families):
        group = groups[family]
        for k, impl in enumerate(impls):
            ys = [i + (k - (len(impls) - 1) / 2) * height for i in range(len(group))]
            values = [100 * m.roofline_fraction(impl) if impl in m.seconds else 0 for m in group]
            ax.barh(ys, [min(v, PLOT_CLIP_PERCENT) for v in values], height, color=colors[impl],
                    label=impl)
            for y, v in zip(ys, values):
                if v > PLOT_CLIP_PERCENT:
                    ax.text(PLOT_CLIP_PERCENT, y, f" {v:.0f}%", va="center", fontsize=7)
        ax.set_yticks(range(len(group)))
        ax.set_yticklabels([f"{m.kernel}  {m.shape}" for m in group], fontsize=8)
        ax.invert_yaxis()
        ax.axvline(100, color="black", linewidth=0.8)
        ax.set_title(family, fontsize=10, loc="left")
        ax.grid(axis="x", alpha=0.3)
    axes[0, 0].legend(loc="lower right", fontsize=8)
    axes[-1, 0].set_xlim(0, PLOT_CLIP_PERCENT * 1.12)
    axes[-1, 0].set_xlabel(f"% of roofline (the same-traffic trivial kernel; bars cut at "
                           f"{PLOT_CLIP_PERCENT}%)")
    fig.suptitle(title, fontsize=9)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _duration(seconds):
    seconds = round(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class Progress:
    """Progress of the run on `stream`: "[i/n] label, eta ...", rewritten in place
    (carriage returns) on a terminal, one plain line per step otherwise (a log file,
    a pipe). The ETA assumes time in proportion to each step's weight (its element
    count, at least 1e6: a sample of a small call still lasts 2 ms)."""

    MIN_WEIGHT = 1e6

    def __init__(self, stream, weights, clock=None):
        import time

        self.stream = stream
        self.weights = [max(float(w), self.MIN_WEIGHT) for w in weights]
        self.clock = clock or time.perf_counter
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.index = 0  # steps started
        self.started = None  # clock at the first step
        self.width = 0  # of the line on a terminal, to blank it

    def _emit(self, text):
        if self.tty:
            print("\r" + text.ljust(self.width), end="", file=self.stream, flush=True)
            self.width = len(text)
        else:
            print(text, file=self.stream, flush=True)

    def note(self, text):
        """A message outside the steps (kept on its own line on a terminal too)."""
        if self.tty and self.width:
            print("\r" + " " * self.width + "\r", end="", file=self.stream)
            self.width = 0
        print(text, file=self.stream, flush=True)

    def eta(self):
        """Seconds left, estimated from the steps done; None before any is done."""
        if self.index <= 1:
            return None
        done = sum(self.weights[:self.index - 1])
        left = sum(self.weights[self.index - 1:])
        return (self.clock() - self.started) / done * left

    def start(self, label):
        """Announces the next step."""
        if self.started is None:
            self.started = self.clock()
        self.index += 1
        eta = self.eta()
        self._emit(f"[{self.index}/{len(self.weights)}] {label}, eta "
                   + ("-" if eta is None else _duration(eta)))

    def finish(self):
        """Ends the progress display (blanks the line on a terminal)."""
        if self.tty and self.width:
            print("\r" + " " * self.width + "\r", end="", file=self.stream, flush=True)
            self.width = 0
