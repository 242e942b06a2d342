// Layer Integrated Gradients and layer conductance: Captum 0.7 references
// (tests/data/layer_ig_reference.txt, made by tests/data/make_layer_ig_reference.py),
// completeness in h-space, the identity head, an affine head and finite differences.

#include <rar/rar.hpp>

#include <catch2/catch.hpp>

#include "support/models.hpp"
#include "support/reference.hpp"

using rar::test::max_rel_diff;
namespace nn = torch::nn;

namespace {

const rar::test::Reference& layer_captum() {
  static const rar::test::Reference ref(rar::test::data_path("layer_ig_reference.txt"));
  return ref;
}

// The head of the "residual" network: stem conv + ReLU, then relu(z + conv2(tanh(conv1(z)))).
struct ResHeadImpl : nn::Module {
  nn::Conv2d stem{nullptr}, conv1{nullptr}, conv2{nullptr};
  ResHeadImpl() {
    auto conv = [](int64_t in, int64_t out) {
      return nn::Conv2d(nn::Conv2dOptions(in, out, 3).padding(1));
    };
    stem = register_module("stem", conv(2, 4));
    conv1 = register_module("conv1", conv(4, 4));
    conv2 = register_module("conv2", conv(4, 4));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    const torch::Tensor z = torch::relu(stem(x));
    return torch::relu(z + conv2(torch::tanh(conv1(z))));
  }
};
TORCH_MODULE(ResHead);

// A network of the reference file as head and tail, with the reference weights.
struct LayerCase {
  std::function<torch::Tensor(const torch::Tensor&)> head, tail;
  std::shared_ptr<nn::Module> head_module, tail_module;
  torch::Tensor input, baseline, target;
};

LayerCase layer_case(const std::string& name, torch::Dtype dtype = torch::kDouble) {
  LayerCase c;
  nn::Sequential tail;
  if (name == "mlp") {
    nn::Sequential head(nn::Linear(6, 10), nn::Tanh());
    tail = nn::Sequential(nn::Linear(10, 8), nn::ReLU(), nn::Linear(8, 4));
    c.head_module = head.ptr();
    c.head = [head](const torch::Tensor& x) mutable { return head->forward(x); };
  } else if (name == "cnn") {
    nn::Sequential head(nn::Conv2d(1, 3, 3), nn::ReLU(), nn::Conv2d(3, 4, 3));
    tail = nn::Sequential(nn::ReLU(), nn::MaxPool2d(2), nn::Flatten(), nn::Linear(16, 3));
    c.head_module = head.ptr();
    c.head = [head](const torch::Tensor& x) mutable { return head->forward(x); };
  } else {
    ResHead head;
    tail = nn::Sequential(nn::AvgPool2d(2), nn::Flatten(), nn::Linear(36, 3));
    c.head_module = head.ptr();
    c.head = [head](const torch::Tensor& x) mutable { return head->forward(x); };
  }
  c.tail_module = tail.ptr();
  c.tail = [tail](const torch::Tensor& h) mutable { return tail->forward(h); };
  for (auto* m : {c.head_module.get(), c.tail_module.get()}) {
    m->to(dtype);
    m->eval();
  }
  layer_captum().load_into(*c.head_module, name + ".head");
  layer_captum().load_into(*c.tail_module, name + ".tail");
  c.input = layer_captum().tensor(name + ".input").to(dtype);
  c.baseline = layer_captum().tensor(name + ".baseline").to(dtype);
  c.target = layer_captum().labels(name + ".target");
  return c;
}

const char* kLayerModels[] = {"mlp", "cnn", "residual"};

struct LayerMethodName {
  rar::Quadrature method;
  const char* captum;
};
const LayerMethodName kLayerMethods[] = {{rar::Quadrature::riemann_left, "riemann_left"},
                               {rar::Quadrature::riemann_right, "riemann_right"},
                               {rar::Quadrature::riemann_middle, "riemann_middle"},
                               {rar::Quadrature::riemann_trapezoid, "riemann_trapezoid"},
                               {rar::Quadrature::gauss_legendre, "gausslegendre"}};

// Central differences of a scalar function of the parameters of `modules` and of `x`, against
// the autograd gradients `grads` (parameters in order, then x).
template <class F>
void check_against_central_differences(const std::vector<torch::Tensor>& params,
                                        const std::vector<torch::Tensor>& grads,
                                        const torch::Tensor& x, F&& loss) {
  const double h = 1e-6;
  torch::NoGradGuard no_grad;
  for (size_t p = 0; p < params.size(); ++p) {
    auto flat = params[p].view({-1});
    const torch::Tensor g = grads[p].defined() ? grads[p].view({-1}) : torch::zeros_like(flat);
    for (int64_t i = 0; i < flat.numel(); i += std::max<int64_t>(1, flat.numel() / 4)) {
      const double saved = flat[i].item<double>();
      flat[i] = saved + h;
      const double up = loss(x).template item<double>();
      flat[i] = saved - h;
      const double down = loss(x).template item<double>();
      flat[i] = saved;
      INFO("parameter " << p << " entry " << i);
      CHECK(g[i].item<double>() == Approx((up - down) / (2 * h)).epsilon(1e-6).margin(1e-8));
    }
  }
  const torch::Tensor gx = grads.back().view({-1});
  for (int64_t i = 0; i < x.numel(); ++i) {
    auto xp = x.clone(), xm = x.clone();
    xp.view({-1})[i] += h;
    xm.view({-1})[i] -= h;
    const double fd =
        (loss(xp).template item<double>() - loss(xm).template item<double>()) / (2 * h);
    INFO("input entry " << i);
    CHECK(gx[i].item<double>() == Approx(fd).epsilon(1e-6).margin(1e-8));
  }
}

}  // namespace

TEST_CASE("layer_integrated_gradients matches Captum 0.7's LayerIntegratedGradients for every "
          "rule, step count and baseline",
          "[layer-ig][captum]") {
  double worst = 0.0;
  for (const char* name : kLayerModels) {
    auto c = layer_case(name);
    for (const auto& mn : kLayerMethods) {
      for (int64_t steps : {7, 32}) {
        for (bool zero : {true, false}) {
          const std::string key = std::string(name) + ".lig." + mn.captum + "." +
                                  std::to_string(steps) + (zero ? ".zero" : ".base");
          INFO(key);
          auto opts = rar::IGOptions().target(c.target).steps(steps).method(mn.method);
          if (!zero) opts.baseline(c.baseline);
          const auto r = rar::layer_integrated_gradients_with_delta(c.head, c.tail, c.input, opts);
          const auto plain = rar::layer_integrated_gradients(c.head, c.tail, c.input, opts);
          auto expected = layer_captum().tensor(key);
          auto expected_delta = layer_captum().tensor(key + ".delta");
          if (mn.method == rar::Quadrature::riemann_trapezoid) {
            // Captum's trapezoid weights sum to (m-1)/m; ours sum to 1 (see quadrature.hpp).
            const double scale = static_cast<double>(steps - 1) / static_cast<double>(steps);
            expected_delta = expected_delta + expected.flatten(1).sum(1) * (1.0 / scale - 1.0);
            expected = expected / scale;
          }
          REQUIRE(r.attributions.sizes() == expected.sizes());
          CHECK(r.attributions.sizes() == layer_captum().tensor(std::string(name) + ".layer").sizes());
          CHECK(torch::equal(plain, r.attributions));
          const double gap = std::max(max_rel_diff(r.attributions, expected),
                                      max_rel_diff(r.delta, expected_delta));
          worst = std::max(worst, gap);
          CHECK(gap < 1e-9);
        }
      }
    }
  }
  CHECK(worst < 1e-12);  // measured: 1.5e-16
}

TEST_CASE("layer_conductance matches Captum 0.7's LayerConductance for every rule and baseline",
          "[layer-ig][conductance][captum]") {
  double worst = 0.0;
  for (const char* name : kLayerModels) {
    auto c = layer_case(name);
    for (const auto& mn : kLayerMethods) {
      for (int64_t steps : {7, 32}) {
        for (bool zero : {true, false}) {
          const std::string key = std::string(name) + ".conductance." + mn.captum + "." +
                                  std::to_string(steps) + (zero ? ".zero" : ".base");
          INFO(key);
          auto opts = rar::IGOptions().target(c.target).steps(steps).method(mn.method);
          if (!zero) opts.baseline(c.baseline);
          const auto a = rar::layer_conductance(c.head, c.tail, c.input, opts);
          const double gap = max_rel_diff(a, layer_captum().tensor(key));
          worst = std::max(worst, gap);
          CHECK(gap < 1e-9);
        }
      }
    }
  }
  CHECK(worst < 1e-12);  // measured: 4.7e-17
}

TEST_CASE("layer IG and conductance in float32 are close to Captum's float64 values",
          "[layer-ig][captum]") {
  for (const char* name : kLayerModels) {
    INFO(name);
    auto c = layer_case(name, torch::kFloat);
    auto opts = rar::IGOptions().target(c.target).baseline(c.baseline).steps(32);
    const auto lig = rar::layer_integrated_gradients(c.head, c.tail, c.input, opts);
    CHECK(lig.scalar_type() == torch::kFloat);
    CHECK(max_rel_diff(lig, layer_captum().tensor(std::string(name) + ".lig.gausslegendre.32.base")) <
          1e-4);
    const auto cond = rar::layer_conductance(c.head, c.tail, c.input, opts);
    CHECK(cond.scalar_type() == torch::kFloat);
    CHECK(max_rel_diff(cond,
                       layer_captum().tensor(std::string(name) + ".conductance.gausslegendre.32.base")) <
          1e-4);
  }
}

TEST_CASE("layer IG satisfies completeness in h-space as steps grow", "[layer-ig]") {
  // Smooth head and tail: the h-space integrand is analytic, so Gauss-Legendre converges fast
  // and the right Riemann rule at first order.
  torch::manual_seed(41);
  nn::Sequential head(nn::Linear(5, 6), nn::Tanh());
  head->to(torch::kDouble);
  auto head_fn = [&](const torch::Tensor& x) { return head->forward(x); };
  const auto x = torch::randn({3, 5}, torch::kDouble);
  const auto base = 0.5 * torch::randn({3, 5}, torch::kDouble);
  const auto target = torch::tensor({2, 0, 1});
  auto tail = rar::test::smooth_mlp(6, 7, 3);
  torch::Tensor gap;
  {
    torch::NoGradGuard no_grad;
    const auto out = tail->forward(head->forward(x)).gather(1, target.view({-1, 1})).squeeze(1);
    const auto out_base =
        tail->forward(head->forward(base)).gather(1, target.view({-1, 1})).squeeze(1);
    gap = out - out_base;  // F(x) - F(x'), computed without the library
  }
  const double scale = gap.abs().max().item<double>();
  REQUIRE(scale > 1e-2);
  auto error = [&](rar::Quadrature method, int64_t steps) {
    const auto a = rar::layer_integrated_gradients(
        head_fn, tail, x, rar::IGOptions().target(target).baseline(base).steps(steps).method(method));
    return (a.sum(1) - gap).abs().max().item<double>();
  };
  const double gl4 = error(rar::Quadrature::gauss_legendre, 4);
  const double gl16 = error(rar::Quadrature::gauss_legendre, 16);
  CHECK(gl16 < 1e-12 * std::max(1.0, scale));
  CHECK(gl16 < gl4);
  // Right Riemann: error ~ c/m, so doubling the steps about halves it.
  const double r50 = error(rar::Quadrature::riemann_right, 50);
  const double r100 = error(rar::Quadrature::riemann_right, 100);
  CHECK(r50 > 1e-6);
  CHECK(r100 / r50 == Approx(0.5).margin(0.05));
  // The delta reported agrees with the independent score difference.
  const auto r = rar::layer_integrated_gradients_with_delta(
      head_fn, tail, x, rar::IGOptions().target(target).baseline(base).steps(16));
  CHECK((r.delta - (r.attributions.sum(1) - gap)).abs().max().item<double>() < 1e-13);
}

TEMPLATE_TEST_CASE("layer IG with head = identity is exactly rar::integrated_gradients",
                   "[layer-ig]", float, double) {
  const auto dtype = rar::test::dtype_of<TestType>();
  auto net = rar::test::smooth_mlp(4, 6, 3, dtype);
  torch::manual_seed(42);
  const auto x = torch::randn({3, 4}, dtype);
  const auto base = 0.3 * torch::randn({3, 4}, dtype);
  const auto shared = 0.3 * torch::randn({1, 4}, dtype);
  const auto target = torch::tensor({1, 2, 0});
  auto identity = [](const torch::Tensor& t) { return t; };
  for (const auto& mn : kLayerMethods) {
    for (int64_t batch : {0, 5}) {
      for (int which = 0; which < 3; ++which) {
        INFO(mn.captum << " internal_batch_size " << batch << " baseline " << which);
        auto opts =
            rar::IGOptions().target(target).steps(9).method(mn.method).internal_batch_size(batch);
        if (which == 1) opts.baseline(base);
        if (which == 2) opts.baseline(shared);
        const auto layer = rar::layer_integrated_gradients(identity, net, x, opts);
        const auto input = rar::integrated_gradients(net, x, opts);
        CHECK(torch::equal(layer, input));
        const auto layer_d = rar::layer_integrated_gradients_with_delta(identity, net, x, opts);
        const auto input_d = rar::integrated_gradients_with_delta(net, x, opts);
        CHECK(torch::equal(layer_d.delta, input_d.delta));
      }
    }
  }
}

TEST_CASE("with an affine head, conductance on the trapezoid nodes is layer IG with the left rule",
          "[layer-ig][conductance]") {
  // An affine head maps the straight input path onto the straight h-space path, and the
  // trapezoid's m + 1 nodes 0, 1/m, .., 1 give conductance Σ_k g(k/m)·(h − h′)/m: left Riemann.
  torch::manual_seed(43);
  nn::Linear head(4, 5);
  head->to(torch::kDouble);
  auto tail = rar::test::smooth_mlp(5, 6, 3);
  const auto x = torch::randn({2, 4}, torch::kDouble);
  const auto base = 0.2 * torch::randn({2, 4}, torch::kDouble);
  const auto target = torch::tensor({0, 2});
  for (int64_t steps : {3, 20}) {
    auto opts = rar::IGOptions().target(target).baseline(base).steps(steps);
    const auto cond = rar::layer_conductance(
        head, tail, x, rar::IGOptions(opts).method(rar::Quadrature::riemann_trapezoid));
    const auto lig = rar::layer_integrated_gradients(
        head, tail, x, rar::IGOptions(opts).method(rar::Quadrature::riemann_left));
    CHECK(max_rel_diff(cond, lig) < 1e-13);
    CHECK(lig.abs().max().item<double>() > 1e-3);
  }
}

TEST_CASE("layer IG and conductance give the same values for any internal_batch_size",
          "[layer-ig]") {
  auto c = layer_case("residual");
  for (auto method : {rar::Quadrature::riemann_right, rar::Quadrature::gauss_legendre}) {
    auto opts = rar::IGOptions().target(c.target).baseline(c.baseline).steps(7).method(method);
    const auto lig = rar::layer_integrated_gradients(c.head, c.tail, c.input, opts);
    const auto cond = rar::layer_conductance(c.head, c.tail, c.input, opts);
    for (int64_t batch : {1, 4, 11}) {
      auto o = rar::IGOptions(opts).internal_batch_size(batch);
      CHECK(max_rel_diff(rar::layer_integrated_gradients(c.head, c.tail, c.input, o), lig) < 1e-13);
      CHECK(max_rel_diff(rar::layer_conductance(c.head, c.tail, c.input, o), cond) < 1e-13);
    }
  }
}

TEST_CASE("layer IG and conductance with create_graph match central differences w.r.t. the "
          "parameters of head and tail and the input",
          "[layer-ig][gradcheck]") {
  torch::manual_seed(44);
  nn::Sequential head(nn::Linear(4, 5), nn::Tanh());
  head->to(torch::kDouble);
  auto tail = rar::test::smooth_mlp(5, 4, 3, torch::kDouble, 7);
  const auto x = torch::randn({2, 4}, torch::kDouble);
  const auto base = 0.3 * torch::randn({2, 4}, torch::kDouble);
  const auto weights = torch::randn({2, 5}, torch::kDouble);
  const auto target = torch::tensor({2, 0});
  std::vector<torch::Tensor> params = head->parameters();
  for (const auto& p : tail->parameters()) params.push_back(p);
  for (bool conductance : {false, true}) {
    for (auto method : {rar::Quadrature::riemann_right, rar::Quadrature::gauss_legendre}) {
      INFO((conductance ? "conductance" : "layer IG") << " method " << static_cast<int>(method));
      // L(θ, x) = Σ r ⊙ A(x)²: depends on A through h, the baseline's h and the gradients.
      auto loss = [&](const torch::Tensor& input, bool graph = false) {
        auto o = rar::IGOptions().baseline(base).target(target).steps(5).method(method)
                     .create_graph(graph);
        const auto a = conductance ? rar::layer_conductance(head, tail, input, o)
                                   : rar::layer_integrated_gradients(head, tail, input, o);
        return (weights * a * a).sum();
      };
      const auto xg = x.clone().requires_grad_(true);
      const auto l = loss(xg, true);
      REQUIRE(l.requires_grad());
      std::vector<torch::Tensor> wrt = params;
      wrt.push_back(xg);
      // The tail's last bias does not reach the attributions (its gradient is unused).
      auto grads = torch::autograd::grad({l}, wrt, {}, false, false, /*allow_unused=*/true);
      CHECK(grads.back().defined());
      CHECK(grads.front().defined());  // the head's first weight
      check_against_central_differences(params, grads, x, [&](const torch::Tensor& in) {
        return loss(in);
      });
    }
  }
}

TEST_CASE("layer IG leaves the parameters' gradients untouched and returns no graph by default",
          "[layer-ig][side-effects]") {
  auto c = layer_case("cnn");
  const auto a = rar::layer_integrated_gradients(c.head, c.tail, c.input,
                                                 rar::IGOptions().target(c.target).steps(4));
  CHECK_FALSE(a.requires_grad());
  for (auto* m : {c.head_module.get(), c.tail_module.get()})
    for (const auto& p : m->parameters()) CHECK_FALSE(p.grad().defined());
  const auto cond =
      rar::layer_conductance(c.head, c.tail, c.input, rar::IGOptions().target(c.target).steps(4));
  CHECK_FALSE(cond.requires_grad());
  for (auto* m : {c.head_module.get(), c.tail_module.get()})
    for (const auto& p : m->parameters()) CHECK_FALSE(p.grad().defined());
}

TEST_CASE("layer IG and conductance reject bad input with messages naming the function",
          "[layer-ig][errors]") {
  auto c = layer_case("mlp");
  using Catch::Matchers::Contains;
  const auto opts = rar::IGOptions().target(c.target);
  CHECK_THROWS_WITH(
      rar::layer_integrated_gradients(c.head, c.tail, c.input, rar::IGOptions(opts).steps(0)),
      Contains("rar::layer_integrated_gradients: steps must be >= 1, got 0"));
  CHECK_THROWS_WITH(
      rar::layer_conductance(c.head, c.tail, c.input, rar::IGOptions(opts).steps(0)),
      Contains("rar::layer_conductance: steps must be >= 1, got 0"));
  CHECK_THROWS_WITH(
      rar::layer_integrated_gradients_with_delta(
          c.head, c.tail, c.input, rar::IGOptions(opts).baseline(torch::zeros({4, 5}, torch::kDouble))),
      Contains("rar::layer_integrated_gradients_with_delta: baseline of shape [4, 5] does not "
               "broadcast to the input's shape [4, 6]"));
  CHECK_THROWS_WITH(rar::layer_integrated_gradients(c.head, c.tail, c.input.to(torch::kLong), opts),
                    Contains("rar::layer_integrated_gradients: input must be float32 or float64"));
  auto drops_a_row = [](const torch::Tensor& t) { return t.slice(0, 1); };
  CHECK_THROWS_WITH(rar::layer_integrated_gradients(drops_a_row, c.tail, c.input, opts),
                    Contains("rar::layer_integrated_gradients: head(input) must be a batch [N, ...] "
                             "with N = 4 rows, got shape [3, 6]"));
  auto to_float = [](const torch::Tensor& t) { return t.to(torch::kFloat); };
  CHECK_THROWS_WITH(rar::layer_integrated_gradients(to_float, c.tail, c.input, opts),
                    Contains("head(input) must have the input's dtype Double"));
  CHECK_THROWS_WITH(rar::layer_conductance(drops_a_row, c.tail, c.input, opts),
                    Contains("rar::layer_conductance: head must map a batch of"));
}
