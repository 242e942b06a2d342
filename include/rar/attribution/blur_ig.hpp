#pragma once
/// @file
/// Blur IG (Xu, Venugopalan, Sundararajan, "Attribution in Scale and Space", CVPR 2020):
/// Integrated Gradients along the path that blurs the image with a Gaussian of growing σ,
/// batched over all path points, differentiable with `create_graph`; and the Gaussian blur it
/// needs, scipy.ndimage.gaussian_filter's, as a differentiable torch operation.

#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <rar/core/batching.hpp>
#include <rar/core/model.hpp>
#include <rar/core/score.hpp>
#include <rar/detail/arg.hpp>
#include <rar/detail/checks.hpp>
#include <string>
#include <vector>

namespace rar {

/// How `rar::gaussian_blur` extends the image beyond its border (scipy.ndimage's `mode`).
///
/// Example: `rar::BlurIGOptions().boundary(rar::BlurBoundary::reflect)`.
enum class BlurBoundary {
  constant,  ///< zeros outside (scipy's mode='constant', cval 0): PAIR-code/saliency's choice
  reflect  ///< d c b a | a b c d | d c b a, repeated as often as the kernel needs (mode='reflect')
};

namespace detail {

/// The 1-D Gaussian blur of a signal of `size` samples as a matrix B `[size, size]` (float64,
/// CPU): (B v)_i = Σ_j w_j v_{map(i + j − r)}, with scipy.ndimage.gaussian_filter1d's kernel
/// w_j ∝ exp(−(j − r)² / (2σ²)), j = 0..2r, radius r = ⌊truncate·σ + ½⌋, normalized to sum 1,
/// and `map` the boundary's index rule (an index outside is dropped for `constant`; folded with
/// period 2·size for `reflect`). σ ≤ 1e-15 gives the identity (scipy skips such an axis).
inline torch::Tensor gaussian_blur_matrix(int64_t size, double sigma, BlurBoundary boundary,
                                          double truncate = 4.0) {
  std::vector<double> b(static_cast<size_t>(size * size), 0.0);
  if (sigma <= 1e-15) {
    for (int64_t i = 0; i < size; ++i) b[static_cast<size_t>(i * size + i)] = 1.0;
    return torch::tensor(b, torch::kDouble).view({size, size});
  }
  const int64_t r = static_cast<int64_t>(truncate * sigma + 0.5);
  std::vector<double> w(static_cast<size_t>(2 * r + 1));
  double total = 0;
  for (int64_t j = -r; j <= r; ++j) {
    const double x = static_cast<double>(j);
    w[static_cast<size_t>(j + r)] = std::exp(-0.5 / (sigma * sigma) * x * x);
    total += w[static_cast<size_t>(j + r)];
  }
  for (double& v : w) v /= total;
  for (int64_t i = 0; i < size; ++i) {
    for (int64_t j = 0; j <= 2 * r; ++j) {
      int64_t p = i + j - r;
      if (boundary == BlurBoundary::constant) {
        if (p < 0 || p >= size) continue;
      } else if (size == 1) {
        p = 0;
      } else {
        p = ((p % (2 * size)) + 2 * size) % (2 * size);
        if (p >= size) p = 2 * size - 1 - p;
      }
      b[static_cast<size_t>(i * size + p)] += w[static_cast<size_t>(j)];
    }
  }
  return torch::tensor(b, torch::kDouble).view({size, size});
}

/// Blur matrices for each σ in `sigmas`, stacked `[k, size, size]` in `options`' dtype/device.
inline torch::Tensor gaussian_blur_matrices(int64_t size, const std::vector<double>& sigmas,
                                            BlurBoundary boundary,
                                            const torch::TensorOptions& options) {
  std::vector<torch::Tensor> mats;
  mats.reserve(sigmas.size());
  for (const double s : sigmas) mats.push_back(gaussian_blur_matrix(size, s, boundary));
  return torch::stack(mats).to(options);
}

/// Applies per-σ blur matrices over the last two dimensions: `bh` `[k, H, H]`, `bw` `[k, W, W]`,
/// `images` `[N, ..., H, W]` → `[k, N, ..., H, W]`, row (i, n) = bh[i] · images[n] · bw[i]ᵀ.
inline torch::Tensor apply_blur(const torch::Tensor& bh, const torch::Tensor& bw,
                                const torch::Tensor& images) {
  std::vector<int64_t> shape(static_cast<size_t>(images.dim() + 1), 1);
  shape[0] = bh.size(0);
  std::vector<int64_t> h_shape = shape, w_shape = shape;
  h_shape[h_shape.size() - 2] = bh.size(1);
  h_shape.back() = bh.size(2);
  w_shape[w_shape.size() - 2] = bw.size(1);
  w_shape.back() = bw.size(2);
  return torch::matmul(torch::matmul(bh.view(h_shape), images.unsqueeze(0)),
                       bw.view(w_shape).transpose(-1, -2));
}

}  // namespace detail

/// Gaussian blur over the last two (spatial) dimensions, numerically scipy's
/// `scipy.ndimage.gaussian_filter(images, sigma=[0, …, 0, σ, σ], mode, truncate=4.0)`.
///
/// Computed as B_H · x · B_Wᵀ with the blur matrices of each dimension (the 1-D kernel placed by
/// the boundary's index rule, see `BlurBoundary`), so it runs batched on any device and is
/// differentiable in the images. σ = 0 returns a copy of the images, as PAIR-code/saliency's
/// `gaussian_blur`; 0 < σ < 0.125 gives a kernel of radius 0, i.e. the images themselves too.
///
/// Example:
/// @code
/// torch::Tensor soft = rar::gaussian_blur(images, 2.0, rar::BlurBoundary::reflect);
/// @endcode
/// @param images `[N, ..., H, W]` with at least 3 dimensions, float32 or float64, any device
/// @param sigma standard deviation σ ≥ 0 in pixels
/// @param boundary how the image is extended beyond its border (default zeros, as PAIR)
/// @return blurred images, same shape, dtype and device
inline torch::Tensor gaussian_blur(const torch::Tensor& images, double sigma,
                                   BlurBoundary boundary = BlurBoundary::constant) {
  const char* fn = "rar::gaussian_blur";
  detail::check_batch(fn, "images", images);
  TORCH_CHECK(images.dim() >= 3, fn,
              ": images must be [N, ..., H, W] with at least 3 dimensions, got shape ",
              images.sizes());
  TORCH_CHECK(std::isfinite(sigma) && sigma >= 0, fn, ": sigma must be finite and >= 0, got ",
              sigma);
  const auto bh =
      detail::gaussian_blur_matrices(images.size(-2), {sigma}, boundary, images.options());
  const auto bw =
      detail::gaussian_blur_matrices(images.size(-1), {sigma}, boundary, images.options());
  return detail::apply_blur(bh, bw, images)[0];
}

/// Options for `rar::blur_ig`. Defaults are PAIR-code/saliency's `BlurIG.GetMask`.
///
/// Example:
/// @code
/// auto opts = rar::BlurIGOptions().target(labels).max_sigma(20).steps(64);
/// torch::Tensor attr = rar::blur_ig(model, images, opts);
/// @endcode
struct BlurIGOptions {
  /// Class per sample, int64 `[N]` or 0-dim. Undefined: the model output must already be `[N]`.
  RAR_ARG(torch::Tensor, target);
  /// Largest blur σ_max > 0 (pixels), the path's start (PAIR: 50).
  RAR_ARG(double, max_sigma) = 50;
  /// Number of path points m ≥ 1 (PAIR: 100).
  RAR_ARG(int64_t, steps) = 100;
  /// Step h > 0 of the finite difference ∂blur/∂σ ≈ (blur(x, σ + h) − blur(x, σ)) / h (PAIR: 0.01).
  RAR_ARG(double, grad_step) = 0.01;
  /// PAIR's `sqrt`: σ_i = √(i·σ_max/m) instead of i·σ_max/m (the path then ends at √σ_max).
  RAR_ARG(bool, sqrt) = false;
  /// The blur's boundary rule (PAIR: zeros, scipy's mode 'constant').
  RAR_ARG(BlurBoundary, boundary) = BlurBoundary::constant;
  /// Rows of the N·m path batch evaluated per forward/backward. 0 (the default) = rar's batching
  /// rule (`rar/core/batching.hpp`). Any value gives the same attributions (to round-off).
  RAR_ARG(int64_t, internal_batch_size) = 0;
  /// Keep the graph so the attributions are differentiable w.r.t. the input and the model's
  /// parameters (double backward).
  RAR_ARG(bool, create_graph) = false;
  /// What is explained: a per-sample scalar `[N]` from (output, target).
  RAR_ARG(ScoreFunction, score) = score::logit;
};

namespace detail {

/// The path's σ_0 … σ_m of Blur IG (PAIR's list `sigmas`).
inline std::vector<double> blur_ig_sigmas(const BlurIGOptions& options) {
  const int64_t m = options.steps();
  std::vector<double> sigmas(static_cast<size_t>(m + 1));
  for (int64_t i = 0; i <= m; ++i) {
    const double s = static_cast<double>(i) * options.max_sigma() / static_cast<double>(m);
    sigmas[static_cast<size_t>(i)] = options.sqrt() ? std::sqrt(s) : s;
  }
  return sigmas;
}

}  // namespace detail

/// Blur IG of `score(model(x), target)`: Integrated Gradients along the path from the image
/// blurred with σ_max to the image itself.
///
/// BlurIG_j(x) = −Σ_{i=0}^{m−1} (σ_{i+1} − σ_i) · ∂F(x_i)/∂x_j · (blur(x, σ_i + h) − x_i)_j / h,
/// x_i = blur(x, σ_i), σ_i = i·σ_max/m (or √(i·σ_max/m) with `sqrt`), h = `grad_step`: a left
/// Riemann sum of ∫ ∂F/∂x · ∂x(σ)/∂σ dσ from σ_max down to 0, so Σ_j BlurIG_j ≈ F(x) −
/// F(blur(x, σ_max)). This is PAIR-code/saliency's `saliency/core/blur_ig.py` (`BlurIG.GetMask`)
/// term by term, including its finite difference in σ (so the first term vanishes when
/// h < 0.125, where scipy's kernel has radius 0). The blur is scipy.ndimage.gaussian_filter
/// (truncate 4) over the last two dimensions, with PAIR's zero boundary by default
/// (`boundary(reflect)` for scipy's reflect mode).
///
/// All N·m blurred images go through the model in one forward and one backward (or chunks of
/// it, the batching rule / `internal_batch_size`), laid out step-major like IG's path. With
/// `create_graph` the attributions are differentiable w.r.t. the input (the blur is linear in
/// it) and the parameters. Does not change the model's mode, flags or parameter gradients.
///
/// Example:
/// @code
/// torch::Tensor attr = rar::blur_ig(model, images, rar::BlurIGOptions().target(y).steps(50));
/// @endcode
/// @param model any model (module holder, module, or callable Tensor(const Tensor&))
/// @param input images `[N, ..., H, W]` (at least 3 dimensions, e.g. `[N, C, H, W]`), float32 or
///        float64, on any device
/// @param options target, max_sigma, steps, grad_step, sqrt, boundary, batching, create_graph,
///        score
/// @return attributions with the shape, dtype and device of `input`
template <class Model>
torch::Tensor blur_ig(Model&& model, const torch::Tensor& input,
                      const BlurIGOptions& options = {}) {
  detail::static_check_model<Model>();
  const char* fn = "rar::blur_ig";
  detail::check_input(fn, "input", input);
  TORCH_CHECK(input.dim() >= 3, fn,
              ": input must be images [N, ..., H, W] with at least 3 dimensions, got shape ",
              input.sizes());
  TORCH_CHECK(options.steps() >= 1, fn, ": steps must be >= 1, got ", options.steps());
  TORCH_CHECK(std::isfinite(options.max_sigma()) && options.max_sigma() > 0, fn,
              ": max_sigma must be finite and > 0, got ", options.max_sigma());
  TORCH_CHECK(std::isfinite(options.grad_step()) && options.grad_step() > 0, fn,
              ": grad_step must be finite and > 0, got ", options.grad_step());
  rar::detail::check_batching(fn, "internal_batch_size", options.internal_batch_size());
  rar::detail::check_callable(fn, "score", options.score());
  const torch::Tensor target =
      detail::expand_target(fn, options.target(), input.size(0), input.device());
  const bool create_graph = options.create_graph();
  torch::AutoGradMode grad_mode(true);

  const int64_t m = options.steps(), n = input.size(0);
  const std::vector<double> sigmas = detail::blur_ig_sigmas(options);
  const std::vector<double> at(sigmas.begin(), sigmas.end() - 1);
  std::vector<double> ahead(at), widths(at.size());
  for (size_t i = 0; i < at.size(); ++i) {
    ahead[i] += options.grad_step();
    widths[i] = sigmas[i + 1] - sigmas[i];
  }
  const auto opts = input.options();
  const int64_t h = input.size(-2), w = input.size(-1);
  const torch::Tensor x = create_graph ? input : input.detach();
  // [m, N, ...]: the path points and the finite differences of the blur in σ.
  const torch::Tensor points =
      detail::apply_blur(detail::gaussian_blur_matrices(h, at, options.boundary(), opts),
                         detail::gaussian_blur_matrices(w, at, options.boundary(), opts), x);
  const torch::Tensor shifted =
      detail::apply_blur(detail::gaussian_blur_matrices(h, ahead, options.boundary(), opts),
                         detail::gaussian_blur_matrices(w, ahead, options.boundary(), opts), x);
  const torch::Tensor weights =
      torch::tensor(widths, torch::kDouble).to(opts).view(detail::leading_shape(m, input.dim()));
  const torch::Tensor direction = (shifted - points) / options.grad_step() * weights;

  std::vector<int64_t> flat_shape(input.sizes().begin(), input.sizes().end());
  flat_shape[0] = m * n;
  const torch::Tensor path = points.reshape(flat_shape);
  const torch::Tensor path_target = target.defined() ? target.repeat({m}) : target;
  const int64_t rows = m * n;
  const int64_t row_bytes = input.numel() / n * static_cast<int64_t>(input.element_size());
  std::vector<torch::Tensor> grads;
  detail::for_each_row_chunk(
      rows, options.internal_batch_size(), input.device(), row_bytes,
      [&](int64_t start, int64_t stop) {
        const bool whole = start == 0 && stop == rows;
        const torch::Tensor chunk =
            detail::differentiable_leaf(whole ? path : path.slice(0, start, stop), create_graph);
        const torch::Tensor t =
            path_target.defined() ? path_target.slice(0, start, stop) : path_target;
        const torch::Tensor s = detail::in_user_terms(
            fn, model, input, [&] { return options.score()(rar::call_model(model, chunk), t); },
            [&] {
              return "a batch of " + std::to_string(stop - start) + " blurred images (" +
                     std::to_string(n) + " samples x " + std::to_string(m) + " steps, shape " +
                     c10::str(chunk.sizes()) + ")";
            });
        TORCH_CHECK(s.dim() == 1 && s.size(0) == stop - start, fn,
                    ": the score function must return one value per sample, shape [", stop - start,
                    "], got ", s.sizes());
        grads.push_back(torch::autograd::grad({s.sum()}, {chunk}, {}, /*retain_graph=*/create_graph,
                                              /*create_graph=*/create_graph)[0]);
      });
  const torch::Tensor g = (grads.size() == 1 ? grads[0] : torch::cat(grads)).view(points.sizes());
  return -(g * direction).sum(0);
}

}  // namespace rar
