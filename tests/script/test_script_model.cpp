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
#include "support/residual.hpp"

#include <filesystem>
#include <random>
#include <sstream>
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

// A fresh copy of an exported module (default: the CNN) in eval mode, for each test (a
// ScriptModel's copies share state).
rar::ScriptModel load_script(const std::string& path = kModelPath) {
  rar::ScriptModel net = rar::ScriptModel::load(path);
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
  auto sal = [](auto& m, const torch::Tensor& in, const torch::Tensor& t, bool) {
    return rar::saliency(m, in, rar::GradientOptions().target(t));
  };
  const auto sg = rar::SmoothGradOptions().samples(5).stddev(0.1).seed(3).target(y);
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

// ---------------------------------------------------------------------------------------------
// The scope-aware twin: TorchScript graphs routed through rar's operators, so that DeepLIFT,
// guided backprop, deconvolution, Guided Grad-CAM and the smooth surrogate work on exports.

namespace {

// A TorchScript module written in C++ (TorchScript source): [N, 1, 4, 4] -> [N, 3] with the
// hidden layer `body` (which sees h = flatten(x) @ w1ᵀ + b1) and a linear head.
torch::jit::Module script_module(const std::string& body, uint64_t seed = 5) {
  torch::manual_seed(seed);
  torch::jit::Module m("RarTestNet");
  m.register_attribute("training", c10::BoolType::get(), false);  // in eval mode
  m.register_parameter("w1", torch::randn({8, 16}, torch::kDouble), false);
  m.register_parameter("b1", 0.1 * torch::randn({8}, torch::kDouble), false);
  m.register_parameter("w2", torch::randn({3, 8}, torch::kDouble), false);
  m.define("def forward(self, x):\n"
           "    h = torch.matmul(x.flatten(1), self.w1.t()) + self.b1\n" +
           body + "    return torch.matmul(h, self.w2.t())\n");
  return m;
}

bool graph_calls(const torch::jit::Module& m, const std::string& kind) {
  std::ostringstream text;
  text << *m.get_method("forward").graph();
  return text.str().find(kind) != std::string::npos;
}

}  // namespace

TEST_CASE("DeepLIFT, guided backprop and deconvolution on TorchScript exports of a residual "
          "network match Captum on the eager network",
          "[script][deeplift][captum]") {
  const auto& ref = rar::test::residual_reference();
  const auto x = ref.tensor("residual.input");
  const auto y = ref.labels("residual.target");
  for (const char* file : {"script_residual.pt", "traced_residual.pt"}) {
    INFO(file);
    auto net = load_script(rar::test::data_path(file));
    REQUIRE(max_rel_diff(net(x), ref.tensor("residual.output")) < 1e-13);
    // Three rounds: TorchScript's executor profiles the first runs and optimizes the later
    // ones; the routed operators must survive both.
    for (int round = 0; round < 3; ++round) {
      INFO("round " << round);
      for (const char* name : {"zero", "base", "shared"}) {
        INFO("baseline " << name);
        auto opts = rar::DeepLiftOptions().target(y);
        if (std::string(name) == "base") opts.baseline(ref.tensor("residual.baseline"));
        if (std::string(name) == "shared") opts.baseline(ref.tensor("residual.shared_baseline"));
        const rar::Attribution a = rar::deeplift_with_delta(net, x, opts);
        CHECK(max_rel_diff(a.attributions, ref.tensor(std::string("residual.deeplift.") + name)) <
              1e-9);
        CHECK(a.delta.abs().max().item<double>() < 1e-10);
      }
      const auto gopts = rar::GradientOptions().target(y);
      CHECK(max_rel_diff(rar::guided_backprop(net, x, gopts), ref.tensor("residual.guided_backprop")) <
            1e-10);
      CHECK(max_rel_diff(rar::deconvolution(net, x, gopts), ref.tensor("residual.deconvolution")) <
            1e-10);
      CHECK(max_rel_diff(rar::saliency(net, x, gopts), ref.tensor("residual.saliency")) < 1e-10);
    }
    // The model's own graph is untouched (the twin is a clone with its own types), and it still
    // computes what it did.
    if (std::string(file) == "script_residual.pt") {
      CHECK(graph_calls(net.module(), "prim::CallMethod"));  // not inlined, not routed
      CHECK_FALSE(graph_calls(net.module(), "rar::"));
      CHECK(graph_calls(net.scope_aware().module(), "rar::relu"));
      CHECK_FALSE(graph_calls(net.scope_aware().module(), "aten::relu"));
    }
    CHECK_FALSE(rar::nn::in_scope());
    CHECK(max_rel_diff(net(x), ref.tensor("residual.output")) < 1e-13);
  }
}

TEST_CASE("smooth_surrogate of a TorchScript export is the network written with softplus, and "
          "follows the model's weights and mode",
          "[script][surrogate]") {
  const auto& ref = rar::test::residual_reference();
  const auto x = ref.tensor("residual.input");
  const auto y = ref.labels("residual.target");
  auto net = load_script(rar::test::data_path("script_residual.pt"));
  for (int beta : {1, 10}) {
    INFO("beta " << beta);
    auto smooth = rar::smooth_surrogate(net, static_cast<double>(beta));
    const std::string key = "residual.smooth." + std::to_string(beta);
    CHECK(max_rel_diff(smooth(x), ref.tensor(key + ".output")) < 1e-12);
    CHECK(max_rel_diff(rar::saliency(smooth, x, rar::GradientOptions().target(y)),
                       ref.tensor(key + ".saliency")) < 1e-11);
  }
  CHECK(max_rel_diff(net(x), ref.tensor("residual.output")) < 1e-13);
  // Same weights, not a copy: a training step on the model shows in the surrogate.
  auto smooth = rar::smooth_surrogate(net, 10.0);
  const auto before = smooth(x).detach();
  {
    torch::NoGradGuard no_grad;
    net.named_parameters()["fc4.bias"].add_(1.0);
  }
  CHECK(max_rel_diff(smooth(x), before + 1.0) < 1e-12);
  {
    torch::NoGradGuard no_grad;
    net.named_parameters()["fc4.bias"].sub_(1.0);
  }
  // Made in eval mode, the surrogate has eval mode built in and says so in training mode; one
  // made in training mode follows the model's mode.
  net.train();
  CHECK_THROWS_WITH(smooth(x), Contains("now in training mode"));
  auto live = rar::smooth_surrogate(net, 10.0);
  live(x);
  CHECK(net.scope_aware().is_training());
  net.eval();
  live(x);
  CHECK(max_rel_diff(live(x), smooth(x)) == 0);
}

TEST_CASE("On the CNN export, DeepLIFT, guided backprop, the surrogate and the attack with an "
          "automatic surrogate equal the Sequential twin's",
          "[script][deeplift][attack]") {
  auto script = load_script();
  auto twin = script_twin();
  const auto x = input();
  const auto y = target();
  const auto dl = rar::DeepLiftOptions().target(y).baseline(torch::full_like(x, 0.2));
  CHECK(max_rel_diff(rar::deeplift(script, x, dl), rar::deeplift(twin, x, dl)) < 1e-10);
  const auto g = rar::GradientOptions().target(y);
  CHECK(max_rel_diff(rar::guided_backprop(script, x, g), rar::guided_backprop(twin, x, g)) < 1e-10);
  CHECK(max_rel_diff(rar::deconvolution(script, x, g), rar::deconvolution(twin, x, g)) < 1e-10);
  auto smooth_script = rar::smooth_surrogate(script, 5.0);
  auto smooth_twin = rar::smooth_surrogate(twin, 5.0);
  CHECK(max_rel_diff(smooth_script(x), smooth_twin(x)) < 1e-12);
  CHECK(max_rel_diff(smooth_script(x), script(x)) > 1e-4);  // it is smoothed

  const auto opts =
      rar::AttributionAttackOptions().k(12).epsilon(0.1).step_size(0.02).iterations(3);
  const auto a = rar::attribution_attack(script, rar::auto_surrogate(), ig_method, x, y, opts);
  const auto b = rar::attribution_attack(twin, rar::auto_surrogate(), ig_method, x, y, opts);
  CHECK(std::isfinite(a.surrogate_beta));
  CHECK(a.surrogate_beta == b.surrogate_beta);
  CHECK(max_rel_diff(a.adversarial, b.adversarial) < 1e-10);
  CHECK(max_rel_diff(a.topk_intersection, b.topk_intersection) < 1e-10);
}

TEST_CASE("A TorchScript ReLU network is attacked through its automatic surrogate, and refused "
          "as its own surrogate, a copy or a wrapper",
          "[script][attack][surrogate]") {
  rar::ScriptModel net(script_module("    h = torch.relu(h)\n"));
  const auto x = torch::rand({6, 1, 4, 4}, torch::kDouble);
  torch::Tensor y;
  {
    torch::NoGradGuard no_grad;
    y = net(x).argmax(1);
  }
  const auto ig = rar::explain::integrated_gradients(rar::IGOptions().steps(8));
  const auto opts = rar::AttributionAttackOptions().k(4).epsilon(0.1).step_size(0.02).iterations(4);
  const auto refused = Contains("the surrogate computes what the model computes");
  CHECK_THROWS_WITH(rar::attribution_attack(net, net, ig, x, y, opts), refused);
  rar::ScriptModel copy(net.module().clone());
  CHECK_THROWS_WITH(rar::attribution_attack(net, copy, ig, x, y, opts), refused);
  auto wrapper = [&](const torch::Tensor& t) { return net(t); };
  CHECK_THROWS_WITH(rar::attribution_attack(net, wrapper, ig, x, y, opts), refused);

  const auto chosen = rar::attribution_attack(net, rar::auto_surrogate(), ig, x, y, opts);
  CHECK(std::isfinite(chosen.surrogate_beta));
  CHECK(chosen.improved.any().item<bool>());
  // The same network in C++ (rar::nn::functional::relu), attacked the same way.
  const auto p = net.named_parameters();
  auto cxx = [&](const torch::Tensor& t) {
    const auto h = rar::nn::functional::relu(torch::matmul(t.flatten(1), p["w1"].t()) + p["b1"]);
    return torch::matmul(h, p["w2"].t());
  };
  const auto same = rar::attribution_attack(cxx, rar::auto_surrogate(), ig, x, y, opts);
  CHECK(same.surrogate_beta == chosen.surrogate_beta);
  CHECK(max_rel_diff(chosen.adversarial, same.adversarial) < 1e-10);

  // A smooth TorchScript network is its own surrogate.
  rar::ScriptModel smooth(script_module("    h = torch.tanh(h)\n"));
  torch::Tensor ys;
  {
    torch::NoGradGuard no_grad;
    ys = smooth(x).argmax(1);
  }
  CHECK(std::isinf(rar::attribution_attack(smooth, rar::auto_surrogate(), ig, x, ys, opts)
                       .surrogate_beta));
}

TEST_CASE("TorchScript models: what rar cannot route raises, and DeepLIFT is never silently "
          "wrong",
          "[script][deeplift][errors]") {
  const auto x = torch::rand({4, 1, 4, 4}, torch::kDouble);
  const auto y = torch::tensor({0, 1, 2, 0}, torch::kLong);
  const auto dl = rar::DeepLiftOptions().target(y);
  // An in-place ReLU on the graph's input cannot be made out-of-place safely.
  rar::ScriptModel inplace(script_module("    torch.relu_(x)\n    h = h + x.flatten(1).sum(1, keepdim=True)\n"));
  CHECK_THROWS_WITH(rar::deeplift(inplace, x, dl), Contains("aten::relu_"));
  // A product of two input-dependent tensors has no rule through TorchScript: the
  // summation-to-delta check catches it.
  rar::ScriptModel product(script_module("    h = torch.relu(h) * h\n"));
  CHECK_THROWS_WITH(rar::deeplift(product, x, dl), Contains("F(x) - F(x')"));
  CHECK(rar::deeplift_with_delta(product, x, rar::DeepLiftOptions(dl).completeness(
                                                 rar::CompletenessCheck::off))
            .delta.abs()
            .max()
            .item<double>() > 1e-6);
  // The same network with only routed operators sums exactly.
  rar::ScriptModel routed(script_module("    h = torch.relu(h)\n    h = torch.sigmoid(h) + torch.gelu(h)\n"));
  CHECK(rar::deeplift_with_delta(routed, x, dl).delta.abs().max().item<double>() < 1e-10);
  // Kinked operators rar does not route cannot be smoothed.
  rar::ScriptModel clamped(script_module("    h = torch.clamp(h, 0.0, 6.0)\n"));
  CHECK_THROWS_WITH(rar::smooth_surrogate(clamped, 10.0), Contains("aten::clamp"));
  // Training mode.
  rar::ScriptModel training(script_module("    h = torch.relu(h)\n"));
  training.train();
  CHECK_THROWS_WITH(rar::deeplift(training, x, dl), Contains("training mode"));
}

TEST_CASE("Guided Grad-CAM on a TorchScript head and tail equals the same network in C++",
          "[script][cam]") {
  torch::manual_seed(17);
  const auto w = torch::randn({4, 1, 3, 3}, torch::kDouble);
  const auto v = torch::randn({3, 4 * 6 * 6}, torch::kDouble);
  torch::jit::Module head("RarTestHead"), tail("RarTestTail");
  for (auto* m : {&head, &tail}) m->register_attribute("training", c10::BoolType::get(), false);
  head.register_parameter("w", w, false);
  head.define("def forward(self, x):\n    return torch.relu(torch.conv2d(x, self.w))\n");
  tail.register_parameter("v", v, false);
  tail.define("def forward(self, h):\n    return torch.matmul(torch.relu(h - 0.1).flatten(1), self.v.t())\n");
  rar::ScriptModel script_head(head), script_tail(tail);
  auto cxx_head = [&](const torch::Tensor& x) {
    return rar::nn::functional::relu(torch::conv2d(x, w));
  };
  auto cxx_tail = [&](const torch::Tensor& h) {
    return torch::matmul(rar::nn::functional::relu(h - 0.1).flatten(1), v.t());
  };
  const auto x = torch::rand({3, 1, 8, 8}, torch::kDouble);
  const auto opts = rar::GuidedGradCamOptions().target(torch::tensor({0, 1, 2}));
  const auto mine = rar::guided_grad_cam(script_head, script_tail, x, opts);
  const auto theirs = rar::guided_grad_cam(cxx_head, cxx_tail, x, opts);
  CHECK(mine.abs().max().item<double>() > 1e-6);
  CHECK(max_rel_diff(mine, theirs) < 1e-12);
}

// A miniature of torchvision's ResNet: BatchNorm in eval, in-place ReLUs, an overlapping 3x3
// stride-2 max-pool, basic blocks with a downsampling shortcut.
TEST_CASE("A TorchScript ResNet: DeepLIFT and guided backprop match Captum, the attack beats "
          "random-sign",
          "[script][deeplift][attack][captum]") {
  static const rar::test::Reference ref(rar::test::data_path("script_resnet_reference.txt"));
  auto net = load_script(rar::test::data_path("script_resnet.pt"));
  const auto x = ref.tensor("resnet.input");
  const auto y = ref.labels("resnet.target");
  REQUIRE(max_rel_diff(net(x), ref.tensor("resnet.output")) < 1e-13);
  const auto g = rar::GradientOptions().target(y);
  CHECK(max_rel_diff(rar::guided_backprop(net, x, g), ref.tensor("resnet.guided_backprop")) < 1e-10);
  CHECK(max_rel_diff(rar::deconvolution(net, x, g), ref.tensor("resnet.deconvolution")) < 1e-10);
  for (int round = 0; round < 3; ++round) {
    INFO("round " << round);
    const rar::Attribution a = rar::deeplift_with_delta(net, x, rar::DeepLiftOptions().target(y));
    CHECK(a.delta.abs().max().item<double>() < 1e-10);
    // The 3x3 stride-2 max-pool's windows overlap. rar's cross-maximum rule sums the
    // contributions of two windows that share a maximum (scatter_add); Captum unpools with
    // max_unpool2d, which keeps one of them. Both sum to F(x) - F(x') here, but the shared
    // maxima's pixels differ (guide section 4); everywhere else the maps agree.
    CHECK(max_rel_diff(a.attributions, ref.tensor("resnet.deeplift")) < 5e-3);
  }

  // The attack through the automatically chosen softplus surrogate moves the top-k more than
  // random signs of the same size do.
  const auto ig = rar::explain::integrated_gradients(rar::IGOptions().steps(10));
  const auto opts =
      rar::AttributionAttackOptions().k(25).epsilon(0.1).step_size(0.02).iterations(15).seed(3);
  const auto attack = rar::attribution_attack(net, rar::auto_surrogate(), ig, x, y, opts);
  const auto random = rar::attribution_attack(
      net, net, ig, x, y, rar::AttributionAttackOptions(opts).kind(rar::AttackKind::random_sign));
  CHECK(std::isfinite(attack.surrogate_beta));
  const double in_attack = attack.topk_intersection.mean().item<double>();
  const double in_random = random.topk_intersection.mean().item<double>();
  INFO("IN attack " << in_attack << ", random-sign " << in_random);
  CHECK(in_attack < in_random - 0.05);
}
