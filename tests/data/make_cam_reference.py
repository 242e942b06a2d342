#!/usr/bin/env python3
"""Writes cam_reference.txt: Grad-CAM, Guided Grad-CAM, DeepLIFT-SHAP and GradientSHAP computed
by Captum 0.7.0 in float64, the independent reference for rar::grad_cam, rar::guided_grad_cam,
rar::deeplift_shap and rar::gradient_shap (tests/attribution/test_cam.cpp).

Networks (each written as head and tail, model(x) = tail(head(x)); Captum's layer is the head
module, so the layer output it attributes to is h = head(x)):

  * cnn:      head = Conv2d(1, 3, 3), ReLU, Conv2d(3, 4, 3), ReLU          (x [4, 1, 10, 10],
              h [4, 4, 6, 6]);  tail = MaxPool2d(2), Flatten, Linear(36, 8), ReLU, Linear(8, 3)
  * residual: the network of make_residual_reference.py (same weights, seed 11), split after
              its average pool: head(x) = avg_pool(cat(relu(h + r), elu(branch(h)))) [4, 6, 3, 3]
  * mlp:      Linear(6, 10), Tanh, Linear(10, 3) (smooth, for GradientSHAP's expectations)

Stored per network: LayerGradCam (relu_attributions off/on, attr_dim_summation off), GuidedGradCam
(interpolate_mode nearest and bilinear), DeepLiftShap over a baseline set of 5 and its deltas, and
DeepLift from the first baseline alone. For the cnn also an independent DeepLIFT with the plain
gradient of each sample's own row where |z - z'| < eps (.per_sample): Captum's max-pool rule takes
the first row's there (`grad_input[0]` in captum/attr/_core/deep_lift.py), which is why Captum's
summation-to-delta gap on the cnn is ~1e-2.

GradientSHAP draws its baselines, noise and path points from numpy/torch streams that a C++
library cannot reproduce, so it is pinned down in expectation:
  * gradient_shap.exact: with stdevs = 0, E[attribution] = mean over the baseline set of the
    integrated gradients from each baseline (alpha ~ U(0, 1) is the path integral); written from
    Captum's IntegratedGradients (Gauss-Legendre, 64 steps, converged to round-off on the tanh MLP)
    and checked here against a Captum GradientShap estimate with 40000 samples.
  * gradient_shap.noisy: with stdevs = 0.3, Captum's GradientShap averaged over 8 runs of 10000
    samples each (different seeds) and the standard error of that mean (.se).

Regenerate (from the repository root):

    mkdir -p /tmp/captum070 && git -C /work/.mirror/pytorch+captum/repo archive refs/tags/v0.7.0 captum | tar -x -C /tmp/captum070
    PYTHONPATH=/tmp/captum070 /usr/bin/python3 tests/data/make_cam_reference.py

(/usr/bin/python3 is Debian's interpreter with python3-torch; Captum is taken from
$CAPTUM_PATH, default /tmp/captum070.) Writes cam_reference.txt next to this script.

Format: see reference_writer.py (parsed by tests/support/reference.hpp).
"""
import os
import sys

sys.path.insert(0, os.environ.get("CAPTUM_PATH", "/tmp/captum070"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

# Must precede everything: the models, inputs and Captum's internal tensors are float64.
torch.set_default_dtype(torch.float64)
torch.set_num_threads(1)  # the values do not depend on it; keeps a shared machine quiet

import captum  # noqa: E402
from captum.attr import (DeepLift, DeepLiftShap, GradientShap, GuidedGradCam,  # noqa: E402
                         IntegratedGradients, LayerGradCam)

from make_residual_reference import Residual  # noqa: E402  (this folder)
from reference_writer import Writer  # noqa: E402  (this folder)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cam_reference.txt")


class ResHead(nn.Module):
    """The residual network up to its average pool; registers the network (so Captum's hooks
    find its ReLUs) under the name `m`."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x):
        m = self.m
        h = m.stem_act(m.stem(x))
        r = m.conv_b(m.act_a(m.conv_a(h)))
        h2 = m.add_act(h + r)
        b = m.branch_act(m.branch(h))
        return m.pool(torch.cat([h2, b], dim=1))  # [N, 6, 3, 3]


class ResTail(nn.Module):
    """The rest of the residual network; holds it without registering it a second time."""

    def __init__(self, m):
        super().__init__()
        object.__setattr__(self, "m_ref", m)

    def forward(self, c):
        m = self.m_ref
        z = c.flatten(1)
        z = m.act2(m.fc2(m.act1(m.fc1(z))))
        return m.fc4(m.act3(m.fc3(z)))


def own_grad_cam(head, tail, x, target, relu):
    """Grad-CAM written out: sum_c mean_{ij}(dS/dh_c) h_c, the independent check."""
    h = head(x).detach().requires_grad_(True)
    s = tail(h).gather(1, target[:, None]).sum()
    (g,) = torch.autograd.grad(s, h)
    cam = (g.mean(dim=tuple(range(2, g.dim())), keepdim=True) * h).sum(1, keepdim=True)
    return F.relu(cam) if relu else cam.detach()


def per_sample_deeplift(model, x, ref, target, eps=1e-10):
    """DeepLIFT's rescale rule (and Captum's cross-maximum rule for MaxPool2d) on a flat
    Sequential, written out with the plain gradient of each sample's own row where |z - z'| < eps.
    Captum's maxpool rule takes `grad_input[0]` there (the first row's plain gradient, broadcast
    to every row), which breaks summation to delta; this independent version keeps it exact."""
    mods = list(model)
    xs, rs = [x], [ref]
    with torch.no_grad():
        for m in mods:
            xs.append(m(xs[-1]))
            rs.append(m(rs[-1]))
    g = torch.zeros(x.shape[0], xs[-1].shape[1])
    g[torch.arange(x.shape[0]), target] = 1.0
    for k in range(len(mods) - 1, -1, -1):
        m, zi, zr = mods[k], xs[k], rs[k]
        z = zi.clone().requires_grad_(True)
        plain = torch.autograd.grad(m(z), z, g)[0]
        d = zi - zr
        if isinstance(m, (nn.ReLU,)):
            g = torch.where(d.abs() < eps, plain, g * (xs[k + 1] - rs[k + 1]) / d)
        elif isinstance(m, nn.MaxPool2d):
            yi, ii = F.max_pool2d(zi, m.kernel_size, return_indices=True)
            yr, ir = F.max_pool2d(zr, m.kernel_size, return_indices=True)
            cm = torch.max(yi, yr)
            size = zi.shape[-2:]
            c = (F.max_unpool2d(g * (cm - yr), ii, m.kernel_size, output_size=size) +
                 F.max_unpool2d(g * (yi - cm), ir, m.kernel_size, output_size=size))
            g = torch.where(d.abs() < eps, plain, c / d)
        else:
            g = plain
    return (x - ref) * g


def layer_cases(w, checks, name, head, tail, x, baselines, target):
    model = nn.Sequential(head, tail).eval()
    w.put(f"{name}.input", x)
    w.put(f"{name}.baselines", baselines)
    w.put(f"{name}.target", target)
    with torch.no_grad():
        w.put(f"{name}.output", model(x))
        w.put(f"{name}.layer", head(x))

    gc = LayerGradCam(model, head)
    for relu in (False, True):
        a = gc.attribute(x.clone(), target=target, relu_attributions=relu)
        own = own_grad_cam(head, tail, x, target, relu)
        gap = (a - own).abs().max().item()
        assert gap < 1e-13, (name, relu, gap)
        checks.append((f"{name} grad_cam relu={relu}: |Captum - own|", gap))
        w.put(f"{name}.grad_cam.relu{int(relu)}", a)
    w.put(f"{name}.grad_cam.channels",
          gc.attribute(x.clone(), target=target, attr_dim_summation=False))

    ggc = GuidedGradCam(model, head)
    for mode in ("nearest", "bilinear"):
        a = ggc.attribute(x.clone(), target=target, interpolate_mode=mode)
        assert a.shape == x.shape, (name, mode, a.shape)
        w.put(f"{name}.guided_grad_cam.{mode}", a)

    # DeepLIFT from the first baseline alone (the terms DeepLiftShap averages).
    w.put(f"{name}.deeplift.base0",
          DeepLift(model).attribute(x.clone(), baselines=baselines[:1].expand_as(x).clone(),
                                    target=target))

    if name == "cnn":
        flat = nn.Sequential(*head, *tail).eval()
        own = per_sample_deeplift(flat, x, baselines[:1].expand_as(x), target)
        w.put("cnn.deeplift.base0.per_sample", own)
        own_shap = sum(per_sample_deeplift(flat, x, b.expand_as(x), target)
                       for b in baselines) / baselines.shape[0]
        w.put("cnn.deeplift_shap.per_sample", own_shap)
        with torch.no_grad():
            fx = model(x).gather(1, target[:, None]).squeeze(1)
            fb = model(baselines)[:, target].T.mean(1)
        checks.append(("cnn per-sample deeplift_shap |sum - (F(x) - mean F(b))|",
                       (own_shap.flatten(1).sum(1) - (fx - fb)).abs().max().item()))

    dls = DeepLiftShap(model)
    a, d = dls.attribute(x.clone(), baselines=baselines, target=target,
                         return_convergence_delta=True)
    w.put(f"{name}.deeplift_shap", a)
    w.put(f"{name}.deeplift_shap.delta", d)
    checks.append((f"{name} deeplift_shap max |delta| (Captum)", d.abs().max().item()))
    # Summation to delta on average: sum(a) = F(x) - mean_b F(b). Exact for the residual
    # network; with Captum's max-pool rule (cnn) it is not exact (Captum's own deltas reach
    # ~1e-2 here, flat or nested Sequential alike), so the cnn's gap is only recorded.
    with torch.no_grad():
        fx = model(x).gather(1, target[:, None]).squeeze(1)
        fb = model(baselines)[:, target].T.mean(1)
    gap = (a.flatten(1).sum(1) - (fx - fb)).abs().max().item()
    assert name != "residual" or gap < 1e-10, (name, gap)
    checks.append((f"{name} deeplift_shap |sum - (F(x) - mean F(b))|", gap))


def gradient_shap_cases(w, checks):
    torch.manual_seed(5)
    mlp = nn.Sequential(nn.Linear(6, 10), nn.Tanh(), nn.Linear(10, 3)).eval()
    x = torch.randn(3, 6)
    baselines = 0.5 * torch.randn(4, 6)
    target = torch.tensor([0, 2, 1])
    for key, value in mlp.state_dict().items():
        w.put(f"mlp.{key}", value)
    w.put("mlp.input", x)
    w.put("mlp.baselines", baselines)
    w.put("mlp.target", target)

    # Exact expectation with stdevs = 0: the mean over baselines of IG from each baseline.
    ig = IntegratedGradients(mlp)
    exact = torch.zeros_like(x)
    for b in baselines:
        exact += ig.attribute(x, baselines=b.expand_as(x).clone(), target=target, n_steps=64,
                              method="gausslegendre")
    exact /= baselines.shape[0]
    w.put("mlp.gradient_shap.exact", exact)
    ig128 = torch.zeros_like(x)
    for b in baselines:
        ig128 += ig.attribute(x, baselines=b.expand_as(x).clone(), target=target, n_steps=128,
                              method="gausslegendre")
    checks.append(("mlp IG 64 vs 128 Gauss-Legendre steps",
                   (ig128 / baselines.shape[0] - exact).abs().max().item()))
    gs = GradientShap(mlp)
    torch.manual_seed(0)
    np.random.seed(0)
    est = gs.attribute(x, baselines=baselines, target=target, n_samples=40000, stdevs=0.0)
    checks.append(("mlp Captum GradientShap (40000 samples) vs exact",
                   (est - exact).abs().max().item()))
    assert (est - exact).abs().max().item() < 0.05

    # With noise: Captum's estimate and its standard error, from 8 independent runs.
    runs = []
    for seed in range(8):
        torch.manual_seed(100 + seed)
        np.random.seed(100 + seed)
        runs.append(gs.attribute(x, baselines=baselines, target=target, n_samples=10000,
                                 stdevs=0.3))
    runs = torch.stack(runs)
    w.put("mlp.gradient_shap.noisy", runs.mean(0))
    w.put("mlp.gradient_shap.noisy.se", runs.std(0) / np.sqrt(runs.shape[0]))
    checks.append(("mlp GradientShap noisy: largest standard error",
                   (runs.std(0) / np.sqrt(runs.shape[0])).max().item()))


def main():
    w = Writer()
    checks = []

    torch.manual_seed(3)
    head = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Conv2d(3, 4, 3), nn.ReLU())
    tail = nn.Sequential(nn.MaxPool2d(2), nn.Flatten(), nn.Linear(36, 8), nn.ReLU(),
                         nn.Linear(8, 3))
    for key, value in head.state_dict().items():
        w.put(f"cnn.head.{key}", value)
    for key, value in tail.state_dict().items():
        w.put(f"cnn.tail.{key}", value)
    x = torch.randn(4, 1, 10, 10)
    baselines = 0.3 * torch.randn(5, 1, 10, 10)
    target = torch.tensor([0, 2, 1, 1])
    layer_cases(w, checks, "cnn", head.eval(), tail.eval(), x, baselines, target)

    # The residual network of make_residual_reference.py, with its weights.
    torch.manual_seed(11)
    res = Residual()
    with torch.no_grad():
        for m in (res.fc1, res.fc2, res.fc3, res.fc4):
            m.weight.mul_(2.0)
    res.eval()
    for key, value in res.state_dict().items():
        w.put(f"residual.{key}", value)
    torch.manual_seed(12)
    x = torch.randn(4, 2, 6, 6)
    baselines = 0.4 * torch.randn(5, 2, 6, 6)
    target = torch.tensor([0, 2, 1, 0])
    layer_cases(w, checks, "residual", ResHead(res).eval(), ResTail(res).eval(), x, baselines,
                target)

    gradient_shap_cases(w, checks)

    w.save(OUT, f"tests/data/make_cam_reference.py with Captum {captum.__version__} "
           f"and torch {torch.__version__}")
    for label, v in checks:
        print(f"{label:55s} {v:.3e}")
    print(f"wrote {len(w.lines)} tensors to {OUT}")


if __name__ == "__main__":
    main()
