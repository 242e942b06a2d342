#pragma once
/// @file
/// The attribution methods whose maps `eval` and `explain` measure (`--explainer`): their name
/// table, and explainers of the examples' networks and of their smooth surrogates.

#include <rar/rar.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "models.hpp"

namespace rar {
namespace examples {

/// The attribution method measured by IN/CO (`--explainer`).
enum class Explainer {
  ig,              ///< Integrated Gradients, zero baseline, right-Riemann points (the paper's)
  saliency,        ///< the input gradient
  deeplift,        ///< DeepLIFT, rescale rule, zero baseline
  smoothgrad,      ///< SmoothGrad over the input gradient
  guided_backprop,   ///< guided backprop (changes ReLUs only)
  gradient_x_input,  ///< gradient × input
  gradient_shap,     ///< GradientSHAP: expected gradients from zero and mid-gray baselines
  occlusion,         ///< occlusion of square patches (perturbation, not differentiable)
  kernel_shap,       ///< KernelSHAP over square superpixels (perturbation)
  lime,              ///< LIME over square superpixels (perturbation)
  expected_gradients,  ///< Expected Gradients over a zero and a mid-gray baseline (4 points each)
  idgi,                ///< IDGI: IG's path steps projected on the gradient's direction
  blur_ig,             ///< Blur IG: the path from a blurred copy (PAIR's defaults)
  guided_ig            ///< Guided IG (PAIR's defaults; not differentiable)
};

/// Whether an explainer's map is differentiable w.r.t. the input (the attack can follow it
/// through the surrogate); for the others the attack follows the surrogate's IG map.
bool explainer_is_differentiable(Explainer explainer);

Explainer parse_explainer(const std::string& name);  ///< throws naming the choices
std::string explainer_name(Explainer explainer);     ///< "ig", "saliency", ...
std::string explainer_title(Explainer explainer);    ///< "IG", "saliency", "DeepLIFT", ...
std::vector<std::string> explainer_names();          ///< every name, for the CLI

/// The settings of the explainers (the evaluation presets fill them in).
struct ExplainerConfig {
  Explainer kind = Explainer::ig;
  int64_t ig_steps = 100;       ///< IG points of the measured maps
  int64_t graph_ig_steps = 10;  ///< IG points of the surrogate's differentiable maps
  int64_t smoothgrad_samples = 25;
  double smoothgrad_stddev = 0.15;  ///< noise, in pixel units ([0, 1] images)
  uint64_t seed = 0;                ///< SmoothGrad's noise
};

/// The attack's surrogate of a network: the same weights, its `rar::nn` activations smoothed to
/// softplus_β while it runs (`rar::smooth_surrogate`).
using Surrogate = decltype(rar::smooth_surrogate(std::declval<Net&>(), 1.0));

/// An explainer `(model, input, target, create_graph) -> attributions` for the examples'
/// networks and their surrogates, with the method chosen at run time. `rar::attribution_attack`
/// calls it on the network with create_graph = false (the measured maps) and on the surrogate
/// with create_graph = true (the attack gradient).
class NetExplainer {
 public:
  /// Wraps any explainer callable on both a `Net` and a `Surrogate`.
  template <class E, class = std::enable_if_t<!std::is_same_v<std::decay_t<E>, NetExplainer>>>
  explicit NetExplainer(E explainer)
      : on_net_(explainer),
        on_surrogate_(std::move(explainer)),
        measured_differentiable_(rar::is_differentiable_explainer_v<measured_t<E>>) {}

  /// Whether the measured map's method is differentiable (`rar::is_differentiable_explainer_v`
  /// of it); when not, the attack follows another method's map (`attack_gradient_note`).
  bool measured_is_differentiable() const noexcept { return measured_differentiable_; }

  torch::Tensor operator()(Net& net, const torch::Tensor& input, const torch::Tensor& target,
                           bool create_graph) const {
    return on_net_(net, input, target, create_graph);
  }
  torch::Tensor operator()(const Surrogate& surrogate, const torch::Tensor& input,
                           const torch::Tensor& target, bool create_graph) const {
    return on_surrogate_(surrogate, input, target, create_graph);
  }

 private:
  std::function<torch::Tensor(Net&, const torch::Tensor&, const torch::Tensor&, bool)> on_net_;
  std::function<torch::Tensor(const Surrogate&, const torch::Tensor&, const torch::Tensor&, bool)>
      on_surrogate_;
  bool measured_differentiable_;

  // The method of the measured maps: E's `measured_type` when it pairs two methods, else E.
  template <class E, class = void>
  struct measured {
    using type = E;
  };
  template <class E>
  struct measured<E, std::void_t<typename E::measured_type>> {
    using type = typename E::measured_type;
  };
  template <class E>
  using measured_t = typename measured<E>::type;
};

/// The explainer of `config.kind` for networks shaped like `net`:
/// - the differentiable methods (`rar::is_differentiable_explainer_v`: ig, saliency, smoothgrad,
///   gradient-x-input, gradient-shap, expected-gradients, idgi, blur-ig): the same method gives
///   the measured map (create_graph = false) and, through the smooth surrogate, the attack's
///   differentiable map (create_graph = true; IG, IDGI and Blur IG then use `graph_ig_steps`
///   points);
/// - the others (deeplift, guided-backprop, occlusion, kernel-shap, lime, guided-ig): the
///   measured map is the method's and the attack's differentiable map is the surrogate's IG
///   (`graph_ig_steps` points).
/// Throws a one-line error for guided backprop on a leaky-ReLU network (guided backprop changes
/// ReLUs only, so its map would be the plain gradient).
NetExplainer make_explainer(const ExplainerConfig& config, const NetConfig& net);

/// One line saying which map the attack differentiates when it is not the measured method's
/// (deeplift); empty otherwise.
std::string attack_gradient_note(const ExplainerConfig& config, double surrogate_beta);

}  // namespace examples
}  // namespace rar
