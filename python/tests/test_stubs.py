"""The committed type stubs (python/gndet/_core/*.pyi) are what nanobind's stubgen makes of the
extension now, so an editor's completions cannot drift from the bindings."""
import difflib
import os
import subprocess
import sys

import pytest

import gndet

STUBS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "gndet", "_core")


def test_stubs_are_current(tmp_path):
    pytest.importorskip("nanobind.stubgen", reason="nanobind is not installed here (it makes the stubs)")
    r = subprocess.run([sys.executable, "-m", "nanobind.stubgen", "-m", "gndet._core", "-r", "--exclude-values",
                        "-q", "-O", str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    made = sorted(os.listdir(tmp_path / "_core"))
    assert made == sorted(f for f in os.listdir(STUBS) if f.endswith(".pyi"))
    for name in made:
        with open(tmp_path / "_core" / name) as f:
            new = f.read().splitlines()
        with open(os.path.join(STUBS, name)) as f:
            old = f.read().splitlines()
        diff = "\n".join(difflib.unified_diff(old, new, "committed", "generated", lineterm="", n=1))
        assert not diff, (f"python/gndet/_core/{name} is stale; regenerate with tools/make-stubs:\n" + diff[:3000])


def test_every_public_name_has_a_docstring():
    undocumented = [n for n in gndet.ops.__all__ if not (getattr(gndet.ops, n).__doc__ or "").strip()]
    assert not undocumented
    for name in ["tensor", "from_numpy", "from_dlpack", "gradcheck", "profile", "Detector", "train", "save", "load"]:
        assert (getattr(gndet, name).__doc__ or "").strip(), name
