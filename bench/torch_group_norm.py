#!/usr/bin/env python3
"""PyTorch's GroupNorm on the shapes of bench/cuda_group_norm.cpp, for comparison.

Times torch.nn.functional.group_norm (G = 32, affine, float32) forward and backward on the GPU,
the same way as the gndet benchmark: CUDA events, median of 20 runs after 3 warm-ups, bytes
counted as each input read once and each output written once, and a device-to-device copy of
2^26 floats measured in the same run as the bandwidth reference.

    python3 bench/torch_group_norm.py [--ours OUTPUT_OF_cuda_group_norm]

With --ours, the RESULT lines of build-*/bench/cuda_group_norm's output give gndet's times and
the script prints torch_ms / gndet_ms per shape and pass (> 1: gndet is faster). PyTorch is not a
dependency of gndet: without it (or without a GPU) the script says so and exits 0.
"""
import argparse
import re
import sys

SHAPES = [(2, 256, 200, 336), (2, 64, 400, 672), (512, 256, 7, 7), (2, 2048, 25, 42)]
GROUPS = 32


def median_ms(torch, fn, warmup=3, reps=20):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        start = torch.cuda.Event(enable_timing=True)
        stop = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    times.sort()
    return times[len(times) // 2]


def read_ours(path):
    ours = {}
    with open(path) as f:
        for line in f:
            m = re.match(r"RESULT group_norm (\d+) (\d+) (\d+) (\d+) (forward|backward) ([0-9.eE+-]+)", line)
            if m:
                key = tuple(int(v) for v in m.group(1, 2, 3, 4)) + (m.group(5),)
                ours[key] = float(m.group(6))
    return ours


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ours", help="output of gndet's cuda_group_norm benchmark (its RESULT lines)")
    args = parser.parse_args()
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        print("torch_group_norm: PyTorch is not installed here; nothing to compare")
        return 0
    if not torch.cuda.is_available():
        print("torch_group_norm: PyTorch sees no CUDA GPU; nothing to compare")
        return 0
    ours = read_ours(args.ours) if args.ours else {}
    dev = torch.device("cuda")
    props = torch.cuda.get_device_properties(dev)
    print(f"PyTorch {torch.__version__} GroupNorm benchmark (G = {GROUPS}, float32, median of 20 runs after 3 warm-ups)")
    print(f"device: {props.name}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}\n")

    n_copy = 1 << 26
    src = torch.rand(n_copy, device=dev)
    dst = torch.empty_like(src)
    copy_ms = median_ms(torch, lambda: dst.copy_(src))
    copy_gbps = 2 * n_copy * 4 / (copy_ms * 1e-3) / 1e9
    print(f"reference: device-to-device copy of 2^26 floats: {copy_ms:.3f} ms, {copy_gbps:.1f} GB/s\n")
    print(f"{'shape (N,C,H,W)':<20} {'pass':<9} {'median ms':>10} {'GB/s':>10} {'vs copy':>8} {'torch/gndet':>12}")

    for shape in SHAPES:
        n, c, h, w = shape
        numel = n * c * h * w
        gen = torch.Generator(device=dev).manual_seed(1)
        x = torch.randn(shape, device=dev, generator=gen) + 0.5
        dy = torch.randn(shape, device=dev, generator=gen)
        weight = torch.rand(c, device=dev, generator=gen) + 0.5
        bias = torch.randn(c, device=dev, generator=gen)
        with torch.no_grad():
            fwd_ms = median_ms(torch, lambda: F.group_norm(x, GROUPS, weight, bias, 1e-5))
        xr = x.clone().requires_grad_(True)
        wr = weight.clone().requires_grad_(True)
        br = bias.clone().requires_grad_(True)
        y = F.group_norm(xr, GROUPS, wr, br, 1e-5)
        # Only the backward kernels: the graph is kept and reused.
        bwd_ms = median_ms(torch, lambda: torch.autograd.grad(y, (xr, wr, br), dy, retain_graph=True))
        for name, ms, passes in (("forward", fwd_ms, 2), ("backward", bwd_ms, 3)):
            gbps = passes * numel * 4 / (ms * 1e-3) / 1e9
            ratio = ""
            key = shape + (name,)
            if key in ours:
                ratio = f"{ms / ours[key]:12.2f}"
            print(f"{str(shape).replace(' ', ''):<20} {name:<9} {ms:10.3f} {gbps:10.1f} {gbps / copy_gbps:8.2f} {ratio:>12}")
        del xr, wr, br, y
    if ours:
        print("\ntorch/gndet > 1 means gndet's kernel is faster (target: every shape, both passes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
