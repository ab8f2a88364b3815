#!/usr/bin/env python3
"""pycocotools as an independent reference for gndet's COCO code (tests and benchmarks only).

    coco_reference.py eval GT.json DT.json bbox|segm [--drop-segm-bbox]
        -> {"stats": [12 floats], "summary": "...12 lines..."} on stdout
    coco_reference.py eval-all GT.json DT.json
        -> {"bbox": ..., "segm": ..., "segm_mmdet": ...} (segm_mmdet: --drop-segm-bbox)
    coco_reference.py masks TASKS.json
        -> the answers of pycocotools.mask to the tasks (see run_mask_tasks) on stdout

--drop-segm-bbox deletes "bbox" from every result before loadRes, as mmdetection's CocoMetric
does for segm. Requires numpy and pycocotools.
"""
import contextlib
import io
import json
import sys

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval


def run_eval(gt_path, dt_path, iou_type, drop_segm_bbox):
    quiet = io.StringIO()
    with contextlib.redirect_stdout(quiet):
        gt = COCO(gt_path)
        with open(dt_path) as f:
            results = json.load(f)
        if drop_segm_bbox:
            for r in results:
                r.pop('bbox', None)
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, iou_type)
        ev.evaluate()
        ev.accumulate()
    summary = io.StringIO()
    with contextlib.redirect_stdout(summary):
        ev.summarize()
    return {'stats': [float(s) for s in ev.stats], 'summary': summary.getvalue()}


def to_str(rle):
    return rle['counts'].decode('ascii') if isinstance(rle['counts'], bytes) else rle['counts']


def from_str(counts, h, w):
    return {'size': [h, w], 'counts': counts.encode('ascii')}


def run_mask_tasks(tasks):
    """tasks: {"polygons": [{"h", "w", "polygons": [[...], ...]}],
               "bitmaps": [{"h", "w", "rows": ["0101..", ...]}],
               "merges": [{"h", "w", "counts": [str, ...], "intersect": bool}],
               "ious": [{"dt": [str], "gt": [str], "h", "w", "iscrowd": [0/1]}],
               "box_ious": [{"dt": [[x, y, w, h]], "gt": [[...]], "iscrowd": [...]}]}"""
    out = {'polygons': [], 'bitmaps': [], 'merges': [], 'ious': [], 'box_ious': []}
    for t in tasks.get('polygons', []):
        h, w = t['h'], t['w']
        parts = mask_utils.frPyObjects(t['polygons'], h, w)
        merged = mask_utils.merge(parts)
        out['polygons'].append({
            'parts': [to_str(r) for r in parts],
            'merged': to_str(merged),
            'area': int(mask_utils.area(merged)),
            'bbox': [float(v) for v in mask_utils.toBbox(merged)],
        })
    for t in tasks.get('bitmaps', []):
        m = np.array([[int(c) for c in row] for row in t['rows']], dtype=np.uint8).reshape(t['h'], t['w'])
        rle = mask_utils.encode(np.asfortranarray(m))
        out['bitmaps'].append({'counts': to_str(rle), 'area': int(mask_utils.area(rle)),
                               'bbox': [float(v) for v in mask_utils.toBbox(rle)]})
    for t in tasks.get('merges', []):
        rles = [from_str(c, t['h'], t['w']) for c in t['counts']]
        out['merges'].append(to_str(mask_utils.merge(rles, intersect=t['intersect'])))
    for t in tasks.get('ious', []):
        d = [from_str(c, t['h'], t['w']) for c in t['dt']]
        g = [from_str(c, t['h'], t['w']) for c in t['gt']]
        iou = mask_utils.iou(d, g, t['iscrowd'])
        out['ious'].append(np.asarray(iou, dtype=float).reshape(len(d), len(g)).tolist())
    for t in tasks.get('box_ious', []):
        iou = mask_utils.iou(t['dt'], t['gt'], t['iscrowd'])
        out['box_ious'].append(np.asarray(iou, dtype=float).reshape(len(t['dt']), len(t['gt'])).tolist())
    return out


def main(argv):
    if len(argv) >= 4 and argv[0] == 'eval':
        res = run_eval(argv[1], argv[2], argv[3], '--drop-segm-bbox' in argv[4:])
    elif len(argv) == 3 and argv[0] == 'eval-all':
        res = {'bbox': run_eval(argv[1], argv[2], 'bbox', False), 'segm': run_eval(argv[1], argv[2], 'segm', False),
               'segm_mmdet': run_eval(argv[1], argv[2], 'segm', True)}
    elif len(argv) == 2 and argv[0] == 'masks':
        with open(argv[1]) as f:
            res = run_mask_tasks(json.load(f))
    else:
        sys.stderr.write(__doc__)
        return 2
    json.dump(res, sys.stdout)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
