#!/usr/bin/python3
"""Writes the TorchScript fixture of rar::ScriptModel's tests (tests/script/test_script_model.cpp):

    script_model.pt        a small float64 CNN exported with torch.jit.script
    script_residual.pt     the residual network of make_residual_reference.py (same weights),
                           exported with torch.jit.script and its two ReLUs made in-place, as
                           torchvision's are
    traced_residual.pt     the same network exported with torch.jit.trace
    script_resnet.pt       a miniature of torchvision's ResNet (BatchNorm in eval, in-place
                           ReLUs, a 3x3 stride-2 max-pool with overlapping windows, basic blocks
                           with a downsampling shortcut, adaptive average pooling), float64
    script_resnet_reference.txt
                           its input, targets and outputs, and Captum 0.7.0's GuidedBackprop,
                           Deconvolution and DeepLift on the eager network (Captum skips its
                           max-pool rule after a ReLU, so its DeepLift misses summation-to-delta
                           there; the test compares rar's map with it loosely and checks rar's
                           summation-to-delta exactly)
    script_reference.txt   its weights (state_dict names), an input batch, targets, and what
                           Python computes on it: outputs, plain input gradients (saliency),
                           the cross-entropy loss and its parameter gradients

The C++ tests load script_model.pt through rar::ScriptModel, compare its outputs and
gradients with the Python values here (1e-12), and build the same network as a
torch::nn::Sequential from the weights here to check that every rar function gives the same
results on both (1e-10). They run DeepLIFT, guided backprop, deconvolution and the smooth
surrogate on the two residual exports against Captum's values on the eager network
(residual_reference.txt), which is why this script needs Captum too (see
make_residual_reference.py for CAPTUM_PATH).

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
    export_residual()
    export_resnet()


class BasicBlock(nn.Module):
    """torchvision's BasicBlock, in miniature."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                            nn.BatchNorm2d(cout))

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class MiniResNet(nn.Module):
    """torchvision's ResNet layout with widths 8 and 16: [N, 1, 16, 16] -> [N, 5]."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = BasicBlock(8, 8, 1)
        self.layer2 = BasicBlock(8, 16, 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer2(self.layer1(x))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def export_resnet():
    sys.path.insert(0, os.environ.get("CAPTUM_PATH", "/tmp/captum070"))
    from captum.attr import Deconvolution, DeepLift, GuidedBackprop  # noqa: E402

    torch.manual_seed(23)
    model = MiniResNet().double()
    with torch.no_grad():  # running statistics that are not the identity
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
    model.eval()
    path = os.path.join(HERE, "script_resnet.pt")
    torch.jit.save(torch.jit.script(model), path)
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")

    g = torch.Generator().manual_seed(29)
    x = torch.rand(6, 1, 16, 16, generator=g, dtype=torch.float64)
    with torch.no_grad():
        out = model(x)
    target = out.argmax(1)
    w = Writer()
    w.put("resnet.input", x)
    w.put("resnet.target", target)
    w.put("resnet.output", out)
    # Captum hooks nn.ReLU modules; the in-place ones are swapped for out-of-place twins on a
    # copy (the same function), as Captum asks.
    eager = MiniResNet().double()
    eager.load_state_dict(model.state_dict())
    eager.eval()
    for m in eager.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = False
    w.put("resnet.guided_backprop", GuidedBackprop(eager).attribute(x.clone(), target=target))
    w.put("resnet.deconvolution", Deconvolution(eager).attribute(x.clone(), target=target))
    # BasicBlock reuses its ReLU module twice, which Captum's DeepLift does not support; a copy
    # with one ReLU per call site computes the same function.
    a, d = DeepLift(_one_relu_per_call(eager)).attribute(x.clone(), target=target,
                                                        return_convergence_delta=True)
    w.put("resnet.deeplift", a)
    w.put("resnet.deeplift.captum_delta", d)
    out_path = os.path.join(HERE, "script_resnet_reference.txt")
    w.save(out_path, f"tests/data/make_torchscript.py with torch {torch.__version__}")
    print(f"wrote {len(w.lines)} tensors to {out_path}; Captum's DeepLift delta up to "
          f"{d.abs().max().item():.2e}")


def _one_relu_per_call(model):
    """The network with a fresh nn.ReLU at each of BasicBlock's two call sites."""

    class Block(nn.Module):
        def __init__(self, b):
            super().__init__()
            self.b = b
            self.relu1 = nn.ReLU()
            self.relu2 = nn.ReLU()

        def forward(self, x):
            b = self.b
            out = self.relu1(b.bn1(b.conv1(x)))
            out = b.bn2(b.conv2(out))
            identity = x if b.downsample is None else b.downsample(x)
            return self.relu2(out + identity)

    class Net(nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m
            self.relu = nn.ReLU()
            self.layer1 = Block(m.layer1)
            self.layer2 = Block(m.layer2)

        def forward(self, x):
            m = self.m
            x = m.maxpool(self.relu(m.bn1(m.conv1(x))))
            x = self.layer2(self.layer1(x))
            return m.fc(torch.flatten(m.avgpool(x), 1))

    return Net(model).eval()


def export_residual():
    """The residual network of residual_reference.txt, scripted (with in-place ReLUs) and
    traced. Imported only now: that module makes float64 the default dtype, which must not
    change the CNN above."""
    import make_residual_reference as residual  # noqa: E402  (this folder; imports Captum)

    model = residual.make_model()
    x = torch.randn(4, 2, 6, 6, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = model(x)
    traced = torch.jit.trace(model, x)
    for m in (model.stem_act, model.add_act):
        m.inplace = True  # as torchvision's ReLUs: aten::relu_ in the exported graph
    scripted = torch.jit.script(model)
    for name, exported in (("script_residual.pt", scripted), ("traced_residual.pt", traced)):
        path = os.path.join(HERE, name)
        torch.jit.save(exported, path)
        with torch.no_grad():
            assert torch.equal(torch.jit.load(path)(x), expected), name
        print(f"wrote {path} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    main()
