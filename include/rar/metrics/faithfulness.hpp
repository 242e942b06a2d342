#pragma once
/// @file
/// Faithfulness metrics of explanations, following Quantus
/// (understandable-machine-intelligence-lab/ Quantus, `quantus/metrics/faithfulness/*.py`,
/// `axiomatic/completeness.py`, `randomisation/random_logit.py`): faithfulness correlation (Bhatt
/// et al. 2020), faithfulness estimate (Alvarez-Melis & Jaakkola 2018), monotonicity correlation
/// (Nguyen & Martínez 2020), ROAD with noisy linear imputation (Rong et al. 2022), completeness
/// (Sundararajan et al. 2017) and the random-logit test (Sixt et al. 2020) with its SSIM.
///
/// Every metric takes a batch `[N, ...]` and returns float64 values per sample on the CPU. The
/// perturbed inputs of a batch are built chunk by chunk and evaluated in chunked forwards under the
/// default batching rule (`rar::detail::for_each_row_chunk`; `internal_batch_size` overrides it),
/// on the input's device, without gradients. Random draws come from the stream (seed, 0)
/// (`rar::seeded_generator`), and every metric also takes its draws explicitly, so that a result
/// can be reproduced outside rar. docs/metrics-faithfulness.md explains each metric next to its
/// source.

#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <rar/core/batching.hpp>
#include <rar/core/explainer.hpp>
#include <rar/core/model.hpp>
#include <rar/core/random.hpp>
#include <rar/core/score.hpp>
#include <rar/detail/arg.hpp>
#include <rar/detail/checks.hpp>
#include <rar/metrics/batched_rank_correlation.hpp>
#include <rar/metrics/quality.hpp>  // explain_for_metric, check_attributions, enable_if_method_t
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace rar {

/// The value that Quantus' `perturb_baseline` gives the perturbed features of a sample: the
/// sample's smallest value ("black", Quantus' default), its largest ("white"), its mean, one value
/// drawn uniformly from [low, high) per perturbed copy ("uniform"), or a fixed number.
///
/// Example:
/// @code
/// auto opts =
/// rar::FaithfulnessCorrelationOptions().perturb_baseline(rar::PerturbBaseline::mean()); auto mono
/// = rar::MonotonicityCorrelationOptions().perturb_baseline(
///     rar::PerturbBaseline::uniform(0.0, 1.0));   // Quantus' default for this metric
/// @endcode
class PerturbBaseline {
 public:
  /// What the baseline is.
  enum class Kind {
    black,    ///< the sample's minimum over all its features
    white,    ///< the sample's maximum
    mean,     ///< the sample's mean
    uniform,  ///< U[low, high), one draw per perturbed copy of the sample
    value     ///< a fixed number
  };
  /// The sample's minimum (Quantus' "black").
  /// @return the baseline
  static PerturbBaseline black() { return PerturbBaseline(Kind::black, 0, 0); }
  /// The sample's maximum (Quantus' "white").
  /// @return the baseline
  static PerturbBaseline white() { return PerturbBaseline(Kind::white, 0, 0); }
  /// The sample's mean (Quantus' "mean").
  /// @return the baseline
  static PerturbBaseline mean() { return PerturbBaseline(Kind::mean, 0, 0); }
  /// One value from U[low, high) per perturbed copy (Quantus' "uniform", with its `uniform_low`
  /// and `uniform_high`).
  /// @param low lower end (finite)
  /// @param high upper end (finite, ≥ low)
  /// @return the baseline
  static PerturbBaseline uniform(double low = 0.0, double high = 1.0) {
    return PerturbBaseline(Kind::uniform, low, high);
  }
  /// A fixed number (Quantus' numeric `perturb_baseline`).
  /// @param v the value (finite)
  /// @return the baseline
  static PerturbBaseline value(double v) { return PerturbBaseline(Kind::value, v, v); }
  /// The kind of baseline.
  /// @return the kind
  Kind kind() const noexcept { return kind_; }
  /// The lower end of `uniform`, or the number of `value`.
  /// @return the lower end
  double low() const noexcept { return low_; }
  /// The upper end of `uniform`, or the number of `value`.
  /// @return the upper end
  double high() const noexcept { return high_; }
  /// True for `uniform`: the baseline is drawn.
  /// @return whether the baseline is random
  bool random() const noexcept { return kind_ == Kind::uniform; }

 private:
  PerturbBaseline(Kind kind, double low, double high) : kind_(kind), low_(low), high_(high) {}
  Kind kind_;
  double low_, high_;
};

namespace detail {

/// Checks a `PerturbBaseline`: finite numbers, low ≤ high.
inline void check_perturb_baseline(const char* fn, const PerturbBaseline& b) {
  TORCH_CHECK(std::isfinite(b.low()) && std::isfinite(b.high()) && b.low() <= b.high(), fn,
              ": perturb_baseline needs finite values with low <= high, got low = ", b.low(),
              ", high = ", b.high());
}

/// The baseline value of every perturbed copy, float64 `[N, rows]` on `x`'s device: the sample's
/// min / max / mean or the number, or for `uniform` the given `draws` (N · rows values, sample by
/// sample) or, when undefined, a `[N, rows]` draw from `generator`.
inline torch::Tensor perturb_fill(const char* fn, const PerturbBaseline& b, const torch::Tensor& x,
                                  int64_t rows, const torch::Tensor& draws,
                                  at::Generator& generator, const char* draws_shape) {
  const int64_t n = x.size(0);
  const torch::Tensor flat = x.detach().reshape({n, -1}).to(torch::kDouble);
  torch::Tensor per_sample;
  switch (b.kind()) {
    case PerturbBaseline::Kind::black:
      per_sample = std::get<0>(flat.min(1));
      break;
    case PerturbBaseline::Kind::white:
      per_sample = std::get<0>(flat.max(1));
      break;
    case PerturbBaseline::Kind::mean:
      per_sample = flat.mean(1);
      break;
    case PerturbBaseline::Kind::value:
      per_sample = torch::full({n}, b.low(), flat.options());
      break;
    case PerturbBaseline::Kind::uniform: {
      if (draws.defined()) {
        TORCH_CHECK(draws.is_floating_point() && draws.numel() == n * rows && draws.dim() >= 1 &&
                        draws.size(0) == n,
                    fn, ": baseline_draws must be floating point of shape ", draws_shape, " (",
                    n * rows, " values), got ", draws.scalar_type(), " of shape ", draws.sizes());
        check_finite(fn, "baseline_draws", draws);
        return draws.detach().reshape({n, rows}).to(x.device(), torch::kDouble);
      }
      return torch::empty({n, rows}, torch::kDouble)
          .uniform_(b.low(), b.high(), generator)
          .to(x.device());
    }
  }
  return per_sample.view({n, 1}).expand({n, rows});
}

/// Attributions checked against the input and broadcast to its shape (Quantus'
/// `np.broadcast_to(a_batch, x_batch.shape)`, e.g. a map `[N, 1, H, W]` for `[N, C, H, W]`),
/// float64 `[N, D]` on the input's device, |φ| with `abs`.
inline torch::Tensor flat_attributions(const char* fn, const torch::Tensor& attributions,
                                       const torch::Tensor& input, bool abs) {
  check_attributions(fn, attributions, input);
  bool ok = attributions.dim() == input.dim();
  for (int64_t d = 0; ok && d < input.dim(); ++d)
    ok = attributions.size(d) == input.size(d) || (d > 0 && attributions.size(d) == 1);
  TORCH_CHECK(ok, fn, ": attributions must have the input's shape ", input.sizes(),
              " or broadcast to it (size 1 in a non-batch dimension), got ", attributions.sizes());
  TORCH_CHECK(input[0].numel() > 0, fn,
              ": input must have at least one feature per sample, got shape ", input.sizes());
  check_finite(fn, "attributions", attributions);
  torch::Tensor a = attributions.detach().to(torch::kDouble).expand(input.sizes());
  if (abs) a = a.abs();
  return a.reshape({input.size(0), -1}).contiguous();
}

/// Pearson's r of each row of `a` and `b` (float64 `[N, R]`), as `scipy.stats.pearsonr`: NaN for a
/// constant row, clipped to [−1, 1].
inline torch::Tensor pearson_rows(const torch::Tensor& a, const torch::Tensor& b) {
  const torch::Tensor am = a - a.mean(1, true), bm = b - b.mean(1, true);
  const torch::Tensor na = am.norm(2, {1}), nb = bm.norm(2, {1});
  const torch::Tensor r = ((am / na.unsqueeze(1)) * (bm / nb.unsqueeze(1))).sum(1).clamp(-1.0, 1.0);
  return torch::where((na == 0) | (nb == 0), torch::full_like(r, NAN), r);
}

/// Evaluates `per_sample` perturbed copies of every sample, in chunks of the batching rule:
/// `make_rows(sample, local)` builds the rows (sample index and copy index per row, int64 on the
/// input's device), `reduce(output, sample)` turns the model's output on them into one value per
/// row. Returns float64 `[N, per_sample]` on the input's device. Errors are raised in the user's
/// terms (`in_user_terms`).
template <class Model, class MakeRows, class Reduce>
torch::Tensor evaluate_copies(const char* fn, Model& model, const torch::Tensor& x,
                              int64_t per_sample, int64_t internal_batch_size, const char* what,
                              MakeRows&& make_rows, Reduce&& reduce) {
  torch::NoGradGuard no_grad;
  const int64_t n = x.size(0), total = n * per_sample;
  const auto long_opts = torch::TensorOptions().dtype(torch::kLong).device(x.device());
  torch::Tensor out =
      torch::empty({total}, torch::TensorOptions().dtype(torch::kDouble).device(x.device()));
  const int64_t row_bytes = x[0].numel() * static_cast<int64_t>(x.element_size());
  for_each_row_chunk(
      total, internal_batch_size, x.device(), row_bytes, [&](int64_t start, int64_t stop) {
        const torch::Tensor row = torch::arange(start, stop, long_opts);
        const torch::Tensor sample = row.div(per_sample, "floor");
        const torch::Tensor local = row - sample * per_sample;
        const torch::Tensor rows = make_rows(sample, local);
        const torch::Tensor value = in_user_terms(
            fn, model, x, [&] { return reduce(call_model(model, rows), sample); },
            [&] {
              return "a batch of " + std::to_string(stop - start) + " " + what + " of the " +
                     std::to_string(n) + " samples (shape " + c10::str(rows.sizes()) + ")";
            });
        TORCH_CHECK(value.defined() && value.dim() == 1 && value.size(0) == stop - start, fn,
                    ": the score function must return one value per sample, shape [", stop - start,
                    "], got ", value.defined() ? value.sizes() : torch::IntArrayRef{});
        out.slice(0, start, stop).copy_(value.to(torch::kDouble));
      });
  return out.view({n, per_sample});
}

/// The score of each row for its sample's target: the `reduce` of `evaluate_copies` for a score
/// function.
inline auto score_reduce(const ScoreFunction& score, const torch::Tensor& target) {
  return [&score, &target](const torch::Tensor& output, const torch::Tensor& sample) {
    return score(output, target.defined() ? target.index_select(0, sample) : target);
  };
}

/// Checks the common options: the batching knob and the score callable.
inline void check_common(const char* fn, int64_t internal_batch_size, const ScoreFunction& score) {
  rar::detail::check_batching(fn, "internal_batch_size", internal_batch_size);
  rar::detail::check_callable(fn, "score", score);
}

/// Position of every feature in the order of `r` `[N, D]` (descending or ascending; ties by index,
/// a stable sort), int64 `[N, D]`.
inline torch::Tensor feature_rank(const torch::Tensor& r, bool descending) {
  const int64_t n = r.size(0), d = r.size(1);
  const torch::Tensor order = std::get<1>(r.sort(/*stable=*/true, /*dim=*/1, descending));
  return torch::empty_like(order).scatter_(1, order,
                                           torch::arange(d, order.options()).expand({n, d}));
}

/// Uniformly random subsets of `size` distinct features out of `features`, int64
/// `[n, runs, size]` on the CPU, by Floyd's algorithm (Bentley & Floyd, CACM 1987) from one
/// float64 draw U `[n, runs, size]` of `generator`: for i = 0 … size − 1, j = features − size + i,
/// t = ⌊U·(j + 1)⌋; t is taken unless already chosen, then j is.
inline torch::Tensor random_feature_subsets(at::Generator& generator, int64_t n, int64_t runs,
                                            int64_t size, int64_t features) {
  const torch::Tensor u = torch::rand({n, runs, size}, generator, torch::kDouble).contiguous();
  torch::Tensor out = torch::empty({n, runs, size}, torch::kLong);
  const double* up = u.data_ptr<double>();
  int64_t* op = out.data_ptr<int64_t>();
  std::vector<char> taken(static_cast<size_t>(features), 0);
  for (int64_t s = 0; s < n * runs; ++s) {
    for (int64_t i = 0; i < size; ++i) {
      const int64_t j = features - size + i;
      int64_t t =
          std::min<int64_t>(j, static_cast<int64_t>(up[s * size + i] * static_cast<double>(j + 1)));
      if (taken[static_cast<size_t>(t)]) t = j;
      taken[static_cast<size_t>(t)] = 1;
      op[s * size + i] = t;
    }
    for (int64_t i = 0; i < size; ++i) taken[static_cast<size_t>(op[s * size + i])] = 0;
  }
  return out;
}

}  // namespace detail

// --- faithfulness correlation ------------------------------------------------------------------

/// Options of `rar::faithfulness_correlation` (Quantus' `FaithfulnessCorrelation` parameters).
///
/// Example:
/// @code
/// auto opts = rar::FaithfulnessCorrelationOptions().target(y).nr_runs(50).subset_size(16).seed(3);
/// torch::Tensor fc = rar::faithfulness_correlation(model, x, attr, opts);
/// @endcode
struct FaithfulnessCorrelationOptions {
  /// Random subsets per sample, R ≥ 2 (Quantus' `nr_runs`, default 100). Unused with `subsets`.
  RAR_ARG(int64_t, nr_runs) = 100;
  /// Features per subset, 1 ≤ |S| ≤ D (Quantus' `subset_size`, default 224). Unused with `subsets`.
  RAR_ARG(int64_t, subset_size) = 224;
  /// Explicit subsets: int64 `[N, R, |S|]` of flat feature indices, distinct within a subset;
  /// undefined (default): drawn uniformly (Floyd's algorithm from the stream (seed, 0)).
  RAR_ARG(torch::Tensor, subsets);
  /// The value of the features in the subset (Quantus' `perturb_baseline`, default "black").
  RAR_ARG(PerturbBaseline, perturb_baseline) = PerturbBaseline::black();
  /// With a uniform `perturb_baseline`: the drawn values, `[N, R]` (one per perturbed copy);
  /// undefined: drawn from the stream (seed, 0) after the subsets.
  RAR_ARG(torch::Tensor, baseline_draws);
  /// Correlate |φ| instead of φ (Quantus' `abs`, default false).
  RAR_ARG(bool, abs) = false;
  /// Seed of the subsets and uniform baselines.
  RAR_ARG(uint64_t, seed) = 0;
  /// The class explained, int64 `[N]` or 0-dim on the input's device.
  RAR_ARG(torch::Tensor, target);
  /// f: the value whose drop is correlated (default: the target's logit, Quantus' `softmax=False`).
  RAR_ARG(ScoreFunction, score) = score::logit;
  /// Rows per forward pass of the N·R perturbed inputs; 0 (default): the batching rule.
  RAR_ARG(int64_t, internal_batch_size) = 0;
};

/// Faithfulness correlation (Bhatt, Weller, Moura, "Evaluating and Aggregating Feature-based Model
/// Explanations", IJCAI 2020), as Quantus' `FaithfulnessCorrelation`.
///
/// For each sample, R random subsets S_r of |S| features are set to the baseline; the score is
/// ρ_n = pearson_r( (Σ_{i∈S_r} φ_i)_r , (f(x) − f(x with S_r at the baseline))_r ). 1 for a
/// linear model f(x) = wᵀx + b with φ = w ⊙ (x − baseline) (gradient × input with a zero
/// baseline). NaN when either side is constant over the runs (scipy's `pearsonr`).
///
/// Differences from Quantus: the attributions are not divided by their maximum (Quantus'
/// `normalise=True` divides by a positive number, which leaves Pearson's r unchanged); the
/// subsets come from the stream (seed, 0) (Quantus uses `np.random.choice` per sample), or
/// explicitly from `subsets`.
///
/// Costs one forward over the N inputs and one over the N·R perturbed inputs, chunked.
///
/// Example:
/// @code
/// torch::Tensor attr = rar::gradient_x_input(model, x, rar::GradientOptions().target(y));
/// torch::Tensor fc = rar::faithfulness_correlation(
///     model, x, attr, rar::FaithfulnessCorrelationOptions().target(y).subset_size(32));
/// @endcode
/// @param model any model (module holder, module, or callable Tensor(const Tensor&))
/// @param input batch `[N, ...]`, float32 or float64, any device
/// @param attributions the input's shape (or broadcastable to it), finite, on its device
/// @param options runs, subset size or subsets, baseline, abs, seed, target, score, batching
/// @return float64 `[N]` on the CPU
template <class Model>
torch::Tensor faithfulness_correlation(Model&& model, const torch::Tensor& input,
                                       const torch::Tensor& attributions,
                                       const FaithfulnessCorrelationOptions& options = {}) {
  detail::static_check_model<Model>();
  const char* fn = "rar::faithfulness_correlation";
  detail::check_batch(fn, "input", input);
  detail::check_common(fn, options.internal_batch_size(), options.score());
  detail::check_perturb_baseline(fn, options.perturb_baseline());
  const torch::Tensor a = detail::flat_attributions(fn, attributions, input, options.abs());
  const int64_t n = a.size(0), d = a.size(1);
  const torch::Tensor target = detail::expand_target(fn, options.target(), n, input.device());

  at::Generator generator = seeded_generator(options.seed(), 0);
  torch::Tensor subsets = options.subsets();
  if (subsets.defined()) {
    TORCH_CHECK(subsets.scalar_type() == torch::kLong && subsets.dim() == 3 &&
                    subsets.size(0) == n && subsets.size(1) >= 2 && subsets.size(2) >= 1,
                fn, ": subsets must be int64 [N, runs, subset_size] with N = ", n,
                ", runs >= 2 and subset_size >= 1, got ", subsets.scalar_type(), " of shape ",
                subsets.sizes());
    subsets = subsets.detach().to(torch::kCPU);
    TORCH_CHECK(subsets.min().item<int64_t>() >= 0 && subsets.max().item<int64_t>() < d, fn,
                ": subsets must hold feature indices in [0, ", d, "), got values in [",
                subsets.min().item<int64_t>(), ", ", subsets.max().item<int64_t>(), "]");
    const torch::Tensor sorted = std::get<0>(subsets.sort(2));
    TORCH_CHECK(
        subsets.size(2) == 1 || (sorted.slice(2, 1) != sorted.slice(2, 0, -1)).all().item<bool>(),
        fn,
        ": the feature indices within a subset must be distinct (Quantus draws "
        "them without replacement)");
  } else {
    TORCH_CHECK(options.nr_runs() >= 2, fn,
                ": nr_runs must be >= 2 (a correlation needs two "
                "points), got ",
                options.nr_runs());
    TORCH_CHECK(options.subset_size() >= 1 && options.subset_size() <= d, fn,
                ": subset_size must lie in [1, ", d, "] (the features per sample), got ",
                options.subset_size());
    subsets =
        detail::random_feature_subsets(generator, n, options.nr_runs(), options.subset_size(), d);
  }
  const int64_t runs = subsets.size(1), size = subsets.size(2);
  subsets = subsets.to(input.device());
  const torch::Tensor fill = detail::perturb_fill(fn, options.perturb_baseline(), input, runs,
                                                  options.baseline_draws(), generator, "[N, runs]");

  const torch::Tensor x = input.detach();
  const torch::Tensor x_flat = x.reshape({n, d});
  const torch::Tensor att_sums =
      a.gather(1, subsets.view({n, runs * size})).view({n, runs, size}).sum(2);
  const torch::Tensor flat_subsets = subsets.view({n * runs, size});
  const torch::Tensor flat_fill = fill.reshape({n * runs});
  const torch::Tensor f_x = detail::score_rows(fn, model, options.score(), x, target);
  const torch::Tensor f_perturbed = detail::evaluate_copies(
      fn, model, x, runs, options.internal_batch_size(), "perturbed copies",
      [&](const torch::Tensor& sample, const torch::Tensor& local) {
        const torch::Tensor row = sample * runs + local;
        const torch::Tensor idx = flat_subsets.index_select(0, row);
        const torch::Tensor values =
            flat_fill.index_select(0, row).to(x.scalar_type()).unsqueeze(1).expand(idx.sizes());
        return x_flat.index_select(0, sample).scatter(1, idx, values).view([&] {
          auto s = x.sizes().vec();
          s[0] = row.size(0);
          return s;
        }());
      },
      detail::score_reduce(options.score(), target));
  return detail::pearson_rows(att_sums, f_x.view({n, 1}) - f_perturbed).cpu();
}

/// Faithfulness correlation of an explanation method's attributions for `options.target()` (one
/// call of `method`, create_graph = false); see the form with attributions.
///
/// Example:
/// @code
/// torch::Tensor fc = rar::faithfulness_correlation(model, rar::explain::saliency(), x,
///     rar::FaithfulnessCorrelationOptions().target(y).subset_size(16));
/// @endcode
/// @param model any model
/// @param method an explainer `(model, input, target, create_graph)`
/// @param input batch `[N, ...]`
/// @param options as for the form with attributions
/// @return float64 `[N]` on the CPU
template <class Model, class Method, detail::enable_if_method_t<Method> = 0>
torch::Tensor faithfulness_correlation(Model&& model, Method&& method, const torch::Tensor& input,
                                       const FaithfulnessCorrelationOptions& options = {}) {
  detail::static_check_model<Model>();
  const char* fn = "rar::faithfulness_correlation";
  detail::check_batch(fn, "input", input);
  const torch::Tensor target =
      detail::expand_target(fn, options.target(), input.size(0), input.device());
  return faithfulness_correlation(
      model, input, detail::explain_for_metric(fn, method, model, input, target), options);
}

// --- faithfulness estimate ---------------------------------------------------------------------

/// Options of `rar::faithfulness_estimate` (Quantus' `FaithfulnessEstimate` parameters).
///
/// Example:
/// @code
/// auto opts = rar::FaithfulnessEstimateOptions().target(y).features_in_step(4);
/// @endcode
struct FaithfulnessEstimateOptions {
  /// Features removed per step, k ≥ 1 (Quantus' `features_in_step`, default 1); ⌈D/k⌉ ≥ 2 steps.
  RAR_ARG(int64_t, features_in_step) = 1;
  /// The value of the removed features (Quantus' `perturb_baseline`, default "black").
  RAR_ARG(PerturbBaseline, perturb_baseline) = PerturbBaseline::black();
  /// With a uniform `perturb_baseline`: the drawn values, `[N, steps]`; undefined: drawn from the
  /// stream (seed, 0).
  RAR_ARG(torch::Tensor, baseline_draws);
  /// Rank and sum |φ| instead of φ (Quantus' `abs`, default false).
  RAR_ARG(bool, abs) = false;
  /// Seed of uniform baselines.
  RAR_ARG(uint64_t, seed) = 0;
  /// The class explained, int64 `[N]` or 0-dim on the input's device.
  RAR_ARG(torch::Tensor, target);
  /// f (default: the target's logit, Quantus' `softmax=False`).
  RAR_ARG(ScoreFunction, score) = score::logit;
  /// Rows per forward pass of the N·steps perturbed inputs; 0 (default): the batching rule.
  RAR_ARG(int64_t, internal_batch_size) = 0;
};

/// Faithfulness estimate (Alvarez-Melis & Jaakkola, "Towards Robust Interpretability with
/// Self-Explaining Neural Networks", NeurIPS 2018), as Quantus' `FaithfulnessEstimate`.
///
/// The features are ranked by φ, largest first, and cut into steps G_j of k features; step j
/// sets only its own features to the baseline (the others keep their values, as Quantus):
/// ρ_n = pearson_r( (Σ_{i∈G_j} φ_i)_j , (f(x) − f(x with G_j at the baseline))_j ). Ties in the
/// ranking are broken by feature index (a stable sort; Quantus' `np.argsort` is not stable).
/// Attributions are not divided by their maximum (Pearson's r does not change).
///
/// Costs one forward over the N inputs and one over the N·⌈D/k⌉ perturbed inputs, chunked.
///
/// Example:
/// @code
/// torch::Tensor fe = rar::faithfulness_estimate(
///     model, x, attr, rar::FaithfulnessEstimateOptions().target(y).features_in_step(7));
/// @endcode
/// @param model any model
/// @param input batch `[N, ...]`, float32 or float64, any device
/// @param attributions the input's shape (or broadcastable to it), finite, on its device
/// @param options features_in_step, baseline, abs, seed, target, score, batching
/// @return float64 `[N]` on the CPU
template <class Model>
torch::Tensor faithfulness_estimate(Model&& model, const torch::Tensor& input,
                                    const torch::Tensor& attributions,
                                    const FaithfulnessEstimateOptions& options = {}) {
  detail::static_check_model<Model>();
  const char* fn = "rar::faithfulness_estimate";
  detail::check_batch(fn, "input", input);
  detail::check_common(fn, options.internal_batch_size(), options.score());
  detail::check_perturb_baseline(fn, options.perturb_baseline());
  const torch::Tensor a = detail::flat_attributions(fn, attributions, input, options.abs());
  const int64_t n = a.size(0), d = a.size(1), k = options.features_in_step();
  TORCH_CHECK(k >= 1, fn, ": features_in_step must be >= 1, got ", k);
  const int64_t steps = (d + k - 1) / k;
  TORCH_CHECK(steps >= 2, fn, ": features_in_step = ", k, " leaves ", steps, " step for ", d,
              " features; a correlation needs at least two steps");
  const torch::Tensor target = detail::expand_target(fn, options.target(), n, input.device());
  at::Generator generator = seeded_generator(options.seed(), 0);
  const torch::Tensor fill = detail::perturb_fill(fn, options.perturb_baseline(), input, steps,
                                                  options.baseline_draws(), generator, "[N, steps]")
                                 .reshape({n * steps});

  const torch::Tensor step_of = detail::feature_rank(a, /*descending=*/true).div(k, "floor");
  const torch::Tensor att_sums = torch::zeros({n, steps}, a.options()).scatter_add_(1, step_of, a);
  const torch::Tensor x = input.detach();
  const torch::Tensor x_flat = x.reshape({n, d});
  const torch::Tensor f_x = detail::score_rows(fn, model, options.score(), x, target);
  const torch::Tensor f_perturbed = detail::evaluate_copies(
      fn, model, x, steps, options.internal_batch_size(), "perturbed copies",
      [&](const torch::Tensor& sample, const torch::Tensor& local) {
        const torch::Tensor changed = step_of.index_select(0, sample) == local.unsqueeze(1);
        const torch::Tensor values =
            fill.index_select(0, sample * steps + local).to(x.scalar_type()).unsqueeze(1);
        auto shape = x.sizes().vec();
        shape[0] = sample.size(0);
        return torch::where(changed, values, x_flat.index_select(0, sample)).view(shape);
      },
      detail::score_reduce(options.score(), target));
  return detail::pearson_rows(att_sums, f_x.view({n, 1}) - f_perturbed).cpu();
}

/// Faithfulness estimate of an explanation method's attributions for `options.target()`; see
/// the form with attributions.
///
/// Example:
/// @code
/// torch::Tensor fe = rar::faithfulness_estimate(model, rar::explain::saliency(), x,
///                                               rar::FaithfulnessEstimateOptions().target(y));
/// @endcode
/// @param model any model
/// @param method an explainer `(model, input, target, create_graph)`
/// @param input batch `[N, ...]`
/// @param options as for the form with attributions
/// @return float64 `[N]` on the CPU
template <class Model, class Method, detail::enable_if_method_t<Method> = 0>
torch::Tensor faithfulness_estimate(Model&& model, Method&& method, const torch::Tensor& input,
                                    const FaithfulnessEstimateOptions& options = {}) {
  detail::static_check_model<Model>();
  const char* fn = "rar::faithfulness_estimate";
  detail::check_batch(fn, "input", input);
  const torch::Tensor target =
      detail::expand_target(fn, options.target(), input.size(0), input.device());
  return faithfulness_estimate(
      model, input, detail::explain_for_metric(fn, method, model, input, target), options);
}

// --- monotonicity correlation ------------------------------------------------------------------

/// Options of `rar::monotonicity_correlation` (Quantus' `MonotonicityCorrelation` parameters).
///
/// Example:
/// @code
/// auto opts = rar::MonotonicityCorrelationOptions().target(y).nr_samples(20).features_in_step(4);
/// @endcode
struct MonotonicityCorrelationOptions {
  /// Perturbations per feature group, S ≥ 1 (Quantus' `nr_samples`, default 100).
  RAR_ARG(int64_t, nr_samples) = 100;
  /// Features per group, k ≥ 1 (Quantus' `features_in_step`, default 1); ⌈D/k⌉ ≥ 2 groups.
  RAR_ARG(int64_t, features_in_step) = 1;
  /// Predictions with |f(x)| < eps are not inverted (Quantus' `eps`, default 1e-5), ≥ 0.
  RAR_ARG(double, eps) = 1e-5;
  /// The value of the perturbed features (Quantus' default for this metric: uniform on [0, 1)).
  RAR_ARG(PerturbBaseline, perturb_baseline) = PerturbBaseline::uniform(0.0, 1.0);
  /// With a uniform `perturb_baseline`: the drawn values, `[N, steps, nr_samples]`; undefined:
  /// drawn from the stream (seed, 0).
  RAR_ARG(torch::Tensor, baseline_draws);
  /// Rank and sum |φ| (Quantus' `abs`, default true for this metric).
  RAR_ARG(bool, abs) = true;
  /// Seed of uniform baselines.
  RAR_ARG(uint64_t, seed) = 0;
  /// The class explained, int64 `[N]` or 0-dim on the input's device.
  RAR_ARG(torch::Tensor, target);
  /// f (default: the target's softmax probability, Quantus' `softmax=True` for this metric).
  RAR_ARG(ScoreFunction, score) = score::probability;
  /// Rows per forward pass of the perturbed inputs; 0 (default): the batching rule.
  RAR_ARG(int64_t, internal_batch_size) = 0;
};

/// Monotonicity correlation (Nguyen & Martínez, "On Quantitative Aspects of Model
/// Interpretability", 2020), as Quantus' `MonotonicityCorrelation`.
///
/// The features are ranked by φ (|φ| by default), smallest first, and cut into groups G_j of k;
/// each group alone is set to the baseline S times (a fresh uniform value per perturbation by
/// default), and ρ_n = spearman_rho( (Σ_{i∈G_j} φ_i)_j , (v_j)_j ) with the variance-like
/// v_j = mean_s (f(x_{G_j ← b_s}) − f(x))² · w, w = 1/f(x)² when |f(x)| ≥ eps, else 1 (a positive
/// per-sample factor, which the rank correlation ignores). Spearman's rho as
/// `scipy.stats.spearmanr` (average ranks; `rar::spearman_rho`). Ties in the ranking are broken by
/// feature index. With a baseline that is not random the S perturbations of a group are identical
/// and one is evaluated.
///
/// Costs one forward over the N inputs and one over N·⌈D/k⌉·S perturbed inputs, chunked.
///
/// Example:
/// @code
/// torch::Tensor mc = rar::monotonicity_correlation(
///     model, x, attr, rar::MonotonicityCorrelationOptions().target(y).nr_samples(10));
/// @endcode
/// @param model any model
/// @param input batch `[N, ...]`, float32 or float64, any device
/// @param attributions the input's shape (or broadcastable to it), finite, on its device
/// @param options nr_samples, features_in_step, eps, baseline, abs, seed, target, score, batching
/// @return float64 `[N]` on the CPU
template <class Model>
torch::Tensor monotonicity_correlation(Model&& model, const torch::Tensor& input,
                                       const torch::Tensor& attributions,
                                       const MonotonicityCorrelationOptions& options = {}) {
  detail::static_check_model<Model>();
  const char* fn = "rar::monotonicity_correlation";
  detail::check_batch(fn, "input", input);
  detail::check_common(fn, options.internal_batch_size(), options.score());
  detail::check_perturb_baseline(fn, options.perturb_baseline());
  TORCH_CHECK(options.nr_samples() >= 1, fn, ": nr_samples must be >= 1, got ",
              options.nr_samples());
  TORCH_CHECK(std::isfinite(options.eps()) && options.eps() >= 0, fn,
              ": eps must be finite and >= 0, got ", options.eps());
  const torch::Tensor a = detail::flat_attributions(fn, attributions, input, options.abs());
  const int64_t n = a.size(0), d = a.size(1), k = options.features_in_step();
  TORCH_CHECK(k >= 1, fn, ": features_in_step must be >= 1, got ", k);
  const int64_t steps = (d + k - 1) / k;
  TORCH_CHECK(steps >= 2, fn, ": features_in_step = ", k, " leaves ", steps, " group for ", d,
              " features; a correlation needs at least two groups");
  const torch::Tensor target = detail::expand_target(fn, options.target(), n, input.device());
  const bool random = options.perturb_baseline().random();
  const int64_t samples = random ? options.nr_samples() : 1;
  at::Generator generator = seeded_generator(options.seed(), 0);
  const torch::Tensor fill =
      detail::perturb_fill(fn, options.perturb_baseline(), input, steps * samples,
                           options.baseline_draws(), generator, "[N, steps, nr_samples]")
          .reshape({n * steps * samples});

  const torch::Tensor step_of = detail::feature_rank(a, /*descending=*/false).div(k, "floor");
  const torch::Tensor atts = torch::zeros({n, steps}, a.options()).scatter_add_(1, step_of, a);
  const torch::Tensor x = input.detach();
  const torch::Tensor x_flat = x.reshape({n, d});
  const torch::Tensor f_x = detail::score_rows(fn, model, options.score(), x, target);
  const torch::Tensor f_perturbed = detail::evaluate_copies(
      fn, model, x, steps * samples, options.internal_batch_size(), "perturbed copies",
      [&](const torch::Tensor& sample, const torch::Tensor& local) {
        const torch::Tensor step = local.div(samples, "floor");
        const torch::Tensor changed = step_of.index_select(0, sample) == step.unsqueeze(1);
        const torch::Tensor values = fill.index_select(0, sample * (steps * samples) + local)
                                         .to(x.scalar_type())
                                         .unsqueeze(1);
        auto shape = x.sizes().vec();
        shape[0] = sample.size(0);
        return torch::where(changed, values, x_flat.index_select(0, sample)).view(shape);
      },
      detail::score_reduce(options.score(), target));
  const torch::Tensor inv =
      torch::where(f_x.abs() >= options.eps(), 1.0 / f_x.abs(), torch::ones_like(f_x)).pow(2);
  const torch::Tensor vars =
      (f_perturbed.view({n, steps, samples}) - f_x.view({n, 1, 1})).pow(2).mean(2) *
      inv.view({n, 1});
  return spearman_rho(atts, vars);
}

/// Monotonicity correlation of an explanation method's attributions for `options.target()`; see
/// the form with attributions.
///
/// Example:
/// @code
/// torch::Tensor mc = rar::monotonicity_correlation(model, rar::explain::saliency(), x,
///     rar::MonotonicityCorrelationOptions().target(y).nr_samples(10));
/// @endcode
/// @param model any model
/// @param method an explainer `(model, input, target, create_graph)`
/// @param input batch `[N, ...]`
/// @param options as for the form with attributions
/// @return float64 `[N]` on the CPU
template <class Model, class Method, detail::enable_if_method_t<Method> = 0>
torch::Tensor monotonicity_correlation(Model&& model, Method&& method, const torch::Tensor& input,
                                       const MonotonicityCorrelationOptions& options = {}) {
  detail::static_check_model<Model>();
  const char* fn = "rar::monotonicity_correlation";
  detail::check_batch(fn, "input", input);
  const torch::Tensor target =
      detail::expand_target(fn, options.target(), input.size(0), input.device());
  return monotonicity_correlation(
      model, input, detail::explain_for_metric(fn, method, model, input, target), options);
}

// --- ROAD: noisy linear imputation -------------------------------------------------------------

/// Options of `rar::noisy_linear_imputation`.
///
/// Example:
/// @code
/// auto opts = rar::NoisyImputationOptions().noise(0.0);   // the plain linear imputation
/// @endcode
struct NoisyImputationOptions {
  /// Standard deviation of the Gaussian noise added to every imputed value (ROAD's and Quantus'
  /// `noise`, default 0.01), finite and ≥ 0.
  RAR_ARG(double, noise) = 0.01;
  /// Explicit standard-normal draws, the input's shape `[N, C, H, W]`; only the values at imputed
  /// pixels are used (scaled by `noise`). Undefined: sample n's draw is the n-th float64
  /// `[C, H, W]` standard-normal draw of the stream (seed, 0).
  RAR_ARG(torch::Tensor, noise_draws);
  /// Seed of the noise.
  RAR_ARG(uint64_t, seed) = 0;
  /// Relative residual at which conjugate gradients stop, ‖r‖ ≤ tolerance·‖b‖ (default 1e-12).
  RAR_ARG(double, tolerance) = 1e-12;
  /// Most conjugate-gradient iterations; 0 (default): 100 + 2·H·W. Not converging is an error.
  RAR_ARG(int64_t, max_iterations) = 0;
};

namespace detail {

/// Solves ROAD's imputation system for `x` float64 `[B, C, H, W]` and the removed pixels `m`
/// float64 `[B, 1, H, W]` (1 = removed): every removed value v_i is the weighted mean of its
/// in-image 8-neighbours (weights 1/6 for the four edge neighbours, 1/12 for the diagonal ones),
/// known neighbours taking x's values. With s_i the sum of the in-image weights and W the
/// neighbour weights this is (s_i v_i − Σ_{removed j} w_ij v_j) = Σ_{known j} w_ij x_j, symmetric
/// positive definite (ROAD's `NoisyLinearImputer` solves the same system with `spsolve`); solved by
/// Jacobi-preconditioned conjugate gradients, all B·C systems at once, the neighbour sums as a 3×3
/// convolution. Returns x with the removed values replaced (noise not added).
inline torch::Tensor linear_imputation(const char* fn, const torch::Tensor& x,
                                       const torch::Tensor& m, double tolerance,
                                       int64_t max_iterations) {
  const int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  const double e = 1.0 / 6.0, g = 1.0 / 12.0;
  const torch::Tensor kernel =
      torch::tensor({g, e, g, e, 0.0, e, g, e, g}, x.options()).view({1, 1, 3, 3});
  const auto neighbours = [&](const torch::Tensor& v) {
    return torch::conv2d(v.reshape({-1, 1, h, w}), kernel, {}, 1, 1).view(v.sizes());
  };
  const torch::Tensor s = neighbours(torch::ones({1, 1, h, w}, x.options()));
  const torch::Tensor rhs = m * neighbours((1 - m) * x);
  const auto apply = [&](const torch::Tensor& v) { return m * (s * v - neighbours(m * v)); };
  const auto dot = [](const torch::Tensor& p, const torch::Tensor& q) {
    return (p * q).sum({2, 3}, /*keepdim=*/true);
  };
  const torch::Tensor bound = tolerance * tolerance * dot(rhs, rhs);
  torch::Tensor v = torch::zeros_like(x);
  torch::Tensor r = rhs.clone();
  torch::Tensor z = r / s;
  torch::Tensor p = z.clone();
  torch::Tensor rz = dot(r, z);
  const int64_t limit = max_iterations > 0 ? max_iterations : 100 + 2 * h * w;
  int64_t it = 0;
  for (;; ++it) {
    const torch::Tensor rr = dot(r, r);
    if ((rr <= bound).all().item<bool>()) break;
    TORCH_CHECK(it < limit, fn,
                ": the imputation's conjugate gradients did not reach the "
                "relative residual ",
                tolerance, " in ", limit, " iterations (", b, " x ", c, " systems of ", h, " x ", w,
                " pixels); raise max_iterations or tolerance");
    const torch::Tensor ap = apply(p);
    const torch::Tensor pap = dot(p, ap);
    const torch::Tensor alpha = torch::where(pap > 0, rz / pap, torch::zeros_like(pap));
    v = v + alpha * p;
    r = r - alpha * ap;
    z = r / s;
    const torch::Tensor rz_new = dot(r, z);
    const torch::Tensor beta = torch::where(rz > 0, rz_new / rz, torch::zeros_like(rz));
    p = z + beta * p;
    rz = rz_new;
  }
  return torch::where(m > 0, v, x);
}

/// Checks the imputation options.
inline void check_imputation(const char* fn, double noise, double tolerance,
                             int64_t max_iterations) {
  TORCH_CHECK(std::isfinite(noise) && noise >= 0, fn, ": noise must be finite and >= 0, got ",
              noise);
  TORCH_CHECK(std::isfinite(tolerance) && tolerance > 0, fn,
              ": tolerance must be finite and > 0, got ", tolerance);
  TORCH_CHECK(max_iterations >= 0, fn, ": max_iterations must be >= 0 (0 = automatic), got ",
              max_iterations);
}

/// Checks explicit noise draws of `shape` (float, finite).
inline void check_noise_draws(const char* fn, const torch::Tensor& draws, torch::IntArrayRef shape,
                              const char* what) {
  TORCH_CHECK(draws.is_floating_point() && draws.sizes() == shape, fn,
              ": noise_draws must be floating point of shape ", shape, " (", what, "), got ",
              draws.scalar_type(), " of shape ", draws.sizes());
  check_finite(fn, "noise_draws", draws);
}

/// Per-row standard-normal draws `[C, H, W]` from one generator, in row order: asking again for
/// rows already drawn (a chunk retried after running out of memory) returns the same numbers.
class RowNoise {
 public:
  RowNoise(uint64_t seed, torch::IntArrayRef row_shape)
      : generator_(seeded_generator(seed, 0)), shape_(row_shape.vec()) {}
  /// Draws for the rows [start, stop), float64 `[stop − start, C, H, W]` on the CPU; rows before
  /// `start` are forgotten.
  torch::Tensor rows(int64_t start, int64_t stop) {
    while (first_ + static_cast<int64_t>(kept_.size()) < stop)
      kept_.push_back(torch::randn(shape_, generator_, torch::kDouble));
    while (first_ < start) {
      kept_.erase(kept_.begin());
      ++first_;
    }
    return torch::stack(std::vector<torch::Tensor>(kept_.begin(), kept_.begin() + (stop - start)));
  }

 private:
  at::Generator generator_;
  std::vector<int64_t> shape_;
  std::vector<torch::Tensor> kept_;
  int64_t first_ = 0;
};

}  // namespace detail

/// Noisy linear imputation (Rong, Leemann, Borisov, Kasneci, Kasneci, "A Consistent and Efficient
/// Evaluation Strategy for Attribution Methods" (ROAD), ICML 2022; their `NoisyLinearImputer`,
/// Quantus' `noisy_linear_imputation`): the removed pixels of an image are replaced, in every
/// channel, by the solution of "each removed value is the weighted mean of its 8 neighbours"
/// (weights 1/6 edge, 1/12 diagonal, neighbours outside the image left out and the rest
/// renormalized), plus Gaussian noise of standard deviation `noise`.
///
/// The sparse system is solved by conjugate gradients (Jacobi-preconditioned, all images and
/// channels at once, in float64 on the input's device), to `tolerance`; the reference solves it
/// directly (`scipy.sparse.linalg.spsolve`). Every connected group of removed pixels must touch a
/// kept pixel, so an image may not lose all its pixels.
///
/// Example:
/// @code
/// torch::Tensor removed = torch::rand({n, 1, 28, 28}) < 0.3;            // bool mask
/// torch::Tensor imputed = rar::noisy_linear_imputation(x, removed);      // x: [n, 1, 28, 28]
/// @endcode
/// @param input images `[N, C, H, W]`, float32 or float64, finite, any device
/// @param removed bool `[N, 1, H, W]` or `[N, H, W]`: the pixels to impute (all channels)
/// @param options noise, noise draws or seed, solver tolerance and iterations
/// @return the imputed images, the input's shape, dtype and device
inline torch::Tensor noisy_linear_imputation(const torch::Tensor& input,
                                             const torch::Tensor& removed,
                                             const NoisyImputationOptions& options = {}) {
  const char* fn = "rar::noisy_linear_imputation";
  detail::check_input(fn, "input", input);
  TORCH_CHECK(input.dim() == 4, fn, ": input must be images [N, C, H, W], got shape ",
              input.sizes());
  detail::check_imputation(fn, options.noise(), options.tolerance(), options.max_iterations());
  const int64_t n = input.size(0), h = input.size(2), w = input.size(3);
  TORCH_CHECK(removed.defined() && removed.scalar_type() == torch::kBool &&
                  (removed.sizes() == torch::IntArrayRef{n, 1, h, w} ||
                   removed.sizes() == torch::IntArrayRef{n, h, w}),
              fn, ": removed must be a bool mask [N, 1, H, W] or [N, H, W] = [", n, ", ", h, ", ",
              w, "], got ", removed.defined() ? c10::str(removed.scalar_type()) : "undefined",
              " of shape ", removed.defined() ? removed.sizes() : torch::IntArrayRef{});
  TORCH_CHECK(removed.device() == input.device(), fn, ": removed must be on the input's device ",
              input.device(), ", got ", removed.device());
  const torch::Tensor m = removed.view({n, 1, h, w}).to(torch::kDouble);
  TORCH_CHECK((m.sum({1, 2, 3}) < static_cast<double>(h * w)).all().item<bool>(), fn,
              ": every image must keep at least one pixel (the imputation of a fully removed "
              "image is undetermined)");
  torch::NoGradGuard no_grad;
  torch::Tensor out = detail::linear_imputation(fn, input.detach().to(torch::kDouble), m,
                                                options.tolerance(), options.max_iterations());
  if (options.noise() > 0) {
    torch::Tensor z;
    if (options.noise_draws().defined()) {
      detail::check_noise_draws(fn, options.noise_draws(), input.sizes(), "the input's shape");
      z = options.noise_draws().detach().to(input.device(), torch::kDouble);
    } else {
      z = detail::RowNoise(options.seed(), input.sizes().slice(1)).rows(0, n).to(input.device());
    }
    out = out + options.noise() * m * z;
  }
  return out.to(input.scalar_type());
}

// --- ROAD ----------------------------------------------------------------------------------------

/// The order in which ROAD removes pixels.
enum class RemovalOrder {
  morf,  ///< most relevant first (Quantus' ROAD; a faithful map makes accuracy drop fast)
  lerf   ///< least relevant first (accuracy should stay high)
};

/// Options of `rar::road`.
///
/// Example:
/// @code
/// auto opts = rar::ROADOptions().target(y).percentages({10, 30, 50, 70, 90}).noise(0.01);
/// @endcode
struct ROADOptions {
  /// Percentages of pixels removed, each in [0, 100) (Quantus' default: 1, 3, …, 99); p removes
  /// ⌊H·W·p / 100⌋ pixels (Quantus' `int(a_size * p / 100)`), which must leave one.
  RAR_ARG(std::vector<double>, percentages) = [] {
    std::vector<double> p;
    for (int v = 1; v < 100; v += 2) p.push_back(v);
    return p;
  }();
  /// Most or least relevant pixels first (default MoRF, as Quantus).
  RAR_ARG(RemovalOrder, order) = RemovalOrder::morf;
  /// Standard deviation of the imputation noise (ROAD's and Quantus' `noise`, default 0.01).
  RAR_ARG(double, noise) = 0.01;
  /// Explicit standard-normal noise, `[N, P, C, H, W]` (P = number of percentages); undefined:
  /// row (n, p) takes the (n·P + p)-th float64 `[C, H, W]` draw of the stream (seed, 0).
  RAR_ARG(torch::Tensor, noise_draws);
  /// Rank pixels by Σ_c |φ_c| instead of Σ_c φ_c (Quantus' `abs`, default false).
  RAR_ARG(bool, abs) = false;
  /// Seed of the noise.
  RAR_ARG(uint64_t, seed) = 0;
  /// The class whose prediction must be kept, int64 `[N]` or 0-dim on the input's device
  /// (required; Quantus' `y_batch`).
  RAR_ARG(torch::Tensor, target);
  /// Relative residual of the imputation's conjugate gradients (default 1e-12).
  RAR_ARG(double, tolerance) = 1e-12;
  /// Most conjugate-gradient iterations; 0 (default): 100 + 2·H·W.
  RAR_ARG(int64_t, max_iterations) = 0;
  /// Rows per pass (imputation and forward) of the N·P imputed images; 0: the batching rule.
  RAR_ARG(int64_t, internal_batch_size) = 0;
};

/// The result of `rar::road`.
///
/// Example:
/// @code
/// rar::ROADResult r = rar::road(model, x, attr, rar::ROADOptions().target(y));
/// double at_half = r.curve[25].item<double>();   // accuracy with 51 % of the pixels imputed
/// @endcode
struct ROADResult {
  torch::Tensor curve;  ///< float64 `[P]`: the share of samples still predicted as their target
  torch::Tensor per_sample;   ///< float64 `[N, P]`: 1 where sample n keeps its target at p, else 0
  torch::Tensor percentages;  ///< float64 `[P]`: the percentages
};

/// ROAD: RemOve And Debias (Rong, Leemann, Borisov, Kasneci, Kasneci, "A Consistent and Efficient
/// Evaluation Strategy for Attribution Methods", ICML 2022), as Quantus' `ROAD`.
///
/// Pixels are ranked by the attributions summed over channels (most relevant first for MoRF,
/// least for LeRF; ties by index); for each percentage p the first ⌊H·W·p/100⌋ pixels are removed
/// in every channel and imputed by `rar::noisy_linear_imputation`; per_sample[n, p] = 1 when
/// argmax f(x̃) is the target, and curve[p] is its mean over the batch (Quantus' output).
///
/// Differences from Quantus: attributions may have C channels (pixels ranked by their sum) or one
/// (`[N, 1, H, W]`); Quantus ranks the elements of the channel-broadcast map, which works for
/// one-channel images only, where both agree. The system is solved by conjugate gradients
/// instead of `spsolve` (the same solution to `tolerance`); LeRF is added.
///
/// Costs N·P imputations and forwards, chunked.
///
/// Example:
/// @code
/// rar::ROADResult morf = rar::road(model, x, attr,
///     rar::ROADOptions().target(y).percentages({10, 20, 50, 80}));
/// @endcode
/// @param model any model returning `[N, classes]`
/// @param input images `[N, C, H, W]`, float32 or float64, finite, any device
/// @param attributions `[N, C, H, W]` or `[N, 1, H, W]`, finite, on the input's device
/// @param options percentages, order, noise (draws or seed), abs, target, solver, batching
/// @return the accuracy curve `[P]`, the per-sample curves `[N, P]`, the percentages
template <class Model>
ROADResult road(Model&& model, const torch::Tensor& input, const torch::Tensor& attributions,
                const ROADOptions& options = {}) {
  detail::static_check_model<Model>();
  const char* fn = "rar::road";
  detail::check_input(fn, "input", input);
  TORCH_CHECK(input.dim() == 4, fn, ": input must be images [N, C, H, W], got shape ",
              input.sizes());
  detail::check_attributions(fn, attributions, input);
  const int64_t n = input.size(0), c = input.size(1), h = input.size(2), w = input.size(3);
  TORCH_CHECK(attributions.dim() == 4 && attributions.size(0) == n &&
                  (attributions.size(1) == c || attributions.size(1) == 1) &&
                  attributions.size(2) == h && attributions.size(3) == w,
              fn, ": attributions must be [N, C, H, W] or [N, 1, H, W] for input ", input.sizes(),
              ", got ", attributions.sizes());
  detail::check_finite(fn, "attributions", attributions);
  detail::check_imputation(fn, options.noise(), options.tolerance(), options.max_iterations());
  rar::detail::check_batching(fn, "internal_batch_size", options.internal_batch_size());
  TORCH_CHECK(options.target().defined(), fn,
              ": a target is required (the class whose "
              "prediction must be kept); set options.target(y)");
  const torch::Tensor target = detail::expand_target(fn, options.target(), n, input.device());
  const std::vector<double>& percentages = options.percentages();
  const int64_t p_count = static_cast<int64_t>(percentages.size());
  TORCH_CHECK(p_count >= 1, fn, ": percentages must not be empty");
  const int64_t pixels = h * w;
  std::vector<int64_t> counts;
  for (const double p : percentages) {
    TORCH_CHECK(std::isfinite(p) && p >= 0 && p < 100, fn,
                ": percentages must lie in [0, 100), got ", p);
    const auto k = static_cast<int64_t>(std::floor(static_cast<double>(pixels) * p / 100.0));
    TORCH_CHECK(k < pixels, fn, ": percentage ", p, " removes all ", pixels,
                " pixels; at least one must be kept");
    counts.push_back(k);
  }
  const bool noisy = options.noise() > 0;
  if (noisy && options.noise_draws().defined())
    detail::check_noise_draws(fn, options.noise_draws(), {n, p_count, c, h, w}, "[N, P, C, H, W]");

  torch::Tensor r = attributions.detach().to(torch::kDouble);
  if (options.abs()) r = r.abs();
  r = r.sum(1).reshape({n, pixels});
  const torch::Tensor rank = detail::feature_rank(r, options.order() == RemovalOrder::morf);
  const torch::Tensor count_t = torch::tensor(counts, torch::kLong).to(input.device());
  const torch::Tensor x = input.detach();
  const torch::Tensor draws = noisy && options.noise_draws().defined()
                                  ? options.noise_draws().detach().reshape({n * p_count, c, h, w})
                                  : torch::Tensor();
  detail::RowNoise row_noise(options.seed(), {c, h, w});
  const torch::Tensor kept = detail::evaluate_copies(
      fn, model, x, p_count, options.internal_batch_size(), "imputed copies",
      [&](const torch::Tensor& sample, const torch::Tensor& local) {
        const int64_t b = sample.size(0);
        const torch::Tensor m =
            (rank.index_select(0, sample) < count_t.index_select(0, local).unsqueeze(1))
                .to(torch::kDouble)
                .view({b, 1, h, w});
        torch::Tensor rows =
            detail::linear_imputation(fn, x.index_select(0, sample).to(torch::kDouble), m,
                                      options.tolerance(), options.max_iterations());
        if (noisy) {
          const torch::Tensor row = sample * p_count + local;
          torch::Tensor z;
          if (draws.defined()) {
            z = draws.index_select(0, row.to(draws.device())).to(input.device(), torch::kDouble);
          } else {
            const int64_t start = row[0].item<int64_t>();
            z = row_noise.rows(start, start + b).to(input.device());
          }
          rows = rows + options.noise() * m * z;
        }
        return rows.to(x.scalar_type());
      },
      [&](const torch::Tensor& output, const torch::Tensor& sample) {
        TORCH_CHECK(output.dim() == 2, fn, ": the model output must be [N, classes], got shape ",
                    output.sizes());
        return (output.argmax(1) == target.index_select(0, sample)).to(torch::kDouble);
      });
  ROADResult result;
  result.per_sample = kept.cpu();
  result.curve = result.per_sample.mean(0);
  result.percentages = torch::tensor(percentages, torch::kDouble);
  return result;
}

/// ROAD of an explanation method's attributions for `options.target()`; see the form with
/// attributions.
///
/// Example:
/// @code
/// rar::ROADResult r = rar::road(model, rar::explain::saliency(), x, rar::ROADOptions().target(y));
/// @endcode
/// @param model any model
/// @param method an explainer `(model, input, target, create_graph)`
/// @param input images `[N, C, H, W]`
/// @param options as for the form with attributions
/// @return the accuracy curve, the per-sample curves, the percentages
template <class Model, class Method, detail::enable_if_method_t<Method> = 0>
ROADResult road(Model&& model, Method&& method, const torch::Tensor& input,
                const ROADOptions& options = {}) {
  detail::static_check_model<Model>();
  const char* fn = "rar::road";
  detail::check_batch(fn, "input", input);
  const torch::Tensor target =
      detail::expand_target(fn, options.target(), input.size(0), input.device());
  return road(model, input, detail::explain_for_metric(fn, method, model, input, target), options);
}

// --- completeness ------------------------------------------------------------------------------

/// Options of `rar::completeness` and `rar::completeness_gap` (Quantus' `Completeness`).
///
/// Example:
/// @code
/// auto opts =
/// rar::CompletenessOptions().target(y).perturb_baseline(rar::PerturbBaseline::value(0))
///                 .rtol(1e-6);
/// @endcode
struct CompletenessOptions {
  /// The baseline input x′: every feature set to it (Quantus' `perturb_baseline`, default "black",
  /// the sample's minimum).
  RAR_ARG(PerturbBaseline, perturb_baseline) = PerturbBaseline::black();
  /// With a uniform `perturb_baseline`: the drawn values, `[N]`; undefined: drawn from the stream
  /// (seed, 0).
  RAR_ARG(torch::Tensor, baseline_draws);
  /// Sum |φ| instead of φ (Quantus' `abs`, default false).
  RAR_ARG(bool, abs) = false;
  /// Applied to f(x) − f(x′) before the comparison (Quantus' `output_func`); undefined: identity.
  RAR_ARG(std::function<torch::Tensor(const torch::Tensor&)>, output_func);
  /// Relative tolerance of the check (default 0: exact equality, as Quantus' `==`), ≥ 0.
  RAR_ARG(double, rtol) = 0.0;
  /// Absolute tolerance of the check (default 0), ≥ 0.
  RAR_ARG(double, atol) = 0.0;
  /// Seed of uniform baselines.
  RAR_ARG(uint64_t, seed) = 0;
  /// The class explained, int64 `[N]` or 0-dim on the input's device.
  RAR_ARG(torch::Tensor, target);
  /// f (default: the target's logit, Quantus' `softmax=False`).
  RAR_ARG(ScoreFunction, score) = score::logit;
};

namespace detail {

/// (Σφ, output_func(f(x) − f(x′))) per sample, float64 `[N]` each on the input's device.
template <class Model>
std::pair<torch::Tensor, torch::Tensor> completeness_terms(const char* fn, Model& model,
                                                           const torch::Tensor& input,
                                                           const torch::Tensor& attributions,
                                                           const CompletenessOptions& options) {
  check_batch(fn, "input", input);
  rar::detail::check_callable(fn, "score", options.score());
  check_perturb_baseline(fn, options.perturb_baseline());
  check_attributions(fn, attributions, input);
  check_same_shape(fn, "input", input, "attributions", attributions);
  TORCH_CHECK(std::isfinite(options.rtol()) && options.rtol() >= 0 &&
                  std::isfinite(options.atol()) && options.atol() >= 0,
              fn, ": rtol and atol must be finite and >= 0, got ", options.rtol(), " and ",
              options.atol());
  const int64_t n = input.size(0);
  const torch::Tensor target = expand_target(fn, options.target(), n, input.device());
  at::Generator generator = seeded_generator(options.seed(), 0);
  const torch::Tensor fill = perturb_fill(fn, options.perturb_baseline(), input, 1,
                                          options.baseline_draws(), generator, "[N]");
  torch::NoGradGuard no_grad;
  const torch::Tensor x = input.detach();
  std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
  shape[0] = n;
  const torch::Tensor x_baseline = fill.to(x.scalar_type()).reshape(shape).expand(x.sizes());
  const torch::Tensor f_x = score_rows(fn, model, options.score(), x, target);
  const torch::Tensor f_b =
      score_rows(fn, model, options.score(), x_baseline.contiguous(), target, x, "baselines");
  torch::Tensor delta = f_x - f_b;
  if (options.output_func()) {
    delta = options.output_func()(delta);
    TORCH_CHECK(delta.defined() && delta.sizes() == torch::IntArrayRef{n}, fn,
                ": output_func must return one value per sample, shape [", n, "], got ",
                delta.defined() ? delta.sizes() : torch::IntArrayRef{});
    delta = delta.to(torch::kDouble);
  }
  torch::Tensor a = attributions.detach().to(torch::kDouble).reshape({n, -1});
  if (options.abs()) a = a.abs();
  return {a.sum(1), delta};
}

}  // namespace detail

/// Completeness (Sundararajan, Taly, Yan, "Axiomatic Attribution for Deep Networks", ICML 2017),
/// as Quantus' `Completeness`: whether the attributions sum to the change of the score between the
/// input and the baseline input x′ (every feature at the baseline, by default the sample's
/// minimum).
///
/// result[n] = 1 when |Σᵢ φᵢ − g(f(x) − f(x′))| ≤ atol + rtol·|g(f(x) − f(x′))|, else 0, with g
/// = `output_func`. With the defaults rtol = atol = 0 this is Quantus' exact `==` test, which
/// floating-point round-off fails for almost any method; set a tolerance, or read the gap itself
/// with `rar::completeness_gap`. Quantus returns booleans; rar returns them as float64 1/0 like
/// its other metrics. Differences: the attributions are not divided by their maximum (Quantus'
/// default `normalise=True` would change the sum being tested), and the sum is taken in float64.
///
/// Example:
/// @code
/// auto ig = rar::integrated_gradients(model, x, rar::IGOptions().target(y).steps(200));
/// torch::Tensor ok = rar::completeness(model, x, ig,
///     rar::CompletenessOptions().target(y).perturb_baseline(rar::PerturbBaseline::value(0)).rtol(1e-3));
/// @endcode
/// @param model any model
/// @param input batch `[N, ...]`, float32 or float64, any device
/// @param attributions the input's shape, on its device
/// @param options baseline, abs, output_func, tolerances, seed, target, score
/// @return float64 `[N]` of 1 and 0 on the CPU
template <class Model>
torch::Tensor completeness(Model&& model, const torch::Tensor& input,
                           const torch::Tensor& attributions,
                           const CompletenessOptions& options = {}) {
  detail::static_check_model<Model>();
  const char* fn = "rar::completeness";
  torch::Tensor total, change;
  std::tie(total, change) = detail::completeness_terms(fn, model, input, attributions, options);
  const torch::Tensor gap = (total - change).abs();
  return (gap <= options.atol() + options.rtol() * change.abs()).to(torch::kDouble).cpu();
}

/// The completeness gap Σᵢ φᵢ − g(f(x) − f(x′)) per sample (signed), the quantity whose zero
/// Quantus' `Completeness` tests; see `rar::completeness`.
///
/// Example:
/// @code
/// torch::Tensor gap = rar::completeness_gap(model, x, attr, rar::CompletenessOptions().target(y));
/// @endcode
/// @param model any model
/// @param input batch `[N, ...]`
/// @param attributions the input's shape, on its device
/// @param options baseline, abs, output_func, seed, target, score (tolerances unused)
/// @return float64 `[N]` on the CPU
template <class Model>
torch::Tensor completeness_gap(Model&& model, const torch::Tensor& input,
                               const torch::Tensor& attributions,
                               const CompletenessOptions& options = {}) {
  detail::static_check_model<Model>();
  const auto terms =
      detail::completeness_terms("rar::completeness_gap", model, input, attributions, options);
  return (terms.first - terms.second).cpu();
}

/// Completeness of an explanation method's attributions for `options.target()`; see the form
/// with attributions.
///
/// Example:
/// @code
/// torch::Tensor ok = rar::completeness(model, rar::explain::gradient_x_input(), x,
///                                      rar::CompletenessOptions().target(y).rtol(1e-6));
/// @endcode
/// @param model any model
/// @param method an explainer `(model, input, target, create_graph)`
/// @param input batch `[N, ...]`
/// @param options as for the form with attributions
/// @return float64 `[N]` of 1 and 0 on the CPU
template <class Model, class Method, detail::enable_if_method_t<Method> = 0>
torch::Tensor completeness(Model&& model, Method&& method, const torch::Tensor& input,
                           const CompletenessOptions& options = {}) {
  detail::static_check_model<Model>();
  const char* fn = "rar::completeness";
  detail::check_batch(fn, "input", input);
  const torch::Tensor target =
      detail::expand_target(fn, options.target(), input.size(0), input.device());
  return completeness(model, input, detail::explain_for_metric(fn, method, model, input, target),
                      options);
}

// --- SSIM and the random-logit test ------------------------------------------------------------

/// Structural similarity of each flattened sample of `a` and `b` (Wang, Bovik, Sheikh,
/// Simoncelli, "Image Quality Assessment: From Error Visibility to Structural Similarity", IEEE
/// TIP 2004), as Quantus' `ssim` computes it: skimage's `structural_similarity` on the two
/// flattened maps (one dimension) with `data_range` = max − min over both, a uniform window of
/// `win_size` values, K1 = 0.01, K2 = 0.03, sample covariances (skimage's defaults).
///
/// Per window: S = (2 μa μb + C1)(2 σab + C2) / ((μa² + μb² + C1)(σa² + σb² + C2)),
/// C1 = (0.01 R)², C2 = (0.03 R)², the (co)variances scaled by w/(w − 1); the result is the mean
/// of S over the D − w + 1 windows that lie inside the vector (skimage crops the others). NaN
/// when both maps are the same constant (R = 0).
///
/// Example:
/// @code
/// torch::Tensor s = rar::ssim(map_a, map_b);   // float64 [N], 1 for identical maps
/// @endcode
/// @param a batch `[N, ...]` with at least `win_size` values per sample, float32 or float64
/// @param b batch of the same shape
/// @param win_size odd window length ≥ 3 (skimage's default 7)
/// @return float64 `[N]` on the CPU
inline torch::Tensor ssim(const torch::Tensor& a, const torch::Tensor& b, int64_t win_size = 7) {
  const char* fn = "rar::ssim";
  detail::check_batch(fn, "a", a);
  detail::check_batch(fn, "b", b);
  TORCH_CHECK(a.sizes() == b.sizes(), fn, ": a and b must have the same shape, got ", a.sizes(),
              " and ", b.sizes());
  TORCH_CHECK(win_size >= 3 && win_size % 2 == 1, fn, ": win_size must be odd and >= 3, got ",
              win_size);
  const int64_t n = a.size(0);
  const torch::Tensor x = a.detach().to(torch::kCPU, torch::kDouble).reshape({n, -1});
  const torch::Tensor y = b.detach().to(torch::kCPU, torch::kDouble).reshape({n, -1});
  TORCH_CHECK(x.size(1) >= win_size, fn, ": win_size = ", win_size, " exceeds the ", x.size(1),
              " values per sample");
  const torch::Tensor both = torch::cat({x, y}, 1);
  const torch::Tensor range = std::get<0>(both.max(1)) - std::get<0>(both.min(1));
  const auto mean = [&](const torch::Tensor& t) {
    return torch::avg_pool1d(t.unsqueeze(1), {win_size}, {1}).squeeze(1);
  };
  const double cov_norm = static_cast<double>(win_size) / static_cast<double>(win_size - 1);
  const torch::Tensor ux = mean(x), uy = mean(y);
  const torch::Tensor vx = cov_norm * (mean(x * x) - ux * ux);
  const torch::Tensor vy = cov_norm * (mean(y * y) - uy * uy);
  const torch::Tensor vxy = cov_norm * (mean(x * y) - ux * uy);
  const torch::Tensor c1 = (0.01 * range).pow(2).unsqueeze(1),
                      c2 = (0.03 * range).pow(2).unsqueeze(1);
  const torch::Tensor s =
      (2 * ux * uy + c1) * (2 * vxy + c2) / ((ux * ux + uy * uy + c1) * (vx + vy + c2));
  return s.mean(1);
}

/// A similarity of two batches of maps `[N, D]` (float64), one value per sample `[N]`: the
/// `similarity` of `rar::random_logit`.
///
/// Example:
/// @code
/// rar::MapSimilarity cosine = [](const torch::Tensor& a, const torch::Tensor& b) {
///   return torch::cosine_similarity(a, b, 1);
/// };
/// @endcode
using MapSimilarity = std::function<torch::Tensor(const torch::Tensor& a, const torch::Tensor& b)>;

/// Options of `rar::random_logit` (Quantus' `RandomLogit` parameters).
///
/// Example:
/// @code
/// auto opts = rar::RandomLogitOptions().target(y).num_classes(10).seed(42);
/// @endcode
struct RandomLogitOptions {
  /// Number of classes the random class is drawn from (Quantus' `num_classes`, default 1000
  /// there); 0 (default): the width of the model's output.
  RAR_ARG(int64_t, num_classes) = 0;
  /// Explicit other classes, int64 `[N]` on the input's device, each different from its target;
  /// undefined: drawn uniformly from the other num_classes − 1 classes (stream (seed, 0)).
  RAR_ARG(torch::Tensor, classes);
  /// Seed of the random classes.
  RAR_ARG(uint64_t, seed) = 0;
  /// The class explained, int64 `[N]` or 0-dim on the input's device (required).
  RAR_ARG(torch::Tensor, target);
  /// The similarity of the two maps (flattened, float64 `[N, D]`); undefined (default):
  /// `rar::ssim` with `win_size`, as Quantus.
  RAR_ARG(MapSimilarity, similarity);
  /// Window of the default SSIM (skimage's default 7).
  RAR_ARG(int64_t, win_size) = 7;
  /// Divide each map by its largest |φ| first (Quantus' `normalise=True` with `normalise_by_max`,
  /// here per sample); an all-zero map is left as it is.
  RAR_ARG(bool, normalize) = true;
  /// Compare |φ| (Quantus' `abs`, default false), after normalizing.
  RAR_ARG(bool, abs) = false;
};

/// The random-logit test (Sixt, Granz, Landgraf, "When Explanations Lie: Why Many Modified BP
/// Attributions Fail", ICML 2020), as Quantus' `RandomLogit`: the similarity of the explanation of
/// the target class and the explanation of a random other class. A method that explains the class
/// gives dissimilar maps (low SSIM); one that ignores it gives the same map twice.
///
/// For each sample a class ỹ ≠ y is drawn uniformly from the other num_classes − 1 classes (as
/// Quantus: an index in [0, num_classes − 2], skipping y), both maps are normalized by their
/// largest |φ| (per sample; Quantus divides by the largest value of the whole batch, which makes
/// a sample's score depend on its batch mates) and compared with `similarity` (SSIM by default).
///
/// Costs two calls of `method` on the batch (the target, then the random classes), plus one
/// forward when `num_classes` is 0.
///
/// Example:
/// @code
/// torch::Tensor s = rar::random_logit(model, rar::explain::saliency(), x,
///                                     rar::RandomLogitOptions().target(y).seed(1));
/// @endcode
/// @param model any model returning `[N, classes]`
/// @param method an explainer `(model, input, target, create_graph)`
/// @param input batch `[N, ...]`, float32 or float64, any device
/// @param options num_classes or classes, seed, target, similarity, win_size, normalize, abs
/// @return float64 `[N]` on the CPU
template <class Model, class Method, detail::enable_if_method_t<Method> = 0>
torch::Tensor random_logit(Model&& model, Method&& method, const torch::Tensor& input,
                           const RandomLogitOptions& options = {}) {
  detail::static_check_model<Model>();
  const char* fn = "rar::random_logit";
  detail::check_batch(fn, "input", input);
  const int64_t n = input.size(0);
  TORCH_CHECK(options.target().defined(), fn,
              ": a target is required (the class explained); set options.target(y)");
  const torch::Tensor target = detail::expand_target(fn, options.target(), n, input.device());
  int64_t classes = options.num_classes();
  TORCH_CHECK(classes >= 0, fn, ": num_classes must be >= 0 (0 = the model's output width), got ",
              classes);
  if (classes == 0) {
    torch::NoGradGuard no_grad;
    const torch::Tensor out = call_model(model, input.detach());
    TORCH_CHECK(out.dim() == 2, fn, ": the model output must be [N, classes], got shape ",
                out.sizes());
    classes = out.size(1);
  }
  TORCH_CHECK(classes >= 2, fn, ": num_classes must be >= 2 (another class is needed), got ",
              classes);
  rar::detail::check_class_range(fn, target, classes);
  const auto t_cpu = target.cpu();
  torch::Tensor other = options.classes();
  if (other.defined()) {
    TORCH_CHECK(other.scalar_type() == torch::kLong && other.sizes() == torch::IntArrayRef{n}, fn,
                ": classes must be int64 [", n, "], got ", other.scalar_type(), " of shape ",
                other.sizes());
    TORCH_CHECK(other.device() == input.device(), fn, ": classes must be on the input's device ",
                input.device(), ", got ", other.device());
    const auto o = other.cpu();
    TORCH_CHECK(o.min().item<int64_t>() >= 0 && o.max().item<int64_t>() < classes, fn,
                ": classes must lie in [0, ", classes, "), got values in [",
                o.min().item<int64_t>(), ", ", o.max().item<int64_t>(), "]");
    TORCH_CHECK(!(o == t_cpu).any().item<bool>(), fn,
                ": each of classes must differ from its sample's target");
  } else {
    at::Generator generator = seeded_generator(options.seed(), 0);
    const torch::Tensor index = torch::randint(0, classes - 1, {n}, generator, torch::kLong);
    other = (index + (index >= t_cpu).to(torch::kLong)).to(input.device());
  }
  TORCH_CHECK(options.win_size() >= 3 && options.win_size() % 2 == 1, fn,
              ": win_size must be odd and >= 3, got ", options.win_size());
  const auto prepare = [&](torch::Tensor m) {
    m = m.to(torch::kDouble).reshape({n, -1});
    if (options.normalize()) {
      const torch::Tensor top = std::get<0>(m.abs().max(1, /*keepdim=*/true));
      m = m / torch::where(top > 0, top, torch::ones_like(top));
    }
    return options.abs() ? m.abs() : m;
  };
  const torch::Tensor a = prepare(detail::explain_for_metric(fn, method, model, input, target));
  const torch::Tensor b = prepare(detail::explain_for_metric(fn, method, model, input, other));
  if (!options.similarity()) return ssim(a, b, options.win_size());
  const torch::Tensor s = options.similarity()(a, b);
  TORCH_CHECK(s.defined() && s.sizes() == torch::IntArrayRef{n}, fn,
              ": similarity must return one value per sample, shape [", n, "], got ",
              s.defined() ? s.sizes() : torch::IntArrayRef{});
  return s.detach().to(torch::kCPU, torch::kDouble);
}

}  // namespace rar
