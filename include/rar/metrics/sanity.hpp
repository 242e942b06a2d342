#pragma once
/// @file
/// The model-parameter randomization test of Adebayo, Gilmer, Muelly, Goodfellow, Hardt, Kim,
/// "Sanity Checks for Saliency Maps" (NeurIPS 2018): a map that does not change when the
/// weights are randomized cannot be explaining what the network learned.

#include <rar/core/explainer.hpp>
#include <rar/core/model.hpp>
#include <rar/core/random.hpp>
#include <rar/detail/arg.hpp>
#include <rar/detail/checks.hpp>
#include <rar/metrics/attribution_map.hpp>
#include <rar/metrics/batched_rank_correlation.hpp>
#include <rar/metrics/randomisation.hpp>
#include <rar/metrics/topk.hpp>

#include <torch/torch.h>

#include <memory>
#include <string>
#include <type_traits>
#include <vector>

namespace rar {

/// Options of `rar::parameter_randomization_test`.
///
/// Example:
/// @code
/// auto opts = rar::RandomizationOptions().k(100).cascading(true).seed(1);
/// @endcode
struct RandomizationOptions {
  /// k of the reported top-k intersection.
  RAR_ARG(int64_t, k) = 100;
  /// Cascading (keep the layers above randomized) or independent (one layer at a time).
  RAR_ARG(bool, cascading) = true;
  /// Seed of the random weights: they come from the stream (seed, 0), layer by layer from the
  /// output down, weights before biases.
  RAR_ARG(uint64_t, seed) = 0;
  /// How attributions become the compared maps.
  RAR_ARG(MapOptions, map) = MapOptions();
};

/// Similarity of the maps after randomizing one more layer.
///
/// Example:
/// @code
/// for (const rar::RandomizationStep& step : rar::parameter_randomization_test(net, ig, x, y))
///   std::cout << (step.layer.empty() ? "trained" : step.layer) << ": " << step.spearman << "\n";
/// @endcode
struct RandomizationStep {
  std::string layer;         ///< the module randomized at this step ("" for the trained model)
  double spearman = 0;       ///< mean Spearman rank correlation with the trained model's maps
  double topk_intersection = 0;  ///< mean top-k intersection with the trained model's maps
};

/// Re-initializes a copy of the model layer by layer from the output down and reports how
/// similar its attribution maps stay to the trained model's (first entry: the trained model
/// itself, similarity 1).
///
/// Each randomized layer gets Gaussian weights with the standard deviation of its trained
/// weights (biases likewise), drawn from the stream (seed, 0) (`rar::seeded_generator`). The
/// method is any attribution method: an explainer `(model, x, target, create_graph)`, called
/// with create_graph = false, or an older `(model, x, target)` / `(model, x)` method (through
/// `rar::detail::call_explainer`). The model itself is
/// not changed: the test runs on a deep copy (`clone()`), which the module must support
/// (`torch::nn::Sequential` and every `torch::nn::Cloneable` module do).
///
/// Example:
/// @code
/// auto ig = rar::explain::integrated_gradients(rar::IGOptions().steps(32));
/// for (const auto& step : rar::parameter_randomization_test(net, ig, x, y))
///   std::cout << step.layer << " " << step.spearman << "\n";
/// @endcode
/// @param model a module holder (e.g. `torch::nn::Sequential`, a `TORCH_MODULE`)
/// @param method an explainer `(model, input, target, create_graph) -> attributions`
/// @param input batch `[N, ...]`
/// @param target int64 classes `[N]` (or 0-dim)
/// @param options k, cascading, seed, map
/// @return one step per randomized layer, after the trained model's (similarity 1)
template <class Holder, class Method>
std::vector<RandomizationStep> parameter_randomization_test(const Holder& model, Method&& method,
                                                            const torch::Tensor& input,
                                                            const torch::Tensor& target,
                                                            const RandomizationOptions& options = {}) {
  static_assert(detail::is_module_holder_v<Holder>,
                "rar::parameter_randomization_test: model must be a module holder such as "
                "torch::nn::Sequential or a TORCH_MODULE");
  static_assert(is_explainer_v<std::remove_reference_t<Method>, Holder>,
                "rar::parameter_randomization_test: method must be an explainer callable as "
                "torch::Tensor(model, const torch::Tensor& input, const torch::Tensor& target, "
                "bool create_graph) (e.g. rar::explain::integrated_gradients(opts))");
  const char* fn = "rar::parameter_randomization_test";
  detail::check_batch(fn, "input", input);
  const torch::Tensor y = detail::expand_target(fn, target, input.size(0), input.device());
  Holder reference = model;
  const torch::Tensor original =
      attribution_map(detail::call_explainer(fn, method, reference, input, y, false),
                      options.map())
          .detach();
  const int64_t features = original[0].numel();
  TORCH_CHECK(options.k() >= 1 && options.k() <= features, fn, ": k must be in [1, ", features,
              "], got ", options.k());

  std::vector<RandomizationStep> steps;
  steps.push_back({"", 1.0, 1.0});
  // The layers with parameters of their own, from the output down, each drawn from the stream
  // (seed, 0) in that order.
  detail::for_each_randomised_model(
      model, /*top_down=*/true, /*independent=*/!options.cascading(),
      detail::gaussian_randomizer(std::make_shared<at::Generator>(seeded_generator(options.seed(), 0))),
      [&](const std::string& name, Holder& copy) {
        const torch::Tensor randomized =
            attribution_map(detail::call_explainer(fn, method, copy, input, y, false),
                            options.map())
                .detach();
        steps.push_back(
            {name, spearman_rho(original, randomized).nan_to_num(0.0).mean().template item<double>(),
             topk_intersection(original, randomized, options.k()).mean().template item<double>()});
      });
  return steps;
}

}  // namespace rar
