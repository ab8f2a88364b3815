#!/usr/bin/env python3
"""Writes the notebooks of docs/notebooks from the cells below (clean: no outputs, no execution
counts). Edit the cells here, then run

    python docs/notebooks/make_notebooks.py        # rewrites the .ipynb files
    python docs/notebooks/run_notebooks.py         # runs them as the tests do

so that a notebook's diff stays readable. The notebooks assert the numbers they show.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent


def md(text: str):
    return nbformat.v4.new_markdown_cell(text.strip("\n"))


def code(text: str):
    return nbformat.v4.new_code_cell(text.strip("\n"))


def notebook(cells) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    }
    return nb


# ------------------------------------------------------------------------------------------------
# groupnorm_and_ws.ipynb
# ------------------------------------------------------------------------------------------------

GN_WS = [
    md(r"""
# GroupNorm and Weight Standardization, from primitive ops

The GN and GN+WS Mask R-CNNs of gndet normalise with two operations:

* **GroupNorm** (Wu & He, 2018) normalises *activations*, per image and per group of channels;
* **Weight Standardization** (Qiao et al., 2019) normalises *convolution weights*, per output filter.

gndet computes both with fused kernels (`gndet.ops.group_norm`, `gndet.ops.weight_standardization`,
`gndet.ops.conv_ws2d`), each with a hand-written backward. This notebook builds the same two operations
from primitive ops (`reshape`, `mean`, `var`, `sub`, `mul`, `rsqrt`, ...), checks that both versions
agree, checks every backward against finite differences with `gndet.gradcheck`, writes one backward by
hand as a `gndet.autograd.Function` (and shows what a wrong one looks like), and looks at the autograd
graph the composed version records.

The tests run this notebook headless (`docs/notebooks/run_notebooks.py`): every number it shows is
also asserted.
"""),
    code(r"""
import math

import numpy as np
import matplotlib.pyplot as plt

import gndet
from gndet import ops

%matplotlib inline
rng = np.random.default_rng(0)
print("gndet", gndet.__version__)
"""),
    md(r"""
## 1. What GroupNorm computes

Take activations $x$ of shape $(N, C, H, W)$ and split the $C$ channels into $G$ groups of $C/G$
consecutive channels. For every image $n$ and group $g$, the statistics run over the group's
$C/G \cdot H \cdot W$ values $S_{n,g}$:

$$\mu_{n,g} = \frac{1}{|S_{n,g}|}\sum_{i \in S_{n,g}} x_i, \qquad
\sigma^2_{n,g} = \frac{1}{|S_{n,g}|}\sum_{i \in S_{n,g}} (x_i - \mu_{n,g})^2 \quad\text{(biased)},$$

$$\hat x_i = \frac{x_i - \mu_{n,g}}{\sqrt{\sigma^2_{n,g} + \epsilon}}, \qquad
y_{n,c,h,w} = \gamma_c\, \hat x_{n,c,h,w} + \beta_c .$$

$\gamma, \beta$ (one per channel) are learned; $\epsilon = 10^{-5}$. $G = 1$ is LayerNorm, $G = C$ is
InstanceNorm; the zoo uses $G = 32$, the tiny test model $G = 4$.

**Why not BatchNorm?** BatchNorm's statistics run over $(N, H, W)$ for each channel: an image's
output depends on the other images of the batch. A detector trains on large images, 1 or 2 per GPU,
where those batch statistics are too noisy to learn from; that is why the classic detectors *freeze*
BatchNorm in the backbone and have none in the heads. GroupNorm's statistics belong to one image, so
its output does not depend on the batch at all, and training and inference compute the same thing
(no running averages). That is what lets the GN models train every norm layer, heads included.

Here is GroupNorm written with primitive ops. `x.reshape([N, G, -1])` puts each group's values on
the last axis, so that `mean` / `var` over axis 2 are exactly $\mu_{n,g}$ and $\sigma^2_{n,g}$:
"""),
    code(r"""
def group_norm_composed(x, num_groups, weight=None, bias=None, eps=1e-5, trace=None):
    # GroupNorm from primitive ops. `trace`, a dict, collects the intermediates (section 5).
    N, C = x.shape[0], x.shape[1]
    xg = x.reshape([N, num_groups, -1])                  # (N, G, C/G * H * W)
    mean = ops.mean(xg, [2], True)                       # mu, (N, G, 1)
    var = ops.var(xg, [2], False, True)                  # sigma^2, biased, (N, G, 1)
    rstd = ops.rsqrt(var + eps)                          # 1 / sqrt(sigma^2 + eps)
    centred = xg - mean
    xhat = centred * rstd                                # normalised, (N, G, C/G * H * W)
    y = xhat.reshape(x.shape)
    if trace is not None:
        trace.update(x=x, xg=xg, mean=mean, var=var, var_eps=var + eps, rstd=rstd, centred=centred,
                     xhat=xhat, y=y)
    if weight is not None:
        w4 = weight.reshape([1, C, 1, 1])
        y = y * w4
        if trace is not None:
            trace.update(weight=weight, w4=w4, scaled=y)
    if bias is not None:
        b4 = bias.reshape([1, C, 1, 1])
        y = y + b4
        if trace is not None:
            trace.update(bias=bias, b4=b4, out=y)
    return y
"""),
    md(r"""
### Composed vs fused

Compare it with the fused `gndet.ops.group_norm` on activations that are far from normalised (mean 1,
std 3), in float32 and float64.

**The tolerances.** The two versions round differently: the fused kernel accumulates the statistics
in double and applies one multiply-add per element, the composed version rounds every intermediate
(`mean`, `var`, `rsqrt`, the subtraction, the products) to the tensor's type. float32 keeps 24
significant bits, a relative rounding error of $2^{-24} \approx 6 \cdot 10^{-8}$ per step; some ten
steps on outputs of magnitude up to about 5 ($|\hat x| \lesssim 4$ times $\gamma \approx 1$, plus
$\beta$) give at most a few times $10^{-6}$. We allow $2 \cdot 10^{-5}$, several times the worst we
expect, and still a thousand times smaller than any real mistake (a biased / unbiased variance mix-up
alone changes the output by $\approx 10^{-2}$ here). In float64 the same reasoning with $2^{-53}$
gives $\approx 10^{-14}$; we allow $10^{-12}$.
"""),
    code(r"""
N, C, H, W, G = 2, 8, 5, 6, 4
x_np = rng.normal(1.0, 3.0, size=(N, C, H, W))
gamma_np = rng.normal(1.0, 0.2, size=C)
beta_np = rng.normal(0.0, 0.2, size=C)

TOL = {"float32": 2e-5, "float64": 1e-12}
for dtype in ("float32", "float64"):
    x, gamma, beta = (gndet.tensor(a, dtype=dtype) for a in (x_np, gamma_np, beta_np))
    fused = ops.group_norm(x, G, gamma, beta, 1e-5).numpy()
    composed = group_norm_composed(x, G, gamma, beta).numpy()
    diff = np.abs(fused - composed).max()
    print(f"{dtype}: max |fused - composed| = {diff:.2e}  (tolerance {TOL[dtype]:.0e}, "
          f"largest |y| = {np.abs(fused).max():.2f})")
    assert diff < TOL[dtype], (dtype, diff)

# A mistake of the kind the tolerance must catch: the unbiased variance instead of the biased one.
x = gndet.tensor(x_np, dtype="float32")
xg = x.reshape([N, G, -1])
wrong = ((xg - ops.mean(xg, [2], True)) * ops.rsqrt(ops.var(xg, [2], True, True) + 1e-5)).reshape(x.shape)
wrong_diff = np.abs(wrong.numpy() - ops.group_norm(x, G, None, None, 1e-5).numpy()).max()
print(f"unbiased variance by mistake: max diff {wrong_diff:.2e}")
assert wrong_diff > 100 * TOL["float32"]
"""),
    md(r"""
### What the normalisation does, and batch-independence

Left: the mean and standard deviation of each (image, group) before GroupNorm; right: after it (with
$\gamma = 1, \beta = 0$): every group of every image is moved to mean 0, std 1.

Then the property that matters for detection: GroupNorm of image 0 is the same whether image 0 is
alone or in a batch of 2, 4 or 8 (up to rounding: the statistics are computed the same way, only
the threads that compute them may differ). A BatchNorm-style normalisation (statistics per channel
over $N, H, W$, written with the same primitive ops) changes with every batch.
"""),
    code(r"""
x = gndet.tensor(rng.normal(0.5, 2.0, size=(8, C, H, W)) * rng.uniform(0.2, 3.0, size=(8, 1, 1, 1)))
y = ops.group_norm(x, G, None, None, 1e-5)
stats_in = x.numpy().reshape(8, G, -1)
stats_out = y.numpy().reshape(8, G, -1)

fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True)
for ax, s, title in ((axes[0], stats_in, "before GroupNorm"), (axes[1], stats_out, "after GroupNorm")):
    ax.scatter(s.mean(-1).ravel(), s.std(-1).ravel(), c=np.repeat(np.arange(8), G), cmap="tab10")
    ax.set_title(title)
    ax.set_xlabel("mean of an (image, group)")
axes[0].set_ylabel("std of an (image, group)")
plt.tight_layout()
plt.show()
assert np.abs(stats_out.mean(-1)).max() < 1e-5 and np.abs(stats_out.std(-1) - 1).max() < 1e-3


def batch_norm_style(x, eps=1e-5):
    # Statistics per channel over (N, H, W): what BatchNorm computes in training.
    mean = ops.mean(x, [0, 2, 3], True)
    var = ops.var(x, [0, 2, 3], False, True)
    return (x - mean) * ops.rsqrt(var + eps)


alone_gn = ops.group_norm(x[0:1], G, None, None, 1e-5).numpy()[0]
alone_bn = batch_norm_style(x[0:1]).numpy()[0]
print("batch size | GN: max |y0(batch) - y0(alone)| | BN-style: same")
for n in (2, 4, 8):
    gn_diff = np.abs(ops.group_norm(x[0:n], G, None, None, 1e-5).numpy()[0] - alone_gn).max()
    bn_diff = np.abs(batch_norm_style(x[0:n]).numpy()[0] - alone_bn).max()
    print(f"{n:10d} | {gn_diff:31.2e} | {bn_diff:.2e}")
    assert gn_diff < 1e-6, "GroupNorm must not depend on the rest of the batch"
    assert bn_diff > 1e-2, "the BatchNorm-style statistics do depend on it"
"""),
    md(r"""
## 2. Weight Standardization

Weight Standardization normalises the *weights* of a convolution instead of its input. A weight
$W$ of shape $(O, I, k_h, k_w)$ has $O$ output filters of $R = I \cdot k_h \cdot k_w$ values; each is
standardised on its own, then the convolution runs with $\hat W$:

$$\mu_o = \frac{1}{R}\sum_{j} W_{o,j}, \qquad
\sigma_o = \sqrt{\frac{1}{R - 1}\sum_{j} (W_{o,j} - \mu_o)^2} \quad\text{(unbiased)}, \qquad
\hat W_{o,j} = \frac{W_{o,j} - \mu_o}{\sigma_o + \epsilon}, \qquad y = \hat W * x + b .$$

(These are mmcv's `ConvWS2d` conventions, which gndet follows so that the zoo's GN+WS checkpoints
load: the *unbiased* std, and $\epsilon$ added to the std, not to the variance.)

**Why.** The gradient through a standardised weight has its component along the filter's mean and
its scale removed, which smooths the loss landscape (Qiao et al. bound the Lipschitz constants of the
loss and of its gradients). Combined with GroupNorm it trains micro-batches (1-2 images per GPU) as
well as BatchNorm trains large batches: those are the "GN+WS" rows of the zoo. Like GN it does not
depend on the batch; it depends on the weights only, so at inference $\hat W$ can be computed once.
"""),
    code(r"""
def weight_standardization_composed(w, eps=1e-5):
    O = w.shape[0]
    rows = w.reshape([O, -1])                                   # (O, R): one filter per row
    mean = ops.mean(rows, [1], True)
    std = ops.sqrt(ops.var(rows, [1], True, True))              # unbiased, as mmcv
    return ((rows - mean) / (std + eps)).reshape(w.shape)


O, I, K = 6, 4, 3
w_np = rng.normal(0.3, 0.1, size=(O, I, K, K))
b_np = rng.normal(0.0, 0.1, size=O)
xin_np = rng.normal(size=(2, I, 7, 7))
for dtype in ("float32", "float64"):
    w, b, xin = (gndet.tensor(a, dtype=dtype) for a in (w_np, b_np, xin_np))
    w_hat = ops.weight_standardization(w, 1e-5).numpy()
    d_ws = np.abs(w_hat - weight_standardization_composed(w).numpy()).max()
    # conv_ws2d fuses the standardisation into the convolution; compare it with conv2d on the composed weight.
    conv_fused = ops.conv_ws2d(xin, w, b, 1, 1, 1, 1, 1e-5).numpy()
    conv_composed = ops.conv2d(xin, weight_standardization_composed(w), b, 1, 1).numpy()
    d_conv = np.abs(conv_fused - conv_composed).max()
    print(f"{dtype}: weight max diff {d_ws:.2e}, conv output max diff {d_conv:.2e} "
          f"(largest |y| {np.abs(conv_fused).max():.1f}; tolerance {TOL[dtype]:.0e} relative to it)")
    assert d_ws < TOL[dtype], (dtype, d_ws)
    # A convolution output sums I * K * K = 36 products: its rounding error grows with its magnitude.
    assert d_conv < TOL[dtype] * max(1.0, np.abs(conv_fused).max()), (dtype, d_conv)

rows = w_hat.reshape(O, -1)
print("per filter, after WS: mean", np.round(rows.mean(1), 6), " unbiased std", np.round(rows.std(1, ddof=1), 6))
assert np.abs(rows.mean(1)).max() < 1e-12 and np.abs(rows.std(1, ddof=1) - 1).max() < 1e-3
"""),
    md(r"""
The standardised filters have mean 0 and unbiased std $\sigma_o / (\sigma_o + \epsilon)$, just below 1
(here $\sigma_o \approx 0.1$, so $1 - 10^{-4}$).

The tolerance of the convolution outputs scales with their magnitude: each output is a sum of
$I k_h k_w = 36$ products, and the fused and the composed paths round the weights differently
before summing.

## 3. Gradient checks

`gndet.gradcheck(fn, inputs)` compares the backward pass of `fn` with central finite differences
$\big(f(x + \epsilon e_i) - f(x - \epsilon e_i)\big) / 2\epsilon$, $\epsilon = 10^{-6}$, for every input
element that requires a gradient. It projects the outputs on fixed random weights (PyTorch's "fast
mode"), so one backward pass checks all input elements at once, and passes when every element has
$|\text{analytic} - \text{numeric}| \le 10^{-5} + 10^{-3}\,|\text{numeric}|$.

It insists on **float64**: in float32 the rounding error of $f$ ($\approx 10^{-7}$ relative) divided by
$2\epsilon$ would be as large as the derivatives themselves.

We check the composed GN and WS (whose backward is autograd's chain rule through the primitive
ops), the fused ops (whose backward is hand-written C++), and `conv_ws2d`, on small inputs:
"""),
    code(r"""
def f64(shape, mean=0.0, std=1.0):
    return gndet.tensor(rng.normal(mean, std, size=shape), dtype="float64", requires_grad=True)


xs, gs, bs = f64((2, 6, 3, 4), 0.5, 2.0), f64(6, 1.0, 0.3), f64(6, 0.0, 0.3)
ws, wb, wx = f64((4, 3, 3, 3), 0.2, 0.5), f64(4), f64((1, 3, 5, 5))
checks = {
    "group_norm, composed": (lambda x, g, b: group_norm_composed(x, 3, g, b), [xs, gs, bs]),
    "group_norm, fused": (lambda x, g, b: ops.group_norm(x, 3, g, b, 1e-5), [xs, gs, bs]),
    "weight_standardization, composed": (weight_standardization_composed, [ws]),
    "weight_standardization, fused": (lambda w: ops.weight_standardization(w, 1e-5), [ws]),
    "conv_ws2d (x, weight, bias)": (lambda x, w, b: ops.conv_ws2d(x, w, b, 1, 1, 1, 1, 1e-5), [wx, ws, wb]),
}
for name, (fn, inputs) in checks.items():
    result = gndet.gradcheck(fn, inputs)
    print(f"{name:34s} passed={result.passed}  elements={result.elements:4d}  "
          f"max abs error={result.max_abs_error:.1e}")
    assert result.passed, (name, result)
"""),
    md(r"""
## 4. A backward written by hand: `gndet.autograd.Function`

A `gndet.autograd.Function` is a forward and a backward written in Python; `apply` runs the forward
without recording a graph and records *one* node, whose backward is ours, in gndet's C++ graph.

Here it is for the normalisation part of GroupNorm, $\hat x = (x - \mu)\, r$ with
$r = (\sigma^2 + \epsilon)^{-1/2}$, per group of $M$ values. Given the incoming gradient
$g = \partial L / \partial \hat x$, differentiate through $\mu$ and $\sigma^2$ as well
($\partial \mu / \partial x_i = 1/M$, $\partial \sigma^2 / \partial x_i = 2 (x_i - \mu) / M$):

$$\frac{\partial L}{\partial x_i} = r \Big( g_i - \overline{g} - \hat x_i\, \overline{g \hat x} \Big),
\qquad \overline{g} = \frac{1}{M}\sum_j g_j, \quad \overline{g \hat x} = \frac{1}{M}\sum_j g_j \hat x_j .$$

The two subtracted terms are what normalising does to a gradient: it cannot change the group's mean
($-\overline{g}$) nor its scale ($-\hat x\, \overline{g \hat x}$), so those components are removed.
The forward saves $\hat x$ and $r$ — all the backward needs.
"""),
    code(r"""
class GroupNormalize(gndet.autograd.Function):
    # x_hat = (x - mean) * rstd per (image, group): GroupNorm without the affine part.

    @staticmethod
    def forward(ctx, x, num_groups, eps):
        xg = x.reshape([x.shape[0], num_groups, -1])
        mean = ops.mean(xg, [2], True)
        rstd = ops.rsqrt(ops.var(xg, [2], False, True) + eps)
        xhat = (xg - mean) * rstd
        ctx.save_for_backward(xhat, rstd)
        ctx.shape = x.shape
        return xhat.reshape(x.shape)

    @staticmethod
    def backward(ctx, grad):
        xhat, rstd = ctx.saved_tensors
        g = grad.reshape(xhat.shape)
        dx = rstd * (g - ops.mean(g, [2], True) - xhat * ops.mean(g * xhat, [2], True))
        return dx.reshape(ctx.shape), None, None   # one gradient per forward input (None: not a tensor)


x = f64((2, 6, 3, 4), 0.5, 2.0)
y = GroupNormalize.apply(x, 3, 1e-5)
print("the recorded node:", y.grad_fn)   # every Python Function's node has this name
assert y.grad_fn == "python_function"

# Same forward and same input gradient as the fused op.
fused = ops.group_norm(x, 3, None, None, 1e-5)
assert np.abs(y.detach().numpy() - fused.detach().numpy()).max() < 1e-12   # .numpy() wants no graph
upstream = gndet.tensor(rng.normal(size=x.shape), dtype="float64")
(y * upstream).sum().backward()
ours = x.grad.numpy().copy()
x.grad = None
(fused * upstream).sum().backward()
print("max |our dx - fused dx| =", f"{np.abs(ours - x.grad.numpy()).max():.1e}")
assert np.abs(ours - x.grad.numpy()).max() < 1e-10

result = gndet.gradcheck(lambda t: GroupNormalize.apply(t, 3, 1e-5), [x])
print("gradcheck of the hand-written backward:", result)
assert result.passed
"""),
    md(r"""
### A wrong backward, caught

The classic mistake: treat $\mu$ and $\sigma$ as constants and return $r\, g$, forgetting the two
terms. The forward is unchanged, so only the gradient check can tell, and it does:
"""),
    code(r"""
class GroupNormalizeWrong(GroupNormalize):
    @staticmethod
    def backward(ctx, grad):
        xhat, rstd = ctx.saved_tensors
        return (rstd * grad.reshape(xhat.shape)).reshape(ctx.shape), None, None   # mu and sigma "constant"


result = gndet.gradcheck(lambda t: GroupNormalizeWrong.apply(t, 3, 1e-5), [x])
print("passed:", result.passed)
print("worst element:", result.worst)
print(f"max abs error: {result.max_abs_error:.3f}")
assert not result.passed and result.max_abs_error > 1e-3
"""),
    md(r"""
## 5. The autograd graph

Every tensor an op makes records that op as its `grad_fn`, a node of the graph `backward()` walks in
reverse. gndet's Python API exposes each node's *name* (`t.grad_fn`) but not its edges, so we show the
graph in three ways:

1. the `grad_fn` of every intermediate tensor of `group_norm_composed` (read from the tensors);
2. the nodes `backward()` actually ran, in the order it ran them, recorded by `gndet.profile()`
   (backward nodes are ranges of kind `"backward"`);
3. a picture of the graph: the nodes labelled with the names from 1., the edges being the data flow
   of the code in section 1 (which intermediate each op was computed from).
"""),
    code(r"""
x = gndet.tensor(rng.normal(size=(2, 4, 3, 3)), requires_grad=True)
gamma = gndet.tensor(np.ones(4), requires_grad=True)
beta = gndet.tensor(np.zeros(4), requires_grad=True)
t = {}
out = group_norm_composed(x, 2, gamma, beta, trace=t)
loss = (out * out).sum()
t["loss"] = loss
for name, tensor in t.items():
    print(f"{name:8s} shape={str(tensor.shape):14s} grad_fn={tensor.grad_fn}")
assert t["x"].grad_fn is None and t["mean"].grad_fn == "mean" and t["var"].grad_fn == "var"
assert t["rstd"].grad_fn == "rsqrt" and t["loss"].grad_fn == "sum"

with gndet.profile() as prof:
    loss.backward()
ran = [r["name"] for r in prof.ranges if r["kind"] == "backward"]
print("\nbackward ran", len(ran), "nodes:", " -> ".join(ran))
recorded = {tensor.grad_fn for tensor in t.values() if tensor.grad_fn}
assert recorded <= set(ran), recorded - set(ran)
assert ran[0] == "sum" and ran.count("AccumulateGrad") == 3   # x, gamma and beta receive their .grad
assert all(p.grad is not None for p in (x, gamma, beta))

# The fused op is one node: its backward is one hand-written kernel.
x2 = gndet.tensor(x.detach().numpy(), requires_grad=True)
loss2 = (ops.group_norm(x2, 2, gamma.detach(), beta.detach(), 1e-5) ** 2).sum()
with gndet.profile() as prof2:
    loss2.backward()
ran_fused = [r["name"] for r in prof2.ranges if r["kind"] == "backward"]
print("fused group_norm: backward ran", " -> ".join(ran_fused))
assert "group_norm" in ran_fused and len(ran_fused) < len(ran)
assert np.abs(x2.grad.numpy() - x.grad.numpy()).max() < 1e-4
"""),
    code(r"""
# The picture: the data flow of group_norm_composed, each op labelled with its recorded grad_fn.
edges = [("x", "xg"), ("xg", "mean"), ("xg", "var"), ("var", "var_eps"), ("var_eps", "rstd"),
         ("xg", "centred"), ("mean", "centred"), ("centred", "xhat"), ("rstd", "xhat"), ("xhat", "y"),
         ("gamma", "w4"), ("y", "scaled"), ("w4", "scaled"), ("beta", "b4"), ("scaled", "out"), ("b4", "out"),
         ("out", "loss")]
t["gamma"], t["beta"] = gamma, beta
pos = {"x": (0, 0), "xg": (1, 0), "mean": (2, 1), "var": (2, -1), "centred": (3, 1), "var_eps": (3, -1),
       "rstd": (4, -1), "xhat": (5, 0), "y": (6, 0), "gamma": (5.5, 1.6), "w4": (6.5, 1.6), "scaled": (7.5, 0),
       "beta": (6.5, -1.6), "b4": (7.5, -1.6), "out": (8.5, 0), "loss": (9.5, 0)}
nodes = list(dict.fromkeys(n for e in edges for n in e))

fig, ax = plt.subplots(figsize=(12, 4.2))
for a, b in edges:
    ax.annotate("", xy=pos[b], xytext=pos[a],
                arrowprops=dict(arrowstyle="->", color="0.5", shrinkA=22, shrinkB=22))
for n, (px, py) in pos.items():
    op = t[n].grad_fn
    leaf = op is None
    label = f"{n}\n({'leaf' if leaf else op})"
    ax.text(px, py, label, ha="center", va="center", fontsize=8,
            bbox=dict(boxstyle="round", fc="#cde" if leaf else "#fed", ec="0.4"))
ax.set_xlim(-0.5, 10)
ax.set_ylim(-2.1, 2.1)
ax.axis("off")
ax.set_title("group_norm_composed: tensors (op that made them); backward follows the arrows in reverse")
plt.show()
assert len(nodes) == len(pos) == 16
"""),
    md(r"""
Reading the picture backwards is reading `backward()`: `loss` (a `sum`) sends its gradient to `out`,
`add` splits it between the scaled tensor and `b4` (and so `beta`), and so on down to `x`, which
receives contributions along three paths — directly through `centred`, through `mean` and through
`var` — exactly the three terms of the hand-written formula in section 4. The fused `group_norm`
replaces this whole subgraph by one node with that formula as its kernel.
"""),
]


# ------------------------------------------------------------------------------------------------
# mask_rcnn_step.ipynb
# ------------------------------------------------------------------------------------------------

STEP = [
    md(r"""
# One Mask R-CNN training step, taken apart

A training step of a two-stage detector, on one image:

1. **features**: the backbone (a ResNet) and the neck (an FPN) turn the image into feature maps at
   strides 4, 8, 16, 32 and 64;
2. **RPN**: *anchors* — boxes of a few sizes and shapes at every position of every level — are
   *assigned* to the ground-truth objects by IoU, a fixed number of them are *sampled*, and the RPN
   head is trained to score them (`loss_rpn_cls`) and to move the positive ones onto their object
   (`loss_rpn_bbox`); its best-scoring moved anchors become the *proposals*;
3. **RoI head**: the proposals (and the ground-truth boxes) are assigned and sampled again, their
   features are pooled with RoIAlign, and the box head classifies them (`loss_cls`) and refines the
   positive ones (`loss_bbox`); the mask head predicts a 28 × 28 mask for each positive (`loss_mask`);
4. **backward**: the sum of the five losses is differentiated down to every parameter.

We take these apart on the tiny GN Mask R-CNN of the tests (`configs/tests/mask-rcnn_tiny_gn.json`: a
ResNet-18 at a quarter of the width, a 32-channel FPN, GroupNorm with 4 groups everywhere but the
RPN), in its 64 × 64 "shapes" variant (`configs/tests/mask-rcnn_tiny_shapes.json`: 64-pixel inputs,
anchor scale 4, classes square / circle / triangle), with its initial weights: the model is
*untrained*, which makes some numbers predictable.

`gndet.Detector.loss` runs the whole step; the pieces in between come from `gndet._core.detection`,
bindings of the detector's own anchor generator, assigner and sampler, and of its first stage. The tests
run this notebook headless (`docs/notebooks/run_notebooks.py`): every number it shows is also asserted.
"""),
    code(r"""
import math

import numpy as np
import matplotlib.pyplot as plt
from matplotlib.patches import Rectangle

import gndet
from gndet import ops

detection = gndet._core.detection
%matplotlib inline

CONFIG = gndet.config_path("configs/tests/mask-rcnn_tiny_shapes.json")
SEED = 0                               # drives the samplers, as Detector.loss(..., seed=SEED)
det = gndet.Detector(CONFIG)           # no checkpoint: the initial weights (seed 0)
cfg = detection.model_config(det.model)
print("classes:", det.class_names)
print("parameters:", sum(p.numel() for p in det.model.parameters()))
"""),
    md(r"""
## 1. The image and its targets

A synthetic 64 × 64 image with one object of each class; its targets are what a dataset gives: a box
$(x_1, y_1, x_2, y_2)$ in pixels, a 0-based label and a binary mask per object.
"""),
    code(r"""
rng = np.random.default_rng(0)
S = 64
yy, xx = np.mgrid[0:S, 0:S]
masks = np.stack([
    (abs(xx - 19.5) <= 8) & (abs(yy - 17.5) <= 8),                                # square, 16 x 16
    (xx - 44.5) ** 2 + (yy - 22.5) ** 2 <= 12 ** 2,                                # circle, r = 12
    (yy >= 34) & (yy <= 60) & (abs(xx - 28.5) <= (yy - 34) * 0.75),               # triangle
]).astype(np.uint8)
labels = np.array([0, 1, 2])
colors = np.array([[230, 60, 50], [60, 160, 70], [50, 90, 220]])
image = (110 + 30 * rng.standard_normal((S, S, 1)) * np.ones(3)).clip(0, 255)
for m, c in zip(masks, colors):
    image[m.astype(bool)] = c
image = image.astype(np.uint8)


def box_of(mask):
    ys, xs = np.nonzero(mask)
    return [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]


boxes = np.array([box_of(m) for m in masks], dtype=np.float32)
CLASS_COLORS = ["tab:red", "tab:green", "tab:blue"]


def show(ax, title, img=image):
    ax.imshow(img)
    ax.set_title(title, fontsize=9)
    ax.set_xlim(-0.5, S - 0.5)
    ax.set_ylim(S - 0.5, -0.5)
    ax.axis("off")


def draw_boxes(ax, bxs, color, lw=1.0, ls="-", alpha=1.0):
    for x1, y1, x2, y2 in np.asarray(bxs).reshape(-1, 4):
        ax.add_patch(Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, ec=color, lw=lw, ls=ls,
                               alpha=alpha))


fig, axes = plt.subplots(1, 2, figsize=(7, 3.5))
show(axes[0], "image, boxes and labels")
for b, l in zip(boxes, labels):
    draw_boxes(axes[0], b, CLASS_COLORS[l], lw=2)
    axes[0].text(b[0], b[1] - 1, det.class_names[l], color=CLASS_COLORS[l], fontsize=8)
overlay = np.zeros((S, S, 4))
for m, l in zip(masks, labels):
    overlay[m.astype(bool)] = plt.matplotlib.colors.to_rgba(CLASS_COLORS[l], 0.8)
show(axes[1], "masks")
axes[1].imshow(overlay)
plt.show()
print("boxes:\n", boxes, "\nlabels:", labels, " mask areas:", masks.sum((1, 2)))
assert boxes.shape == (3, 4) and (boxes[:, 2:] > boxes[:, :2]).all()
"""),
    md(r"""
## 2. The network input and the features

The config's test pipeline resizes the image (64 × 64 keeps its size here), the data preprocessor
normalises it with the config's mean and std (127.5, 64) and pads it to a multiple of 32.
`detection.rpn_stage` runs exactly what `Detector.loss` runs up to the RoI head — the same pipeline, a
generator seeded with `SEED`, the model in training mode — and hands back the network input, the
features, the RPN's losses and its proposals.
"""),
    code(r"""
stage = detection.rpn_stage(CONFIG, det.model, image, boxes, labels, masks, seed=SEED)
net_in = stage["images"].numpy()
print("network input:", net_in.shape, stage["info"])
print(f"normalised pixels: mean {net_in.mean():.3f}, std {net_in.std():.3f}")
feat_sizes = [tuple(f.shape[2:]) for f in stage["feats"]]
strides = cfg["rpn_head"]["anchor_generator"]["strides"]
for s, f in zip(strides, stage["feats"]):
    print(f"FPN level stride {s:2d}: {f.shape}")
assert net_in.shape == (1, 3, S, S)
assert feat_sizes == [(S // s, S // s) for s in strides]
assert np.allclose(net_in[0, 0], (image[..., 0] - 127.5) / 64.0, atol=1e-5)   # channel 0 stays R
"""),
    md(r"""
## 3. Anchors

At level $l$ (stride $s_l$) the anchor generator places $A = |\text{ratios}| \cdot |\text{scales}|$
base anchors centred on every position $(x s_l, y s_l)$ of the $H_l \times W_l$ feature map, with
height and width

$$h = s_l \cdot \text{scale} \cdot \sqrt{\text{ratio}}, \qquad w = s_l \cdot \text{scale} / \sqrt{\text{ratio}} .$$

With scale 4 and ratios (0.5, 1, 2) that is 3 anchors per position, of area $(4 s_l)^2$: 16 × 16 boxes
at stride 4 up to 256 × 256 at stride 64. Anchor $(y W + x) A + a$ is the one the RPN head's outputs at
position $(x, y)$, channel $a$ score and move.
"""),
    code(r"""
ag = cfg["rpn_head"]["anchor_generator"]
levels = detection.anchors(ag["strides"], ag["ratios"], ag["scales"], feat_sizes)
A = len(ag["ratios"]) * len(ag["scales"])
print(f"{A} anchors per position")
for s, (h, w), a in zip(ag["strides"], feat_sizes, levels):
    sizes = np.unique(np.round(a.numpy()[:A, 2:] - a.numpy()[:A, :2], 2), axis=0)
    print(f"stride {s:2d}: {h:2d} x {w:2d} positions x {A} = {a.shape[0]:4d} anchors, (w, h) = {sizes.tolist()}")
    assert a.shape == (h * w * A, 4)
anchors = ops.cat(levels, 0)
n_anchors = anchors.shape[0]
print("all levels:", n_anchors)

# The formula, by hand, for the first position of level 0 (stride 4, centre (0, 0)).
s0, sc = ag["strides"][0], ag["scales"][0]
expected = [[-s0 * sc / math.sqrt(r) / 2, -s0 * sc * math.sqrt(r) / 2,
             s0 * sc / math.sqrt(r) / 2, s0 * sc * math.sqrt(r) / 2] for r in ag["ratios"]]
assert np.allclose(levels[0].numpy()[:A], expected, atol=1e-4)
assert n_anchors == sum(h * w * A for h, w in feat_sizes)

fig, axes = plt.subplots(1, 3, figsize=(10.5, 3.6))
level_colors = ["tab:orange", "tab:purple", "tab:cyan", "tab:olive", "tab:pink"]
show(axes[0], "anchor centres, strides 4 (dots) and 8 (x)")
c0 = (levels[0].numpy()[::A, :2] + levels[0].numpy()[::A, 2:]) / 2
c1 = (levels[1].numpy()[::A, :2] + levels[1].numpy()[::A, 2:]) / 2
axes[0].plot(c0[:, 0], c0[:, 1], ".", ms=2, color="yellow")
axes[0].plot(c1[:, 0], c1[:, 1], "x", ms=4, color="k")
show(axes[1], "the 3 anchors of one position, per level")
for l, a in enumerate(levels[:3]):
    h, w = feat_sizes[l]
    pos = ((h // 2) * w + w // 2) * A                     # the position nearest the image centre
    draw_boxes(axes[1], a.numpy()[pos:pos + A], level_colors[l], lw=1.5)
axes[1].set_xlim(-40, S + 40)
axes[1].set_ylim(S + 40, -40)
axes[2].bar([f"stride {s}" for s in ag["strides"]], [a.shape[0] for a in levels], color=level_colors)
axes[2].set_title("anchors per level", fontsize=9)
axes[2].tick_params(labelsize=7)
plt.tight_layout()
plt.show()
"""),
    md(r"""
## 4. The RPN's assigner: positive and negative anchors

The `MaxIoUAssigner` gives every anchor a ground-truth object or a "negative" from the IoU
(intersection over union) of the anchor with each ground-truth box:

* best IoU $< $ `neg_iou_thr` → negative (background);
* best IoU $\ge$ `pos_iou_thr` → positive for that object;
* in between → ignored (neither term of the loss sees it);
* `match_low_quality`: each object also claims the anchor(s) of its own best IoU if that is at least
  `min_pos_iou` — so an object no anchor fits well still gets positives.

The RPN uses 0.7 / 0.3 / 0.3 (from the config's `train_cfg.rpn.assigner`). Below: the assignment,
an IoU recomputed by hand to check it, and the positive anchors of each object.
"""),
    code(r"""
rpn_cfg = cfg["train_cfg"]["rpn"]
print("assigner:", rpn_cfg["assigner"])
gt_boxes, gt_labels = stage["gt_boxes"], stage["gt_labels"]
assigned = detection.assign(anchors, gt_boxes, gt_labels, rpn_cfg["assigner"])
gt_inds = assigned["gt_inds"].numpy()
max_iou = assigned["max_overlaps"].numpy()


def iou(a, b):
    # IoU of every box of a (K, 4) with every box of b (G, 4): (K, G).
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area = lambda x: (x[:, 2:] - x[:, :2]).prod(-1)
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


ious = iou(anchors.numpy().astype(np.float64), boxes.astype(np.float64))
assert np.allclose(ious.max(1), max_iou, atol=1e-5)
n_pos, n_neg, n_ign = (gt_inds > 0).sum(), (gt_inds == 0).sum(), (gt_inds < 0).sum()
print(f"{n_anchors} anchors: {n_pos} positive, {n_neg} negative, {n_ign} ignored")
for g in range(len(boxes)):
    mine = gt_inds == g + 1
    print(f"  {det.class_names[labels[g]]:8s}: {mine.sum():2d} positives, best anchor IoU {ious[:, g].max():.3f}")
    assert mine.sum() >= 1                                      # low-quality matching guarantees one
assert n_pos + n_neg + n_ign == n_anchors
pos_thr, neg_thr = rpn_cfg["assigner"]["pos_iou_thr"], rpn_cfg["assigner"]["neg_iou_thr"]
assert (max_iou[gt_inds == 0] < neg_thr).all()
assert ((max_iou[gt_inds > 0] >= pos_thr) | (max_iou[gt_inds > 0] >= rpn_cfg["assigner"]["min_pos_iou"])).all()

fig, axes = plt.subplots(1, 2, figsize=(8.5, 3.6))
show(axes[0], "positive anchors, coloured by object")
for g in range(len(boxes)):
    draw_boxes(axes[0], anchors.numpy()[gt_inds == g + 1], CLASS_COLORS[labels[g]], lw=1)
axes[1].hist(max_iou, bins=40, color="0.6")
axes[1].axvline(neg_thr, color="k", ls="--", label=f"neg < {neg_thr}")
axes[1].axvline(pos_thr, color="tab:red", ls="--", label=f"pos >= {pos_thr}")
axes[1].set_yscale("log")
axes[1].set_xlabel("best IoU of an anchor with any object")
axes[1].legend(fontsize=8)
plt.tight_layout()
plt.show()
"""),
    md(r"""
## 5. The RPN's sampler, and its two losses

Most anchors are negatives; training on all of them would teach the RPN to say "background". The
`RandomSampler` keeps `num` anchors, at most `pos_fraction` of them positive, drawn at random, and fills
the rest with random negatives. Then

$$\text{loss\_rpn\_cls} = \frac{1}{n}\sum_{\text{sampled}} \mathrm{BCE}(\text{logit}, [\text{positive}]),\qquad
\text{loss\_rpn\_bbox} = \frac{1}{n}\sum_{\text{positives}} \lVert \Delta - \Delta^* \rVert_1 ,$$

with $n$ the number of sampled anchors and $\Delta^*$ the offsets $(d_x, d_y, d_w, d_h)$ that move the
anchor onto its object's box.

Called with the step's seed, `detection.sample` draws exactly the anchors the step drew: the generator
ends in the same state as the RPN's inside `rpn_stage` (every random number accounted for).
"""),
    code(r"""
print("sampler:", rpn_cfg["sampler"])
rpn_sample = detection.sample(anchors, gt_boxes, gt_labels, rpn_cfg["assigner"], rpn_cfg["sampler"], seed=SEED)
pos_inds, neg_inds = rpn_sample["pos_inds"].numpy(), rpn_sample["neg_inds"].numpy()
num, frac = rpn_cfg["sampler"]["num"], rpn_cfg["sampler"]["pos_fraction"]
print(f"sampled {len(pos_inds)} positives (of {n_pos}; at most {int(num * frac)}) "
      f"and {len(neg_inds)} negatives (of {n_neg})")
print("generator state after sampling:", rpn_sample["generator_state"], "| inside the step:", stage["generator_state"])
assert rpn_sample["generator_state"] == stage["generator_state"]   # the same draw as the step's
assert len(pos_inds) == min(n_pos, int(num * frac)) and len(pos_inds) + len(neg_inds) == num
assert (gt_inds[pos_inds] > 0).all() and (gt_inds[neg_inds] == 0).all()
level_of = np.repeat(np.arange(len(levels)), [a.shape[0] for a in levels])   # each anchor's FPN level
sampled_levels = np.bincount(level_of[np.concatenate([pos_inds, neg_inds])], minlength=len(levels))
print("sampled anchors per level, strides", ag["strides"], ":", sampled_levels.tolist())

rpn_losses = {k: v.item() for k, v in stage["losses"].items()}
print("RPN losses:", {k: round(v, 4) for k, v in rpn_losses.items()})
# Untrained, the RPN's logits are ~0 (weights drawn from N(0, 0.01), biases 0): every BCE is ~ln 2.
assert abs(rpn_losses["loss_rpn_cls"] - math.log(2)) < 0.02
assert 0 < rpn_losses["loss_rpn_bbox"] < 1

fig, ax = plt.subplots(figsize=(4, 4))
show(ax, f"RPN sample: {len(pos_inds)} positive (by object), {len(neg_inds)} negative (gold)")
draw_boxes(ax, anchors.numpy()[neg_inds], "gold", lw=0.6, alpha=0.8)
for i in pos_inds:
    draw_boxes(ax, anchors.numpy()[i], CLASS_COLORS[labels[gt_inds[i] - 1]], lw=1.5)
ext = anchors.numpy()[np.concatenate([pos_inds, neg_inds])]   # anchors may reach past the image
lo, hi = min(ext.min(), 0) - 2, max(ext.max(), S) + 2
ax.set_xlim(lo, hi)
ax.set_ylim(hi, lo)
plt.show()
"""),
    md(r"""
## 6. Proposals, and the RoIs the second stage samples

The RPN's proposals are its best-scoring anchors (`nms_pre` per level), moved by its predicted
offsets, clipped to the image and thinned by non-maximum suppression (IoU 0.7), at most `max_per_img`
of them. Untrained, every score is ~0.5 and the offsets ~0: the proposals are essentially anchors.

The RoI head assigns them with its own thresholds (0.5 / 0.5 / 0.5), **adds the ground-truth boxes as
proposals** (so it always sees a few perfect boxes), and samples `num` = 64 RoIs with at most 25 %
positives. Continuing the generator from the RPN's state gives exactly the RoIs of the step.
"""),
    code(r"""
proposals = stage["proposals"].numpy()
scores = stage["proposal_scores"].numpy()
print(f"{len(proposals)} proposals (max_per_img {cfg['train_cfg']['rpn_proposal']['max_per_img']}), "
      f"scores in [{scores.min():.3f}, {scores.max():.3f}]")
assert 0 < len(proposals) <= cfg["train_cfg"]["rpn_proposal"]["max_per_img"]
assert np.abs(scores - 0.5).max() < 0.05          # untrained: sigmoid(~0)
assert (proposals[:, :2] >= 0).all() and (proposals[:, 2:] <= S).all()   # clipped to the image

rcnn_cfg = cfg["train_cfg"]["rcnn"]
print("assigner:", rcnn_cfg["assigner"], "\nsampler:", rcnn_cfg["sampler"])
rois = detection.sample(stage["proposals"], gt_boxes, gt_labels, rcnn_cfg["assigner"], rcnn_cfg["sampler"],
                        generator_state=stage["generator_state"])
pos_boxes, neg_boxes = rois["pos_boxes"].numpy(), rois["neg_boxes"].numpy()
pos_gt, pos_is_gt = rois["pos_gt_inds"].numpy(), rois["pos_is_gt"].numpy()
n_rois = len(pos_boxes) + len(neg_boxes)
print(f"sampled RoIs: {len(pos_boxes)} positive ({pos_is_gt.sum()} of them ground-truth boxes), "
      f"{len(neg_boxes)} negative")
print("positive RoIs' labels:", rois["pos_gt_labels"].numpy())
assert len(pos_boxes) <= int(rcnn_cfg["sampler"]["num"] * rcnn_cfg["sampler"]["pos_fraction"])
assert n_rois <= rcnn_cfg["sampler"]["num"] and pos_is_gt.sum() >= 1
assert (iou(pos_boxes, boxes)[np.arange(len(pos_boxes)), pos_gt] >= rcnn_cfg["assigner"]["pos_iou_thr"] - 1e-6).all()

fig, axes = plt.subplots(1, 2, figsize=(8, 4))
show(axes[0], f"{len(proposals)} proposals")
draw_boxes(axes[0], proposals, "yellow", lw=0.5, alpha=0.6)
show(axes[1], "sampled RoIs: positive (colour; thick = gt), negative (white)")
draw_boxes(axes[1], neg_boxes, "white", lw=0.5, ls="--", alpha=0.7)
for b, g, is_gt in zip(pos_boxes, pos_gt, pos_is_gt):
    draw_boxes(axes[1], b, CLASS_COLORS[labels[g]], lw=2.5 if is_gt else 1.2)
plt.tight_layout()
plt.show()
"""),
    md(r"""
## 7. The five losses

`Detector.loss` runs the whole step — the same first stage, then the RoI head on the sampled RoIs:

* `loss_cls`: cross-entropy of the box head's $C + 1 = 4$-way classification (3 classes and
  background) over the sampled RoIs;
* `loss_bbox`: L1 between the predicted and the target offsets of the positive RoIs (for their class);
* `loss_mask`: per-pixel binary cross-entropy of the positive RoIs' 28 × 28 masks (for their class)
  against the ground-truth mask cropped to the RoI;
* `acc` is not a loss: the classifier's accuracy (%) over the sampled RoIs.

Untrained, the classifier's scores are nearly uniform: `loss_cls` $\approx \ln 4$; the mask logits
are near 0: `loss_mask` $\approx \ln 2$.
"""),
    code(r"""
losses = det.loss(image, boxes, labels, masks, seed=SEED)
values = {k: v.item() for k, v in losses.items()}
for k, v in values.items():
    print(f"{k:14s} {v:.4f}")
LOSSES = ["loss_rpn_cls", "loss_rpn_bbox", "loss_cls", "loss_bbox", "loss_mask"]
assert list(values) == LOSSES[:4] + ["acc", "loss_mask"]
assert all(math.isfinite(values[k]) and values[k] > 0 for k in LOSSES)
# The same step as the one taken apart above: the same first-stage losses, bit for bit ...
assert values["loss_rpn_cls"] == rpn_losses["loss_rpn_cls"] and values["loss_rpn_bbox"] == rpn_losses["loss_rpn_bbox"]
# ... and the accuracy is a whole number of our sampled RoIs.
correct = values["acc"] / 100 * n_rois
print(f"acc {values['acc']:.4f}% of {n_rois} RoIs = {correct:.3f} RoIs classified correctly")
assert abs(correct - round(correct)) < 1e-3
assert abs(values["loss_cls"] - math.log(4)) < 0.1 and abs(values["loss_mask"] - math.log(2)) < 0.1

fig, ax = plt.subplots(figsize=(6, 2.8))
ax.bar(LOSSES, [values[k] for k in LOSSES], color=["tab:orange"] * 2 + ["tab:blue"] * 3)
ax.axhline(math.log(2), color="k", ls=":", lw=1, label="ln 2")
ax.axhline(math.log(4), color="k", ls="--", lw=1, label="ln 4")
ax.set_title("the five losses (RPN orange, RoI head blue)", fontsize=9)
ax.tick_params(labelsize=7)
ax.legend(fontsize=7)
plt.show()
"""),
    md(r"""
## 8. Backward, and the gradients of the GroupNorm layers

The training loss is the sum of the five (mmdetection's `parse_losses`: every entry whose name contains
"loss"). `backward()` fills `.grad` of every parameter. For a GroupNorm layer
$y = \gamma_c \hat x + \beta_c$, the gradients of its two parameters are sums over the images and
positions of the gradient arriving at the layer's output:

$$\frac{\partial L}{\partial \beta_c} = \sum_{n,h,w} \frac{\partial L}{\partial y_{n,c,h,w}}, \qquad
\frac{\partial L}{\partial \gamma_c} = \sum_{n,h,w} \frac{\partial L}{\partial y_{n,c,h,w}}\,\hat x_{n,c,h,w}.$$

Below: the gradient of the backbone's first GN layer (the stem's, `backbone.gn1`) channel by channel,
and the gradient norms of every GN layer of the network, from the stem to the mask head.

One pattern stands out: the **first** GN layer of every residual block (`layerX.Y.gn1`) gets *exactly
zero* gradient in this first step. That is `zero_init_residual`: each block's *last* norm layer
(`gn2`) starts with $\gamma = 0$, so that every residual block starts as the identity (a deep ResNet
then trains like a shallow one at first). With $\gamma = 0$ no gradient passes back through `gn2`
into the block's branch, only to `gn2`'s own $\gamma$ and $\beta$ — and around the block through its
shortcut, which is why the stem and the FPN still get theirs.

A second zero, `neck.fpn_convs.3.gn`, has another cause: only *sampled* anchors and RoIs reach the
losses. That layer makes the FPN's stride-32 output (and, through a max-pool, the stride-64 one); the
RoI head pools every RoI of a 64-pixel image from the finest level (mmdetection maps a RoI of size
$\sqrt{wh}$ to level $\lfloor \log_2(\sqrt{wh} / 56) \rfloor$, clamped to 0..3), so its only gradient
would come from sampled RPN anchors of strides 32 and 64 — and the RPN sample above has none.
"""),
    code(r"""
total = None
for k in LOSSES:
    total = losses[k] if total is None else total + losses[k]
det.model.zero_grad()
total.backward()
print(f"total loss {total.item():.4f}")

params = dict(det.model.named_parameters())
grad = lambda name: params[name].grad.numpy().copy()
LAYER = "backbone.gn1"
gw, gb = grad(LAYER + ".weight"), grad(LAYER + ".bias")
print(f"{LAYER}: {gw.size} channels, |grad gamma| = {np.linalg.norm(gw):.3e}, |grad beta| = {np.linalg.norm(gb):.3e}")
assert np.isfinite(gw).all() and np.isfinite(gb).all()
assert np.linalg.norm(gw) > 0 and np.linalg.norm(gb) > 0
# Every parameter has a finite gradient.
assert all(p.grad is not None and np.isfinite(p.grad.numpy()).all() for p in params.values())

order = list(params)   # the model's order: stem, backbone stages, FPN, box head, mask head
gn_layers = sorted({n.rsplit(".", 1)[0] for n in params if ".gn" in n}, key=lambda l: order.index(l + ".weight"))
norms = np.array([[np.linalg.norm(grad(f"{l}.{p}")) for p in ("weight", "bias")] for l in gn_layers])
block_gn1 = [l for l in gn_layers if l.startswith("backbone.layer") and l.endswith(".gn1")]
print(f"{len(gn_layers)} GroupNorm layers; {len(block_gn1)} of them are the first GN of a residual block")
for l, (nw, nb) in zip(gn_layers, norms):
    print(f"  {l:40s} |grad gamma| {nw:.2e}  |grad beta| {nb:.2e}")
coarse = sampled_levels[3:].sum()
print(f"RPN anchors sampled at strides 32 and 64: {coarse}")
for l, (nw, nb) in zip(gn_layers, norms):
    if l in block_gn1:
        # zero_init_residual: the block's gn2 has gamma = 0, so nothing reaches gn1.
        assert nw == 0 and nb == 0, l
        assert (params[l[:-1] + "2.weight"].detach().numpy() == 0).all()
    elif l == "neck.fpn_convs.3.gn":
        assert (nw == 0 and nb == 0) == (coarse == 0), (l, coarse)
    else:
        assert nw > 0 and nb > 0, l

fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw={"width_ratios": [1, 2.6]})
ch = np.arange(gw.size)
axes[0].bar(ch - 0.2, gw, 0.4, label="dL/d gamma")
axes[0].bar(ch + 0.2, gb, 0.4, label="dL/d beta")
axes[0].set_title(f"{LAYER}, per channel", fontsize=9)
axes[0].set_xlabel("channel")
axes[0].legend(fontsize=7)
x = np.arange(len(gn_layers))
axes[1].bar(x - 0.2, norms[:, 0], 0.4, label="|grad gamma|")
axes[1].bar(x + 0.2, norms[:, 1], 0.4, label="|grad beta|")
for i, l in enumerate(gn_layers):
    if norms[i].max() == 0:
        axes[1].text(i, 2e-7, "0", ha="center", fontsize=7, color="tab:red")
axes[1].set_yscale("symlog", linthresh=1e-6)
axes[1].set_ylim(0, 1)
axes[1].set_xticks(x, [l.replace("backbone.", "bb.").replace("roi_head.", "") for l in gn_layers], rotation=90,
                   fontsize=6)
axes[1].set_title("gradient norms of every GroupNorm layer (0: exactly zero)", fontsize=9)
axes[1].legend(fontsize=7, loc="upper center", ncol=2)
plt.tight_layout()
plt.show()
"""),
    md(r"""
## 9. The update

The step ends with the optimizer: SGD moves every parameter against its gradient. Run again on the same
image with the same seed:

* the RPN's losses are computed on the *same* sampled anchors (anchors and their assignment do not
  depend on the weights), and both are lower;
* the RoI head's are not on the same RoIs: the proposals moved with the RPN, so the second stage
  samples other boxes, and its box and mask losses are not comparable from one step to the next. Its
  classification loss still drops: most sampled RoIs are background whatever the sample, and one step
  already shifts the classifier towards it.

And the blocks' `gn2` now have $\gamma \ne 0$ (their gradient was not zero), so from the second step on,
gradient flows into every residual branch: their `gn1` layers start learning too.
"""),
    code(r"""
sgd = gndet.optim.SGD(list(params.values()), lr=0.02, momentum=0.9)
sgd.step()
after = det.loss(image, boxes, labels, masks, seed=SEED)
total_after = None
for k in LOSSES:
    total_after = after[k] if total_after is None else total_after + after[k]
print(f"total loss: {total.item():.4f} before the step, {total_after.item():.4f} after it")
for k in LOSSES:
    print(f"  {k:14s} {values[k]:.4f} -> {after[k].item():.4f}")
for k in ("loss_rpn_cls", "loss_rpn_bbox", "loss_cls"):
    assert after[k].item() < values[k], k

det.model.zero_grad()
total_after.backward()
second = {l: np.linalg.norm(grad(l + ".weight")) for l in block_gn1}
print("second step, |grad gamma| of the blocks' gn1:")
print({l.replace("backbone.", ""): f"{v:.1e}" for l, v in second.items()})
assert all(v > 0 for v in second.values())
"""),
]


def main() -> int:
    for name, cells in (("groupnorm_and_ws.ipynb", GN_WS), ("mask_rcnn_step.ipynb", STEP)):
        nb = notebook(cells)
        nbformat.validate(nb)
        nbformat.write(nb, HERE / name)
        print("wrote", HERE / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
