// Tests for rar/metrics: rank correlations (against SciPy and a brute force), top-k
// intersection, saliency maps, center-of-mass shift and max-sensitivity.

#include <rar/attribution/gradient.hpp>
#include <rar/metrics/metrics.hpp>
#include <rar/metrics/sanity.hpp>
#include <rar/attribution/integrated_gradients.hpp>

#include <catch2/catch.hpp>

#include "support/reference.hpp"

#include <torch/torch.h>

#include <Eigen/Core>

#include <cmath>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace {

using Catch::Contains;

// Every case in tests/data/scipy_reference.txt (its last line lists them).
std::vector<std::string> reference_cases(const rar::test::Reference& ref) {
  std::ifstream in(rar::test::data_path("scipy_reference.txt"));
  std::string line, prefix = "# cases: ";
  std::vector<std::string> names;
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) != 0) continue;
    std::istringstream row(line.substr(prefix.size()));
    for (std::string name; row >> name;) names.push_back(name);
  }
  for (const auto& name : names) REQUIRE(ref.has(name + ".a"));
  return names;
}

Eigen::VectorXd to_eigen(const torch::Tensor& t) {
  const torch::Tensor c = t.to(torch::kDouble).contiguous().flatten();
  return Eigen::Map<const Eigen::VectorXd>(c.data_ptr<double>(), c.numel());
}

// |x - y| treating two NaNs as equal and one NaN as infinitely far.
double nan_aware_error(double x, double y) {
  if (std::isnan(x) || std::isnan(y)) {
    return std::isnan(x) && std::isnan(y) ? 0.0 : std::numeric_limits<double>::infinity();
  }
  return std::abs(x - y);
}

// Kendall's tau-b by counting all pairs: the definition, O(n²).
double brute_force_tau_b(const Eigen::VectorXd& a, const Eigen::VectorXd& b) {
  int64_t concordant = 0, discordant = 0, tied_a = 0, tied_b = 0;
  const int64_t n = a.size();
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = i + 1; j < n; ++j) {
      const double da = a[i] - a[j], db = b[i] - b[j];
      tied_a += da == 0;
      tied_b += db == 0;
      if (da * db > 0) ++concordant;
      if (da * db < 0) ++discordant;
    }
  }
  const int64_t total = n * (n - 1) / 2;
  return static_cast<double>(concordant - discordant) /
         std::sqrt(static_cast<double>(total - tied_a)) /
         std::sqrt(static_cast<double>(total - tied_b));
}

Eigen::VectorXd random_vector(std::mt19937_64& gen, int64_t n, int levels) {
  Eigen::VectorXd v(n);
  std::normal_distribution<double> normal;
  std::uniform_int_distribution<int> level(0, std::max(levels - 1, 0));
  for (int64_t i = 0; i < n; ++i) v[i] = levels > 0 ? static_cast<double>(level(gen)) : normal(gen);
  return v;
}

}  // namespace

// ---------------------------------------------------------------- rank correlations vs SciPy

TEST_CASE("kendall_tau matches scipy's tau-b including ties", "[metrics][kendall]") {
  const rar::test::Reference ref(rar::test::data_path("scipy_reference.txt"));
  double worst = 0;
  for (const auto& name : reference_cases(ref)) {
    INFO("case " << name);
    const torch::Tensor a = ref.tensor(name + ".a"), b = ref.tensor(name + ".b");
    const double expected = ref.tensor(name + ".kendall").item<double>();
    const double eigen = rar::kendall_tau(to_eigen(a), to_eigen(b));
    const double batched = rar::kendall_tau(a.unsqueeze(0), b.unsqueeze(0))[0].item<double>();
    CHECK(nan_aware_error(eigen, expected) <= 1e-12);
    CHECK(nan_aware_error(batched, eigen) == 0);
    worst = std::max(worst, nan_aware_error(eigen, expected));
  }
  CHECK(worst <= 1e-12);
}

TEST_CASE("spearman_rho matches scipy's spearmanr (average ranks) including ties",
          "[metrics][spearman]") {
  const rar::test::Reference ref(rar::test::data_path("scipy_reference.txt"));
  double worst = 0;
  for (const auto& name : reference_cases(ref)) {
    INFO("case " << name);
    const torch::Tensor a = ref.tensor(name + ".a"), b = ref.tensor(name + ".b");
    const double expected = ref.tensor(name + ".spearman").item<double>();
    const double eigen = rar::spearman_rho(to_eigen(a), to_eigen(b));
    const double batched = rar::spearman_rho(a.unsqueeze(0), b.unsqueeze(0))[0].item<double>();
    CHECK(nan_aware_error(eigen, expected) <= 1e-12);
    CHECK(nan_aware_error(batched, eigen) == 0);
    worst = std::max(worst, nan_aware_error(eigen, expected));
  }
  CHECK(worst <= 1e-12);
}

TEST_CASE("batched rank correlations compare each flattened sample with its partner",
          "[metrics][kendall][spearman]") {
  const rar::test::Reference ref(rar::test::data_path("scipy_reference.txt"));
  // Three cases of n = 10 as one batch [3, 2, 5]: samples are flattened.
  const std::vector<std::string> names = {"continuous_n10", "constant_a_n10", "constant_b_n10"};
  std::vector<torch::Tensor> as, bs;
  for (const auto& name : names) {
    as.push_back(ref.tensor(name + ".a").view({2, 5}));
    bs.push_back(ref.tensor(name + ".b").view({2, 5}));
  }
  const torch::Tensor a = torch::stack(as), b = torch::stack(bs);
  const torch::Tensor tau = rar::kendall_tau(a, b), rho = rar::spearman_rho(a, b);
  REQUIRE(tau.sizes() == torch::IntArrayRef{3});
  CHECK(tau.scalar_type() == torch::kDouble);
  CHECK(tau.device().is_cpu());
  for (size_t i = 0; i < names.size(); ++i) {
    INFO("case " << names[i]);
    const auto k = static_cast<int64_t>(i);
    CHECK(nan_aware_error(tau[k].item<double>(),
                          ref.tensor(names[i] + ".kendall").item<double>()) <= 1e-12);
    CHECK(nan_aware_error(rho[k].item<double>(),
                          ref.tensor(names[i] + ".spearman").item<double>()) <= 1e-12);
  }

  SECTION("float32 inputs are ranked as their float32 values") {
    const torch::Tensor a32 = torch::randn({4, 3, 7}, torch::kFloat);
    const torch::Tensor b32 = a32 + 0.5 * torch::randn({4, 3, 7}, torch::kFloat);
    const torch::Tensor tau32 = rar::kendall_tau(a32, b32);
    const torch::Tensor rho32 = rar::spearman_rho(a32, b32);
    CHECK(tau32.scalar_type() == torch::kDouble);
    for (int64_t i = 0; i < 4; ++i) {
      CHECK(tau32[i].item<double>() == rar::kendall_tau(to_eigen(a32[i]), to_eigen(b32[i])));
      CHECK(rho32[i].item<double>() == rar::spearman_rho(to_eigen(a32[i]), to_eigen(b32[i])));
    }
  }
  SECTION("a and b may differ in dtype") {
    const torch::Tensor x = torch::randn({2, 9}, torch::kDouble);
    const torch::Tensor y = torch::randn({2, 9}, torch::kDouble);
    CHECK(torch::equal(rar::kendall_tau(x.to(torch::kFloat), y),
                       rar::kendall_tau(x.to(torch::kFloat).to(torch::kDouble), y)));
  }
}

TEST_CASE("kendall_tau equals an O(n^2) brute-force tau-b on tied and untied vectors",
          "[metrics][kendall]") {
  std::mt19937_64 gen(12345);
  double worst = 0;
  int compared = 0;
  for (int trial = 0; trial < 400; ++trial) {
    const int64_t n = 2 + static_cast<int64_t>(gen() % 80);
    const int levels_a = static_cast<int>(gen() % 6);  // 0: continuous, else that many values
    const int levels_b = static_cast<int>(gen() % 6);
    const Eigen::VectorXd a = random_vector(gen, n, levels_a);
    const Eigen::VectorXd b = random_vector(gen, n, levels_b);
    const double fast = rar::kendall_tau(a, b), slow = brute_force_tau_b(a, b);
    INFO("trial " << trial << ", n = " << n);
    REQUIRE(std::isnan(fast) == std::isnan(slow));
    if (!std::isnan(fast)) {
      worst = std::max(worst, std::abs(fast - slow));
      ++compared;
    }
  }
  CHECK(compared > 200);  // the rest have a constant vector (NaN on both sides)
  CHECK(worst <= 1e-12);

  SECTION("a long vector with heavy ties") {
    const Eigen::VectorXd a = random_vector(gen, 3000, 7);
    const Eigen::VectorXd b = a + 0.7 * random_vector(gen, 3000, 0);
    CHECK(std::abs(rar::kendall_tau(a, b) - brute_force_tau_b(a, b)) <= 1e-12);
  }
}

TEST_CASE("rank correlations are 1 for equal rankings, -1 for reversed ones, and invariant "
          "under strictly monotone transforms",
          "[metrics][kendall][spearman]") {
  std::mt19937_64 gen(7);
  for (int levels : {0, 4}) {
    INFO("levels " << levels);
    const Eigen::VectorXd a = random_vector(gen, 500, levels);
    const Eigen::VectorXd b = random_vector(gen, 500, 0);
    // Exact up to the rounding of SciPy's formula, n / √m / √m.
    CHECK(rar::kendall_tau(a, a) == Approx(1.0).margin(1e-15));
    CHECK(rar::kendall_tau(a, -a) == Approx(-1.0).margin(1e-15));
    CHECK(rar::spearman_rho(a, a) == Approx(1.0).margin(1e-15));
    CHECK(rar::spearman_rho(a, -a) == Approx(-1.0).margin(1e-15));
    const Eigen::VectorXd exp_a = a.array().exp();
    const Eigen::VectorXd cube_b = b.array().cube();
    CHECK(rar::kendall_tau(exp_a, cube_b) == rar::kendall_tau(a, b));
    CHECK(rar::spearman_rho(exp_a, cube_b) == rar::spearman_rho(a, b));
    CHECK(rar::kendall_tau(b, a) == Approx(rar::kendall_tau(a, b)).margin(1e-15));
  }

  SECTION("pair counts do not overflow for long vectors") {
    // n = 100000: n(n-1)/2 ≈ 5·10⁹ pairs, beyond 32 bits.
    const Eigen::VectorXd a = random_vector(gen, 100000, 0);
    Eigen::VectorXd noisy = a + 0.1 * random_vector(gen, 100000, 0);
    CHECK(rar::kendall_tau(a, a) == Approx(1.0).margin(1e-15));
    CHECK(rar::kendall_tau(a, -a) == Approx(-1.0).margin(1e-15));
    CHECK(rar::spearman_rho(a, -a) == Approx(-1.0).margin(1e-15));
    const double tau = rar::kendall_tau(a, noisy);
    CHECK(tau > 0.9);
    CHECK(tau < 1.0);
  }
  SECTION("±inf are ranked as the largest and smallest values, -0 ties with +0") {
    const double inf = std::numeric_limits<double>::infinity();
    Eigen::VectorXd a(5), b(5), a_finite(5);
    a << -inf, 0.0, 1.0, inf, -0.0;
    a_finite << -9, 0.0, 1.0, 9, 0.0;
    b << 1, 2, 3, 4, 5;
    CHECK(rar::kendall_tau(a, b) == rar::kendall_tau(a_finite, b));
    CHECK(rar::spearman_rho(a, b) == rar::spearman_rho(a_finite, b));
  }
}

TEST_CASE("rank correlations are NaN for one element, constant samples and NaN values",
          "[metrics][kendall][spearman]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Eigen::VectorXd one(1), constant(4), varying(4), with_nan(4);
  one << 3.0;
  constant << 2, 2, 2, 2;
  varying << 1, 3, 2, 4;
  with_nan << 1, nan, 2, 4;
  CHECK(std::isnan(rar::kendall_tau(one, one)));
  CHECK(std::isnan(rar::spearman_rho(one, one)));
  CHECK(std::isnan(rar::kendall_tau(constant, varying)));
  CHECK(std::isnan(rar::spearman_rho(varying, constant)));
  CHECK(std::isnan(rar::kendall_tau(with_nan, varying)));
  CHECK(std::isnan(rar::spearman_rho(varying, with_nan)));

  // In a batch, only the affected sample is NaN.
  const torch::Tensor a = torch::tensor({1.0, 2.0, 3.0, nan, 5.0, 6.0}).view({2, 3});
  const torch::Tensor b = torch::tensor({1.0, 3.0, 2.0, 4.0, 5.0, 6.0}).view({2, 3});
  const torch::Tensor tau = rar::kendall_tau(b, a);
  CHECK(tau[0].item<double>() == Approx(1.0 / 3.0));
  CHECK(std::isnan(tau[1].item<double>()));
  const torch::Tensor top = rar::topk_intersection(a, b, 1);
  CHECK(top[0].item<double>() == 0.0);
  CHECK(std::isnan(top[1].item<double>()));
}

TEST_CASE("the Eigen overloads reject mismatched sizes and empty vectors",
          "[metrics][errors]") {
  const Eigen::VectorXd three = Eigen::VectorXd::LinSpaced(3, 0, 1);
  const Eigen::VectorXd four = Eigen::VectorXd::LinSpaced(4, 0, 1);
  const Eigen::VectorXd empty(0);
  CHECK_THROWS_AS(rar::kendall_tau(three, four), std::invalid_argument);
  CHECK_THROWS_WITH(rar::kendall_tau(three, four),
                    Contains("rar::kendall_tau") && Contains("same size, got 3 and 4"));
  CHECK_THROWS_WITH(rar::spearman_rho(four, three),
                    Contains("rar::spearman_rho") && Contains("same size, got 4 and 3"));
  CHECK_THROWS_WITH(rar::kendall_tau(empty, empty), Contains("must not be empty"));
  CHECK_THROWS_WITH(rar::spearman_rho(empty, empty), Contains("must not be empty"));
}

TEST_CASE("the batched metrics reject bad shapes, dtypes and k with messages naming them",
          "[metrics][errors]") {
  const torch::Tensor a = torch::rand({2, 3, 4});
  CHECK_THROWS_WITH(rar::kendall_tau(a, torch::rand({3, 3, 4})),
                    Contains("rar::kendall_tau: a and b must have the same shape, got [2, 3, 4] "
                             "and [3, 3, 4]"));
  CHECK_THROWS_WITH(rar::spearman_rho(a, torch::rand({2, 12})),
                    Contains("rar::spearman_rho: a and b must have the same shape"));
  CHECK_THROWS_WITH(rar::topk_intersection(a, torch::rand({2, 3, 5}), 2),
                    Contains("rar::topk_intersection: a and b must have the same shape"));
  CHECK_THROWS_WITH(rar::kendall_tau(torch::Tensor(), a),
                    Contains("rar::kendall_tau: a must be a defined tensor"));
  CHECK_THROWS_WITH(rar::kendall_tau(torch::rand({0, 4}), torch::rand({0, 4})),
                    Contains("rar::kendall_tau: a must be a batch [N, ...] with N >= 1, got shape "
                             "[0, 4]"));
  CHECK_THROWS_WITH(rar::spearman_rho(torch::rand({2, 0}), torch::rand({2, 0})),
                    Contains("at least one feature per sample, got shape [2, 0]"));
  CHECK_THROWS_WITH(rar::kendall_tau(a, torch::ones({2, 3, 4}, torch::kLong)),
                    Contains("rar::kendall_tau: b must be float32 or float64, got Long"));
  CHECK_THROWS_WITH(rar::topk_intersection(a, a, 0),
                    Contains("rar::topk_intersection: k must be in [1, 12]") &&
                        Contains("got k = 0"));
  CHECK_THROWS_WITH(rar::topk_intersection(a, a, 13),
                    Contains("k must be in [1, 12] (the number of features per sample), got k = 13"));
  CHECK_THROWS_WITH(rar::attribution_map(torch::ones({2, 3}, torch::kInt)),
                    Contains("rar::attribution_map: attributions must be float32 or float64"));
  CHECK_THROWS_WITH(rar::center_of_mass(torch::rand({4})),
                    Contains("rar::center_of_mass: maps must be maps [N, D], [N, H, W] or "
                             "[N, C, H, W] (at least 2 dimensions), got shape [4]"));
  CHECK_THROWS_WITH(rar::center_of_mass_shift(torch::rand({2, 4, 4}), torch::rand({2, 4, 5})),
                    Contains("rar::center_of_mass_shift: a and b must have the same shape, got "
                             "[2, 4, 4] and [2, 4, 5]"));
  CHECK_THROWS_WITH(rar::center_of_mass_shift(torch::rand({2, 4, 0}), torch::rand({2, 4, 0})),
                    Contains("rar::center_of_mass_shift: a must not be empty"));
}

// ---------------------------------------------------------------- top-k intersection

TEMPLATE_TEST_CASE("topk_intersection counts the shared top-k features per sample",
                   "[metrics][topk]", float, double) {
  const auto dtype = c10::CppTypeToScalarType<TestType>::value;
  // Sample 0: top-2 of a = {3, 2}, of b = {3, 0} → 1/2. Sample 1: b reversed → top-2 disjoint.
  const torch::Tensor a = torch::tensor({0.1, 0.2, 0.3, 0.4, 1.0, 2.0, 3.0, 4.0}, dtype).view({2, 4});
  const torch::Tensor b = torch::tensor({0.9, 0.1, 0.2, 1.0, 4.0, 3.0, 2.0, 1.0}, dtype).view({2, 4});
  const torch::Tensor k2 = rar::topk_intersection(a, b, 2);
  CHECK(k2.scalar_type() == torch::kDouble);
  CHECK(k2[0].item<double>() == 0.5);
  CHECK(k2[1].item<double>() == 0.0);
  // k = 3: {3, 2, 1} vs {3, 0, 2} share {3, 2}; {3, 2, 1} vs {0, 1, 2} share {1, 2}.
  const torch::Tensor k3 = rar::topk_intersection(a, b, 3);
  CHECK(k3[0].item<double>() == Approx(2.0 / 3.0));
  CHECK(k3[1].item<double>() == Approx(2.0 / 3.0));
  CHECK(torch::equal(rar::topk_intersection(a, b, 4), torch::ones({2}, torch::kDouble)));
  CHECK(torch::equal(rar::topk_intersection(a, a, 1), torch::ones({2}, torch::kDouble)));

  SECTION("ties are ranked by position, the lower index first") {
    const torch::Tensor flat = torch::ones({1, 6}, dtype);
    const torch::Tensor front = torch::tensor({1.0, 1.0, 0.0, 0.0, 0.0, 0.0}, dtype).view({1, 6});
    CHECK(rar::topk_intersection(flat, front, 2)[0].item<double>() == 1.0);
    const torch::Tensor back = torch::tensor({0.0, 0.0, 0.0, 0.0, 1.0, 1.0}, dtype).view({1, 6});
    CHECK(rar::topk_intersection(flat, back, 2)[0].item<double>() == 0.0);
  }
  SECTION("image-shaped maps are flattened") {
    const torch::Tensor maps = torch::rand({3, 5, 5}, dtype);
    const torch::Tensor result = rar::topk_intersection(maps, maps.flip({2}), 25);
    CHECK(torch::equal(result, torch::ones({3}, torch::kDouble)));
  }
}

// ---------------------------------------------------------------- saliency maps

TEMPLATE_TEST_CASE("attribution_map takes |a|, sums channels and normalizes each sample to 1",
                   "[metrics][map]", float, double) {
  const auto dtype = c10::CppTypeToScalarType<TestType>::value;
  const double tol = std::is_same_v<TestType, float> ? 1e-6 : 1e-14;
  // [N=1, C=2, H=2, W=2]: channel sums of |a| are {2, 2, 4, 8}, total 16.
  const torch::Tensor attr =
      torch::tensor({1.0, -2.0, 3.0, 4.0, -1.0, 0.0, 1.0, -4.0}, dtype).view({1, 2, 2, 2});
  const torch::Tensor map = rar::attribution_map(attr);
  REQUIRE(map.sizes() == torch::IntArrayRef({1, 2, 2}));
  CHECK(map.scalar_type() == dtype);
  const torch::Tensor expected =
      torch::tensor({2.0 / 16, 2.0 / 16, 4.0 / 16, 8.0 / 16}, dtype).view({1, 2, 2});
  CHECK(torch::allclose(map, expected, 0, tol));

  SECTION("every sample sums to 1") {
    const torch::Tensor maps = rar::attribution_map(torch::randn({5, 3, 7, 6}, dtype));
    CHECK(maps.sizes() == torch::IntArrayRef({5, 7, 6}));
    CHECK(torch::allclose(maps.sum({1, 2}), torch::ones({5}, dtype), 0, tol));
    CHECK((maps >= 0).all().item<bool>());
  }
  SECTION("[N, D] inputs have no channel dimension") {
    const torch::Tensor flat = torch::tensor({-1.0, 3.0, 0.0, 0.0, 0.0, 2.0}, dtype).view({2, 3});
    const torch::Tensor m = rar::attribution_map(flat);
    REQUIRE(m.sizes() == torch::IntArrayRef({2, 3}));
    CHECK(torch::allclose(m[0], torch::tensor({0.25, 0.75, 0.0}, dtype), 0, tol));
    CHECK(torch::allclose(m[1], torch::tensor({0.0, 0.0, 1.0}, dtype), 0, tol));
  }
  SECTION("an all-zero sample stays zero") {
    const torch::Tensor m = rar::attribution_map(torch::zeros({2, 1, 3, 3}, dtype));
    CHECK(torch::equal(m, torch::zeros({2, 3, 3}, dtype)));
  }
  SECTION("the options switch each step off") {
    const auto raw = rar::MapOptions().abs(false).sum_channels(false).normalize(false);
    CHECK(torch::equal(rar::attribution_map(attr, raw), attr));
    const torch::Tensor signed_sum =
        rar::attribution_map(attr, rar::MapOptions().abs(false).normalize(false));
    CHECK(torch::allclose(signed_sum, attr.sum(1), 0, tol));
    const torch::Tensor l1 = rar::attribution_map(attr, rar::MapOptions().abs(false).sum_channels(false));
    CHECK(torch::allclose(l1, attr / 16.0, 0, tol));  // signed, divided by the L1 norm
  }
  SECTION("it is differentiable") {
    const torch::Tensor x = torch::randn({2, 3, 4, 4}, dtype).requires_grad_(true);
    const torch::Tensor m = rar::attribution_map(x * x);
    CHECK(m.requires_grad());
    const torch::Tensor g = torch::autograd::grad({m.select(1, 0).sum()}, {x})[0];
    CHECK(g.sizes() == x.sizes());
    CHECK(g.abs().sum().item<double>() > 0);
  }
}

// ---------------------------------------------------------------- center of mass

TEMPLATE_TEST_CASE("center_of_mass_shift measures a known translation of a map",
                   "[metrics][center]", float, double) {
  const auto dtype = c10::CppTypeToScalarType<TestType>::value;
  // A blob at rows 2-4, columns 1-2, heavier at (3, 1), moved by (+2, +3).
  torch::Tensor a = torch::zeros({1, 10, 10}, dtype);
  a.index_put_({0, torch::indexing::Slice(2, 5), torch::indexing::Slice(1, 3)}, 1.0);
  a.index_put_({0, 3, 1}, 5.0);
  const torch::Tensor b = torch::roll(a, {2, 3}, {1, 2});
  const torch::Tensor ca = rar::center_of_mass(a);
  REQUIRE(ca.sizes() == torch::IntArrayRef({1, 2}));
  CHECK(ca.scalar_type() == dtype);
  // Mass 1 at (2,1), (2,2), (3,2), (4,1), (4,2) and 5 at (3,1), total 10: rows (2·2 + 3·6 +
  // 4·2) / 10 = 3, columns (1·7 + 2·3) / 10 = 1.3.
  CHECK(ca[0][0].item<double>() == Approx(3.0));
  CHECK(ca[0][1].item<double>() == Approx(1.3));
  const torch::Tensor shift = rar::center_of_mass_shift(a, b);
  CHECK(shift.scalar_type() == torch::kDouble);
  CHECK(shift.device().is_cpu());
  CHECK(shift[0].item<double>() == Approx(std::sqrt(13.0)).epsilon(1e-12));
  CHECK(rar::center_of_mass_shift(a, a)[0].item<double>() == 0.0);

  SECTION("[N, C, H, W] maps sum the channels first") {
    const torch::Tensor a4 = torch::stack({a, 2 * a}, 1);  // [1, 2, 10, 10]
    const torch::Tensor b4 = torch::stack({b, b}, 1);
    CHECK(rar::center_of_mass_shift(a4, b4)[0].item<double>() ==
          Approx(std::sqrt(13.0)).epsilon(1e-12));
  }
  SECTION("1-D maps [N, D] shift by |difference of the centers|") {
    const torch::Tensor m = torch::tensor({0.0, 1.0, 3.0, 0.0, 0.0, 0.0, 0.0, 0.0}, dtype).view({1, 8});
    CHECK(rar::center_of_mass(m)[0][0].item<double>() == Approx(1.75));
    CHECK(rar::center_of_mass_shift(m, torch::roll(m, {4}, {1}))[0].item<double>() == Approx(4.0));
    CHECK(rar::center_of_mass_shift(torch::roll(m, {4}, {1}), m)[0].item<double>() == Approx(4.0));
  }
  SECTION("negative values count by magnitude; zero mass gives NaN") {
    CHECK(rar::center_of_mass_shift(a, -b)[0].item<double>() ==
          Approx(std::sqrt(13.0)).epsilon(1e-12));
    const torch::Tensor both = torch::cat({a, torch::zeros_like(a)});
    const torch::Tensor s = rar::center_of_mass_shift(both, both);
    CHECK(s[0].item<double>() == 0.0);
    CHECK(std::isnan(s[1].item<double>()));
  }
  SECTION("center_of_mass is differentiable") {
    const torch::Tensor x = torch::rand({2, 5, 5}, dtype).requires_grad_(true);
    const torch::Tensor g = torch::autograd::grad({rar::center_of_mass(x).sum()}, {x})[0];
    CHECK(g.abs().sum().item<double>() > 0);
  }
}

// ---------------------------------------------------------------- max-sensitivity

TEMPLATE_TEST_CASE("max_sensitivity is 0 for a linear model with saliency and matches "
                   "||δ|| / ||x|| for a quadratic one",
                   "[metrics][sensitivity]", float, double) {
  const auto dtype = c10::CppTypeToScalarType<TestType>::value;
  torch::manual_seed(0);
  const torch::Tensor x = torch::randn({4, 6}, dtype) + 1.0;
  const torch::Tensor y = torch::tensor({0, 1, 2, 1}, torch::kLong);
  const auto saliency = [&](auto& model, const torch::Tensor& input, const torch::Tensor&, bool) {
    return rar::saliency(model, input, rar::GradientOptions().target(y));
  };

  SECTION("linear model: the gradient does not depend on x") {
    torch::nn::Linear linear(6, 3);
    linear->to(dtype);
    const torch::Tensor sens = rar::max_sensitivity(linear, saliency, x);
    REQUIRE(sens.sizes() == torch::IntArrayRef{4});
    CHECK(sens.scalar_type() == torch::kDouble);
    CHECK(sens.device().is_cpu());
    CHECK(torch::equal(sens, torch::zeros({4}, torch::kDouble)));
  }
  SECTION("nonlinear network: positive and reproducible under a seed") {
    torch::nn::Sequential net(torch::nn::Linear(6, 8), torch::nn::Tanh(), torch::nn::Linear(8, 3));
    net->to(dtype);
    const auto opts = rar::MaxSensitivityOptions().radius(0.1).samples(5).seed(3);
    const torch::Tensor s1 = rar::max_sensitivity(net, saliency, x, opts);
    const torch::Tensor s2 = rar::max_sensitivity(net, saliency, x, opts);
    const torch::Tensor s3 = rar::max_sensitivity(net, saliency, x, rar::MaxSensitivityOptions(opts).seed(4));
    CHECK((s1 > 0).all().item<bool>());
    CHECK(torch::equal(s1, s2));
    CHECK_FALSE(torch::equal(s1, s3));
    // A larger ball finds larger changes (the same draws, scaled: U(-r, r) = r·U(-1, 1)).
    const torch::Tensor wide = rar::max_sensitivity(net, saliency, x, rar::MaxSensitivityOptions(opts).radius(0.5));
    CHECK(wide.sum().item<double>() > s1.sum().item<double>());
  }
  SECTION("quadratic score: Φ(x) = 2x, so the value is max_s ||δ_s|| / ||x||") {
    // The model's output is already [N]: the score is Σ x², its gradient 2x.
    const auto square = [](const torch::Tensor& input) { return (input * input).sum(1); };
    const auto plain = [](auto& model, const torch::Tensor& input, const torch::Tensor&, bool) {
      return rar::saliency(model, input);
    };
    for (rar::Norm norm : {rar::Norm::linf, rar::Norm::l2}) {
      const auto opts = rar::MaxSensitivityOptions().radius(0.05).samples(7).seed(11).norm(norm);
      const torch::Tensor sens = rar::max_sensitivity(square, plain, x, opts);
      // The same draws: a CPU generator seeded with `seed`, one [N, D] draw per sample.
      at::Generator gen = rar::seeded_generator(11);
      torch::Tensor expected = torch::zeros({4}, torch::kDouble);
      const torch::Tensor x64 = x.to(torch::kDouble);
      for (int s = 0; s < 7; ++s) {
        // x + δ in the input's dtype, as the model sees it.
        const torch::Tensor moved = rar::detail::perturb_uniform(gen, x, 0.05, norm);
        const torch::Tensor delta = moved.to(torch::kDouble) - x64;
        if (norm == rar::Norm::linf) CHECK(delta.abs().max().item<double>() <= 0.05 + 1e-7);
        if (norm == rar::Norm::l2) CHECK((delta.norm(2, {1}) <= 0.05 + 1e-7).all().item<bool>());
        expected = torch::maximum(expected, delta.norm(2, {1}) / x64.norm(2, {1}));
      }
      const double tol = std::is_same_v<TestType, float> ? 1e-5 : 1e-12;
      CHECK(torch::allclose(sens, expected, tol, 0));
    }
  }
  SECTION("bad options and methods are rejected") {
    torch::nn::Linear linear(6, 3);
    linear->to(dtype);
    CHECK_THROWS_WITH(
        rar::max_sensitivity(linear, saliency, x, rar::MaxSensitivityOptions().samples(0)),
        Contains("rar::max_sensitivity: samples must be >= 1, got 0"));
    CHECK_THROWS_WITH(
        rar::max_sensitivity(linear, saliency, x, rar::MaxSensitivityOptions().radius(-0.1)),
        Contains("rar::max_sensitivity: radius must be finite and >= 0, got -0.1"));
    const auto wrong_rows = [](auto&, const torch::Tensor& input, const torch::Tensor&, bool) { return input[0]; };
    CHECK_THROWS_WITH(rar::max_sensitivity(linear, wrong_rows, x),
                      Contains("rar::max_sensitivity: method must return attributions [N, ...] "
                               "with N = 4, got [6]"));
    CHECK_THROWS_WITH(rar::max_sensitivity(linear, saliency, x.to(torch::kInt)),
                      Contains("rar::max_sensitivity: input must be float32 or float64"));
  }
}

TEST_CASE("parameter randomization: maps of a trained model change once its weights are random",
          "[sanity]") {
  // Output depends on features 0-3 only, so the trained maps concentrate there.
  torch::nn::Sequential net(torch::nn::Linear(16, 8), torch::nn::Tanh(), torch::nn::Linear(8, 2));
  net->to(torch::kDouble);
  {
    torch::NoGradGuard no_grad;
    auto w = net->parameters()[0];
    w.zero_();
    w.slice(1, 0, 4).copy_(torch::linspace(0.5, 1.5, 32, torch::kDouble).view({8, 4}));
  }
  torch::manual_seed(41);
  const auto x = torch::rand({12, 16}, torch::kDouble);
  const auto y = torch::randint(2, {12}, torch::kLong);
  auto ig = [](auto& m, const torch::Tensor& in, const torch::Tensor& t, bool) {
    return rar::integrated_gradients(m, in, rar::IGOptions().target(t).steps(16));
  };
  std::vector<torch::Tensor> before;
  for (const auto& p : net->parameters()) before.push_back(p.detach().clone());
  const auto steps = rar::parameter_randomization_test(net, ig, x, y, rar::RandomizationOptions().k(4).seed(3));
  REQUIRE(steps.size() == 3);  // the trained model, then the two Linear layers from the top
  CHECK(steps[0].layer.empty());
  CHECK(steps[0].spearman == 1.0);
  CHECK(steps[1].layer == "2");
  CHECK(steps[2].layer == "0");
  CHECK(steps[2].topk_intersection < 0.5);
  CHECK(steps[2].spearman < 0.5);
  CHECK(steps[2].spearman < steps[1].spearman);
  const auto independent =
      rar::parameter_randomization_test(net, ig, x, y, rar::RandomizationOptions().k(4).cascading(false));
  REQUIRE(independent.size() == 3);
  CHECK(independent[2].topk_intersection < 0.5);  // randomizing the first layer alone suffices
  for (size_t i = 0; i < before.size(); ++i) CHECK(net->parameters()[i].equal(before[i]));
  CHECK_THROWS_WITH(rar::parameter_randomization_test(net, ig, x, y, rar::RandomizationOptions().k(17)),
                    Catch::Contains("k must be in [1, 16], got 17"));
}
