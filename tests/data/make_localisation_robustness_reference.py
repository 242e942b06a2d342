#!/usr/bin/env python3
"""Writes localisation_robustness_reference.txt: the references of tests/metrics/test_localisation.cpp
and tests/metrics/test_robustness.cpp.

numpy transcriptions of Quantus (understandable-machine-intelligence-lab/Quantus, Quantus itself
not being installable here):

* localisation (quantus/metrics/localisation/): RelevanceMassAccuracy.evaluate_batch,
  RelevanceRankAccuracy.evaluate_batch (with numpy's stable argsort, the tie order rar documents)
  and PointingGame.evaluate_instance (the per-instance version, whose `weighted` score is a float),
  after Quantus' preprocessing (normalise_by_max over the whole batch, then abs when asked), which
  the C++ side does not apply: the metrics are invariant to it.
* robustness (quantus/metrics/robustness/): LocalLipschitzEstimate, RelativeInputStability,
  RelativeOutputStability and RelativeRepresentationStability .evaluate_batch, Continuity
  .evaluate_batch of Quantus 0.6 (batched_translation with the "black" baseline), and
  InputInvariance.evaluate_batch with the shifted model built as add_mean_shift_to_first_layer
  does (bias 2b - layer(m * 1)). The explanation function is gradient x input (Captum's
  InputXGradient: d logit_target / dx * x) or saliency (the plain gradient) of a small torch MLP,
  whose weights are written here; the perturbations are drawn here and written too, and the C++
  test passes the same tensors through the metrics' `noise` option. Where rar documents a choice
  (explanations normalised per sample rather than by the batch's maximum; the maximum over
  perturbations with NaN handled as keep / nan / skip), the transcription makes the same one.

Regenerate (from the repository root):

    /usr/bin/python3 tests/data/make_localisation_robustness_reference.py

(/usr/bin/python3 is Debian's interpreter with python3-torch and python3-numpy.) Format: see
reference_writer.py (parsed by tests/support/reference.hpp).
"""
import os
import sys

import numpy as np
import torch
import torch.nn as nn

torch.set_default_dtype(torch.float64)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from reference_writer import Writer  # noqa: E402

OUT = os.path.join(HERE, "localisation_robustness_reference.txt")


# --- Quantus' preprocessing and localisation metrics -----------------------------------------
def normalise_by_max(a, normalise_axes=None):
    if np.all(a == 0.0):
        return a
    if normalise_axes is None:
        normalise_axes = list(range(np.ndim(a)))
    return a / np.max(np.abs(a), axis=tuple(normalise_axes), keepdims=True)


def quantus_preprocess(a_batch, use_abs):
    a_batch = normalise_by_max(a_batch)  # Quantus' default normalise=True
    return np.abs(a_batch) if use_abs else a_batch


def relevance_mass_accuracy(a_batch, s_batch):
    b = a_batch.shape[0]
    s_batch = s_batch.astype(bool)
    a_batch, s_batch = a_batch.reshape(b, -1), s_batch.reshape(b, -1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mass = (a_batch * s_batch).sum(-1) / a_batch.sum(-1)
    mass[s_batch.sum(-1) == 0] = np.nan
    return mass


def relevance_rank_accuracy(a_batch, s_batch):
    b = a_batch.shape[0]
    s_batch = s_batch.astype(bool)
    a_batch, s_batch = a_batch.reshape(b, -1), s_batch.reshape(b, -1)
    n_features = a_batch.shape[-1]
    s_sums = s_batch.sum(-1)
    a_sorted = np.argsort(-a_batch, axis=-1, kind="stable")
    s_mask = np.array([[True] * s + [False] * (n_features - s) for s in s_sums])
    choice = s_batch[np.arange(b)[:, None], a_sorted]
    with np.errstate(invalid="ignore"):
        acc = (choice * s_mask).sum(-1) / s_mask.sum(-1)
    acc[s_sums == 0] = np.nan
    return acc


def pointing_game_instance(a, s, weighted):
    if np.sum(s) == 0:
        return np.nan
    a = a.flatten()
    s = s.flatten().astype(bool)
    max_index = np.argwhere(a == np.max(a))
    hit = np.any(s[max_index])
    if weighted and hit:
        hit = 1 - (np.sum(s) / float(np.prod(s.shape)))
    return float(hit)


def localisation_case(w, name, a_batch, s_batch):
    w.put(f"{name}.map", a_batch)
    w.put(f"{name}.mask", s_batch.astype(np.float64))
    s_full = np.broadcast_to(s_batch, a_batch.shape)  # one region for every channel
    for use_abs in (False, True):
        tag = "abs" if use_abs else "plain"
        a = quantus_preprocess(a_batch, use_abs)
        w.put(f"{name}.{tag}.rma", relevance_mass_accuracy(a, s_full))
        w.put(f"{name}.{tag}.rra", relevance_rank_accuracy(a, s_full))
        for weighted in (False, True):
            pg = [pointing_game_instance(ai, si, weighted) for ai, si in zip(a, s_full)]
            w.put(f"{name}.{tag}.pg{'_weighted' if weighted else ''}", np.array(pg))


# --- the model and the explanations ----------------------------------------------------------
def make_mlp():
    torch.manual_seed(5)
    return nn.Sequential(nn.Flatten(), nn.Linear(28, 10), nn.Tanh(), nn.Linear(10, 4))


def explain(model, x, y, kind):
    """Gradient x input or saliency of the target logit, numpy in, numpy out."""
    xt = torch.tensor(x).requires_grad_(True)
    (g,) = torch.autograd.grad(model(xt)[torch.arange(len(y)), torch.tensor(y)].sum(), xt)
    g = g.detach().numpy()
    return g * x if kind == "gxi" else g


def predict(model, x):
    with torch.no_grad():
        return model(torch.tensor(x)).numpy()


def per_sample(f, a):
    """Applies a per-sample normalisation to a batch (rar normalises each sample)."""
    return np.stack([f(ai) for ai in a])


def normalise_by_average_second_moment_estimate(a):
    if np.all(a == 0.0):
        return a
    return a / np.sqrt(np.sum(a ** 2) / a.size)


def finish(values, changed, mode):
    """[S, N] values, [S, N] changed -> [N] (keep: np.max; nan: Quantus' np.max over NaNs;
    skip: np.nanmax, NaN when all changed)."""
    values = values.copy()
    if mode == "keep":
        return np.max(values, axis=0)
    values[changed] = np.nan
    if mode == "nan":
        return np.max(values, axis=0)
    out = np.full(values.shape[1], np.nan)
    for n in range(values.shape[1]):
        col = values[:, n]
        if not np.all(np.isnan(col)):
            out[n] = np.nanmax(col)
    return out


def changed_prediction(model, x, xs):
    return predict(model, x).argmax(-1) != predict(model, xs).argmax(-1)


def local_lipschitz_estimate(model, x, y, noise, kind, normalise=True, use_abs=False, mode="keep"):
    b = x.shape[0]
    post = lambda a: np.abs(a) if use_abs else a  # noqa: E731
    norm = lambda a: per_sample(normalise_by_max, a) if normalise else a  # noqa: E731
    a_batch = post(norm(explain(model, x, y, kind))).reshape(b, -1)
    sims = np.zeros((noise.shape[0], b))
    changed = np.zeros((noise.shape[0], b), dtype=bool)
    for s in range(noise.shape[0]):
        x_p = x + noise[s]
        a_p = post(norm(explain(model, x_p, y, kind))).reshape(b, -1)
        # lipschitz_constant with distance_euclidean for numerator and denominator
        num = ((a_batch - a_p) ** 2).sum(axis=-1) ** 0.5
        den = ((x.reshape(b, -1) - x_p.reshape(b, -1)) ** 2).sum(axis=-1) ** 0.5
        sims[s] = num / (den + 1e-10)
        changed[s] = changed_prediction(model, x, x_p)
    return finish(sims, changed, mode)


def quantus_norm(arr):
    """Quantus' norm_function of the relative stabilities, for 4-D, 3-D and 2-D batches."""
    if arr.ndim == 4:
        return np.linalg.norm(np.linalg.norm(arr, axis=(-1, -2)), axis=-1)
    if arr.ndim == 3:
        return np.linalg.norm(arr, axis=(-1, -2))
    return np.linalg.norm(arr, axis=-1)


def relative_stability(model, x, y, noise, which, rep=None, normalise=False, use_abs=False,
                       mode="nan", eps_min=1e-6, kind="gxi"):
    post = lambda a: np.abs(a) if use_abs else a  # noqa: E731
    norm = (lambda a: per_sample(normalise_by_average_second_moment_estimate, a)) if normalise \
        else (lambda a: a)
    e_x = post(norm(explain(model, x, y, kind)))
    h_x = predict(model, x)
    l_x = rep(x) if rep is not None else None
    out = np.zeros((noise.shape[0], x.shape[0]))
    changed = np.zeros_like(out, dtype=bool)
    for s in range(noise.shape[0]):
        xs = x + noise[s]
        e_xs = post(norm(explain(model, xs, y, kind)))
        nominator = quantus_norm((e_x - e_xs) / (e_x + (e_x == 0) * eps_min))
        if which == "input":
            den = x - xs
            den /= x + (x == 0) * eps_min
            den = quantus_norm(den)
        elif which == "output":
            den = np.linalg.norm(h_x - predict(model, xs), axis=-1)
        else:
            l_xs = rep(xs)
            den = l_x - l_xs
            den /= l_x + (l_x == 0) * eps_min
            den = np.linalg.norm(den, axis=-1)
        den += (den == 0) * eps_min
        out[s] = nominator / den
        changed[s] = changed_prediction(model, x, xs)
    return finish(out, changed, mode)


def batched_translation(arr, perturb_dx):
    """Quantus 0.6's batched_translation, direction "x", baseline "black" (per-sample min)."""
    batch_size, _, height, width = arr.shape
    flat = arr.reshape(batch_size, -1)
    fill = flat.min(axis=1)[:, None]
    padding = np.full(flat.shape, fill).reshape(arr.shape)
    padding = np.take(padding, np.arange(-abs(perturb_dx), 0), axis=3)
    if perturb_dx < 0:
        padded = np.concatenate([arr, padding], axis=3)
        return np.take(padded, np.arange(-width, 0), axis=3)
    padded = np.concatenate([padding, arr], axis=3)
    return np.take(padded, np.arange(width), axis=3)


def continuity(model, x, y, nr_steps, kind, normalise=True, use_abs=True, nan_on_change=False):
    b = x.shape[0]
    total = x.shape[3] * 2 + 1
    dx = total // nr_steps
    current = -x.shape[3]
    post = lambda a: np.abs(a) if use_abs else a  # noqa: E731
    norm = (lambda a: per_sample(normalise_by_max, a)) if normalise else (lambda a: a)
    a_batch = post(norm(explain(model, x, y, kind))).reshape(b, -1)
    results = []
    for _ in range(nr_steps):
        current += dx
        xp = batched_translation(x, current)
        pred = predict(model, xp)
        a_p = post(norm(explain(model, xp, y, kind))).reshape(b, -1)
        r = np.abs(a_batch - a_p).sum(axis=-1) / (
            ((x.reshape(b, -1) - xp.reshape(b, -1)) ** 2).sum(axis=-1) ** 0.5 + 1e-9)
        if nan_on_change:
            r[pred.argmax(-1) != y] = np.nan
        results.append(r)
    return np.max(np.stack(results, axis=1), axis=1)


def shifted_model(model, input_shift, shape):
    """Quantus' add_mean_shift_to_first_layer for a first Linear layer (after Flatten)."""
    import copy
    new = copy.deepcopy(model)
    layer = new[1]
    with torch.no_grad():
        delta = torch.zeros(size=shape).fill_(input_shift)
        fw = layer.forward(delta.reshape(1, -1))[0]
        for i in range(layer.out_features):
            layer.bias[i] = 2 * layer.bias[i] - torch.unique(fw[i])[0]
    return new


def input_invariance(model, x, y, kind, input_shift=-1.0):
    a_batch = explain(model, x, y, kind)
    model_s = shifted_model(model, input_shift, x[:1].shape)
    a_shifted = explain(model_s, x + input_shift, y, kind)
    return np.all(np.isclose(a_batch, a_shifted, atol=1e-04), axis=tuple(range(1, a_batch.ndim)))


def main():
    w = Writer()
    rng = np.random.RandomState(11)

    # --- localisation ---
    a = np.round(rng.randn(6, 1, 4, 6), 1)  # rounded: ties in the ranking and in the maximum
    s = rng.rand(6, 1, 4, 6) < np.array([0.2, 0.4, 0.5, 0.3, 0.6, 0.1])[:, None, None, None]
    s[5] = False  # an empty region: NaN
    # sample 2: the maximum twice, once inside and once outside the region -> a hit
    a[2] = np.minimum(a[2], 1.0)
    a[2, 0, 0, 0], a[2, 0, 3, 5] = 3.0, 3.0
    s[2, 0, 0, 0], s[2, 0, 3, 5] = False, True
    # sample 3: a strictly positive map (abs changes nothing, RMA in [0, 1])
    a[3] = np.abs(a[3]) + 0.1
    localisation_case(w, "loc", a, s)
    a_c = rng.randn(3, 3, 4, 5)
    s_c = rng.rand(3, 1, 4, 5) < 0.35
    localisation_case(w, "loc_channels", a_c, s_c)

    # --- robustness ---
    model = make_mlp()
    model.eval()
    for name, p in model.state_dict().items():
        w.put("mlp." + name, p)
    x = rng.randn(3, 1, 4, 7)
    y = np.array([0, 2, 1])
    w.put("rob.input", x)
    w.put("rob.target", y)
    s_lle = 6
    noise_g = 0.1 * rng.randn(s_lle, *x.shape)
    noise_big = 1.5 * rng.randn(s_lle, *x.shape)
    w.put("lle.noise", noise_g)
    w.put("lle.noise_big", noise_big)
    for kind in ("gxi", "saliency"):
        w.put(f"lle.{kind}", local_lipschitz_estimate(model, x, y, noise_g, kind))
    w.put("lle.gxi.raw_abs",
          local_lipschitz_estimate(model, x, y, noise_g, "gxi", normalise=False, use_abs=True))
    for mode in ("keep", "nan", "skip"):
        w.put(f"lle.big.{mode}", local_lipschitz_estimate(model, x, y, noise_big, "gxi", mode=mode))
    changed = np.stack([changed_prediction(model, x, x + noise_big[s]) for s in range(s_lle)])
    w.put("lle.big.changed", changed.astype(np.float64))

    noise_u = rng.uniform(0.02, 0.2, size=(5, *x.shape))
    noise_sym = rng.uniform(-1.0, 1.0, size=(5, *x.shape))
    w.put("rs.noise", noise_u)
    w.put("rs.noise_sym", noise_sym)
    layer = model[1]

    def rep(xx):
        with torch.no_grad():
            return torch.tanh(layer(torch.tensor(xx).reshape(xx.shape[0], -1))).numpy()

    for which in ("input", "output", "representation"):
        r = rep if which == "representation" else None
        for mode in ("keep", "nan", "skip"):
            w.put(f"rs.{which}.{mode}", relative_stability(model, x, y, noise_sym, which, r, mode=mode))
        w.put(f"rs.{which}.small", relative_stability(model, x, y, noise_u, which, r))
        w.put(f"rs.{which}.normalise_abs",
              relative_stability(model, x, y, noise_u, which, r, normalise=True, use_abs=True))
    changed = np.stack([changed_prediction(model, x, x + noise_sym[s]) for s in range(5)])
    w.put("rs.noise_sym.changed", changed.astype(np.float64))

    for steps in (4, 7):
        w.put(f"cont.{steps}", continuity(model, x, y, steps, "gxi"))
        w.put(f"cont.{steps}.saliency_raw",
              continuity(model, x, y, steps, "saliency", normalise=False, use_abs=False))
    w.put("cont.7.nan", continuity(model, x, y, 7, "gxi", nan_on_change=True))

    model_s = shifted_model(model, -1.0, x[:1].shape)
    w.put("ii.shifted_bias", model_s[1].bias)
    for kind in ("gxi", "saliency"):
        w.put(f"ii.{kind}", input_invariance(model, x, y, kind).astype(np.float64))

    w.save(OUT, "tests/data/make_localisation_robustness_reference.py (numpy "
           f"{np.__version__}, torch {torch.__version__})")


if __name__ == "__main__":
    main()
