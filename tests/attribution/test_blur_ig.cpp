// Blur IG: the Gaussian blur against scipy.ndimage.gaussian_filter, Blur IG against a
// transcription of PAIR-code/saliency's blur_ig.py (tests/data/make_ig_variants_reference.py),
// batching, the explainer, finite differences of the create_graph path, and bad input.

#include <catch2/catch.hpp>
#include <rar/attribution/blur_ig.hpp>
#include <rar/explain/blur_ig.hpp>
#include <string>
#include <vector>

#include "support/gradcheck.hpp"
#include "support/models.hpp"
#include "support/reference.hpp"

using Catch::Matchers::Contains;
using rar::test::max_rel_diff;

namespace {

const rar::test::Reference& blur_ig_reference() {
  static const rar::test::Reference ref(rar::test::data_path("ig_variants_reference.txt"));
  return ref;
}

/// The CNN of make_ig_variants_reference.py ([N, 2, 8, 8] -> [N, 3]) with its weights.
torch::nn::Sequential blur_ig_cnn(torch::Dtype dtype) {
  namespace nn = torch::nn;
  nn::Sequential net(nn::Conv2d(nn::Conv2dOptions(2, 3, 3).padding(1)), nn::Tanh(),
                     nn::Conv2d(nn::Conv2dOptions(3, 4, 3).stride(2)), nn::Tanh(), nn::Flatten(),
                     nn::Linear(36, 3));
  net->to(dtype);
  blur_ig_reference().load_into(*net, "cnn");
  return net;
}

const char* blur_ig_mode_name(rar::BlurBoundary b) {
  return b == rar::BlurBoundary::constant ? "constant" : "reflect";
}

}  // namespace

TEST_CASE("gaussian_blur matches scipy.ndimage.gaussian_filter for every sigma and boundary",
          "[blur_ig][blur]") {
  const auto& ref = blur_ig_reference();
  const auto images = ref.tensor("blur.images");
  const auto thin = ref.tensor("blur.thin");
  const auto sigmas = ref.tensor("blur.sigmas");
  for (const auto boundary : {rar::BlurBoundary::constant, rar::BlurBoundary::reflect}) {
    for (int64_t i = 0; i < sigmas.numel(); ++i) {
      const double sigma = sigmas[i].item<double>();
      const std::string tag = std::string(blur_ig_mode_name(boundary)) + "." + std::to_string(i);
      INFO("boundary " << blur_ig_mode_name(boundary) << ", sigma " << sigma);
      // Includes kernel radii (up to 160) far beyond the 7 x 9 image: repeated reflection.
      CHECK((rar::gaussian_blur(images, sigma, boundary) - ref.tensor("blur." + tag))
                .abs()
                .max()
                .item<double>() < 1e-12);
      CHECK((rar::gaussian_blur(thin, sigma, boundary) - ref.tensor("blur.thin." + tag))
                .abs()
                .max()
                .item<double>() < 1e-12);
      const auto f = rar::gaussian_blur(images.to(torch::kFloat), sigma, boundary);
      CHECK(f.scalar_type() == torch::kFloat);
      CHECK(max_rel_diff(f, ref.tensor("blur." + tag)) < 1e-5);
    }
  }
}

TEST_CASE("gaussian_blur with reflection keeps a constant image and the mean of any image",
          "[blur_ig][blur]") {
  // Reflection conserves mass along each axis: every column of B sums to 1.
  const auto x = torch::rand({2, 3, 5, 6}, torch::kDouble);
  for (const double sigma : {0.7, 2.5, 30.0}) {
    const auto b = rar::gaussian_blur(x, sigma, rar::BlurBoundary::reflect);
    CHECK((b.mean({2, 3}) - x.mean({2, 3})).abs().max().item<double>() < 1e-12);
    const auto c = rar::gaussian_blur(torch::full({1, 1, 4, 7}, 0.3, torch::kDouble), sigma,
                                      rar::BlurBoundary::reflect);
    CHECK((c - 0.3).abs().max().item<double>() < 1e-14);
  }
}

TEMPLATE_TEST_CASE("Blur IG matches PAIR-code/saliency's blur_ig.py on a CNN", "[blur_ig]", float,
                   double) {
  const auto& ref = blur_ig_reference();
  const torch::Dtype dtype = rar::test::dtype_of<TestType>();
  const double tol = std::is_same_v<TestType, float> ? 2e-4 : 1e-9;
  auto net = blur_ig_cnn(dtype);
  const auto x = ref.tensor("cnn.input").to(dtype);
  const auto y = ref.labels("cnn.target");
  for (const auto boundary : {rar::BlurBoundary::constant, rar::BlurBoundary::reflect}) {
    for (const bool sqrt : {false, true}) {
      const std::string name =
          std::string("blur_ig.") + blur_ig_mode_name(boundary) + "." + (sqrt ? "sqrt" : "linear");
      INFO(name);
      const auto opts = rar::BlurIGOptions()
                            .target(y)
                            .max_sigma(10)
                            .steps(12)
                            .grad_step(0.01)
                            .sqrt(sqrt)
                            .boundary(boundary);
      const auto attr = rar::blur_ig(net, x, opts);
      CHECK(attr.scalar_type() == dtype);
      CHECK(attr.sizes() == x.sizes());
      CHECK(max_rel_diff(attr, ref.tensor(name)) < tol);
      // Chunking the 24 path rows changes nothing beyond round-off.
      auto chunked = opts;
      CHECK(max_rel_diff(rar::blur_ig(net, x, chunked.internal_batch_size(5)), attr) <
            (std::is_same_v<TestType, float> ? 1e-5 : 1e-13));
    }
  }
}

TEST_CASE("Blur IG's attributions sum to F(x) - F(fully blurred x) as the steps grow",
          "[blur_ig]") {
  // The path σ -> blur(x, σ) jumps slightly where the kernel radius ⌊4σ + ½⌋ grows (scipy's
  // truncation, about e^-8 of the kernel), which no Riemann sum sees: the error falls with the
  // steps down to that floor, far below the gap itself.
  auto net = blur_ig_cnn(torch::kDouble);
  const auto& ref = blur_ig_reference();
  const auto x = ref.tensor("cnn.input");
  const auto y = ref.labels("cnn.target");
  const auto gap =
      rar::test::target_score(net, x, y) -
      rar::test::target_score(net, rar::gaussian_blur(x, 6.0, rar::BlurBoundary::reflect), y);
  std::vector<double> errors;
  for (const int64_t steps : {8, 256}) {
    const auto attr = rar::blur_ig(
        net, x,
        rar::BlurIGOptions().target(y).max_sigma(6).steps(steps).grad_step(1e-4).boundary(
            rar::BlurBoundary::reflect));
    errors.push_back((attr.flatten(1).sum(1) - gap).abs().max().item<double>());
  }
  INFO("|sum - gap| at 8 and 256 steps: " << errors[0] << ", " << errors[1]);
  CHECK(errors[1] < errors[0]);
  CHECK(errors[1] < 1e-3 * gap.abs().max().item<double>());
}

TEST_CASE("Blur IG as an explainer equals the function and keeps the model untouched",
          "[blur_ig][explainer]") {
  auto net = blur_ig_cnn(torch::kDouble);
  const auto& ref = blur_ig_reference();
  const auto x = ref.tensor("cnn.input");
  const auto y = ref.labels("cnn.target");
  const rar::test::ModuleState before(*net);
  auto explainer = rar::explain::blur_ig(rar::BlurIGOptions().max_sigma(4).steps(6));
  static_assert(rar::is_explainer_v<decltype(explainer), torch::nn::Sequential>);
  const auto a = explainer(net, x, y, false);
  CHECK(max_rel_diff(
            a, rar::blur_ig(net, x, rar::BlurIGOptions().target(y).max_sigma(4).steps(6))) < 1e-14);
  CHECK(!a.requires_grad());
  CHECK(rar::test::ModuleState(*net) == before);
}

TEST_CASE("Blur IG with create_graph has the gradients of central differences",
          "[blur_ig][create_graph]") {
  auto net = blur_ig_cnn(torch::kDouble);
  const auto& ref = blur_ig_reference();
  const auto x0 = ref.tensor("cnn.input");
  const auto y = ref.labels("cnn.target");
  const auto opts = rar::BlurIGOptions().target(y).max_sigma(5).steps(4).create_graph(true);
  const auto weight = torch::linspace(-1.0, 1.0, x0.numel(), torch::kDouble).view(x0.sizes());
  // In the parameters: L(θ) = Σ weight · BlurIG(x; θ).
  rar::test::check_parameter_gradients(
      *net, [&] { return (rar::blur_ig(net, x0, opts) * weight).sum(); });
  // In the input: a few entries of dL/dx against central differences.
  const auto x = x0.clone().requires_grad_(true);
  const auto loss = (rar::blur_ig(net, x, opts) * weight).sum();
  const auto g = torch::autograd::grad({loss}, {x})[0];
  torch::NoGradGuard no_grad;
  auto plain = opts;
  plain.create_graph(false);
  const double h = 1e-6;
  for (const int64_t i : {0, 17, 64, 200, 255}) {
    auto xp = x0.clone(), xm = x0.clone();
    xp.view({-1})[i] += h;
    xm.view({-1})[i] -= h;
    const double up = (rar::blur_ig(net, xp, plain) * weight).sum().item<double>();
    const double down = (rar::blur_ig(net, xm, plain) * weight).sum().item<double>();
    INFO("entry " << i);
    CHECK(g.view({-1})[i].item<double>() ==
          Approx((up - down) / (2 * h)).epsilon(1e-5).margin(1e-9));
  }
}

TEST_CASE("Blur IG and gaussian_blur reject bad input", "[blur_ig][errors]") {
  auto net = blur_ig_cnn(torch::kDouble);
  const auto x = torch::rand({2, 2, 8, 8}, torch::kDouble);
  const auto y = torch::tensor({0, 1});
  const auto opts = rar::BlurIGOptions().target(y);
  auto o = opts;
  CHECK_THROWS_WITH(rar::blur_ig(net, x, o.steps(0)),
                    Contains("rar::blur_ig") && Contains("steps must be >= 1, got 0"));
  o = opts;
  CHECK_THROWS_WITH(rar::blur_ig(net, x, o.max_sigma(0)),
                    Contains("rar::blur_ig") && Contains("max_sigma must be finite and > 0"));
  o = opts;
  CHECK_THROWS_WITH(rar::blur_ig(net, x, o.grad_step(-0.1)),
                    Contains("rar::blur_ig") && Contains("grad_step must be finite and > 0"));
  o = opts;
  CHECK_THROWS_WITH(rar::blur_ig(net, x, o.internal_batch_size(-1)),
                    Contains("rar::blur_ig") && Contains("internal_batch_size must be >= 0"));
  CHECK_THROWS_WITH(rar::blur_ig(net, torch::rand({2, 64}, torch::kDouble), opts),
                    Contains("rar::blur_ig") && Contains("at least 3 dimensions"));
  CHECK_THROWS_WITH(rar::blur_ig(net, x.to(torch::kInt), opts),
                    Contains("rar::blur_ig") && Contains("float32 or float64"));
  auto bad = x.clone();
  bad[0][0][0][0] = std::nan("");
  CHECK_THROWS_WITH(rar::blur_ig(net, bad, opts),
                    Contains("rar::blur_ig") && Contains("must be finite"));
  CHECK_THROWS_WITH(rar::blur_ig(net, x, rar::BlurIGOptions().target(torch::tensor({0, 1, 2}))),
                    Contains("rar::blur_ig") && Contains("target"));
  CHECK_THROWS_WITH(rar::gaussian_blur(x, -1.0),
                    Contains("rar::gaussian_blur") && Contains("sigma must be finite and >= 0"));
  CHECK_THROWS_WITH(rar::gaussian_blur(torch::rand({3, 4}), 1.0),
                    Contains("rar::gaussian_blur") && Contains("at least 3 dimensions"));
}
