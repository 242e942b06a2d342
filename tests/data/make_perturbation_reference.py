#!/usr/bin/env python3
"""Writes perturbation_reference.txt: Occlusion, FeatureAblation, ShapleyValueSampling and
ShapleyValues computed by Captum 0.7.0 on a small CNN and on the residual network of
make_residual_reference.py (its weights and input are read from residual_reference.txt, so the
C++ tests use rar::test::residual_model()). tests/attribution/test_perturbation.cpp compares
against it.

Regenerate (from the repository root):

    mkdir -p /tmp/captum070 && git -C /work/.mirror/pytorch+captum/repo archive refs/tags/v0.7.0 captum | tar -x -C /tmp/captum070
    PYTHONPATH=/tmp/captum070 /usr/bin/python3 tests/data/make_perturbation_reference.py

(/usr/bin/python3 is Debian's interpreter with python3-torch; Captum is taken from
$CAPTUM_PATH, default /tmp/captum070, i.e. `git archive refs/tags/v0.7.0 captum` of
pytorch/captum. `git archive` may print an "invalid object" error about a docs/ blob missing
from the mirror; the captum/ tree is still complete.)

What each entry pins down (Captum 0.7.0):
  * `<model>.occ.<case>`: Occlusion.attribute as Captum returns it. Captum divides its float64
    sums by the window counts after casting them to float32 (`single_attrib.float() / weight`
    in feature_ablation.py), so these hold to float32 round-off only.
    `<model>.occ.<case>.sum`: the same call with `use_weights = False`, i.e. Captum's float64
    sum over the windows covering each element, undivided; `<model>.occ.<case>.count`: the
    number of windows covering each element, counted here independently (window positions
    0, s, ..., ceil((D - w)/s) s, the last one cut at the border). sum / count is Captum's
    occlusion in float64.
  * `<model>.ablation.<case>`: FeatureAblation.attribute (float64 throughout).
  * `<model>.shapley.<case>`: ShapleyValueSampling.attribute with its permutation generator
    replaced by the orders in `<model>.shapley.<case>.perms` (one row per sample), so the C++
    side can replay the same orders. Captum accumulates in float32.
    `<model>.shapley.<case>.exact`: ShapleyValues (every permutation), float32 as well.

Format: see reference_writer.py (parsed by tests/support/reference.hpp).
"""
import math
import os
import sys

sys.path.insert(0, os.environ.get("CAPTUM_PATH", "/tmp/captum070"))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

torch.set_default_dtype(torch.float64)

import captum  # noqa: E402
from captum.attr import (FeatureAblation, Occlusion, ShapleyValues,  # noqa: E402
                         ShapleyValueSampling)

from make_residual_reference import Residual  # noqa: E402  (this folder)
from reference_writer import Writer, read_reference  # noqa: E402  (this folder)

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "perturbation_reference.txt")


def residual_setup():
    ref = read_reference(os.path.join(HERE, "residual_reference.txt"), "residual.")
    model = Residual()
    state = {k[len("residual."):]: v for k, v in ref.items()
             if k[len("residual."):] in model.state_dict()}
    model.load_state_dict(state)
    model.eval()
    x = ref["residual.input"]
    with torch.no_grad():
        assert torch.allclose(model(x), ref["residual.output"], rtol=0, atol=1e-14)
    return model, x, ref["residual.target"].long(), ref["residual.shared_baseline"]


def cnn_setup():
    """[3, 2, 9, 11] -> [3, 4]; C++ twin: tests/attribution/test_perturbation.cpp (cnn())."""
    torch.manual_seed(21)
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(36, 5), nn.Tanh(), nn.Linear(5, 4))
    model.eval()
    x = torch.rand(3, 2, 9, 11)
    return model, x


def window_count(shape, window, strides):
    """Number of occlusion windows covering each element, counted position by position."""
    count = torch.ones(shape)
    for d, (size, w, s) in enumerate(zip(shape, window, strides)):
        per = torch.zeros(size)
        for k in range(math.ceil((size - w) / s) + 1):
            per[k * s:min(k * s + w, size)] += 1
        view = [1] * len(shape)
        view[d] = size
        count = count * per.reshape(view)
    return count


def put_occlusion(w, name, model, x, window, strides, baseline, target, checks):
    occ = Occlusion(model)
    a = occ.attribute(x.clone(), sliding_window_shapes=window, strides=strides,
                      baselines=baseline, target=target)
    raw = Occlusion(model)
    raw.use_weights = False
    total = raw.attribute(x.clone(), sliding_window_shapes=window, strides=strides,
                          baselines=baseline, target=target)
    full = tuple(strides) if isinstance(strides, tuple) else (strides or 1,) * len(window)
    count = window_count(x.shape[1:], window, full)
    assert total.dtype == torch.float64 and a.dtype == torch.float32
    gap = (total / count - a.double()).abs().max().item()
    assert gap < 1e-5, (name, gap)
    checks.append((f"{name}: |sum / count - Captum (float32)|", gap))
    w.put(name, a)
    w.put(name + ".sum", total)
    w.put(name + ".count", count)


def put_shapley(w, name, model, x, mask, baseline, target, samples, seed, checks):
    g = torch.Generator().manual_seed(seed)
    players = int(mask.max().item()) + 1
    perms = [torch.randperm(players, generator=g).tolist() for _ in range(samples)]
    sv = ShapleyValueSampling(model)
    sv.permutation_generator = lambda n, s: iter(perms)
    a = sv.attribute(x.clone(), baselines=baseline, target=target, feature_mask=mask,
                     n_samples=samples)
    w.put(name, a)
    w.put(name + ".perms", torch.tensor(perms, dtype=torch.float64))
    if players <= 6:
        exact = ShapleyValues(model).attribute(x.clone(), baselines=baseline, target=target,
                                               feature_mask=mask)
        w.put(name + ".exact", exact)
        checks.append((f"{name}: |sampled - exact| ({samples} orders)",
                       (a - exact).abs().max().item()))


def main():
    w = Writer()
    checks = []

    cnn, x = cnn_setup()
    target = torch.tensor([2, 0, 3])
    w.put("cnn.input", x)
    w.put("cnn.target", target)
    for key, value in cnn.state_dict().items():
        w.put(f"cnn.{key}", value)
    base_tensor = 0.3 * torch.rand(3, 2, 9, 11)
    w.put("cnn.baseline", base_tensor)

    # Occlusion: windows that divide the input and windows cut at the border, strides per
    # dimension and as one int, scalar and tensor baselines, per-sample and shared targets.
    occ_cases = {
        "w133": ((1, 3, 3), None, None, target),
        "w244.s122.b05": ((2, 4, 4), (1, 2, 2), 0.5, target),
        "w145.s134.t1": ((1, 4, 5), (1, 3, 4), None, 1),
        "w233.s2": ((2, 3, 3), 2, None, target),
        "full": ((2, 9, 11), None, None, target),
        "w123.s112.base": ((1, 2, 3), (1, 1, 2), base_tensor, target),
        "w133.s133": ((1, 3, 3), (1, 3, 3), None, target),
    }
    for case, (window, strides, baseline, t) in occ_cases.items():
        put_occlusion(w, f"cnn.occ.{case}", cnn, x, window, strides, baseline, t, checks)

    # FeatureAblation: default mask, shared masks (broadcast over channels, fewer dimensions,
    # non-consecutive and negative ids), per-sample masks, scalar and tensor baselines.
    h = torch.arange(9).reshape(9, 1)
    wi = torch.arange(11).reshape(1, 11)
    blocks = ((h // 3) * 4 + wi // 3).reshape(1, 1, 9, 11)
    g = torch.Generator().manual_seed(5)
    per_sample = torch.randint(0, 6, (3, 2, 9, 11), generator=g)
    sparse_ids = (h // 2) * 6 + wi // 3  # [9, 11]
    sparse_ids = 3 * sparse_ids - 5
    occ_blocks = torch.stack([blocks[0, 0], blocks[0, 0] + 12]).unsqueeze(0)  # [1, 2, 9, 11]
    fa_cases = {
        "default": (None, None, target),
        "blocks.b025.t2": (blocks, 0.25, 2),
        "per_sample": (per_sample, None, target),
        "sparse_2d": (sparse_ids, None, target),
        "occ_blocks": (occ_blocks, None, target),
        "per_sample.base": (per_sample, base_tensor, target),
    }
    fa = FeatureAblation(cnn)
    for case, (mask, baseline, t) in fa_cases.items():
        a = fa.attribute(x.clone(), baselines=baseline, target=t, feature_mask=mask)
        assert a.dtype == torch.float64
        if mask is not None:
            w.put(f"cnn.ablation.{case}.mask", mask)
        w.put(f"cnn.ablation.{case}", a)
    # Non-overlapping occlusion windows are feature ablation with block groups.
    gap = (fa.attribute(x.clone(), target=target, feature_mask=occ_blocks)
           - w_occ_div(cnn, x, target)).abs().max().item()
    checks.append(("cnn occ w133.s133 (float64 sums) vs ablation occ_blocks", gap))

    # ShapleyValueSampling with given orders, and exact ShapleyValues for few players.
    quadrants = ((h >= 5).long() * 2 + (wi >= 6).long()).reshape(1, 1, 9, 11)
    put_shapley(w, "cnn.shapley.quadrants", cnn, x, quadrants, None, target, 30, 7, checks)
    w.put("cnn.shapley.quadrants.mask", quadrants)
    put_shapley(w, "cnn.shapley.default.b02", cnn, x,
                torch.arange(2 * 9 * 11).reshape(1, 2, 9, 11), 0.2, target, 3, 8, checks)

    # The residual network.
    res, rx, rt, shared = residual_setup()
    occ_res = {
        "w233.s2": ((2, 3, 3), 2, None, rt),
        "w124.s113": ((1, 2, 4), (1, 1, 3), None, rt),
        "w133.s133.shared": ((1, 3, 3), (1, 3, 3), shared, rt),
    }
    for case, (window, strides, baseline, t) in occ_res.items():
        put_occlusion(w, f"residual.occ.{case}", res, rx, window, strides, baseline, t, checks)
    rh = torch.arange(6).reshape(6, 1)
    rw = torch.arange(6).reshape(1, 6)
    res_blocks = torch.stack([(rh // 2) * 3 + rw // 2, (rh // 2) * 3 + rw // 2 + 9]).unsqueeze(0)
    g = torch.Generator().manual_seed(6)
    res_per_sample = torch.randint(0, 4, (4, 1, 6, 6), generator=g)
    fa = FeatureAblation(res)
    for case, (mask, baseline, t) in {"blocks": (res_blocks, None, rt),
                                      "per_sample.t1": (res_per_sample, 0.1, 1)}.items():
        w.put(f"residual.ablation.{case}.mask", mask)
        w.put(f"residual.ablation.{case}",
              fa.attribute(rx.clone(), baselines=baseline, target=t, feature_mask=mask))
    g = torch.Generator().manual_seed(9)
    res_players = torch.randint(0, 5, (4, 2, 6, 6), generator=g)
    assert sorted(res_players.unique().tolist()) == [0, 1, 2, 3, 4]
    w.put("residual.shapley.per_sample.mask", res_players)
    put_shapley(w, "residual.shapley.per_sample", res, rx, res_players, None, rt, 20, 10, checks)

    w.save(OUT, f"tests/data/make_perturbation_reference.py with Captum {captum.__version__} "
           f"and torch {torch.__version__}")
    for label, v in checks:
        print(f"{label:58s} {v:.3e}")
    print(f"wrote {len(w.lines)} tensors to {OUT}")


def w_occ_div(model, x, target):
    """Captum's float64 occlusion sums for 1x3x3 windows with stride 3 (every count is 1)."""
    raw = Occlusion(model)
    raw.use_weights = False
    return raw.attribute(x.clone(), sliding_window_shapes=(1, 3, 3), strides=(1, 3, 3),
                         target=target)


if __name__ == "__main__":
    main()
