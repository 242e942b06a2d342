#pragma once
/// @file
/// Certified top-k robustness of a smoothed attribution map (Levine, Singla, Feizi,
/// "Certifiably Robust Interpretation in Deep Learning", 2019): the ℓ2 radius within which at
/// least a given share of the smoothed map's top-k features provably stays in its top-k.

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <rar/core/explainer.hpp>
#include <rar/core/random.hpp>
#include <rar/detail/arg.hpp>
#include <rar/detail/checks.hpp>
#include <vector>

namespace rar {

/// Options for `rar::certified_topk`.
///
/// Example:
/// @code
/// auto opts = rar::CertifiedTopKOptions().k(50).sigma(0.1).samples(200).overlap(0.5).target(y);
/// rar::CertifiedTopK c = rar::certified_topk(model, rar::explain::saliency(), x, opts);
/// double mean_radius = c.radius.mean().item<double>();
/// @endcode
struct CertifiedTopKOptions {
  /// The top-k set whose overlap is certified (1 ≤ k < features per sample).
  RAR_ARG(int64_t, k) = 50;
  /// Sparsification K: each noisy map becomes the indicator of its K largest features
  /// (0, the default: K = k). The smoothed map is the frequency with which a feature is among
  /// them.
  RAR_ARG(int64_t, sparsity) = 0;
  /// Standard deviation σ of the Gaussian noise (> 0), in input units.
  RAR_ARG(double, sigma) = 0.1;
  /// Noisy copies per input (≥ 1): more samples give tighter bounds and larger radii.
  RAR_ARG(int64_t, samples) = 100;
  /// The certified share q of the top-k set (0 < q ≤ 1): the radius reported is the largest
  /// within which at least ⌈q·k⌉ of the k features stay in the top-k.
  RAR_ARG(double, overlap) = 0.5;
  /// Probability α (0 < α < 1) that the certificate is wrong: the Clopper–Pearson bounds of all
  /// features hold together with probability ≥ 1 − α (Bonferroni over the features).
  RAR_ARG(double, alpha) = 0.001;
  /// Rank features by |a| (default) instead of a.
  RAR_ARG(bool, abs) = true;
  /// Class per sample, passed to the explainer (int64 `[N]` or 0-dim; undefined: the
  /// explainer's own).
  RAR_ARG(torch::Tensor, target);
  /// Noisy copies per explainer call (≥ 0); 0 (the default): all N·samples in one call.
  RAR_ARG(int64_t, batch_samples) = 0;
  /// Seed of the noise.
  RAR_ARG(uint64_t, seed) = 0;
};

/// The certificate of each sample.
///
/// Example:
/// @code
/// rar::CertifiedTopK c = rar::certified_topk(model, explainer, x, opts);
/// // c.radius[n]: at least ⌈q·k⌉ of c.topk[n] stay in the top-k within this ℓ2 radius
/// // c.radii[n][c − 1]: the radius for c features, c = 1..k (non-increasing)
/// @endcode
struct CertifiedTopK {
  /// float64 `[N]`: the certified ℓ2 radius for the options' overlap (0: none).
  torch::Tensor radius;
  /// float64 `[N, k]`: the certified radius for at least c of the k features, c = 1..k.
  torch::Tensor radii;
  /// float64 `[N, ...]` (the input's shape): the estimated smoothed map p̂, in [0, 1].
  torch::Tensor smoothed;
  /// int64 `[N, k]`: the top-k features of p̂ (flat indices), most frequent first.
  torch::Tensor topk;
};

namespace detail {

/// ln Γ-based continued fraction of the regularized incomplete beta function (modified Lentz).
inline double incomplete_beta_fraction(double a, double b, double x) {
  const double tiny = 1e-300;
  double c = 1.0, d = 1.0 - (a + b) * x / (a + 1.0);
  if (std::abs(d) < tiny) d = tiny;
  d = 1.0 / d;
  double h = d;
  for (int m = 1; m <= 1000; ++m) {
    const double m2 = 2.0 * m;
    double aa = m * (b - m) * x / ((a + m2 - 1.0) * (a + m2));
    d = 1.0 + aa * d;
    if (std::abs(d) < tiny) d = tiny;
    c = 1.0 + aa / c;
    if (std::abs(c) < tiny) c = tiny;
    d = 1.0 / d;
    h *= d * c;
    aa = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1.0));
    d = 1.0 + aa * d;
    if (std::abs(d) < tiny) d = tiny;
    c = 1.0 + aa / c;
    if (std::abs(c) < tiny) c = tiny;
    d = 1.0 / d;
    const double delta = d * c;
    h *= delta;
    if (std::abs(delta - 1.0) < 1e-16) break;
  }
  return h;
}

/// The regularized incomplete beta function I_x(a, b), a, b > 0, x in [0, 1].
inline double regularized_incomplete_beta(double a, double b, double x) {
  if (x <= 0.0) return 0.0;
  if (x >= 1.0) return 1.0;
  const double front = std::exp(std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) +
                                a * std::log(x) + b * std::log1p(-x));
  if (x < (a + 1.0) / (a + b + 2.0)) return front * incomplete_beta_fraction(a, b, x) / a;
  return 1.0 - front * incomplete_beta_fraction(b, a, 1.0 - x) / b;
}

/// The p-quantile of the Beta(a, b) distribution, by bisection on I_x(a, b) (to 1e-15).
inline double beta_quantile(double p, double a, double b) {
  double lo = 0.0, hi = 1.0;
  for (int i = 0; i < 200 && hi - lo > 1e-16; ++i) {
    const double mid = 0.5 * (lo + hi);
    (regularized_incomplete_beta(a, b, mid) < p ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

/// Φ⁻¹(p), the standard normal quantile, by bisection on Φ (erfc) then one Newton step.
inline double normal_quantile(double p) {
  if (p <= 0.0) return -std::numeric_limits<double>::infinity();
  if (p >= 1.0) return std::numeric_limits<double>::infinity();
  const auto cdf = [](double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); };
  double lo = -40.0, hi = 40.0;
  for (int i = 0; i < 200 && hi - lo > 1e-15; ++i) {
    const double mid = 0.5 * (lo + hi);
    (cdf(mid) < p ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

}  // namespace detail

/// Clopper–Pearson bounds of a binomial proportion: with probability ≥ 1 − α the success
/// probability of `successes` out of `trials` lies in [lower, upper] (each tail α/2).
///
/// lower = Beta⁻¹(α/2; x, n − x + 1) (0 when x = 0), upper = Beta⁻¹(1 − α/2; x + 1, n − x)
/// (1 when x = n). The same numbers as `scipy.stats.beta.ppf` (and statsmodels'
/// `proportion_confint(method="beta")`).
///
/// Example: `auto [lo, hi] = rar::clopper_pearson(7, 10, 0.05);  // 0.3475, 0.9333`
/// @param successes x, 0 ≤ x ≤ n
/// @param trials n ≥ 1
/// @param alpha 0 < α < 1
/// @return {lower, upper}
inline std::pair<double, double> clopper_pearson(int64_t successes, int64_t trials, double alpha) {
  TORCH_CHECK(trials >= 1 && successes >= 0 && successes <= trials,
              "rar::clopper_pearson: needs 0 <= successes <= trials and trials >= 1, got ",
              successes, " of ", trials);
  TORCH_CHECK(alpha > 0 && alpha < 1, "rar::clopper_pearson: alpha must be in (0, 1), got ", alpha);
  const double x = static_cast<double>(successes), n = static_cast<double>(trials);
  const double lower = successes == 0 ? 0.0 : detail::beta_quantile(alpha / 2, x, n - x + 1);
  const double upper =
      successes == trials ? 1.0 : detail::beta_quantile(1 - alpha / 2, x + 1, n - x);
  return {lower, upper};
}

/// Certified top-k robustness of the sparsified, Gaussian-smoothed map of any explainer.
///
/// The map (Levine, Singla and Feizi's Sparsified SmoothGrad, with any explainer as the base):
/// each of S noisy copies x + ε_s, ε_s ∼ N(0, σ²I), is explained, the K largest features of
/// each map (by |a| with `abs`) are set to 1 and the rest to 0, and p̂_i = (1/S) Σ_s 1[i in the
/// top-K of a(x + ε_s)] estimates p_i(x) = P(i in the top-K of a(x + ε)).
///
/// The certificate: for any h: ℝᵈ → [0, 1], Φ⁻¹(E h(x + ε)) is 1/σ-Lipschitz in x (the Gaussian
/// smoothing lemma of Levine et al., Salman et al. 2019), so for ‖δ‖₂ ≤ r
/// Φ⁻¹(p_i(x + δ)) ≥ Φ⁻¹(p_i(x)) − r/σ and Φ⁻¹(p_j(x + δ)) ≤ Φ⁻¹(p_j(x)) + r/σ. A feature i of
/// the reported top-k stays in the top-k of p(x + δ) when fewer than k others can reach it:
/// with z_i = Φ⁻¹(lower_i) and u_j = Φ⁻¹(upper_j) from simultaneous Clopper–Pearson bounds
/// (level α/d per feature), i is certified up to r_i = σ (z_i − h_i) / 2, where h_i is the k-th
/// largest u_j over j ≠ i. At least c of the k features stay within radius `radii[c − 1]`, the
/// c-th largest r_i (0 when negative: not certified), and `radius` is that for c = ⌈q·k⌉.
/// Where the certificate's premise (the bounds) holds, which is with probability ≥ 1 − α, no
/// perturbation of ℓ2 norm below the radius can take more than k − c of the features out of the
/// smoothed map's top-k. The radius grows with σ (for a map that does not change with σ), with
/// the samples (tighter bounds) and with the map's margin between its top-k and the rest.
///
/// Cost: one explainer call over the N·S noisy copies (in chunks of `batch_samples`).
///
/// Example:
/// @code
/// auto c = rar::certified_topk(model, rar::explain::saliency(), x,
///                              rar::CertifiedTopKOptions().k(20).sigma(0.2).samples(500).target(y));
/// @endcode
/// @param model any model the explainer accepts
/// @param explainer an explainer (see core/explainer.hpp), e.g. `rar::explain::saliency()`
/// @param input batch `[N, ...]`, float32 or float64
/// @param options k, sparsity, sigma, samples, overlap, alpha, abs, target, batch_samples, seed
/// @return radius `[N]`, radii `[N, k]`, the smoothed map and its top-k
template <class Model, class Explainer>
CertifiedTopK certified_topk(Model&& model, Explainer&& explainer, const torch::Tensor& input,
                             const CertifiedTopKOptions& options = {}) {
  const char* fn = "rar::certified_topk";
  detail::check_input(fn, "input", input);
  const int64_t n = input.size(0), d = input.numel() / std::max<int64_t>(n, 1);
  const int64_t k = options.k(), big_k = options.sparsity() > 0 ? options.sparsity() : k;
  TORCH_CHECK(k >= 1 && k < d, fn, ": k must be in [1, features) = [1, ", d, "), got ", k);
  TORCH_CHECK(options.sparsity() >= 0 && big_k <= d, fn,
              ": sparsity must be in [0, features] = [0, ", d, "] (0 = k), got ",
              options.sparsity());
  TORCH_CHECK(std::isfinite(options.sigma()) && options.sigma() > 0, fn,
              ": sigma must be finite and > 0, got ", options.sigma());
  TORCH_CHECK(options.samples() >= 1, fn, ": samples must be >= 1, got ", options.samples());
  TORCH_CHECK(options.overlap() > 0 && options.overlap() <= 1, fn,
              ": overlap must be in (0, 1], got ", options.overlap());
  TORCH_CHECK(options.alpha() > 0 && options.alpha() < 1, fn, ": alpha must be in (0, 1), got ",
              options.alpha());
  TORCH_CHECK(options.batch_samples() >= 0, fn,
              ": batch_samples must be >= 0 (0 = all copies in one call), got ",
              options.batch_samples());
  const int64_t s = options.samples();
  const torch::Tensor target = detail::expand_target(fn, options.target(), n, input.device());

  // Counts of "in the top-K" per feature over the noisy copies, [N, d] int64.
  at::Generator gen = seeded_generator(options.seed());
  const torch::Tensor x = input.detach();
  torch::Tensor counts = torch::zeros({n, d}, torch::TensorOptions().dtype(torch::kLong));
  const int64_t chunk = options.batch_samples() > 0 ? options.batch_samples() : s;
  for (int64_t done = 0; done < s; done += chunk) {
    const int64_t c = std::min(chunk, s - done);
    // Rows n·c + j: sample n's j-th copy of this chunk.
    const torch::Tensor rows = x.repeat_interleave(c, 0);
    const torch::Tensor noisy = rows + options.sigma() * normal_like(gen, rows);
    const torch::Tensor t = target.defined() ? target.repeat_interleave(c) : target;
    torch::Tensor a = detail::call_explainer(fn, explainer, model, noisy, t, false).detach();
    TORCH_CHECK(a.defined() && a.numel() == noisy.numel(), fn,
                ": the explainer must return attributions of the input's shape ", noisy.sizes(),
                ", got ", a.defined() ? a.sizes() : torch::IntArrayRef{});
    a = a.reshape({n * c, d}).to(torch::kDouble);
    if (options.abs()) a = a.abs();
    const torch::Tensor top = std::get<1>(a.topk(big_k, 1));
    const torch::Tensor hits =
        torch::zeros({n * c, d}, torch::TensorOptions().dtype(torch::kLong).device(a.device()))
            .scatter_(1, top, 1);
    counts += hits.view({n, c, d}).sum(1).cpu();
  }

  // Clopper–Pearson bounds at level α/d per feature, mapped through Φ⁻¹: computed once per
  // distinct count.
  const torch::Tensor flat = counts.flatten();
  const torch::Tensor distinct = std::get<0>(at::_unique(flat, /*sorted=*/true));
  std::vector<double> z_lower(static_cast<size_t>(s + 1), 0.0),
      z_upper(static_cast<size_t>(s + 1), 0.0);
  const auto* count_values = distinct.template data_ptr<int64_t>();
  for (int64_t i = 0; i < distinct.numel(); ++i) {
    const int64_t x_count = count_values[i];
    const auto [lo, hi] = clopper_pearson(x_count, s, options.alpha() / static_cast<double>(d));
    z_lower[static_cast<size_t>(x_count)] = detail::normal_quantile(lo);
    z_upper[static_cast<size_t>(x_count)] = detail::normal_quantile(hi);
  }
  const torch::Tensor zl =
      torch::tensor(z_lower, torch::kDouble).index_select(0, flat).view({n, d});
  const torch::Tensor zu =
      torch::tensor(z_upper, torch::kDouble).index_select(0, flat).view({n, d});

  // The reported top-k: most frequent first, ties by index (a stable sort).
  const torch::Tensor order =
      std::get<1>(counts.sort(/*stable=*/true, /*dim=*/1, /*descending=*/true));
  const torch::Tensor topk = order.slice(1, 0, k).contiguous();
  // h_i: the k-th largest upper bound among j ≠ i, from the k + 1 largest upper bounds.
  const torch::Tensor best_upper = std::get<0>(zu.topk(k + 1, 1));  // [N, k + 1], descending
  const torch::Tensor kth = best_upper.select(1, k - 1), kth1 = best_upper.select(1, k);
  const torch::Tensor zu_top = zu.gather(1, topk), zl_top = zl.gather(1, topk);
  // i is among the k largest upper bounds iff zu_i ≥ the k-th largest; then h_i is the (k+1)-th.
  const torch::Tensor h =
      torch::where(zu_top >= kth.unsqueeze(1), kth1.unsqueeze(1), kth.unsqueeze(1));
  torch::Tensor r = (options.sigma() / 2.0) * (zl_top - h);
  r = torch::where(torch::isnan(r), torch::zeros_like(r), r).clamp_min(0.0);
  const torch::Tensor radii = std::get<0>(r.sort(1, /*descending=*/true)).contiguous();
  const int64_t c = std::max<int64_t>(
      1, static_cast<int64_t>(std::ceil(options.overlap() * static_cast<double>(k) - 1e-12)));

  CertifiedTopK result;
  result.radii = radii;
  result.radius = radii.select(1, c - 1).contiguous();
  result.smoothed =
      (counts.to(torch::kDouble) / static_cast<double>(s)).view(input.sizes()).contiguous();
  result.topk = topk;
  return result;
}

}  // namespace rar
