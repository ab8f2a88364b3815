#!/usr/bin/env python3
"""mmdetection 3.3.0's own mask-rcnn_r50_fpn_gn-all_2x_coco on the CPU, timed like bench/model_iteration.cpp.

The reference side of bench/cpu_vs_mmdet.sh: the model is mmdetection's, built from the config shipped in
its wheel (mmdet/.mim/configs/gn/mask-rcnn_r50_fpn_gn-all_2x_coco.py; backbone init_cfg None, so nothing is
downloaded), run by mmdetection's own code. mmcv-lite has no compiled mmcv._ext: its two kernels used here
(nms, roi_align) come from torchvision through tools/reference/mmdet_reference/mmcv_ext_shim.py, unless a
full mmcv is installed.

  --mode infer   init_detector(config, --checkpoint) once (not timed), then per iteration
                 inference_detector(model, --image): the config's test pipeline (decode, resize to
                 1333 x 800 keeping the ratio, pack), the data preprocessor (normalise, pad to 32),
                 the forward pass, post-processing and the masks pasted at the image's size; the
                 number of detections of each iteration is printed. --detections FILE writes the last
                 one's detections (label, score, box, mask area) as JSON; --compare FILE checks them
                 against gndet's (bench/model_iteration --detections): same count, and each of the top
                 --top detections of mmdetection has a gndet detection of its class whose box is within
                 --tol relative (per coordinate, against max(|x|, 1)); the exit status is 1 otherwise.
  --mode train   one training iteration on two 800 x 1333 images (model_iteration's recipe: random
                 normalised pixels, 3 to 6 random boxes per image with rectangular masks, 0-based labels
                 < 80, fixed seed): model.train_step(data, optim_wrapper), i.e. the data preprocessor
                 (normalise, pad images and masks to 800 x 1344), forward, losses, backward and the
                 config's OptimWrapper step (SGD momentum 0.9, weight decay 1e-4) at the learning rate of
                 the config's first iteration (0.02 x LinearLR's start factor 0.001, like
                 model_iteration: a random model stays finite; it does not change the work). The
                 weights are mmdetection's random initialisation (seed 0).
  --make-checkpoint PATH
                 writes the inference checkpoint: mmdetection's model with its random initialisation,
                 perturbed as tools/reference/mmdet_reference/make_fixture.py does (seed 20240601: noise
                 on every parameter; fc_cls's weight scaled and four class biases raised; the RPN
                 objectness scaled; the mask logits of three classes raised), saved as mmdetection's
                 runner saves ({'meta': ..., 'state_dict': ...}, torch.save). On make_fixture.py's
                 picture this gives the full 100 detections (max_per_img), scores 0.40-0.70, 5 classes;
                 --cls-bias (default 0) raises every foreground class's fc_cls bias further, should
                 another picture need it. --image is written first when it does not exist (that
                 deterministic 480 x 640 picture, resized to 800 x 1067 by the pipeline; PNG, lossless,
                 so both sides decode the same pixels). Then it runs inference_detector once and fails
                 when fewer than --min-detections (100) come out.

Prints one line per iteration and, last, a line for scripts:
  RESULT mmdet device=cpu mode=infer|train median_s=S [detections=N]

    python bench/mmdet_maskrcnn_gn.py --make-checkpoint CKPT --image IMG
    python bench/mmdet_maskrcnn_gn.py --mode infer --checkpoint CKPT --image IMG [--iters 3] [--warmup 1] [--threads 2]
    python bench/mmdet_maskrcnn_gn.py --mode train [--iters 3] [--warmup 1] [--threads 2]
    python bench/mmdet_maskrcnn_gn.py --check MMDET_JSON --compare GNDET_JSON   # the check of --compare alone
"""
import argparse
import copy
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REFERENCE = os.path.join(HERE, '..', 'tools', 'reference', 'mmdet_reference')
CONFIG = 'gn/mask-rcnn_r50_fpn_gn-all_2x_coco.py'
SEED = 20240601  # make_fixture.py's
SCORE_THR = 0.05


def setup(threads):
    """Imports mmdetection, with the mmcv._ext stand-in where needed: (which kernels, None) or (None, error)."""
    sys.path.insert(0, REFERENCE)
    try:
        import torch
        import mmcv  # noqa: F401
        import mmengine  # noqa: F401
        import mmdet  # noqa: F401
    except ImportError as e:
        return None, str(e)
    import mmcv_ext_shim
    ops = 'mmcv._ext'
    if not mmcv_ext_shim.real_ext_available():
        mmcv_ext_shim.install()
        ops = 'torchvision through mmcv_ext_shim'
    if threads > 0:
        torch.set_num_threads(threads)
        try:
            import cv2
            cv2.setNumThreads(threads)
        except ImportError:
            pass
    import logging
    from mmengine.logging import MMLogger
    MMLogger.get_current_instance().setLevel(logging.WARNING)  # not init_weights' line per parameter
    from mmdet.utils import register_all_modules
    register_all_modules()
    return ops, None


def versions():
    import mmcv
    import mmdet
    import mmengine
    import torch
    import torchvision
    return (f'mmdet {mmdet.__version__}, mmengine {mmengine.__version__}, mmcv {mmcv.__version__}, '
            f'torch {torch.__version__}, torchvision {torchvision.__version__}')


def config_path():
    import mmdet
    return os.path.join(os.path.dirname(mmdet.__file__), '.mim', 'configs', CONFIG)


def load_cfg():
    from mmengine.config import Config
    cfg = Config.fromfile(config_path())
    cfg.model.backbone.init_cfg = None  # no pretrained download
    return cfg


def report(mode, times, extra=''):
    s, median = sorted(times), statistics.median(times)
    print(f'\nmedian of {len(times)} timed iterations: {median:.3f} s/iter (min {s[0]:.3f}, max {s[-1]:.3f})')
    try:
        import resource
        print(f'peak host memory (max RSS): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB')
    except ImportError:
        pass
    print(f'RESULT mmdet device=cpu mode={mode} median_s={median:.4f}{extra}', flush=True)


# ---------------------------------------------------------------------------------------------------------
# inference

def detections_of(result):
    """(labels, scores, boxes, mask areas) of a DetDataSample as lists."""
    p = result.pred_instances
    areas = p.masks.flatten(1).sum(1).tolist() if 'masks' in p else None
    return p.labels.tolist(), p.scores.tolist(), p.bboxes.tolist(), areas


def detections_json(image, result):
    labels, scores, boxes, areas = detections_of(result)
    dets = []
    for k in range(len(scores)):
        d = dict(label=labels[k], score=scores[k], bbox_xyxy=boxes[k])
        if areas is not None:
            d['mask_area'] = int(areas[k])
        dets.append(d)
    return dict(image=image, detections=dets)


def box_iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def compare(ref, ours, top, tol):
    """mmdetection's detections (ref) against gndet's (ours), both dicts as detections_json(); True when they
    agree (see the module's doc). Prints the figures."""
    r, o = ref['detections'], ours['detections']
    ok = len(r) == len(o)
    print(f'check against gndet: {len(r)} detections (mmdet) / {len(o)} (gndet){"" if ok else "  MISMATCH"}')
    # Each mmdetection detection to the gndet detection of its class with the highest IoU.
    matches = []
    for i, d in enumerate(r):
        best, best_iou = None, 0.0
        for j, e in enumerate(o):
            if e['label'] == d['label']:
                iou = box_iou(d['bbox_xyxy'], e['bbox_xyxy'])
                if iou > best_iou:
                    best, best_iou = j, iou
        matches.append((best, best_iou))
    worst_rel, worst_score, worst_rank = 0.0, 0.0, 0.0
    for i in range(min(top, len(r))):
        j, _ = matches[i]
        if j is None:
            print(f'  top {i + 1}: label {r[i]["label"]} score {r[i]["score"]:.4f}: no gndet detection of that class'
                  '  MISMATCH')
            ok = False
            continue
        rel = max(abs(a - b) / max(abs(a), 1.0) for a, b in zip(r[i]['bbox_xyxy'], o[j]['bbox_xyxy']))
        worst_rel = max(worst_rel, rel)
        worst_score = max(worst_score, abs(r[i]['score'] - o[j]['score']))
        worst_rank = max(worst_rank, abs(i - j))
        if rel > tol:
            print(f'  top {i + 1}: label {r[i]["label"]} box {r[i]["bbox_xyxy"]} vs gndet {o[j]["bbox_xyxy"]}: '
                  f'relative difference {rel:.2e} > {tol:g}  MISMATCH')
            ok = False
    print(f'  top {min(top, len(r))}: largest relative box difference {worst_rel:.2e} (tolerance {tol:g}), '
          f'score difference {worst_score:.2e}, rank difference {worst_rank:.0f}')
    close = [(i, j) for i, (j, iou) in enumerate(matches) if j is not None and iou >= 0.99]
    area = [abs(r[i]['mask_area'] - o[j]['mask_area']) / max(r[i]['mask_area'], 1) for i, j in close
            if 'mask_area' in r[i] and 'mask_area' in o[j]]
    print(f'  all: {len(close)} of {len(r)} mmdet detections have a gndet detection of their class at box IoU >= 0.99'
          + (f'; their mask areas differ by {statistics.median(area):.2e} (median) / {max(area):.2e} (max) relative'
             if area else ''))
    print(f'CHECK {"ok" if ok else "FAILED"}', flush=True)
    return ok


def run_infer(args):
    from mmdet.apis import inference_detector, init_detector
    if not args.checkpoint or not args.image:
        raise SystemExit('mmdet_maskrcnn_gn: --mode infer needs --checkpoint and --image (see --make-checkpoint)')
    model = init_detector(config_path(), args.checkpoint, device='cpu')
    print(f'mmdetection inference benchmark: inference_detector (test pipeline with decode, data preprocessor, '
          f'forward, post-processing, masks pasted at image size), image {args.image}')
    print(f'config: mmdet/.mim/configs/{CONFIG}\ncheckpoint: {args.checkpoint}')
    times, result = [], None
    for it in range(args.warmup + args.iters):
        start = time.perf_counter()
        result = inference_detector(model, args.image)
        s = time.perf_counter() - start
        timed = it >= args.warmup
        if timed:
            times.append(s)
        print(f'iteration {it + 1} ({"timed" if timed else "warm-up"}): {s:.3f} s, '
              f'{len(result.pred_instances)} detections', flush=True)
    dets = detections_json(args.image, result)
    if args.detections:
        with open(args.detections, 'w') as f:
            json.dump(dets, f, indent=1)
    report('infer', times, f' detections={len(dets["detections"])}')
    if args.compare:
        with open(args.compare) as f:
            ours = json.load(f)
        if not compare(dets, ours, args.top, args.tol):
            return 1
    return 0


# ---------------------------------------------------------------------------------------------------------
# training

def make_train_data(cfg):
    """model_iteration.cpp's inputs, before the data preprocessor: two 800 x 1333 images whose pixels
    become N(0, 1) after its normalisation (std 1: raw = mean + noise), 3 to 6 random boxes each with
    rectangular masks, labels in [0, 80)."""
    import math
    import numpy as np
    import torch
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData
    gen = torch.Generator().manual_seed(2024)
    uniform = lambda: float(torch.rand(1, generator=gen))  # noqa: E731
    H, W = 800, 1333
    mean = torch.tensor(cfg.model.data_preprocessor.mean, dtype=torch.float32).view(3, 1, 1)
    inputs, samples = [], []
    for i in range(2):
        inputs.append(mean + torch.randn(3, H, W, generator=gen))
        g = 3 + int(uniform() * 4)
        boxes, labels, masks = [], [], np.zeros((g, H, W), np.uint8)
        for k in range(g):
            w, h = 40 + 400 * uniform(), 40 + 300 * uniform()
            x, y = (W - w - 1) * uniform(), (H - h - 1) * uniform()
            boxes.append([x, y, x + w, y + h])
            labels.append(int(uniform() * 80))
            masks[k, math.ceil(y):int(y + h), math.ceil(x):int(x + w)] = 1
        s = DetDataSample(metainfo=dict(img_id=i, img_shape=(H, W), ori_shape=(H, W), scale_factor=(1.0, 1.0),
                                        flip=False, flip_direction=None))
        s.gt_instances = InstanceData(bboxes=torch.tensor(boxes, dtype=torch.float32),
                                      labels=torch.tensor(labels, dtype=torch.int64),
                                      masks=BitmapMasks(masks, H, W))
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


def run_train(args):
    import torch
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import PARAM_SCHEDULERS
    from mmdet.registry import MODELS
    cfg = load_cfg()
    torch.manual_seed(0)
    model = MODELS.build(copy.deepcopy(cfg.model))
    model.init_weights()
    model.train()
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    warmup = copy.deepcopy(cfg.param_scheduler[0])
    assert warmup.type == 'LinearLR', warmup
    warmup.optimizer = optim_wrapper
    PARAM_SCHEDULERS.build(warmup)  # sets the first iteration's learning rate: 0.02 * 0.001
    lrs = sorted({g['lr'] for g in optim_wrapper.optimizer.param_groups})
    data = make_train_data(cfg)
    print('mmdetection training benchmark: model.train_step (data preprocessor, forward, losses, backward, '
          'OptimWrapper SGD step), 2 images 800x1333 (padded 800x1344)')
    print(f'config: mmdet/.mim/configs/{CONFIG} (random initialisation, seed 0); optimizer '
          f'{type(optim_wrapper.optimizer).__name__} lr {lrs}, momentum {cfg.optim_wrapper.optimizer.momentum}, '
          f'weight decay {cfg.optim_wrapper.optimizer.weight_decay}')
    times = []
    for it in range(args.warmup + args.iters):
        batch = dict(inputs=list(data['inputs']), data_samples=copy.deepcopy(data['data_samples']))  # padded in place
        torch.manual_seed(7 + it)  # the samplers
        start = time.perf_counter()
        log_vars = model.train_step(batch, optim_wrapper)
        s = time.perf_counter() - start
        timed = it >= args.warmup
        if timed:
            times.append(s)
        parts = ', '.join(f'{k} {float(v):.4f}' for k, v in log_vars.items() if k != 'loss')
        print(f'iteration {it + 1} ({"timed" if timed else "warm-up"}): {s:.3f} s, loss {float(log_vars["loss"]):.4f} '
              f'({parts})', flush=True)
    report('train', times)
    return 0


# ---------------------------------------------------------------------------------------------------------
# the inference checkpoint

def make_checkpoint(args):
    import numpy as np
    import torch
    from mmengine.runner.checkpoint import save_checkpoint, weights_to_cpu
    import make_fixture
    from mmdet.apis import inference_detector, init_detector
    from mmdet.datasets import CocoDataset
    if not args.image:
        raise SystemExit('mmdet_maskrcnn_gn: --make-checkpoint needs --image (the picture to check it on)')
    if not os.path.exists(args.image):
        if not args.image.endswith('.png'):
            raise SystemExit(f'mmdet_maskrcnn_gn: {args.image} does not exist and is not a .png to make')
        os.makedirs(os.path.dirname(os.path.abspath(args.image)), exist_ok=True)
        npy = args.image + '.rgb.npy'
        make_fixture.make_image(args.image, npy)
        os.remove(npy)
        print(f'wrote {args.image} (make_fixture.py\'s {make_fixture.IMG_H}x{make_fixture.IMG_W} picture)')
    cfg = make_fixture.load_cfg(CONFIG, SCORE_THR)
    model = make_fixture.build_model(cfg, SEED)  # init_weights() and make_fixture's perturbation
    with torch.no_grad():
        model.roi_head.bbox_head.fc_cls.bias[:-1] += args.cls_bias  # every foreground class (the last is background)
    classes = tuple(CocoDataset.METAINFO['classes'])
    meta = dict(mmdet_version=__import__('mmdet').__version__, config=cfg.pretty_text, seed=SEED,
                dataset_meta=dict(classes=classes, palette=list(CocoDataset.METAINFO['palette'])),
                note=f'random weights (mmdetection init, seed {SEED}) perturbed as make_fixture.py does, fc_cls bias '
                     f'+{args.cls_bias} on the foreground classes: a benchmark checkpoint, not a trained model '
                     f'(bench/mmdet_maskrcnn_gn.py --make-checkpoint)')
    os.makedirs(os.path.dirname(os.path.abspath(args.make_checkpoint)), exist_ok=True)
    save_checkpoint({'meta': meta, 'state_dict': weights_to_cpu(model.state_dict())}, args.make_checkpoint)
    print(f'wrote {args.make_checkpoint}')
    detector = init_detector(config_path(), args.make_checkpoint, device='cpu')
    result = inference_detector(detector, args.image)
    labels, scores, _, areas = detections_of(result)
    n = len(scores)
    print(f'{n} detections >= {SCORE_THR} on {args.image}: scores {min(scores, default=0):.3f}-'
          f'{max(scores, default=0):.3f}, {len(set(labels))} classes, mask areas (pixels) median '
          f'{int(np.median(areas)) if areas else 0}')
    if n < args.min_detections:
        os.remove(args.make_checkpoint)
        raise SystemExit(f'mmdet_maskrcnn_gn: only {n} detections (< {args.min_detections}); raise --cls-bias')
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--mode', choices=['infer', 'train'], default='infer')
    ap.add_argument('--iters', type=int, default=3)
    ap.add_argument('--warmup', type=int, default=1)
    ap.add_argument('--threads', type=int, default=2, help='torch.set_num_threads (0: PyTorch\'s default)')
    ap.add_argument('--checkpoint', help='infer: an mmdetection .pth (see --make-checkpoint)')
    ap.add_argument('--image', help='infer: the picture; --make-checkpoint: the picture to check it on (made when a '
                    'missing .png)')
    ap.add_argument('--detections', help='infer: write the last iteration\'s detections here (JSON)')
    ap.add_argument('--compare', help='infer, --check: gndet\'s detections (bench/model_iteration --detections) to '
                    'check against')
    ap.add_argument('--check', metavar='JSON', help='only compare these mmdetection detections (--detections) with '
                    '--compare\'s, without running anything')
    ap.add_argument('--top', type=int, default=10, help='--compare: how many of the top detections must match')
    ap.add_argument('--tol', type=float, default=1e-3, help='--compare: relative box tolerance')
    ap.add_argument('--make-checkpoint', metavar='PATH', help='write the perturbed inference checkpoint and exit')
    ap.add_argument('--cls-bias', type=float, default=0.0, help='--make-checkpoint: added to every foreground '
                    'class bias of fc_cls')
    ap.add_argument('--min-detections', type=int, default=100)
    args = ap.parse_args()
    if args.iters < 1 or args.warmup < 0:
        raise SystemExit('mmdet_maskrcnn_gn: --iters must be >= 1 and --warmup >= 0')
    if args.check:
        if not args.compare:
            raise SystemExit('mmdet_maskrcnn_gn: --check needs --compare')
        with open(args.check) as f, open(args.compare) as g:
            return 0 if compare(json.load(f), json.load(g), args.top, args.tol) else 1
    ops, error = setup(args.threads)
    if error:
        print(f'mmdet_maskrcnn_gn: {sys.executable} cannot import mmdetection ({error}); install it as '
              f'tools/reference/mmdet_reference/README.md says', file=sys.stderr)
        return 1
    import torch
    print(f'{versions()}; mmcv kernels: {ops}; threads {torch.get_num_threads()}')
    print(f'date: {time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}\ncommand: {" ".join(sys.argv)}\n', flush=True)
    if args.make_checkpoint:
        return make_checkpoint(args)
    return run_infer(args) if args.mode == 'infer' else run_train(args)


if __name__ == '__main__':
    sys.exit(main())
