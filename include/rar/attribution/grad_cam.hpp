#pragma once
/// @file
/// Grad-CAM and Guided Grad-CAM (Selvaraju, Cogswell, Das, Vedantam, Parikh, Batra, "Grad-CAM:
/// Visual Explanations from Deep Networks via Gradient-based Localization", ICCV 2017), with the
/// semantics of Captum 0.7's `LayerGradCam` and `GuidedGradCam`, for a model written as
/// tail(head(x)) (the layer h = head(x), as in `rar::layer_integrated_gradients`).

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <rar/attribution/gradient.hpp>
#include <rar/attribution/guided_backprop.hpp>
#include <rar/core/model.hpp>
#include <rar/core/score.hpp>
#include <rar/detail/arg.hpp>
#include <rar/detail/checks.hpp>
#include <rar/nn/model.hpp>
#include <rar/nn/scope.hpp>
#include <type_traits>
#include <vector>

namespace rar {

/// How a layer map is resized to the input's size: the modes of `torch.nn.functional.interpolate`
/// (Captum's `interpolate_mode`), with its defaults (`align_corners` unset, i.e. false).
enum class Interpolation {
  nearest,        ///< "nearest" (Captum's default): floor(i · in/out)
  nearest_exact,  ///< "nearest-exact": round((i + 0.5) · in/out − 0.5)
  linear,         ///< "linear": 1 spatial dimension (maps `[N, C, L]`)
  bilinear,       ///< "bilinear": 2 spatial dimensions (maps `[N, C, H, W]`)
  bicubic,        ///< "bicubic": 2 spatial dimensions
  trilinear,      ///< "trilinear": 3 spatial dimensions (maps `[N, C, D, H, W]`)
  area            ///< "area": adaptive average pooling, any of 1–3 spatial dimensions
};

/// Options for `rar::grad_cam`.
///
/// Example:
/// @code
/// torch::Tensor cam = rar::grad_cam(head, tail, images,
/// rar::GradCamOptions().target(y).relu(true));
/// @endcode
struct GradCamOptions {
  /// Class per sample, int64 `[N]` or 0-dim. Undefined: the model output must already be `[N]`.
  RAR_ARG(torch::Tensor, target);
  /// Apply a ReLU to the map (Captum's `relu_attributions`, default false; the paper's Grad-CAM
  /// has it).
  RAR_ARG(bool, relu) = false;
  /// Sum the weighted channels into one map `[N, 1, ...]` (Captum's `attr_dim_summation`,
  /// default true); false returns the weighted activations, the shape of h.
  RAR_ARG(bool, sum_channels) = true;
  /// Keep the graph so the map is differentiable w.r.t. the input and the parameters.
  RAR_ARG(bool, create_graph) = false;
  /// What is explained: a per-sample scalar `[N]` from (output, target).
  RAR_ARG(ScoreFunction, score) = score::logit;
};

/// Options for `rar::guided_grad_cam`.
///
/// Example:
/// @code
/// auto opts = rar::GuidedGradCamOptions().target(y).interpolation(rar::Interpolation::bilinear);
/// torch::Tensor a = rar::guided_grad_cam(head, tail, images, opts);
/// @endcode
struct GuidedGradCamOptions {
  /// Class per sample, int64 `[N]` or 0-dim. Undefined: the model output must already be `[N]`.
  RAR_ARG(torch::Tensor, target);
  /// How the Grad-CAM map is resized to the input (Captum's `interpolate_mode`, default nearest).
  RAR_ARG(Interpolation, interpolation) = Interpolation::nearest;
  /// Keep the graph so the result is differentiable (for attribution attacks; the guided
  /// backprop factor is differentiable only inside a smooth surrogate's scope).
  RAR_ARG(bool, create_graph) = false;
  /// What is explained: a per-sample scalar `[N]` from (output, target).
  RAR_ARG(ScoreFunction, score) = score::logit;
};

/// Resizes a layer map `[N, C, ...]` (1 to 3 spatial dimensions) to the spatial size `size`,
/// as Captum 0.7's `LayerAttribution.interpolate` (`torch.nn.functional.interpolate` with
/// `align_corners` unset).
///
/// Example:
/// @code
/// torch::Tensor cam = rar::grad_cam(head, tail, images);                    // [N, 1, 8, 8]
/// torch::Tensor up = rar::interpolate_attribution(cam, {32, 32});           // [N, 1, 32, 32]
/// @endcode
/// @param map a layer map `[N, C, ...]` with 1, 2 or 3 spatial dimensions, float32 or float64
/// @param size the spatial size to resize to, one entry per spatial dimension of `map`
/// @param mode the interpolation (nearest by default); linear, bilinear/bicubic and trilinear
///        need 1, 2 and 3 spatial dimensions
/// @return the resized map `[N, C, size...]`, differentiable like any tensor operation
inline torch::Tensor interpolate_attribution(const torch::Tensor& map, std::vector<int64_t> size,
                                             Interpolation mode = Interpolation::nearest) {
  const char* fn = "rar::interpolate_attribution";
  TORCH_CHECK(map.defined() && map.dim() >= 3 && map.dim() <= 5, fn,
              ": map must be [N, C, ...] with 1 to 3 spatial dimensions, got shape ",
              map.defined() ? map.sizes() : c10::IntArrayRef{});
  const int64_t spatial = map.dim() - 2;
  TORCH_CHECK(static_cast<int64_t>(size.size()) == spatial, fn, ": size has ", size.size(),
              " entries but the map ", map.sizes(), " has ", spatial, " spatial dimensions");
  for (const int64_t s : size) {
    TORCH_CHECK(s >= 1, fn, ": size entries must be >= 1, got ", c10::IntArrayRef(size));
  }
  namespace F = torch::nn::functional;
  auto opts = F::InterpolateFuncOptions().size(size);
  auto need = [&](int64_t dims, const char* name) {
    TORCH_CHECK(spatial == dims, fn, ": ", name, " interpolation needs ", dims,
                " spatial dimension(s), but the map ", map.sizes(), " has ", spatial);
  };
  switch (mode) {
    case Interpolation::nearest:
      opts.mode(torch::kNearest);
      break;
    case Interpolation::nearest_exact:
      opts.mode(torch::kNearestExact);
      break;
    case Interpolation::linear:
      need(1, "linear");
      opts.mode(torch::kLinear);
      break;
    case Interpolation::bilinear:
      need(2, "bilinear");
      opts.mode(torch::kBilinear);
      break;
    case Interpolation::bicubic:
      need(2, "bicubic");
      opts.mode(torch::kBicubic);
      break;
    case Interpolation::trilinear:
      need(3, "trilinear");
      opts.mode(torch::kTrilinear);
      break;
    case Interpolation::area:
      opts.mode(torch::kArea);
      break;
  }
  return F::interpolate(map, opts);
}

namespace detail {

/// Grad-CAM at h = head(input): validated, `fn` names the public entry point in errors.
template <class Head, class Tail>
torch::Tensor grad_cam_layer(const char* fn, Head& head, Tail& tail, const torch::Tensor& input,
                             const torch::Tensor& target_option, bool relu, bool sum_channels,
                             bool graph, const ScoreFunction& score) {
  check_input(fn, "input", input);
  rar::detail::check_callable(fn, "score", score);
  const torch::Tensor target = expand_target(fn, target_option, input.size(0), input.device());
  torch::AutoGradMode grad_mode(true);
  torch::Tensor h;
  {
    torch::AutoGradMode head_grad(graph);
    h = call_model(head, input);
  }
  TORCH_CHECK(h.defined() && h.dim() >= 2 && h.size(0) == input.size(0), fn,
              ": head(input) must be a layer [N, C, ...] with N = ", input.size(0),
              " rows and a channel dimension, got shape ",
              h.defined() ? h.sizes() : c10::IntArrayRef{});
  TORCH_CHECK(h.is_floating_point() && h.device() == input.device(), fn,
              ": head(input) must be floating point on the input's device ", input.device(),
              ", got ", h.scalar_type(), " on ", h.device());
  const torch::Tensor leaf = differentiable_leaf(h, graph);
  const torch::Tensor out = call_model(tail, leaf);
  // The usual mistake is a split whose tail does not end in the output (a tail that stops at a
  // feature map): name it here, not in the score function.
  TORCH_CHECK(out.dim() >= 1 && out.size(0) == input.size(0) &&
                  (!target.defined() || out.dim() == 2),
              fn, ": tail(head(input)) must be the model output, [", input.size(0),
              ", C] with a target or [", input.size(0), "] without, got shape ", out.sizes(),
              " from the tail (head(input) has shape ", h.sizes(),
              "); check where the model is split into head and tail");
  const torch::Tensor s = score(out, target);
  TORCH_CHECK(s.dim() == 1 && s.size(0) == input.size(0), fn,
              ": the score function must return one value per sample, shape [", input.size(0),
              "], got ", s.sizes());
  const torch::Tensor g = torch::autograd::grad({s.sum()}, {leaf}, {}, /*retain_graph=*/graph,
                                                /*create_graph=*/graph)[0];
  // Captum averages the gradient over every dimension after the channel one (none for [N, C]).
  std::vector<int64_t> spatial;
  for (int64_t d = 2; d < g.dim(); ++d) spatial.push_back(d);
  const torch::Tensor weights = spatial.empty() ? g : g.mean(spatial, /*keepdim=*/true);
  torch::Tensor cam = weights * (graph ? leaf : leaf.detach());
  if (sum_channels) cam = cam.sum(1, /*keepdim=*/true);
  if (relu) cam = torch::relu(cam);
  return graph ? cam : cam.detach();
}

/// The full model tail(head(·)) as a callable for guided backprop: Sequential parts get their
/// direct `torch::nn` activations swapped for `rar::nn` twins (same weights); other parts must
/// use `rar::nn` activations (checked, with `fn` in the message).
template <class M>
std::function<torch::Tensor(const torch::Tensor&)> relu_switchable(const char* fn, const char* part,
                                                                   M& model) {
  constexpr const char* what = "guided backprop modifies the backward pass of every ReLU";
  using D = std::decay_t<M>;
  if constexpr (rar::nn::detail::is_torchscript_v<D>) {
    (void)part;
    // The twin's aten::relu calls are rar::relu, which guided backprop's scope switches.
    auto twin = model.scope_aware();
    return [twin](const torch::Tensor& x) { return twin(x); };
  } else if constexpr (std::is_same_v<D, torch::nn::Sequential>) {
    torch::nn::Sequential twin =
        rar::nn::detail::with_rar_activations(fn, model, what, rar::nn::detail::Sees::relu);
    rar::nn::detail::check_no_torch_activations(fn, twin, what, rar::nn::detail::Sees::relu);
    return [twin](const torch::Tensor& x) mutable { return twin->forward(x); };
  } else {
    rar::nn::detail::check_no_torch_activations(fn, model, what, rar::nn::detail::Sees::relu);
    return [&model](const torch::Tensor& x) { return call_model(model, x); };
  }
}

/// Guided Grad-CAM: guided backprop of tail(head(·)) times the ReLU'd Grad-CAM map at h,
/// resized to the input.
template <class Head, class Tail>
torch::Tensor guided_grad_cam_layer(const char* fn, Head& head, Tail& tail,
                                    const torch::Tensor& input,
                                    const GuidedGradCamOptions& options) {
  check_input(fn, "input", input);
  const torch::Tensor cam =
      grad_cam_layer(fn, head, tail, input, options.target(), /*relu=*/true,
                     /*sum_channels=*/true, options.create_graph(), options.score());
  TORCH_CHECK(cam.dim() == input.dim() && input.dim() >= 3 && input.dim() <= 5, fn,
              ": the Grad-CAM map ", cam.sizes(), " cannot be resized to the input ", input.sizes(),
              ": head(input) must keep the input's spatial dimensions (1 to 3 of "
              "them) as [N, C, ...]");
  std::vector<int64_t> size(input.sizes().begin() + 2, input.sizes().end());
  const torch::Tensor up = interpolate_attribution(cam, size, options.interpolation());
  auto full_head = relu_switchable(fn, "head", head);
  auto full_tail = relu_switchable(fn, "tail", tail);
  auto full = [&](const torch::Tensor& x) { return full_tail(full_head(x)); };
  const GradientOptions gopts = GradientOptions()
                                    .target(options.target())
                                    .score(options.score())
                                    .create_graph(options.create_graph());
  const torch::Tensor guided =
      scoped_relu_gradient(fn, full, input, gopts, rar::nn::Rule::guided_backprop);
  return guided * up;
}

}  // namespace detail

/// Grad-CAM at the layer h = head(input) of the model tail(head(·)).
///
/// With F = score(tail(h), target) and the channel weights w_{nc} = mean over the spatial
/// positions of ∂F/∂h_{nc·}:
///
///     GradCAM(x_n) = Σ_c w_{nc} h_{nc}        [N, 1, ...] (the spatial dimensions of h)
///
/// optionally followed by a ReLU (`relu`). Matches Captum 0.7's `LayerGradCam(model,
/// layer).attribute(x, target, relu_attributions)` on the layer's output: Captum averages the
/// gradient over every dimension after the channel one, so for a 2-D h `[N, C]` nothing is
/// averaged and the map is Σ_c ∂F/∂h_c h_c `[N, 1]`; with `sum_channels(false)` the weighted
/// activations w ⊙ h (h's shape, Captum's `attr_dim_summation=False`) are returned. Captum's
/// `attribute_to_layer_input` has no counterpart: the split point itself says which tensor is
/// the layer. The map has the layer's spatial size; `rar::interpolate_attribution` resizes it to
/// the input's. Costs one forward of head and tail and one backward of the tail over N rows.
///
/// Example:
/// @code
/// torch::nn::Sequential head(torch::nn::Conv2d(3, 16, 3), torch::nn::ReLU());
/// torch::nn::Sequential tail(torch::nn::AdaptiveAvgPool2d(1), torch::nn::Flatten(),
///                            torch::nn::Linear(16, 10));
/// torch::Tensor cam = rar::grad_cam(head, tail, images,
/// rar::GradCamOptions().target(y).relu(true));
/// // cam: [N, 1, H - 2, W - 2]
/// @endcode
/// @param head the model up to the layer: any model mapping `[N, ...]` to h `[N, C, ...]`
/// @param tail the rest of the model: any model mapping h to the output `[N, C']`
/// @param input batch `[N, ...]`, float32 or float64, on any device
/// @param options target, relu, sum_channels, create_graph, score
/// @return the map `[N, 1, ...]` (h's spatial dimensions; h's shape without channel summation),
///         h's dtype, on the input's device
template <class Head, class Tail>
torch::Tensor grad_cam(Head&& head, Tail&& tail, const torch::Tensor& input,
                       const GradCamOptions& options = {}) {
  detail::static_check_model<Head>();
  detail::static_check_model<Tail>();
  return detail::grad_cam_layer("rar::grad_cam", head, tail, input, options.target(),
                                options.relu(), options.sum_channels(), options.create_graph(),
                                options.score());
}

/// Guided Grad-CAM: guided backpropagation times the (ReLU'd) Grad-CAM map resized to the input.
///
///     GGC(x_n) = GuidedBackprop(x_n) ⊙ resize(relu(GradCAM(x_n)))
///
/// the map `[N, 1, ...]` broadcast over the input's channels. Matches Captum 0.7's
/// `GuidedGradCam(model, layer).attribute(x, target, interpolate_mode)`: Grad-CAM of the layer
/// output with `relu_attributions=True`, resized by `rar::interpolate_attribution` (nearest by
/// default), and guided backprop of the whole model tail(head(·)) (only ReLUs are modified).
/// Where Captum warns and returns an empty tensor because the map cannot be resized (a dense
/// layer, a map with another number of spatial dimensions), this raises an error.
///
/// Guided backprop needs switchable ReLUs: head and tail must use `rar::nn::ReLU`, or be
/// `torch::nn::Sequential`s whose ReLUs are direct `torch::nn::ReLU` children (swapped for
/// `rar::nn` twins with the same weights). The Grad-CAM factor uses the plain gradient. Costs
/// two forwards and two backwards over N rows.
///
/// Example:
/// @code
/// torch::Tensor a = rar::guided_grad_cam(head, tail, images,
/// rar::GuidedGradCamOptions().target(y));
/// // a: the shape of images
/// @endcode
/// @param head the model up to the layer: `[N, C, ...]` input to h `[N, C', ...]`, the same
///        number of spatial dimensions (1 to 3)
/// @param tail the rest of the model: h to the output `[N, C'']`
/// @param input batch `[N, C, ...]`, float32 or float64, on any device
/// @param options target, interpolation, create_graph, score
/// @return attributions with the shape, dtype and device of `input`
template <class Head, class Tail>
torch::Tensor guided_grad_cam(Head&& head, Tail&& tail, const torch::Tensor& input,
                              const GuidedGradCamOptions& options = {}) {
  detail::static_check_model<Head>();
  detail::static_check_model<Tail>();
  return detail::guided_grad_cam_layer("rar::guided_grad_cam", head, tail, input, options);
}

}  // namespace rar
