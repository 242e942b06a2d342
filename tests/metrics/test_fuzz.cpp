// Randomized ("fuzz") tests of the metrics' public entry points: random shapes (empty,
// one element, up to 5-D), dtypes, devices, NaN / ±inf / huge / tied / signed-zero values,
// non-contiguous views and bad k. Every call must either return a result of the documented
// shape, dtype and range (checked against brute-force references where one is cheap) or throw
// c10::Error / std::invalid_argument whose message names the rar function — never crash.
//
// Seeded: a failing case prints its index and input (CAPTURE) and reruns identically;
// RAR_FUZZ_SEED=<n> in the environment shifts every seed, to explore other cases.

#include <rar/metrics/metrics.hpp>

#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <numeric>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace {

using Rng = std::mt19937_64;

/// The generator of one test: seeded with `seed`, or with `seed` + $RAR_FUZZ_SEED when that is
/// set (to explore other cases: `RAR_FUZZ_SEED=7 rar_tests_... "[fuzz]"`).
Rng fuzz_rng(std::uint64_t seed) {
  if (const char* extra = std::getenv("RAR_FUZZ_SEED")) seed += std::strtoull(extra, nullptr, 10);
  return Rng(seed);
}
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

int64_t uniform_int(Rng& rng, int64_t lo, int64_t hi) {
  return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
}
bool coin(Rng& rng, double p = 0.5) { return std::bernoulli_distribution(p)(rng); }

// ---- random inputs ------------------------------------------------------------------------

/// One value; with `specials`, the distribution leans on what breaks numerics.
double random_value(Rng& rng, bool specials) {
  switch (uniform_int(rng, 0, specials ? 13 : 4)) {
    case 0: return std::normal_distribution<double>()(rng);
    case 1: return static_cast<double>(uniform_int(rng, -2, 2));  // ties
    case 2: return 0.0;
    case 3: return -0.0;
    case 4: return std::uniform_real_distribution<double>(0, 1)(rng);
    case 5: return kNaN;
    case 6: return kInf;
    case 7: return -kInf;
    case 8: return 1e300;  // inf after a cast to float
    case 9: return -1e300;
    case 10: return 3e38;    // near float's max: sums overflow
    case 11: return 1e-310;  // subnormal in double, 0 in float
    case 12: return std::numeric_limits<double>::min();
    default: return std::normal_distribution<double>(0, 1e6)(rng);
  }
}

/// A shape of min_dim..max_dim dimensions, each 0 (10%), 1 (20%) or 2..6.
std::vector<int64_t> random_shape(Rng& rng, int64_t min_dim, int64_t max_dim) {
  std::vector<int64_t> shape(static_cast<size_t>(uniform_int(rng, min_dim, max_dim)));
  for (auto& s : shape) {
    const int64_t pick = uniform_int(rng, 0, 9);
    s = pick == 0 ? 0 : pick <= 2 ? 1 : uniform_int(rng, 2, 6);
  }
  return shape;
}

/// The dtypes a caller might pass; only float32 and float64 are valid for the metrics.
torch::Dtype random_dtype(Rng& rng) {
  const torch::Dtype all[] = {torch::kFloat, torch::kDouble, torch::kFloat, torch::kDouble,
                              torch::kHalf,  torch::kLong,   torch::kBool,  torch::kComplexFloat};
  return all[uniform_int(rng, 0, 7)];
}

/// The devices to draw from: the CPU, and CUDA when there is one.
torch::Device random_device(Rng& rng) {
  if (torch::cuda::is_available() && coin(rng, 0.3)) return torch::Device(torch::kCUDA, 0);
  return torch::kCPU;
}

/// A tensor of `shape` with random values in `dtype` on `device`; sometimes a non-contiguous
/// view with the same values, sometimes requiring grad.
torch::Tensor random_tensor(Rng& rng, const std::vector<int64_t>& shape, torch::Dtype dtype,
                            torch::Device device, bool specials) {
  int64_t numel = 1;
  for (int64_t s : shape) numel *= s;
  std::vector<double> values(static_cast<size_t>(numel));
  for (auto& v : values) v = random_value(rng, specials);
  torch::Tensor t = torch::tensor(values, torch::kDouble).reshape(shape);
  if (dtype == torch::kLong || dtype == torch::kBool) t = t.nan_to_num(0, 0, 0).clamp(-5, 5);
  t = t.to(device, dtype);
  if (shape.size() >= 2 && coin(rng, 0.2)) {
    // The same values through a transposed copy: a non-contiguous tensor of `shape`.
    t = t.transpose(0, 1).contiguous().transpose(0, 1);
  }
  if (coin(rng, 0.1) && (dtype == torch::kFloat || dtype == torch::kDouble)) t.requires_grad_(true);
  return t;
}

std::string describe(const torch::Tensor& t) {
  if (!t.defined()) return "undefined";
  std::ostringstream out;
  out << t.scalar_type() << " " << t.device() << " " << t.sizes()
      << (t.is_contiguous() ? "" : " non-contiguous");
  const bool readable = !t.is_meta() && !t.is_complex();
  if (readable && t.numel() > 0 && t.numel() <= 24)
    out << " values " << t.detach().cpu().to(torch::kDouble).flatten();
  return out.str();
}

/// Undefined sometimes (3%); otherwise `t`.
torch::Tensor maybe_undefined(Rng& rng, torch::Tensor t) {
  return coin(rng, 0.03) ? torch::Tensor() : t;
}

// ---- the contract --------------------------------------------------------------------------

enum class Outcome { ok, rejected };

/// Runs `call`; an exception passes only if it is c10::Error or std::invalid_argument whose
/// message contains `fn` ("rar::<name>"). Anything else fails the test with the message.
template <class F>
Outcome run_case(const std::string& fn, F&& call) {
  try {
    call();
    return Outcome::ok;
  } catch (const c10::Error& e) {
    const std::string what = e.what_without_backtrace();
    INFO("c10::Error: " << what);
    CHECK_THAT(what, Catch::Contains(fn));
  } catch (const std::invalid_argument& e) {
    INFO("std::invalid_argument: " << e.what());
    CHECK_THAT(std::string(e.what()), Catch::Contains(fn));
  } catch (const std::exception& e) {
    FAIL("unexpected exception type from " << fn << ": " << e.what());
  }
  return Outcome::rejected;
}

bool valid_float(const torch::Tensor& t) {
  return t.defined() && (t.scalar_type() == torch::kFloat || t.scalar_type() == torch::kDouble);
}

/// Whether (a, b) is a pair the batched metrics must accept.
bool valid_pair(const torch::Tensor& a, const torch::Tensor& b) {
  return valid_float(a) && valid_float(b) && a.dim() >= 1 && a.size(0) >= 1 &&
         a.sizes() == b.sizes() && a.numel() > 0;
}

void check_metric_result(const torch::Tensor& r, int64_t n) {
  REQUIRE(r.defined());
  CHECK(r.scalar_type() == torch::kDouble);
  CHECK(r.device().is_cpu());
  REQUIRE(r.sizes() == torch::IntArrayRef({n}));
}

// ---- brute-force references (O(D²), on small samples) ------------------------------------

bool any_nan(const std::vector<double>& x) {
  return std::any_of(x.begin(), x.end(), [](double v) { return std::isnan(v); });
}

/// Kendall's tau-b from all pairs.
double kendall_reference(const std::vector<double>& a, const std::vector<double>& b) {
  const size_t n = a.size();
  if (n < 2 || any_nan(a) || any_nan(b)) return kNaN;
  double concordant_minus_discordant = 0, tied_a = 0, tied_b = 0;
  const double pairs = static_cast<double>(n) * static_cast<double>(n - 1) / 2;
  for (size_t i = 0; i < n; ++i)
    for (size_t j = i + 1; j < n; ++j) {
      const bool ta = a[i] == a[j], tb = b[i] == b[j];
      tied_a += ta;
      tied_b += tb;
      if (!ta && !tb) concordant_minus_discordant += ((a[i] < a[j]) == (b[i] < b[j])) ? 1 : -1;
    }
  if (tied_a == pairs || tied_b == pairs) return kNaN;
  return concordant_minus_discordant / std::sqrt((pairs - tied_a) * (pairs - tied_b));
}

/// Average ranks (1-based), ties sharing the mean of their positions.
std::vector<double> average_ranks(const std::vector<double>& x) {
  std::vector<double> r(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    double less = 0, equal = 0;
    for (double y : x) {
      less += y < x[i];
      equal += y == x[i];
    }
    r[i] = less + (equal + 1) / 2;
  }
  return r;
}

/// Spearman's rho: the Pearson correlation of the average ranks.
double spearman_reference(const std::vector<double>& a, const std::vector<double>& b) {
  const size_t n = a.size();
  if (n < 2 || any_nan(a) || any_nan(b)) return kNaN;
  const auto ra = average_ranks(a), rb = average_ranks(b);
  const double mean = (static_cast<double>(n) + 1) / 2;
  double sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < n; ++i) {
    sab += (ra[i] - mean) * (rb[i] - mean);
    saa += (ra[i] - mean) * (ra[i] - mean);
    sbb += (rb[i] - mean) * (rb[i] - mean);
  }
  if (saa == 0 || sbb == 0) return kNaN;
  return sab / std::sqrt(saa * sbb);
}

/// The k largest by value, ties to the lower index; |top(a) ∩ top(b)| / k.
double topk_reference(const std::vector<double>& a, const std::vector<double>& b, int64_t k) {
  if (any_nan(a) || any_nan(b)) return kNaN;
  auto top = [k](const std::vector<double>& x) {
    std::vector<size_t> order(x.size());
    std::iota(order.begin(), order.end(), size_t{0});
    std::stable_sort(order.begin(), order.end(), [&x](size_t i, size_t j) { return x[i] > x[j]; });
    std::vector<char> in(x.size(), 0);
    for (int64_t i = 0; i < k; ++i) in[order[static_cast<size_t>(i)]] = 1;
    return in;
  };
  const auto ta = top(a), tb = top(b);
  int64_t common = 0;
  for (size_t i = 0; i < a.size(); ++i) common += ta[i] && tb[i];
  return static_cast<double>(common) / static_cast<double>(k);
}

/// Sample `i` of `t` as the float64 values the metrics see.
std::vector<double> sample(const torch::Tensor& t, int64_t i) {
  const torch::Tensor row = t.detach()[i].to(torch::kCPU, torch::kDouble).contiguous().flatten();
  return std::vector<double>(row.data_ptr<double>(), row.data_ptr<double>() + row.numel());
}

/// `value` equals `expected` within `tolerance` (NaN equals NaN).
void check_close(double value, double expected, double tolerance) {
  if (std::isnan(expected)) {
    CHECK(std::isnan(value));
  } else {
    CHECK(value == Approx(expected).margin(tolerance));
  }
}

/// A k to try against D features: valid ones, the edges, and nonsense.
int64_t random_k(Rng& rng, int64_t features) {
  switch (uniform_int(rng, 0, 8)) {
    case 0: return 0;
    case 1: return -1;
    case 2: return std::numeric_limits<int64_t>::min();
    case 3: return std::numeric_limits<int64_t>::max();
    case 4: return features + 1;
    case 5: return features;
    case 6: return 1;
    default: return uniform_int(rng, 1, std::max<int64_t>(features, 1));
  }
}

/// A random pair (a, b): mostly valid and alike, sometimes mismatched in shape, dtype, device.
std::pair<torch::Tensor, torch::Tensor> random_pair(Rng& rng, int64_t min_dim) {
  const auto shape = random_shape(rng, min_dim, 4);
  const torch::Dtype dtype = coin(rng, 0.8) ? (coin(rng) ? torch::kFloat : torch::kDouble)
                                            : random_dtype(rng);
  const torch::Device device = random_device(rng);
  const bool specials = coin(rng, 0.4);
  torch::Tensor a = random_tensor(rng, shape, dtype, device, specials);
  auto shape_b = shape;
  if (coin(rng, 0.1)) shape_b = random_shape(rng, 0, 4);  // mismatched shape (mostly)
  const torch::Dtype dtype_b = coin(rng, 0.85) ? dtype : random_dtype(rng);
  const torch::Device device_b = coin(rng, 0.85) ? device : random_device(rng);
  torch::Tensor b = random_tensor(rng, shape_b, dtype_b, device_b, specials);
  if (coin(rng, 0.15) && a.sizes() == b.sizes() && valid_float(b)) {
    b = a.detach().clone().to(dtype_b);  // identical samples: tau = rho = IN = 1
    if (coin(rng)) b = -b;               // reversed order: tau = rho = -1
  }
  return {maybe_undefined(rng, a), maybe_undefined(rng, b)};
}

/// Whether a sample has a finite, nonzero mass Σ|x|.
bool finite_mass(const std::vector<double>& s) {
  double total = 0;
  for (double v : s) total += std::abs(v);
  return std::isfinite(total) && total > 0;
}

bool all_zero(const std::vector<double>& s) {
  return std::all_of(s.begin(), s.end(), [](double v) { return v == 0; });
}

}  // namespace

TEST_CASE("fuzz: batched kendall_tau, spearman_rho, topk_intersection give valid results or "
          "rar:: errors",
          "[metrics][fuzz]") {
  Rng rng = fuzz_rng(20240601);
  int ok = 0, rejected = 0;
  for (int c = 0; c < 500; ++c) {
    auto [a, b] = random_pair(rng, 0);
    const int64_t features =
        a.defined() && a.dim() >= 1 && a.size(0) > 0 ? a.numel() / a.size(0) : 0;
    const int64_t k = random_k(rng, features);
    CAPTURE(c, describe(a), describe(b), k);
    const bool valid = valid_pair(a, b);
    torch::Tensor tau, rho, inter;
    const Outcome t = run_case("rar::kendall_tau", [&] { tau = rar::kendall_tau(a, b); });
    const Outcome s = run_case("rar::spearman_rho", [&] { rho = rar::spearman_rho(a, b); });
    const Outcome i =
        run_case("rar::topk_intersection", [&] { inter = rar::topk_intersection(a, b, k); });
    CHECK((t == Outcome::ok) == valid);
    CHECK((s == Outcome::ok) == valid);
    CHECK((i == Outcome::ok) == (valid && k >= 1 && k <= features));
    if (t != Outcome::ok || s != Outcome::ok) {
      ++rejected;
      continue;
    }
    ++ok;
    check_metric_result(tau, a.size(0));
    check_metric_result(rho, a.size(0));
    if (i == Outcome::ok) check_metric_result(inter, a.size(0));
    for (int64_t n = 0; n < a.size(0); ++n) {
      CAPTURE(n);
      // Float32 values cast to float64 exactly: the references see what the metrics see.
      const auto x = sample(a, n), y = sample(b, n);
      const double tv = tau[n].item<double>(), sv = rho[n].item<double>();
      CHECK((std::isnan(tv) || (tv >= -1 && tv <= 1)));
      CHECK((std::isnan(sv) || (sv >= -1 && sv <= 1)));
      check_close(tv, kendall_reference(x, y), 1e-12);
      check_close(sv, spearman_reference(x, y), 1e-12);
      if (i == Outcome::ok) {
        const double iv = inter[n].item<double>();
        CHECK((std::isnan(iv) || (iv >= 0 && iv <= 1)));
        check_close(iv, topk_reference(x, y, k), 0);
      }
    }
  }
  // The generator exercises both sides of the contract.
  CHECK(ok > 120);
  CHECK(rejected > 50);
}

TEST_CASE("fuzz: attribution_map keeps shapes and normalizes, or raises rar:: errors",
          "[metrics][fuzz]") {
  Rng rng = fuzz_rng(777);
  int ok = 0;
  for (int c = 0; c < 500; ++c) {
    const auto shape = random_shape(rng, 0, 5);
    const torch::Dtype dtype = coin(rng, 0.85) ? (coin(rng) ? torch::kFloat : torch::kDouble)
                                               : random_dtype(rng);
    const torch::Tensor a =
        maybe_undefined(rng, random_tensor(rng, shape, dtype, random_device(rng), coin(rng, 0.4)));
    const auto opts = rar::MapOptions()
                          .abs(coin(rng, 0.7))
                          .sum_channels(coin(rng, 0.7))
                          .normalize(coin(rng, 0.8));
    CAPTURE(c, describe(a), opts.abs(), opts.sum_channels(), opts.normalize());
    torch::Tensor map;
    const Outcome o =
        run_case("rar::attribution_map", [&] { map = rar::attribution_map(a, opts); });
    const bool valid = valid_float(a) && a.dim() >= 1 && a.size(0) >= 1;
    CHECK((o == Outcome::ok) == valid);
    if (o != Outcome::ok) continue;
    ++ok;
    std::vector<int64_t> expected(a.sizes().begin(), a.sizes().end());
    if (opts.sum_channels() && a.dim() >= 3) expected.erase(expected.begin() + 1);
    REQUIRE(map.sizes() == torch::IntArrayRef(expected));
    CHECK(map.scalar_type() == a.scalar_type());
    CHECK(map.device() == a.device());
    if (map.numel() == 0) continue;
    const torch::Tensor m = map.detach().cpu().to(torch::kDouble).reshape({map.size(0), -1});
    for (int64_t n = 0; n < m.size(0); ++n) {
      CAPTURE(n);
      const torch::Tensor row = m[n];
      if (!torch::isfinite(row).all().item<bool>()) continue;  // NaN / inf in: NaN out
      if (opts.abs()) CHECK(row.min().item<double>() >= 0);
      if (!opts.normalize()) continue;
      // A sample with mass sums to 1 (float32: to its precision); a zero sample stays zero.
      const double l1 = row.abs().sum().item<double>();
      if (l1 != 0) {
        CHECK(l1 == Approx(1.0).epsilon(a.scalar_type() == torch::kFloat ? 1e-4 : 1e-10));
        if (opts.abs()) CHECK(row.max().item<double>() <= 1.0 + 1e-6);
      }
    }
  }
  CHECK(ok > 150);
}

TEST_CASE("fuzz: center_of_mass and its shift stay inside the grid or raise rar:: errors",
          "[metrics][fuzz]") {
  Rng rng = fuzz_rng(4242);
  int ok = 0;
  for (int c = 0; c < 500; ++c) {
    auto [a, b] = random_pair(rng, 1);
    CAPTURE(c, describe(a), describe(b));
    torch::Tensor shift, center;
    const Outcome o =
        run_case("rar::center_of_mass_shift", [&] { shift = rar::center_of_mass_shift(a, b); });
    const Outcome oc = run_case("rar::center_of_mass", [&] { center = rar::center_of_mass(a); });
    const bool valid = valid_pair(a, b) && a.dim() >= 2;
    CHECK((o == Outcome::ok) == valid);
    if (o != Outcome::ok) continue;
    ++ok;
    REQUIRE(oc == Outcome::ok);
    check_metric_result(shift, a.size(0));
    // The grid: [N, D] is 1-D, [N, H, W] 2-D, [N, C, d1, ...] sums the channels C.
    const std::vector<int64_t> grid(a.sizes().begin() + (a.dim() >= 4 ? 2 : 1), a.sizes().end());
    double diagonal2 = 0;
    for (int64_t d : grid) diagonal2 += static_cast<double>((d - 1) * (d - 1));
    REQUIRE(center.sizes() == torch::IntArrayRef({a.size(0), static_cast<int64_t>(grid.size())}));
    CHECK(center.scalar_type() == a.scalar_type());
    const torch::Tensor cc = center.detach().cpu().to(torch::kDouble);
    for (int64_t n = 0; n < a.size(0); ++n) {
      CAPTURE(n);
      INFO("center " << cc[n] << " of sample " << a[n]);
      const double v = shift[n].item<double>();
      CHECK((std::isnan(v) || (v >= 0 && v <= std::sqrt(diagonal2) + 1e-9)));
      const auto x = sample(a, n), y = sample(b, n);
      for (size_t j = 0; j < grid.size(); ++j) {
        const double p = cc[n][static_cast<int64_t>(j)].item<double>();
        // float32 maps: the center is a float32 ratio, within rounding of the grid.
        CHECK((std::isnan(p) || (p >= -1e-4 && p <= static_cast<double>(grid[j] - 1) + 1e-4)));
      }
      // The shift is computed in float64: finite, nonzero masses have a center; an all-zero
      // map has none.
      if (finite_mass(x) && finite_mass(y)) CHECK(!std::isnan(v));
      if (all_zero(x) || all_zero(y)) CHECK(std::isnan(v));
    }
  }
  CHECK(ok > 100);
}

TEST_CASE("fuzz: Eigen kendall_tau and spearman_rho match brute force or throw "
          "std::invalid_argument",
          "[metrics][fuzz]") {
  Rng rng = fuzz_rng(99);
  int ok = 0;
  for (int c = 0; c < 500; ++c) {
    const int64_t n =
        uniform_int(rng, 0, 40) < 3 ? uniform_int(rng, 0, 1) : uniform_int(rng, 2, 60);
    const int64_t m = coin(rng, 0.1) ? uniform_int(rng, 0, 60) : n;
    const bool specials = coin(rng, 0.4);
    Eigen::VectorXd a(n), b(m);
    for (Eigen::Index i = 0; i < n; ++i) a[i] = random_value(rng, specials);
    for (Eigen::Index i = 0; i < m; ++i) b[i] = random_value(rng, specials);
    if (n == m && coin(rng, 0.15)) b = coin(rng) ? a : Eigen::VectorXd(-a);
    CAPTURE(c, n, m);
    INFO("a = " << a.transpose() << "\nb = " << b.transpose());
    double tau = 0, rho = 0;
    const Outcome t = run_case("rar::kendall_tau", [&] { tau = rar::kendall_tau(a, b); });
    const Outcome s = run_case("rar::spearman_rho", [&] { rho = rar::spearman_rho(a, b); });
    const bool valid = n == m && n > 0;
    CHECK((t == Outcome::ok) == valid);
    CHECK((s == Outcome::ok) == valid);
    if (!valid) continue;
    ++ok;
    const std::vector<double> x(a.data(), a.data() + n), y(b.data(), b.data() + n);
    CHECK((std::isnan(tau) || (tau >= -1 && tau <= 1)));
    CHECK((std::isnan(rho) || (rho >= -1 && rho <= 1)));
    check_close(tau, kendall_reference(x, y), 1e-12);
    check_close(rho, spearman_reference(x, y), 1e-12);
  }
  CHECK(ok > 250);
  // Segments of larger vectors (Eigen::Ref without a copy).
  Eigen::VectorXd big(50);
  for (Eigen::Index i = 0; i < big.size(); ++i) big[i] = random_value(rng, false);
  const Eigen::VectorXd rev = big.reverse();
  const std::vector<double> x(big.data() + 3, big.data() + 23), y(rev.data() + 3, rev.data() + 23);
  CHECK(rar::kendall_tau(big.segment(3, 20), rev.segment(3, 20)) ==
        Approx(kendall_reference(x, y)).margin(1e-12));
  CHECK(rar::spearman_rho(big.segment(3, 20), rev.segment(3, 20)) ==
        Approx(spearman_reference(x, y)).margin(1e-12));
}

TEST_CASE("fuzz: metrics reject tensors on the meta device instead of computing on them",
          "[metrics][fuzz]") {
  // Meta tensors have shapes but no data: an error, never a crash or a bogus result.
  const torch::Tensor meta = torch::empty({2, 3, 4}, torch::TensorOptions().device(torch::kMeta));
  const torch::Tensor cpu = torch::rand({2, 3, 4});
  for (const auto& [x, y] : {std::pair{meta, cpu}, std::pair{cpu, meta}, std::pair{meta, meta}}) {
    CAPTURE(describe(x), describe(y));
    CHECK_THROWS_AS(rar::kendall_tau(x, y), c10::Error);
    CHECK_THROWS_AS(rar::spearman_rho(x, y), c10::Error);
    CHECK_THROWS_AS(rar::topk_intersection(x, y, 3), c10::Error);
    CHECK_THROWS_AS(rar::center_of_mass_shift(x, y), c10::Error);
  }
}

// Gaps the fuzz cases above found, fixed since; kept as regression tests.

TEST_CASE("metrics name themselves when given meta tensors", "[metrics][fuzz]") {
  // The error used to be LibTorch's "Cannot copy out of meta tensor; no data!", raised inside
  // detail::metric_rows after validation had passed.
  const torch::Tensor meta = torch::empty({2, 3, 4}, torch::TensorOptions().device(torch::kMeta));
  const torch::Tensor cpu = torch::rand({2, 3, 4});
  CHECK(run_case("rar::kendall_tau", [&] { rar::kendall_tau(meta, cpu); }) == Outcome::rejected);
  CHECK(run_case("rar::spearman_rho", [&] { rar::spearman_rho(cpu, meta); }) ==
        Outcome::rejected);
  CHECK(run_case("rar::topk_intersection", [&] { rar::topk_intersection(meta, meta, 3); }) ==
        Outcome::rejected);
  CHECK(run_case("rar::center_of_mass_shift", [&] { rar::center_of_mass_shift(meta, cpu); }) ==
        Outcome::rejected);
}

TEST_CASE("center_of_mass of float32 maps with huge values stays inside the grid",
          "[metrics][fuzz]") {
  // Σ p · |m| used to overflow float32 before the division by Σ |m| (fuzz case:
  // [0.257, 0, 3e38] gave inf instead of ~2).
  const torch::Tensor maps = torch::tensor({{0.25f, 0.0f, 3e38f}});
  const torch::Tensor c = rar::center_of_mass(maps);
  CHECK(c.item<double>() == Approx(2.0).margin(1e-6));
  CHECK(rar::center_of_mass(maps.to(torch::kDouble)).item<double>() == Approx(2.0).margin(1e-6));
}
