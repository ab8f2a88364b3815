#!/usr/bin/env python3
"""COCO-sized evaluation inputs for bench/coco_eval_vs_pycocotools.sh:

    make_coco_eval_bench_files.py OUT_DIR [--images 5000] [--dets 100] [--seed 0]

writes OUT_DIR/gt.json (COCO val-like: 80 categories with COCO's non-contiguous ids, ~7 objects
per image as polygons, 1% crowds as RLE), OUT_DIR/dt_bbox.json (per image `--dets` detections with
boxes, half of them near a ground-truth object) and OUT_DIR/dt_segm.json (the same detections as
compressed-RLE masks without boxes, as mmdetection writes them for segm). Needs numpy and
pycocotools (for the RLE strings).
"""
import argparse
import json
import os

import numpy as np
from pycocotools import mask as mask_utils

COCO_IDS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28, 31,
            32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57,
            58, 59, 60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87,
            88, 89, 90]


def ellipse(rng, x, y, w, h):
    n = int(rng.integers(8, 17))
    t = np.sort(rng.uniform(0, 2 * np.pi, n))
    r = rng.uniform(0.75, 1.0, n)
    px = x + w / 2 + np.cos(t) * r * w / 2
    py = y + h / 2 + np.sin(t) * r * h / 2
    return [round(float(v), 2) for pair in zip(px, py) for v in pair]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('out')
    ap.add_argument('--images', type=int, default=5000)
    ap.add_argument('--dets', type=int, default=100)
    ap.add_argument('--seed', type=int, default=0)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    os.makedirs(a.out, exist_ok=True)
    gt = {'images': [], 'annotations': [], 'categories': [{'id': c, 'name': 'cat%d' % c} for c in COCO_IDS]}
    dt_bbox, dt_segm = [], []
    ann_id = 1
    for i in range(a.images):
        image_id = 100000 + 3 * i
        W, H = int(rng.integers(400, 641)), int(rng.integers(300, 641))
        gt['images'].append({'id': image_id, 'file_name': '%012d.jpg' % image_id, 'width': W, 'height': H})
        objs = []
        for _ in range(int(rng.poisson(7))):
            w = float(np.exp(rng.uniform(np.log(6), np.log(W * 0.8))))
            h = float(np.exp(rng.uniform(np.log(6), np.log(H * 0.8))))
            x, y = float(rng.uniform(0, W - w)), float(rng.uniform(0, H - h))
            box = [round(x, 2), round(y, 2), round(w, 2), round(h, 2)]
            poly = ellipse(rng, *box)
            rle = mask_utils.frPyObjects([poly], H, W)[0]
            crowd = int(rng.uniform() < 0.01)
            seg = {'size': [H, W], 'counts': rle['counts'].decode()} if crowd else [poly]
            cat = int(rng.choice(COCO_IDS))
            gt['annotations'].append({'id': ann_id, 'image_id': image_id, 'category_id': cat, 'bbox': box,
                                      'area': float(mask_utils.area(rle)), 'iscrowd': crowd, 'segmentation': seg})
            objs.append((box, poly, cat))
            ann_id += 1
        boxes, polys, cats = [], [], []
        for _ in range(a.dets):
            if objs and rng.uniform() < 0.5:
                (x, y, w, h), poly, cat = objs[int(rng.integers(len(objs)))]
                s = rng.uniform(0, 0.25)
                nx, ny = x + rng.normal() * s * w, y + rng.normal() * s * h
                nw, nh = w * np.exp(rng.normal() * s), h * np.exp(rng.normal() * s)
                p = np.array(poly).reshape(-1, 2)
                p = np.stack([nx + (p[:, 0] - x) / w * nw, ny + (p[:, 1] - y) / h * nh], 1)
                polys.append([round(float(v), 2) for v in p.ravel()])
                boxes.append([round(float(v), 2) for v in (nx, ny, nw, nh)])
                cats.append(cat if rng.uniform() < 0.8 else int(rng.choice(COCO_IDS)))
            else:
                w = float(np.exp(rng.uniform(np.log(6), np.log(W * 0.8))))
                h = float(np.exp(rng.uniform(np.log(6), np.log(H * 0.8))))
                box = [round(float(rng.uniform(0, W - w)), 2), round(float(rng.uniform(0, H - h)), 2), round(w, 2),
                       round(h, 2)]
                boxes.append(box)
                polys.append(ellipse(rng, *box))
                cats.append(int(rng.choice(COCO_IDS)))
        rles = mask_utils.frPyObjects(polys, H, W) if polys else []
        scores = rng.uniform(0.05, 1.0, len(boxes))
        for box, rle, cat, score in zip(boxes, rles, cats, scores):
            score = round(float(score), 4)
            dt_bbox.append({'image_id': image_id, 'category_id': cat, 'bbox': box, 'score': score})
            dt_segm.append({'image_id': image_id, 'category_id': cat, 'score': score,
                            'segmentation': {'size': [H, W], 'counts': rle['counts'].decode()}})
    for name, obj in (('gt.json', gt), ('dt_bbox.json', dt_bbox), ('dt_segm.json', dt_segm)):
        with open(os.path.join(a.out, name), 'w') as f:
            json.dump(obj, f)
    print('%d images, %d annotations, %d detections' % (a.images, len(gt['annotations']), len(dt_bbox)))


if __name__ == '__main__':
    main()
