#!/usr/bin/env python3
"""Writes quality_reference.txt: the references of the quality-metric tests
(tests/metrics/test_quality.cpp).

* infidelity computed by Captum 0.7.0's `captum.metrics.infidelity` in float64, on a small MLP
  and on the residual network of make_residual_reference.py (its weights read from
  residual_reference.txt), with fixed pre-drawn perturbations: Captum gets a `perturb_func`
  that returns them, the C++ test feeds the same tensors through rar's perturbation option.
  normalize False and True, and all-zero attributions (Captum's safe_div case).
* sparseness and complexity by numpy transcriptions of Quantus' `Sparseness` and `Complexity`
  (evaluate_instance after the base class' normalise_by_max over each sample and abs),
  Quantus itself not being installable here.
* deletion and insertion curves by a plain per-sample loop (one forward per point, numpy's
  stable argsort for the ranking), independent of rar's batched construction.

Regenerate (from the repository root), with Captum taken from the v0.7.0 tag of
pytorch/captum:

    mkdir -p /tmp/captum070 && git -C <clone of pytorch/captum> archive refs/tags/v0.7.0 captum | tar -x -C /tmp/captum070
    PYTHONPATH=/tmp/captum070 /usr/bin/python3 tests/data/make_quality_reference.py

(/usr/bin/python3 is Debian's interpreter with python3-torch, python3-numpy and python3-scipy.)
The output is written next to this script. Format: see reference_writer.py (parsed by
tests/support/reference.hpp).
"""
import math
import os
import sys

import numpy as np
import scipy.stats
import torch
import torch.nn as nn

torch.set_default_dtype(torch.float64)

import captum  # noqa: E402
from captum.metrics import infidelity  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_residual_reference import Residual  # noqa: E402
from reference_writer import Writer, read_reference  # noqa: E402

OUT = os.path.join(HERE, "quality_reference.txt")


def residual_model():
    ref = read_reference(os.path.join(HERE, "residual_reference.txt"))
    model = Residual()
    state = {k: ref["residual." + k] for k in model.state_dict()}
    model.load_state_dict(state)
    model.eval()
    return model, ref["residual.input"], torch.tensor([0, 2, 1, 0])


def input_x_gradient(model, x, target):
    xi = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(model(xi).gather(1, target[:, None]).sum(), xi)
    return g * x


def captum_infidelity(model, x, attr, target, perturbations, normalize):
    def perturb_func(inputs):
        assert inputs.shape == perturbations.shape
        return perturbations, inputs - perturbations

    s = perturbations.shape[0] // x.shape[0]
    return infidelity(model, perturb_func, x, attr, target=target, n_perturb_samples=s,
                      normalize=normalize)


# Quantus (understandable-machine-intelligence-lab/Quantus), transcribed for one sample.
def quantus_normalise_by_max(a):
    if np.all(a == 0.0):
        return a
    return a / np.max(np.abs(a))


def quantus_sparseness(a, normalise=True):
    if normalise:
        a = quantus_normalise_by_max(a)
    a = np.abs(a)
    a = np.array(np.reshape(a, np.prod(a.shape)), dtype=np.float64)
    a += 0.0000001
    a = np.sort(a)
    return np.sum((2 * np.arange(1, a.shape[0] + 1) - a.shape[0] - 1) * a) / (
        a.shape[0] * np.sum(a))


def quantus_complexity(a, normalise=True):
    if normalise:
        a = quantus_normalise_by_max(a)
    a = np.abs(a)
    with np.errstate(invalid="ignore"):
        a = np.array(np.reshape(a, np.prod(a.shape)), dtype=np.float64) / np.sum(np.abs(a))
    return scipy.stats.entropy(pk=a)


def loop_curve(model, x, attr, target, k, baseline, insert, group=False, use_abs=False,
               softmax=True):
    """[N, steps + 1] scores, one forward per point."""
    curves = []
    for n in range(x.shape[0]):
        r = attr[n].abs() if use_abs else attr[n]
        if group:
            r = r.sum(0)
        flat = r.reshape(-1).numpy()
        order = np.argsort(-flat, kind="stable")
        d = flat.shape[0]
        points = []
        for j in range(math.ceil(d / k) + 1):
            mask = np.zeros(d, dtype=bool)
            mask[order[:min(j * k, d)]] = True
            m = torch.from_numpy(mask).reshape(r.shape)
            if group:
                m = m.unsqueeze(0).expand_as(x[n])
            xs = torch.where(m, x[n], baseline[n]) if insert else torch.where(m, baseline[n], x[n])
            with torch.no_grad():
                out = model(xs[None])
            score = torch.softmax(out, 1)[0, target[n]] if softmax else out[0, target[n]]
            points.append(float(score))
        curves.append(points)
    return torch.tensor(curves)


def main():
    w = Writer()

    # --- infidelity on an MLP ---
    torch.manual_seed(21)
    mlp = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 4))
    mlp.eval()
    for name, p in mlp.state_dict().items():
        w.put("mlp." + name, p)
    x = torch.randn(3, 6)
    target = torch.tensor([1, 3, 0])
    attr = input_x_gradient(mlp, x, target)
    pert = 0.3 * torch.randn(3 * 7, 6)
    w.put("mlp.input", x)
    w.put("mlp.target", target)
    w.put("mlp.attributions", attr)
    w.put("mlp.perturbations", pert)
    for normalize in (False, True):
        tag = "normalize" if normalize else "plain"
        w.put(f"mlp.infidelity.{tag}", captum_infidelity(mlp, x, attr, target, pert, normalize))
        w.put(f"mlp.infidelity_zero_attr.{tag}",
              captum_infidelity(mlp, x, torch.zeros_like(x), target, pert, normalize))

    # --- infidelity on the residual network (weights from residual_reference.txt) ---
    torch.manual_seed(22)
    res, rx, rt = residual_model()
    rattr = input_x_gradient(res, rx, rt)
    rpert = 0.2 * torch.randn(4 * 5, *rx.shape[1:])
    w.put("residual.attributions", rattr)
    w.put("residual.perturbations", rpert)
    for normalize in (False, True):
        tag = "normalize" if normalize else "plain"
        w.put(f"residual.infidelity.{tag}",
              captum_infidelity(res, rx, rattr, rt, rpert, normalize))

    # --- sparseness and complexity (Quantus' formulas) ---
    torch.manual_seed(23)
    maps = torch.randn(6, 3, 4, 4)
    maps[1] = maps[1] ** 3  # heavier tails: sparser
    maps[2, :, :2] = 0.0  # exact zeros (0 log 0)
    maps[3] = torch.round(maps[3])  # ties
    maps[4] = 1e-3 * maps[4]  # small scale: normalise_by_max matters through the 1e-7
    maps[5] = 0.0  # all zero: sparseness ~0, complexity NaN
    w.put("maps", maps)
    a = maps.numpy()
    w.put("maps.sparseness", torch.tensor([quantus_sparseness(m) for m in a]))
    w.put("maps.sparseness_raw", torch.tensor([quantus_sparseness(m, False) for m in a]))
    w.put("maps.complexity", torch.tensor([quantus_complexity(m) for m in a]))

    # --- deletion and insertion curves ---
    base = 0.5 * torch.randn(3, 6)
    w.put("mlp.curve_baseline", base)
    zero = torch.zeros_like(x)
    for k in (1, 4):
        for insert in (False, True):
            kind = "insertion" if insert else "deletion"
            w.put(f"mlp.{kind}.k{k}", loop_curve(mlp, x, attr, target, k, zero, insert))
            w.put(f"mlp.{kind}.k{k}.baseline_logit",
                  loop_curve(mlp, x, attr, target, k, base, insert, softmax=False))
    for insert in (False, True):
        kind = "insertion" if insert else "deletion"
        w.put(f"residual.{kind}.grouped_abs.k5",
              loop_curve(res, rx, rattr, rt, 5, torch.zeros_like(rx), insert, group=True,
                         use_abs=True))
        w.put(f"residual.{kind}.k7",
              loop_curve(res, rx, rattr, rt, 7, torch.zeros_like(rx), insert))

    w.save(OUT, f"tests/data/make_quality_reference.py with Captum {captum.__version__}, "
                f"torch {torch.__version__}, numpy {np.__version__}, scipy {scipy.__version__}")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
