#!/usr/bin/env python3
"""Small checkpoint fixtures for gndet's checkpoint reader (tests/nn/test_checkpoint_io.cpp).

Writes into tests/nn/fixtures/checkpoints/ (a few KB in all):
  zip_deflated.pth     zip_dtypes.pth re-zipped with deflated entries
  zip_dtypes.pth       torch.save of a state_dict: float32/float16/bfloat16/float64/int64/int32/uint8/bool
  legacy_dtypes.pth    the same, _use_new_zipfile_serialization=False
  zip_views.pth        views of one storage: a slice with offset and steps, a transpose, a row
  legacy_views.pth     the same in the legacy format
  mmengine.pth         an mmengine checkpoint (meta, state_dict, optimizer, message_hub), written by
                       mmengine.runner.save_checkpoint from a real SGD step and MessageHub
  detectron2.pkl       {"model": {name: ndarray}, "__author__", "matching_heuristics"}, pickle protocol 4
  detectron2_p5.pkl    the same with pickle protocol 5 (arrays through numpy's _frombuffer)
  detectron_py3.pkl    flat Detectron blobs with *_momentum, pickle protocol 2 from Python 3
                       (numpy bytes as _codecs.encode(text, 'latin1'))
  detectron_py2.pkl    {"blobs": {...}} as Python 2's cPickle writes it (protocol 2, BINSTRING raw
                       bytes; hand-assembled opcodes), with a big-endian and a Fortran-order array
  malicious_os_system.pkl   protocol 2 pickle that would call os.system('echo pwned')
  malicious_in_zip.pth      a torch zip whose data.pkl asks for posix.system
  expected.safetensors the values every test compares against, "<fixture>/<key>", as float32
                       (float tensors), int64 / int32 / uint8 / bool (the rest)
Run with the reference venv: /tmp/refenv/bin/python tools/reference/make_checkpoint_fixtures.py
"""
import collections
import io
import os
import pickle
import struct
import sys
import zipfile

import numpy as np
import torch
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "nn", "fixtures", "checkpoints")
expected = {}


def gen(seed):
    g = torch.Generator().manual_seed(seed)
    return g


def dtype_state():
    g = gen(1)
    return collections.OrderedDict([
        ("f32", torch.randn(2, 3, generator=g)),
        ("f16", torch.randn(3, 2, generator=g).half()),
        ("bf16", torch.randn(4, generator=g).bfloat16()),
        ("f64", torch.randn(2, 2, generator=g).double()),
        ("i64", torch.tensor([[-3, 5], [1 << 40, 7]], dtype=torch.int64)),
        ("i32", torch.tensor([-2, 0, 2147483647], dtype=torch.int32)),
        ("u8", torch.tensor([0, 17, 255], dtype=torch.uint8)),
        ("bool", torch.tensor([True, False, True, True])),
        ("scalar", torch.tensor(2.5)),
        ("empty", torch.zeros(0, 3)),
    ])


def views_state():
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6) * 0.5 - 3
    return collections.OrderedDict([
        ("base", base),
        ("slice", base[1:, 1::2]),  # offset 7, strides (6, 2)
        ("transposed", base.t()),    # strides (1, 6)
        ("row", base[2]),            # offset 12
    ])


def record(prefix, state):
    for k, v in state.items():
        t = v.detach().clone().contiguous()
        if t.dtype in (torch.float16, torch.bfloat16, torch.float64):
            t = t.float()
        expected[prefix + "/" + k] = t


def write_torch(name, obj, legacy=False):
    torch.save(obj, os.path.join(OUT, name), _use_new_zipfile_serialization=not legacy)


def np_state(seed):
    rng = np.random.RandomState(seed)
    return collections.OrderedDict([
        ("conv1_w", rng.randn(4, 3, 3, 3).astype(np.float32)),
        ("conv1_gn_s", rng.randn(4).astype(np.float32)),
        ("conv1_gn_b", rng.randn(4).astype(np.float32)),
        ("res2_0_branch2a_w", rng.randn(2, 4, 1, 1).astype(np.float32)),
    ])


# ---- Python 2 style pickle, assembled by hand (Python 3 cannot write BINSTRING from bytes) ----
class Py2Pickler:
    def __init__(self):
        self.out = bytearray(b"\x80\x02")
        self.memo = 0

    def put(self):
        self.out += b"q" + bytes([self.memo])
        self.memo += 1

    def string(self, s):  # Python 2 str: SHORT_BINSTRING or BINSTRING of raw bytes
        b = s if isinstance(s, bytes) else s.encode("latin1")
        if len(b) < 256:
            self.out += b"U" + bytes([len(b)]) + b
        else:
            self.out += b"T" + struct.pack("<I", len(b)) + b
        self.put()

    def global_(self, module, name):
        self.out += b"c" + module.encode() + b"\n" + name.encode() + b"\n"
        self.put()

    def int_(self, i):
        self.out += b"K" + bytes([i]) if 0 <= i < 256 else b"J" + struct.pack("<i", i)

    def array(self, a, byteorder="<", fortran=False):
        # numpy.core.multiarray._reconstruct(numpy.ndarray, (0,), 'b') then BUILD(state)
        self.global_("numpy.core.multiarray", "_reconstruct")
        self.global_("numpy", "ndarray")
        self.int_(0)
        self.out += b"\x85"
        self.put()
        self.string("b")
        self.out += b"\x87"
        self.put()
        self.out += b"R"
        self.put()
        self.out += b"("  # state tuple
        self.int_(1)
        self.out += b"("
        for s in a.shape:
            self.int_(s)
        self.out += b"t"
        self.put()
        self.global_("numpy", "dtype")
        self.string(a.dtype.str[1:])  # 'f4'
        self.int_(0)
        self.int_(1)
        self.out += b"\x87"
        self.put()
        self.out += b"R"
        self.put()
        self.out += b"("
        self.int_(3)
        self.string(byteorder)
        self.out += b"NNN"
        self.int_(-1)
        self.int_(-1)
        self.int_(0)
        self.out += b"t"
        self.put()
        self.out += b"b"
        self.out += b"\x88" if fortran else b"\x89"
        data = a.astype(a.dtype.newbyteorder(byteorder)).tobytes(order="F" if fortran else "C")
        self.string(data)
        self.out += b"t"
        self.put()
        self.out += b"b"


def detectron_py2():
    blobs = np_state(3)
    blobs["conv1_w_momentum"] = np.zeros((4, 3, 3, 3), np.float32)
    big = np.arange(6, dtype=np.float32).reshape(2, 3) / 4
    fort = np.arange(6, dtype=np.float32).reshape(2, 3) - 1
    p = Py2Pickler()
    p.out += b"}"
    p.put()
    p.string("blobs")
    p.out += b"}"
    p.put()
    p.out += b"("
    for k, v in blobs.items():
        p.string(k)
        p.array(v)
    p.string("big_endian_w")
    p.array(big, byteorder=">")
    p.string("fortran_w")
    p.array(fort, fortran=True)
    p.out += b"u"  # SETITEMS
    p.out += b"s"  # SETITEM blobs
    p.out += b"."
    with open(os.path.join(OUT, "detectron_py2.pkl"), "wb") as f:
        f.write(bytes(p.out))
    # Check with Python 3's own unpickler, the way Detectron files are read there.
    with open(os.path.join(OUT, "detectron_py2.pkl"), "rb") as f:
        back = pickle.load(f, encoding="latin1")["blobs"]
    assert np.array_equal(back["big_endian_w"], big) and np.array_equal(back["fortran_w"], fort)
    for k, v in blobs.items():
        if not k.endswith("_momentum"):
            assert np.array_equal(back[k], v), k
            expected["detectron_py2/" + k] = torch.from_numpy(v.copy())
    expected["detectron_py2/big_endian_w"] = torch.from_numpy(big.copy())
    expected["detectron_py2/fortran_w"] = torch.from_numpy(fort.copy())


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def malicious():
    # GLOBAL 'os system', the argument tuple, REDUCE, STOP: what a hostile file holds.
    evil = b"\x80\x02cos\nsystem\nq\x00X\x0a\x00\x00\x00echo pwnedq\x01\x85q\x02Rq\x03."
    with open(os.path.join(OUT, "malicious_os_system.pkl"), "wb") as f:
        f.write(evil)
    torch.save({"w": torch.ones(2), "evil": Evil()}, os.path.join(OUT, "malicious_in_zip.pth"))


def mmengine_checkpoint():
    from mmengine.logging import MessageHub
    from mmengine.runner.checkpoint import save_checkpoint, weights_to_cpu

    torch.manual_seed(0)
    model = torch.nn.Sequential(collections.OrderedDict([
        ("conv1", torch.nn.Conv2d(3, 4, 3, bias=False)), ("gn1", torch.nn.GroupNorm(2, 4))]))
    opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9, weight_decay=1e-4)
    loss = model(torch.randn(1, 3, 5, 5)).square().mean()
    loss.backward()
    opt.step()
    hub = MessageHub.get_instance("gndet_fixture")
    hub.update_scalar("train/loss", float(loss))
    hub.update_scalar("train/lr", 0.02)
    hub.update_info("iter", 1)
    state = collections.OrderedDict(("backbone." + k, v) for k, v in weights_to_cpu(model.state_dict()).items())
    ckpt = {
        "meta": {"epoch": 1, "iter": 1, "seed": 0, "experiment_name": "fixture", "mmengine_version": "0.10.7",
                 "dataset_meta": {"classes": ("a", "b"), "palette": [(1, 2, 3), (4, 5, 6)]},
                 "time": "20261203_000000"},
        "state_dict": state,
        "optimizer": opt.state_dict(),
        "message_hub": hub.state_dict(),
    }
    save_checkpoint(ckpt, os.path.join(OUT, "mmengine.pth"))
    record("mmengine", state)


def main():
    os.makedirs(OUT, exist_ok=True)
    s = dtype_state()
    write_torch("zip_dtypes.pth", s)
    write_torch("legacy_dtypes.pth", s, legacy=True)
    record("dtypes", s)
    # the same archive with its entries deflated (torch.load reads it too)
    with zipfile.ZipFile(os.path.join(OUT, "zip_dtypes.pth")) as zin, \
            zipfile.ZipFile(os.path.join(OUT, "zip_deflated.pth"), "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info.filename))
    back = torch.load(os.path.join(OUT, "zip_deflated.pth"))
    assert all(torch.equal(back[k], s[k]) for k in s)
    v = views_state()
    write_torch("zip_views.pth", v)
    write_torch("legacy_views.pth", v, legacy=True)
    record("views", v)
    # detectron2: {"model": ...} of numpy arrays, default pickle protocol of Python 3.8+ (4)
    d2 = np_state(2)
    with open(os.path.join(OUT, "detectron2.pkl"), "wb") as f:
        pickle.dump({"model": d2, "__author__": "Detectron2 Model Zoo", "matching_heuristics": True}, f, protocol=4)
    for k, a in d2.items():
        expected["detectron2/" + k] = torch.from_numpy(a.copy())
    # protocol 5: numpy writes arrays as numpy.core.numeric._frombuffer(bytearray, dtype, shape, order)
    with open(os.path.join(OUT, "detectron2_p5.pkl"), "wb") as f:
        pickle.dump({"model": d2, "__author__": "someone"}, f, protocol=5)
    # Detectron flat blobs from Python 3, protocol 2 (bytes through _codecs.encode)
    d3 = np_state(4)
    d3["conv1_w_momentum"] = np.ones((4, 3, 3, 3), np.float32)
    d3["lr"] = np.array([0.02], np.float64)
    with open(os.path.join(OUT, "detectron_py3.pkl"), "wb") as f:
        pickle.dump(d3, f, protocol=2)
    for k, a in d3.items():
        if not k.endswith("_momentum"):
            expected["detectron_py3/" + k] = torch.from_numpy(a.copy()).float()
    detectron_py2()
    malicious()
    mmengine_checkpoint()
    save_file(expected, os.path.join(OUT, "expected.safetensors"))
    print("wrote", sorted(os.listdir(OUT)))


if __name__ == "__main__":
    main()
