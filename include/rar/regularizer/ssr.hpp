#pragma once
/// @file
/// Smoothed surface regularization (SSR) of Wang, Wang, Ramkumar, Fredrikson, Mardziel, Datta,
/// "Smoothed Geometry for Robust Attribution" (NeurIPS 2020; arXiv 2006.06643): a penalty on
/// the largest eigenvalue of the input Hessian of the cross-entropy's Gauss-Newton part, with
/// no inner maximization. See docs/methods.md for the formula, defaults and choices.

#include <rar/core/model.hpp>
#include <rar/core/score.hpp>
#include <rar/detail/arg.hpp>
#include <rar/regularizer/term.hpp>

#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <vector>

namespace rar {

/// Options of `rar::ssr` and `rar::ssr_beta`.
///
/// Defaults are those of the authors' training script (`example/train_smooth_cifar.py` of
/// zifanw/smoothed_geometry: `--alpha 0.3 --scale 0.3`). Their script feeds CIFAR-10 pixels in
/// [0, 255]; β scales with the square of the input unit, so on [0, 1] inputs the same strength
/// is `scale(0.3 / (255.0 * 255.0))`. The default keeps the script's number (see docs/methods.md).
///
/// Example:
/// @code
/// auto objective = rar::ssr(rar::SSROptions().alpha(0.3).scale(0.3));
/// objective(model, images, labels).backward();
/// @endcode
struct SSROptions {
  /// Weight α ∈ [0, 1] of the smoothness penalty against the cross-entropy:
  /// loss = (1 − α)·CE + α·scale·β.
  RAR_ARG(double, alpha) = 0.3;
  /// Scale s ≥ 0 of the penalty β (the authors' `scale`).
  RAR_ARG(double, scale) = 0.3;
  /// Average each logit's input gradient over the channel axis (dim 1) before forming W, as the
  /// authors do (`reduce_mean(w, axis=-1)` on channels-last images). Applies to inputs
  /// `[N, C, ...]` with at least 3 dimensions; `[N, D]` inputs have no channel axis.
  RAR_ARG(bool, channel_mean) = true;
  /// Mean (default, the authors' `reduce_mean`) or sum over the batch.
  RAR_ARG(Reduction, reduction) = Reduction::mean;
};

namespace detail {

/// Validates SSR options; `fn` names the public entry point.
inline void check_ssr_options(const char* fn, const SSROptions& options) {
  TORCH_CHECK(std::isfinite(options.alpha()) && options.alpha() >= 0 && options.alpha() <= 1, fn,
              ": alpha must lie in [0, 1], got ", options.alpha());
  TORCH_CHECK(std::isfinite(options.scale()) && options.scale() >= 0, fn,
              ": scale must be finite and >= 0, got ", options.scale());
}

/// What one SSR evaluation computes: the logits at x `[N, C]` and β(x) `[N]`, both
/// differentiable in the model's parameters.
struct SSRParts {
  torch::Tensor logits;  ///< the model's logits at x, `[N, C]`
  torch::Tensor beta;    ///< β(x), `[N]`
};

/// The logits and the smoothness β(x) = λ_max(W·(diag(p) − ppᵀ)·Wᵀ) of every sample.
///
/// W `[N, K, C]` holds the input gradient of each logit (channel-averaged when asked): all C
/// gradients come from one forward of the batch replicated C times and one backward with
/// create_graph. With L = (I − p1ᵀ)·diag(√p), LLᵀ = diag(p) − ppᵀ, so the nonzero eigenvalues
/// of W·A·Wᵀ are those of the C×C matrix GᵀG, G = W·L (column c: √p_c·(w_c − Σ_j p_j w_j)),
/// whose largest comes from `torch::linalg::eigvalsh`. √p is exp(½·log_softmax), so no
/// division by a vanishing probability enters the gradient.
template <class Model>
SSRParts ssr_parts(const char* fn, Model& model, const torch::Tensor& x, bool channel_mean) {
  torch::AutoGradMode grad_mode(true);
  const torch::Tensor xd = x.detach();
  const int64_t n = xd.size(0);
  const torch::Tensor logits = call_model(model, xd);
  TORCH_CHECK(logits.dim() == 2 && logits.size(0) == n && logits.size(1) >= 2, fn,
              ": the model must return logits [N, C] with N = ", n, " and C >= 2, got ",
              logits.sizes());
  const int64_t c = logits.size(1);
  std::vector<int64_t> rep(static_cast<size_t>(xd.dim()) + 1, -1);
  rep[0] = c;
  std::vector<int64_t> flat_shape(xd.sizes().begin(), xd.sizes().end());
  flat_shape[0] = c * n;
  // [C·N, ...]: block k of N rows gives the gradient of logit k.
  const torch::Tensor xr =
      xd.unsqueeze(0).expand(rep).reshape(flat_shape).detach().requires_grad_(true);
  const torch::Tensor out = call_model(model, xr);
  TORCH_CHECK(out.dim() == 2 && out.size(0) == c * n && out.size(1) == c, fn,
              ": the model must map the replicated batch [", c * n, ", ...] to [", c * n, ", ",
              c, "], got ", out.sizes());
  const torch::Tensor cls =
      torch::arange(c, torch::TensorOptions().dtype(torch::kLong).device(xd.device()))
          .repeat_interleave(n);
  const torch::Tensor picked = out.gather(1, cls.unsqueeze(1)).sum();
  torch::Tensor g = torch::autograd::grad({picked}, {xr}, {}, /*retain_graph=*/true,
                                          /*create_graph=*/true, /*allow_unused=*/true)[0];
  if (!g.defined()) g = torch::zeros_like(xr);
  std::vector<int64_t> grad_shape{c, n};
  grad_shape.insert(grad_shape.end(), xd.sizes().begin() + 1, xd.sizes().end());
  g = g.view(grad_shape);                                   // [C, N, ...]
  if (channel_mean && xd.dim() >= 3) g = g.mean(2);         // [C, N, H, W]
  const torch::Tensor w = g.reshape({c, n, -1}).permute({1, 2, 0});  // [N, K, C]
  const torch::Tensor log_p = torch::log_softmax(logits, 1);
  const torch::Tensor p = log_p.exp();                       // [N, C]
  const torch::Tensor sqrt_p = (0.5 * log_p).exp();          // √p without 1/(2√p) in backward
  const torch::Tensor mean_w = torch::bmm(w, p.unsqueeze(2));  // Σ_j p_j w_j, [N, K, 1]
  const torch::Tensor gl = (w - mean_w) * sqrt_p.unsqueeze(1);  // W·L, [N, K, C]
  const torch::Tensor m = torch::bmm(gl.transpose(1, 2), gl);   // LᵀWᵀWL, [N, C, C]
  const torch::Tensor beta = torch::linalg::eigvalsh(m, "L").select(1, c - 1);
  return {logits, beta};
}

}  // namespace detail

/// The SSR smoothness β(x) of every sample: the largest eigenvalue of W·(diag(p) − ppᵀ)·Wᵀ,
/// W `[K, C]` holding the (channel-averaged) input gradient of each logit and p the softmax
/// (Wang et al., NeurIPS 2020; the authors' `BetaLoss` without its 1e-12 jitter). W·A·Wᵀ is the Gauss-Newton part of the input Hessian of the cross-entropy,
/// whichever the label, so β bounds how fast the input gradient can turn.
///
/// Differentiable in the model's parameters. Cost: one forward of N, one forward and one double
/// backward of C·N inputs, and N eigenvalue problems of size C×C.
///
/// Example:
/// @code
/// torch::Tensor beta = rar::ssr_beta(model, images);  // [N], float64 or float32 like images
/// @endcode
/// @param model any model mapping `[N, ...]` to logits `[N, C]`
/// @param x batch `[N, ...]`
/// @param options `channel_mean` (the other fields are not used here)
/// @return β(x) `[N]`, differentiable in the parameters
template <class Model>
torch::Tensor ssr_beta(Model&& model, const torch::Tensor& x, const SSROptions& options = {}) {
  detail::static_check_model<Model>();
  const char* fn = "rar::ssr_beta";
  detail::check_input(fn, "x", x);
  return detail::ssr_parts(fn, model, x, options.channel_mean()).beta;
}

/// Smoothed surface regularization (Wang, Wang, Ramkumar, Fredrikson, Mardziel, Datta, NeurIPS
/// 2020): loss = (1 − α)·CE(f(x), y) + α·s·β(x), β(x) = λ_max(W·(diag(p) − ppᵀ)·Wᵀ) from
/// `rar::ssr_beta`, both reduced over the batch.
///
/// This is the whole training objective (it contains the cross-entropy); there is no inner
/// maximization, so a step costs about C + 1 forwards and one double backward, far less than
/// PGD-based terms. The term draws no random numbers.
///
/// Example:
/// @code
/// auto objective = rar::ssr(rar::SSROptions().alpha(0.3).scale(1e-3));
/// torch::Tensor loss = objective(model, x, y);
/// loss.backward();
/// @endcode
/// @param options α, scale s, channel_mean, reduction
/// @return a `rar::Term` `(model, x, y) -> loss`, 0-dim
inline auto ssr(const SSROptions& options = {}) {
  const char* fn = "rar::ssr";
  detail::check_ssr_options(fn, options);
  return make_term([options, fn](auto& model, const torch::Tensor& x, const torch::Tensor& y) {
    detail::check_labelled_batch(fn, x, y);
    const detail::SSRParts parts = detail::ssr_parts(fn, model, x, options.channel_mean());
    const torch::Tensor ce = score::cross_entropy(parts.logits, y);
    return (1 - options.alpha()) * detail::reduce(ce, options.reduction()) +
           options.alpha() * options.scale() * detail::reduce(parts.beta, options.reduction());
  });
}

}  // namespace rar
