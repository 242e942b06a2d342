#pragma once
/// @file
/// The completeness check of the methods whose attributions must sum to the change of the
/// explained score, Σ_i a_i(x) = F(x) − F(x′) (DeepLIFT's summation-to-delta, DeepLIFT-SHAP's
/// mean of it): `rar::CompletenessCheck` and the check itself, on a `rar::Attribution`
/// (`rar/core/attribution.hpp`).
///
/// A rule-based method only sees the operations it has rules for; any other nonlinear
/// operation (LayerNorm, softmax attention, a product of activations, an activation called
/// through `torch::` directly) is passed by its plain gradient, and the map then looks right and
/// is not. The sum is the one number that tells, so rar checks it on every call.

#include <rar/core/attribution.hpp>

#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <iomanip>
#include <sstream>
#include <string>

namespace rar {

/// What a method with summation-to-delta does when a sample's attributions miss
/// F(x) − F(x′) by more than its tolerance.
enum class CompletenessCheck {
  raise,  ///< throw `c10::Error` naming the sample, the two sums and the likely cause (default)
  warn,   ///< emit the same message as a LibTorch warning (`TORCH_WARN`) and return the map
  off     ///< no check (no extra work either)
};

namespace detail {

/// Checks a summation-to-delta tolerance option: finite and > 0.
inline void check_completeness_tolerance(const char* fn, double tolerance) {
  TORCH_CHECK(std::isfinite(tolerance) && tolerance > 0, fn,
              ": completeness_tolerance must be finite and > 0, got ", tolerance);
}

/// Checks Σ attributions against F(x) − F(x′) for every sample: sample n fails when
///
///     |total_n − (score_n − reference_score_n)| > tolerance · (1 + |score_n| +
///     |reference_score_n|)
///
/// (a relative tolerance with an absolute floor of `tolerance`, like `numpy.isclose` with
/// rtol = atol). On failure it raises or warns, per `mode`, with the worst sample's figures,
/// the number of failing samples and `cause` (what the method cannot see). One reduction and
/// one host sync per call.
/// @param fn the method, for the message
/// @param total Σ attributions per sample `[N]`
/// @param score F(x_n) `[N]`
/// @param reference_score F(x′_n) `[N]` (or broadcastable)
/// @param mode raise, warn or off
/// @param tolerance the relative tolerance (> 0)
/// @param cause makes the likely cause and the remedy, appended to the message (called on
///        failure only)
template <class Cause>
void check_completeness(const char* fn, const torch::Tensor& total, const torch::Tensor& score,
                        const torch::Tensor& reference_score, CompletenessCheck mode,
                        double tolerance, Cause&& cause) {
  if (mode == CompletenessCheck::off || total.numel() == 0) return;
  torch::NoGradGuard no_grad;
  const torch::Tensor t = total.detach().to(torch::kDouble);
  const torch::Tensor s = score.detach().to(torch::kDouble).expand_as(t);
  const torch::Tensor r = reference_score.detach().to(torch::kDouble).expand_as(t);
  const torch::Tensor miss = (t - (s - r)).abs();
  // NaN counts as a failure: a NaN sum is no evidence of completeness.
  const torch::Tensor excess =
      torch::nan_to_num(miss / (tolerance * (1.0 + s.abs() + r.abs())), /*nan=*/INFINITY);
  const torch::Tensor failing = excess > 1.0;
  const torch::Tensor stats =
      torch::stack({failing.sum().to(torch::kDouble), excess.argmax().to(torch::kDouble)}).cpu();
  const auto count = static_cast<int64_t>(stats[0].item<double>());
  if (count == 0) return;
  const auto n = static_cast<int64_t>(stats[1].item<double>());
  const double tn = t[n].item<double>(), sn = s[n].item<double>(), rn = r[n].item<double>();
  std::ostringstream msg;
  msg << fn << ": the attributions do not sum to F(x) - F(x'): " << count << " of " << t.numel()
      << " samples miss it by more than the tolerance " << tolerance << "; the worst, sample " << n
      << ", sums to " << std::setprecision(6) << tn << " against F(x) - F(x') = " << sn << " - "
      << rn << " = " << (sn - rn) << " (off by " << std::abs(tn - (sn - rn)) << "). " << cause();
  if (mode == CompletenessCheck::raise) TORCH_CHECK(false, msg.str());
  TORCH_WARN(msg.str());
}

/// What DeepLIFT's rules see, for the completeness message of DeepLIFT and DeepLIFT-SHAP.
/// @param options_name the options struct whose `completeness` turns the check off
/// @param with_delta the function that returns the delta
/// @return the cause and the remedy
inline std::string deeplift_completeness_cause(const char* options_name, const char* with_delta) {
  std::ostringstream out;
  out << "The likely cause is an operation DeepLIFT cannot see: its rules cover linear "
         "operations (Linear, Conv, average pooling, batch norm in eval mode, residual adds, "
         "concatenation, reshapes), max pooling (torch::nn::MaxPool2d in a Sequential, "
         "rar::nn::functional::max_pool2d anywhere), the rar::nn activations (ReLU, "
         "LeakyReLU, ELU, Sigmoid, Tanh, Softplus, GELU, SiLU, or their rar::nn::functional "
         "forms), rar::nn::LayerNorm, rar::nn::MultiheadAttention, and "
         "rar::nn::functional::softmax, mul, matmul and scaled_dot_product_attention (in a "
         "TorchScript model: its aten::relu, leaky_relu, elu, sigmoid, tanh, softplus, gelu, "
         "silu, max_pool2d, softmax and layer_norm); any other nonlinear operation "
         "(torch::nn::LayerNorm, torch::nn::MultiheadAttention, torch::softmax, a product a * b "
         "of two tensors that both depend on the input, per-image standardization, torch::gelu, "
         "torch::relu or torch::max_pool2d called directly) passes its plain gradient and "
         "breaks the map. Use the rar::nn forms, rar::integrated_gradients, or set "
      << options_name << "().completeness(rar::CompletenessCheck::warn or off) to accept the map; "
      << with_delta << " returns every sample's delta";
  return out.str();
}

}  // namespace detail
}  // namespace rar
