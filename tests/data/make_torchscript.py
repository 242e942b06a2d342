#!/usr/bin/python3
"""Writes the TorchScript fixture of rar::ScriptModel's tests (tests/script/test_script_model.cpp):

    script_model.pt        a small float64 CNN exported with torch.jit.script
    script_reference.txt   its weights (state_dict names), an input batch, targets, and what
                           Python computes on it: outputs, plain input gradients (saliency),
                           the cross-entropy loss and its parameter gradients

The C++ tests load script_model.pt through rar::ScriptModel, compare its outputs and
gradients with the Python values here (1e-12), and build the same network as a
torch::nn::Sequential from the weights here to check that every rar function gives the same
results on both (1e-10).

Regenerate (from the repository root, with Debian's interpreter, which has python3-torch;
not the pyenv python3 that may come first on PATH):

    /usr/bin/python3 tests/data/make_torchscript.py

The output is deterministic for a given torch version (fixed seeds, float64; the script
re-runs itself with PYTHONHASHSEED=0 because TorchScript writes each module's constants in
set order, which string hashing would otherwise shuffle from run to run).

Format of script_reference.txt: see reference_writer.py (parsed by tests/support/reference.hpp).
"""
import os
import sys

if os.environ.get("PYTHONHASHSEED") != "0":  # byte-identical .pt files run after run
    os.execve(sys.executable, [sys.executable] + sys.argv, dict(os.environ, PYTHONHASHSEED="0"))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from reference_writer import Writer  # noqa: E402  (this folder)

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = os.path.join(HERE, "script_model.pt")
REFERENCE = os.path.join(HERE, "script_reference.txt")
PREFIX = "net"  # reference names: net.<state_dict key>, net.input, ...


def make_model():
    """[N, 1, 8, 8] -> [N, 3]. The Tanh layer gives non-zero second derivatives, so the
    double backward of the attribution attack and of the RAR terms is exercised through the
    TorchScript graph. The C++ twin is script_twin() in test_script_model.cpp."""
    torch.manual_seed(20240607)
    net = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Linear(27, 8), nn.Tanh(), nn.Linear(8, 3))
    net = net.to(torch.float64)
    # Larger weights than the default init, so the logits (and attributions) are not tiny.
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(2.0)
    return net.eval()


def main():
    net = make_model()
    scripted = torch.jit.script(net)
    torch.jit.save(scripted, MODEL)

    g = torch.Generator().manual_seed(7)
    x = torch.rand(6, 1, 8, 8, generator=g, dtype=torch.float64)  # pixels in [0, 1]
    with torch.no_grad():
        out = net(x)
    # Targets are the predictions, so every sample counts as correctly classified (the
    # attribution attack only attacks those); one is flipped to keep a misclassified sample.
    target = out.argmax(1)
    target[5] = (target[5] + 1) % 3

    w = Writer()
    w.put(f"{PREFIX}.input", x)
    w.put(f"{PREFIX}.target", target)
    for key, value in net.state_dict().items():
        w.put(f"{PREFIX}.{key}", value)

    # Everything below runs through the *loaded* TorchScript module, as the C++ side does.
    loaded = torch.jit.load(MODEL)
    loaded.eval()
    out_script = loaded(x)
    assert torch.equal(out_script, net(x)), "scripted and eager outputs differ"
    w.put(f"{PREFIX}.output", out_script)

    # Saliency (Captum's Saliency with abs=False): d output[n, target[n]] / d x.
    xs = x.clone().requires_grad_(True)
    score = loaded(xs).gather(1, target.view(-1, 1)).sum()
    (grad,) = torch.autograd.grad(score, xs)
    w.put(f"{PREFIX}.saliency", grad)

    # Cross-entropy (mean over the batch), its input gradient and parameter gradients.
    xs = x.clone().requires_grad_(True)
    loss = F.cross_entropy(loaded(xs), target)
    params = dict(loaded.named_parameters())
    grads = torch.autograd.grad(loss, [xs] + list(params.values()))
    w.put(f"{PREFIX}.ce_loss", loss)
    w.put(f"{PREFIX}.ce_input_grad", grads[0])
    for (key, _), gp in zip(params.items(), grads[1:]):
        w.put(f"{PREFIX}.ce_grad.{key}", gp)

    w.save(REFERENCE, f"tests/data/make_torchscript.py with torch {torch.__version__}")
    print(f"wrote {MODEL} ({os.path.getsize(MODEL)} bytes)")
    print(f"wrote {len(w.lines)} tensors to {REFERENCE}")


if __name__ == "__main__":
    main()
