#!/usr/bin/env python3
"""Writes ig_family_reference.txt: references of tests/attribution/test_ig_family.cpp and
tests/metrics/test_certified.cpp.

* IDGI by the authors' formula (yangruo1226/IDGI, `IDGI(Gradients, Predictions)`: for each
  path point but the last, grad**2 * (pred[i+1] - pred[i]) / sum(grad**2)), with the gradients
  and predictions of each path point x' + (i/m)(x - x'), i = 0..m, taken one point and one
  sample at a time by plain autograd, on the residual network of make_residual_reference.py
  (weights read from residual_reference.txt). m = 7 and 32, zero and random baselines.
* Expected Gradients with every baseline of a set and Gauss-Legendre quadrature per baseline,
  as the mean over the set of per-baseline integrated gradients (numpy's Gauss-Legendre nodes,
  one sample at a time), on the same network.
* Clopper-Pearson bounds by scipy.stats.beta.ppf and the normal quantile by
  scipy.stats.norm.ppf, for the certificate of rar::certified_topk.

Regenerate (from the repository root):

    /usr/bin/python3 tests/data/make_ig_family_reference.py

(/usr/bin/python3 is Debian's interpreter with python3-torch, python3-numpy and python3-scipy.)
Format: see reference_writer.py (parsed by tests/support/reference.hpp).
"""
import os
import sys

import numpy as np
import scipy.stats
import torch

torch.set_default_dtype(torch.float64)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from reference_writer import Writer, read_reference  # noqa: E402

OUT = os.path.join(HERE, "ig_family_reference.txt")


def residual_model():
    """The residual network of make_residual_reference.py written out functionally (with its
    weights from residual_reference.txt): x [N, 2, 6, 6] -> logits [N, 3]."""
    p = {k[len("residual."):]: v for k, v in
         read_reference(os.path.join(HERE, "residual_reference.txt")).items()
         if k.startswith("residual.") and k.count(".") == 2}
    F = torch.nn.functional

    def conv(name, z, pad):
        return F.conv2d(z, p[name + ".weight"], p[name + ".bias"], padding=pad)

    def lin(name, z):
        return F.linear(z, p[name + ".weight"], p[name + ".bias"])

    def forward(x):
        h = F.relu(conv("stem", x, 1))
        r = conv("conv_b", F.leaky_relu(conv("conv_a", h, 1), 0.1), 1)
        h2 = F.relu(h + r)
        b = F.elu(conv("branch", h, 0))
        z = F.avg_pool2d(torch.cat([h2, b], dim=1), 2).flatten(1)
        z = F.softplus(lin("fc2", torch.tanh(lin("fc1", z))))
        return lin("fc4", torch.sigmoid(lin("fc3", z)))

    return forward


def grad_and_pred(model, point, target):
    p = point.clone().unsqueeze(0).requires_grad_(True)
    out = model(p)[0, target]
    (g,) = torch.autograd.grad(out, p)
    return g[0].numpy(), float(out)


def idgi_official(gradients, predictions):
    assert len(gradients) == len(predictions)
    result = np.zeros_like(gradients[0])
    for i in range(len(gradients) - 1):
        d = predictions[i + 1] - predictions[i]
        element_product = gradients[i] ** 2
        result += element_product * d / np.sum(element_product)
    return result


def idgi(model, x, baseline, targets, m):
    out = []
    for n in range(x.shape[0]):
        grads, preds = [], []
        for i in range(m + 1):
            point = baseline[n] + (i / m) * (x[n] - baseline[n])
            g, p = grad_and_pred(model, point, int(targets[n]))
            grads.append(g)
            preds.append(p)
        out.append(idgi_official(grads, preds))
    return np.stack(out)


def integrated_gradients(model, x, b, target, m):
    nodes, weights = np.polynomial.legendre.leggauss(m)
    alphas, w = 0.5 * (nodes + 1.0), 0.5 * weights
    total = np.zeros(x.shape)
    for a, wk in zip(alphas, w):
        g, _ = grad_and_pred(model, b + a * (x - b), target)
        total += wk * g
    return total * (x - b).numpy()


def main():
    torch.manual_seed(5)
    model = residual_model()
    x = torch.rand(3, 2, 6, 6) * 2.0 - 1.0
    targets = torch.tensor([0, 2, 1])
    random_baseline = torch.rand(3, 2, 6, 6) * 0.5
    w = Writer()
    w.put("input", x)
    w.put("targets", targets)
    w.put("random_baseline", random_baseline)
    for m in (7, 32):
        w.put(f"idgi.zero.m{m}", idgi(model, x, torch.zeros_like(x), targets, m))
        w.put(f"idgi.random.m{m}", idgi(model, x, random_baseline, targets, m))

    baselines = torch.rand(4, 2, 6, 6) - 0.5
    w.put("eg.baselines", baselines)
    eg = np.stack([
        np.mean([integrated_gradients(model, x[n], baselines[b], int(targets[n]), 6)
                 for b in range(baselines.shape[0])], axis=0)
        for n in range(x.shape[0])])
    w.put("eg.all.gl6", eg)

    cases = [(0, 10, 0.05), (7, 10, 0.05), (10, 10, 0.05), (3, 200, 1e-4), (150, 200, 1e-4),
             (200, 200, 1e-4), (1, 1000, 1e-6), (999, 1000, 1e-6)]
    w.put("cp.cases", np.array(cases, dtype=np.float64))
    lower = [0.0 if x_ == 0 else scipy.stats.beta.ppf(a / 2, x_, n - x_ + 1) for x_, n, a in cases]
    upper = [1.0 if x_ == n else scipy.stats.beta.ppf(1 - a / 2, x_ + 1, n - x_)
             for x_, n, a in cases]
    w.put("cp.lower", np.array(lower))
    w.put("cp.upper", np.array(upper))
    probs = np.array([1e-12, 1e-6, 0.001, 0.025, 0.3, 0.5, 0.8, 0.975, 0.999999])
    w.put("norm.p", probs)
    w.put("norm.quantile", scipy.stats.norm.ppf(probs))
    w.save(OUT, "tests/data/make_ig_family_reference.py")


if __name__ == "__main__":
    main()
