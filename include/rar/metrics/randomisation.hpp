#pragma once
/// @file
/// Two repairs of the model-parameter randomisation test (`rar/metrics/sanity.hpp`) from
/// Hedström, Weber, Lapuschkin, Höhne, "Sanity Checks Revisited: An Exploration to Repair the
/// Model Parameter Randomisation Test" (XAI in Action workshop, NeurIPS 2023; TMLR 2024), as
/// Quantus' `SmoothMPRT` and `EfficientMPRT`: the MPRT on noise-averaged explanations, and the
/// relative rise of an explanation's complexity (the entropy of its histogram) once every layer
/// is randomised.

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <rar/core/explainer.hpp>
#include <rar/core/model.hpp>
#include <rar/core/random.hpp>
#include <rar/detail/arg.hpp>
#include <rar/detail/checks.hpp>
#include <rar/metrics/attribution_map.hpp>
#include <rar/metrics/batched_rank_correlation.hpp>
#include <rar/metrics/quality.hpp>
#include <string>
#include <utility>
#include <vector>

namespace rar {

/// The order in which the layers are randomised (Quantus' `layer_order`).
///
/// Example: `rar::SmoothMPRTOptions().layer_order(rar::LayerOrder::top_down)`.
enum class LayerOrder {
  bottom_up,   ///< cascading from the input: after step l the first l layers are random
  top_down,    ///< cascading from the output (Adebayo et al.'s order)
  independent  ///< one layer at a time, the others trained (in the bottom-up order)
};

/// Re-initialises one layer in place: called with the layer's name (as in `named_modules()`) and
/// the layer of the model's copy, gradients off. Lets a test or a study give the random weights
/// explicitly (e.g. Quantus' `reset_parameters`).
///
/// Example:
/// @code
/// rar::LayerRandomizer uniform = [](const std::string&, torch::nn::Module& layer) {
///   for (auto& p : layer.parameters(/*recurse=*/false)) p.uniform_(-0.1, 0.1);
/// };
/// @endcode
using LayerRandomizer = std::function<void(const std::string& name, torch::nn::Module& layer)>;

namespace detail {

/// The layers with parameters of their own, in `named_modules()` order (from the input for a
/// `Sequential`): the layers `rar::parameter_randomization_test` randomises.
template <class Holder>
std::vector<std::string> randomisable_layers(const Holder& model) {
  std::vector<std::string> layers;
  for (const auto& item : model->named_modules())
    if (!item.value()->parameters(/*recurse=*/false).empty()) layers.push_back(item.key());
  return layers;
}

/// The randomiser of `rar::parameter_randomization_test`: Gaussian weights with the standard
/// deviation of the layer's trained weights (biases likewise; 0.01 for a single value or a
/// constant tensor), drawn from `generator` in call order, weights before biases.
inline LayerRandomizer gaussian_randomizer(std::shared_ptr<at::Generator> generator) {
  return [generator](const std::string&, torch::nn::Module& layer) {
    for (auto& p : layer.parameters(/*recurse=*/false)) {
      const double scale = p.numel() > 1 ? p.std().template item<double>() : 0.01;
      p.copy_(normal_like(*generator, p) * (scale > 0 ? scale : 0.01));
    }
  };
}

/// Runs `visit(name, model)` on the model's copy after each randomisation step, the layers
/// from the output down (`top_down`) or from the input up, each on a fresh copy
/// (`independent`) or cumulatively (the model itself is never changed; it must support
/// `clone()`).
template <class Holder, class Visit>
void for_each_randomised_model(const Holder& model, bool top_down, bool independent,
                               const LayerRandomizer& randomize, Visit&& visit) {
  using Impl = typename Holder::ContainedType;
  std::vector<std::string> layers = randomisable_layers(model);
  if (top_down) std::reverse(layers.begin(), layers.end());
  Holder copy(std::dynamic_pointer_cast<Impl>(model->clone()));
  for (const std::string& name : layers) {
    if (independent) copy = Holder(std::dynamic_pointer_cast<Impl>(model->clone()));
    {
      torch::NoGradGuard no_grad;
      auto named = copy->named_modules();
      randomize(name, *named[name]);
    }
    visit(name, copy);
  }
}

/// `for_each_randomised_model` in a `LayerOrder` (independent: bottom-up, as Quantus).
template <class Holder, class Visit>
void for_each_randomised_model(const Holder& model, LayerOrder order,
                               const LayerRandomizer& randomize, Visit&& visit) {
  for_each_randomised_model(model, order == LayerOrder::top_down,
                            order == LayerOrder::independent, randomize,
                            std::forward<Visit>(visit));
}

}  // namespace detail

/// Options of `rar::smooth_mprt`. Defaults are Quantus' `SmoothMPRT` where rar has the knob.
///
/// Example:
/// @code
/// auto opts = rar::SmoothMPRTOptions().samples(20).noise_magnitude(0.1).seed(3);
/// @endcode
struct SmoothMPRTOptions {
  /// Explanations averaged per model state, S ≥ 1: S − 1 noisy inputs and the clean one
  /// (Quantus' `nr_samples`, 50).
  RAR_ARG(int64_t, samples) = 50;
  /// Noise standard deviation relative to each sample's range: σ_n = magnitude ·
  /// (max x_n − min x_n) (Quantus' `noise_magnitude`, 0.1).
  RAR_ARG(double, noise_magnitude) = 0.1;
  /// The randomisation order (Quantus' `layer_order`, bottom-up).
  RAR_ARG(LayerOrder, layer_order) = LayerOrder::bottom_up;
  /// Seed of the default random weights (stream (seed, 0), as `parameter_randomization_test`)
  /// and of the default noise (stream (seed, 1)).
  RAR_ARG(uint64_t, seed) = 0;
  /// Standard normal draws ε `[S − 1, N, ...]` (scaled by σ_n); undefined: drawn from the
  /// stream (seed, 1) in float64. The same draws serve every model state.
  RAR_ARG(torch::Tensor, noise);
  /// How a layer is re-initialised; undefined: `parameter_randomization_test`'s Gaussian rule.
  RAR_ARG(LayerRandomizer, randomize);
  /// How the averaged attributions become the compared maps (Spearman's ρ is invariant to the
  /// normalisation; Quantus takes |·| after normalising by the maximum).
  RAR_ARG(MapOptions, map) = MapOptions();
};

/// The result of `rar::smooth_mprt`: one row of similarities per randomisation step.
///
/// Example:
/// @code
/// rar::SmoothMPRTResult r = rar::smooth_mprt(net, rar::explain::saliency(), x, y);
/// torch::Tensor last = r.similarity[-1];   // Quantus' return_last_correlation
/// @endcode
struct SmoothMPRTResult {
  std::vector<std::string> layers;  ///< the layer randomised at each step, in order
  torch::Tensor similarity;  ///< float64 `[L, N]` on the CPU: Spearman ρ with the trained maps
  /// Mean over the steps per sample `[N]` (Quantus' `return_average_correlation`).
  /// @return float64 `[N]`
  torch::Tensor average() const { return similarity.mean(0); }
};

namespace detail {

/// The noise-averaged map of `method` at `input` (Quantus' `explain_smooth_batch`): one call of
/// the explainer over all S·N rows (the S − 1 noisy copies, sample-major within each draw, then
/// the clean input), averaged over the draws, then `map`.
template <class Method, class Holder>
torch::Tensor smooth_map(const char* fn, Method& method, Holder& model, const torch::Tensor& input,
                         const torch::Tensor& target, const torch::Tensor& scaled_noise,
                         const MapOptions& map) {
  const int64_t s = scaled_noise.size(0) + 1;
  const torch::Tensor rows = torch::cat({(input.unsqueeze(0) + scaled_noise).flatten(0, 1), input});
  const torch::Tensor row_target = target.defined() ? target.repeat({s}) : target;
  std::vector<int64_t> shape(input.sizes().begin(), input.sizes().end());
  shape.insert(shape.begin(), s);
  const torch::Tensor a =
      explain_for_metric(fn, method, model, rows, row_target).view(shape).mean(0);
  return attribution_map(a, map).to(torch::kDouble);
}

}  // namespace detail

/// Smooth MPRT (Hedström et al.; Quantus' `SmoothMPRT`): the model-parameter randomisation test
/// on explanations averaged over noisy copies of the input, which removes the noise that makes
/// the plain test's similarities unreliable.
///
/// ē(f, x) = (1/S) [Σ_{s<S−1} e(f, x + σ ε_s) + e(f, x)] with σ_n = magnitude·(max x_n − min x_n);
/// similarity[l, n] = Spearman ρ(map(ē(f, x_n)), map(ē(f_l, x_n))), f_l the model after
/// randomisation step l (cascading bottom-up by default). Lower is better: a method whose maps
/// survive randomisation is not explaining the trained model. Like Quantus except that: the same
/// noise draws serve every model state (so the differences come from the weights alone, and the
/// trained model's similarity with itself, Quantus' "original" row, is exactly 1 and omitted); the
/// default weights are `parameter_randomization_test`'s (`randomize` accepts any rule, e.g.
/// Quantus' `reset_parameters`); ρ is NaN where a map is constant (Quantus also yields NaN).
/// The model itself is not changed: the test runs on a deep copy (`clone()`).
///
/// Example:
/// @code
/// auto r = rar::smooth_mprt(net, rar::explain::saliency(), x, y,
///                           rar::SmoothMPRTOptions().samples(20));
/// torch::Tensor worst = r.similarity.max(0).values;  // per sample
/// @endcode
/// @param model a module holder (e.g. `torch::nn::Sequential`, a `TORCH_MODULE`)
/// @param method an explainer `(model, input, target, create_graph) -> attributions`
/// @param input batch `[N, ...]`
/// @param target int64 classes `[N]` (or 0-dim)
/// @param options samples, noise_magnitude, layer_order, seed, noise, randomize, map
/// @return the layers in order and the similarities float64 `[L, N]`
template <class Holder, class Method>
SmoothMPRTResult smooth_mprt(const Holder& model, Method&& method, const torch::Tensor& input,
                             const torch::Tensor& target, const SmoothMPRTOptions& options = {}) {
  static_assert(detail::is_module_holder_v<Holder>,
                "rar::smooth_mprt: model must be a module holder such as torch::nn::Sequential "
                "or a TORCH_MODULE");
  const char* fn = "rar::smooth_mprt";
  detail::check_input(fn, "input", input);
  const torch::Tensor y = detail::expand_target(fn, target, input.size(0), input.device());
  TORCH_CHECK(options.samples() >= 1, fn, ": samples must be >= 1, got ", options.samples());
  TORCH_CHECK(std::isfinite(options.noise_magnitude()) && options.noise_magnitude() >= 0, fn,
              ": noise_magnitude must be finite and >= 0, got ", options.noise_magnitude());
  const int64_t n = input.size(0);
  std::vector<int64_t> noise_shape(input.sizes().begin(), input.sizes().end());
  noise_shape.insert(noise_shape.begin(), options.samples() - 1);
  torch::Tensor noise = options.noise();
  if (noise.defined()) {
    TORCH_CHECK(noise.sizes() == torch::IntArrayRef(noise_shape), fn,
                ": noise must have shape [samples - 1, N, ...] = ", torch::IntArrayRef(noise_shape),
                ", got ", noise.sizes());
    noise = noise.to(input.options());
  } else {
    at::Generator gen = seeded_generator(options.seed(), 1);
    noise = normal_like(gen, torch::empty(noise_shape, input.options()));
  }
  const torch::Tensor x = input.detach();
  std::vector<int64_t> per_sample(static_cast<size_t>(input.dim() + 1), 1);
  per_sample[1] = n;
  const torch::Tensor range = x.flatten(1).amax(1) - x.flatten(1).amin(1);
  const torch::Tensor scaled = noise * (options.noise_magnitude() * range).view(per_sample);
  LayerRandomizer randomize = options.randomize();
  if (!randomize)
    randomize = detail::gaussian_randomizer(
        std::make_shared<at::Generator>(seeded_generator(options.seed(), 0)));

  Holder reference = model;
  const torch::Tensor original =
      detail::smooth_map(fn, method, reference, x, y, scaled, options.map());
  SmoothMPRTResult result;
  std::vector<torch::Tensor> rows;
  detail::for_each_randomised_model(
      model, options.layer_order(), randomize, [&](const std::string& name, Holder& copy) {
        const torch::Tensor randomised =
            detail::smooth_map(fn, method, copy, x, y, scaled, options.map());
        result.layers.push_back(name);
        rows.push_back(spearman_rho(original, randomised).to(torch::kCPU, torch::kDouble));
      });
  TORCH_CHECK(!rows.empty(), fn, ": the model has no layer with parameters to randomise");
  result.similarity = torch::stack(rows);
  return result;
}

/// Options of `rar::efficient_mprt`. Defaults are Quantus' `EfficientMPRT`.
///
/// Example:
/// @code
/// auto opts = rar::EfficientMPRTOptions().bins(50).seed(2);
/// @endcode
struct EfficientMPRTOptions {
  /// Bins n of the histogram whose entropy is the complexity (Quantus' `n_bins`, 100).
  RAR_ARG(int64_t, bins) = 100;
  /// The order of the cascading randomisation (every layer is random at the end in either;
  /// the order matters only for the draws of the default randomiser).
  RAR_ARG(LayerOrder, layer_order) = LayerOrder::bottom_up;
  /// Seed of the default random weights (stream (seed, 0)).
  RAR_ARG(uint64_t, seed) = 0;
  /// How a layer is re-initialised; undefined: `parameter_randomization_test`'s Gaussian rule.
  RAR_ARG(LayerRandomizer, randomize);
  /// How attributions become the histogrammed maps. Quantus' defaults: signed values, no
  /// channel sum (`abs` and `normalise` false); a positive scaling changes no histogram.
  RAR_ARG(MapOptions, map) = MapOptions().abs(false).sum_channels(false).normalize(false);
};

/// The result of `rar::efficient_mprt`, float64 `[N]` each, on the CPU.
///
/// Example:
/// @code
/// auto r = rar::efficient_mprt(net, rar::explain::saliency(), x, y);
/// torch::Tensor rise = r.score;  // (H_random − H_trained) / H_trained
/// @endcode
struct EfficientMPRTResult {
  torch::Tensor original_complexity;    ///< H of the trained model's maps
  torch::Tensor randomised_complexity;  ///< H of the fully randomised model's maps
  torch::Tensor score;                  ///< (H_random − H_trained) / H_trained (Quantus' score)
};

/// The discrete entropy of each sample's histogram (Quantus' `discrete_entropy`):
/// H = −Σ_b p_b ln p_b over `bins` equal-width bins spanning [min, max] of the sample (numpy's
/// `np.histogram(a, bins)`, its bin assignment reproduced exactly, the last bin closed; a
/// constant sample falls in one bin of [v − ½, v + ½], H = 0), p_b = count_b / D.
///
/// Example:
/// @code
/// torch::Tensor h = rar::histogram_entropy(maps, 100);  // nats, in [0, ln 100]
/// @endcode
/// @param values `[N, ...]`, float32 or float64, any device
/// @param bins number of bins ≥ 1
/// @return float64 `[N]` on the CPU
inline torch::Tensor histogram_entropy(const torch::Tensor& values, int64_t bins) {
  const char* fn = "rar::histogram_entropy";
  detail::check_batch(fn, "values", values);
  TORCH_CHECK(bins >= 1, fn, ": bins must be >= 1, got ", bins);
  TORCH_CHECK(values[0].numel() > 0, fn,
              ": values must have at least one entry per sample, got "
              "shape ",
              values.sizes());
  const int64_t n = values.size(0);
  const torch::Tensor a = values.detach().to(torch::kCPU, torch::kDouble).reshape({n, -1});
  torch::Tensor first = a.amin(1, true), last = a.amax(1, true);
  const torch::Tensor flat = first == last;
  first = torch::where(flat, first - 0.5, first);
  last = torch::where(flat, last + 0.5, last);
  // np.linspace(first, last, bins + 1): i·step + first, the last edge exactly `last`.
  const torch::Tensor steps = torch::arange(bins + 1, a.options()).unsqueeze(0);
  torch::Tensor edges = steps * ((last - first) / static_cast<double>(bins)) + first;
  edges.select(1, bins).copy_(last.squeeze(1));
  const torch::Tensor norm = static_cast<double>(bins) / (last - first);
  torch::Tensor index = ((a - first) * norm).to(torch::kLong);
  index = torch::where(index == bins, index - 1, index);
  index = torch::where(a < edges.gather(1, index), index - 1, index);
  index = torch::where((a >= edges.gather(1, index + 1)) & (index != bins - 1), index + 1, index);
  const torch::Tensor counts =
      torch::zeros({n, bins}, a.options()).scatter_add_(1, index, torch::ones_like(a));
  const torch::Tensor p = counts / counts.sum(1, true);
  return -torch::xlogy(p, p).sum(1);
}

/// Efficient MPRT (Hedström et al.; Quantus' `EfficientMPRT`): how much more complex the
/// explanations become once every layer of the model is randomised.
///
/// score_n = (H(e(f_rand, x_n)) − H(e(f, x_n))) / H(e(f, x_n)), H the entropy of the map's
/// histogram (`rar::histogram_entropy`, `bins` bins) and f_rand the model after cascading
/// randomisation of all layers. Higher is better: an explanation of a random model should look
/// like noise (high entropy). Two explanations and one randomised copy instead of one per layer.
/// Quantus' score (its `find_n_bins` with no rule gives 100 bins); differs in the default random
/// weights (`parameter_randomization_test`'s; `randomize` accepts any rule). A constant map has
/// H = 0, so its score is ±inf or NaN, as in Quantus. The model itself is not changed.
///
/// Example:
/// @code
/// auto r = rar::efficient_mprt(net, rar::explain::integrated_gradients(), x, y);
/// double mean_rise = r.score.mean().item<double>();
/// @endcode
/// @param model a module holder (e.g. `torch::nn::Sequential`, a `TORCH_MODULE`)
/// @param method an explainer `(model, input, target, create_graph) -> attributions`
/// @param input batch `[N, ...]`
/// @param target int64 classes `[N]` (or 0-dim)
/// @param options bins, layer_order, seed, randomize, map
/// @return the complexities before and after, and the score, float64 `[N]` each
template <class Holder, class Method>
EfficientMPRTResult efficient_mprt(const Holder& model, Method&& method, const torch::Tensor& input,
                                   const torch::Tensor& target,
                                   const EfficientMPRTOptions& options = {}) {
  static_assert(detail::is_module_holder_v<Holder>,
                "rar::efficient_mprt: model must be a module holder such as torch::nn::Sequential "
                "or a TORCH_MODULE");
  const char* fn = "rar::efficient_mprt";
  detail::check_input(fn, "input", input);
  const torch::Tensor y = detail::expand_target(fn, target, input.size(0), input.device());
  TORCH_CHECK(options.bins() >= 1, fn, ": bins must be >= 1, got ", options.bins());
  TORCH_CHECK(options.layer_order() != LayerOrder::independent, fn,
              ": layer_order must be cascading (bottom_up or top_down): the score compares the "
              "fully randomised model, which independent randomisation never reaches");
  LayerRandomizer randomize = options.randomize();
  if (!randomize)
    randomize = detail::gaussian_randomizer(
        std::make_shared<at::Generator>(seeded_generator(options.seed(), 0)));
  const torch::Tensor x = input.detach();
  Holder reference = model;
  EfficientMPRTResult result;
  result.original_complexity = histogram_entropy(
      attribution_map(detail::explain_for_metric(fn, method, reference, x, y), options.map()),
      options.bins());
  std::vector<std::string> layers = detail::randomisable_layers(model);
  TORCH_CHECK(!layers.empty(), fn, ": the model has no layer with parameters to randomise");
  size_t step = 0;
  detail::for_each_randomised_model(
      model, options.layer_order(), randomize, [&](const std::string&, Holder& copy) {
        if (++step < layers.size()) return;  // only the fully randomised model is explained
        result.randomised_complexity = histogram_entropy(
            attribution_map(detail::explain_for_metric(fn, method, copy, x, y), options.map()),
            options.bins());
      });
  result.score =
      (result.randomised_complexity - result.original_complexity) / result.original_complexity;
  return result;
}

}  // namespace rar
