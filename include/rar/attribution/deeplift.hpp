#pragma once
/// @file
/// DeepLIFT with the rescale rule (Shrikumar, Greenside, Kundaje, "Learning Important Features
/// Through Propagating Activation Differences", ICML 2017) for `torch::nn::Sequential` networks.

#include <torch/torch.h>

#include <cmath>
#include <memory>
#include <rar/attribution/completeness.hpp>
#include <rar/core/score.hpp>
#include <rar/detail/arg.hpp>
#include <rar/detail/checks.hpp>
#include <rar/core/model.hpp>
#include <rar/nn/functional.hpp>
#include <rar/nn/model.hpp>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace rar {

/// Options for `rar::deeplift`.
///
/// Example:
/// @code
/// auto attr = rar::deeplift(net, x, rar::DeepLiftOptions().target(y).baseline(reference));
/// @endcode
struct DeepLiftOptions {
  /// The reference input x'. Undefined: zeros. Broadcastable to the input, same dtype/device.
  RAR_ARG(torch::Tensor, baseline);
  /// Class per sample, int64 `[N]` or 0-dim; undefined: the network output must be `[N]`.
  RAR_ARG(torch::Tensor, target);
  /// Below this |x − x'| a nonlinearity uses its plain gradient instead of Δy/Δx (Captum: 1e-10).
  RAR_ARG(double, eps) = 1e-10;
  /// What to do when a sample's attributions miss F(x) − F(x′) (summation-to-delta): raise
  /// (default), warn or off. See `rar::deeplift`.
  RAR_ARG(CompletenessCheck, completeness) = CompletenessCheck::raise;
  /// Sample n fails the check when |Σ attributions − (F(x) − F(x′))| > tolerance ·
  /// (1 + |F(x)| + |F(x′)|); > 0.
  RAR_ARG(double, completeness_tolerance) = 1e-3;
};

namespace detail {

/// How DeepLIFT propagates multipliers through one layer.
enum class DeepLiftRule { linear, rescale, maxpool1d, maxpool2d };

/// One leaf module of a (possibly nested) Sequential with its DeepLIFT rule.
struct DeepLiftLayer {
  torch::nn::AnyModule module;
  DeepLiftRule rule;
  std::string name;
  bool inplace = false;  ///< the module overwrites its input (an `inplace` option is set)
};

template <class Impl>
bool is_a(const std::shared_ptr<torch::nn::Module>& m) {
  return std::dynamic_pointer_cast<Impl>(m) != nullptr;
}

/// Whether `m` is an `Impl` whose `inplace` option is set (it would overwrite its input).
template <class Impl>
bool is_inplace(const std::shared_ptr<torch::nn::Module>& m) {
  const auto impl = std::dynamic_pointer_cast<Impl>(m);
  return impl != nullptr && impl->options.inplace();
}

/// Flattens nested Sequentials into their leaf modules and assigns each its rule. Returns
/// false, with `unsupported` naming the first module the walker has no rule for, when the
/// Sequential holds one (then the scope-based path runs instead, see `rar::deeplift`).
inline bool deeplift_layers(const torch::nn::Sequential& net, const std::string& prefix,
                            std::vector<DeepLiftLayer>& layers, std::string& unsupported) {
  using namespace torch::nn;
  size_t index = 0;
  for (const auto& any : *net) {
    const std::string name = prefix + std::to_string(index++);
    const auto m = any.ptr();
    if (auto seq = std::dynamic_pointer_cast<SequentialImpl>(m)) {
      if (!deeplift_layers(Sequential(seq), name + ".", layers, unsupported)) return false;
      continue;
    }
    DeepLiftRule rule;
    if (is_a<ReLUImpl>(m) || is_a<LeakyReLUImpl>(m) || is_a<ELUImpl>(m) || is_a<SigmoidImpl>(m) ||
        is_a<TanhImpl>(m) || is_a<SoftplusImpl>(m) || is_a<GELUImpl>(m) || is_a<SiLUImpl>(m) ||
        rar::nn::detail::is_rar_activation(*m)) {
      rule = DeepLiftRule::rescale;
    } else if (is_a<MaxPool1dImpl>(m)) {
      rule = DeepLiftRule::maxpool1d;
    } else if (is_a<MaxPool2dImpl>(m)) {
      rule = DeepLiftRule::maxpool2d;
    } else if (is_a<BatchNorm1dImpl>(m) || is_a<BatchNorm2dImpl>(m)) {
      TORCH_CHECK(!m->is_training(), "rar::deeplift: ", m->name(), " at position ", name,
                  " is in training mode; DeepLIFT treats batch norm as a fixed affine map, so "
                  "call eval() on the network first");
      rule = DeepLiftRule::linear;
    } else if (is_a<LinearImpl>(m) || is_a<Conv1dImpl>(m) || is_a<Conv2dImpl>(m) ||
               is_a<FlattenImpl>(m) || is_a<UnflattenImpl>(m) || is_a<DropoutImpl>(m) ||
               is_a<Dropout2dImpl>(m) || is_a<AvgPool1dImpl>(m) || is_a<AvgPool2dImpl>(m) ||
               is_a<AdaptiveAvgPool1dImpl>(m) || is_a<AdaptiveAvgPool2dImpl>(m) ||
               is_a<IdentityImpl>(m)) {
      rule = DeepLiftRule::linear;
    } else {
      unsupported = m->name() + " at position " + name;
      return false;
    }
    const bool inplace = is_inplace<ReLUImpl>(m) || is_inplace<LeakyReLUImpl>(m) ||
                         is_inplace<ELUImpl>(m) || is_inplace<DropoutImpl>(m) ||
                         is_inplace<Dropout2dImpl>(m);
    layers.push_back({any, rule, name, inplace});
  }
  return true;
}

/// The activations of one layer for the input (x, with its graph) and the reference (r). The
/// reference has one row when it is the same for every sample (broadcast against x's N rows).
struct DeepLiftActivations {
  torch::Tensor in_x, out_x, in_r, out_r;  ///< in_x is a leaf requiring grad
  torch::Tensor indices_x, indices_r;      ///< max-pool indices (max-pool layers only)
};

/// Runs one layer on the input (recording its graph) and on the reference (without).
inline DeepLiftActivations deeplift_forward(DeepLiftLayer& layer, const torch::Tensor& x,
                                            const torch::Tensor& r) {
  DeepLiftActivations a;
  a.in_x = x.detach().requires_grad_(true);
  a.in_r = r;
  const auto module = layer.module.ptr();
  if (layer.rule == DeepLiftRule::maxpool2d || layer.rule == DeepLiftRule::maxpool1d) {
    auto pool = [&](const torch::Tensor& t) {
      return layer.rule == DeepLiftRule::maxpool2d
                 ? std::dynamic_pointer_cast<torch::nn::MaxPool2dImpl>(module)
                       ->forward_with_indices(t)
                 : std::dynamic_pointer_cast<torch::nn::MaxPool1dImpl>(module)
                       ->forward_with_indices(t);
    };
    std::tie(a.out_x, a.indices_x) = pool(a.in_x);
    torch::NoGradGuard no_grad;
    std::tie(a.out_r, a.indices_r) = pool(r);
    return a;
  }
  // An in-place activation would overwrite the leaf (and the reference activations kept for
  // the layer below): it gets copies.
  a.out_x = layer.module.forward(layer.inplace ? a.in_x.clone() : a.in_x);
  torch::NoGradGuard no_grad;
  a.out_r = layer.module.forward(layer.inplace ? r.clone() : r);
  return a;
}

/// Scatters `t` back through max-pool `indices` (broadcast to t's rows) to the pre-pool shape
/// of `like`, summing where windows overlap (Captum's `max_unpool` keeps one of the values
/// there, which breaks summation-to-delta for overlapping windows; without overlap the two
/// agree).
inline torch::Tensor unpool(const torch::Tensor& t, const torch::Tensor& indices,
                            const torch::Tensor& like, bool two_d) {
  if (two_d) return rar::nn::detail::unpool2d_add(t, indices, like);
  return rar::nn::detail::unpool2d_add(t.unsqueeze(-1), indices.unsqueeze(-1), like.unsqueeze(-1))
      .squeeze(-1);
}

/// The plain backward of one layer: the vector-Jacobian product of `grad` through its graph.
inline torch::Tensor layer_vjp(const DeepLiftActivations& a, const torch::Tensor& grad) {
  if (a.out_x.is_same(a.in_x)) return grad;
  torch::Tensor plain = torch::autograd::grad({a.out_x}, {a.in_x}, {grad}, /*retain_graph=*/false,
                                              /*create_graph=*/false, /*allow_unused=*/true)[0];
  return plain.defined() ? plain : torch::zeros_like(a.in_x);
}

/// Multipliers below one layer from those above it (`grad`), by the layer's rule.
///
/// Captum runs [x; x'] as one batch and propagates both halves, but every rule hands both
/// halves the same multipliers, so only the input half is propagated here; the max-pool rule
/// routes the reference half's share through the reference's own pooling indices.
inline torch::Tensor deeplift_backward(const DeepLiftLayer& layer, const DeepLiftActivations& a,
                                       const torch::Tensor& grad, double eps) {
  if (layer.rule == DeepLiftRule::linear) return layer_vjp(a, grad);
  torch::Tensor delta_in, out_x, contribution, tiny;
  {
    torch::NoGradGuard no_grad;
    delta_in = a.in_x.detach() - a.in_r;
    out_x = a.out_x.detach();
    if (layer.rule == DeepLiftRule::rescale) {
      contribution = out_x - a.out_r;
      contribution.mul_(grad);
    } else {
      // Captum's rule: the cross-maximum of the input and reference outputs, redistributed
      // through the pooling indices of both.
      const bool two_d = layer.rule == DeepLiftRule::maxpool2d;
      const torch::Tensor cross_max = torch::max(out_x, a.out_r);
      contribution = unpool(grad * (cross_max - a.out_r), a.indices_x, a.in_x, two_d);
      contribution.add_(unpool(grad * (out_x - cross_max), a.indices_r, a.in_x, two_d));
    }
    contribution.div_(delta_in);
    delta_in.abs_();  // only |Δz| is needed after the division
    // Where |z − z'| < eps, the plain gradient replaces Δy/Δz: one reduction tells whether
    // any entry needs it, and only then are the mask and a backward through the layer made.
    if (delta_in.numel() == 0 || !(delta_in.min().item<double>() < eps)) return contribution;
    tiny = delta_in < eps;
  }
  const torch::Tensor plain = layer_vjp(a, grad);
  torch::NoGradGuard no_grad;
  return torch::where(tiny, plain, contribution);
}

/// The output gradient that selects the explained score: one-hot of `target` for `[N, C]`
/// outputs, ones for `[N]` outputs without a target.
inline torch::Tensor deeplift_output_grad(const char* fn, const torch::Tensor& out,
                                          const torch::Tensor& target) {
  if (target.defined()) {
    TORCH_CHECK(out.dim() == 2, fn, ": with a target the network output must be [N, C], got ",
                out.sizes());
    return torch::zeros_like(out).scatter_(1, gather_target(fn, out, target), 1.0);
  }
  TORCH_CHECK(out.dim() == 1, fn, ": without a target the network output must be [N], got ",
              out.sizes());
  return torch::ones_like(out);
}

/// DeepLIFT's attributions with the explained score at the input and at the reference.
struct DeepLiftResult {
  torch::Tensor attributions;     ///< the input's shape
  torch::Tensor score;            ///< F(x_n), `[N]`
  torch::Tensor reference_score;  ///< F(x′_n), `[N]`
};

/// The explained score of each of `rows` samples from a network output (one row broadcast to
/// all when the reference is shared): the target's entry, or the output itself when `[N]`.
inline torch::Tensor deeplift_score(const torch::Tensor& out, const torch::Tensor& target,
                                    int64_t rows) {
  torch::NoGradGuard no_grad;
  torch::Tensor o = out.detach();
  if (o.size(0) != rows) {
    std::vector<int64_t> sizes(o.sizes().begin(), o.sizes().end());
    sizes[0] = rows;
    o = o.expand(sizes);
  }
  return target.defined() ? o.gather(1, target.view({-1, 1})).squeeze(1) : o;
}

/// Whether the reference is one row shared by every sample (the default zeros, or a baseline
/// without a batch dimension or with one row): it then runs forward as one row.
inline bool shared_reference(const DeepLiftOptions& options, const torch::Tensor& input) {
  return !options.baseline().defined() || options.baseline().dim() < input.dim() ||
         options.baseline().size(0) == 1;
}

/// The Sequential walker (with Captum's max-pool rule), for Sequentials whose every leaf it
/// knows; `layers` come from `deeplift_layers`.
inline DeepLiftResult deeplift_sequential(std::vector<DeepLiftLayer>& layers,
                                          const torch::Tensor& input, const torch::Tensor& baseline,
                                          const torch::Tensor& target, bool shared, double eps) {
  const char* fn = "rar::deeplift";
  TORCH_CHECK(!layers.empty(), fn, ": the network has no layers");
  torch::AutoGradMode grad_mode(true);
  std::vector<DeepLiftActivations> acts;
  acts.reserve(layers.size());
  torch::Tensor x = input.detach();
  torch::Tensor r = (shared ? baseline.narrow(0, 0, 1) : baseline).detach().contiguous();
  for (auto& layer : layers) {
    acts.push_back(deeplift_forward(layer, x, r));
    x = acts.back().out_x;
    r = acts.back().out_r;
  }
  torch::Tensor grad = deeplift_output_grad(fn, x, target);
  DeepLiftResult result;
  result.score = deeplift_score(x, target, input.size(0));
  result.reference_score = deeplift_score(r, target, input.size(0));
  for (size_t i = layers.size(); i-- > 0;) grad = deeplift_backward(layers[i], acts[i], grad, eps);
  result.attributions = ((input - baseline) * grad).detach();
  return result;
}

/// DeepLIFT through `rar::nn` activations: the reference runs first and each activation call
/// records (z′, f(z′)); the input runs next and each call, in the same order, replaces its
/// derivative by the rescale multiplier. Two forwards (the shared reference as one row) and
/// one backward.
template <class Model>
DeepLiftResult deeplift_scoped(Model& model, const torch::Tensor& input,
                               const torch::Tensor& baseline, const torch::Tensor& target,
                               bool shared, double eps) {
  const char* fn = "rar::deeplift";
  rar::nn::detail::DeepLiftTape tape;
  tape.eps = eps;
  torch::Tensor reference_out;
  {
    rar::nn::Scope scope(rar::nn::Rule::rescale);
    scope.state().tape = &tape;
    torch::NoGradGuard no_grad;
    const torch::Tensor r = (shared ? baseline.narrow(0, 0, 1) : baseline).detach();
    reference_out = call_model(model, r);
    TORCH_CHECK(!tape.entries.empty(), fn,
                ": the model called no rar::nn activation, so DeepLIFT cannot see its "
                "nonlinearities; build it with rar::nn::ReLU, LeakyReLU, ELU, Sigmoid, Tanh, "
                "Softplus, GELU or SiLU (drop-ins for torch::nn's), or "
                "rar::nn::functional::relu, ... in a custom forward");
  }
  tape.recording = false;
  torch::AutoGradMode grad_mode(true);
  rar::nn::Scope scope(rar::nn::Rule::rescale);
  scope.state().tape = &tape;
  const torch::Tensor x = input.detach().requires_grad_(true);
  const torch::Tensor out = call_model(model, x);
  TORCH_CHECK(tape.next == tape.entries.size(), fn, ": the model called ", tape.next,
              " rar::nn activations on the input but ", tape.entries.size(),
              " on the reference; DeepLIFT needs a forward whose activation calls do not depend "
              "on the data");
  TORCH_CHECK(out.dim() >= 1 && out.size(0) == input.size(0), fn,
              ": the model must return one row per sample, [", input.size(0), ", ...], got ",
              out.sizes());
  const torch::Tensor grad_out = deeplift_output_grad(fn, out, target);
  torch::Tensor grad = torch::autograd::grad({out}, {x}, {grad_out}, /*retain_graph=*/false,
                                             /*create_graph=*/false, /*allow_unused=*/true)[0];
  if (!grad.defined()) grad = torch::zeros_like(x);
  TORCH_CHECK(
      reference_out.dim() == out.dim() && reference_out.sizes().slice(1) == out.sizes().slice(1),
      fn, ": the model returned shape ", reference_out.sizes(), " for the reference but ",
      out.sizes(), " for the input");
  DeepLiftResult result;
  result.score = deeplift_score(out, target, input.size(0));
  result.reference_score = deeplift_score(reference_out, target, input.size(0));
  result.attributions = ((input - baseline) * grad).detach();
  return result;
}

template <class Model>
DeepLiftResult deeplift_run(const char* fn, Model&& model, const torch::Tensor& input,
                            const DeepLiftOptions& options) {
  check_input(fn, "input", input);
  TORCH_CHECK(options.eps() >= 0, fn, ": eps must be >= 0, got ", options.eps());
  check_completeness_tolerance(fn, options.completeness_tolerance());
  const torch::Tensor baseline = expand_baseline(fn, options.baseline(), input);
  const torch::Tensor target = expand_target(fn, options.target(), input.size(0), input.device());
  const bool shared = shared_reference(options, input);
  constexpr const char* what =
      "DeepLIFT must replace the derivative of every nonlinearity by its rescale multiplier";
  using D = std::decay_t<Model>;
  if constexpr (rar::nn::detail::is_torchscript_v<D>) {
    // The twin's graph calls rar's operators (rar::relu, rar::max_pool2d, ...), which follow
    // the rescale rule in the scope (rar::ScriptModel::scope_aware).
    TORCH_CHECK(!model.is_training(), fn,
                ": the TorchScript model is in training mode (batch norm would use each batch's "
                "statistics, dropout would differ between the input and the reference); call "
                "eval() on it first");
    auto twin = model.scope_aware();
    DeepLiftResult result = deeplift_scoped(twin, input, baseline, target, shared, options.eps());
    // F(x) and F(x') of the model itself, not of its twin: the completeness check then also
    // vouches that the twin computes what the model computes.
    torch::NoGradGuard no_grad;
    result.score = deeplift_score(call_model(model, input.detach()), target, input.size(0));
    result.reference_score = deeplift_score(
        call_model(model, (shared ? baseline.narrow(0, 0, 1) : baseline).detach()), target,
        input.size(0));
    return result;
  } else if constexpr (std::is_same_v<D, torch::nn::Sequential>) {
    std::vector<DeepLiftLayer> layers;
    std::string unsupported;
    TORCH_CHECK(!model.is_empty(), fn, ": the Sequential is an empty holder");
    if (deeplift_layers(model, "", layers, unsupported))
      return deeplift_sequential(layers, input, baseline, target, shared, options.eps());
    // A custom child (e.g. a residual block): the whole Sequential runs in the scope, with its
    // direct torch::nn activations swapped for their rar::nn twins (same weights).
    torch::nn::Sequential twin = rar::nn::detail::with_rar_activations(fn, model, what);
    rar::nn::detail::check_no_torch_activations(fn, twin, what);
    rar::nn::detail::check_batch_norm_eval(fn, twin);
    return deeplift_scoped(twin, input, baseline, target, shared, options.eps());
  } else {
    rar::nn::detail::check_no_torch_activations(fn, model, what);
    rar::nn::detail::check_batch_norm_eval(fn, model);
    return deeplift_scoped(model, input, baseline, target, shared, options.eps());
  }
}

/// DeepLIFT with each sample's delta, checked per `options.completeness()`.
template <class Model>
Attribution deeplift_checked(const char* fn, Model&& model, const torch::Tensor& input,
                             const DeepLiftOptions& options) {
  DeepLiftResult r = deeplift_run(fn, std::forward<Model>(model), input, options);
  const torch::Tensor total = r.attributions.reshape({input.size(0), -1}).sum(1);
  check_completeness(fn, total, r.score, r.reference_score, options.completeness(),
                     options.completeness_tolerance(), [] {
                       return deeplift_completeness_cause("rar::DeepLiftOptions",
                                                          "rar::deeplift_with_delta");
                     });
  torch::Tensor delta = total - (r.score - r.reference_score);
  return {std::move(r.attributions), std::move(delta)};
}

}  // namespace detail

/// DeepLIFT attributions with the rescale rule (Shrikumar et al., ICML 2017), for any model
/// whose nonlinearities are `rar::nn` activations, or a Sequential of `torch::nn` layers.
///
/// The input and the reference are run through the network side by side. Linear operations
/// (Linear, Conv, average pooling, batch norm in eval mode, residual adds, concatenation, ...)
/// propagate gradients as usual; each elementwise nonlinearity y = f(z) replaces its
/// derivative by the multiplier (f(z) − f(z′))/(z − z′) (its plain derivative where
/// |z − z′| < eps). attributions = (x − x′) ⊙ multipliers satisfy summation-to-delta:
/// Σ attributions = F(x) − F(x′). Matches Captum 0.7's `DeepLift`.
///
/// **No silently wrong map.** The rules see only the operations listed below; any other
/// nonlinear operation (LayerNorm, softmax attention, a product of two activations, an
/// activation called through `torch::` directly) passes its plain gradient, and the map looks
/// right and is not. Summation-to-delta is what tells: every call checks it, and a sample with
/// |Σ attributions − (F(x) − F(x′))| > tolerance · (1 + |F(x)| + |F(x′)|)
/// (`completeness_tolerance`, default 1e-3) raises an error that names the sample, both sums and
/// the operations DeepLIFT can see (`completeness(rar::CompletenessCheck::warn)` warns instead,
/// `off` skips the check). `rar::deeplift_with_delta` returns the delta of every sample. Captum
/// only reports it.
///
/// Two paths, one result:
/// - A `torch::nn::Sequential` whose every leaf is a known layer (Linear, Conv1d/2d, Flatten,
///   Unflatten, Dropout, BatchNorm1d/2d in eval, AvgPool, AdaptiveAvgPool, Identity, MaxPool1d/2d,
///   and the `torch::nn` or `rar::nn` ReLU, LeakyReLU, ELU, Sigmoid, Tanh, Softplus, GELU, SiLU;
///   nested
///   Sequentials) is walked layer by layer; max-pooling then uses Captum's cross-maximum rule,
///   which keeps summation-to-delta exact.
/// - Any other model (a custom module with residual connections, a lambda, a Sequential with a
///   custom child) runs whole, inside a scope in which every `rar::nn` activation applies the
///   rescale rule: the reference first (its activation calls are recorded), then the input
///   (each call, in the same order, uses the recorded reference activations). The model's
///   nonlinearities must be `rar::nn` ones: a `torch::nn` activation in its module tree, or a
///   forward that calls no `rar::nn` activation, raises an error.
///   `rar::nn::functional::max_pool2d`, `layer_norm`, `softmax`, `mul` and `matmul` get exact
///   rules there (`rar/nn/layers.hpp`); `torch::max_pool2d` and the other torch operations pass
///   the plain gradient, and the completeness check refuses the map where that breaks it.
/// - A TorchScript model (`rar::ScriptModel`, in eval mode) runs as its scope-aware twin
///   (`ScriptModel::scope_aware`): the graph's `aten::relu`, `leaky_relu`, `elu`, `sigmoid`,
///   `tanh`, `softplus`, `gelu`, `silu`, `max_pool2d`, `softmax` and `layer_norm` call rar's
///   operators, and F(x), F(x′) of the completeness check come from the model itself. Other
///   nonlinear operators (`aten::mul` of two input-dependent tensors, `aten::matmul` in
///   attention, ...) pass the plain gradient and the check refuses the map where that breaks it.
///
/// Costs two forwards (input and reference) and one backward over N rows; a reference shared by
/// all samples (the default zeros, or a baseline broadcast over the batch) runs as one row. The
/// model's mode and parameters are left as they are; use eval mode (batch norm in training mode
/// is refused).
///
/// Example:
/// @code
/// struct ResidualImpl : torch::nn::Module {
///   torch::nn::Linear fc1{nullptr}, fc2{nullptr};
///   rar::nn::ReLU relu1{nullptr}, relu2{nullptr};
///   ResidualImpl()
///       : fc1(register_module("fc1", torch::nn::Linear(8, 8))),
///         fc2(register_module("fc2", torch::nn::Linear(8, 3))),
///         relu1(register_module("relu1", rar::nn::ReLU())),
///         relu2(register_module("relu2", rar::nn::ReLU())) {}
///   torch::Tensor forward(const torch::Tensor& x) { return fc2(relu2(x + relu1(fc1(x)))); }
/// };
/// TORCH_MODULE(Residual);
/// Residual net;
/// auto attr = rar::deeplift(net, x, rar::DeepLiftOptions().target(y));
/// @endcode
/// @param model the model: a Sequential, a module holder, a module or a callable
/// @param input batch `[N, ...]`, float32 or float64
/// @param options baseline, target, eps, completeness, completeness_tolerance
/// @return attributions, shape/dtype/device of `input`
template <class Model>
torch::Tensor deeplift(Model&& model, const torch::Tensor& input,
                       const DeepLiftOptions& options = {}) {
  detail::static_check_model<Model>();
  return detail::deeplift_checked("rar::deeplift", std::forward<Model>(model), input, options)
      .attributions;
}

/// DeepLIFT with the convergence delta of each sample, `delta[n] = Σ attributions[n] −
/// (F(x_n) − F(x′_n))` (Captum's `return_convergence_delta=True` has the opposite sign). The
/// completeness check runs as in `rar::deeplift`; set `completeness(rar::CompletenessCheck::off)`
/// to look at a failing model's deltas without an error.
///
/// Example:
/// @code
/// auto r = rar::deeplift_with_delta(net, x, rar::DeepLiftOptions().target(y)
///                                                .completeness(rar::CompletenessCheck::off));
/// double worst = r.delta.abs().max().item<double>();
/// @endcode
/// @param model as for `rar::deeplift`
/// @param input batch `[N, ...]`, float32 or float64
/// @param options baseline, target, eps, completeness, completeness_tolerance
/// @return attributions (the input's shape) and delta `[N]`
template <class Model>
Attribution deeplift_with_delta(Model&& model, const torch::Tensor& input,
                                const DeepLiftOptions& options = {}) {
  detail::static_check_model<Model>();
  return detail::deeplift_checked("rar::deeplift_with_delta", std::forward<Model>(model), input,
                                  options);
}

/// DeepLIFT for a `torch::nn::Sequential` lvalue (the original signature; same as the template).
/// @param net the network
/// @param input batch `[N, ...]`
/// @param options baseline, target, eps
/// @return attributions, shape/dtype/device of `input`
inline torch::Tensor deeplift(torch::nn::Sequential& net, const torch::Tensor& input,
                              const DeepLiftOptions& options = {}) {
  return deeplift<const torch::nn::Sequential&>(net, input, options);
}

}  // namespace rar
