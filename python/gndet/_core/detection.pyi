"""the detector's internals, for taking a training step apart"""

from collections.abc import Sequence

import gndet._core


def anchors(strides: Sequence[int], ratios: Sequence[float], scales: Sequence[float], feat_sizes: Sequence[tuple[int, int]], center_offset: float = ...) -> list[gndet._core.Tensor]:
    """
    AnchorGenerator: per level, the (H * W * A, 4) float32 anchors of an H x W feature map, anchor (y * W + x) * A + a; feat_sizes: one (H, W) per stride
    """

def assign(boxes: object, gt_boxes: object, gt_labels: object, assigner: dict) -> dict:
    """
    MaxIoUAssigner (a config dict): gt_inds (-1 ignored, 0 negative, i + 1 positive for gt i), max_overlaps, labels (-1 unless positive), num_gts
    """

def sample(boxes: object, gt_boxes: object, gt_labels: object, assigner: dict, sampler: dict, seed: int = ..., generator_state: str | None = ...) -> dict:
    """
    assigns, then RandomSampler (a config dict) draws positives and negatives: pos_inds, neg_inds, pos_boxes, neg_boxes, pos_gt_inds, pos_gt_boxes, pos_gt_labels, pos_is_gt, and the generator_state after the draws (a Generator(seed), or continued from generator_state)
    """

def model_config(model: gndet._core.TwoStageDetector) -> object:
    """
    the model's config dict (its train_cfg and test_cfg included), as the detector was built from it
    """

def rpn_stage(config: str, model: gndet._core.TwoStageDetector, image: object, boxes: object, labels: object, masks: object | None = ..., seed: int = ..., cfg_options: Sequence[str] = ...) -> dict:
    """
    the first stage of Detector.loss(image, boxes, labels, masks, seed) for the model built from `config`: the network input (images, gt_* and info at its size), the FPN features, loss_rpn_cls and loss_rpn_bbox, the proposals the RoI head trains on, and the generator_state the RoI head's sampler continues from
    """
