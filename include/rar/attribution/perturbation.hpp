#pragma once
/// @file
/// Perturbation attribution: occlusion (Zeiler, Fergus, "Visualizing and Understanding
/// Convolutional Networks", ECCV 2014) and feature ablation, with Captum 0.7's `Occlusion` and
/// `FeatureAblation` semantics. Both compare the score of the input with the scores of copies in
/// which a region is replaced by a baseline; the copies of many regions and of every sample run
/// through the model in one forward, in chunks chosen by rar's batching rule
/// (`rar/core/batching.hpp`). Shapley value sampling, built on the same machinery, is in
/// `rar/attribution/shapley_value_sampling.hpp`.

#include <rar/core/batching.hpp>
#include <rar/core/model.hpp>
#include <rar/core/score.hpp>
#include <rar/detail/arg.hpp>
#include <rar/detail/checks.hpp>

#include <torch/torch.h>

#include <cstdint>
#include <utility>
#include <vector>

namespace rar {

/// Options for `rar::occlusion`.
///
/// Example:
/// @code
/// // 4×4 patches of all channels of [N, 1, 28, 28] images, moved by 2 pixels, replaced by 0:
/// auto opts = rar::OcclusionOptions({1, 4, 4}).strides({1, 2, 2}).target(y);
/// torch::Tensor attr = rar::occlusion(model, images, opts);
/// @endcode
struct OcclusionOptions {
  /// Options with an empty window (set one with `window(...)`).
  OcclusionOptions() = default;
  /// Options with the given window shape.
  /// @param window one extent per non-batch dimension of the input
  explicit OcclusionOptions(std::vector<int64_t> window) : window_(std::move(window)) {}

  /// Shape of the occluded patch, one extent per non-batch dimension (each in [1, size]);
  /// empty for a 1-D input `[N]` (the whole sample is occluded). Captum's
  /// `sliding_window_shapes`.
  RAR_ARG(std::vector<int64_t>, window);
  /// Step of the window in each non-batch dimension: empty (the default) = 1 everywhere, one
  /// entry = that step in every dimension (Captum's int), or one entry per dimension. Each step
  /// must be ≤ its window extent unless the window spans the dimension (as in Captum), so that
  /// every element is covered.
  RAR_ARG(std::vector<int64_t>, strides);
  /// The value an occluded element takes (Captum's scalar `baselines`).
  RAR_ARG(double, baseline) = 0.0;
  /// A baseline tensor instead of the scalar (Captum's tensor `baselines`): broadcastable to
  /// the input (one per sample, or `[1, ...]` for the batch), the input's dtype and device.
  /// Undefined (the default): `baseline` everywhere.
  RAR_ARG(torch::Tensor, baseline_tensor);
  /// Class per sample, int64 `[N]` or 0-dim. Undefined: the class the model predicts for the
  /// input (argmax of its `[N, C]` output); a model with output `[N]` is explained as it is.
  RAR_ARG(torch::Tensor, target);
  /// Window positions per forward pass (each contributes N rows). 0 (the default) = rar's
  /// batching rule over the rows; Captum's `perturbations_per_eval`.
  RAR_ARG(int64_t, perturbations_per_eval) = 0;
  /// What is explained: a per-sample scalar `[N]` from (output, target); Captum explains the
  /// target's output, the logit (`rar::score::logit`).
  RAR_ARG(ScoreFunction, score) = score::logit;
};

/// Options for `rar::feature_ablation`.
///
/// Example:
/// @code
/// // 7×7 superpixels of [N, 1, 28, 28] images, one mask for the batch:
/// torch::Tensor rows = torch::arange(28).div(7, "trunc");
/// torch::Tensor mask = (rows.view({28, 1}) * 4 + rows.view({1, 28})).view({1, 1, 28, 28});
/// torch::Tensor attr = rar::feature_ablation(
///     model, images, rar::FeatureAblationOptions().feature_mask(mask).target(y));
/// @endcode
struct FeatureAblationOptions {
  /// Integer group id of every element: a tensor that broadcasts to the input with its own
  /// batch dimension 1 (one mask for the batch) or N (one per sample), e.g. `[1, 1, H, W]` to
  /// group the channels of a pixel; fewer dimensions than the input are aligned to the right
  /// (as in Captum). Any integer dtype, the input's device; ids need not be consecutive.
  /// Undefined (the default): every element is its own group.
  RAR_ARG(torch::Tensor, feature_mask);
  /// The value an ablated element takes (Captum's scalar `baselines`).
  RAR_ARG(double, baseline) = 0.0;
  /// A baseline tensor instead of the scalar, broadcastable to the input, the input's dtype and
  /// device. Undefined (the default): `baseline` everywhere.
  RAR_ARG(torch::Tensor, baseline_tensor);
  /// Class per sample, int64 `[N]` or 0-dim. Undefined: the class the model predicts for the
  /// input; a model with output `[N]` is explained as it is.
  RAR_ARG(torch::Tensor, target);
  /// Groups ablated per forward pass (each contributes N rows). 0 (the default) = rar's
  /// batching rule over the rows; Captum's `perturbations_per_eval`.
  RAR_ARG(int64_t, perturbations_per_eval) = 0;
  /// What is explained: a per-sample scalar `[N]` from (output, target).
  RAR_ARG(ScoreFunction, score) = score::logit;
};

namespace detail {

/// The target a perturbation method explains, checked against the model output at the input:
/// undefined and `[N, C]` output: the predicted class; otherwise `target` (range-checked).
inline torch::Tensor resolve_perturbation_target(const char* fn, const torch::Tensor& output,
                                                 const torch::Tensor& target) {
  if (output.dim() != 2) return target;
  if (!target.defined()) return output.argmax(1);
  check_class_range(fn, target, output.size(1));
  return target;
}

/// `score(model(rows), target)` for perturbed rows of `input`, checked to be one value per
/// row; errors are raised in the caller's terms (`in_user_terms`).
template <class Model>
torch::Tensor perturbation_scores(const char* fn, Model& model, const torch::Tensor& input,
                                  const torch::Tensor& rows, const torch::Tensor& target,
                                  const ScoreFunction& score) {
  const torch::Tensor s = in_user_terms(
      fn, model, input, [&] { return score(call_model(model, rows), target); },
      [&] {
        return "a batch of " + std::to_string(rows.size(0)) + " perturbed copies of the " +
               std::to_string(input.size(0)) + " samples (shape " + c10::str(rows.sizes()) + ")";
      });
  TORCH_CHECK(s.dim() == 1 && s.size(0) == rows.size(0), fn,
              ": the score function must return one value per sample, shape [", rows.size(0),
              "], got ", s.sizes());
  return s;
}

/// The baseline of a perturbation method: the tensor broadcast to the input (checked), or the
/// scalar as a 0-dim tensor of the input's dtype and device.
inline torch::Tensor perturbation_baseline(const char* fn, double value,
                                           const torch::Tensor& tensor,
                                           const torch::Tensor& input) {
  if (tensor.defined()) return expand_baseline(fn, tensor, input);
  return torch::full({}, value, input.options());
}

/// Rows `sample` of a baseline from `perturbation_baseline` (a 0-dim baseline broadcasts).
inline torch::Tensor baseline_rows(const torch::Tensor& baseline, const torch::Tensor& sample) {
  return baseline.dim() == 0 ? baseline : baseline.index_select(0, sample);
}

/// The checks and the unperturbed forward every perturbation method starts with.
struct PerturbationStart {
  torch::Tensor input;     ///< the input, detached
  torch::Tensor baseline;  ///< input-shaped, or 0-dim
  torch::Tensor target;    ///< `[N]` (resolved), or undefined for a model with output `[N]`
  torch::Tensor score;     ///< score at the input, `[N]`
  torch::Tensor baseline_score;  ///< score at the baseline `[N]` (when asked for)
};

/// Validates the common arguments and scores the input (and the baseline with
/// `with_baseline`) in one forward.
template <class Model>
PerturbationStart start_perturbation(const char* fn, Model& model, const torch::Tensor& input,
                                     double baseline_value, const torch::Tensor& baseline_tensor,
                                     const torch::Tensor& target, int64_t perturbations_per_eval,
                                     const ScoreFunction& score, bool with_baseline) {
  check_batch(fn, "input", input);
  rar::detail::check_batching(fn, "perturbations_per_eval", perturbations_per_eval);
  rar::detail::check_callable(fn, "score", score);
  PerturbationStart start;
  start.input = input.detach();
  start.baseline = perturbation_baseline(fn, baseline_value, baseline_tensor, start.input);
  const int64_t n = input.size(0);
  torch::Tensor t = expand_target(fn, target, n, input.device());
  torch::Tensor rows = start.input;
  if (with_baseline) rows = torch::cat({rows, start.baseline.expand(input.sizes())});
  const torch::Tensor output =
      with_baseline
          ? in_user_terms(fn, model, start.input, [&] { return call_model(model, rows); },
                          [&] {
                            return "the input and its baseline stacked (shape " +
                                   c10::str(rows.sizes()) + ")";
                          })
          : call_model(model, rows);
  TORCH_CHECK(output.dim() >= 1 && output.size(0) == rows.size(0), fn,
              ": the model must return one row per sample; for the input of shape ",
              input.sizes(), " it returns shape ", output.sizes());
  t = resolve_perturbation_target(fn, output.slice(0, 0, n), t);
  start.target = t;
  const torch::Tensor s = score(output, t.defined() && with_baseline ? t.repeat({2}) : t);
  TORCH_CHECK(s.dim() == 1 && s.size(0) == rows.size(0), fn,
              ": the score function must return one value per sample, shape [", rows.size(0),
              "], got ", s.sizes());
  start.score = s.slice(0, 0, n);
  if (with_baseline) start.baseline_score = s.slice(0, n);
  return start;
}

/// The rows of one chunk of a perturbation batch laid out perturbation-major: row
/// r = p·N + n is perturbation p of sample n.
struct PerturbationChunk {
  torch::Tensor perturbation;  ///< p of every row, int64 `[rows]` on the input's device
  torch::Tensor sample;        ///< n of every row, int64 `[rows]` on the input's device
  /// `[rows, 1, ..., 1]`: the shape that broadcasts a per-row value over `dims` trailing
  /// dimensions.
  std::vector<int64_t> row_shape(int64_t dims) const {
    std::vector<int64_t> shape(static_cast<size_t>(dims + 1), 1);
    shape[0] = sample.size(0);
    return shape;
  }
};

/// Runs `pass(chunk)` over the `perturbations`·N rows of a perturbation batch in chunks: of
/// `perturbations_per_eval`·N rows when it is > 0, otherwise by rar's batching rule
/// (`rar::detail::for_each_row_chunk`), which sees rows of the input's size.
template <class Pass>
void for_each_perturbation_chunk(int64_t perturbations, int64_t perturbations_per_eval,
                                 const torch::Tensor& input, Pass&& pass) {
  const int64_t n = input.size(0);
  const int64_t row_bytes = input.numel() / n * static_cast<int64_t>(input.element_size());
  const auto index = torch::TensorOptions().dtype(torch::kLong).device(input.device());
  for_each_row_chunk(perturbations * n, perturbations_per_eval * n, input.device(), row_bytes,
                     [&](int64_t start, int64_t stop) {
                       const torch::Tensor rows = torch::arange(start, stop, index);
                       pass(PerturbationChunk{rows.div(n, "trunc"), rows.remainder(n)});
                     });
}

/// A feature mask in canonical form.
struct FeatureGroups {
  torch::Tensor mask;   ///< int64 group ids, the input's rank, dim 0 of size 1 or N
  torch::Tensor ids;    ///< the distinct ids, sorted, `[F]`
  torch::Tensor index;  ///< position of each mask element's id in `ids`, the mask's shape
};

/// Validates a feature mask against the input and brings it into canonical form; an undefined
/// mask makes every element its own group.
inline FeatureGroups feature_groups(const char* fn, const torch::Tensor& feature_mask,
                                    const torch::Tensor& input) {
  FeatureGroups groups;
  const auto index_options = torch::TensorOptions().dtype(torch::kLong).device(input.device());
  std::vector<int64_t> shape(input.sizes().begin(), input.sizes().end());
  if (!feature_mask.defined()) {
    shape[0] = 1;
    const int64_t features = input.numel() / input.size(0);
    groups.ids = torch::arange(features, index_options);
    groups.mask = groups.ids.view(shape);
    groups.index = groups.mask;
    return groups;
  }
  TORCH_CHECK(c10::isIntegralType(feature_mask.scalar_type(), /*includeBool=*/false), fn, ": feature_mask must hold integer group ids, got ", feature_mask.scalar_type());
  TORCH_CHECK(feature_mask.device() == input.device(), fn,
              ": feature_mask must be on the input's device ", input.device(), ", got ",
              feature_mask.device());
  bool ok = feature_mask.dim() <= input.dim() && feature_mask.numel() > 0;
  for (int64_t i = 1; ok && i <= feature_mask.dim(); ++i) {
    const int64_t m = feature_mask.size(-i);
    ok = m == 1 || m == input.size(-i);
  }
  TORCH_CHECK(ok, fn, ": feature_mask of shape ", feature_mask.sizes(),
              " does not broadcast to the input's shape ", input.sizes(),
              " (each dimension must be 1 or the input's, aligned to the right)");
  std::vector<int64_t> aligned(static_cast<size_t>(input.dim() - feature_mask.dim()), 1);
  aligned.insert(aligned.end(), feature_mask.sizes().begin(), feature_mask.sizes().end());
  groups.mask = feature_mask.to(torch::kLong).reshape(aligned);
  auto unique = at::_unique(groups.mask.flatten(), /*sorted=*/true, /*return_inverse=*/true);
  groups.ids = std::get<0>(unique);
  groups.index = std::get<1>(unique).view(aligned);
  return groups;
}

/// Per-sample totals accumulated in the mask's shape, `[N, m1, ...]`, expanded to the input's
/// shape as a new tensor.
inline torch::Tensor expand_to_input(const torch::Tensor& totals, const torch::Tensor& input) {
  return totals.expand(input.sizes()).contiguous();
}

}  // namespace detail

/// Occlusion: how much the score drops when a sliding patch is replaced by the baseline,
/// averaged over the patches that cover each element.
///
/// With the windows W_1 … W_K (the window `w` moved by `s` in every non-batch dimension:
/// positions 0, s, 2s, …, ⌈(D − w)/s⌉·s, the last one cut at the border), x^(k) the input
/// with W_k replaced by the baseline and F the score,
///
///   A_i(x) = Σ_{k: i ∈ W_k} (F(x) − F(x^(k))) / |{k: i ∈ W_k}|.
///
/// The same as Captum 0.7's `Occlusion(model).attribute(x, sliding_window_shapes=window,
/// strides=strides, baselines=baseline, target=target)`, which returns float32 whatever the
/// input's dtype; rar returns the input's dtype. Costs one forward over the N inputs and one
/// over the K·N occluded copies, in chunks (`perturbations_per_eval` overrides the batching
/// rule), without gradients. Does not change the model's mode, flags or gradients.
///
/// Example:
/// @code
/// torch::Tensor attr = rar::occlusion(net, images,
///                                     rar::OcclusionOptions({1, 4, 4}).strides({1, 2, 2}));
/// @endcode
/// @param model any model (module holder, module, or callable Tensor(const Tensor&))
/// @param input batch `[N, ...]`, float32 or float64, on any device
/// @param options window, strides, baseline, target, perturbations_per_eval, score
/// @return attributions with the shape, dtype and device of `input`
template <class Model>
torch::Tensor occlusion(Model&& model, const torch::Tensor& input,
                        const OcclusionOptions& options) {
  detail::static_check_model<Model>();
  const char* fn = "rar::occlusion";
  detail::check_batch(fn, "input", input);
  const int64_t dims = input.dim() - 1;
  const std::vector<int64_t>& window = options.window();
  TORCH_CHECK(static_cast<int64_t>(window.size()) == dims, fn, ": window has ", window.size(),
              " entries but input has ", dims, " non-batch dimensions (input ", input.sizes(),
              ")");
  std::vector<int64_t> strides = options.strides();
  if (strides.empty()) strides.assign(static_cast<size_t>(dims), 1);
  if (strides.size() == 1) strides.assign(static_cast<size_t>(dims), strides[0]);
  TORCH_CHECK(static_cast<int64_t>(strides.size()) == dims, fn, ": strides has ",
              options.strides().size(), " entries but input has ", dims,
              " non-batch dimensions (give one per dimension, one for all, or none for 1)");
  for (int64_t d = 0; d < dims; ++d) {
    const auto i = static_cast<size_t>(d);
    TORCH_CHECK(window[i] >= 1 && window[i] <= input.size(d + 1), fn, ": window ",
                c10::IntArrayRef(window), " does not fit the input ", input.sizes(),
                ": dimension ", d + 1, " has size ", input.size(d + 1), ", window extent ",
                window[i]);
    TORCH_CHECK(strides[i] >= 1, fn, ": strides must be >= 1, got ", c10::IntArrayRef(strides));
    TORCH_CHECK(strides[i] <= window[i] || window[i] == input.size(d + 1), fn, ": stride ",
                strides[i], " exceeds the window extent ", window[i], " in dimension ", d + 1,
                ", so some elements would never be occluded (window ", c10::IntArrayRef(window),
                ", strides ", c10::IntArrayRef(strides), ")");
  }
  torch::NoGradGuard no_grad;
  const detail::PerturbationStart start = detail::start_perturbation(
      fn, model, input, options.baseline(), options.baseline_tensor(), options.target(),
      options.perturbations_per_eval(), options.score(), /*with_baseline=*/false);
  const torch::Tensor& x = start.input;
  const auto index = torch::TensorOptions().dtype(torch::kLong).device(x.device());

  // Per dimension: which elements each window position covers, [positions, size].
  std::vector<torch::Tensor> covers;
  std::vector<int64_t> positions;
  int64_t windows = 1;
  torch::Tensor count;  // windows covering each element, [D1, ..., Dd]
  for (int64_t d = 0; d < dims; ++d) {
    const auto i = static_cast<size_t>(d);
    const int64_t size = input.size(d + 1);
    const int64_t k = (size - window[i] + strides[i] - 1) / strides[i] + 1;
    const torch::Tensor first = torch::arange(k, index).mul(strides[i]).unsqueeze(1);
    const torch::Tensor element = torch::arange(size, index).unsqueeze(0);
    covers.push_back(element.ge(first).logical_and(element.lt(first + window[i])));
    positions.push_back(k);
    windows *= k;
    std::vector<int64_t> view(static_cast<size_t>(dims), 1);
    view[i] = size;
    const torch::Tensor c = covers.back().sum(0).to(x.scalar_type()).view(view);
    count = count.defined() ? count * c : c;
  }

  torch::Tensor totals = torch::zeros_like(x);
  detail::for_each_perturbation_chunk(
      windows, options.perturbations_per_eval(), x, [&](const detail::PerturbationChunk& chunk) {
        // The occluded region of every row: the product of its window's per-dimension spans
        // (window index p, last dimension fastest).
        torch::Tensor occluded;
        torch::Tensor rest = chunk.perturbation;
        for (int64_t d = dims - 1; d >= 0; --d) {
          const auto i = static_cast<size_t>(d);
          std::vector<int64_t> view = chunk.row_shape(dims);
          view[i + 1] = input.size(d + 1);
          const torch::Tensor span =
              covers[i].index_select(0, rest.remainder(positions[i])).view(view);
          rest = rest.div(positions[i], "trunc");
          occluded = occluded.defined() ? occluded.logical_and(span) : span;
        }
        if (!occluded.defined()) {
          occluded = torch::ones({chunk.sample.size(0)}, index.dtype(torch::kBool));
        }
        const torch::Tensor rows = torch::where(
            occluded, detail::baseline_rows(start.baseline, chunk.sample),
            x.index_select(0, chunk.sample));
        const torch::Tensor t =
            start.target.defined() ? start.target.index_select(0, chunk.sample) : start.target;
        const torch::Tensor drop =
            start.score.index_select(0, chunk.sample) -
            detail::perturbation_scores(fn, model, x, rows, t, options.score());
        totals.index_add_(0, chunk.sample, drop.view(chunk.row_shape(dims)) * occluded);
      });
  return count.defined() ? totals / count : totals;
}

/// Feature ablation: for every group of the feature mask, how much the score drops when the
/// group is replaced by the baseline; every element of the group gets that drop.
///
///   A_i(x) = F(x) − F(x with the group of i set to the baseline).
///
/// The same as Captum 0.7's `FeatureAblation(model).attribute(x, baselines=baseline,
/// target=target, feature_mask=mask)` (float64 in, float64 out). A mask `[1, ...]` is shared by
/// the batch, a mask `[N, ...]` gives each sample its own groups. Costs one forward over the N
/// inputs and one over the G·N ablated copies (G the number of distinct ids), in chunks
/// (`perturbations_per_eval` overrides the batching rule), without gradients. Captum runs one
/// pass per id between the smallest and the largest; rar only the ids that occur.
///
/// Example:
/// @code
/// torch::Tensor per_pixel = rar::feature_ablation(net, images,
///                                                 rar::FeatureAblationOptions().target(y));
/// @endcode
/// @param model any model (module holder, module, or callable Tensor(const Tensor&))
/// @param input batch `[N, ...]`, float32 or float64, on any device
/// @param options feature_mask, baseline, target, perturbations_per_eval, score
/// @return attributions with the shape, dtype and device of `input`
template <class Model>
torch::Tensor feature_ablation(Model&& model, const torch::Tensor& input,
                               const FeatureAblationOptions& options = {}) {
  detail::static_check_model<Model>();
  const char* fn = "rar::feature_ablation";
  detail::check_batch(fn, "input", input);
  const detail::FeatureGroups groups = detail::feature_groups(fn, options.feature_mask(), input);
  TORCH_CHECK(groups.mask.size(0) == 1 || groups.mask.size(0) == input.size(0), fn,
              ": feature_mask must have batch dimension 1 (shared) or ", input.size(0),
              " (one per sample), got shape ", options.feature_mask().sizes());
  torch::NoGradGuard no_grad;
  const detail::PerturbationStart start = detail::start_perturbation(
      fn, model, input, options.baseline(), options.baseline_tensor(), options.target(),
      options.perturbations_per_eval(), options.score(), /*with_baseline=*/false);
  const torch::Tensor& x = start.input;
  const int64_t dims = x.dim() - 1;
  std::vector<int64_t> totals_shape(groups.mask.sizes().begin(), groups.mask.sizes().end());
  totals_shape[0] = x.size(0);
  torch::Tensor totals = torch::zeros(totals_shape, x.options());
  const bool shared = groups.mask.size(0) == 1;
  detail::for_each_perturbation_chunk(
      groups.ids.size(0), options.perturbations_per_eval(), x,
      [&](const detail::PerturbationChunk& chunk) {
        const torch::Tensor mask =
            shared ? groups.mask : groups.mask.index_select(0, chunk.sample);
        const torch::Tensor ablated =
            mask.eq(groups.ids.index_select(0, chunk.perturbation).view(chunk.row_shape(dims)));
        const torch::Tensor rows = torch::where(
            ablated, detail::baseline_rows(start.baseline, chunk.sample),
            x.index_select(0, chunk.sample));
        const torch::Tensor t =
            start.target.defined() ? start.target.index_select(0, chunk.sample) : start.target;
        const torch::Tensor drop =
            start.score.index_select(0, chunk.sample) -
            detail::perturbation_scores(fn, model, x, rows, t, options.score());
        totals.index_add_(0, chunk.sample, drop.view(chunk.row_shape(dims)) * ablated);
      });
  return detail::expand_to_input(totals, x);
}

}  // namespace rar
