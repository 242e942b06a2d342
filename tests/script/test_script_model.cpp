// rar::ScriptModel: a TorchScript module exported from Python (tests/data/script_model.pt, made
// by tests/data/make_torchscript.py) against Python's own outputs and gradients
// (tests/data/script_reference.txt), and against a torch::nn::Sequential twin loaded with the
// same weights through every kind of rar function: attributions (with create_graph), attacks,
// regularizer terms and their parameter gradients, and a training step.

#include <rar/rar.hpp>
#include <rar/script_model.hpp>

#include <catch2/catch.hpp>

#include "support/models.hpp"
#include "support/reference.hpp"

#include <filesystem>
#include <random>
#include <string>
#include <vector>

using Catch::Contains;
using rar::test::max_rel_diff;
namespace nn = torch::nn;

namespace {

const rar::test::Reference& python() {
  static const rar::test::Reference ref(rar::test::data_path("script_reference.txt"));
  return ref;
}

const std::string kModelPath = rar::test::data_path("script_model.pt");

// A fresh copy of the exported module for each test (a ScriptModel's copies share state).
rar::ScriptModel load_script() {
  rar::ScriptModel net = rar::ScriptModel::load(kModelPath);
  net.eval();
  return net;
}

// The C++ twin of make_model() in make_torchscript.py, loaded with the same weights.
nn::Sequential script_twin() {
  nn::Sequential net(nn::Conv2d(1, 3, 3), nn::ReLU(), nn::MaxPool2d(2), nn::Flatten(),
                     nn::Linear(27, 8), nn::Tanh(), nn::Linear(8, 3));
  net->to(torch::kDouble);
  python().load_into(*net, "net");
  net->eval();
  return net;
}

torch::Tensor input() { return python().tensor("net.input"); }
torch::Tensor target() { return python().labels("net.target"); }

// The parameter gradients of both models, matched by name; returns the largest difference.
// A parameter the loss does not depend on may be left without a gradient (e.g. the last bias
// under a double backward), which counts as a zero gradient.
double max_grad_diff(const rar::ScriptModel& script, const nn::Sequential& twin) {
  const auto mine = script.named_parameters();
  const auto theirs = twin->named_parameters();
  REQUIRE(mine.size() == theirs.size());
  auto grad_of = [](const torch::Tensor& p) {
    return p.grad().defined() ? p.grad() : torch::zeros_like(p);
  };
  double worst = 0;
  bool any = false;
  for (const auto& p : theirs) {
    INFO(p.key());
    REQUIRE(mine.contains(p.key()));
    any = any || mine[p.key()].grad().defined();
    worst = std::max(worst, max_rel_diff(grad_of(mine[p.key()]), grad_of(p.value())));
  }
  REQUIRE(any);
  return worst;
}

double max_param_diff(const rar::ScriptModel& script, const nn::Sequential& twin) {
  const auto mine = script.named_parameters();
  double worst = 0;
  for (const auto& p : twin->named_parameters())
    worst = std::max(worst, max_rel_diff(mine[p.key()], p.value()));
  return worst;
}

// IG as the attribution attack's method: fewer steps for the attack gradient than for the map.
auto ig_method = [](auto& m, const torch::Tensor& x, const torch::Tensor& y, bool create_graph) {
  return rar::integrated_gradients(
      m, x, rar::IGOptions().target(y).steps(create_graph ? 6 : 12).create_graph(create_graph));
};

}  // namespace

TEST_CASE("ScriptModel reproduces Python's outputs, input gradients and parameter gradients",
          "[script][python]") {
  auto net = load_script();
  const auto x = input();
  const auto y = target();

  // The parameters are the exported weights, under their state_dict names.
  const auto named = net.named_parameters();
  CHECK(named.keys() ==
        std::vector<std::string>{"0.weight", "0.bias", "4.weight", "4.bias", "6.weight", "6.bias"});
  REQUIRE(net.parameters().size() == 6);
  for (const auto& p : named) CHECK(p.value().equal(python().tensor("net." + p.key())));

  CHECK(max_rel_diff(net.forward(x), python().tensor("net.output")) < 1e-12);
  CHECK(max_rel_diff(net(x), python().tensor("net.output")) < 1e-12);
  CHECK(max_rel_diff(rar::saliency(net, x, rar::GradientOptions().target(y)),
                     python().tensor("net.saliency")) < 1e-12);

  // Cross-entropy: the loss, its input gradient and (through backward) its parameter gradients.
  const torch::Tensor xs = x.clone().requires_grad_(true);
  const torch::Tensor loss = rar::cross_entropy()(net, xs, y);
  CHECK(std::abs(loss.item<double>() - python().tensor("net.ce_loss").item<double>()) < 1e-12);
  loss.backward();
  CHECK(max_rel_diff(xs.grad(), python().tensor("net.ce_input_grad")) < 1e-12);
  for (const auto& p : named) {
    INFO(p.key());
    REQUIRE(p.value().grad().defined());
    CHECK(max_rel_diff(p.value().grad(), python().tensor("net.ce_grad." + p.key())) < 1e-12);
  }
}

TEST_CASE("ScriptModel gives the same attributions as the Sequential with the same weights",
          "[script][attribution]") {
  auto script = load_script();
  auto twin = script_twin();
  const auto x = input();
  const auto y = target();
  CHECK(max_rel_diff(script.forward(x), twin->forward(x)) < 1e-12);

  for (auto method : {rar::Quadrature::gauss_legendre, rar::Quadrature::riemann_right}) {
    const auto opts = rar::IGOptions().target(y).steps(16).method(method).baseline(0.2 * x);
    CHECK(max_rel_diff(rar::integrated_gradients(script, x, opts),
                       rar::integrated_gradients(twin, x, opts)) < 1e-10);
    const auto a = rar::integrated_gradients_with_delta(script, x, opts);
    const auto b = rar::integrated_gradients_with_delta(twin, x, opts);
    CHECK(max_rel_diff(a.delta, b.delta) < 1e-10);
  }
  const auto gopts = rar::GradientOptions().target(y);
  CHECK(max_rel_diff(rar::saliency(script, x, gopts), rar::saliency(twin, x, gopts)) < 1e-10);
  CHECK(max_rel_diff(rar::gradient_x_input(script, x, gopts),
                     rar::gradient_x_input(twin, x, gopts)) < 1e-10);
  auto sal = [&](auto& m, const torch::Tensor& in) { return rar::saliency(m, in, gopts); };
  const auto sg = rar::SmoothGradOptions().samples(5).stddev(0.1).seed(3);
  CHECK(max_rel_diff(rar::smooth_grad(script, sal, x, sg), rar::smooth_grad(twin, sal, x, sg)) <
        1e-10);
}

TEST_CASE("IG with create_graph through a ScriptModel is differentiable like the Sequential's",
          "[script][attribution]") {
  auto script = load_script();
  auto twin = script_twin();
  const auto y = target();
  const auto opts = rar::IGOptions().target(y).steps(10).create_graph(true);
  // Double backward: d/dx and d/dθ of ||IG(x)||², which goes through the Tanh's second
  // derivative inside the TorchScript graph.
  const torch::Tensor xa = input().requires_grad_(true);
  const torch::Tensor xb = input().requires_grad_(true);
  const torch::Tensor a = rar::integrated_gradients(script, xa, opts);
  const torch::Tensor b = rar::integrated_gradients(twin, xb, opts);
  REQUIRE(a.requires_grad());
  CHECK(max_rel_diff(a, b) < 1e-10);
  a.pow(2).sum().backward();
  b.pow(2).sum().backward();
  CHECK(max_rel_diff(xa.grad(), xb.grad()) < 1e-10);
  CHECK(xa.grad().abs().max().item<double>() > 1e-3);
  CHECK(max_grad_diff(script, twin) < 1e-10);
}

TEST_CASE("pgd_attack and attribution_attack on a ScriptModel match the Sequential",
          "[script][attack]") {
  auto script = load_script();
  auto twin = script_twin();
  const auto x = input();
  const auto y = target();

  for (auto norm : {rar::Norm::linf, rar::Norm::l2}) {
    const auto opts = rar::PGDOptions()
                          .epsilon(norm == rar::Norm::linf ? 0.1 : 0.8)
                          .step_size(norm == rar::Norm::linf ? 0.02 : 0.2)
                          .steps(6)
                          .norm(norm)
                          .seed(5);
    const auto xs = rar::pgd_attack(script, x, y, opts);
    CHECK(max_rel_diff(xs, rar::pgd_attack(twin, x, y, opts)) < 1e-10);
    CHECK(max_rel_diff(xs, x) > 1e-3);  // it moved
  }

  // The ScriptModel as both the real model and the (smooth enough: Tanh) surrogate.
  const auto opts =
      rar::AttributionAttackOptions().k(12).epsilon(0.1).step_size(0.02).iterations(3);
  const rar::AttackResult a = rar::attribution_attack(script, script, ig_method, x, y, opts);
  const rar::AttackResult b = rar::attribution_attack(twin, twin, ig_method, x, y, opts);
  CHECK(max_rel_diff(a.adversarial, b.adversarial) < 1e-10);
  CHECK(max_rel_diff(a.original_map, b.original_map) < 1e-10);
  CHECK(max_rel_diff(a.adversarial_map, b.adversarial_map) < 1e-10);
  CHECK(max_rel_diff(a.topk_intersection, b.topk_intersection) < 1e-10);
  CHECK(max_rel_diff(a.kendall_tau, b.kendall_tau) < 1e-10);
  CHECK(a.prediction_kept.equal(b.prediction_kept));
  CHECK(a.improved.equal(b.improved));
  CHECK(a.improved.any().item<bool>());            // the attack did something
  CHECK_FALSE(a.prediction_kept[5].item<bool>());  // the sample whose label was flipped
}

TEST_CASE("RAR terms on a ScriptModel give the Sequential's loss and parameter gradients",
          "[script][regularizer]") {
  const auto x = input();
  const auto y = target();
  const auto ig = rar::IGNormOptions()
                      .epsilon(0.1)
                      .steps(10)
                      .inner_stride(5)
                      .attack_steps(3)
                      .attack_step_size(0.03)
                      .seed(9);
  const auto sum = rar::IGSumNormOptions()
                       .epsilon(0.1)
                       .steps(10)
                       .inner_stride(5)
                       .attack_steps(3)
                       .attack_step_size(0.03)
                       .beta(0.5)
                       .seed(9);
  const auto pgd = rar::PGDOptions().epsilon(0.1).step_size(0.03).steps(3).seed(9);

  // A term object carries its random stream (each call draws new starts): one per model.
  auto check_term = [&](const char* name, auto make_term) {
    INFO(name);
    auto script = load_script();
    auto twin = script_twin();
    const torch::Tensor la = make_term()(script, x, y);
    const torch::Tensor lb = make_term()(twin, x, y);
    REQUIRE(la.dim() == 0);
    CHECK(std::abs(la.item<double>() - lb.item<double>()) <
          1e-10 * std::max(1.0, std::abs(lb.item<double>())));
    la.backward();
    lb.backward();
    CHECK(max_grad_diff(script, twin) < 1e-10);
  };
  check_term("cross_entropy + ig_norm", [&] { return rar::cross_entropy() + rar::ig_norm(ig); });
  check_term("ig_sum_norm", [&] { return rar::ig_sum_norm(sum); });
  check_term("adversarial", [&] { return rar::adversarial(pgd); });
  check_term("input_gradient_norm", [&] { return rar::input_gradient_norm(); });
}

TEST_CASE(
    "one optimizer step on a ScriptModel with cross_entropy + ig_norm trains it like the "
    "Sequential, and the result saves as TorchScript",
    "[script][regularizer][train]") {
  auto script = load_script();
  auto twin = script_twin();
  const auto x = input();
  const auto y = target();
  const auto before = script.forward(x).detach();
  auto objective = [] {  // one per model: a term carries its random stream
    return rar::cross_entropy() + rar::ig_norm(rar::IGNormOptions()
                                                   .epsilon(0.1)
                                                   .steps(10)
                                                   .attack_steps(3)
                                                   .attack_step_size(0.03)
                                                   .lambda(0.5)
                                                   .seed(4));
  };
  script.train();
  twin->train();
  torch::optim::SGD opt_a(script.parameters(), torch::optim::SGDOptions(0.1));
  torch::optim::SGD opt_b(twin->parameters(), torch::optim::SGDOptions(0.1));
  opt_a.zero_grad();
  opt_b.zero_grad();
  objective()(script, x, y).backward();
  objective()(twin, x, y).backward();
  opt_a.step();
  opt_b.step();
  script.eval();

  // The parameters moved, by the same step as the Sequential's.
  for (const auto& p : script.named_parameters()) {
    INFO(p.key());
    CHECK_FALSE(p.value().equal(python().tensor("net." + p.key())));
  }
  CHECK(max_param_diff(script, twin) < 1e-10);
  CHECK(max_rel_diff(script.forward(x), before) > 1e-4);

  // Saved and reloaded (what Python's torch.jit.load reads), the hardened weights come back.
  const std::string path =
      (std::filesystem::temp_directory_path() /
       ("rar_test_script_model_" + std::to_string(std::random_device()()) + ".pt"))
          .string();
  script.save(path);
  const auto reloaded = rar::ScriptModel::load(path);
  std::filesystem::remove(path);
  CHECK(max_rel_diff(reloaded.forward(x), script.forward(x)) == 0);
  const auto gopts = rar::GradientOptions().target(y);  // a const ScriptModel is a model too
  CHECK(max_rel_diff(rar::saliency(reloaded, x, gopts), rar::saliency(script, x, gopts)) == 0);
}

TEST_CASE("ScriptModel passes train/eval, dtype and shared state through to the module",
          "[script]") {
  auto net = rar::ScriptModel::load(kModelPath);
  net.train();
  CHECK(net.is_training());
  for (const auto& m : net.module().modules()) CHECK(m.is_training());
  net.eval();
  CHECK_FALSE(net.is_training());
  for (const auto& m : net.module().modules()) CHECK_FALSE(m.is_training());
  net.train(true);
  CHECK(net.is_training());
  net.train(false);
  CHECK_FALSE(net.is_training());

  // Copies are handles on one module, as module holders are.
  rar::ScriptModel copy = net;
  copy.train();
  CHECK(net.is_training());
  CHECK(copy.parameters()[0].is_same(net.parameters()[0]));
  net.eval();

  // to(dtype): a float32 model gives float32 attributions close to the float64 ones.
  const auto x = input();
  const auto y = target();
  const auto opts = rar::IGOptions().target(y).steps(8);
  const auto expected = rar::integrated_gradients(net, x, opts);
  auto f32 = rar::ScriptModel::load(kModelPath).to(torch::kFloat);
  f32.eval();
  for (const auto& p : f32.parameters()) CHECK(p.scalar_type() == torch::kFloat);
  const auto got = rar::integrated_gradients(f32, x.to(torch::kFloat), opts);
  CHECK(got.scalar_type() == torch::kFloat);
  CHECK(max_rel_diff(got, expected) < 1e-5);
  // The exported weights were drawn in float32, so the round trip back to float64 is exact.
  f32.to(torch::kCPU, torch::kDouble);
  CHECK(max_rel_diff(rar::integrated_gradients(f32, x, opts), expected) < 1e-6);

  // A module built in C++ works as well as a loaded one.
  torch::jit::Module m("Doubler");
  m.define(R"(
    def forward(self, x):
        return 2.0 * x.flatten(1)
  )");
  const auto lin = rar::saliency(rar::ScriptModel(m), x, rar::GradientOptions().target(y));
  CHECK(max_rel_diff(lin.flatten(1).sum(1), torch::full({x.size(0)}, 2.0, torch::kDouble)) == 0);
}

TEST_CASE("ScriptModel rejects missing files, non-TorchScript files and non-tensor outputs",
          "[script][errors]") {
  const std::string missing = rar::test::data_path("no_such_model.pt");
  CHECK_THROWS_WITH(
      rar::ScriptModel::load(missing),
      Contains("rar::ScriptModel::load: cannot load a TorchScript module from '" + missing + "'"));
  const std::string text = rar::test::data_path("script_reference.txt");
  CHECK_THROWS_WITH(rar::ScriptModel::load(text), Contains("'" + text + "'"));

  const auto x = input();
  torch::jit::Module pair("Pair");
  pair.define(R"(
    def forward(self, x):
        return (x.flatten(1), x.sum())
  )");
  rar::ScriptModel net(pair);
  CHECK_THROWS_WITH(net.forward(x),
                    Contains("rar::ScriptModel::forward: the TorchScript module's forward must "
                             "return a Tensor (logits [N, C]), got Tuple[Tensor, Tensor]"));
  CHECK_THROWS_WITH(rar::saliency(net, x, rar::GradientOptions().target(target())),
                    Contains("must return a Tensor"));

  torch::jit::Module no_forward("NoForward");
  no_forward.define(R"(
    def explain(self, x):
        return x
  )");
  CHECK_THROWS_WITH(rar::ScriptModel(no_forward), Contains("has no forward method"));
}
