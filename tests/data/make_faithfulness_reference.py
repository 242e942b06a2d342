#!/usr/bin/env python3
"""Writes faithfulness_reference.txt: the references of tests/metrics/test_faithfulness.cpp.

Numpy transcriptions of Quantus' metrics (understandable-machine-intelligence-lab/Quantus,
quantus/metrics/faithfulness/{faithfulness_correlation,faithfulness_estimate,
monotonicity_correlation,road}.py, axiomatic/completeness.py, randomisation/random_logit.py,
functions/perturb_func.py: batch_baseline_replacement_by_indices and noisy_linear_imputation,
helpers/utils.py: get_baseline_value and offset_coordinates, functions/similarity_func.py:
correlation_pearson, correlation_spearman and ssim), each `evaluate_batch` with the model's
`predict` replaced by a float64 torch forward, Quantus itself not being installable here.
Every random draw (subsets, uniform baselines, imputation noise, the random classes) is drawn
here and written to the file, and the C++ test feeds the same draws through rar's options.

Choices where Quantus is not deterministic or not defined:
* rankings use numpy's stable argsort (Quantus' default quicksort breaks ties arbitrarily);
* the attributions are not normalised by their maximum (a positive factor that changes none of
  the correlations; rar documents this), except in the random-logit test, where each map is
  divided by its own largest |value| (Quantus divides by the batch's);
* skimage is not installed: skimage.metrics.structural_similarity is transcribed (its
  algorithm for float inputs: scipy.ndimage.uniform_filter, sample covariances, K1 = 0.01,
  K2 = 0.03, the border of (win_size - 1) / 2 cropped);
* ROAD with C > 1 channels ranks pixels by the channel sum of the attributions and imputes
  every channel of the chosen pixels (the ROAD paper's NoisyLinearImputer); with C = 1 this is
  Quantus' code unchanged.

Regenerate (from the repository root) with Debian's interpreter:

    /usr/bin/python3 tests/data/make_faithfulness_reference.py
"""
import math
import os
import sys

import numpy as np
import scipy.ndimage
import scipy.stats
import torch
import torch.nn as nn
from scipy.sparse import csc_matrix, lil_matrix
from scipy.sparse.linalg import spsolve

torch.set_default_dtype(torch.float64)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from reference_writer import Writer  # noqa: E402

OUT = os.path.join(HERE, "faithfulness_reference.txt")


class Cnn(nn.Module):
    def __init__(self, channels, classes=5):
        super().__init__()
        self.conv = nn.Conv2d(channels, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 6 * 6, classes)

    def forward(self, x):
        return self.fc(torch.tanh(self.conv(x)).flatten(1))


def predict(model, x, softmax=False):
    with torch.no_grad():
        out = model(torch.from_numpy(np.ascontiguousarray(x)))
        if softmax:
            out = torch.softmax(out, 1)
    return out.numpy()


def gradient_x_input(model, x, target):
    xi = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(model(xi).gather(1, target[:, None]).sum(), xi)
    return g * x


# --- Quantus helpers, transcribed ---------------------------------------------------------------
def baseline_values(kind, arr, rows, draws=None, value=None):
    """get_baseline_value(batched=True) for arr [N, F]: [N, rows] fill values."""
    if kind == "black":
        v = arr.min(axis=1)
    elif kind == "white":
        v = arr.max(axis=1)
    elif kind == "mean":
        v = arr.mean(axis=1)
    elif kind == "value":
        v = np.full(arr.shape[0], value)
    elif kind == "uniform":
        return draws.reshape(arr.shape[0], rows)
    return np.repeat(v[:, None], rows, axis=1)


def replace_by_indices(arr, indices, fill):
    """batch_baseline_replacement_by_indices with one fill value per sample."""
    out = np.copy(arr)
    out[np.arange(arr.shape[0])[:, None], indices] = fill[:, None]
    return out


def pearson(a, b):
    return np.array([scipy.stats.pearsonr(aa, bb)[0] for aa, bb in zip(a, b)])


def spearman(a, b):
    return np.array([scipy.stats.spearmanr(aa, bb)[0] for aa, bb in zip(a, b)])


def faithfulness_correlation(model, x, y, a, subsets, kind, draws=None, abs_=False):
    n = x.shape[0]
    a = np.abs(a) if abs_ else a
    a = np.broadcast_to(a, x.shape).reshape(n, -1)
    flat = x.reshape(n, -1)
    y_pred = predict(model, x)[np.arange(n), y]
    runs = subsets.shape[1]
    fill = baseline_values(kind, flat, runs, draws)
    deltas, sums = [], []
    for r in range(runs):
        ix = subsets[:, r]
        xp = replace_by_indices(flat, ix, fill[:, r]).reshape(x.shape)
        deltas.append(y_pred - predict(model, xp)[np.arange(n), y])
        sums.append(a[np.arange(n)[:, None], ix].sum(axis=-1))
    return pearson(np.stack(sums, 1), np.stack(deltas, 1))


def faithfulness_estimate(model, x, y, a, k, kind, draws=None, abs_=False):
    n = x.shape[0]
    a = np.abs(a) if abs_ else a
    a = np.broadcast_to(a, x.shape).reshape(n, -1)
    flat = x.reshape(n, -1)
    order = np.argsort(-a, axis=1, kind="stable")
    y_pred = predict(model, x)[np.arange(n), y]
    steps = math.ceil(a.shape[1] / k)
    fill = baseline_values(kind, flat, steps, draws)
    deltas, sums = [], []
    for j in range(steps):
        ix = order[:, j * k:(j + 1) * k]
        xp = replace_by_indices(flat, ix, fill[:, j]).reshape(x.shape)
        deltas.append(y_pred - predict(model, xp)[np.arange(n), y])
        sums.append(a[np.arange(n)[:, None], ix].sum(axis=-1))
    return pearson(np.stack(sums, 1), np.stack(deltas, 1))


def monotonicity_correlation(model, x, y, a, k, samples, kind, draws=None, eps=1e-5,
                             abs_=True):
    n = x.shape[0]
    a = np.abs(a) if abs_ else a
    y_pred = predict(model, x, softmax=True)[np.arange(n), y]
    inv = np.ones(n)
    inv[np.abs(y_pred) >= eps] = 1.0 / np.abs(y_pred[np.abs(y_pred) >= eps])
    inv = inv ** 2
    a = np.broadcast_to(a, x.shape).reshape(n, -1)
    flat = x.reshape(n, -1)
    order = np.argsort(a, axis=1, kind="stable")
    steps = math.ceil(a.shape[1] / k)
    fill = baseline_values(kind, flat, steps * samples, draws).reshape(n, steps, samples)
    atts, vars_ = [], []
    for j in range(steps):
        ix = order[:, j * k:(j + 1) * k]
        preds = []
        for s in range(samples):
            xp = replace_by_indices(flat, ix, fill[:, j, s]).reshape(x.shape)
            preds.append(predict(model, xp, softmax=True)[np.arange(n), y])
        preds = np.stack(preds, 1)
        vars_.append(np.mean((preds - y_pred[:, None]) ** 2, axis=1) * inv)
        atts.append(a[np.arange(n)[:, None], ix].sum(axis=1))
    return spearman(np.stack(atts, 1), np.stack(vars_, 1))


def completeness_gap(model, x, y, a, kind, value=None):
    n = x.shape[0]
    flat = x.reshape(n, -1)
    fill = baseline_values(kind, flat, flat.shape[1], value=value)
    xb = fill.reshape(x.shape)
    y_pred = predict(model, x)[np.arange(n), y]
    y_base = predict(model, xb)[np.arange(n), y]
    return a.reshape(n, -1).sum(axis=-1) - (y_pred - y_base)


def offset_coordinates(indices, offset, img_shape):
    x = indices // img_shape[2]
    y = indices % img_shape[2]
    x = x + offset[0]
    y = y + offset[1]
    valid = ~((x < 0) | (y < 0) | (x >= img_shape[1]) | (y >= img_shape[2]))
    off_coords = indices + offset[0] * img_shape[2] + offset[1]
    return off_coords[valid], valid


def noisy_linear_imputation(arr, indices, noise, z):
    """Quantus' noisy_linear_imputation for arr [C, H, W]; z [C, H*W] replaces np.random.randn."""
    offset_weight = [((1, 1), 1 / 12), ((0, 1), 1 / 6), ((-1, 1), 1 / 12), ((1, -1), 1 / 12),
                     ((0, -1), 1 / 6), ((-1, -1), 1 / 12), ((1, 0), 1 / 6), ((-1, 0), 1 / 6)]
    arr_flat = arr.reshape((arr.shape[0], -1))
    mask = np.ones(arr_flat.shape[1])
    mask[indices] = 0
    ind_to_var_ids = np.zeros(arr_flat.shape[1], dtype=int)
    ind_to_var_ids[indices] = np.arange(len(indices))
    a = lil_matrix((len(indices), len(indices)))
    b = np.zeros((len(indices), arr.shape[0]))
    sum_neighbors = np.ones(len(indices))
    for offset, weight in offset_weight:
        off_coords, valid = offset_coordinates(indices, offset, arr.shape)
        valid_ids = np.argwhere(valid == 1).flatten()
        in_off_coord = off_coords[mask[off_coords] == 1]
        in_off_coord_ids = valid_ids[mask[off_coords] == 1]
        b[in_off_coord_ids, :] -= weight * arr_flat[:, in_off_coord].T
        out_off_coord = off_coords[mask[off_coords] != 1]
        out_off_coord_ids = valid_ids[mask[off_coords] != 1]
        variable_ids = ind_to_var_ids[out_off_coord]
        a[out_off_coord_ids, variable_ids] = weight
        sum_neighbors[np.argwhere(valid == 0).flatten()] -= weight
    a[np.arange(len(indices)), np.arange(len(indices))] = -sum_neighbors
    out = np.copy(arr_flat)
    if len(indices) > 0:
        res = np.transpose(spsolve(csc_matrix(a), b)).reshape(arr.shape[0], len(indices))
        out[:, indices] = res + (noise * z[:, indices] if noise > 0 else 0.0)
    return out.reshape(*arr.shape)


def road(model, x, y, a, percentages, noise, draws, lerf=False):
    """Quantus' ROAD.evaluate_batch on pixels: [N, P] kept (0/1)."""
    n, c, h, w = x.shape
    r = a.sum(axis=1).reshape(n, -1)
    order = np.argsort(r if lerf else -r, axis=1, kind="stable")
    results = []
    for pi, p in enumerate(percentages):
        top = order[:, :int(h * w * p / 100)]
        xp = np.stack([noisy_linear_imputation(x[i], top[i], noise,
                                               draws[i, pi].reshape(c, -1))
                       for i in range(n)])
        results.append(y == np.argmax(predict(model, xp), axis=-1))
    return np.stack(results, axis=1).astype(float)


def ssim_1d(a, b, win_size=7):
    """Quantus' ssim: skimage.metrics.structural_similarity on flattened maps, transcribed."""
    both = np.concatenate([a, b])
    data_range = float(np.abs(both.max() - both.min()))
    filt = lambda t: scipy.ndimage.uniform_filter(t, size=win_size)  # noqa: E731
    cov_norm = win_size / (win_size - 1)
    ux, uy = filt(a), filt(b)
    uxx, uyy, uxy = filt(a * a), filt(b * b), filt(a * b)
    vx, vy, vxy = cov_norm * (uxx - ux * ux), cov_norm * (uyy - uy * uy), cov_norm * (uxy - ux * uy)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux ** 2 + uy ** 2 + c1) * (vx + vy + c2))
    pad = (win_size - 1) // 2
    return s[pad:-pad].mean()


def normalise_by_max(m):
    return m if np.all(m == 0) else m / np.max(np.abs(m))


def main():
    w = Writer()
    rng = np.random.default_rng(31)
    torch.manual_seed(31)

    # --- a two-channel CNN and its gradient x input attributions ---
    cnn = Cnn(2).eval()
    for name, p in cnn.state_dict().items():
        w.put("cnn." + name, p)
    x = torch.randn(3, 2, 6, 6)
    y = torch.tensor([1, 4, 0])
    attr = gradient_x_input(cnn, x, y)
    w.put("x", x)
    w.put("y", y)
    w.put("attr", attr)
    xn, yn, an = x.numpy(), y.numpy(), attr.numpy()
    d = 72

    # faithfulness correlation: explicit subsets [N, 10, 8] and uniform draws [N, 10]
    subsets = np.stack([np.stack([rng.choice(d, 8, replace=False) for _ in range(10)])
                        for _ in range(3)])
    fc_draws = rng.uniform(-1.0, 1.0, size=(3, 10))
    w.put("fc.subsets", subsets)
    w.put("fc.draws", fc_draws)
    w.put("fc.black", faithfulness_correlation(cnn, xn, yn, an, subsets, "black"))
    w.put("fc.uniform", faithfulness_correlation(cnn, xn, yn, an, subsets, "uniform", fc_draws))
    w.put("fc.white_abs", faithfulness_correlation(cnn, xn, yn, an, subsets, "white", abs_=True))

    # faithfulness estimate
    for k in (1, 5):
        w.put(f"fe.k{k}", faithfulness_estimate(cnn, xn, yn, an, k, "black"))
    one_channel = an.sum(axis=1, keepdims=True)
    w.put("fe.map", one_channel)
    w.put("fe.map.k3.mean", faithfulness_estimate(cnn, xn, yn, one_channel, 3, "mean"))
    fe_draws = rng.uniform(0.0, 1.0, size=(3, 15))
    w.put("fe.draws", fe_draws)
    w.put("fe.k5.uniform", faithfulness_estimate(cnn, xn, yn, an, 5, "uniform", fe_draws))

    # monotonicity correlation: k = 6 -> 12 groups, 4 draws each
    mc_draws = rng.uniform(0.0, 1.0, size=(3, 12, 4))
    w.put("mc.draws", mc_draws)
    w.put("mc.uniform", monotonicity_correlation(cnn, xn, yn, an, 6, 4, "uniform", mc_draws))
    w.put("mc.black.k8", monotonicity_correlation(cnn, xn, yn, an, 8, 3, "black"))
    w.put("mc.signed", monotonicity_correlation(cnn, xn, yn, an, 6, 4, "uniform", mc_draws,
                                                abs_=False))

    # completeness
    w.put("comp.gap.black", completeness_gap(cnn, xn, yn, an, "black"))
    w.put("comp.gap.value", completeness_gap(cnn, xn, yn, an, "value", value=0.25))

    # --- noisy linear imputation on its own ---
    masks = rng.random((3, 6, 6)) < 0.4
    w.put("imp.mask", masks)
    z = rng.standard_normal((3, 2, 6, 6))
    w.put("imp.draws", z)
    for tag, noise in (("plain", 0.0), ("noisy", 0.05)):
        out = np.stack([noisy_linear_imputation(xn[i], np.flatnonzero(masks[i]), noise,
                                                z[i].reshape(2, -1)) for i in range(3)])
        w.put(f"imp.{tag}", out)
    # a larger image with 90 % of its pixels removed (a worse-conditioned system)
    big = rng.standard_normal((2, 3, 16, 16))
    big_mask = rng.random((2, 16, 16)) < 0.9
    big_mask[:, 0, 0] = False
    w.put("imp.big", big)
    w.put("imp.big.mask", big_mask)
    w.put("imp.big.plain", np.stack([noisy_linear_imputation(big[i], np.flatnonzero(big_mask[i]),
                                                             0.0, None) for i in range(2)]))

    # --- ROAD ---
    percentages = [0, 10, 30, 50, 70, 90, 99]
    w.put("road.percentages", np.array(percentages, dtype=float))
    cnn1 = Cnn(1).eval()
    for name, p in cnn1.state_dict().items():
        w.put("cnn1." + name, p)
    x1 = torch.randn(4, 1, 6, 6)
    with torch.no_grad():
        y1 = cnn1(x1).argmax(1)
    a1 = gradient_x_input(cnn1, x1, y1)
    w.put("road1.x", x1)
    w.put("road1.y", y1)
    w.put("road1.attr", a1)
    road_draws1 = rng.standard_normal((4, len(percentages), 1, 6, 6))
    w.put("road1.draws", road_draws1)
    w.put("road1.plain", road(cnn1, x1.numpy(), y1.numpy(), a1.numpy(), percentages, 0.0,
                              road_draws1))
    w.put("road1.noisy", road(cnn1, x1.numpy(), y1.numpy(), a1.numpy(), percentages, 0.3,
                              road_draws1))
    with torch.no_grad():
        y2 = cnn(x).argmax(1)
    w.put("road2.y", y2)
    road_draws2 = rng.standard_normal((3, len(percentages), 2, 6, 6))
    w.put("road2.draws", road_draws2)
    for lerf in (False, True):
        tag = "lerf" if lerf else "morf"
        w.put(f"road2.{tag}", road(cnn, xn, y2.numpy(), an, percentages, 0.2, road_draws2, lerf))

    # --- SSIM and the random-logit test ---
    sa, sb = rng.standard_normal((3, 20)), rng.standard_normal((3, 20))
    sb[1] = sa[1] + 0.1 * sb[1]
    w.put("ssim.a", sa)
    w.put("ssim.b", sb)
    w.put("ssim.w7", np.array([ssim_1d(p, q) for p, q in zip(sa, sb)]))
    w.put("ssim.w5", np.array([ssim_1d(p, q, 5) for p, q in zip(sa, sb)]))
    others = np.array([(yy + 1 + rng.integers(0, 4)) % 5 for yy in yn])
    w.put("rl.classes", others)
    a_off = gradient_x_input(cnn, x, torch.from_numpy(others)).numpy()
    for tag, abs_ in (("plain", False), ("abs", True)):
        p = [normalise_by_max(m.reshape(-1)) for m in an]
        q = [normalise_by_max(m.reshape(-1)) for m in a_off]
        if abs_:
            p, q = [np.abs(m) for m in p], [np.abs(m) for m in q]
        w.put(f"rl.ssim.{tag}", np.array([ssim_1d(pp, qq) for pp, qq in zip(p, q)]))

    w.save(OUT, "tests/data/make_faithfulness_reference.py (numpy %s, scipy %s, torch %s)"
           % (np.__version__, scipy.__version__, torch.__version__))


if __name__ == "__main__":
    main()
