#!/usr/bin/env python3
"""torchvision's Mask R-CNN with GroupNorm, timed like bench/model_iteration.cpp.

The model mirrors mask-rcnn_r50_fpn_gn-all: ResNet-50 with GroupNorm(32) (stem and layer1 frozen,
as frozen_stages 1), FPN with GroupNorm(32), RPN head without norm, a 4conv1fc box head and a
4conv mask head with GroupNorm(32), 81 classes; RPN 2000 pre-NMS / 1000 post-NMS proposals,
256 sampled anchors, 512 sampled RoIs. One training iteration (forward, backward, SGD step) on
two random 800x1333 images with 3 to 6 random boxes and masks each; the median of --iters timed
iterations after --warmup, and torch.cuda.max_memory_allocated. TF32 on for convolutions and
matrix products, like gndet's default. --mode infer times the inference of the first image under
torch.no_grad() instead (RPN 1000 / 1000 proposals, score threshold 0.05, 100 detections, as the
gndet config's test_cfg; with random weights no score reaches 0.05, so the mask head has no work).

    python3 bench/torchvision_maskrcnn_gn.py [--mode train|infer] [--device cuda] [--iters 10] [--warmup 3]
                                             [--threads N] [--ours FILE]

With --ours, the RESULT line of gndet's model_iteration output (same device kind and mode) gives
the ratio torch_s / gndet_s (> 1: gndet is faster). Without torch + torchvision the script says so
and exits 0: PyTorch is only a reference, never a dependency of gndet.
"""
import argparse
import functools
import re
import statistics
import sys
import time


def build_model(torch, torchvision, nn):
    from torchvision.models.detection import MaskRCNN
    from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
    from torchvision.models.detection.faster_rcnn import FastRCNNConvFCHead, FastRCNNPredictor
    from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor

    gn = functools.partial(nn.GroupNorm, 32)
    resnet = torchvision.models.resnet50(weights=None, norm_layer=gn)
    backbone = _resnet_fpn_extractor(resnet, trainable_layers=3, norm_layer=gn)  # layer2-4 train
    box_head = FastRCNNConvFCHead((256, 7, 7), [256, 256, 256, 256], [1024], norm_layer=gn)
    mask_head = MaskRCNNHeads(256, [256, 256, 256, 256], 1, norm_layer=gn)
    return MaskRCNN(
        backbone,
        num_classes=None,
        min_size=800,
        max_size=1333,
        rpn_pre_nms_top_n_train=2000,
        rpn_post_nms_top_n_train=1000,
        rpn_batch_size_per_image=256,
        rpn_pre_nms_top_n_test=1000,
        rpn_post_nms_top_n_test=1000,
        box_score_thresh=0.05,
        box_detections_per_img=100,
        box_head=box_head,
        box_predictor=FastRCNNPredictor(1024, 81),
        box_batch_size_per_image=512,
        mask_head=mask_head,
        mask_predictor=MaskRCNNPredictor(256, 256, 81),
    )


def make_inputs(torch, device):
    gen = torch.Generator().manual_seed(2024)
    h, w = 800, 1333
    images, targets = [], []
    for _ in range(2):
        images.append(torch.rand(3, h, w, generator=gen).to(device))
        g = int(3 + torch.randint(0, 4, (1,), generator=gen))
        boxes, masks = [], torch.zeros(g, h, w, dtype=torch.uint8)
        for k in range(g):
            bw = 40 + 400 * float(torch.rand(1, generator=gen))
            bh = 40 + 300 * float(torch.rand(1, generator=gen))
            x = (w - bw - 1) * float(torch.rand(1, generator=gen))
            y = (h - bh - 1) * float(torch.rand(1, generator=gen))
            boxes.append([x, y, x + bw, y + bh])
            masks[k, int(y) + 1 : int(y + bh), int(x) + 1 : int(x + bw)] = 1
        targets.append({
            "boxes": torch.tensor(boxes, dtype=torch.float32, device=device),
            "labels": torch.randint(1, 81, (g,), generator=gen).to(device),
            "masks": masks.to(device),
        })
    return images, targets


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["train", "infer"], default="train")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: PyTorch's default)")
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--ours", help="output of gndet's model_iteration benchmark (its RESULT line)")
    args = parser.parse_args()
    try:
        import torch
        import torch.nn as nn
        import torchvision
    except ImportError:
        print("torchvision_maskrcnn_gn: torch and torchvision are not both installed; nothing to compare")
        return 0
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("torchvision_maskrcnn_gn: PyTorch sees no CUDA GPU; nothing to compare")
        return 0
    device = torch.device(args.device)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(0)
    train = args.mode == "train"
    model = build_model(torch, torchvision, nn).to(device)
    model.train(train)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=0.02 * 0.001, momentum=0.9, weight_decay=1e-4)
    images, targets = make_inputs(torch, device)
    what = "training iteration, 2 images" if train else "inference, 1 image"
    print(f"torchvision {torchvision.__version__} / PyTorch {torch.__version__} Mask R-CNN R50-FPN GN (4conv1fc), "
          f"{what} 800x1333, device {device}, threads {torch.get_num_threads()}")
    times = []
    for it in range(args.warmup + args.iters):
        if it == args.warmup and device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        if not train:
            with torch.no_grad():
                dets = model(images[:1])
            if device.type == "cuda":
                torch.cuda.synchronize()
            s = time.perf_counter() - start
            if it >= args.warmup:
                times.append(s)
            print(f"iteration {it + 1} ({'timed' if it >= args.warmup else 'warm-up'}): {s:.3f} s, "
                  f"{len(dets[0]['scores'])} detections", flush=True)
            continue
        losses = model(images, targets)
        loss = sum(losses.values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        s = time.perf_counter() - start
        timed = it >= args.warmup
        if timed:
            times.append(s)
        print(f"iteration {it + 1} ({'timed' if timed else 'warm-up'}): {s:.3f} s, loss {float(loss.detach()):.4f}", flush=True)
    median = statistics.median(times)
    print(f"\nmedian of {len(times)} timed iterations: {median:.3f} s/iter")
    if device.type == "cuda":
        print(f"peak memory (torch.cuda.max_memory_allocated): {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
    if args.ours:
        with open(args.ours) as f:
            m = re.search(r"RESULT model_iteration device=(\S+) mode=(\S+) median_s=([0-9.eE+-]+)", f.read())
        if m and m.group(2) != args.mode:
            print(f"{args.ours} times mode {m.group(2)}, not {args.mode}: no ratio")
        elif m:
            ours = float(m.group(3))
            print(f"gndet ({m.group(1)}): {ours:.3f} s/iter; torch / gndet = {median / ours:.2f} (> 1: gndet is faster)")
        else:
            print(f"no RESULT line in {args.ours}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
