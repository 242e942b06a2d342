// DeepLIFT never returns a silently wrong map: the completeness check of deeplift and
// deeplift_shap (raise, warn, off; the _with_delta forms) on the architectures people use now,
// a tiny vision transformer and a ConvNeXt-like block, and the rules that make them exact once
// their layers are rar::nn ones (GELU, SiLU, max pooling in a custom forward).

#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <rar/rar.hpp>
#include <tuple>
#include <vector>

#include "support/models.hpp"
#include "support/warnings.hpp"

using rar::test::max_rel_diff;
using rar::test::target_score;
namespace tnn = torch::nn;

namespace {

// A tiny vision transformer: 4x4 patch embedding, pre-norm LayerNorm, 2-head softmax attention,
// a GELU MLP (rar::nn::GELU) and residual adds. Unseen: torch::nn::LayerNorm and
// torch::nn::MultiheadAttention, which DeepLIFT cannot see; seen: rar::nn::LayerNorm and
// attention written with rar::nn::functional::scaled_dot_product_attention.
struct ViTImpl : tnn::Module {
  bool seen;
  tnn::Conv2d patch{nullptr};
  tnn::LayerNorm torch_norm1{nullptr}, torch_norm2{nullptr};
  rar::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  tnn::MultiheadAttention attn{nullptr};
  tnn::Linear qkv{nullptr}, proj{nullptr};
  tnn::Linear fc1{nullptr}, fc2{nullptr}, head{nullptr};
  rar::nn::GELU gelu{nullptr};
  explicit ViTImpl(bool seen_) : seen(seen_) {
    patch = register_module("patch", tnn::Conv2d(tnn::Conv2dOptions(1, 8, 4).stride(4)));
    if (seen) {
      norm1 = register_module("norm1", rar::nn::LayerNorm(tnn::LayerNormOptions({8})));
      norm2 = register_module("norm2", rar::nn::LayerNorm(tnn::LayerNormOptions({8})));
      qkv = register_module("qkv", tnn::Linear(8, 24));
      proj = register_module("proj", tnn::Linear(8, 8));
    } else {
      torch_norm1 = register_module("norm1", tnn::LayerNorm(tnn::LayerNormOptions({8})));
      torch_norm2 = register_module("norm2", tnn::LayerNorm(tnn::LayerNormOptions({8})));
      attn = register_module("attn", tnn::MultiheadAttention(tnn::MultiheadAttentionOptions(8, 2)));
    }
    fc1 = register_module("fc1", tnn::Linear(8, 16));
    fc2 = register_module("fc2", tnn::Linear(16, 8));
    head = register_module("head", tnn::Linear(8, 3));
    gelu = register_module("gelu", rar::nn::GELU());
  }
  torch::Tensor attend(const torch::Tensor& h) {  // [N, P, 8]
    if (!seen) {
      const torch::Tensor s = h.transpose(0, 1);  // [P, N, 8]
      return std::get<0>(attn(s, s, s)).transpose(0, 1);
    }
    const auto n = h.size(0), p = h.size(1);
    const auto parts = qkv(h).view({n, p, 3, 2, 4}).permute({2, 0, 3, 1, 4});  // [3, N, 2, P, 4]
    const auto a = rar::nn::functional::scaled_dot_product_attention(parts[0], parts[1], parts[2]);
    return proj(a.transpose(1, 2).reshape({n, p, 8}));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor t = patch(x).flatten(2).transpose(1, 2);  // [N, P, 8]
    t = t + attend(seen ? norm1(t) : torch_norm1(t));
    t = t + fc2(gelu(fc1(seen ? norm2(t) : torch_norm2(t))));
    return head(t.mean(1));
  }
};
TORCH_MODULE(ViT);

// A ConvNeXt-like block: stem, batch norm (eval), SiLU, depthwise 7x7, then channels-last
// LayerNorm, a pointwise GELU MLP and a residual add. `supported` swaps the two operations
// DeepLIFT cannot see (LayerNorm, torch::gelu) for ones it can (none, rar::nn::functional::gelu).
struct ConvNeXtImpl : tnn::Module {
  tnn::Conv2d stem{nullptr}, dw{nullptr};
  tnn::BatchNorm2d bn{nullptr};
  tnn::LayerNorm ln{nullptr};
  tnn::Linear pw1{nullptr}, pw2{nullptr}, head{nullptr};
  rar::nn::SiLU silu{nullptr};
  bool supported;
  explicit ConvNeXtImpl(bool supported_)
      : stem(register_module("stem", tnn::Conv2d(tnn::Conv2dOptions(1, 6, 3).padding(1)))),
        dw(register_module("dw", tnn::Conv2d(tnn::Conv2dOptions(6, 6, 7).padding(3).groups(6)))),
        bn(register_module("bn", tnn::BatchNorm2d(6))),
        ln(register_module("ln", tnn::LayerNorm(tnn::LayerNormOptions({6})))),
        pw1(register_module("pw1", tnn::Linear(6, 12))),
        pw2(register_module("pw2", tnn::Linear(12, 6))),
        head(register_module("head", tnn::Linear(6, 3))),
        silu(register_module("silu", rar::nn::SiLU())),
        supported(supported_) {}
  torch::Tensor forward(const torch::Tensor& x) {
    const torch::Tensor h = silu(bn(stem(x)));
    torch::Tensor y = dw(h).permute({0, 2, 3, 1});  // channels last
    if (!supported) y = ln(y);
    y = pw1(y);
    y = supported ? rar::nn::functional::gelu(y) : torch::gelu(y);
    y = pw2(y).permute({0, 3, 1, 2});
    return head((h + y).mean({2, 3}));
  }
};
TORCH_MODULE(ConvNeXt);

// Batch-norm statistics that are not the identity, then eval mode.
void settle(ConvNeXt& net) {
  torch::NoGradGuard no_grad;
  net->bn->running_mean.uniform_(-0.5, 0.5);
  net->bn->running_var.uniform_(0.5, 2.0);
  net->bn->weight.uniform_(0.5, 1.5);
  net->bn->bias.uniform_(-0.3, 0.3);
  net->eval();
}

}  // namespace

TEST_CASE("DeepLIFT raises on a vision transformer's map instead of returning it wrong",
          "[deeplift][completeness][modern]") {
  torch::manual_seed(11);
  ViT net(false);
  net->to(torch::kDouble);
  net->eval();
  const auto x = torch::rand({4, 1, 8, 8}, torch::kDouble);
  const auto y = torch::tensor({0, 1, 2, 1}, torch::kLong);
  const auto opts = rar::DeepLiftOptions().target(y);
  CHECK_THROWS_WITH(rar::deeplift(net, x, opts),
                    Catch::Contains("rar::deeplift: the attributions do not sum to F(x) - F(x')") &&
                        Catch::Contains("torch::nn::MultiheadAttention"));
  CHECK_THROWS_WITH(rar::deeplift_with_delta(net, x, opts),
                    Catch::Contains("rar::deeplift_with_delta: the attributions do not sum"));
  // Off: the map and its deltas, which are far from 0 and are what the check measured.
  const auto off = rar::DeepLiftOptions(opts).completeness(rar::CompletenessCheck::off);
  const rar::Attribution r = rar::deeplift_with_delta(net, x, off);
  const auto fx = target_score(net, x, y);
  const auto fr = target_score(net, torch::zeros_like(x), y);
  CHECK(max_rel_diff(r.delta, r.attributions.reshape({4, -1}).sum(1) - (fx - fr)) < 1e-10);
  CHECK((r.delta.abs() / (1 + fx.abs() + fr.abs())).max().item<double>() > 1e-2);
  CHECK(max_rel_diff(rar::deeplift(net, x, off), r.attributions) < 1e-12);
  // Warn: the same map, and one warning with the message.
  rar::test::WarningCollector warnings;
  {
    rar::test::WarningGuard guard(&warnings);
    const auto warned = rar::deeplift(
        net, x, rar::DeepLiftOptions(opts).completeness(rar::CompletenessCheck::warn));
    CHECK(max_rel_diff(warned, r.attributions) < 1e-12);
  }
  REQUIRE(warnings.messages.size() == 1);
  CHECK_THAT(warnings.messages[0], Catch::Contains("do not sum to F(x) - F(x')"));
  // A tolerance above the worst miss lets the map through.
  const double worst = (r.delta.abs() / (1 + fx.abs() + fr.abs())).max().item<double>();
  CHECK_NOTHROW(
      rar::deeplift(net, x, rar::DeepLiftOptions(opts).completeness_tolerance(2 * worst)));
  CHECK_THROWS_WITH(
      rar::deeplift(net, x, rar::DeepLiftOptions(opts).completeness_tolerance(worst / 2)),
      Catch::Contains("the worst, sample"));
  // DeepLIFT-SHAP checks the mean over its baselines the same way.
  const auto background = torch::rand({3, 1, 8, 8}, torch::kDouble);
  const auto shap = rar::DeepLiftShapOptions().baselines(background).target(y);
  CHECK_THROWS_WITH(rar::deeplift_shap(net, x, shap),
                    Catch::Contains("rar::deeplift_shap: the attributions do not sum"));
  const auto s = rar::deeplift_shap_with_delta(
      net, x, rar::DeepLiftShapOptions(shap).completeness(rar::CompletenessCheck::off));
  torch::Tensor mean_ref = torch::zeros({4}, torch::kDouble);
  for (int64_t b = 0; b < 3; ++b)
    mean_ref += target_score(net, background.slice(0, b, b + 1).expand_as(x), y) / 3.0;
  CHECK(max_rel_diff(s.delta, s.attributions.reshape({4, -1}).sum(1) - (fx - mean_ref)) < 1e-10);
  CHECK(s.delta.abs().max().item<double>() > 1e-2);
}

TEST_CASE(
    "DeepLIFT raises on a ConvNeXt block with LayerNorm and torch::gelu, and is exact once "
    "its layers are rar::nn ones",
    "[deeplift][completeness][modern]") {
  torch::manual_seed(12);
  const auto x = 2 * torch::randn({5, 1, 9, 9}, torch::kDouble);
  const auto base = torch::zeros({5, 1, 9, 9}, torch::kDouble);
  const auto y = torch::tensor({0, 1, 2, 0, 2}, torch::kLong);
  const auto opts = rar::DeepLiftOptions().target(y).baseline(base);
  ConvNeXt unseen(false);
  unseen->to(torch::kDouble);
  settle(unseen);
  CHECK_THROWS_WITH(rar::deeplift(unseen, x, opts), Catch::Contains("do not sum to F(x) - F(x')"));
  const auto r = rar::deeplift_with_delta(
      unseen, x, rar::DeepLiftOptions(opts).completeness(rar::CompletenessCheck::off));
  const auto fx = target_score(unseen, x, y), fr = target_score(unseen, base, y);
  CHECK((r.delta.abs() / (1 + fx.abs() + fr.abs())).max().item<double>() > 1e-2);
  CHECK((r.delta.abs() / (fx - fr).abs()).max().item<double>() > 0.1);

  // The same weights with rar::nn's GELU and no LayerNorm: summation-to-delta to 1e-10.
  ConvNeXt seen(true);
  seen->to(torch::kDouble);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : seen->named_parameters()) p.value().copy_(unseen->named_parameters()[p.key()]);
  }
  settle(seen);
  const auto exact = rar::deeplift_with_delta(seen, x, opts);
  const auto gx = target_score(seen, x, y), gr = target_score(seen, base, y);
  CHECK(exact.delta.abs().max().item<double>() < 1e-10);
  CHECK(max_rel_diff(exact.attributions.reshape({5, -1}).sum(1), gx - gr) < 1e-10);
  // The map is not the gradient times the input difference (the rules did change it).
  const auto grad_x = rar::saliency(seen, x, rar::GradientOptions().target(y).abs(false));
  CHECK(max_rel_diff(exact.attributions, grad_x * (x - base)) > 1e-3);
  // In float32 the check passes too (no false alarm at the default tolerance).
  ConvNeXt seen32(true);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : seen32->named_parameters())
      p.value().copy_(seen->named_parameters()[p.key()].to(torch::kFloat));
    for (auto& b : seen32->named_buffers()) b.value().copy_(seen->named_buffers()[b.key()]);
  }
  seen32->eval();
  const auto r32 =
      rar::deeplift_with_delta(seen32, x.to(torch::kFloat),
                               rar::DeepLiftOptions().target(y).baseline(base.to(torch::kFloat)));
  CHECK(max_rel_diff(r32.attributions.to(torch::kDouble), exact.attributions) < 1e-3);
}

TEST_CASE(
    "GELU and SiLU: drop-ins equal torch's outside scopes, and DeepLIFT's rescale rule "
    "through them is (f(z) - f(z'))/(z - z')",
    "[deeplift][modern][nn]") {
  torch::manual_seed(13);
  const auto z = torch::randn({64}, torch::kDouble);
  CHECK(torch::equal(rar::nn::GELU()(z), tnn::GELU()(z)));
  CHECK(torch::equal(rar::nn::GELU(tnn::GELUOptions().approximate("tanh"))(z),
                     tnn::GELU(tnn::GELUOptions().approximate("tanh"))(z)));
  CHECK(torch::equal(rar::nn::SiLU()(z), tnn::SiLU()(z)));
  CHECK_THROWS_WITH(rar::nn::GELU(tnn::GELUOptions().approximate("fast")),
                    Catch::Contains("approximate must be \"none\" or \"tanh\", got \"fast\""));

  // One hidden unit: F(x) = v·f(w·x + b), so DeepLIFT(x)_i = (x_i − x'_i)·w_i·v·Δf/Δz exactly.
  const auto w = torch::randn({1, 5}, torch::kDouble);
  const double b = 0.3, v = -1.7;
  const auto x = torch::randn({6, 5}, torch::kDouble);
  const auto base = torch::randn({6, 5}, torch::kDouble);
  struct Case {
    const char* name;
    std::function<torch::Tensor(const torch::Tensor&)> rar_f, torch_f;
  };
  const std::vector<Case> cases = {
      {"gelu", [](const torch::Tensor& t) { return rar::nn::functional::gelu(t); },
       [](const torch::Tensor& t) { return torch::gelu(t); }},
      {"gelu-tanh",
       [](const torch::Tensor& t) {
         return rar::nn::functional::gelu(t,
                                          tnn::functional::GELUFuncOptions().approximate("tanh"));
       },
       [](const torch::Tensor& t) { return torch::gelu(t, "tanh"); }},
      {"silu", [](const torch::Tensor& t) { return rar::nn::functional::silu(t); },
       [](const torch::Tensor& t) { return torch::silu(t); }}};
  for (const auto& c : cases) {
    INFO(c.name);
    {
      auto model = [&](const torch::Tensor& t) { return v * c.rar_f(t.mm(w.t()) + b).squeeze(1); };
      const auto zx = x.mm(w.t()).squeeze(1) + b, zr = base.mm(w.t()).squeeze(1) + b;
      const auto slope = (c.torch_f(zx) - c.torch_f(zr)) / (zx - zr);
      const auto expected = (x - base) * w * (v * slope).unsqueeze(1);
      const auto r = rar::deeplift_with_delta(model, x, rar::DeepLiftOptions().baseline(base));
      CHECK(max_rel_diff(r.attributions, expected) < 1e-12);
      CHECK(r.delta.abs().max().item<double>() < 1e-12);
    }
  }
  // A Sequential of torch::nn GELU/SiLU (the walker) gives the same map as the scope path.
  tnn::Sequential seq(tnn::Linear(5, 7), tnn::GELU(), tnn::Linear(7, 6), tnn::SiLU(),
                      tnn::Linear(6, 3));
  seq->to(torch::kDouble);
  auto l = [&](size_t i) { return seq->ptr(i)->as<tnn::Linear>(); };
  auto lambda = [&](const torch::Tensor& t) {
    namespace F = rar::nn::functional;
    return l(4)->forward(F::silu(l(2)->forward(F::gelu(l(0)->forward(t)))));
  };
  const auto y = torch::tensor({0, 2, 1, 1, 0, 2}, torch::kLong);
  const auto opts = rar::DeepLiftOptions().target(y).baseline(base);
  CHECK(max_rel_diff(rar::deeplift(lambda, x, opts), rar::deeplift(seq, x, opts)) < 1e-12);
  // The smooth surrogate leaves them unchanged (they are smooth already).
  tnn::Sequential act{rar::nn::GELU(), rar::nn::SiLU()};
  CHECK(
      torch::equal(rar::smooth_surrogate(act, 10.0)(z.view({8, 8})), act->forward(z.view({8, 8}))));
}

TEST_CASE(
    "rar::nn::functional::max_pool2d: DeepLIFT's cross-maximum rule in a custom forward, "
    "the walker's map, exact summation-to-delta; torch::max_pool2d is caught",
    "[deeplift][completeness][maxpool]") {
  torch::manual_seed(14);
  tnn::Sequential seq(tnn::Conv2d(tnn::Conv2dOptions(1, 4, 3)), tnn::ReLU(), tnn::MaxPool2d(2),
                      tnn::Flatten(), tnn::Linear(4 * 3 * 3, 3));
  seq->to(torch::kDouble);
  auto conv = seq->ptr(0)->as<tnn::Conv2d>();
  auto fc = seq->ptr(4)->as<tnn::Linear>();
  auto custom = [&](const torch::Tensor& t) {
    const auto h = rar::nn::functional::relu(conv->forward(t));
    return fc->forward(
        rar::nn::functional::max_pool2d(h, tnn::functional::MaxPool2dFuncOptions(2)).flatten(1));
  };
  auto plain = [&](const torch::Tensor& t) {
    const auto h = rar::nn::functional::relu(conv->forward(t));
    return fc->forward(torch::max_pool2d(h, 2).flatten(1));
  };
  const auto x = torch::rand({6, 1, 8, 8}, torch::kDouble);
  const auto base = torch::rand({6, 1, 8, 8}, torch::kDouble);
  const auto y = torch::tensor({0, 1, 2, 0, 1, 2}, torch::kLong);
  const auto opts = rar::DeepLiftOptions().target(y).baseline(base);
  const auto walker = rar::deeplift_with_delta(seq, x, opts);
  const auto scoped = rar::deeplift_with_delta(custom, x, opts);
  CHECK(max_rel_diff(scoped.attributions, walker.attributions) < 1e-12);
  CHECK(scoped.delta.abs().max().item<double>() < 1e-10);
  // A shared reference (one row) gives the same map as that row repeated.
  const auto one = base.slice(0, 0, 1);
  CHECK(max_rel_diff(
            rar::deeplift(custom, x, rar::DeepLiftOptions().target(y).baseline(one)),
            rar::deeplift(custom, x, rar::DeepLiftOptions().target(y).baseline(one.expand_as(x)))) <
        1e-12);
  // Overlapping windows (3x3, stride 2, padding 1) stay exact: shares are summed, not overwritten.
  auto overlapping = [&](const torch::Tensor& t) {
    const auto h = rar::nn::functional::relu(conv->forward(t));  // [N, 4, 6, 6]
    const auto p = rar::nn::functional::max_pool2d(
        h, tnn::functional::MaxPool2dFuncOptions(3).stride(2).padding(1));  // [N, 4, 3, 3]
    return fc->forward(p.flatten(1));
  };
  CHECK(rar::deeplift_with_delta(overlapping, x, opts).delta.abs().max().item<double>() < 1e-10);
  // torch::max_pool2d passes the plain gradient; against a random reference that misses F(x) −
  // F(x′).
  const auto off = rar::DeepLiftOptions(opts).completeness(rar::CompletenessCheck::off);
  const auto miss = rar::deeplift_with_delta(plain, x, off).delta;
  const auto scale = 1 + target_score(plain, x, y).abs() + target_score(plain, base, y).abs();
  REQUIRE((miss.abs() / scale).max().item<double>() > 1e-3);
  CHECK_THROWS_WITH(rar::deeplift(plain, x, opts),
                    Catch::Contains("torch::max_pool2d called directly"));
  // Outside DeepLIFT the rar::nn pooling is torch's.
  CHECK(torch::equal(custom(x), plain(x)));
}

TEST_CASE(
    "DeepLIFT's completeness check: no false alarm on exact models in float32, and its "
    "option errors",
    "[deeplift][completeness][errors]") {
  torch::manual_seed(15);
  // The walker's max-pool rule on a float32 CNN, over a few draws: never a false alarm.
  tnn::Sequential cnn(tnn::Conv2d(tnn::Conv2dOptions(1, 8, 3)), tnn::ReLU(), tnn::MaxPool2d(2),
                      tnn::Conv2d(tnn::Conv2dOptions(8, 8, 3)), tnn::ReLU(), tnn::Flatten(),
                      tnn::Linear(8 * 11 * 11, 10));
  for (int draw = 0; draw < 5; ++draw) {
    const auto x = torch::rand({16, 1, 28, 28});
    const auto y = torch::randint(0, 10, {16}, torch::kLong);
    const auto r = rar::deeplift_with_delta(cnn, x, rar::DeepLiftOptions().target(y));
    const auto scale =
        1 + target_score(cnn, x, y).abs() + target_score(cnn, torch::zeros_like(x), y).abs();
    CHECK((r.delta.abs() / scale).max().item<double>() < 1e-4);
  }
  const auto x = torch::rand({2, 1, 28, 28});
  CHECK_THROWS_WITH(
      rar::deeplift(cnn, x,
                    rar::DeepLiftOptions().target(torch::tensor(0)).completeness_tolerance(0)),
      Catch::Contains("completeness_tolerance must be finite and > 0, got 0"));
  CHECK_THROWS_WITH(
      rar::deeplift_shap(cnn, x,
                         rar::DeepLiftShapOptions()
                             .baselines(x)
                             .target(torch::tensor(0))
                             .completeness_tolerance(NAN)),
      Catch::Contains(
          "rar::deeplift_shap: completeness_tolerance must be finite and > 0, got nan"));
  // A model that returns NaN fails the check instead of passing it.
  auto nan_model = [](const torch::Tensor& t) {
    return rar::nn::functional::relu(t.flatten(1).narrow(1, 0, 3)) * std::nan("");
  };
  CHECK_THROWS_WITH(rar::deeplift(nan_model, x, rar::DeepLiftOptions().target(torch::tensor(1))),
                    Catch::Contains("do not sum"));
}

TEST_CASE("Each scoped method refuses only the torch::nn nonlinearities it must switch",
          "[deeplift][guided][surrogate][errors]") {
  torch::manual_seed(16);
  // A custom module with a torch::nn::GELU and a rar::nn::ReLU.
  struct MixedImpl : tnn::Module {
    tnn::Linear fc1{nullptr}, fc2{nullptr};
    tnn::GELU gelu{nullptr};
    rar::nn::ReLU relu{nullptr};
    MixedImpl()
        : fc1(register_module("fc1", tnn::Linear(4, 6))),
          fc2(register_module("fc2", tnn::Linear(6, 3))),
          gelu(register_module("gelu", tnn::GELU())),
          relu(register_module("relu", rar::nn::ReLU())) {}
    torch::Tensor forward(const torch::Tensor& t) { return fc2(relu(gelu(fc1(t)))); }
  };
  auto net = std::make_shared<MixedImpl>();
  net->to(torch::kDouble);
  const auto x = torch::randn({3, 4}, torch::kDouble);
  const auto y = torch::tensor({0, 1, 2}, torch::kLong);
  // DeepLIFT must switch the GELU: refused, naming it.
  CHECK_THROWS_WITH(
      rar::deeplift(net, x, rar::DeepLiftOptions().target(y)),
      Catch::Contains("module 'gelu' is a torch::nn::GELU") && Catch::Contains("GELU or SiLU"));
  // The surrogate smooths the ReLU and leaves the smooth GELU: it equals a hand-made softplus copy.
  const auto smooth = rar::smooth_surrogate(net, 10.0);
  const auto expected = net->fc2(torch::softplus(torch::gelu(net->fc1(x)), 10.0, 20.0));
  CHECK(max_rel_diff(smooth(x), expected) < 1e-12);
  // Guided backprop changes ReLUs only: the GELU keeps its derivative.
  CHECK_NOTHROW(rar::guided_backprop(net, x, rar::GradientOptions().target(y)));
  // A kinked torch::nn activation is still refused by the surrogate and guided backprop.
  struct KinkedImpl : tnn::Module {
    tnn::Linear fc{nullptr};
    tnn::ReLU relu{nullptr};
    KinkedImpl()
        : fc(register_module("fc", tnn::Linear(4, 3))),
          relu(register_module("relu", tnn::ReLU())) {}
    torch::Tensor forward(const torch::Tensor& t) { return relu(fc(t)); }
  };
  auto kinked = std::make_shared<KinkedImpl>();
  kinked->to(torch::kDouble);
  CHECK_THROWS_WITH(rar::smooth_surrogate(kinked, 10.0),
                    Catch::Contains("module 'relu' is a torch::nn::ReLU"));
  CHECK_THROWS_WITH(rar::guided_backprop(kinked, x, rar::GradientOptions().target(y)),
                    Catch::Contains("module 'relu' is a torch::nn::ReLU"));
  // A model of smooth torch::nn activations only is told it is its own surrogate.
  auto smooth_only = [&](const torch::Tensor& t) { return net->fc2(torch::gelu(net->fc1(t))); };
  CHECK_THROWS_WITH(rar::smooth_surrogate(smooth_only, 10.0)(x),
                    Catch::Contains("it is its own, so pass the model itself"));
}

TEST_CASE(
    "DeepLIFT through rar::nn's LayerNorm, softmax attention and GELU sums to F(x) - F(x') "
    "exactly on a vision transformer",
    "[deeplift][completeness][modern]") {
  torch::manual_seed(17);
  ViT net(true);
  net->to(torch::kDouble);
  {
    torch::NoGradGuard no_grad;  // LayerNorm affine parts that are not the identity
    for (auto* ln : {&net->norm1, &net->norm2}) {
      (*ln)->weight.uniform_(0.5, 1.5);
      (*ln)->bias.uniform_(-0.3, 0.3);
    }
  }
  net->eval();
  const auto x = torch::rand({4, 1, 8, 8}, torch::kDouble);
  const auto y = torch::tensor({0, 1, 2, 1}, torch::kLong);
  for (const bool zero : {true, false}) {
    INFO("zero reference: " << zero);
    const auto base = zero ? torch::zeros_like(x) : 0.3 * torch::rand({4, 1, 8, 8}, torch::kDouble);
    const auto r =
        rar::deeplift_with_delta(net, x, rar::DeepLiftOptions().target(y).baseline(base));
    const auto fx = target_score(net, x, y), fr = target_score(net, base, y);
    CHECK((r.delta.abs() / (1 + fx.abs() + fr.abs())).max().item<double>() < 1e-10);
    // The rules did change the map: it is not the gradient times the difference.
    const auto grad = rar::saliency(net, x, rar::GradientOptions().target(y).abs(false));
    CHECK(max_rel_diff(r.attributions, grad * (x - base)) > 1e-3);
  }
  // Outside DeepLIFT the rar::nn layers compute what torch computes.
  const auto t = torch::randn({3, 5, 8}, torch::kDouble);
  tnn::LayerNorm torch_ln(tnn::LayerNormOptions({8}));
  torch_ln->to(torch::kDouble);
  {
    torch::NoGradGuard no_grad;
    torch_ln->weight.copy_(net->norm1->weight);
    torch_ln->bias.copy_(net->norm1->bias);
  }
  CHECK(torch::equal(net->norm1(t), torch_ln(t)));
  CHECK(torch::equal(rar::nn::functional::softmax(t, 1), torch::softmax(t, 1)));
  {
    const auto flat = t.flatten(1);
    const auto std =
        flat.std(1, /*unbiased=*/false).clamp_min(1.0 / std::sqrt(40.0)).view({-1, 1, 1});
    CHECK(torch::equal(rar::nn::functional::per_image_standardization(t),
                       (t - flat.mean(1).view({-1, 1, 1})) / std));
  }
  CHECK(torch::equal(rar::nn::functional::matmul(t, t.transpose(1, 2)),
                     torch::matmul(t, t.transpose(1, 2))));
  // DeepLIFT-SHAP on it is exact too.
  const auto s =
      rar::deeplift_shap_with_delta(net, x,
                                    rar::DeepLiftShapOptions()
                                        .baselines(0.3 * torch::rand({3, 1, 8, 8}, torch::kDouble))
                                        .target(y));
  CHECK(s.delta.abs().max().item<double>() < 1e-10);
}

TEST_CASE(
    "The product, softmax and layer-norm rules: exact summation-to-delta on their own, and "
    "the gradient in the limit x' -> x",
    "[deeplift][completeness][modern]") {
  torch::manual_seed(18);
  namespace F = rar::nn::functional;
  const auto x = torch::randn({5, 6}, torch::kDouble);
  const auto w1 = torch::randn({6, 6}, torch::kDouble), w2 = torch::randn({6, 6}, torch::kDouble);
  const auto v = torch::randn({6}, torch::kDouble);
  struct Case {
    const char* name;
    std::function<torch::Tensor(const torch::Tensor&)> f;
  };
  const std::vector<Case> cases = {
      {"mul", [&](const torch::Tensor& t) { return F::mul(F::tanh(t.mm(w1)), t.mm(w2)).mv(v); }},
      {"mul-broadcast",
       [&](const torch::Tensor& t) {
         return F::mul(t.mm(w1), F::sigmoid(t.mv(v)).unsqueeze(1)).mv(v);
       }},
      {"matmul",
       [&](const torch::Tensor& t) {
         const auto a = t.mm(w1).view({-1, 3, 2}), b = F::silu(t.mm(w2)).view({-1, 2, 3});
         return F::matmul(a, b).flatten(1).sum(1);
       }},
      {"softmax", [&](const torch::Tensor& t) { return F::softmax(3.0 * t.mm(w1), 1).mv(v); }},
      {"layer_norm", [&](const torch::Tensor& t) { return F::layer_norm(t.mm(w1), {6}).mv(v); }},
      {"layer_norm-2d",
       [&](const torch::Tensor& t) {
         return F::layer_norm(t.mm(w1).view({-1, 2, 3}), {2, 3}).flatten(1).mv(v);
       }},
      {"per_image_standardization", [&](const torch::Tensor& t) {
         return F::per_image_standardization(t.mm(w1).view({-1, 2, 3})).flatten(1).mv(v);
       }}};
  for (const auto& c : cases) {
    INFO(c.name);
    auto model = [&](const torch::Tensor& t) { return F::relu(c.f(t)) + 0.1 * c.f(t); };
    const auto base = torch::randn({5, 6}, torch::kDouble);
    const auto r = rar::deeplift_with_delta(model, x, rar::DeepLiftOptions().baseline(base));
    CHECK(r.delta.abs().max().item<double>() < 1e-10);
    // The zero reference too (a constant row: standardization's floor, layer norm's eps).
    CHECK(rar::deeplift_with_delta(model, x).delta.abs().max().item<double>() < 1e-10);
    // A shared one-row reference gives the map of that row repeated.
    const auto one = base.slice(0, 0, 1);
    CHECK(max_rel_diff(rar::deeplift(model, x, rar::DeepLiftOptions().baseline(one)),
                       rar::deeplift(model, x, rar::DeepLiftOptions().baseline(one.expand_as(x)))) <
          1e-10);
    // x' -> x: the multipliers tend to the gradient (c.f alone, smooth, so no kink in between).
    auto smooth = [&](const torch::Tensor& t) { return c.f(t); };
    const auto dir = torch::randn({5, 6}, torch::kDouble);
    const auto near = x - 1e-6 * dir;
    const auto dl = rar::deeplift(smooth, x, rar::DeepLiftOptions().baseline(near));
    const auto xg = x.clone().requires_grad_(true);
    const auto g = torch::autograd::grad({smooth(xg).sum()}, {xg})[0];
    CHECK(max_rel_diff(dl / (x - near), g) < 1e-4);
  }
}
