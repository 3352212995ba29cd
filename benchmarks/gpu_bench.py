"""nnfast's CUDA kernels against the GPU's copy bandwidth and PyTorch, in one run.

Run by benchmarks/gpu_check.sh on a machine with an NVIDIA GPU, PyTorch and nnfast built
with CUDA. Every time is the median of CUDA-event timings after warm-up; inputs are larger
than L2 (50-60 MB on an H100/H200) unless the case is about many small tensors. Each
kernel's bandwidth counts the bytes it must move (every input read once, every
output written once), and is compared with a device-to-device copy measured in the same run
(bytes read plus bytes written): a 1 GiB copy, or for the 16-bit optimizer rows a copy that
moves the same bytes as the step.

Prints one table; --json FILE writes every timing.
"""

from __future__ import annotations

import argparse
import json
import statistics

import torch
import torch.nn.functional as F

import nnfast

WARMUP, REPEAT = 3, 20


def median_ms(fn, setup=None, repeat=REPEAT):
    """Median milliseconds of fn() over `repeat` runs, each bracketed by CUDA events."""
    for _ in range(WARMUP):
        if setup:
            setup()
        fn()
    times = []
    for _ in range(repeat):
        if setup:
            setup()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times), times


def copy_bandwidth():
    """GB/s of a device-to-device copy of 1 GiB (read + write counted)."""
    src = torch.randn(2**28, device="cuda")
    dst = torch.empty_like(src)
    ms, _ = median_ms(lambda: dst.copy_(src))
    return 2 * src.numel() * 4 / ms / 1e6


def copy_bandwidth_of(nbytes):
    """GB/s of a device-to-device copy that moves nbytes in all (half read, half written)."""
    src = torch.empty(nbytes // 2, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    ms, _ = median_ms(lambda: dst.copy_(src))
    return 2 * src.numel() / ms / 1e6


def adam_master_case(n, label):
    """The master-weights step: bfloat16 params and grads, float32 masters and moments. The
    masters are read and written, the params only written (the masters rounded to nearest):
    28 bytes an element. No PyTorch peer (its fused Adam takes grads of the params' dtype)."""
    master = torch.randn(n, device="cuda")
    params = [master.to(torch.bfloat16)]
    grads = [(torch.randn(n, device="cuda") * 1e-2).to(torch.bfloat16)]
    m = [torch.zeros(n, device="cuda")]
    v = [torch.zeros(n, device="cuda")]
    step = [0]

    def run_nnfast():
        step[0] += 1
        nnfast.adam_step(params, grads, m, v, step=step[0], lr=1e-3, weight_decay=0.01,
                         master_params=[master])

    nn_ms, nn_times = median_ms(run_nnfast)
    return dict(kernel=label, elements=n, bytes=28 * n,
                nnfast_ms=nn_ms, torch_ms=None, nnfast_times=nn_times, torch_times=None,
                copy_gbs=copy_bandwidth_of(28 * n))


def adam_case(sizes, label, fused_peer=True, decoupled=False, dtype=torch.float32):
    """nnfast.adam_step over tensors of `sizes` vs torch.optim.Adam(W)(fused=True), with
    params, grads and both moments of `dtype` (bfloat16: computed in float32 by both; torch's
    states take the params' dtype): 7 element sizes an element (p, m, v read and written, g
    read). A 16-bit row is compared with a copy of its own bytes."""
    params = [torch.randn(n, device="cuda").to(dtype) for n in sizes]
    grads = [(torch.randn(n, device="cuda") * 1e-2).to(dtype) for n in sizes]
    m = [torch.zeros(n, device="cuda", dtype=dtype) for n in sizes]
    v = [torch.zeros(n, device="cuda", dtype=dtype) for n in sizes]
    hp = dict(lr=1e-3, weight_decay=0.01, decoupled_weight_decay=decoupled)
    step = [0]

    def run_nnfast():
        step[0] += 1
        nnfast.adam_step(params, grads, m, v, step=step[0], **hp)

    nn_ms, nn_times = median_ms(run_nnfast)
    torch_params = [torch.nn.Parameter(p.clone()) for p in params]
    for tp, g in zip(torch_params, grads):
        tp.grad = g
    cls = torch.optim.AdamW if decoupled else torch.optim.Adam
    opt = cls(torch_params, lr=1e-3, weight_decay=0.01, fused=fused_peer)
    torch_ms, torch_times = median_ms(opt.step)
    total = sum(sizes)
    moved = 7 * params[0].element_size() * total
    row = dict(kernel=label, elements=total, bytes=moved, nnfast_ms=nn_ms,
               torch_ms=torch_ms, nnfast_times=nn_times, torch_times=torch_times)
    if dtype != torch.float32:
        row["copy_gbs"] = copy_bandwidth_of(moved)
    return row


def lion_case(n, label):
    """nnfast.lion_step on float32 (20 bytes an element: p and m read and written, g read)
    against the copy bandwidth, and DeepSpeed's FusedLion where it imports (its
    multi-tensor CUDA Lion; the torch column holds it, else lion-pytorch's Lion, else
    nothing)."""
    p = torch.randn(n, device="cuda")
    g = torch.randn(n, device="cuda") * 1e-2
    m = torch.zeros(n, device="cuda")
    nn_ms, nn_times = median_ms(lambda: nnfast.lion_step(p, g, m, lr=1e-4, weight_decay=0.01))
    peer = torch.nn.Parameter(p.clone())
    peer.grad = g
    try:
        from deepspeed.ops.lion import FusedLion
        opt, name = FusedLion([peer], lr=1e-4, weight_decay=0.01), "FusedLion"
    except Exception:  # (not installed, or its CUDA op does not build here)
        try:
            from lion_pytorch import Lion
            opt, name = Lion([peer], lr=1e-4, weight_decay=0.01), "lion-pytorch"
        except ImportError:
            opt, name = None, None
    torch_ms, torch_times = median_ms(opt.step) if opt else (None, None)
    return dict(kernel=f"{label} (vs {name})" if name else label, elements=n, bytes=20 * n,
                nnfast_ms=nn_ms, torch_ms=torch_ms, nnfast_times=nn_times,
                torch_times=torch_times)


def adafactor_case(side, label):
    """nnfast.adafactor_step on a float32 side x side matrix (three passes, 24 bytes an
    element: p and g read for the sums, g for the sum of u^2, p read and written with g read
    for the update) against torch.optim.Adafactor (its foreach path) on the same device."""
    p = torch.randn(side, side, device="cuda")
    g = torch.randn(side, side, device="cuda")
    rows, cols = torch.zeros(side, 1, device="cuda"), torch.zeros(1, side, device="cuda")
    nn_ms, nn_times = median_ms(lambda: nnfast.adafactor_step([p], [g], [rows], [cols], [None],
                                                              step=10))
    peer = torch.nn.Parameter(p.clone())
    peer.grad = g
    opt = torch.optim.Adafactor([peer], foreach=True)
    torch_ms, torch_times = median_ms(opt.step)
    return dict(kernel=label, elements=side * side, bytes=24 * side * side, nnfast_ms=nn_ms,
                torch_ms=torch_ms, nnfast_times=nn_times, torch_times=torch_times)


def amp_case(n, label):
    """The optimizer phase of a mixed-precision step, ``scaler.step(optimizer);
    scaler.update()``, float32 Adam with clipping at norm 1.0: nnfast.torch.Adam with
    max_grad_norm and nnfast.torch.GradScaler (a norm pass, then the update with the grads
    written back unscaled: 36 bytes an element) against torch's scaler.unscale_ +
    clip_grad_norm_(foreach=True) + fused step. Scale 2 (each call unscales the grads in
    place; 65536 would take them to zero in a few calls). nnfast.torch reads the norm and
    the inf flag on the host: its time includes those syncs."""
    import nnfast.torch

    def build(ours):
        p = torch.nn.Parameter(torch.randn(n, device="cuda"))
        p.grad = torch.randn(n, device="cuda")
        scaler = (nnfast.torch.GradScaler if ours else torch.amp.GradScaler)(
            "cuda", init_scale=2.0, growth_interval=1 << 30)
        scaler.scale(torch.ones((), device="cuda"))
        opt = (nnfast.torch.Adam([p], max_grad_norm=1.0) if ours
               else torch.optim.Adam([p], fused=True))

        def step():
            if not ours:
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_([p], 1.0, foreach=True)
            scaler.step(opt)
            scaler.update()
        return step
    nn_ms, nn_times = median_ms(build(True))
    torch_ms, torch_times = median_ms(build(False))
    return dict(kernel=label, elements=n, bytes=36 * n, nnfast_ms=nn_ms, torch_ms=torch_ms,
                nnfast_times=nn_times, torch_times=torch_times)


def dtype_label(dtype):
    """'' for float32, else the dtype's short name after a space (' bf16')."""
    return {torch.float32: "", torch.bfloat16: " bf16", torch.float16: " fp16"}[dtype]


def softmax_case(rows, classes, dtype=torch.float32):
    """nnfast.softmax_cross_entropy (class ids, gradient into grad_out) vs F.cross_entropy and
    its backward, logits of `dtype` (16-bit: computed in float32 by both): the logits read
    once and the gradient written once, 2 element sizes a logit."""
    x = torch.randn(rows, classes, device="cuda").to(dtype)
    labels = torch.randint(0, classes, (rows,), device="cuda")
    grad = torch.empty_like(x)
    nn_ms, nn_times = median_ms(lambda: nnfast.softmax_cross_entropy(x, labels, grad_out=grad))
    xt = x.clone().requires_grad_(True)

    def torch_step():
        xt.grad = None
        F.cross_entropy(xt, labels).backward()

    torch_ms, torch_times = median_ms(torch_step)
    return dict(kernel=f"softmax_cross_entropy{dtype_label(dtype)} {rows}x{classes}",
                elements=rows * classes, bytes=2 * x.element_size() * rows * classes,
                nnfast_ms=nn_ms, torch_ms=torch_ms,
                nnfast_times=nn_times, torch_times=torch_times)


def activation_case(name, n, dtype=torch.float32):
    """The forward (x read, out written) and backward (a and dy read, out written) of one
    activation on `dtype` (16-bit: computed in float32 by both) vs PyTorch's out= kernels."""
    x = (torch.randn(n, device="cuda") * 3).to(dtype)
    out = torch.empty_like(x)
    forward = getattr(nnfast, name)
    nn_ms, nn_times = median_ms(lambda: forward(x, out=out))
    peer = {"sigmoid": lambda: torch.sigmoid(x, out=out), "tanh": lambda: torch.tanh(x, out=out),
            "relu": lambda: torch.clamp_min(x, 0, out=out),  # relu's own op has no out= binding
            "leaky_relu": lambda: torch.ops.aten.leaky_relu.out(x, 0.01, out=out)}[name]
    torch_ms, torch_times = median_ms(peer)
    size = x.element_size()
    rows = [dict(kernel=f"{name}{dtype_label(dtype)}", elements=n, bytes=2 * size * n,
                 nnfast_ms=nn_ms, torch_ms=torch_ms,
                 nnfast_times=nn_times, torch_times=torch_times)]
    dy = torch.randn_like(x)
    a = forward(x) if name in ("sigmoid", "tanh") else x
    backward = getattr(nnfast, f"{name}_backward")
    nn_ms, nn_times = median_ms(lambda: backward(a, dy, out=out))
    torch_backward = {
        "sigmoid": lambda: torch.ops.aten.sigmoid_backward.grad_input(dy, a, grad_input=out),
        "tanh": lambda: torch.ops.aten.tanh_backward.grad_input(dy, a, grad_input=out),
        "relu": lambda: torch.ops.aten.threshold_backward.grad_input(dy, a, 0, grad_input=out),
        "leaky_relu": lambda: torch.ops.aten.leaky_relu_backward.grad_input(
            dy, a, 0.01, False, grad_input=out),
    }[name]
    torch_ms, torch_times = median_ms(torch_backward)
    rows.append(dict(kernel=f"{name}_backward{dtype_label(dtype)}", elements=n, bytes=3 * size * n,
                     nnfast_ms=nn_ms, torch_ms=torch_ms, nnfast_times=nn_times,
                     torch_times=torch_times))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write every timing to this file")
    args = parser.parse_args()
    torch.manual_seed(0)
    props = torch.cuda.get_device_properties(0)
    copy_gbs = copy_bandwidth()
    rows = [adam_case([100_000_000], "adam 1e8"),
            adam_case([100_000_000], "adamw 1e8", decoupled=True),
            adam_case([100_000_000], "adam bf16 1e8", dtype=torch.bfloat16),
            adam_master_case(100_000_000, "adam bf16, fp32 master 1e8"),
            amp_case(100_000_000, "adam + GradScaler + clip 1e8"),
            lion_case(100_000_000, "lion 1e8"),
            adafactor_case(10_000, "adafactor 10000 x 10000")]
    generator = torch.Generator().manual_seed(1)
    sizes = torch.randint(10_000, 100_001, (1000,), generator=generator).tolist()
    rows.append(adam_case(sizes, "adam 1000 tensors"))
    rows.append(adam_case([sum(sizes)], "adam same total, 1 tensor"))
    rows.append(softmax_case(8192, 32000))
    rows.append(softmax_case(8192, 32000, torch.bfloat16))
    for name in ("sigmoid", "tanh", "relu", "leaky_relu"):
        rows.extend(activation_case(name, 100_000_000))
    rows.extend(activation_case("relu", 100_000_000, torch.bfloat16))
    print(f"\n{props.name}, {props.multi_processor_count} SMs, nnfast {nnfast.__version__} "
          f"({nnfast.info()['commit'][:8]}), torch {torch.__version__}; "
          f"copy bandwidth {copy_gbs:.0f} GB/s (read + write); medians of {REPEAT} CUDA-event timings")
    header = f"{'kernel':38} {'elements':>10} {'nnfast ms':>10} {'GB/s':>7} {'% copy':>7} {'torch ms':>9} {'x torch':>8}"
    print(header)
    print("-" * len(header))
    for r in rows:
        gbs = r["bytes"] / r["nnfast_ms"] / 1e6
        r["gbs"], r["percent_of_copy"] = gbs, 100 * gbs / r.get("copy_gbs", copy_gbs)
        if r["torch_ms"] is None:
            r["speedup_over_torch"] = None
            peer = f"{'-':>9} {'-':>8}"
        else:
            r["speedup_over_torch"] = r["torch_ms"] / r["nnfast_ms"]
            peer = f"{r['torch_ms']:>9.4f} {r['speedup_over_torch']:>7.2f}x"
        print(f"{r['kernel']:38} {r['elements']:>10.3g} {r['nnfast_ms']:>10.4f} {gbs:>7.0f} "
              f"{r['percent_of_copy']:>6.0f}% {peer}")
    single = next(r for r in rows if r["kernel"] == "adam same total, 1 tensor")
    many = next(r for r in rows if r["kernel"] == "adam 1000 tensors")
    print(f"1000 tensors at {100 * single['nnfast_ms'] / many['nnfast_ms']:.0f}% of the "
          "single-tensor rate")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": props.name, "copy_gbs": copy_gbs, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
