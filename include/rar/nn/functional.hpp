#pragma once
/// @file
/// Functional forms of the `rar::nn` activations: `rar::nn::functional::relu(x)` and friends
/// (relu, leaky_relu, elu, sigmoid, tanh, softplus, gelu, silu).
/// Outside a `rar::nn::Scope` each returns exactly what its `torch::nn::functional` namesake
/// returns; inside one it follows the scope (softplus surrogate, DeepLIFT rescale rule, guided
/// backprop, deconvolution). Call these in a custom `forward` instead of `torch::relu` so that
/// every method of rar sees the nonlinearity.

#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <rar/nn/scope.hpp>
#include <string>

namespace rar {
namespace nn {
namespace detail {

/// Which elementwise nonlinearity.
enum class ActivationKind : int64_t { relu, leaky_relu, elu, sigmoid, tanh, softplus, gelu, silu };

/// One elementwise nonlinearity with its parameters.
struct Activation {
  ActivationKind kind = ActivationKind::relu;
  double a = 0.0;  ///< LeakyReLU: negative slope; ELU: alpha; Softplus: beta; GELU: 1 = tanh
  double threshold = 20.0;  ///< Softplus: linear above beta·z > threshold

  /// The activation at `z`, with ReLU-like kinds smoothed to softplus_β when `beta` > 0 (the
  /// leaky part kept: LeakyReLU(a) becomes a·z + (1 − a)·softplus_β(z)). Differentiable.
  torch::Tensor operator()(const torch::Tensor& z, double beta) const {
    switch (kind) {
      case ActivationKind::relu:
        return beta > 0 ? torch::softplus(z, beta, 20.0) : torch::relu(z);
      case ActivationKind::leaky_relu:
        if (beta > 0) return a * z + (1.0 - a) * torch::softplus(z, beta, 20.0);
        return torch::leaky_relu(z, a);
      case ActivationKind::elu:
        return torch::elu(z, a);
      case ActivationKind::sigmoid:
        return torch::sigmoid(z);
      case ActivationKind::tanh:
        return torch::tanh(z);
      case ActivationKind::softplus:
        return torch::softplus(z, a, threshold);
      case ActivationKind::gelu:
        return torch::gelu(z, a != 0.0 ? "tanh" : "none");
      case ActivationKind::silu:
        return torch::silu(z);
    }
    TORCH_INTERNAL_ASSERT(false, "unknown activation kind");
    return {};
  }

  /// The activation's own derivative at `z` (elementwise), computed by autograd so that it is
  /// exactly torch's (e.g. ReLU'(0) = 0).
  torch::Tensor derivative(const torch::Tensor& z, double beta) const {
    torch::AutoGradMode grad_mode(true);
    const torch::Tensor leaf = z.detach().requires_grad_(true);
    const torch::Tensor y = (*this)(leaf, beta);
    return torch::autograd::grad({y}, {leaf}, {torch::ones_like(y)})[0];
  }
};

/// DeepLIFT's rescale rule as an autograd function: forward y = f(z), backward
/// ∂L/∂z = ∂L/∂y · (f(z) − f(z′))/(z − z′), the plain f′(z) where |z − z′| < eps.
struct RescaleFunction : public torch::autograd::Function<RescaleFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& z,
                               const torch::Tensor& reference_input,
                               const torch::Tensor& reference_output, int64_t kind, double a,
                               double threshold, double beta, double eps) {
    const Activation f{static_cast<ActivationKind>(kind), a, threshold};
    torch::Tensor y = f(z, beta);
    torch::Tensor delta_in = z - reference_input;
    torch::Tensor multiplier = (y - reference_output).div_(delta_in);
    delta_in.abs_();
    // One reduction tells whether any entry needs the plain derivative.
    if (delta_in.numel() > 0 && delta_in.min().item<double>() < eps)
      multiplier = torch::where(delta_in < eps, f.derivative(z, beta), multiplier);
    ctx->save_for_backward({multiplier});
    return y;
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grad_outputs) {
    const torch::Tensor multiplier = ctx->get_saved_variables()[0];
    return {grad_outputs[0] * multiplier,
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor()};
  }
};

/// Guided backprop and deconvolution through a ReLU (Springenberg et al. 2015; Zeiler & Fergus
/// 2014; Captum 0.7's `GuidedBackprop`/`Deconvolution`): forward y = f(z); backward
/// relu(∂L/∂y · f′(z)) (guided) or relu(∂L/∂y) (deconvolution). With a smoothed ReLU
/// (softplus_β) f′(z) = σ(βz), so the rule stays differentiable for `create_graph`.
struct GuidedReluFunction : public torch::autograd::Function<GuidedReluFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& z,
                               double beta, bool deconvolution) {
    ctx->saved_data["beta"] = beta;
    ctx->saved_data["deconvolution"] = deconvolution;
    ctx->save_for_backward({z});
    return beta > 0 ? torch::softplus(z, beta, 20.0) : torch::relu(z);
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grad_outputs) {
    const torch::Tensor& grad = grad_outputs[0];
    if (ctx->saved_data["deconvolution"].toBool())
      return {torch::relu(grad), torch::Tensor(), torch::Tensor()};
    const torch::Tensor z = ctx->get_saved_variables()[0];
    const double beta = ctx->saved_data["beta"].toDouble();
    // softplus_β′(z) = σ(βz), 1 above the threshold βz > 20 (torch's softplus backward).
    const torch::Tensor slope =
        beta > 0 ? torch::where(z * beta > 20.0, torch::ones_like(z), torch::sigmoid(z * beta))
                 : (z > 0).to(z.scalar_type());
    return {torch::relu(grad * slope), torch::Tensor(), torch::Tensor()};
  }
};

/// Whether `ref` (a recorded reference operand) pairs with `z`: same rank, and each dimension
/// equal or 1 on the reference (a reference shared by the batch has one row). With `rows`,
/// only the batch dimension may differ (one reference row, or as many as `z`): what an
/// operation applied row by row to an `[N, ...]` batch needs.
inline bool pairs_with(const torch::Tensor& ref, const torch::Tensor& z, bool rows = false) {
  if (!ref.defined() || ref.dim() != z.dim() || (rows && z.dim() == 0)) return false;
  for (int64_t d = 0; d < z.dim(); ++d) {
    const bool shared = ref.size(d) == 1 && (d == 0 || !rows);
    if (ref.size(d) != z.size(d) && !shared) return false;
  }
  return true;
}

/// The recorded reference call that pairs with the input's next call of kind `op` (`what`
/// names it in errors: "a softmax"), with the errors of a forward whose calls depend on the
/// data. `rows`: the operands must pair row by row (see `pairs_with`).
inline const DeepLiftTape::Entry& replay(DeepLiftTape& tape, DeepLiftTape::Op op, const char* what,
                                         const torch::Tensor& a, const torch::Tensor& b = {},
                                         bool rows = false) {
  TORCH_CHECK(tape.next < tape.entries.size(),
              "rar::deeplift: the model made more rar::nn calls on the input (call #",
              tape.next + 1, ", ", what, ") than on the reference (", tape.entries.size(),
              " calls); DeepLIFT needs a forward whose calls do not depend on the data");
  const DeepLiftTape::Entry& ref = tape.entries[tape.next++];
  TORCH_CHECK(ref.op == op && pairs_with(ref.input, a, rows) &&
                  (!b.defined() || pairs_with(ref.other, b, rows)),
              "rar::deeplift: rar::nn call #", tape.next, " is ", what, " of shape ", a.sizes(),
              " on the input but not on the reference (shape ",
              ref.input.defined() ? ref.input.sizes() : torch::IntArrayRef{},
              "); DeepLIFT needs a forward whose calls do not depend on the data",
              rows ? ", applied to [N, ...] batches" : "");
  return ref;
}

/// The activation inside a scope: what the scope's rule and β make of it.
inline torch::Tensor scoped(const Activation& f, const torch::Tensor& z, ScopeState& scope) {
  ++scope.calls;
  if (f.kind == ActivationKind::relu) ++scope.relu_calls;
  if (f.kind == ActivationKind::relu || f.kind == ActivationKind::leaky_relu) ++scope.kinked_calls;
  switch (scope.rule) {
    case Rule::plain:
      return f(z, scope.beta);
    case Rule::rescale: {
      TORCH_INTERNAL_ASSERT(scope.tape != nullptr, "rescale scope without a tape");
      DeepLiftTape& tape = *scope.tape;
      if (tape.recording) {
        torch::Tensor y = f(z, scope.beta);
        tape.entries.push_back({z.detach(), y.detach()});
        return y;
      }
      const DeepLiftTape::Entry& ref =
          replay(tape, DeepLiftTape::Op::activation, "an activation", z, {}, /*rows=*/true);
      return RescaleFunction::apply(z, ref.input, ref.output, static_cast<int64_t>(f.kind), f.a,
                                    f.threshold, scope.beta, tape.eps);
    }
    case Rule::guided_backprop:
    case Rule::deconvolution:
      // Captum changes ReLU modules only; the other activations keep their derivative.
      if (f.kind != ActivationKind::relu) return f(z, scope.beta);
      return GuidedReluFunction::apply(z, scope.beta, scope.rule == Rule::deconvolution);
  }
  TORCH_INTERNAL_ASSERT(false, "unknown rule");
  return {};
}

/// Scatters the pooled values `values` `[N, C, h, w]` back to the pre-pool plane of `like`
/// `[N, C, H, W]` through flat `indices` (one row broadcast to N), summing where windows overlap.
inline torch::Tensor unpool2d_add(const torch::Tensor& values, const torch::Tensor& indices,
                                  const torch::Tensor& like) {
  const torch::Tensor idx = indices.size(0) == values.size(0) ? indices : indices.expand_as(values);
  const auto n = like.size(0), c = like.size(1);
  return torch::zeros({n, c, like.size(2) * like.size(3)}, like.options())
      .scatter_add_(2, idx.reshape({n, c, -1}), values.reshape({n, c, -1}))
      .view(like.sizes());
}

/// DeepLIFT's max-pooling rule (Captum's, the one `rar::deeplift` applies in a Sequential) as an
/// autograd function: forward max pooling of z; backward the cross-maximum rule: with
/// m = max(y, y′), the share grad·(m − y′) goes to the input's maxima and grad·(y − m) to the
/// reference's, divided by z − z′ (the plain gradient where |z − z′| < eps). Summation-to-delta
/// stays exact: Σ_i mult_i·(z_i − z′_i) = Σ_j grad_j·(y_j − y′_j).
struct MaxPoolRescaleFunction : public torch::autograd::Function<MaxPoolRescaleFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& z,
                               const torch::Tensor& reference_input,
                               const torch::Tensor& reference_output,
                               const torch::Tensor& reference_indices, torch::IntArrayRef kernel,
                               torch::IntArrayRef stride, torch::IntArrayRef padding,
                               torch::IntArrayRef dilation, bool ceil_mode, double eps) {
    auto [y, indices] =
        torch::max_pool2d_with_indices(z, kernel, stride, padding, dilation, ceil_mode);
    ctx->save_for_backward({z, y, indices, reference_input, reference_output, reference_indices});
    ctx->saved_data["eps"] = eps;
    return y;
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor &z = saved[0], &y = saved[1], &indices = saved[2], &z_ref = saved[3],
                        &y_ref = saved[4], &indices_ref = saved[5];
    const torch::Tensor& grad = grad_outputs[0];
    const double eps = ctx->saved_data["eps"].toDouble();
    const torch::Tensor cross = torch::max(y, y_ref);
    torch::Tensor contribution = unpool2d_add(grad * (cross - y_ref), indices, z);
    contribution.add_(unpool2d_add(grad * (y - cross), indices_ref, z));
    torch::Tensor delta_in = z - z_ref;
    torch::Tensor multiplier = contribution.div_(delta_in);
    delta_in.abs_();
    if (delta_in.numel() > 0 && delta_in.min().item<double>() < eps)
      multiplier = torch::where(delta_in < eps, unpool2d_add(grad, indices, z), multiplier);
    std::vector<torch::Tensor> out(10);
    out[0] = multiplier;
    return out;
  }
};

/// The approximation GELU uses: "none" (the exact x·Φ(x)) or "tanh"; anything else is an error.
/// @param fn the caller, for the message
/// @param approximate the option's value
/// @return 0 for "none", 1 for "tanh"
inline double gelu_approximation(const char* fn, const std::string& approximate) {
  TORCH_CHECK(approximate == "none" || approximate == "tanh", fn,
              ": approximate must be \"none\" or \"tanh\", got \"", approximate, "\"");
  return approximate == "tanh" ? 1.0 : 0.0;
}

}  // namespace detail

/// Functional forms of the `rar::nn` activations.
namespace functional {

/// ReLU: `torch::nn::functional::relu` outside a scope (in place with `inplace(true)`); inside
/// one, what the scope makes of it (softplus_β, rescale rule, guided backprop, ...).
///
/// Example: `torch::Tensor h = rar::nn::functional::relu(conv->forward(x));`
/// @param input any tensor
/// @param options inplace (honoured outside scopes only)
/// @return the activation
inline torch::Tensor relu(torch::Tensor input, const torch::nn::ReLUOptions& options = {}) {
  detail::ScopeState* scope = detail::current_scope();
  if (scope == nullptr) return options.inplace() ? torch::relu_(input) : torch::relu(input);
  return detail::scoped({detail::ActivationKind::relu}, input, *scope);
}

/// LeakyReLU(a): `torch::nn::functional::leaky_relu` outside a scope; a·x + (1 − a)·softplus_β
/// in a surrogate scope; rescale rule under DeepLIFT.
///
/// Example: `h = rar::nn::functional::leaky_relu(h,
/// torch::nn::LeakyReLUOptions().negative_slope(0.1));`
/// @param input any tensor
/// @param options negative_slope, inplace (honoured outside scopes only)
/// @return the activation
inline torch::Tensor leaky_relu(torch::Tensor input,
                                const torch::nn::LeakyReLUOptions& options = {}) {
  detail::ScopeState* scope = detail::current_scope();
  if (scope == nullptr)
    return options.inplace() ? torch::leaky_relu_(input, options.negative_slope())
                             : torch::leaky_relu(input, options.negative_slope());
  return detail::scoped({detail::ActivationKind::leaky_relu, options.negative_slope()}, input,
                        *scope);
}

/// ELU(α): `torch::nn::functional::elu` outside a scope (already smooth for surrogates; rescale
/// rule under DeepLIFT).
///
/// Example: `h = rar::nn::functional::elu(h);`
/// @param input any tensor
/// @param options alpha, inplace (honoured outside scopes only)
/// @return the activation
inline torch::Tensor elu(torch::Tensor input, const torch::nn::ELUOptions& options = {}) {
  detail::ScopeState* scope = detail::current_scope();
  if (scope == nullptr)
    return options.inplace() ? torch::elu_(input, options.alpha())
                             : torch::elu(input, options.alpha());
  return detail::scoped({detail::ActivationKind::elu, options.alpha()}, input, *scope);
}

/// Sigmoid: `torch::sigmoid` outside a scope; rescale rule under DeepLIFT.
///
/// Example: `p = rar::nn::functional::sigmoid(logits);`
/// @param input any tensor
/// @return the activation
inline torch::Tensor sigmoid(const torch::Tensor& input) {
  detail::ScopeState* scope = detail::current_scope();
  if (scope == nullptr) return torch::sigmoid(input);
  return detail::scoped({detail::ActivationKind::sigmoid}, input, *scope);
}

/// Tanh: `torch::tanh` outside a scope; rescale rule under DeepLIFT.
///
/// Example: `h = rar::nn::functional::tanh(h);`
/// @param input any tensor
/// @return the activation
inline torch::Tensor tanh(const torch::Tensor& input) {
  detail::ScopeState* scope = detail::current_scope();
  if (scope == nullptr) return torch::tanh(input);
  return detail::scoped({detail::ActivationKind::tanh}, input, *scope);
}

/// Softplus(β, threshold): `torch::nn::functional::softplus` outside a scope; rescale rule
/// under DeepLIFT.
///
/// Example: `h = rar::nn::functional::softplus(h, torch::nn::SoftplusOptions().beta(2));`
/// @param input any tensor
/// @param options beta, threshold
/// @return the activation
inline torch::Tensor softplus(const torch::Tensor& input,
                              const torch::nn::SoftplusOptions& options = {}) {
  detail::ScopeState* scope = detail::current_scope();
  if (scope == nullptr) return torch::softplus(input, options.beta(), options.threshold());
  return detail::scoped({detail::ActivationKind::softplus, options.beta(), options.threshold()},
                        input, *scope);
}

/// GELU, x·Φ(x) (or its tanh approximation): `torch::nn::functional::gelu` outside a scope;
/// rescale rule under DeepLIFT. Already smooth: the softplus surrogate leaves it unchanged, and
/// guided backprop keeps its derivative (Captum changes ReLUs only).
///
/// Example: `h = rar::nn::functional::gelu(h,
/// torch::nn::functional::GELUFuncOptions().approximate("tanh"));`
/// @param input any tensor
/// @param options approximate ("none" or "tanh")
/// @return the activation
inline torch::Tensor gelu(const torch::Tensor& input,
                          const torch::nn::functional::GELUFuncOptions& options = {}) {
  const double approximate =
      detail::gelu_approximation("rar::nn::functional::gelu", options.approximate());
  detail::ScopeState* scope = detail::current_scope();
  if (scope == nullptr) return torch::gelu(input, approximate != 0.0 ? "tanh" : "none");
  return detail::scoped({detail::ActivationKind::gelu, approximate}, input, *scope);
}

/// 2-d max pooling: `torch::nn::functional::max_pool2d` everywhere, except under DeepLIFT
/// (`rar::deeplift` on a custom model), where it applies the cross-maximum rule that the
/// Sequential walker applies to `torch::nn::MaxPool2d`, so that summation-to-delta stays exact.
/// `torch::max_pool2d` in a custom forward passes the plain gradient instead, and the
/// completeness check of `rar::deeplift` refuses the map.
///
/// Example: `x = rar::nn::functional::max_pool2d(h,
/// torch::nn::functional::MaxPool2dFuncOptions(2));`
/// @param input `[N, C, H, W]`
/// @param options kernel_size, stride, padding, dilation, ceil_mode
/// @return the pooled tensor
inline torch::Tensor max_pool2d(const torch::Tensor& input,
                                const torch::nn::functional::MaxPool2dFuncOptions& options) {
  detail::ScopeState* scope = detail::current_scope();
  auto pool = [&](const torch::Tensor& t) {
    return torch::max_pool2d_with_indices(t, options.kernel_size(), options.stride(),
                                          options.padding(), options.dilation(),
                                          options.ceil_mode());
  };
  if (scope == nullptr || scope->rule != Rule::rescale)
    return torch::max_pool2d(input, options.kernel_size(), options.stride(), options.padding(),
                             options.dilation(), options.ceil_mode());
  TORCH_INTERNAL_ASSERT(scope->tape != nullptr, "rescale scope without a tape");
  detail::DeepLiftTape& tape = *scope->tape;
  TORCH_CHECK(input.dim() == 4,
              "rar::nn::functional::max_pool2d: under DeepLIFT the input must "
              "be [N, C, H, W], got ",
              input.sizes());
  if (tape.recording) {
    auto [y, indices] = pool(input);
    tape.entries.push_back(
        {input.detach(), y.detach(), indices, {}, detail::DeepLiftTape::Op::max_pool});
    return y;
  }
  const detail::DeepLiftTape::Entry& ref = detail::replay(
      tape, detail::DeepLiftTape::Op::max_pool, "a max pooling", input, {}, /*rows=*/true);
  return detail::MaxPoolRescaleFunction::apply(
      input, ref.input, ref.output, ref.indices, options.kernel_size(), options.stride(),
      options.padding(), options.dilation(), options.ceil_mode(), tape.eps);
}

/// SiLU (swish), x·σ(x): `torch::silu` outside a scope; rescale rule under DeepLIFT. Already
/// smooth: the softplus surrogate leaves it unchanged.
///
/// Example: `h = rar::nn::functional::silu(h);`
/// @param input any tensor
/// @return the activation
inline torch::Tensor silu(const torch::Tensor& input) {
  detail::ScopeState* scope = detail::current_scope();
  if (scope == nullptr) return torch::silu(input);
  return detail::scoped({detail::ActivationKind::silu}, input, *scope);
}

}  // namespace functional
}  // namespace nn
}  // namespace rar
