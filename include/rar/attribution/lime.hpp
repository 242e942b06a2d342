#pragma once
/// @file
/// LIME (Ribeiro, Singh, Guestrin, "'Why Should I Trust You?': Explaining the Predictions of Any
/// Classifier", KDD 2016) as Captum 0.7's `Lime`, and the machinery it shares with KernelSHAP
/// (`rar/attribution/kernel_shap.hpp`): interpretable features from a feature mask, the batched
/// evaluation of binary coalitions, and the weighted linear surrogate fitted with Eigen.
///
/// A coalition z ∈ {0, 1}^M switches the M interpretable features on (the input's values) or
/// off (the baseline's values). The model's score is evaluated for S coalitions per sample, in
/// one batched forward over the N·S perturbed rows (chunked by the default batching rule
/// `rar::detail::for_each_row_chunk`) on the input's device; the regression of those S scores
/// on the coalitions runs per sample on the CPU in float64 (Eigen), and each element of the
/// input receives the coefficient of its feature.

#include <rar/core/batching.hpp>
#include <rar/core/model.hpp>
#include <rar/core/random.hpp>
#include <rar/core/score.hpp>
#include <rar/detail/arg.hpp>
#include <rar/detail/checks.hpp>

#include <Eigen/Dense>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace rar {

/// The interpretable linear model fitted to the coalitions' scores (all with an unpenalized
/// intercept, fitted by weighted centering as scikit-learn does; only the coefficients are
/// returned).
///
/// With sample weights w_s, coalitions z_s and scores y_s:
/// - `lasso`: minimizes (1 / (2 Σw)) Σ_s w_s (y_s − b − z_sᵀβ)² + α ‖β‖₁ (scikit-learn's `Lasso`
///   with `sample_weight`, Captum's `SkLearnLasso(alpha)`, the default of Captum's `Lime`),
///   solved to round-off: coordinate descent, then the linear system of its active set, accepted
///   when the optimality (KKT) conditions hold.
/// - `ridge`: minimizes Σ_s w_s (y_s − b − z_sᵀβ)² + α ‖β‖² (scikit-learn's `Ridge`, Captum's
///   `SkLearnRidge(alpha)`).
/// - `linear_regression`: weighted least squares, the minimum-norm solution when the coalitions
///   do not determine β (scikit-learn's `LinearRegression`, Captum's `SkLearnLinearRegression`,
///   what Captum's `KernelShap` uses); `alpha` is ignored.
///
/// Example: `rar::LimeOptions().surrogate(rar::LinearSurrogate::ridge).alpha(1.0)`.
enum class LinearSurrogate { lasso, ridge, linear_regression };

/// The distance LIME's exponential kernel is applied to (Captum's
/// `get_exp_kernel_similarity_function(distance_mode)`): `cosine` is 1 − cos(x, x') of the
/// flattened sample and its perturbation, `euclidean` is ‖x − x'‖₂.
///
/// Example: `rar::LimeOptions().distance(rar::LimeDistance::euclidean).kernel_width(3.0)`.
enum class LimeDistance { cosine, euclidean };

/// Options for `rar::lime`.
///
/// Defaults are Captum 0.7's `Lime(model).attribute(x, ...)`: 25 samples, baseline 0, every
/// element its own feature, exponential kernel of width 1 on the cosine distance, Lasso with
/// α = 0.01.
///
/// Example:
/// @code
/// torch::Tensor mask = (torch::arange(28).div(4, "floor").view({28, 1}) * 7 +
///                       torch::arange(28).div(4, "floor").view({1, 28})).view({1, 1, 28, 28});
/// auto opts = rar::LimeOptions().target(y).feature_mask(mask).samples(500).seed(3);
/// torch::Tensor a = rar::lime(model, images, opts);  // 49 superpixels of 4×4
/// @endcode
struct LimeOptions {
  /// Class per sample, int64 `[N]` or 0-dim; undefined: the model output must already be `[N]`.
  RAR_ARG(torch::Tensor, target);
  /// The values a feature takes when it is switched off. Undefined: zeros. A tensor that
  /// broadcasts to the input's shape, in the input's dtype and on its device, or one number
  /// (`baseline(0.5)`) for every element.
  RAR_ARG(torch::Tensor, baseline);
  /// Integer tensor broadcasting to the input's shape (e.g. `[1, 1, H, W]` shared by the batch
  /// and the channels, or `[N, ...]` one per sample) whose values name each element's
  /// interpretable feature. Undefined (Captum's default): every element of a sample is its own
  /// feature. As in Captum the values are shifted (with a warning) when their minimum is not 0,
  /// and there are max + 1 features (a value that no element has is a feature with no effect).
  RAR_ARG(torch::Tensor, feature_mask);
  /// Coalitions S drawn per sample (Captum's `n_samples`, default 25), ≥ 1.
  RAR_ARG(int64_t, samples) = 25;
  /// Seed of the coalitions (`rar::seeded_generator(seed, 0)`).
  RAR_ARG(uint64_t, seed) = 0;
  /// Rows of the N·S perturbed batch per forward (Captum's `perturbations_per_eval` × N);
  /// 0 = the default batching rule (`rar/core/batching.hpp`). Any value gives the same result.
  RAR_ARG(int64_t, internal_batch_size) = 0;
  /// Width σ of the similarity kernel exp(−d² / (2σ²)) (Captum's `kernel_width`), > 0.
  RAR_ARG(double, kernel_width) = 1.0;
  /// The distance d of the similarity kernel.
  RAR_ARG(LimeDistance, distance) = LimeDistance::cosine;
  /// The interpretable model (Captum's `interpretable_model`).
  RAR_ARG(LinearSurrogate, surrogate) = LinearSurrogate::lasso;
  /// The penalty α of `lasso` (> 0) and `ridge` (≥ 0).
  RAR_ARG(double, alpha) = 0.01;
  /// What is explained: a per-sample scalar `[N]` from (output, target).
  RAR_ARG(ScoreFunction, score) = score::logit;

 public:
  /// One baseline value for every element (Captum's scalar `baselines`).
  /// @param value the value of switched-off elements
  /// @return `*this`
  LimeOptions& baseline(double value) {
    baseline_ = torch::scalar_tensor(value, torch::kDouble);
    return *this;
  }
};

namespace detail {

/// Relative size below which a pivot of the least-squares decomposition counts as zero.
inline constexpr double kSurrogateRankTolerance = 1e-10;

/// Soft thresholding, the proximal step of the ℓ1 penalty.
inline double lasso_soft_threshold(double v, double t) {
  return v > t ? v - t : (v < -t ? v + t : 0.0);
}

/// Lasso ½‖b − Aβ‖² + α‖β‖₁ (A, b already centered and weighted) to round-off: cyclic coordinate
/// descent on the Gram matrix (scikit-learn's order), and every 25 sweeps the exact solution of
/// the current active set and signs, accepted when it satisfies the optimality conditions.
inline Eigen::VectorXd lasso_fit(const Eigen::MatrixXd& a, const Eigen::VectorXd& b, double alpha) {
  const Eigen::Index m = a.cols();
  const Eigen::MatrixXd g = a.transpose() * a;
  const Eigen::VectorXd c = a.transpose() * b;
  Eigen::VectorXd beta = Eigen::VectorXd::Zero(m);
  Eigen::VectorXd q = Eigen::VectorXd::Zero(m);  // g * beta
  const double scale = std::max({c.cwiseAbs().maxCoeff(), alpha, 1e-300});

  // The exact minimizer on the current active set with its signs, when it is optimal.
  auto polish = [&](Eigen::VectorXd& out) {
    std::vector<Eigen::Index> active;
    for (Eigen::Index j = 0; j < m; ++j)
      if (beta(j) != 0) active.push_back(j);
    const auto k = static_cast<Eigen::Index>(active.size());
    Eigen::VectorXd x = Eigen::VectorXd::Zero(k);
    if (k > 0) {
      Eigen::MatrixXd gaa(k, k);
      Eigen::VectorXd rhs(k);
      for (Eigen::Index i = 0; i < k; ++i) {
        for (Eigen::Index l = 0; l < k; ++l) gaa(i, l) = g(active[i], active[l]);
        rhs(i) = c(active[i]) - alpha * (beta(active[i]) > 0 ? 1.0 : -1.0);
      }
      x = gaa.ldlt().solve(rhs);
      for (Eigen::Index i = 0; i < k; ++i)
        if (!std::isfinite(x(i)) || (x(i) > 0) != (beta(active[i]) > 0) || x(i) == 0) return false;
    }
    out = Eigen::VectorXd::Zero(m);
    for (Eigen::Index i = 0; i < k; ++i) out(active[i]) = x(i);
    // Optimality: gradient_j = alpha sign(beta_j) on the active set, |gradient_j| <= alpha off it.
    const Eigen::VectorXd gradient = c - g * out;
    for (Eigen::Index j = 0; j < m; ++j) {
      const double bound = out(j) == 0 ? std::abs(gradient(j)) - alpha
                                       : std::abs(gradient(j) - alpha * (out(j) > 0 ? 1 : -1));
      if (bound > 1e-9 * scale) return false;
    }
    return true;
  };

  constexpr int kMaxSweeps = 100000;
  Eigen::VectorXd polished;
  for (int sweep = 1; sweep <= kMaxSweeps; ++sweep) {
    double change = 0, largest = 0;
    for (Eigen::Index j = 0; j < m; ++j) {
      const double gjj = g(j, j);
      if (!(gjj > 0)) continue;  // a feature that is constant over the coalitions
      const double rho = c(j) - (q(j) - gjj * beta(j));
      const double next = lasso_soft_threshold(rho, alpha) / gjj;
      const double d = next - beta(j);
      if (d != 0) {
        q.noalias() += g.col(j) * d;
        beta(j) = next;
      }
      change = std::max(change, std::abs(d));
      largest = std::max(largest, std::abs(next));
    }
    const bool settled = change <= 1e-9 * largest;
    if ((settled || sweep % 25 == 0) && polish(polished)) return polished;
    if (change <= 1e-15 * largest) break;
  }
  return beta;
}

/// The weighted linear fit of LIME and KernelSHAP: regresses `y` `[S]` on the coalitions `z`
/// `[S, M]` with sample weights `w` `[S]` (> 0 in sum) and returns the coefficients `[M]`
/// (and the intercept in `intercept` when given), computed in float64 as scikit-learn defines
/// each model (see `rar::LinearSurrogate`).
///
/// Example:
/// @code
/// Eigen::VectorXd beta = rar::detail::fit_linear_surrogate(
///     z, y, w, rar::LinearSurrogate::linear_regression, 0.0);
/// @endcode
inline Eigen::VectorXd fit_linear_surrogate(const Eigen::Ref<const Eigen::MatrixXd>& z,
                                            const Eigen::Ref<const Eigen::VectorXd>& y,
                                            const Eigen::Ref<const Eigen::VectorXd>& w,
                                            LinearSurrogate kind, double alpha,
                                            double* intercept = nullptr) {
  TORCH_CHECK(y.size() == z.rows() && w.size() == z.rows(),
              "rar::detail::fit_linear_surrogate: z has ", z.rows(), " rows but y has ", y.size(),
              " and w ", w.size());
  const double wsum = w.sum();
  TORCH_CHECK(wsum > 0 && (w.array() >= 0).all(),
              "rar::detail::fit_linear_surrogate: the weights must be >= 0 with a positive sum, "
              "got sum ", wsum);
  const Eigen::RowVectorXd zbar = (w.transpose() * z) / wsum;
  const double ybar = w.dot(y) / wsum;
  const Eigen::VectorXd sw = w.cwiseSqrt();
  const Eigen::MatrixXd a = sw.asDiagonal() * (z.rowwise() - zbar);
  const Eigen::VectorXd b = sw.cwiseProduct((y.array() - ybar).matrix());
  Eigen::VectorXd beta;
  if (kind == LinearSurrogate::lasso) {
    const double norm = 1.0 / std::sqrt(wsum);
    beta = lasso_fit(a * norm, b * norm, alpha);
  } else if (kind == LinearSurrogate::ridge && alpha > 0) {
    Eigen::MatrixXd gram = a.transpose() * a;
    gram.diagonal().array() += alpha;
    beta = gram.ldlt().solve(a.transpose() * b);
  } else {
    Eigen::CompleteOrthogonalDecomposition<Eigen::MatrixXd> cod;
    cod.setThreshold(kSurrogateRankTolerance);
    cod.compute(a);
    beta = cod.solve(b);
  }
  if (intercept != nullptr) *intercept = ybar - zbar.dot(beta);
  return beta;
}

/// Interpretable features: the mask as int64 `[N, D]` on the input's device (D elements per
/// sample, values in [0, count)) and the number of features.
struct InterpretableFeatures {
  torch::Tensor mask;  ///< int64 `[N, D]`: the feature of each element of each sample
  int64_t count = 0;   ///< the number of features M (max + 1 of the shifted mask)
};

/// Validates `feature_mask` against `input` and returns it expanded to `[N, D]` (undefined:
/// element d of every sample is feature d). Values are shifted to start at 0, as Captum does.
inline InterpretableFeatures interpretable_features(const char* fn,
                                                    const torch::Tensor& feature_mask,
                                                    const torch::Tensor& input) {
  const int64_t n = input.size(0);
  const int64_t d = input.numel() / n;
  InterpretableFeatures f;
  if (!feature_mask.defined()) {
    f.mask = torch::arange(d, input.options().dtype(torch::kLong)).expand({n, d});
    f.count = d;
    return f;
  }
  TORCH_CHECK(!c10::isFloatingType(feature_mask.scalar_type()) &&
                  !c10::isComplexType(feature_mask.scalar_type()) &&
                  feature_mask.scalar_type() != torch::kBool,
              fn, ": feature_mask must be an integer tensor, got ", feature_mask.scalar_type());
  TORCH_CHECK(feature_mask.device() == input.device(), fn,
              ": feature_mask must be on the input's device ", input.device(), ", got ",
              feature_mask.device());
  bool ok = feature_mask.dim() <= input.dim() && feature_mask.numel() > 0;
  for (int64_t i = 1; ok && i <= feature_mask.dim(); ++i) {
    const int64_t b = feature_mask.size(-i);
    ok = b == 1 || b == input.size(-i);
  }
  TORCH_CHECK(ok, fn, ": feature_mask of shape ", feature_mask.sizes(),
              " does not broadcast to the input's shape ", input.sizes());
  torch::Tensor mask = feature_mask.to(torch::kLong);
  const int64_t low = mask.min().item<int64_t>();
  const int64_t high = mask.max().item<int64_t>();
  if (low != 0) {
    TORCH_WARN(fn, ": the smallest value of feature_mask is ", low,
               ", not 0; shifting the feature indices to start at 0 (as Captum does)");
    mask = mask - low;
  }
  f.count = high - low + 1;
  f.mask = mask.expand(input.sizes()).reshape({n, d});
  return f;
}

/// The baseline (undefined: zeros; 0-dim: one value) broadcast to the input's shape; NaN and
/// infinite values are refused.
inline torch::Tensor coalition_baseline(const char* fn, const torch::Tensor& baseline,
                                        const torch::Tensor& input) {
  if (baseline.defined() && baseline.dim() == 0) {
    check_finite(fn, "baseline", baseline);
    return baseline.to(input.options()).expand(input.sizes());
  }
  return expand_baseline(fn, baseline, input);
}

/// Scores of the coalitions and, for LIME, the distance of each perturbed row to its sample.
struct CoalitionScores {
  torch::Tensor scores;     ///< float64 `[N, S]`, CPU
  torch::Tensor distances;  ///< float64 `[N, S]`, CPU (undefined unless asked for)
};

/// Evaluates `score(model(x'), target)` for every coalition: row (n, s) of the perturbed batch
/// is x'_n = where(z[n, s, mask[n]], x_n, baseline_n). The N·S rows are built chunk by chunk on
/// the input's device and run through the model in the chunks of the default batching rule (or
/// of `internal_batch_size`), without autograd.
template <class Model>
CoalitionScores evaluate_coalitions(const char* fn, Model& model, const torch::Tensor& input,
                                    const torch::Tensor& baseline,
                                    const InterpretableFeatures& features,
                                    const torch::Tensor& coalitions, const torch::Tensor& target,
                                    const ScoreFunction& score, int64_t internal_batch_size,
                                    const LimeDistance* distance) {
  torch::NoGradGuard no_grad;
  const int64_t n = input.size(0);
  const int64_t s = coalitions.size(1);
  const int64_t d = input.numel() / n;
  const torch::Tensor x = input.reshape({n, d});
  const torch::Tensor b = baseline.reshape({n, d});
  const torch::Tensor z = coalitions.to(input.device(), torch::kBool).reshape({n * s, -1});
  torch::Tensor x_norm;
  if (distance != nullptr && *distance == LimeDistance::cosine)
    x_norm = x.to(torch::kDouble).norm(2, {1}).clamp_min(1e-8);
  std::vector<int64_t> row_shape(input.sizes().begin(), input.sizes().end());
  std::vector<torch::Tensor> scores, distances;
  const int64_t row_bytes = d * static_cast<int64_t>(input.element_size());
  for_each_row_chunk(n * s, internal_batch_size, input.device(), row_bytes,
                     [&](int64_t start, int64_t stop) {
    const torch::Tensor sample =
        torch::arange(start, stop, input.options().dtype(torch::kLong)).div(s, "floor");
    const torch::Tensor on =
        z.slice(0, start, stop).gather(1, features.mask.index_select(0, sample));
    const torch::Tensor xs = x.index_select(0, sample);
    const torch::Tensor rows = torch::where(on, xs, b.index_select(0, sample));
    row_shape[0] = stop - start;
    const torch::Tensor out = in_user_terms(
        fn, model, input, [&] { return call_model(model, rows.view(row_shape)); }, [&] {
          return "a batch of " + std::to_string(stop - start) + " sampled coalitions (" +
                 std::to_string(n) + " samples x " + std::to_string(s) + " coalitions each)";
        });
    const torch::Tensor t = target.defined() ? target.index_select(0, sample) : target;
    const torch::Tensor v = score(out, t);
    TORCH_CHECK(v.dim() == 1 && v.size(0) == stop - start, fn,
                ": the score function must return one value per sample, shape [", stop - start,
                "], got ", v.sizes());
    torch::Tensor dist;
    if (distance != nullptr) {
      const torch::Tensor xd = xs.to(torch::kDouble), rd = rows.to(torch::kDouble);
      if (*distance == LimeDistance::cosine) {
        const torch::Tensor cosine = (xd * rd).sum(1) / (x_norm.index_select(0, sample) *
                                                         rd.norm(2, {1}).clamp_min(1e-8));
        dist = 1.0 - cosine;
      } else {
        dist = (xd - rd).norm(2, {1});
      }
    }
    scores.push_back(v.detach().to(torch::kCPU, torch::kDouble));
    if (dist.defined()) distances.push_back(dist.to(torch::kCPU));
  });
  CoalitionScores result;
  result.scores = torch::cat(scores).view({n, s});
  if (distance != nullptr) result.distances = torch::cat(distances).view({n, s});
  return result;
}

/// Fits the surrogate of every sample (coalitions `[N, S, M]`, scores and weights `[N, S]`, all
/// float64 on the CPU) and spreads the coefficients over the elements: the attributions in the
/// input's shape, dtype and device.
inline torch::Tensor surrogate_attributions(const torch::Tensor& input,
                                            const InterpretableFeatures& features,
                                            const torch::Tensor& coalitions,
                                            const torch::Tensor& scores,
                                            const torch::Tensor& weights, LinearSurrogate kind,
                                            double alpha) {
  using RowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const int64_t n = coalitions.size(0), s = coalitions.size(1), m = coalitions.size(2);
  const torch::Tensor z = coalitions.to(torch::kDouble).contiguous();
  const torch::Tensor y = scores.contiguous();
  const torch::Tensor w = weights.contiguous();
  torch::Tensor coefficients = torch::empty({n, m}, torch::kDouble);
  for (int64_t i = 0; i < n; ++i) {
    const Eigen::Map<const RowMajor> zi(z.data_ptr<double>() + i * s * m, s, m);
    const Eigen::Map<const Eigen::VectorXd> yi(y.data_ptr<double>() + i * s, s);
    const Eigen::Map<const Eigen::VectorXd> wi(w.data_ptr<double>() + i * s, s);
    Eigen::Map<Eigen::VectorXd>(coefficients.data_ptr<double>() + i * m, m) =
        fit_linear_surrogate(zi, yi, wi, kind, alpha);
  }
  return coefficients.to(input.options())
      .gather(1, features.mask)
      .view(input.sizes());
}

/// Validation shared by `rar::lime` and `rar::kernel_shap`.
inline void check_coalition_options(const char* fn, const torch::Tensor& input, int64_t samples,
                                    int64_t min_samples, int64_t internal_batch_size,
                                    const ScoreFunction& score) {
  check_input(fn, "input", input);
  TORCH_CHECK(samples >= min_samples, fn, ": samples must be >= ", min_samples, ", got ",
              samples);
  rar::detail::check_batching(fn, "internal_batch_size", internal_batch_size);
  rar::detail::check_callable(fn, "score", score);
}

/// Checks a user's coalitions `[N, S, M]` of 0/1 values.
inline void check_coalitions(const char* fn, const torch::Tensor& coalitions, int64_t n,
                             int64_t m) {
  TORCH_CHECK(coalitions.defined() && coalitions.dim() == 3 && coalitions.size(0) == n &&
                  coalitions.size(1) >= 1 && coalitions.size(2) == m,
              fn, ": coalitions must have shape [", n, ", S, ", m, "] (N samples, S >= 1, M "
              "features), got ", coalitions.defined() ? coalitions.sizes() : c10::IntArrayRef{});
  const torch::Tensor zd = coalitions.to(torch::kCPU, torch::kDouble);
  TORCH_CHECK(((zd == 0) | (zd == 1)).all().item<bool>(), fn,
              ": coalitions must contain only 0 and 1");
}

/// LIME's weights exp(−d² / (2σ²)) `[N, S]` from the distances.
inline torch::Tensor lime_weights(const torch::Tensor& distances, double kernel_width) {
  return torch::exp(-distances.square() / (2.0 * kernel_width * kernel_width));
}

/// Validates LIME's options (with `samples` coalitions per sample).
inline void check_lime_options(const char* fn, const torch::Tensor& input, int64_t samples,
                               const LimeOptions& options) {
  check_coalition_options(fn, input, samples, 1, options.internal_batch_size(), options.score());
  TORCH_CHECK(options.kernel_width() > 0 && std::isfinite(options.kernel_width()), fn,
              ": kernel_width must be a positive number, got ", options.kernel_width());
  TORCH_CHECK(options.alpha() >= 0 && std::isfinite(options.alpha()), fn,
              ": alpha must be >= 0, got ", options.alpha());
  TORCH_CHECK(options.surrogate() != LinearSurrogate::lasso || options.alpha() > 0, fn,
              ": the lasso surrogate needs alpha > 0 (use LinearSurrogate::linear_regression "
              "for an unpenalized fit), got alpha = ", options.alpha());
}

/// LIME once the options are validated and the coalitions `[N, S, M]` drawn.
template <class Model>
torch::Tensor lime_core(const char* fn, Model& model, const torch::Tensor& input,
                        const InterpretableFeatures& features, const torch::Tensor& coalitions,
                        const LimeOptions& options) {
  const torch::Tensor baseline = coalition_baseline(fn, options.baseline(), input);
  const torch::Tensor target =
      expand_target(fn, options.target(), input.size(0), input.device());
  const LimeDistance distance = options.distance();
  const auto evaluated =
      evaluate_coalitions(fn, model, input, baseline, features, coalitions, target,
                          options.score(), options.internal_batch_size(), &distance);
  return surrogate_attributions(input, features, coalitions.to(torch::kCPU), evaluated.scores,
                                lime_weights(evaluated.distances, options.kernel_width()),
                                options.surrogate(), options.alpha());
}

/// LIME on given coalitions `[N, S, M]` (0/1, any dtype and device): what `rar::lime` computes
/// after drawing them. Exposed so that results can be compared with Captum's on the coalitions
/// Captum drew.
template <class Model>
torch::Tensor lime_on_coalitions(Model&& model, const torch::Tensor& input,
                                 const torch::Tensor& coalitions, const LimeOptions& options) {
  static_check_model<Model>();
  const char* fn = "rar::lime";
  check_lime_options(fn, input, 1, options);
  const auto features = interpretable_features(fn, options.feature_mask(), input);
  check_coalitions(fn, coalitions, input.size(0), features.count);
  return lime_core(fn, model, input, features, coalitions, options);
}

}  // namespace detail

/// LIME: per sample, a weighted linear model of the score on S random coalitions of the
/// interpretable features; each element's attribution is its feature's coefficient.
///
/// For each sample x (baseline x'), S coalitions z ∈ {0, 1}^M are drawn uniformly (each feature
/// on with probability ½, Captum's default `perturb_func`), the perturbed inputs
/// x(z) = z[mask] ? x : x' are scored, weighted by π(z) = exp(−d(x, x(z))² / (2σ²)), and the
/// surrogate (default Lasso, α = 0.01) is fitted to (z, score(x(z))). Matches Captum 0.7's
/// `Lime(model).attribute(x, baselines, target, feature_mask=mask, n_samples=S)` (whose
/// coalitions come from torch's global generator, so results agree in distribution; on the same
/// coalitions they agree to float64 round-off, see docs). Costs one forward over N·S rows,
/// batched on the input's device, plus N small regressions on the CPU in float64. Does not
/// change the model's mode, flags or parameter gradients; the result is not differentiable.
///
/// The coalitions are drawn from `rar::seeded_generator(seed)` on the CPU: all N·S·M uniform
/// numbers u at once (sample-major), z = u < ½, so a seed gives the same result on every device.
///
/// Example:
/// @code
/// torch::Tensor a = rar::lime(model, x, rar::LimeOptions().target(y).samples(200));
/// @endcode
/// @param model any model
/// @param input batch `[N, ...]`, float32 or float64, on any device
/// @param options target, baseline, feature_mask, samples, seed, internal_batch_size,
///        kernel_width, distance, surrogate, alpha, score
/// @return attributions with the shape, dtype and device of `input`
template <class Model>
torch::Tensor lime(Model&& model, const torch::Tensor& input, const LimeOptions& options = {}) {
  detail::static_check_model<Model>();
  const char* fn = "rar::lime";
  detail::check_lime_options(fn, input, options.samples(), options);
  const auto features = detail::interpretable_features(fn, options.feature_mask(), input);
  at::Generator gen = seeded_generator(options.seed());
  const torch::Tensor coalitions =
      torch::rand({input.size(0), options.samples(), features.count}, gen,
                  torch::TensorOptions().dtype(torch::kDouble)) < 0.5;
  return detail::lime_core(fn, model, input, features, coalitions, options);
}

}  // namespace rar
