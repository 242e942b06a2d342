#include "support/explainers.hpp"

#include <sstream>
#include <stdexcept>

#include "support/names.hpp"

namespace rar {
namespace examples {
namespace {

/// Each explainer's command-line name and its title in the output.
constexpr Named<Explainer> kExplainers[] = {
    {Explainer::ig, "ig", "IG"},
    {Explainer::saliency, "saliency", "saliency"},
    {Explainer::deeplift, "deeplift", "DeepLIFT"},
    {Explainer::smoothgrad, "smoothgrad", "SmoothGrad"},
    {Explainer::guided_backprop, "guided-backprop", "guided backprop"}};

// IG of the target logit from a zero baseline with right-Riemann points; a differentiable map
// (the attack's, through the surrogate) uses fewer points than the measured maps.
rar::explain::IntegratedGradients integrated_gradients(const ExplainerConfig& c) {
  return rar::explain::integrated_gradients(
             rar::IGOptions().steps(c.ig_steps).method(rar::Quadrature::riemann_right))
      .graph_steps(c.graph_ig_steps);
}

// The measured map from one method (create_graph = false), the attack's differentiable map from
// another (create_graph = true).
template <class Measured, class Gradient>
struct MeasuredAndGradient {
  Measured measured;
  Gradient gradient;
  template <class Model>
  torch::Tensor operator()(Model& model, const torch::Tensor& input, const torch::Tensor& target,
                           bool create_graph) const {
    return create_graph ? gradient(model, input, target, true)
                        : measured(model, input, target, false);
  }
};

}  // namespace

Explainer parse_explainer(const std::string& name) {
  return parse_name(kExplainers, name, "explainer");
}

std::string explainer_name(Explainer explainer) { return table_entry(kExplainers, explainer).name; }

std::string explainer_title(Explainer explainer) {
  return table_entry(kExplainers, explainer).title;
}

std::vector<std::string> explainer_names() { return table_names(kExplainers); }

NetExplainer make_explainer(const ExplainerConfig& c, const NetConfig& net) {
  switch (c.kind) {
    case Explainer::ig:
      return NetExplainer(integrated_gradients(c));
    case Explainer::saliency:
      return NetExplainer(rar::explain::saliency());
    case Explainer::deeplift:
      return NetExplainer(MeasuredAndGradient<rar::explain::DeepLift, rar::explain::IntegratedGradients>{
          rar::explain::deeplift(), integrated_gradients(c)});
    case Explainer::smoothgrad:
      return NetExplainer(rar::explain::smooth_grad(rar::explain::saliency(),
                                                    rar::SmoothGradOptions()
                                                        .samples(c.smoothgrad_samples)
                                                        .stddev(c.smoothgrad_stddev)
                                                        .seed(c.seed)));
    case Explainer::guided_backprop:
      if (net.leaky_slope != 0.0) {
        std::ostringstream message;
        message << "--explainer guided-backprop: this network's activations are leaky ReLUs "
                   "(slope "
                << net.leaky_slope
                << "), which guided backprop leaves unchanged (it changes ReLUs only, as Captum "
                   "does), so its map would be the plain gradient; choose ig, saliency, deeplift "
                   "or smoothgrad";
        throw std::invalid_argument(message.str());
      }
      return NetExplainer(rar::explain::guided_backprop());
  }
  throw std::logic_error("unknown explainer");
}

std::string attack_gradient_note(const ExplainerConfig& c, double surrogate_beta) {
  if (c.kind != Explainer::deeplift) return "";
  std::ostringstream line;
  line << "explainer deeplift: IN/CO compare DeepLIFT maps (rescale rule, zero baseline); "
          "DeepLIFT's map is not differentiable, so the attack follows the gradient of the "
          "smooth surrogate's IG map ("
       << c.graph_ig_steps << " right-Riemann points, softplus beta " << surrogate_beta << ")";
  return line.str();
}

}  // namespace examples
}  // namespace rar
