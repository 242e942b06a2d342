// DeepLIFT, guided backprop and deconvolution on a model that is not a Sequential: the residual
// network of tests/data/make_residual_reference.py (a residual add, a concatenation, a custom
// forward), against Captum 0.7 on its Python twin.

#include <rar/rar.hpp>

#include <catch2/catch.hpp>
#include "support/skip.hpp"

#include <thread>

#include "support/models.hpp"
#include "support/residual.hpp"

using rar::test::max_rel_diff;
using rar::test::target_score;
using rar::test::residual_model;
using rar::test::residual_reference;
namespace tnn = torch::nn;

TEST_CASE("DeepLIFT on a residual network matches Captum and sums to F(x) - F(x') to 1e-10",
          "[deeplift][any-model]") {
  auto net = residual_model();
  const auto& ref = residual_reference();
  const auto x = ref.tensor("residual.input");
  const auto y = ref.labels("residual.target");
  struct Case {
    const char* name;
    torch::Tensor baseline;
  };
  for (const Case& c : {Case{"zero", torch::Tensor()}, Case{"base", ref.tensor("residual.baseline")},
                        Case{"shared", ref.tensor("residual.shared_baseline")}}) {
    INFO("baseline " << c.name);
    auto opts = rar::DeepLiftOptions().target(y);
    if (c.baseline.defined()) opts.baseline(c.baseline);
    const auto a = rar::deeplift(net, x, opts);
    CHECK(a.sizes() == x.sizes());
    CHECK(max_rel_diff(a, ref.tensor(std::string("residual.deeplift.") + c.name)) < 1e-9);
    const auto b = c.baseline.defined() ? c.baseline.expand_as(x) : torch::zeros_like(x);
    const auto delta = a.flatten(1).sum(1) - (target_score(net, x, y) - target_score(net, b.contiguous(), y));
    CHECK(delta.abs().max().item<double>() < 1e-10);
  }
  // A shared reference given per sample (expanded) gives the same attributions.
  const auto shared = ref.tensor("residual.shared_baseline");
  CHECK(max_rel_diff(rar::deeplift(net, x, rar::DeepLiftOptions().target(y).baseline(shared)),
                     rar::deeplift(net, x, rar::DeepLiftOptions().target(y).baseline(
                                               shared.expand_as(x).contiguous()))) < 1e-12);
  // The model is left as it was.
  CHECK_FALSE(rar::nn::in_scope());
  CHECK(max_rel_diff(net->forward(x), ref.tensor("residual.output")) < 1e-13);
}

TEST_CASE("DeepLIFT on a residual network in float32 is close to Captum's float64 values",
          "[deeplift][any-model]") {
  auto net = residual_model(torch::kFloat);
  const auto& ref = residual_reference();
  const auto x = ref.tensor("residual.input").to(torch::kFloat);
  const auto a = rar::deeplift(net, x, rar::DeepLiftOptions().target(ref.labels("residual.target")));
  CHECK(a.dtype() == torch::kFloat);
  CHECK(max_rel_diff(a, ref.tensor("residual.deeplift.zero")) < 1e-5);
}

TEST_CASE("DeepLIFT through rar::nn activations agrees with the Sequential walker",
          "[deeplift][any-model]") {
  // The same MLP as a Sequential of torch::nn layers (walker) and as a lambda (scope path).
  torch::manual_seed(7);
  tnn::Sequential seq(tnn::Linear(6, 10), tnn::ReLU(), tnn::Linear(10, 8), tnn::Sigmoid(),
                      tnn::Linear(8, 6), tnn::ELU(), tnn::Linear(6, 4));
  seq->to(torch::kDouble);
  auto l = [&](size_t i) { return seq->ptr(i)->as<tnn::Linear>(); };
  auto lambda = [&](const torch::Tensor& t) {
    namespace F = rar::nn::functional;
    return l(6)->forward(F::elu(l(4)->forward(F::sigmoid(l(2)->forward(F::relu(l(0)->forward(t)))))));
  };
  const auto x = torch::randn({5, 6}, torch::kDouble);
  const auto base = 0.3 * torch::randn({5, 6}, torch::kDouble);
  const auto y = torch::tensor({0, 3, 1, 2, 0}, torch::kLong);
  const auto opts = rar::DeepLiftOptions().target(y).baseline(base);
  CHECK(max_rel_diff(rar::deeplift(lambda, x, opts), rar::deeplift(seq, x, opts)) < 1e-12);
  // A Sequential holding a custom block runs through the scope, its torch::nn activations
  // swapped for rar::nn twins.
  struct SkipImpl : tnn::Module {
    tnn::Linear fc{nullptr};
    rar::nn::Tanh act{nullptr};
    SkipImpl() : fc(register_module("fc", tnn::Linear(6, 6))), act(register_module("act", rar::nn::Tanh())) {}
    torch::Tensor forward(const torch::Tensor& t) { return t + act(fc(t)); }
  };
  tnn::Sequential mixed(tnn::Linear(6, 6), tnn::ReLU(), std::make_shared<SkipImpl>(), tnn::Linear(6, 3));
  mixed->to(torch::kDouble);
  const auto ym = torch::tensor({0, 2, 1, 2, 0}, torch::kLong);
  const auto a = rar::deeplift(mixed, x, rar::DeepLiftOptions().target(ym).baseline(base));
  const auto delta = a.sum(1) - (target_score(mixed, x, ym) - target_score(mixed, base, ym));
  CHECK(delta.abs().max().item<double>() < 1e-10);
  CHECK(mixed->ptr(1)->as<tnn::ReLU>() != nullptr);  // the Sequential itself is unchanged
}

TEST_CASE("guided backprop and deconvolution on a residual network match Captum",
          "[guided][any-model]") {
  auto net = residual_model();
  const auto& ref = residual_reference();
  const auto x = ref.tensor("residual.input");
  const auto opts = rar::GradientOptions().target(ref.labels("residual.target"));
  const auto guided = rar::guided_backprop(net, x, opts);
  const auto deconv = rar::deconvolution(net, x, opts);
  CHECK(max_rel_diff(guided, ref.tensor("residual.guided_backprop")) < 1e-12);
  CHECK(max_rel_diff(deconv, ref.tensor("residual.deconvolution")) < 1e-12);
  // Outside the scope the same model gives its plain gradient again.
  CHECK(max_rel_diff(rar::saliency(net, x, opts), ref.tensor("residual.saliency")) < 1e-12);
  CHECK(max_rel_diff(guided, ref.tensor("residual.saliency")) > 1e-3);
  CHECK(max_rel_diff(rar::guided_backprop(net, x, rar::GradientOptions(opts).abs(true)),
                     ref.tensor("residual.guided_backprop").abs()) < 1e-12);
}

TEST_CASE("guided backprop on a torch::nn Sequential modifies its ReLUs without changing it",
          "[guided][any-model]") {
  torch::manual_seed(8);
  tnn::Sequential seq(tnn::Linear(5, 8), tnn::ReLU(), tnn::Linear(8, 3));
  seq->to(torch::kDouble);
  const auto x = torch::randn({4, 5}, torch::kDouble);
  const auto y = torch::tensor({0, 1, 2, 1}, torch::kLong);
  // By hand: relu(W2ᵀ e_y ⊙ 1[z > 0]) backpropagated through W1.
  auto fc1 = seq->ptr(0)->as<tnn::Linear>();
  auto fc2 = seq->ptr(2)->as<tnn::Linear>();
  const auto z = fc1->forward(x);
  const auto up = fc2->weight.index_select(0, y);  // [N, 8]
  const auto expected = torch::relu(up * (z > 0).to(torch::kDouble)).mm(fc1->weight);
  const auto expected_deconv = torch::relu(up).mm(fc1->weight);
  const auto opts = rar::GradientOptions().target(y);
  CHECK(max_rel_diff(rar::guided_backprop(seq, x, opts), expected) < 1e-12);
  CHECK(max_rel_diff(rar::deconvolution(seq, x, opts), expected_deconv) < 1e-12);
  CHECK(max_rel_diff(rar::saliency(seq, x, opts), (up * (z > 0).to(torch::kDouble)).mm(fc1->weight)) < 1e-12);
}

TEST_CASE("DeepLIFT and guided backprop refuse models whose nonlinearities they cannot see",
          "[deeplift][guided][errors]") {
  const auto x = torch::randn({3, 4}, torch::kDouble);
  struct HiddenImpl : tnn::Module {
    tnn::Linear fc{nullptr};
    tnn::ReLU relu{nullptr};
    HiddenImpl() : fc(register_module("fc", tnn::Linear(4, 3))), relu(register_module("relu", tnn::ReLU())) {}
    torch::Tensor forward(const torch::Tensor& t) { return relu(fc(t)); }
  };
  auto hidden = std::make_shared<HiddenImpl>();
  hidden->to(torch::kDouble);
  CHECK_THROWS_WITH(rar::deeplift(hidden, x, rar::DeepLiftOptions().target(torch::tensor(0))),
                    Catch::Contains("rar::deeplift: the model's module 'relu' is a torch::nn::ReLU"));
  CHECK_THROWS_WITH(rar::guided_backprop(hidden, x, rar::GradientOptions().target(torch::tensor(0))),
                    Catch::Contains("rar::guided_backprop: the model's module 'relu' is a torch::nn::ReLU"));
  auto functional_relu = [&](const torch::Tensor& t) { return torch::relu(hidden->fc(t)); };
  CHECK_THROWS_WITH(rar::deeplift(functional_relu, x, rar::DeepLiftOptions().target(torch::tensor(0))),
                    Catch::Contains("the model called no rar::nn activation"));
  CHECK_THROWS_WITH(rar::deconvolution(functional_relu, x, rar::GradientOptions().target(torch::tensor(0))),
                    Catch::Contains("the model called no rar::nn::ReLU"));
  // Activation calls that depend on the data cannot be paired with the reference's.
  auto data_dependent = [&](const torch::Tensor& t) {
    torch::Tensor h = rar::nn::functional::relu(hidden->fc(t));
    if (t.abs().sum().item<double>() > 0) h = rar::nn::functional::tanh(h);
    return h;
  };
  CHECK_THROWS_WITH(rar::deeplift(data_dependent, x, rar::DeepLiftOptions().target(torch::tensor(0))),
                    Catch::Contains("more rar::nn calls on the input"));
  // Batch norm in training mode is refused, naming the module.
  struct NormedImpl : tnn::Module {
    tnn::BatchNorm1d bn{nullptr};
    NormedImpl() : bn(register_module("bn", tnn::BatchNorm1d(4))) {}
    torch::Tensor forward(const torch::Tensor& t) { return rar::nn::functional::relu(bn(t)); }
  };
  auto normed = std::make_shared<NormedImpl>();
  normed->to(torch::kDouble);
  CHECK_THROWS_WITH(rar::deeplift(normed, x), Catch::Contains("module 'bn' is batch norm in training mode"));
  CHECK_FALSE(rar::nn::in_scope());
}

TEST_CASE("two threads explaining one residual model at once get the serial results",
          "[deeplift][guided][threads]") {
  auto net = residual_model();
  const auto& ref = residual_reference();
  const auto x = ref.tensor("residual.input");
  const auto y = ref.labels("residual.target");
  const auto serial_dl = rar::deeplift(net, x, rar::DeepLiftOptions().target(y));
  const auto serial_gb = rar::guided_backprop(net, x, rar::GradientOptions().target(y));
  std::atomic<int> mismatches{0};
  auto work = [&](int which) {
    for (int i = 0; i < 30; ++i) {
      const auto a = which == 0 ? rar::deeplift(net, x, rar::DeepLiftOptions().target(y))
                                : rar::guided_backprop(net, x, rar::GradientOptions().target(y));
      if (!torch::equal(a, which == 0 ? serial_dl : serial_gb)) ++mismatches;
    }
  };
  std::thread a(work, 0), b(work, 1);
  a.join();
  b.join();
  CHECK(mismatches.load() == 0);
}

TEST_CASE("DeepLIFT, guided backprop and the surrogate of a residual network on CUDA match the CPU",
          "[cuda][any-model]") {
  RAR_REQUIRE_CUDA();
  auto net = residual_model();
  const auto& ref = residual_reference();
  const auto x = ref.tensor("residual.input");
  const auto y = ref.labels("residual.target");
  const auto base = ref.tensor("residual.baseline");
  net->to(torch::kCUDA);
  const auto dl = rar::deeplift(net, x.cuda(), rar::DeepLiftOptions().target(y.cuda()).baseline(base.cuda()));
  const auto gb = rar::guided_backprop(net, x.cuda(), rar::GradientOptions().target(y.cuda()));
  const auto smooth = rar::smooth_surrogate(net, 10.0)(x.cuda());
  CHECK(dl.is_cuda());
  CHECK(gb.is_cuda());
  CHECK(max_rel_diff(dl, ref.tensor("residual.deeplift.base")) < 1e-9);
  CHECK(max_rel_diff(gb, ref.tensor("residual.guided_backprop")) < 1e-10);
  CHECK(max_rel_diff(smooth, ref.tensor("residual.smooth.10.output")) < 1e-10);
}
