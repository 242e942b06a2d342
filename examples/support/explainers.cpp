#include "support/explainers.hpp"

#include <algorithm>
#include <sstream>
#include <vector>
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
    {Explainer::guided_backprop, "guided-backprop", "guided backprop"},
    {Explainer::gradient_x_input, "gradient-x-input", "gradient x input"},
    {Explainer::gradient_shap, "gradient-shap", "GradientSHAP"},
    {Explainer::occlusion, "occlusion", "occlusion"},
    {Explainer::kernel_shap, "kernel-shap", "KernelSHAP"},
    {Explainer::lime, "lime", "LIME"},
    {Explainer::expected_gradients, "expected-gradients", "Expected Gradients"},
    {Explainer::idgi, "idgi", "IDGI"},
    {Explainer::blur_ig, "blur-ig", "Blur IG"},
    {Explainer::guided_ig, "guided-ig", "Guided IG"}};

// Square patches of side image_size / 7 (4 pixels on 28 x 28 and 32 x 32 images, 18 on 128):
// the occlusion window and the perturbation methods' features (49 to 64 of them).
int64_t patch_side(const NetConfig& net) { return std::max<int64_t>(1, net.image_size / 7); }

// Feature ids of the square superpixels, the same in every channel, [1, C, S, S].
torch::Tensor superpixel_mask(const NetConfig& net) {
  const int64_t side = patch_side(net), s = net.image_size;
  const auto rows = torch::arange(s, torch::kLong).div(side, "floor");
  const int64_t per_row = (s + side - 1) / side;
  const auto ids = rows.view({s, 1}) * per_row + rows.view({1, s});
  return ids.expand({net.in_channels, s, s}).unsqueeze(0).contiguous();
}

// A perturbation method whose feature mask moves to the input's device at each call.
template <class Options, class Method>
struct MaskedPerturbation {
  static constexpr bool differentiable = false;
  static constexpr const char* not_differentiable_because =
      "a perturbation map is a difference of forward passes, not differentiable w.r.t. the input";
  Options options;
  torch::Tensor mask;  // CPU
  Method method;
  template <class Model>
  torch::Tensor operator()(Model& model, const torch::Tensor& input, const torch::Tensor& target,
                           bool create_graph) const {
    if (create_graph) rar::detail::refuse_graph<MaskedPerturbation>("the perturbation explainer");
    Options o = options;
    o.feature_mask(mask.to(input.device()));
    if (target.defined()) o.target(target);
    return method(model, input, o);
  }
};

// Two baselines, a black and a mid-gray image, [2, ...] in the input's dtype and on its device.
torch::Tensor zero_and_gray(const torch::Tensor& input) {
  std::vector<int64_t> shape(input.sizes().begin(), input.sizes().end());
  shape[0] = 1;
  const auto zero = torch::zeros(shape, input.options());
  return torch::cat({zero, zero + 0.5});
}

// GradientSHAP from a zero and a mid-gray baseline.
struct GradientShapTwoBaselines {
  rar::GradientShapOptions options;
  template <class Model>
  torch::Tensor operator()(Model& model, const torch::Tensor& input, const torch::Tensor& target,
                           bool create_graph) const {
    rar::GradientShapOptions o = options;
    o.baselines(zero_and_gray(input)).create_graph(create_graph);
    if (target.defined()) o.target(target);
    return rar::gradient_shap(model, input, o);
  }
};

// Expected Gradients over a zero and a mid-gray baseline (every baseline, 4 Gauss-Legendre
// points each).
struct ExpectedGradientsTwoBaselines {
  template <class Model>
  torch::Tensor operator()(Model& model, const torch::Tensor& input, const torch::Tensor& target,
                           bool create_graph) const {
    auto o = rar::ExpectedGradientsOptions()
                 .baselines(zero_and_gray(input))
                 .samples(0)
                 .steps(4)
                 .create_graph(create_graph);
    if (target.defined()) o.target(target);
    return rar::expected_gradients(model, input, o);
  }
};

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
  using measured_type = Measured;
  static constexpr bool differentiable = rar::is_differentiable_explainer_v<Gradient>;
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

bool explainer_is_differentiable(Explainer explainer) {
  // The library's trait of the measured method (rar::is_differentiable_explainer_v), as
  // make_explainer builds it.
  ExplainerConfig config;
  config.kind = explainer;
  return make_explainer(config, NetConfig{}).measured_is_differentiable();
}

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
      return NetExplainer(
          MeasuredAndGradient<rar::explain::GuidedBackprop, rar::explain::IntegratedGradients>{
              rar::explain::guided_backprop(), integrated_gradients(c)});
    case Explainer::gradient_x_input:
      return NetExplainer(rar::explain::gradient_x_input());
    case Explainer::gradient_shap:
      return NetExplainer(GradientShapTwoBaselines{
          rar::GradientShapOptions().samples(c.smoothgrad_samples).stddev(c.smoothgrad_stddev).seed(c.seed)});
    case Explainer::occlusion: {
      const int64_t side = patch_side(net);
      auto measured = rar::explain::occlusion(rar::OcclusionOptions()
                                                  .window({net.in_channels, side, side})
                                                  .strides({net.in_channels, side, side}));
      return NetExplainer(MeasuredAndGradient<decltype(measured), rar::explain::IntegratedGradients>{
          measured, integrated_gradients(c)});
    }
    case Explainer::kernel_shap: {
      auto call = [](auto& model, const torch::Tensor& x, const rar::KernelShapOptions& o) {
        return rar::kernel_shap(model, x, o);
      };
      MaskedPerturbation<rar::KernelShapOptions, decltype(call)> measured{
          rar::KernelShapOptions().samples(200).seed(c.seed), superpixel_mask(net), call};
      return NetExplainer(MeasuredAndGradient<decltype(measured), rar::explain::IntegratedGradients>{
          measured, integrated_gradients(c)});
    }
    case Explainer::lime: {
      auto call = [](auto& model, const torch::Tensor& x, const rar::LimeOptions& o) {
        return rar::lime(model, x, o);
      };
      MaskedPerturbation<rar::LimeOptions, decltype(call)> measured{
          rar::LimeOptions().samples(200).seed(c.seed), superpixel_mask(net), call};
      return NetExplainer(MeasuredAndGradient<decltype(measured), rar::explain::IntegratedGradients>{
          measured, integrated_gradients(c)});
    }
    case Explainer::expected_gradients:
      return NetExplainer(ExpectedGradientsTwoBaselines{});
    case Explainer::idgi: {
      // The attack's differentiable map uses the graph's points, as IG's does.
      const auto measured = rar::explain::idgi(rar::IDGIOptions().steps(c.ig_steps));
      const auto gradient = rar::explain::idgi(rar::IDGIOptions().steps(c.graph_ig_steps));
      return NetExplainer(MeasuredAndGradient<rar::explain::IDGI, rar::explain::IDGI>{measured, gradient});
    }
    case Explainer::blur_ig:
      return NetExplainer(MeasuredAndGradient<rar::explain::BlurIG, rar::explain::BlurIG>{
          rar::explain::blur_ig(rar::BlurIGOptions().steps(c.ig_steps)),
          rar::explain::blur_ig(rar::BlurIGOptions().steps(c.graph_ig_steps))});
    case Explainer::guided_ig: {
      auto measured = rar::explain::guided_ig(rar::GuidedIGOptions());
      return NetExplainer(MeasuredAndGradient<decltype(measured), rar::explain::IntegratedGradients>{
          measured, integrated_gradients(c)});
    }
  }
  throw std::logic_error("unknown explainer");
}

std::string attack_gradient_note(const ExplainerConfig& c, double surrogate_beta) {
  if (explainer_is_differentiable(c.kind)) return "";
  std::ostringstream line;
  const std::string title = explainer_title(c.kind);
  line << "explainer " << explainer_name(c.kind) << ": IN/CO compare " << title << " maps"
       << (c.kind == Explainer::deeplift ? " (rescale rule, zero baseline)" : "") << "; "
       << title << "'s map is not differentiable, so the attack follows the gradient of the "
          "smooth surrogate's IG map ("
       << c.graph_ig_steps << " right-Riemann points, softplus beta ";
  if (surrogate_beta > 0)
    line << surrogate_beta << ")";
  else
    line << "chosen per model)";
  return line.str();
}

}  // namespace examples
}  // namespace rar
