// The successor terms ssr, art and attribution_alignment: closed forms, direct recomputations,
// finite differences in the parameters, defaults, seeds, composition, training and bad input.

#include <rar/rar.hpp>

#include <catch2/catch.hpp>
#include "support/skip.hpp"

#include <Eigen/Dense>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "support/models.hpp"
#include "support/gradcheck.hpp"

using rar::test::dtype_of;
using rar::test::max_rel_diff;

namespace {

using rar::test::check_parameter_gradients;

// A small seeded CNN [N, 2, 6, 6] -> [N, 3] with tanh.
inline torch::nn::Sequential smooth_cnn(torch::Dtype dtype = torch::kDouble) {
  torch::manual_seed(11);
  torch::nn::Sequential net(torch::nn::Conv2d(torch::nn::Conv2dOptions(2, 3, 3)),
                            torch::nn::Tanh(), torch::nn::Flatten(),
                            torch::nn::Linear(3 * 4 * 4, 3));
  net->to(dtype);
  return net;
}

// Largest eigenvalue of a symmetric matrix, with Eigen.
double eigen_lambda_max(const torch::Tensor& m) {
  const auto md = m.detach().to(torch::kDouble).contiguous();
  const int64_t d = md.size(0);
  Eigen::MatrixXd e(d, d);
  for (int64_t i = 0; i < d; ++i)
    for (int64_t j = 0; j < d; ++j) e(i, j) = md[i][j].item<double>();
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver(e, Eigen::EigenvaluesOnly);
  return solver.eigenvalues().maxCoeff();
}

// β(x) = λ_max(W A Wᵀ) for one sample, W [K, C] given, p the softmax of its logits: the K×K
// matrix of the paper, not the C×C one the library uses.
double direct_beta(const torch::Tensor& w, const torch::Tensor& logits) {
  const auto p = torch::softmax(logits.detach().to(torch::kDouble), 0);
  const auto a = torch::diag(p) - torch::outer(p, p);
  const auto wd = w.detach().to(torch::kDouble);
  return eigen_lambda_max(wd.matmul(a).matmul(wd.t()));
}

// One sample's input gradient of logit `c`, by itself (no batching), flattened.
template <class Model>
torch::Tensor logit_gradient(Model& model, const torch::Tensor& point, int64_t c) {
  const auto leaf = point.detach().unsqueeze(0).requires_grad_(true);
  const auto z = rar::call_model(model, leaf)[0][c];
  return torch::autograd::grad({z}, {leaf})[0].flatten();
}

// 1 − cos of two flat vectors, written out.
torch::Tensor cos_dist(const torch::Tensor& a, const torch::Tensor& b) {
  return 1 - a.dot(b) / (a.norm() * b.norm());
}

// The ART loss written out sample by sample: the model itself for every gradient.
template <class Model>
double direct_art(Model& model, const torch::Tensor& x, const torch::Tensor& x_adv,
                  const torch::Tensor& y, double lambda) {
  const int64_t n = x.size(0);
  double total = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t yi = y[i].item<int64_t>();
    const torch::Tensor pts[2] = {x[i], x_adv[i]};
    torch::Tensor pos[2], neg[2];
    for (int u = 0; u < 2; ++u) {
      torch::Tensor logits = rar::call_model(model, pts[u].unsqueeze(0))[0].detach().clone();
      logits[yi] = -std::numeric_limits<double>::infinity();
      const int64_t other = logits.argmax().item<int64_t>();
      pos[u] = logit_gradient(model, pts[u], yi);
      neg[u] = logit_gradient(model, pts[u], other);
    }
    double triplet = 0;
    for (int a = 0; a < 2; ++a) {
      const auto anchor = pts[a].flatten();
      const double d_ap = std::max(cos_dist(anchor, pos[0]).item<double>(),
                                   cos_dist(anchor, pos[1]).item<double>());
      const double d_an = std::min(cos_dist(anchor, neg[0]).item<double>(),
                                   cos_dist(anchor, neg[1]).item<double>());
      triplet += std::log1p(std::exp(d_ap - d_an)) / 2;
    }
    const torch::Tensor out = rar::call_model(model, x_adv[i].unsqueeze(0));
    const double ce = torch::nn::functional::cross_entropy(out, y[i].view({1})).item<double>();
    total += ce + lambda * triplet;
  }
  return total / static_cast<double>(n);
}

}  // namespace

// ----------------------------------------------------------------------------------------- SSR

TEMPLATE_TEST_CASE("SSR's beta on a linear softmax model is the largest eigenvalue of W A W^T (Eigen)",
                   "[ssr]", float, double) {
  const torch::Dtype dtype = dtype_of<TestType>();
  const double tol = std::is_same<TestType, float>::value ? 1e-4 : 1e-10;
  auto lin = rar::test::linear_model(5, 4, dtype);
  torch::manual_seed(41);
  const auto x = torch::rand({3, 5}, dtype);
  const auto beta = rar::ssr_beta(lin, x);
  REQUIRE(beta.sizes() == torch::IntArrayRef{3});
  CHECK(beta.scalar_type() == dtype);
  const auto logits = lin->forward(x);
  for (int64_t n = 0; n < 3; ++n) {
    // W [K, C] = the weight matrix transposed: ∂z_c/∂x = V_c for every x.
    const double expected = direct_beta(lin->weight.t(), logits[n]);
    CHECK(beta[n].item<double>() == Approx(expected).epsilon(tol));
    CHECK(expected > 0);
  }
}

TEMPLATE_TEST_CASE("SSR averages the gradient over channels, as the authors' channels-last mean",
                   "[ssr]", float, double) {
  const torch::Dtype dtype = dtype_of<TestType>();
  const double tol = std::is_same<TestType, float>::value ? 1e-4 : 1e-10;
  // A linear model on [N, 3, 2, 2] images: logits = flatten(x) Vᵀ + b.
  auto lin = rar::test::linear_model(12, 4, dtype, 5);
  auto model = [&](const torch::Tensor& in) { return lin->forward(in.flatten(1)); };
  torch::manual_seed(42);
  const auto x = torch::rand({2, 3, 2, 2}, dtype);
  const torch::Tensor logits = model(x);
  const auto v = lin->weight.detach().view({4, 3, 4});      // [C, channels, pixels]
  const auto w_mean = v.mean(1).t();                         // [pixels, C]
  const auto w_all = lin->weight.detach().t();               // [12, C]
  const torch::Tensor mean_beta = rar::ssr_beta(model, x);
  const torch::Tensor all_beta = rar::ssr_beta(model, x, rar::SSROptions().channel_mean(false));
  for (int64_t n = 0; n < 2; ++n) {
    CHECK(mean_beta[n].item<double>() == Approx(direct_beta(w_mean, logits[n])).epsilon(tol));
    CHECK(all_beta[n].item<double>() == Approx(direct_beta(w_all, logits[n])).epsilon(tol));
  }
  CHECK((all_beta - mean_beta).abs().min().item<double>() > 1e-3);  // the mean matters here
}

TEST_CASE("SSR's beta of a nonlinear model uses each sample's own gradients (CNN, Eigen)", "[ssr]") {
  auto net = smooth_cnn();
  torch::manual_seed(43);
  const auto x = torch::rand({3, 2, 6, 6}, torch::kDouble);
  const auto beta = rar::ssr_beta(net, x);
  const auto logits = net->forward(x);
  for (int64_t n = 0; n < 3; ++n) {
    std::vector<torch::Tensor> cols;
    for (int64_t c = 0; c < 3; ++c) {
      cols.push_back(logit_gradient(net, x[n], c).view({2, 36}).mean(0));
    }
    const double expected = direct_beta(torch::stack(cols, 1), logits[n]);
    CHECK(beta[n].item<double>() == Approx(expected).epsilon(1e-10));
  }
}

TEST_CASE("SSR is (1 - alpha) CE + alpha scale mean beta, with the authors' defaults", "[ssr]") {
  const rar::SSROptions defaults;
  CHECK(defaults.alpha() == 0.3);
  CHECK(defaults.scale() == 0.3);
  CHECK(defaults.channel_mean());
  CHECK(defaults.reduction() == rar::Reduction::mean);
  auto net = rar::test::smooth_mlp(4, 5, 3);
  torch::manual_seed(44);
  const auto x = torch::rand({4, 4}, torch::kDouble);
  const auto y = torch::tensor({0, 2, 1, 1});
  const auto beta = rar::ssr_beta(net, x);
  const double ce = rar::cross_entropy()(net, x, y).item<double>();
  CHECK(rar::ssr()(net, x, y).item<double>() ==
        Approx(0.7 * ce + 0.09 * beta.mean().item<double>()).epsilon(1e-13));
  const auto opts = rar::SSROptions().alpha(0.5).scale(2.0).reduction(rar::Reduction::sum);
  CHECK(rar::ssr(opts)(net, x, y).item<double>() ==
        Approx(0.5 * 4 * ce + 0.5 * 2.0 * beta.sum().item<double>()).epsilon(1e-13));
  // α = 0 is natural training.
  CHECK(rar::ssr(rar::SSROptions().alpha(0))(net, x, y).item<double>() == Approx(ce).epsilon(1e-14));
}

TEST_CASE("SSR matches central differences in the parameters (MLP and CNN)", "[ssr][gradcheck]") {
  SECTION("MLP") {
    auto net = rar::test::smooth_mlp(4, 5, 3);
    torch::manual_seed(45);
    const auto x = torch::rand({3, 4}, torch::kDouble);
    const auto y = torch::tensor({0, 2, 1});
    const auto term = rar::ssr(rar::SSROptions().alpha(0.6).scale(5.0));
    check_parameter_gradients(*net, [&] { return term(net, x, y); });
  }
  SECTION("CNN with the channel mean") {
    auto net = smooth_cnn();
    torch::manual_seed(46);
    const auto x = torch::rand({2, 2, 6, 6}, torch::kDouble);
    const auto y = torch::tensor({1, 2});
    const auto term = rar::ssr(rar::SSROptions().alpha(0.5).scale(10.0));
    check_parameter_gradients(*net, [&] { return term(net, x, y); });
  }
}

TEST_CASE("SSR's gradient stays finite when the softmax saturates", "[ssr]") {
  auto lin = rar::test::linear_model(4, 3, torch::kFloat);
  {
    torch::NoGradGuard no_grad;
    lin->weight.mul_(400);  // logit gaps of hundreds: p underflows to 0 in float32
  }
  torch::manual_seed(47);
  const auto x = torch::rand({4, 4}, torch::kFloat);
  const auto y = torch::tensor({0, 1, 2, 0});
  const auto loss = rar::ssr()(lin, x, y);
  loss.backward();
  CHECK(std::isfinite(loss.item<double>()));
  CHECK(torch::isfinite(lin->weight.grad()).all().item<bool>());
  CHECK(torch::isfinite(lin->bias.grad()).all().item<bool>());
}

TEST_CASE("training on SSR lowers the mean beta of a toy problem", "[ssr][train]") {
  auto net = rar::test::smooth_mlp(6, 16, 3, torch::kDouble, 7);
  torch::manual_seed(48);
  const auto x = torch::rand({32, 6}, torch::kDouble);
  const auto y = torch::randint(3, {32}, torch::kLong);
  torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(1e-2));
  const auto term = rar::ssr(rar::SSROptions().alpha(0.9).scale(10.0));
  const double before = rar::ssr_beta(net, x).mean().item<double>();
  for (int step = 0; step < 30; ++step) {
    opt.zero_grad();
    term(net, x, y).backward();
    opt.step();
  }
  const double after = rar::ssr_beta(net, x).mean().item<double>();
  INFO("mean beta " << before << " -> " << after);
  CHECK(after < 0.5 * before);
}

// ----------------------------------------------------------------------------------------- ART

TEST_CASE("ART's defaults are the authors' CIFAR setting", "[art]") {
  const rar::ARTOptions o;
  CHECK(o.epsilon() == 8.0 / 255.0);
  CHECK(o.attack_steps() == 3);
  CHECK(o.attack_step_size() == 5.0 / 255.0);
  CHECK(o.random_start());
  CHECK(o.norm() == rar::Norm::linf);
  CHECK(o.clip_min() == 0.0);
  CHECK(o.clip_max() == 1.0);
  CHECK(o.top_k() == 0);
  CHECK(o.lambda() == 0.5);
  CHECK(o.surrogate_beta() == 0.0);
  CHECK(o.reduction() == rar::Reduction::mean);
  // top_k = 0 keeps the authors' 1000 of 3072 elements: 255 of MNIST's 784.
  CHECK(rar::detail::art_top_k("f", 0, 3072) == 1000);
  CHECK(rar::detail::art_top_k("f", 0, 784) == 255);
  CHECK(rar::detail::art_top_k("f", 0, 2) == 1);
  CHECK(rar::detail::art_top_k("f", 7, 784) == 7);
}

TEMPLATE_TEST_CASE("ART at x~ = x is CE(x) + lambda softplus(d(x, grad z_y) - d(x, grad z_y')), written out",
                   "[art]", float, double) {
  const torch::Dtype dtype = dtype_of<TestType>();
  const double tol = std::is_same<TestType, float>::value ? 1e-5 : 1e-12;
  auto net = rar::test::smooth_mlp(5, 6, 4, dtype);
  torch::manual_seed(51);
  const auto x = torch::rand({3, 5}, dtype);
  const auto y = torch::tensor({0, 3, 1});
  const auto opts = rar::ARTOptions().attack_steps(0).random_start(false).lambda(0.7);
  const double value = rar::art(opts)(net, x, y).item<double>();
  CHECK(value == Approx(direct_art(net, x, x, y, 0.7)).epsilon(tol));
  // Both anchors are x: the mined distances are the plain ones, and nothing is trivially 0.
  double triplet = 0;
  for (int64_t i = 0; i < 3; ++i) {
    auto logits = net->forward(x[i].unsqueeze(0))[0].detach().clone();
    const int64_t yi = y[i].item<int64_t>();
    logits[yi] = -1e30;
    const int64_t other = logits.argmax().item<int64_t>();
    const double dp = cos_dist(x[i], logit_gradient(net, x[i], yi)).item<double>();
    const double dn = cos_dist(x[i], logit_gradient(net, x[i], other)).item<double>();
    CHECK(std::abs(dp - dn) > 1e-3);
    triplet += std::log1p(std::exp(dp - dn)) / 3;
  }
  const double ce = rar::cross_entropy()(net, x, y).item<double>();
  CHECK(value == Approx(ce + 0.7 * triplet).epsilon(tol));
}

TEST_CASE("ART mines the two anchors x and x~ as the authors: max positive and min negative distance",
          "[art]") {
  auto net = rar::test::smooth_mlp(5, 6, 4);
  torch::manual_seed(52);
  const auto x = 0.2 + 0.6 * torch::rand({4, 5}, torch::kDouble);
  const auto y = torch::tensor({0, 3, 1, 2});
  // No ascent: x~ is the random start of stream (seed, 0), which rar::ascent_start reproduces.
  const auto opts = rar::ARTOptions().epsilon(0.15).attack_steps(0).seed(3).lambda(1.3);
  const auto start = rar::ascent_start(x, opts.ball(), opts.ascent(), 0);
  CHECK((start - x).abs().max().item<double>() > 0.1);
  const double value = rar::art(opts)(net, x, y).item<double>();
  CHECK(value == Approx(direct_art(net, x, start, y, 1.3)).epsilon(1e-12));
  // With sum reduction the same per-sample values are summed.
  const double summed = rar::art(rar::ARTOptions(opts).reduction(rar::Reduction::sum))(net, x, y)
                            .item<double>();
  CHECK(summed == Approx(4 * value).epsilon(1e-12));
}

TEST_CASE("ART's attack climbs its top-k triplet loss and stays in the ball and range", "[art]") {
  auto net = rar::test::smooth_mlp(8, 10, 3);
  torch::manual_seed(53);
  const auto x = torch::rand({6, 8}, torch::kDouble);
  const auto y = torch::tensor({0, 1, 2, 0, 1, 2});
  std::vector<double> objective;
  torch::Tensor last;
  const auto opts = rar::ARTOptions().epsilon(0.1).attack_steps(8).attack_step_size(0.02)
                        .random_start(false).top_k(5)
                        .callback([&](int64_t, const torch::Tensor& it, const torch::Tensor& v) {
                          if (v.defined()) objective.push_back(v.mean().item<double>());
                          last = it;
                        });
  rar::art(opts)(net, x, y);
  REQUIRE(objective.size() == 8);
  INFO("triplet " << objective.front() << " -> " << objective.back());
  CHECK(objective.back() > objective.front() + 1e-3);
  CHECK((last - x).abs().max().item<double>() <= 0.1 + 1e-12);
  CHECK(last.min().item<double>() >= 0.0);
  CHECK(last.max().item<double>() <= 1.0);
  CHECK((last - x).abs().max().item<double>() > 0.05);
  // The objective at the start is the triplet over the 5 largest |grad z_y| elements of x.
  double expected = 0;
  for (int64_t i = 0; i < 6; ++i) {
    const int64_t yi = y[i].item<int64_t>();
    auto logits = net->forward(x[i].unsqueeze(0))[0].detach().clone();
    logits[yi] = -1e30;
    const auto gp = logit_gradient(net, x[i], yi);
    const auto gn = logit_gradient(net, x[i], logits.argmax().item<int64_t>());
    const auto top = std::get<1>(gp.abs().topk(5));
    const double dp = cos_dist(x[i].index_select(0, top), gp.index_select(0, top)).item<double>();
    const double dn = cos_dist(x[i].index_select(0, top), gn.index_select(0, top)).item<double>();
    expected += std::log1p(std::exp(dp - dn)) / 6;
  }
  CHECK(objective.front() == Approx(expected).epsilon(1e-12));
}

TEST_CASE("ART matches central differences in the parameters", "[art][gradcheck]") {
  torch::manual_seed(54);
  SECTION("MLP, attack with a random start over the top-k elements") {
    auto net = rar::test::smooth_mlp(6, 5, 3);
    const auto x = 0.2 + 0.6 * torch::rand({3, 6}, torch::kDouble);
    const auto y = torch::tensor({0, 2, 1});
    // A fresh term per evaluation draws the same start; the sign steps and the top-k set are
    // locally constant in the parameters.
    const auto opts = rar::ARTOptions().epsilon(0.1).attack_steps(2).attack_step_size(0.04)
                          .top_k(3).lambda(0.8);
    check_parameter_gradients(*net, [&] { return rar::art(opts)(net, x, y); });
  }
  SECTION("CNN") {
    auto net = smooth_cnn();
    const auto x = 0.2 + 0.6 * torch::rand({2, 2, 6, 6}, torch::kDouble);
    const auto y = torch::tensor({2, 0});
    const auto opts = rar::ARTOptions().epsilon(0.05).attack_steps(1).lambda(2.0);
    check_parameter_gradients(*net, [&] { return rar::art(opts)(net, x, y); });
  }
}

TEST_CASE("ART's surrogate_beta takes the triplet's gradients from rar::smooth_surrogate", "[art]") {
  torch::manual_seed(55);
  torch::nn::Sequential net(torch::nn::Linear(5, 8), rar::nn::ReLU(), torch::nn::Linear(8, 3));
  net->to(torch::kDouble);
  const auto x = torch::rand({3, 5}, torch::kDouble);
  const auto y = torch::tensor({0, 1, 2});
  const auto opts = rar::ARTOptions().attack_steps(0).random_start(false).surrogate_beta(5.0);
  const double value = rar::art(opts)(net, x, y).item<double>();
  // Written out: the triplet through the softplus_5 network, the cross-entropy through the ReLU one.
  auto smooth = rar::smooth_surrogate(net, 5.0);
  const double ce = rar::cross_entropy()(net, x, y).item<double>();
  const double smooth_ce = rar::cross_entropy()(smooth, x, y).item<double>();
  const double expected = direct_art(smooth, x, x, y, 0.5) - smooth_ce + ce;
  CHECK(value == Approx(expected).epsilon(1e-12));
  const double plain = rar::art(rar::ARTOptions(opts).surrogate_beta(0))(net, x, y).item<double>();
  CHECK(std::abs(plain - value) > 1e-4);
  // A model without rar::nn activations cannot be smoothed.
  auto lin = rar::test::linear_model(5, 3);
  auto lambda_model = [&](const torch::Tensor& in) { return lin->forward(in); };
  CHECK_THROWS_WITH(rar::art(opts)(lambda_model, x, y),
                    Catch::Contains("rar::smooth_surrogate: the model called no rar::nn activation"));
}

TEST_CASE("training on ART lowers its triplet term on a toy problem", "[art][train]") {
  auto net = rar::test::smooth_mlp(6, 16, 3, torch::kDouble, 8);
  torch::manual_seed(56);
  const auto x = torch::rand({32, 6}, torch::kDouble);
  const auto y = torch::randint(3, {32}, torch::kLong);
  const auto probe = rar::ARTOptions().attack_steps(0).random_start(false).lambda(1.0);
  auto triplet = [&] {  // the term at x~ = x, less its cross-entropy
    return rar::art(probe)(net, x, y).item<double>() -
           rar::cross_entropy()(net, x, y).item<double>();
  };
  const double before = triplet();
  torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(1e-2));
  auto term = rar::art(rar::ARTOptions().epsilon(0.05).attack_steps(1).attack_step_size(0.05)
                           .lambda(5.0));
  for (int step = 0; step < 25; ++step) {
    opt.zero_grad();
    term(net, x, y).backward();
    opt.step();
  }
  const double after = triplet();
  INFO("triplet " << before << " -> " << after);
  CHECK(after < before - 0.05);
}

// ---------------------------------------------------------------------- attribution alignment

TEMPLATE_TEST_CASE("attribution alignment is its base alone when x~ = x", "[alignment]", float, double) {
  const torch::Dtype dtype = dtype_of<TestType>();
  const double tol = std::is_same<TestType, float>::value ? 1e-5 : 1e-12;
  auto net = rar::test::smooth_mlp(5, 6, 3, dtype);
  torch::manual_seed(61);
  const auto x = torch::rand({4, 5}, dtype);
  const auto y = torch::tensor({0, 2, 1, 1});
  const double ce = rar::cross_entropy()(net, x, y).item<double>();
  for (auto base : {rar::AlignmentBase::natural, rar::AlignmentBase::madry}) {
    const auto opts = rar::AlignmentOptions().attack_steps(0).random_start(false).base(base)
                          .lambda(3.0);
    const torch::Tensor value = rar::attribution_alignment(opts)(net, x, y);
    CHECK(value.item<double>() == Approx(ce).epsilon(tol));
  }
}

TEST_CASE("attribution alignment with IG is base + lambda (1 - cos(IG(x), IG(x~))) at the PGD point",
          "[alignment]") {
  auto net = rar::test::smooth_mlp(5, 6, 3);
  torch::manual_seed(62);
  const auto x = 0.2 + 0.6 * torch::rand({4, 5}, torch::kDouble);
  const auto y = torch::tensor({0, 2, 1, 1});
  const auto opts = rar::AlignmentOptions().epsilon(0.2).attack_steps(5).attack_step_size(0.05)
                        .seed(4).lambda(2.5);
  // Call 0 of the term attacks exactly as rar::pgd_attack with the same options.
  const auto x_adv = rar::pgd_attack(net, x, y, opts.attack());
  const auto ig_opts = rar::IGOptions().steps(10).target(y);
  const auto a = rar::integrated_gradients(net, x, ig_opts);
  const auto b = rar::integrated_gradients(net, x_adv, ig_opts);
  const auto cos = (a * b).sum(1) / (a.norm(2, 1) * b.norm(2, 1));
  CHECK((1 - cos).min().item<double>() > 1e-4);
  const double penalty = (1 - cos).mean().item<double>();
  const double natural = rar::attribution_alignment(opts)(net, x, y).item<double>();
  CHECK(natural == Approx(rar::cross_entropy()(net, x, y).item<double>() + 2.5 * penalty)
                       .epsilon(1e-12));
  const double madry =
      rar::attribution_alignment(rar::AlignmentOptions(opts).base(rar::AlignmentBase::madry))(
          net, x, y).item<double>();
  CHECK(madry == Approx(rar::cross_entropy()(net, x_adv, y).item<double>() + 2.5 * penalty)
                     .epsilon(1e-12));
}

TEST_CASE("attribution alignment takes any explainer", "[alignment]") {
  auto net = rar::test::smooth_mlp(5, 6, 3);
  torch::manual_seed(63);
  const auto x = 0.2 + 0.6 * torch::rand({3, 5}, torch::kDouble);
  const auto y = torch::tensor({1, 0, 2});
  const auto opts = rar::AlignmentOptions().epsilon(0.2).attack_steps(3).attack_step_size(0.05)
                        .base(rar::AlignmentBase::madry);
  const auto x_adv = rar::pgd_attack(net, x, y, opts.attack());
  const auto sal = rar::explain::saliency();
  const auto a = sal(net, x, y, false), b = sal(net, x_adv, y, false);
  const double penalty = (1 - (a * b).sum(1) / (a.norm(2, 1) * b.norm(2, 1))).mean().item<double>();
  const double value = rar::attribution_alignment(sal, opts)(net, x, y).item<double>();
  CHECK(value == Approx(rar::cross_entropy()(net, x_adv, y).item<double>() + penalty).epsilon(1e-12));
  // A lambda explainer is an explainer too; a constant map is perfectly aligned.
  auto constant = [](auto&, const torch::Tensor& in, const torch::Tensor&, bool) {
    return torch::ones_like(in);
  };
  CHECK(rar::attribution_alignment(constant, opts)(net, x, y).item<double>() ==
        Approx(rar::cross_entropy()(net, x_adv, y).item<double>()).epsilon(1e-12));
}

TEST_CASE("attribution alignment matches central differences in the parameters",
          "[alignment][gradcheck]") {
  auto net = rar::test::smooth_mlp(4, 5, 3);
  torch::manual_seed(64);
  const auto x = 0.2 + 0.6 * torch::rand({3, 4}, torch::kDouble);
  const auto y = torch::tensor({0, 2, 1});
  for (auto base : {rar::AlignmentBase::natural, rar::AlignmentBase::madry}) {
    const auto opts = rar::AlignmentOptions().epsilon(0.1).attack_steps(3).attack_step_size(0.03)
                          .base(base).lambda(4.0).ig(rar::IGOptions().steps(4));
    check_parameter_gradients(*net, [&] { return rar::attribution_alignment(opts)(net, x, y); });
  }
}

TEST_CASE("training on attribution alignment lowers its penalty on a toy problem",
          "[alignment][train]") {
  auto net = rar::test::smooth_mlp(6, 16, 3, torch::kDouble, 9);
  torch::manual_seed(65);
  const auto x = 0.1 + 0.8 * torch::rand({32, 6}, torch::kDouble);
  const auto y = torch::randint(3, {32}, torch::kLong);
  const auto opts = rar::AlignmentOptions().epsilon(0.1).attack_steps(3).attack_step_size(0.04)
                        .random_start(false).ig(rar::IGOptions().steps(4)).lambda(1.0);
  auto penalty = [&] {  // λ = 1, natural base: the term less the cross-entropy
    return rar::attribution_alignment(opts)(net, x, y).item<double>() -
           rar::cross_entropy()(net, x, y).item<double>();
  };
  const double before = penalty();
  torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(1e-2));
  auto term = rar::attribution_alignment(rar::AlignmentOptions(opts).lambda(10.0));
  for (int step = 0; step < 20; ++step) {
    opt.zero_grad();
    term(net, x, y).backward();
    opt.step();
  }
  const double after = penalty();
  INFO("penalty " << before << " -> " << after);
  CHECK(after < 0.5 * before);
}

TEST_CASE("attribution alignment's defaults", "[alignment]") {
  const rar::AlignmentOptions o;
  CHECK(o.base() == rar::AlignmentBase::natural);
  CHECK(o.lambda() == 1.0);
  CHECK(o.ig().steps() == 10);
  CHECK(o.ig().method() == rar::Quadrature::gauss_legendre);
  CHECK(o.epsilon() == 0.3);
  CHECK(o.attack_steps() == 40);
  CHECK(o.attack_step_size() == 0.01);
  CHECK(o.random_start());
  CHECK(o.reduction() == rar::Reduction::mean);
}

// ------------------------------------------------------------------------------------ together

TEST_CASE("successor terms: seeds reproduce a run, successive calls draw new starts", "[art][alignment]") {
  auto net = rar::test::smooth_mlp(5, 6, 3);
  torch::manual_seed(71);
  const auto x = 0.2 + 0.6 * torch::rand({4, 5}, torch::kDouble);
  const auto y = torch::tensor({0, 1, 2, 1});
  auto check_streams = [&](auto make) {
    auto a = make(9), b = make(9), c = make(10);
    auto value = [&](auto& term) { return torch::Tensor(term(net, x, y)).item<double>(); };
    const double a1 = value(a), a2 = value(a);
    const double b1 = value(b), b2 = value(b);
    const double c1 = value(c);
    CHECK(a1 == b1);
    CHECK(a2 == b2);
    CHECK(a1 != a2);
    CHECK(a1 != c1);
  };
  check_streams([](uint64_t seed) {
    return rar::art(rar::ARTOptions().epsilon(0.1).attack_steps(1).seed(seed));
  });
  check_streams([](uint64_t seed) {
    return rar::attribution_alignment(
        rar::AlignmentOptions().epsilon(0.1).attack_steps(1).seed(seed).ig(rar::IGOptions().steps(3)));
  });
  // SSR draws nothing: two calls agree.
  const auto s = rar::ssr();
  CHECK(s(net, x, y).item<double>() == s(net, x, y).item<double>());
}

TEST_CASE("successor terms compose and leave parameter gradients untouched until backward",
          "[ssr][art][alignment]") {
  torch::manual_seed(72);
  torch::nn::Sequential net(torch::nn::Linear(4, 6), torch::nn::Tanh(), torch::nn::Linear(6, 3));
  net->to(torch::kDouble);
  const auto x = torch::rand({3, 4}, torch::kDouble);
  const auto y = torch::tensor({0, 1, 2});
  const auto art_opts = rar::ARTOptions().attack_steps(2);
  const auto align_opts = rar::AlignmentOptions().attack_steps(2).ig(rar::IGOptions().steps(3));
  const auto objective = rar::ssr() + 0.5 * rar::art(art_opts) + rar::attribution_alignment(align_opts) * 2.0;
  const rar::test::ModuleState before(*net);
  const auto loss = objective(net, x, y);
  CHECK(rar::test::ModuleState(*net) == before);
  const double parts = rar::ssr()(net, x, y).item<double>() +
                       0.5 * rar::art(art_opts)(net, x, y).item<double>() +
                       2.0 * rar::attribution_alignment(align_opts)(net, x, y).item<double>();
  CHECK(loss.item<double>() == Approx(parts).epsilon(1e-13));
  loss.backward();
  for (const auto& p : net->parameters()) {
    CHECK(p.grad().defined());
    CHECK(p.grad().abs().sum().item<double>() > 0);
  }
}

TEST_CASE("successor terms reject bad options and inputs with clear messages",
          "[ssr][art][alignment][errors]") {
  using Catch::Contains;
  auto net = rar::test::smooth_mlp(4, 5, 3);
  const auto x = torch::rand({2, 4}, torch::kDouble);
  const auto y = torch::tensor({0, 1});
  CHECK_THROWS_WITH(rar::ssr(rar::SSROptions().alpha(1.5)), Contains("rar::ssr: alpha must lie in [0, 1], got 1.5"));
  CHECK_THROWS_WITH(rar::ssr(rar::SSROptions().scale(-2)), Contains("rar::ssr: scale must be finite and >= 0, got -2"));
  CHECK_THROWS_WITH(rar::ssr()(net, x, torch::tensor({0, 1, 2})), Contains("rar::ssr: y must be int64 labels of shape [2], got [3]"));
  auto vector_model = [](const torch::Tensor& in) { return in.sum(1); };
  CHECK_THROWS_WITH(rar::ssr()(vector_model, x, y), Contains("rar::ssr: the model must return logits [N, C] with N = 2 and C >= 2, got [2]"));
  CHECK_THROWS_WITH(rar::ssr_beta(net, torch::ones({2, 4}, torch::kLong)), Contains("rar::ssr_beta: x must be float32 or float64"));

  CHECK_THROWS_WITH(rar::art(rar::ARTOptions().epsilon(-1)), Contains("rar::art: epsilon must be finite and >= 0, got -1"));
  CHECK_THROWS_WITH(rar::art(rar::ARTOptions().attack_steps(-1)), Contains("rar::art: attack_steps must be >= 0, got -1"));
  CHECK_THROWS_WITH(rar::art(rar::ARTOptions().attack_step_size(-0.5)), Contains("rar::art: attack_step_size must be finite and >= 0, got -0.5"));
  CHECK_THROWS_WITH(rar::art(rar::ARTOptions().top_k(-3)), Contains("rar::art: top_k must be >= 0 (0: the authors' fraction), got -3"));
  CHECK_THROWS_WITH(rar::art(rar::ARTOptions().lambda(-1)), Contains("rar::art: lambda must be finite and >= 0, got -1"));
  CHECK_THROWS_WITH(rar::art(rar::ARTOptions().surrogate_beta(-2)), Contains("rar::art: surrogate_beta must be finite and >= 0 (0: no surrogate), got -2"));
  CHECK_THROWS_WITH(rar::art(rar::ARTOptions().clip_min(1).clip_max(0)), Contains("rar::art: clip_min must be <= clip_max"));
  CHECK_THROWS_WITH(rar::art(rar::ARTOptions().top_k(5))(net, x, y), Contains("rar::art: top_k must lie in [1, D = 4] (D: elements per sample), got 5"));
  CHECK_THROWS_WITH(rar::art()(net, x + 1.5, y), Contains("rar::art: x must lie in the data range [clip_min, clip_max] = [0, 1], but "));
  CHECK_THROWS_WITH(rar::art()(net, x, torch::tensor({0, 3})), Contains("rar::art: target class indices must lie in [0, 3)"));

  CHECK_THROWS_WITH(rar::attribution_alignment(rar::AlignmentOptions().lambda(-0.5)), Contains("rar::attribution_alignment: lambda must be finite and >= 0, got -0.5"));
  CHECK_THROWS_WITH(rar::attribution_alignment(rar::AlignmentOptions().epsilon(-1)), Contains("rar::attribution_alignment: epsilon must be finite and >= 0, got -1"));
  CHECK_THROWS_WITH(rar::attribution_alignment(rar::AlignmentOptions().ig(rar::IGOptions().steps(0))), Contains("rar::attribution_alignment: ig steps must be >= 1, got 0"));
  CHECK_THROWS_WITH(rar::attribution_alignment()(net, x - 0.5, y), Contains("rar::attribution_alignment: x must lie in the data range [clip_min, clip_max] = [0, 1]"));
  CHECK_THROWS_WITH(rar::attribution_alignment()(net, x, torch::tensor({0.0, 1.0})), Contains("rar::attribution_alignment: y must be int64 labels"));
  auto flat = [](auto&, const torch::Tensor& in, const torch::Tensor&, bool) { return in.flatten(); };
  CHECK_THROWS_WITH(rar::attribution_alignment(flat, rar::AlignmentOptions().attack_steps(1))(net, x, y),
                    Contains("rar::attribution_alignment: the explainer must return attributions of the input's shape [2, 4], got [8] and [8]"));
}

TEST_CASE("successor terms on CUDA match the CPU", "[ssr][art][alignment][cuda]") {
  RAR_REQUIRE_CUDA();
  auto net = rar::test::smooth_mlp(4, 5, 3);
  torch::manual_seed(73);
  const auto x = torch::rand({4, 4}, torch::kDouble);
  const auto y = torch::tensor({0, 1, 2, 1});
  const auto art_opts = rar::ARTOptions().attack_steps(2).top_k(2);
  const auto align_opts = rar::AlignmentOptions().attack_steps(2).ig(rar::IGOptions().steps(3));
  const double ssr_cpu = rar::ssr()(net, x, y).item<double>();
  const double art_cpu = rar::art(art_opts)(net, x, y).item<double>();
  const double align_cpu = rar::attribution_alignment(align_opts)(net, x, y).item<double>();
  net->to(torch::kCUDA);
  const auto xc = x.cuda(), yc = y.cuda();
  CHECK(rar::ssr()(net, xc, yc).item<double>() == Approx(ssr_cpu).epsilon(1e-9));
  CHECK(rar::art(art_opts)(net, xc, yc).item<double>() == Approx(art_cpu).epsilon(1e-9));
  CHECK(rar::attribution_alignment(align_opts)(net, xc, yc).item<double>() ==
        Approx(align_cpu).epsilon(1e-9));
  net->to(torch::kCPU);
}
