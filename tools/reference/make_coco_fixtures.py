#!/usr/bin/env python3
"""Writes the pycocotools reference fixtures that gndet's data tests compare against:

    tests/data/fixtures/coco_eval_cases.json  random ground truth + detections with the 12 stats
                                              pycocotools computes for bbox, segm (results as
                                              written, with boxes) and segm with the boxes dropped
                                              (mmdetection's convention)
    tests/data/fixtures/mask_cases.json       polygons, bitmaps, merges and IoUs with
                                              pycocotools.mask's RLE strings, areas, boxes, IoUs

Run from the repository root:  python3 tools/reference/make_coco_fixtures.py
Deterministic for the seeds below (numpy's Generator); needs numpy and pycocotools.
"""
import json
import os
import sys
import tempfile

import numpy as np
from pycocotools import mask as mask_utils

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import coco_reference  # noqa: E402

OUT = os.path.join('tests', 'data', 'fixtures')


def ellipse_polygon(rng, x, y, w, h, n):
    t = np.sort(rng.uniform(0, 2 * np.pi, n))
    r = rng.uniform(0.7, 1.0, n)
    px = x + w / 2 + np.cos(t) * r * w / 2
    py = y + h / 2 + np.sin(t) * r * h / 2
    return [round(float(v), 2) for pair in zip(px, py) for v in pair]


def to_str(rle):
    return rle['counts'].decode('ascii')


def random_box(rng, W, H):
    # log-uniform sizes so that small (< 32^2), medium and large (> 96^2) objects all occur
    w = float(np.exp(rng.uniform(np.log(3), np.log(W * 0.95))))
    h = float(np.exp(rng.uniform(np.log(3), np.log(H * 0.95))))
    x = float(rng.uniform(0, W - w))
    y = float(rng.uniform(0, H - h))
    return [round(x, 2), round(y, 2), round(w, 2), round(h, 2)]


def make_case(seed, n_images, max_gt, max_dt, crowd_rate, big_image):
    rng = np.random.default_rng(seed)
    cat_ids = [1, 3, 7, 10]          # 10 never appears in the ground truth
    gt = {'images': [], 'annotations': [], 'categories': [{'id': c, 'name': 'c%d' % c} for c in cat_ids]}
    dts = []
    ann_id = 0                        # the first annotation gets id 0: pycocotools treats a match to it as none
    image_ids = rng.permutation(np.arange(100, 100 + 3 * n_images))[:n_images]
    for n, image_id in enumerate(image_ids):
        W = int(rng.integers(60, 240)) if not (big_image and n == 0) else 400
        H = int(rng.integers(60, 240)) if not (big_image and n == 0) else 300
        gt['images'].append({'id': int(image_id), 'file_name': '%d.png' % image_id, 'width': W, 'height': H})
        n_gt = 0 if n % 7 == 3 else int(rng.integers(0, max_gt + 1))
        gts_here = []
        for _ in range(n_gt):
            box = random_box(rng, W, H)
            cat = int(rng.choice(cat_ids[:3]))
            crowd = int(rng.uniform() < crowd_rate)
            poly = ellipse_polygon(rng, *box, int(rng.integers(3, 12)))
            rle = mask_utils.merge(mask_utils.frPyObjects([poly], H, W))
            area = float(mask_utils.area(rle))
            if crowd:
                m = mask_utils.decode(rle)
                if rng.uniform() < 0.5:
                    seg = {'size': [H, W], 'counts': to_str(mask_utils.encode(np.asfortranarray(m)))}
                else:  # uncompressed RLE, as COCO stores crowds
                    flat = m.flatten(order='F')
                    counts, cur, run = [], 0, 0
                    for v in flat:
                        if v != cur:
                            counts.append(run)
                            run, cur = 0, v
                        run += 1
                    counts.append(run)
                    seg = {'size': [H, W], 'counts': counts}
            else:
                seg = [poly]
            ann = {'id': ann_id, 'image_id': int(image_id), 'category_id': cat, 'bbox': box, 'area': area,
                   'iscrowd': crowd, 'segmentation': seg}
            # areas exactly on the range limits test that the ranges are closed on both ends
            if rng.uniform() < 0.08:
                ann['area'] = float(rng.choice([1024.0, 9216.0]))
            gt['annotations'].append(ann)
            gts_here.append(ann)
            ann_id += 1
        n_dt = 0 if n % 5 == 2 else int(rng.integers(0, max_dt + 1))
        if big_image and n == 0:
            n_dt = 130  # more than maxDets = 100 in one image
        for _ in range(n_dt):
            near = bool(gts_here) and rng.uniform() < 0.6
            if near:
                g = gts_here[int(rng.integers(len(gts_here)))]
                x, y, w, h = g['bbox']
                s = rng.uniform(0.0, 0.3)
                box = [x + rng.normal() * s * w, y + rng.normal() * s * h, w * np.exp(rng.normal() * s),
                       h * np.exp(rng.normal() * s)]
                cat = g['category_id'] if rng.uniform() < 0.85 else int(rng.choice(cat_ids))
            else:
                box = random_box(rng, W, H)
                cat = int(rng.choice(cat_ids + [99]))  # 99: not a category, ignored by pycocotools
            box = [round(float(v), 2) for v in box]
            box[2] = max(box[2], 0.5)
            box[3] = max(box[3], 0.5)
            if near and isinstance(g['segmentation'], list):
                # the gt's outline moved into the detection's box, so that masks overlap as well
                gp = np.array(g['segmentation'][0]).reshape(-1, 2)
                gx, gy, gw, gh = g['bbox']
                px = box[0] + (gp[:, 0] - gx) / max(gw, 1e-6) * box[2] + rng.normal(size=len(gp)) * 0.5
                py = box[1] + (gp[:, 1] - gy) / max(gh, 1e-6) * box[3] + rng.normal(size=len(gp)) * 0.5
                poly = [round(float(v), 2) for pair in zip(px, py) for v in pair]
            else:
                poly = ellipse_polygon(rng, *box, int(rng.integers(3, 12)))
            rle = mask_utils.merge(mask_utils.frPyObjects([poly], H, W))
            score = round(float(rng.uniform()), 2)  # two decimals: many ties, so the sort must be stable
            dts.append({'image_id': int(image_id), 'category_id': cat, 'bbox': box, 'score': score,
                        'segmentation': {'size': [H, W], 'counts': to_str(rle)}})
    return gt, dts


def evaluate_case(gt, dts):
    with tempfile.TemporaryDirectory() as tmp:
        gp, dp = os.path.join(tmp, 'gt.json'), os.path.join(tmp, 'dt.json')
        with open(gp, 'w') as f:
            json.dump(gt, f)
        with open(dp, 'w') as f:
            json.dump(dts, f)
        bbox = coco_reference.run_eval(gp, dp, 'bbox', False)
        return {
            'bbox': bbox['stats'],
            'bbox_summary': bbox['summary'],
            'segm': coco_reference.run_eval(gp, dp, 'segm', False)['stats'],
            'segm_mmdet': coco_reference.run_eval(gp, dp, 'segm', True)['stats'],
        }


def mask_tasks(rng):
    tasks = {'polygons': [], 'bitmaps': [], 'merges': [], 'ious': [], 'box_ious': []}
    for i in range(60):
        h, w = int(rng.integers(1, 40)), int(rng.integers(1, 40))
        polys = []
        for _ in range(int(rng.integers(1, 4))):
            k = int(rng.integers(3, 14))
            xs = rng.uniform(-4, w + 4, k)
            ys = rng.uniform(-4, h + 4, k)
            if i % 4 == 0:     # on the pixel grid and on half pixels, where the rounding matters
                xs, ys = np.round(xs * 2) / 2, np.round(ys * 2) / 2
            if i % 5 == 0:     # repeated vertices give zero-length edges
                xs[1], ys[1] = xs[0], ys[0]
            polys.append([round(float(v), 3) for pair in zip(xs, ys) for v in pair])
        tasks['polygons'].append({'h': h, 'w': w, 'polygons': polys})
    bitmaps = []
    for i in range(40):
        h, w = int(rng.integers(1, 14)), int(rng.integers(1, 14))
        p = rng.uniform(0.05, 0.95)
        m = (rng.uniform(size=(h, w)) < p).astype(np.uint8)
        if i == 0:
            m[:] = 0
        if i == 1:
            m[:] = 1
        if i == 2:  # a run that wraps from the bottom of one column to the top of the next
            m[:] = 0
            m[h - 1, 0] = 1
            if w > 1:
                m[0, 1] = 1
        tasks['bitmaps'].append({'h': h, 'w': w, 'rows': [''.join(str(int(v)) for v in row) for row in m]})
        bitmaps.append(m)
    for _ in range(30):
        h, w = int(rng.integers(1, 12)), int(rng.integers(1, 12))
        n = int(rng.integers(1, 5))
        counts = [to_str(mask_utils.encode(np.asfortranarray((rng.uniform(size=(h, w)) < 0.4).astype(np.uint8))))
                  for _ in range(n)]
        tasks['merges'].append({'h': h, 'w': w, 'counts': counts, 'intersect': bool(rng.uniform() < 0.5)})
    for _ in range(20):
        h, w = int(rng.integers(2, 16)), int(rng.integers(2, 16))
        nd, ng = int(rng.integers(1, 6)), int(rng.integers(1, 6))

        def rand_mask():
            m = np.zeros((h, w), np.uint8)
            y0, x0 = int(rng.integers(0, h)), int(rng.integers(0, w))
            m[y0:y0 + int(rng.integers(1, h + 1)), x0:x0 + int(rng.integers(1, w + 1))] = 1
            m &= (rng.uniform(size=(h, w)) < 0.85).astype(np.uint8)
            return to_str(mask_utils.encode(np.asfortranarray(m)))
        tasks['ious'].append({'h': h, 'w': w, 'dt': [rand_mask() for _ in range(nd)],
                              'gt': [rand_mask() for _ in range(ng)],
                              'iscrowd': [int(rng.uniform() < 0.4) for _ in range(ng)]})
    for _ in range(20):
        nd, ng = int(rng.integers(1, 6)), int(rng.integers(1, 6))

        def rand_box():
            return [round(float(v), 2) for v in (rng.uniform(-5, 30), rng.uniform(-5, 30), rng.uniform(0, 20),
                                                 rng.uniform(0, 20))]
        tasks['box_ious'].append({'dt': [rand_box() for _ in range(nd)], 'gt': [rand_box() for _ in range(ng)],
                                  'iscrowd': [int(rng.uniform() < 0.4) for _ in range(ng)]})
    return tasks


def main():
    os.makedirs(OUT, exist_ok=True)
    cases = []
    for name, seed, n_images, max_gt, max_dt, crowd_rate, big in [
            ('mixed', 1, 28, 8, 16, 0.12, True),
            ('crowded', 2, 16, 12, 24, 0.35, False),
            ('sparse', 3, 20, 2, 4, 0.0, False)]:
        gt, dts = make_case(seed, n_images, max_gt, max_dt, crowd_rate, big)
        cases.append({'name': name, 'gt': gt, 'dt': dts, 'expected': evaluate_case(gt, dts)})
    with open(os.path.join(OUT, 'coco_eval_cases.json'), 'w') as f:
        json.dump({'generator': 'tools/reference/make_coco_fixtures.py', 'cases': cases}, f, separators=(',', ':'))

    tasks = mask_tasks(np.random.default_rng(7))
    answers = coco_reference.run_mask_tasks(tasks)
    with open(os.path.join(OUT, 'mask_cases.json'), 'w') as f:
        json.dump({'generator': 'tools/reference/make_coco_fixtures.py', 'tasks': tasks, 'expected': answers}, f,
                  separators=(',', ':'))
    for c in cases:
        print(c['name'], len(c['gt']['annotations']), 'gts', len(c['dt']), 'dts', 'AP bbox %.4f segm %.4f' %
              (c['expected']['bbox'][0], c['expected']['segm'][0]))


if __name__ == '__main__':
    main()
