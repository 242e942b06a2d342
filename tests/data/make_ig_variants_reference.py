#!/usr/bin/env python3
"""Writes ig_variants_reference.txt: the references of the Blur IG and Guided IG tests
(tests/attribution/test_blur_ig.cpp, tests/attribution/test_guided_ig.cpp).

* the Gaussian blur by scipy.ndimage.gaussian_filter (truncate 4.0) over the two spatial axes
  of [N, C, H, W] images, modes 'constant' (PAIR's choice) and 'reflect', for sigmas from 0 to
  a kernel radius several times the image size;
* Blur IG by a transcription of PAIR-code/saliency's saliency/core/blur_ig.py (`BlurIG.GetMask`:
  sigmas i * max_sigma / steps or their square roots, the finite difference of the blur in
  sigma with step grad_step, the sum of (sigma_{i+1} - sigma_i) * d blur / d sigma * gradient,
  negated), one sample at a time, on a small float64 CNN, its gradients by torch autograd;
* Guided IG by a transcription of PAIR-code/saliency's saliency/core/guided_ig.py
  (`guided_ig_impl`, numpy, float64), one sample at a time, on a small ReLU MLP (ties among
  zero gradients) and on the CNN, with nonzero baselines, a feature equal to its baseline and a
  sample equal to its baseline.

Regenerate (from the repository root) with Debian's interpreter (python3-numpy, python3-scipy,
python3-torch):

    /usr/bin/python3 tests/data/make_ig_variants_reference.py

Format: see reference_writer.py (parsed by tests/support/reference.hpp).
"""
import math
import os
import sys

import numpy as np
from scipy import ndimage
import torch
import torch.nn as nn

torch.set_default_dtype(torch.float64)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from reference_writer import Writer  # noqa: E402

OUT = os.path.join(HERE, "ig_variants_reference.txt")

# ---- Blur: scipy.ndimage.gaussian_filter over H and W of [N, C, H, W] -------------------------


def blur(images, sigma, mode):
    """PAIR's gaussian_blur for channel-first batches: no filter at sigma 0."""
    if sigma == 0:
        return images.copy()
    return ndimage.gaussian_filter(images, sigma=[0, 0, sigma, sigma], mode=mode, truncate=4.0)


# ---- Blur IG: PAIR-code/saliency saliency/core/blur_ig.py, per sample -------------------------


def blur_ig_pair(x_value, grad_func, max_sigma, steps, grad_step, sqrt, mode):
    """BlurIG.GetMask for one sample x_value [C, H, W]; grad_func maps [B, C, H, W] to gradients."""
    if sqrt:
        sigmas = [math.sqrt(float(i) * max_sigma / float(steps)) for i in range(0, steps + 1)]
    else:
        sigmas = [float(i) * max_sigma / float(steps) for i in range(0, steps + 1)]
    step_vector_diff = [sigmas[i + 1] - sigmas[i] for i in range(0, steps)]
    total_gradients = np.zeros_like(x_value)
    for i in range(steps):
        x_step = blur(x_value[None], sigmas[i], mode)[0]
        gaussian_gradient = (blur(x_value[None], sigmas[i] + grad_step, mode)[0] - x_step) / grad_step
        total_gradients += step_vector_diff[i] * gaussian_gradient * grad_func(x_step[None])[0]
    total_gradients *= -1.0
    return total_gradients


# ---- Guided IG: PAIR-code/saliency saliency/core/guided_ig.py ---------------------------------

EPSILON = 1e-9


def l1_distance(x1, x2):
    return np.abs(x1 - x2).sum()


def translate_x_to_alpha(x, x_input, x_baseline):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x_input - x_baseline != 0, (x - x_baseline) / (x_input - x_baseline), np.nan)


def translate_alpha_to_x(alpha, x_input, x_baseline):
    assert 0 <= alpha <= 1.0
    return x_baseline + (x_input - x_baseline) * alpha


def guided_ig_impl(x_input, x_baseline, grad_func, steps=200, fraction=0.25, max_dist=0.02):
    x_input = np.asarray(x_input, dtype=np.float64)
    x_baseline = np.asarray(x_baseline, dtype=np.float64)
    x = x_baseline.copy()
    l1_total = l1_distance(x_input, x_baseline)
    attr = np.zeros_like(x_input, dtype=np.float64)
    total_diff = x_input - x_baseline
    if np.abs(total_diff).sum() == 0:
        return attr
    for step in range(steps):
        grad_actual = grad_func(x)
        grad = grad_actual.copy()
        alpha = (step + 1.0) / steps
        alpha_min = max(alpha - max_dist, 0.0)
        alpha_max = min(alpha + max_dist, 1.0)
        x_min = translate_alpha_to_x(alpha_min, x_input, x_baseline)
        x_max = translate_alpha_to_x(alpha_max, x_input, x_baseline)
        l1_target = l1_total * (1 - (step + 1) / steps)
        gamma = np.inf
        while gamma > 1.0:
            x_old = x.copy()
            x_alpha = translate_x_to_alpha(x, x_input, x_baseline)
            x_alpha[np.isnan(x_alpha)] = alpha_max
            x[x_alpha < alpha_min] = x_min[x_alpha < alpha_min]
            l1_current = l1_distance(x, x_input)
            if math.isclose(l1_target, l1_current, rel_tol=EPSILON, abs_tol=EPSILON):
                attr += (x - x_old) * grad_actual
                break
            grad[x == x_max] = np.inf
            threshold = np.quantile(np.abs(grad), fraction, method="lower")
            s = np.logical_and(np.abs(grad) <= threshold, grad != np.inf)
            l1_s = (np.abs(x - x_max) * s).sum()
            if l1_s > 0:
                gamma = (l1_current - l1_target) / l1_s
            else:
                gamma = np.inf
            if gamma > 1.0:
                x[s] = x_max[s]
            else:
                assert gamma > 0, gamma
                x[s] = translate_alpha_to_x(gamma, x_max, x)[s]
            attr += (x - x_old) * grad_actual
    return attr


# ---- models ------------------------------------------------------------------------------------


def cnn():
    """[N, 2, 8, 8] -> [N, 3]: the CNN of both tests."""
    return nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.Tanh(), nn.Conv2d(3, 4, 3, stride=2),
                         nn.Tanh(), nn.Flatten(), nn.Linear(36, 3))


def relu_mlp():
    """[N, 10] -> [N, 3] with ReLU: many zero gradients, so ties in Guided IG's selection."""
    return nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 3))


def grad_function(model, target):
    """Gradients of the target logit at a batch [B, ...] (numpy in, numpy out)."""
    def grad_func(x):
        xt = torch.tensor(x, requires_grad=True)
        (g,) = torch.autograd.grad(model(xt)[:, target].sum(), xt)
        return g.numpy()
    return grad_func


def put_model(w, name, model):
    for k, v in model.state_dict().items():
        w.put(f"{name}.{k}", v)


def main():
    w = Writer()
    rng = np.random.default_rng(20240611)

    # Blur: a 7 x 9 image (H != W) and a 1 x 3 one (one row: every reflection maps to it).
    images = rng.normal(size=(2, 3, 7, 9))
    thin = rng.normal(size=(1, 2, 1, 3))
    w.put("blur.images", images)
    w.put("blur.thin", thin)
    sigmas = [0.0, 0.05, 0.124, 0.126, 0.5, 1.3, 3.0, 12.0, 40.0]
    w.put("blur.sigmas", np.array(sigmas))
    for mode in ("constant", "reflect"):
        for i, s in enumerate(sigmas):
            w.put(f"blur.{mode}.{i}", blur(images, s, mode))
            w.put(f"blur.thin.{mode}.{i}", blur(thin, s, mode))

    # Blur IG on the CNN.
    torch.manual_seed(3)
    net = cnn()
    put_model(w, "cnn", net)
    x = torch.rand(2, 2, 8, 8).numpy()
    target = [2, 0]
    w.put("cnn.input", x)
    w.put("cnn.target", np.array(target, dtype=np.float64))
    for sqrt in (False, True):
        for mode in ("constant", "reflect"):
            out = np.stack([
                blur_ig_pair(x[n], grad_function(net, target[n]), max_sigma=10.0, steps=12,
                             grad_step=0.01, sqrt=sqrt, mode=mode) for n in range(2)])
            w.put(f"blur_ig.{mode}.{'sqrt' if sqrt else 'linear'}", out)

    # Guided IG on the ReLU MLP: nonzero baselines, feature 3 of sample 0 equal to its baseline,
    # sample 2 equal to its baseline.
    torch.manual_seed(5)
    mlp = relu_mlp()
    put_model(w, "mlp", mlp)
    xm = rng.normal(size=(3, 10))
    bm = 0.3 * rng.normal(size=(3, 10))
    xm[0, 3] = bm[0, 3]
    xm[2] = bm[2]
    tm = [1, 0, 2]
    w.put("mlp.input", xm)
    w.put("mlp.baseline", bm)
    w.put("mlp.target", np.array(tm, dtype=np.float64))
    for tag, steps, fraction, max_dist in (("default", 200, 0.25, 0.02), ("coarse", 16, 0.3, 0.1),
                                           ("unbounded", 10, 0.25, 1.0)):
        out = np.stack([
            guided_ig_impl(xm[n], bm[n], lambda v, n=n: grad_function(mlp, tm[n])(v[None])[0],
                           steps=steps, fraction=fraction, max_dist=max_dist) for n in range(3)])
        w.put(f"guided_ig.mlp.{tag}", out)

    # Guided IG on the CNN, zero baseline.
    out = np.stack([
        guided_ig_impl(x[n], np.zeros_like(x[n]),
                       lambda v, n=n: grad_function(net, target[n])(v[None])[0], steps=24,
                       fraction=0.25, max_dist=0.05) for n in range(2)])
    w.put("guided_ig.cnn", out)

    w.save(OUT, "tests/data/make_ig_variants_reference.py (numpy " + np.__version__ + ", scipy "
           + __import__("scipy").__version__ + ", torch " + torch.__version__ + ")")


if __name__ == "__main__":
    main()
