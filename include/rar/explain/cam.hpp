#pragma once
/// @file
/// Explainer factories for GradientSHAP, DeepLIFT-SHAP, Grad-CAM and Guided Grad-CAM: each
/// returns an explainer, a callable `(model, input, target, create_graph) -> attributions` that
/// every tool accepts (see `rar/core/explainer.hpp` and `rar/explain/explainers.hpp`).
///
/// Grad-CAM and Guided Grad-CAM need the layer, i.e. the model written as tail(head(x)). Their
/// explainers either hold head and tail (`rar::explain::grad_cam(head, tail)`; the model
/// argument of each call is then taken to be tail∘head and not used) or read them from a
/// `rar::Split` model argument (`rar::explain::grad_cam()`). The Grad-CAM explainer returns the
/// map resized to the input's spatial size and repeated over the input's channels, so that tools
/// comparing maps of the input's shape (top-k intersection, rank correlations, sensitivity) work
/// unchanged; `rar::grad_cam` itself returns the map at the layer.

#include <rar/attribution/deeplift_shap.hpp>
#include <rar/attribution/grad_cam.hpp>
#include <rar/attribution/gradient_shap.hpp>
#include <rar/core/explainer.hpp>
#include <rar/core/model.hpp>
#include <rar/core/split.hpp>
#include <rar/explain/explainer.hpp>

#include <torch/torch.h>

#include <type_traits>
#include <utility>

namespace rar {
namespace explain {

namespace detail {
RAR_EXPLAIN_METHOD(GradientShapMethod, GradientShapOptions, rar::gradient_shap,
                   "rar::explain::gradient_shap", true, nullptr);
RAR_EXPLAIN_METHOD(DeepLiftShapMethod, DeepLiftShapOptions, rar::deeplift_shap,
                   "rar::explain::deeplift_shap", false,
                   "DeepLIFT's rescale multipliers are not differentiable w.r.t. the input");
}  // namespace detail

/// GradientSHAP as an explainer (see `rar::gradient_shap`). Every call draws from the options'
/// seed, so repeated calls on the same input give the same map.
///
/// Example:
/// @code
/// auto gs = rar::explain::gradient_shap(rar::GradientShapOptions().baselines(background).samples(20));
/// torch::Tensor a = gs(model, x, y, /*create_graph=*/false);
/// @endcode
using GradientShap = OptionsExplainer<GradientShapOptions, detail::GradientShapMethod>;

/// @param options baselines, samples, stddev, seed, multiply_by_inputs, internal_batch_size,
///        score
/// @return a GradientSHAP explainer
inline GradientShap gradient_shap(GradientShapOptions options = {}) {
  return GradientShap(std::move(options));
}

/// DeepLIFT-SHAP as an explainer (see `rar::deeplift_shap`). Like `rar::explain::deeplift`, it
/// refuses `create_graph` (the rescale multipliers are not differentiable w.r.t. the input).
///
/// Example:
/// @code
/// auto dls = rar::explain::deeplift_shap(rar::DeepLiftShapOptions().baselines(background));
/// torch::Tensor a = dls(net, x, y, /*create_graph=*/false);
/// @endcode
using DeepLiftShap = OptionsExplainer<DeepLiftShapOptions, detail::DeepLiftShapMethod>;

/// @param options baselines (required), eps, internal_batch_size
/// @return a DeepLIFT-SHAP explainer
inline DeepLiftShap deeplift_shap(DeepLiftShapOptions options) {
  return DeepLiftShap(std::move(options));
}

namespace detail {

/// How a layer explainer keeps head or tail: module holders, shared pointers and rvalues by
/// value (holders share their weights), other lvalues by pointer (keep them alive).
template <class M>
using cam_held_t = std::conditional_t<rar::detail::is_module_holder_v<std::decay_t<M>> ||
                                      rar::detail::is_shared_ptr<std::decay_t<M>>::value ||
                                      !std::is_lvalue_reference_v<M>,
                                  std::decay_t<M>, std::remove_reference_t<M>*>;

/// A held head or tail, as a reference to the model.
template <class Stored>
decltype(auto) cam_unwrap(Stored& stored) {
  if constexpr (std::is_pointer_v<Stored>)
    return *stored;
  else
    return (stored);
}

/// Stores `model` as `cam_held_t<M&&>`.
template <class M>
cam_held_t<M&&> cam_hold(M&& model) {
  if constexpr (std::is_pointer_v<cam_held_t<M&&>>)
    return &model;
  else
    return cam_held_t<M&&>(std::forward<M>(model));
}

/// The layer explainers' two methods.
enum class CamMethod { grad_cam, guided_grad_cam };

/// The Grad-CAM map at h resized to the input's spatial size and repeated over its channels.
template <class Head, class Tail>
torch::Tensor grad_cam_input_map(Head& head, Tail& tail, const torch::Tensor& input,
                                 const GradCamOptions& options, Interpolation mode) {
  const char* fn = "rar::explain::grad_cam";
  const torch::Tensor cam = rar::detail::grad_cam_layer(fn, head, tail, input, options.target(),
                                                        options.relu(), /*sum_channels=*/true,
                                                        options.create_graph(), options.score());
  TORCH_CHECK(cam.dim() == input.dim() && input.dim() >= 3 && input.dim() <= 5, fn,
              ": the Grad-CAM map ", cam.sizes(), " cannot be resized to the input ",
              input.sizes(), ": head(input) must keep the input's spatial dimensions (1 to 3 of "
              "them) as [N, C, ...]; for a dense layer use rar::grad_cam directly");
  std::vector<int64_t> size(input.sizes().begin() + 2, input.sizes().end());
  return interpolate_attribution(cam, size, mode).expand(input.sizes()).contiguous();
}

/// Runs `method` on (head, tail): the held ones, or those of a `rar::Split` model.
template <CamMethod Method, class Options, class Head, class Tail>
torch::Tensor run_cam(Head& head, Tail& tail, const torch::Tensor& input, Options options,
                      Interpolation mode) {
  if constexpr (Method == CamMethod::grad_cam) {
    return grad_cam_input_map(head, tail, input, options, mode);
  } else {
    options.interpolation(mode);
    return rar::detail::guided_grad_cam_layer("rar::explain::guided_grad_cam", head, tail, input,
                                              options);
  }
}

}  // namespace detail

/// Grad-CAM or Guided Grad-CAM as an explainer: made by `rar::explain::grad_cam` and
/// `rar::explain::guided_grad_cam`.
///
/// With head and tail held (`HeadStored`, `TailStored` not void) each call uses them and ignores
/// its model argument, which is taken to be tail∘head: a tool that calls the explainer with
/// another model (a smooth surrogate, a model with randomized weights) still gets the map of the
/// held layers. With `HeadStored = TailStored = void` each call reads head and tail from its
/// model argument, which must be a `rar::Split` (checked at compile time).
///
/// Example:
/// @code
/// auto cam = rar::explain::grad_cam(head, tail, rar::GradCamOptions().relu(true));
/// torch::Tensor a = cam(model, x, y, /*create_graph=*/false);  // x's shape
/// @endcode
template <detail::CamMethod Method, class Options, class HeadStored = void,
          class TailStored = void>
class LayerCam {
  static constexpr bool holds = !std::is_void_v<HeadStored>;
  using HeadSlot = std::conditional_t<holds, HeadStored, char>;
  using TailSlot = std::conditional_t<holds, TailStored, char>;

 public:
  /// Grad-CAM's map is differentiable w.r.t. the input; Guided Grad-CAM's is not (its guided
  /// backprop part comes from a modified backward pass).
  static constexpr bool differentiable = Method == detail::CamMethod::grad_cam;
  /// Why Guided Grad-CAM cannot give a differentiable map.
  static constexpr const char* not_differentiable_because =
      "Guided Grad-CAM's guided backprop part comes from a modified backward pass, whose "
      "autograd derivative is not the map's derivative w.r.t. the input";

  /// An explainer that reads head and tail from a `rar::Split` model argument.
  /// @param options the method's options (target and create_graph come from each call)
  /// @param mode how the layer map is resized to the input
  LayerCam(Options options, Interpolation mode)
      : options_(std::move(options)), mode_(mode) {}
  /// An explainer that holds head and tail.
  /// @param head the model up to the layer
  /// @param tail the rest of the model
  /// @param options the method's options (target and create_graph come from each call)
  /// @param mode how the layer map is resized to the input
  LayerCam(HeadSlot head, TailSlot tail, Options options, Interpolation mode)
      : head_(std::move(head)), tail_(std::move(tail)), options_(std::move(options)), mode_(mode) {}

  /// The options each call starts from.
  /// @return the method's options
  const Options& options() const noexcept { return options_; }
  /// How the layer map is resized to the input.
  /// @return the interpolation mode
  Interpolation interpolation() const noexcept { return mode_; }

  /// Attributions of the input's shape for `target`.
  /// @param model a `rar::Split` (explainers without held layers); otherwise not used
  /// @param input batch `[N, C, ...]` with 1 to 3 spatial dimensions
  /// @param target class per sample (undefined: the options' target)
  /// @param create_graph keep the graph (attributions differentiable w.r.t. the input)
  /// @return attributions of the input's shape
  template <class Model>
  torch::Tensor operator()(Model&& model, const torch::Tensor& input, const torch::Tensor& target,
                           bool create_graph) const {
    if constexpr (!differentiable) {
      if (create_graph) rar::detail::refuse_graph<LayerCam>("rar::explain::guided_grad_cam");
    }
    Options o = detail::for_call(options_, target, create_graph);
    if constexpr (holds) {
      (void)model;
      return detail::run_cam<Method>(detail::cam_unwrap(head_), detail::cam_unwrap(tail_), input, o,
                                     mode_);
    } else {
      static_assert(rar::is_split_v<Model>,
                    "rar::explain::grad_cam() / guided_grad_cam() without head and tail need a "
                    "rar::Split model argument (rar::Split{head, tail}); or pass head and tail to "
                    "the factory: rar::explain::grad_cam(head, tail, options)");
      return detail::run_cam<Method>(model.head(), model.tail(), input, o, mode_);
    }
  }

 private:
  mutable HeadSlot head_{};
  mutable TailSlot tail_{};
  Options options_;
  Interpolation mode_;
};

/// Grad-CAM as an explainer holding head and tail: the map of `rar::grad_cam` at h = head(x),
/// resized to the input's spatial size with `mode` (nearest by default) and repeated over the
/// input's channels. The model argument of each call is not used (see `rar::explain::LayerCam`).
///
/// Example:
/// @code
/// auto cam = rar::explain::grad_cam(head, tail, rar::GradCamOptions().relu(true));
/// auto sens = rar::max_sensitivity(model, cam, x, rar::SensitivityOptions().target(y));
/// @endcode
/// @param head the model up to the layer (held by value if a module holder or an rvalue,
///        otherwise by reference: keep it alive)
/// @param tail the rest of the model (held like `head`)
/// @param options relu, score (target and create_graph come from each call; sum_channels is
///        ignored: the explainer always sums the channels)
/// @param mode how the map is resized to the input
/// @return a Grad-CAM explainer
template <class Head, class Tail>
auto grad_cam(Head&& head, Tail&& tail, GradCamOptions options = {},
              Interpolation mode = Interpolation::nearest) {
  rar::detail::static_check_model<Head>();
  rar::detail::static_check_model<Tail>();
  return LayerCam<detail::CamMethod::grad_cam, GradCamOptions, detail::cam_held_t<Head&&>,
                  detail::cam_held_t<Tail&&>>(detail::cam_hold(std::forward<Head>(head)),
                                          detail::cam_hold(std::forward<Tail>(tail)),
                                          std::move(options), mode);
}

/// Grad-CAM as an explainer for `rar::Split` models: each call reads head and tail from its
/// model argument.
///
/// Example:
/// @code
/// rar::Split model{head, tail};
/// torch::Tensor a = rar::explain::grad_cam()(model, x, y, false);
/// @endcode
/// @param options relu, score
/// @param mode how the map is resized to the input
/// @return a Grad-CAM explainer
inline LayerCam<detail::CamMethod::grad_cam, GradCamOptions> grad_cam(
    GradCamOptions options = {}, Interpolation mode = Interpolation::nearest) {
  return {std::move(options), mode};
}

/// Guided Grad-CAM as an explainer holding head and tail (see `rar::guided_grad_cam`); the model
/// argument of each call is not used.
///
/// Example:
/// @code
/// auto ggc = rar::explain::guided_grad_cam(head, tail);
/// torch::Tensor a = ggc(model, x, y, /*create_graph=*/false);
/// @endcode
/// @param head the model up to the layer (held like `rar::explain::grad_cam`'s)
/// @param tail the rest of the model
/// @param options interpolation, score (target and create_graph come from each call)
/// @return a Guided Grad-CAM explainer
template <class Head, class Tail>
auto guided_grad_cam(Head&& head, Tail&& tail, GuidedGradCamOptions options = {}) {
  rar::detail::static_check_model<Head>();
  rar::detail::static_check_model<Tail>();
  const Interpolation mode = options.interpolation();
  return LayerCam<detail::CamMethod::guided_grad_cam, GuidedGradCamOptions,
                  detail::cam_held_t<Head&&>, detail::cam_held_t<Tail&&>>(
      detail::cam_hold(std::forward<Head>(head)), detail::cam_hold(std::forward<Tail>(tail)),
      std::move(options), mode);
}

/// Guided Grad-CAM as an explainer for `rar::Split` models.
///
/// Example: `torch::Tensor a = rar::explain::guided_grad_cam()(rar::Split{head, tail}, x, y, false);`
/// @param options interpolation, score
/// @return a Guided Grad-CAM explainer
inline LayerCam<detail::CamMethod::guided_grad_cam, GuidedGradCamOptions> guided_grad_cam(
    GuidedGradCamOptions options = {}) {
  const Interpolation mode = options.interpolation();
  return {std::move(options), mode};
}

}  // namespace explain
}  // namespace rar
