#!/usr/bin/env python3
"""Writes randomisation_reference.txt: the references of tests/metrics/test_randomisation.cpp.

Numpy/torch transcriptions of Quantus' SmoothMPRT and EfficientMPRT
(quantus/metrics/randomisation/smooth_mprt.py and efficient_mprt.py, Quantus not being
installable here), with the random weights and the noise given explicitly (written into the file
so that the C++ test uses the same ones):

* the model: a small float64 CNN ([N, 2, 5, 5] -> [N, 4]); its layers with parameters, in
  named_modules order ("0", "3", "5"), each get fixed random weights `random.<layer>.<param>`;
  the randomised models of Quantus' get_random_layer_generator for the orders bottom_up,
  top_down and independent;
* the explanation: the gradient of the target logit (rar::explain::saliency());
* SmoothMPRT: Quantus' explain_smooth_batch_numpy (S - 1 noisy copies with sigma =
  noise_magnitude * (max - min) per sample, then the clean input, averaged), the map as
  rar::attribution_map with its defaults (|a|, summed over channels, divided by the L1 norm),
  the similarity scipy.stats.spearmanr per sample and layer (Quantus' correlation_spearman),
  with the same noise draws for every model state;
* EfficientMPRT: Quantus' discrete_entropy (np.histogram(a, bins) and scipy.stats.entropy) of
  the raw explanation of the trained and of the fully randomised model, score (b - a) / a;
  and the histogram entropy alone on values that lie on bin edges and on a constant sample.

Regenerate (from the repository root) with Debian's interpreter:

    /usr/bin/python3 tests/data/make_randomisation_reference.py

Format: see reference_writer.py (parsed by tests/support/reference.hpp).
"""
import copy
import os
import sys

import numpy as np
import scipy.stats
import torch
import torch.nn as nn

torch.set_default_dtype(torch.float64)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from reference_writer import Writer  # noqa: E402

OUT = os.path.join(HERE, "randomisation_reference.txt")
LAYERS = ["0", "3", "5"]


def cnn():
    return nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.Tanh(), nn.Flatten(),
                         nn.Linear(75, 8), nn.Tanh(), nn.Linear(8, 4))


def saliency(model, x, target):
    xt = torch.tensor(x, requires_grad=True)
    out = model(xt)
    (g,) = torch.autograd.grad(out[torch.arange(len(target)), torch.tensor(target)].sum(), xt)
    return g.numpy()


def models_after_each_step(model, random_weights, order):
    """Quantus' get_random_layer_generator with explicit weights instead of reset_parameters."""
    layers = LAYERS[::-1] if order == "top_down" else LAYERS
    state = copy.deepcopy(model)
    for name in layers:
        if order == "independent":
            state = copy.deepcopy(model)
        layer = dict(state.named_modules())[name]
        with torch.no_grad():
            for pname, p in layer.named_parameters(recurse=False):
                p.copy_(torch.tensor(random_weights[f"{name}.{pname}"]))
        yield name, copy.deepcopy(state)


def rar_map(a):
    """rar::attribution_map with its defaults: |a| summed over channels, L1-normalized."""
    m = np.abs(a).sum(axis=1)
    norm = np.abs(m).reshape(len(m), -1).sum(axis=1)
    norm[norm == 0] = 1
    return m / norm[:, None, None]


def smooth_explanation(model, x, target, noise, magnitude):
    """Quantus' explain_smooth_batch_numpy: the last of the S draws is the clean input."""
    dims = tuple(range(1, x.ndim))
    std = magnitude * (x.max(axis=dims, keepdims=True) - x.min(axis=dims, keepdims=True))
    s_total = noise.shape[0] + 1
    a_smooth = None
    for s in range(s_total):
        eps = np.zeros_like(x) if s == s_total - 1 else noise[s] * std
        a = saliency(model, x + eps, target)
        a_smooth = a / s_total if a_smooth is None else a_smooth + a / s_total
    return rar_map(a_smooth)


def spearman(a, b):
    return np.array([scipy.stats.spearmanr(a[n].ravel(), b[n].ravel())[0] for n in range(len(a))])


def discrete_entropy(a, n_bins):
    histogram, _ = np.histogram(a, bins=n_bins)
    return scipy.stats.entropy(pk=histogram)


def main():
    w = Writer()
    rng = np.random.default_rng(7)
    torch.manual_seed(11)
    model = cnn()
    for k, v in model.state_dict().items():
        w.put(f"cnn.{k}", v)
    random_weights = {}
    for name in LAYERS:
        layer = dict(model.named_modules())[name]
        for pname, p in layer.named_parameters(recurse=False):
            r = 0.4 * rng.normal(size=tuple(p.shape))
            random_weights[f"{name}.{pname}"] = r
            w.put(f"random.{name}.{pname}", r)
    x = rng.uniform(-1.0, 2.0, size=(3, 2, 5, 5))
    target = [1, 3, 0]
    noise = rng.normal(size=(4,) + x.shape)
    magnitude = 0.1
    w.put("input", x)
    w.put("target", np.array(target, dtype=np.float64))
    w.put("noise", noise)

    original = smooth_explanation(model, x, target, noise, magnitude)
    for order in ("bottom_up", "top_down", "independent"):
        rows = []
        for name, state in models_after_each_step(model, random_weights, order):
            rows.append(spearman(original, smooth_explanation(state, x, target, noise, magnitude)))
        w.put(f"smooth_mprt.{order}", np.stack(rows))

    # EfficientMPRT: the raw explanations of the trained and the fully randomised model.
    *_, (_, full) = models_after_each_step(model, random_weights, "bottom_up")
    a_orig = saliency(model, x, target)
    a_rand = saliency(full, x, target)
    for bins in (100, 7):
        h0 = np.array([discrete_entropy(a_orig[n], bins) for n in range(len(x))])
        h1 = np.array([discrete_entropy(a_rand[n], bins) for n in range(len(x))])
        w.put(f"efficient_mprt.{bins}.original", h0)
        w.put(f"efficient_mprt.{bins}.randomised", h1)
        w.put(f"efficient_mprt.{bins}.score", (h1 - h0) / h0)

    # Histogram entropy on bin edges (0.1 steps are not exact in binary), ties and a constant.
    edges = np.stack([np.linspace(0.0, 1.0, 11), np.arange(11.0), np.full(11, 0.3),
                      np.array([0.0, 0.1, 0.1, 0.2, 0.3, 0.3, 0.3, 0.7, 0.9, 1.0, 1.0])])
    w.put("entropy.values", edges)
    for bins in (1, 5, 10, 100):
        w.put(f"entropy.{bins}", np.array([discrete_entropy(v, bins) for v in edges]))

    w.save(OUT, "tests/data/make_randomisation_reference.py (numpy " + np.__version__ +
           ", scipy " + scipy.__version__ + ", torch " + torch.__version__ + ")")


if __name__ == "__main__":
    main()
