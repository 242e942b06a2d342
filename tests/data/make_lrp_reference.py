#!/usr/bin/env python3
"""Writes lrp_reference.txt: layer-wise relevance propagation computed by Captum 0.7.0's `LRP`,
the independent reference for rar::lrp (tests/attribution/test_lrp.cpp).

Two float64 networks, each written with the child names of its C++ twin (a flat
torch::nn::Sequential), so the weights load by name:

  * mlp: 0 Linear(6, 10), 1 ReLU, 2 Dropout(0.5) (eval), 3 Linear(10, 10), 4 Tanh,
         5 Linear(10, 4); input [4, 6]
  * cnn: 0 Conv2d(1, 3, 3), 1 ReLU, 2 MaxPool2d(2), 3 Conv2d(3, 4, 3), 4 ReLU, 5 AvgPool2d(2),
         (6 Flatten in C++; a reshape in the forward here, since Captum's LRP has no rule for
         nn.Flatten), 7 Linear(16, 6), 8 ReLU, 9 Linear(6, 3); input [3, 1, 14, 14]

Cases (Captum rules set as `layer.rule`, the others left to Captum's defaults):

  * <net>.eps:          EpsilonRule() (epsilon 1e-9) everywhere, per-sample targets, with the
                        convergence delta (Captum's sign: output - sum of relevance)
  * <net>.eps.t2:       the same with the one target 2 for every sample
  * <net>.eps.large:    EpsilonRule(0.1) on every layer that has a rule
  * <net>.gamma:        GammaRule() (gamma 0.25) on the first layer (mlp) / both conv layers (cnn)
  * <net>.mixed:        mlp: 0 GammaRule(0.5, set_bias_to_zero=True), 3 IdentityRule,
                        5 EpsilonRule(0.01);
                        cnn: 0 GammaRule(0.25), 3 Alpha1_Beta0_Rule(), 7 EpsilonRule(0.05),
                        9 GammaRule(0.1, set_bias_to_zero=True)

Every Captum result is also recomputed by a plain implementation of the rules written out here
(lrp_by_hand: R_top = output[target] at the target, then per layer with a rule
R_in = a * J'^T (R_out / (z' + eps sign(z'))), sign(0) = 1, z' = the layer with the rule's
weights applied to its original input a; activations and dropout pass R unchanged), and the
script stops if the two differ by more than 1e-12.

Regenerate (Captum 0.7.0 from `git archive refs/tags/v0.7.0 captum` of pytorch/captum unpacked
into a folder CAPTUM; /usr/bin/python3 is Debian's interpreter with python3-torch):

    cd /tmp && PYTHONPATH=CAPTUM /usr/bin/python3 <repo>/tests/data/make_lrp_reference.py

The output is written next to this script. Format: see reference_writer.py.
"""
import copy
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

torch.set_default_dtype(torch.float64)

import captum  # noqa: E402
from captum.attr import LRP  # noqa: E402
from captum.attr._utils.lrp_rules import (  # noqa: E402
    Alpha1_Beta0_Rule,
    EpsilonRule,
    GammaRule,
    IdentityRule,
)

from reference_writer import Writer  # noqa: E402  (this folder)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lrp_reference.txt")


class Named(nn.Module):
    """Children named as in the C++ Sequential; the input is flattened before child `flatten_at`
    (the C++ twin has a torch::nn::Flatten at index flatten_at - 1)."""

    def __init__(self, layers, flatten_at=None):
        super().__init__()
        for name, layer in layers:
            self.add_module(name, layer)
        self.flatten_at = flatten_at

    def forward(self, x):
        for name, layer in self.named_children():
            if name == self.flatten_at:
                x = x.reshape(x.shape[0], -1)
            x = layer(x)
        return x


def make_models():
    """name -> (model, input, per-sample target)."""
    torch.manual_seed(31)
    mlp = Named([("0", nn.Linear(6, 10)), ("1", nn.ReLU()), ("2", nn.Dropout(0.5)),
                 ("3", nn.Linear(10, 10)), ("4", nn.Tanh()), ("5", nn.Linear(10, 4))])
    x_mlp = torch.randn(4, 6)
    torch.manual_seed(32)
    cnn = Named([("0", nn.Conv2d(1, 3, 3)), ("1", nn.ReLU()), ("2", nn.MaxPool2d(2)),
                 ("3", nn.Conv2d(3, 4, 3)), ("4", nn.ReLU()), ("5", nn.AvgPool2d(2)),
                 ("7", nn.Linear(16, 6)), ("8", nn.ReLU()), ("9", nn.Linear(6, 3))],
                flatten_at="7")
    x_cnn = torch.randn(3, 1, 14, 14)
    return {"mlp": (mlp, x_mlp, [0, 3, 1, 2]), "cnn": (cnn, x_cnn, [2, 0, 1])}


WEIGHTED = (nn.Linear, nn.Conv2d)
RULED = (nn.Linear, nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)


def cases(name):
    """case -> {child name: (kind, args)}; kinds: eps, gamma, ab, identity."""
    if name == "mlp":
        every = ["0", "3", "5"]
        return {
            "eps": {},
            "eps.t2": {},
            "eps.large": {k: ("eps", (0.1,)) for k in every},
            "gamma": {"0": ("gamma", (0.25, False))},
            "mixed": {"0": ("gamma", (0.5, True)), "3": ("identity", ()),
                      "5": ("eps", (0.01,))},
        }
    every = ["0", "2", "3", "5", "7", "9"]
    return {
        "eps": {},
        "eps.t2": {},
        "eps.large": {k: ("eps", (0.1,)) for k in every},
        "gamma": {"0": ("gamma", (0.25, False)), "3": ("gamma", (0.25, False))},
        "mixed": {"0": ("gamma", (0.25, False)), "3": ("ab", ()), "7": ("eps", (0.05,)),
                  "9": ("gamma", (0.1, True))},
    }


def captum_rule(kind, args):
    if kind == "eps":
        return EpsilonRule(*args)
    if kind == "gamma":
        return GammaRule(gamma=args[0], set_bias_to_zero=args[1])
    if kind == "ab":
        return Alpha1_Beta0_Rule()
    return IdentityRule()


def lrp_by_hand(model, x, target, rules):
    """LRP written out layer by layer (the rules' formulas), for checking Captum."""
    acts = []
    a = x
    with torch.no_grad():
        for name, layer in model.named_children():
            if name == model.flatten_at:
                a = a.reshape(a.shape[0], -1)
            acts.append((name, layer, a))
            a = layer(a)
    out = a
    r = torch.zeros_like(out)
    idx = torch.arange(len(target))
    r[idx, target] = out[idx, target]
    for name, layer, a in reversed(acts):
        r = r.reshape(layer(a).shape)
        if not isinstance(layer, RULED):
            r = r.reshape(a.shape)
            continue
        kind, args = rules.get(name, ("eps", (1e-9,)))
        if kind == "identity":
            r = r.reshape(a.shape)
            continue
        eps = args[0] if kind == "eps" else 1e-9
        mod = copy.deepcopy(layer)
        with torch.no_grad():
            if kind in ("gamma", "ab") and isinstance(mod, WEIGHTED):
                w = mod.weight
                w.copy_(w + args[0] * w.clamp(min=0) if kind == "gamma" else w.clamp(min=0))
                if kind == "gamma" and args[1]:
                    mod.bias.zero_()
        a = a.detach().requires_grad_(True)
        z = mod(a)
        sign = torch.sign(z.detach())
        sign[sign == 0] = 1
        s = r / (z.detach() + eps * sign)
        (c,) = torch.autograd.grad(z, a, s)
        r = a.detach() * c
    return r.reshape(x.shape), out[idx, target]


def main():
    w = Writer()
    worst = 0.0
    for name, (model, x, target) in make_models().items():
        model.eval()
        w.put(f"{name}.input", x)
        w.put(f"{name}.target", torch.tensor(target))
        for key, value in model.state_dict().items():
            w.put(f"{name}.{key}", value)
        with torch.no_grad():
            w.put(f"{name}.output", model(x))
        for case, rules in cases(name).items():
            t = [2] * len(target) if case == "eps.t2" else target
            for child, layer in model.named_children():
                if child in rules:
                    layer.rule = captum_rule(*rules[child])
            attr, delta = LRP(model).attribute(x, target=torch.tensor(t),
                                               return_convergence_delta=True)
            for layer in model.children():
                if hasattr(layer, "rule"):
                    del layer.rule
            w.put(f"{name}.{case}", attr)
            w.put(f"{name}.{case}.delta", delta)
            own, score = lrp_by_hand(model, x, torch.tensor(t), rules)
            gap = (own - attr).abs().max().item()
            assert gap < 1e-12, (name, case, gap)
            worst = max(worst, gap)
            gap_delta = (score - own.reshape(len(t), -1).sum(1) - delta).abs().max().item()
            assert gap_delta < 1e-12, (name, case, gap_delta)
            print(f"{name}.{case:10s} max|attr| {attr.abs().max().item():.3e}  "
                  f"max|delta| {delta.abs().max().item():.3e}  by hand: {gap:.1e}")
    w.save(OUT, f"tests/data/make_lrp_reference.py with Captum {captum.__version__} "
           f"and torch {torch.__version__}")
    print(f"max |Captum - by hand| {worst:.3e}; wrote {len(w.lines)} tensors to {OUT}")


if __name__ == "__main__":
    main()
