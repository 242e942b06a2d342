#pragma once
/// @file
/// Choosing the smooth surrogate's β by its fidelity: the attribution attack follows the
/// gradient of the surrogate's map, so a surrogate that does not predict the model's class is a
/// poor guide and makes the model look more robust than it is (docs/guide.md, "Surrogate
/// fidelity"). `rar::choose_surrogate_beta` measures the agreement of `rar::smooth_surrogate`
/// with the model along a ladder of β and returns the smallest β whose agreement reaches a
/// threshold: agreement on the class, and, given an explainer, agreement of the maps (the
/// surrogate's top-k features against the model's), since the attack moves the real map by
/// following the surrogate's.

#include <rar/core/explainer.hpp>
#include <rar/core/model.hpp>
#include <rar/detail/arg.hpp>
#include <rar/detail/checks.hpp>
#include <rar/metrics/attribution_map.hpp>
#include <rar/metrics/topk.hpp>
#include <rar/nn/surrogate.hpp>

#include <torch/torch.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

namespace rar {

/// Options of `rar::choose_surrogate_beta`.
struct SurrogateBetaOptions {
  /// The β tried, in increasing order (the smallest one that reaches `threshold` is chosen).
  RAR_ARG(std::vector<double>, ladder) = std::vector<double>{1, 3, 10, 30, 100, 300};
  /// Share of the inputs on which the surrogate must predict the model's class, in (0, 1].
  /// 0.99 by default: on a natural Fashion-MNIST CNN, β = 10 agreed on 96 % of 50 images and
  /// the attack reached IN 48.1 %, against 42.8 % with β = 30 (100 %) on the same images.
  RAR_ARG(double, threshold) = 0.99;
  /// Mean top-k intersection of the surrogate's map with the model's map that a β must also
  /// reach, in [0, 1]; 0 turns the map criterion off. Used only by the overload that takes an
  /// explainer. 0.9 by default: on the demo's natural Fashion-MNIST CNN, β = 10 agreed on the
  /// class of 98 % of 100 images but on only 82 % of the top-100 features, and the attack
  /// reached IN 40.5 %, against 37.1 % with β = 30 (100 %, 92 %) on the same images; on the
  /// IG-SUM-NORM model β = 10 already reached 99 % and 92 %, and β = 10, 30 and 100 attacked
  /// equally hard (IN 57.5 %, 57.4 %, 57.9 %).
  RAR_ARG(double, map_threshold) = 0.9;
  /// k of the map comparison: the number of top features of each map compared, 1 ≤ k ≤ the
  /// map's features. The attribution attack's `rar::auto_surrogate` uses the attack's own k.
  RAR_ARG(int64_t, k) = 100;
  /// How attributions become the compared maps (|·|, channels summed, normalized). The
  /// attribution attack's `rar::auto_surrogate` uses the attack's own map options.
  RAR_ARG(MapOptions, map) = {};
};

/// What `rar::choose_surrogate_beta` measured and chose.
struct SurrogateBetaChoice {
  /// The chosen β: the smallest β of the ladder whose agreement reaches the threshold, or the
  /// ladder's largest β when none does (then `reached` is false).
  double beta = 0;
  /// The chosen β's agreement: the share of inputs where the surrogate predicts the model's class.
  double agreement = 0;
  /// Whether `agreement` reaches the threshold.
  bool reached = false;
  /// The agreement of every β tried, in the ladder's order (the ladder stops at the chosen β).
  std::vector<double> agreements;
  /// The chosen β's map agreement: the mean top-k intersection of the surrogate's map with the
  /// model's over the inputs. NaN when the maps were not compared (no explainer, a map
  /// threshold of 0, or a β below the class threshold).
  double map_agreement = std::numeric_limits<double>::quiet_NaN();
  /// The map agreement of every β tried, in the ladder's order (NaN where not compared: the
  /// maps are compared only once the class agreement reaches its threshold).
  std::vector<double> map_agreements;
};

namespace detail {

/// Checks the ladder and thresholds of `options` for `fn`.
inline void check_surrogate_beta_options(const char* fn, const SurrogateBetaOptions& options) {
  const auto& ladder = options.ladder();
  TORCH_CHECK(!ladder.empty(), fn, ": ladder must hold at least one beta");
  for (size_t i = 0; i < ladder.size(); ++i) {
    TORCH_CHECK(std::isfinite(ladder[i]) && ladder[i] > 0, fn,
                ": every beta of the ladder must be finite and > 0, got ", ladder[i], " at ", i);
    TORCH_CHECK(i == 0 || ladder[i] > ladder[i - 1], fn,
                ": the ladder must increase, got ", ladder[i - 1], " then ", ladder[i]);
  }
  TORCH_CHECK(options.threshold() > 0 && options.threshold() <= 1, fn,
              ": threshold must lie in (0, 1], got ", options.threshold());
  TORCH_CHECK(options.map_threshold() >= 0 && options.map_threshold() <= 1, fn,
              ": map_threshold must lie in [0, 1] (0: no map criterion), got ",
              options.map_threshold());
}

/// The ladder walk shared by both overloads: `map_agreement(surrogate)` is called for a β whose
/// class agreement reaches the threshold; `nullptr` instead of a callable means no map
/// criterion (class agreement alone decides).
template <class Model, class MapAgreement>
SurrogateBetaChoice walk_beta_ladder(Model& model, const torch::Tensor& x,
                                     const SurrogateBetaOptions& options,
                                     const MapAgreement& map_agreement) {
  constexpr bool compare_maps = !std::is_same<MapAgreement, std::nullptr_t>::value;
  torch::Tensor predicted;
  {
    torch::NoGradGuard no_grad;
    predicted = call_model(model, x).argmax(1);
  }
  SurrogateBetaChoice choice;
  for (const double beta : options.ladder()) {
    auto smooth = smooth_surrogate(model, beta);
    double agreement = 0;
    {
      torch::NoGradGuard no_grad;
      agreement = (call_model(smooth, x).argmax(1) == predicted)
                      .to(torch::kDouble)
                      .mean()
                      .template item<double>();
    }
    double maps = std::numeric_limits<double>::quiet_NaN();
    const bool class_ok = agreement >= options.threshold();
    if constexpr (compare_maps) {
      if (class_ok) maps = map_agreement(smooth);
    }
    choice.agreements.push_back(agreement);
    choice.map_agreements.push_back(maps);
    choice.beta = beta;
    choice.agreement = agreement;
    choice.map_agreement = maps;
    if (class_ok && (!compare_maps || maps >= options.map_threshold())) {
      choice.reached = true;
      break;
    }
  }
  return choice;
}

}  // namespace detail

/// The smallest β of a ladder at which `rar::smooth_surrogate(model, β)` predicts the model's
/// class on at least `threshold` of the inputs.
///
/// The attribution attack differentiates the surrogate's map. With β too small the surrogate is
/// a different classifier (e.g. 8 % agreement at β = 1 for a natural Fashion-MNIST ResNet), the
/// attack follows the wrong gradient and the model looks robust. With β too large the surrogate
/// approaches the ReLU network, whose map has no useful second derivative. The smallest β
/// with high agreement is the usual choice. This overload compares classes only
/// (`map_threshold`, `k` and `map` are not used); given the explainer, the overload below also
/// compares the maps, which the attack actually moves. Costs one no-grad forward of the model
/// and one of the surrogate per β tried.
///
/// Example:
/// @code
/// auto choice = rar::choose_surrogate_beta(net, x_test);   // ladder 1, 3, 10, ..., 99 %
/// auto smooth = rar::smooth_surrogate(net, choice.beta);
/// auto r = rar::attribution_attack(net, smooth, rar::explain::integrated_gradients(), x, y);
/// @endcode
/// @param model any model whose nonlinearities `rar::smooth_surrogate` can smooth
/// @param input batch `[N, ...]` (e.g. the images to attack), finite
/// @param options ladder (increasing, each > 0), threshold in (0, 1]
/// @return the chosen β, its agreement and the agreement of each β tried
template <class Model>
SurrogateBetaChoice choose_surrogate_beta(Model&& model, const torch::Tensor& input,
                                          const SurrogateBetaOptions& options = {}) {
  const char* fn = "rar::choose_surrogate_beta";
  detail::check_input(fn, "input", input);
  detail::check_surrogate_beta_options(fn, options);
  const torch::Tensor x = input.detach();
  return detail::walk_beta_ladder(model, x, options, nullptr);
}

/// The smallest β of a ladder at which `rar::smooth_surrogate(model, β)` predicts the model's
/// class on at least `threshold` of the inputs *and* its map agrees with the model's map: the
/// mean top-k intersection of the two maps (`method` on the model and on the surrogate, for
/// `target`, made maps by `options.map()`) reaches `map_threshold`.
///
/// The attribution attack moves the real map by following the gradient of the surrogate's map,
/// so the surrogate should explain the input the way the model does, not only classify it the
/// same way: on the demo's natural CNN a β that agreed on the class of 98 % of the images
/// shared only 82 % of the top-100 features, and the next β of the ladder attacked harder
/// (IN 37.1 % against 40.5 %). Costs, per β tried, one no-grad forward of the surrogate, and,
/// once the class agreement passes, one map of the surrogate (one map of the model in all).
///
/// Example:
/// @code
/// auto ig = rar::explain::integrated_gradients(rar::IGOptions().steps(20));
/// auto choice = rar::choose_surrogate_beta(net, ig, x, y, rar::SurrogateBetaOptions().k(100));
/// std::cout << "beta " << choice.beta << ": class " << choice.agreement << ", top-100 "
///           << choice.map_agreement << "\n";
/// @endcode
/// @param model any model whose nonlinearities `rar::smooth_surrogate` can smooth
/// @param method the explainer whose maps are compared (the one the attack will use)
/// @param input batch `[N, ...]`, finite
/// @param target class per sample `[N]` (int64) whose maps are compared
/// @param options ladder (increasing, each > 0), threshold in (0, 1], map_threshold in [0, 1]
///        (0: class agreement only), k in [1, map features], map
/// @return the chosen β, its class and map agreement, and those of each β tried
template <class Model, class Method>
SurrogateBetaChoice choose_surrogate_beta(Model&& model, Method&& method, const torch::Tensor& input,
                                          const torch::Tensor& target,
                                          const SurrogateBetaOptions& options = {}) {
  const char* fn = "rar::choose_surrogate_beta";
  detail::check_input(fn, "input", input);
  detail::check_surrogate_beta_options(fn, options);
  TORCH_CHECK(target.defined() && target.dim() == 1 && target.size(0) == input.size(0), fn,
              ": target must hold one class per input sample, shape [", input.size(0), "], got ",
              target.defined() ? target.sizes() : torch::IntArrayRef{});
  const torch::Tensor x = input.detach();
  if (options.map_threshold() <= 0) return detail::walk_beta_ladder(model, x, options, nullptr);
  const torch::Tensor model_map =
      attribution_map(detail::call_explainer(fn, method, model, x, target, false), options.map())
          .detach();
  const int64_t features = model_map.numel() / std::max<int64_t>(1, model_map.size(0));
  TORCH_CHECK(options.k() >= 1 && options.k() <= features, fn,
              ": k must be in [1, ", features, "] (the features of each map, shape ",
              model_map.sizes().slice(1), "), got k = ", options.k());
  return detail::walk_beta_ladder(model, x, options, [&](auto& smooth) {
    const torch::Tensor map =
        attribution_map(detail::call_explainer(fn, method, smooth, x, target, false),
                        options.map())
            .detach();
    return topk_intersection(model_map, map, options.k()).mean().template item<double>();
  });
}

/// A surrogate chosen by the attack itself: passed as the surrogate of
/// `rar::attribution_attack`, it makes the attack call `rar::choose_surrogate_beta` on the
/// attack's input and differentiate `rar::smooth_surrogate(model, β)` with the chosen β, which
/// the result reports in `AttackResult::surrogate_beta`. The attack uses the overload with its
/// explainer: class and map agreement on its input and target, the maps compared at the
/// attack's own k and map options (`options.k()` and `options.map()` here are replaced).
///
/// Example:
/// @code
/// auto r = rar::attribution_attack(net, rar::auto_surrogate(), ig, x, y, opts);
/// std::cout << "beta " << r.surrogate_beta << ", agreement "
///           << r.surrogate_agreement.to(torch::kDouble).mean().item<double>() << "\n";
/// @endcode
struct AutoSurrogate {
  /// The ladder and the agreement thresholds of the choice.
  SurrogateBetaOptions options;
};

/// An `AutoSurrogate`: the attack chooses the surrogate's β by agreement on its input.
/// @param options ladder (increasing, each > 0), threshold in (0, 1], map_threshold in [0, 1]
inline AutoSurrogate auto_surrogate(const SurrogateBetaOptions& options = {}) {
  return AutoSurrogate{options};
}

namespace detail {
/// Whether `T` (after decay) is `rar::AutoSurrogate`.
template <class T>
inline constexpr bool is_auto_surrogate_v = std::is_same_v<std::decay_t<T>, AutoSurrogate>;
}  // namespace detail

}  // namespace rar
