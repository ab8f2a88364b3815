"""The detector from Python gives the CLI's numbers: Detector.predict against `gndet infer` on the
same checkpoint and image, gndet.train against `gndet train`'s logged losses."""
import json
import os

import numpy as np
import pytest

import gndet
from conftest import TINY_SHAPES, data_options, run_cli


def rle_area(counts: str) -> int:
    """Foreground pixels of a COCO compressed RLE string (pycocotools' rleFrString)."""
    runs, i = [], 0
    while i < len(counts):
        x, k, more = 0, 0, True
        while more:
            c = ord(counts[i]) - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            i, k = i + 1, k + 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(runs) > 2:
            x += runs[-2]
        runs.append(x)
    return sum(runs[1::2])


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, shapes_data):
    gndet.manual_seed(0)
    det = gndet.Detector(TINY_SHAPES, cfg_options=data_options(shapes_data))
    path = str(tmp_path_factory.mktemp("ckpt") / "tiny.safetensors")
    gndet.save(det.model.state_dict(), path)
    return path


def test_predict_equals_gndet_infer(cli, shapes_data, checkpoint, tmp_path):
    image = os.path.join(shapes_data, "val", sorted(os.listdir(os.path.join(shapes_data, "val")))[0])
    opts = data_options(shapes_data)
    run_cli(cli, "infer", TINY_SHAPES, checkpoint, image, "--out-dir", str(tmp_path), "--score-thr", "0",
            "--device", "cpu", "--cfg-options", *[f"{k}={v}" for k, v in opts.items()])
    with open(tmp_path / (os.path.splitext(os.path.basename(image))[0] + ".json")) as f:
        expected = json.load(f)["detections"]
    det = gndet.Detector(TINY_SHAPES, checkpoint, cfg_options=opts)
    got = det.predict(image)
    assert len(expected) > 0, "the random weights give no detections: the comparison would be empty"
    assert got["boxes"].shape == (len(expected), 4) and got["boxes"].dtype == np.float32
    np.testing.assert_array_equal(got["boxes"], np.array([d["bbox_xyxy"] for d in expected], np.float32))
    np.testing.assert_array_equal(got["scores"], np.array([d["score"] for d in expected], np.float32))
    np.testing.assert_array_equal(got["labels"], [d["label"] for d in expected])
    assert got["masks"].dtype == bool and got["masks"].shape[1:] == (64, 64)
    assert [int(m.sum()) for m in got["masks"]] == [rle_area(d["segmentation"]["counts"]) for d in expected]
    # The same image as an array gives the same numbers.
    again = det.predict(gndet.read_image(image).numpy())
    np.testing.assert_array_equal(again["scores"], got["scores"])


def test_loss_with_autograd(shapes_data, checkpoint):
    det = gndet.Detector(TINY_SHAPES, checkpoint, cfg_options=data_options(shapes_data))
    image = np.full((64, 64, 3), 40, np.uint8)
    image[10:40, 12:30] = 220
    masks = np.zeros((1, 64, 64), np.uint8)
    masks[0, 10:40, 12:30] = 1
    losses = det.loss(image, np.array([[12, 10, 30, 40]], np.float32), np.array([1]), masks)
    assert {"loss_rpn_cls", "loss_rpn_bbox", "loss_cls", "loss_bbox", "loss_mask"} <= set(losses)
    total = sum(v for k, v in losses.items() if "loss" in k)
    total.backward()
    grads = {n: p.grad for n, p in det.model.named_parameters()}
    assert all(np.isfinite(v.item()) and v.item() >= 0 for k, v in losses.items() if "loss" in k)
    assert grads["backbone.conv1.weight"] is not None and np.abs(grads["backbone.conv1.weight"].numpy()).sum() > 0
    with pytest.raises(ValueError, match="mask head"):
        det.loss(image, np.zeros((1, 4), np.float32), np.array([0]))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        det.predict(np.zeros((4, 4), np.uint8))


def test_detector_errors():
    with pytest.raises(FileNotFoundError):
        gndet.Detector("no/such/config.json")
    with pytest.raises(TypeError):
        gndet.Detector(TINY_SHAPES, checkpoint=3)
    with pytest.raises(gndet.Error):
        gndet.Detector(TINY_SHAPES, checkpoint=__file__)  # not a checkpoint
    with pytest.raises(TypeError):
        gndet.train(TINY_SHAPES, cfg_options=["a=1"])


def test_train_equals_gndet_train(cli, shapes_data, tmp_path):
    opts = {**data_options(shapes_data), "train_cfg.max_epochs": 1}
    cli_dir, py_dir = tmp_path / "cli", tmp_path / "py"
    run_cli(cli, "train", TINY_SHAPES, "--work-dir", str(cli_dir), "--no-validate", "--device", "cpu", "--seed", "0",
            "--cfg-options", *[f"{k}={v}" for k, v in opts.items()])
    assert gndet.train(TINY_SHAPES, str(py_dir), cfg_options=opts, device="cpu", seed=0, evaluate=False) == 0

    def losses(d):
        with open(d / "scalars.json") as f:
            recs = [json.loads(line) for line in f if line.strip()]
        return [{k: v for k, v in r.items() if k.startswith("loss")} for r in recs if r.get("mode") == "train"]
    assert losses(py_dir) and losses(py_dir) == losses(cli_dir)
