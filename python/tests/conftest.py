"""Shared fixtures of the Python package's tests. GNDET_CLI names the `gndet` executable of the
same source tree (tools/test sets it), for the tests that compare Python with the CLI."""
import os
import shutil
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY_SHAPES = os.path.join(REPO, "configs", "tests", "mask-rcnn_tiny_shapes.json")


@pytest.fixture(scope="session")
def cli():
    path = os.environ.get("GNDET_CLI") or shutil.which("gndet")
    if not path or not os.path.exists(path):
        pytest.skip("no gndet CLI to compare with (set GNDET_CLI)")
    return path


def run_cli(cli, *args):
    r = subprocess.run([cli, *args], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


@pytest.fixture(scope="session")
def shapes_data(cli, tmp_path_factory):
    """A tiny shapes dataset (8 train, 4 val images of 64 x 64) made by `gndet make-shapes`."""
    out = tmp_path_factory.mktemp("shapes") / "data"
    run_cli(cli, "make-shapes", "--out", str(out), "--train", "8", "--val", "4", "--size", "64", "--seed", "3")
    return str(out)


def data_options(data):
    return {f"{loader}.dataset.data_root": data + "/"
            for loader in ("train_dataloader", "val_dataloader", "test_dataloader")}
