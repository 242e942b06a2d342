#pragma once
/// @file
/// Locality-sensitive robustness of attribution maps: LENS-recall and LENS-precision of the
/// top-k features, and the diverse top-k (top-k-div) selection (Kamath, Mittal, Deshpande,
/// Balasubramanian, "Rethinking Robustness of Model Attributions", AAAI 2024).
///
/// Top-k intersection counts a feature of the attacked map's top-k as lost even when it moved
/// by one pixel. LENS counts it as kept when it lies within a w-neighbourhood (Chebyshev
/// distance ≤ w on the image grid) of the original top-k; top-k-div picks the k largest
/// features greedily with no two in each other's w-neighbourhood, so that one bright blob
/// cannot fill the whole top-k.

#include <rar/detail/arg.hpp>

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <vector>

namespace rar {

/// Options for `rar::lens`.
///
/// Example: `rar::LensOptions().k(100).window(1).diverse(true)`.
struct LensOptions {
  /// Number of top features per map, 1 ≤ k ≤ H·W.
  RAR_ARG(int64_t, k) = 100;
  /// Neighbourhood radius w in pixels (Chebyshev): 1 is the 3 × 3 window of the LENS code.
  RAR_ARG(int64_t, window) = 1;
  /// Select each map's features by top-k-div (greedy, no two within w of each other) instead
  /// of the plain top-k.
  RAR_ARG(bool, diverse) = false;
};

/// What `rar::lens` measures per sample (float64 `[N]` on the CPU, each in [0, 1]).
struct LensResult {
  /// |S_a ∩ S_b| / k: top-k intersection of the two selections (with `diverse`, the top-k-div
  /// intersection).
  torch::Tensor intersection;
  /// |N_w(S_a) ∩ S_b| / k: the share of the second map's selection that lies within w of the
  /// first's (the LENS code's "LENS-recall").
  torch::Tensor recall;
  /// |S_a ∩ N_w(S_b)| / k: the share of the first map's selection that lies within w of the
  /// second's ("LENS-prec").
  torch::Tensor precision;
};

namespace detail {

/// The features a map selects: its k largest (ties: the lower index first), or, with
/// `diverse`, greedily the largest one not within `window` of an earlier pick, until k are
/// picked or none is left. Writes 1 at the picked flat indices of `picked` (size h·w).
inline void lens_select(const double* x, int64_t h, int64_t w, int64_t k, int64_t window,
                        bool diverse, std::vector<int64_t>& order, std::vector<unsigned char>& blocked,
                        std::vector<unsigned char>& picked) {
  const int64_t d = h * w;
  order.resize(static_cast<size_t>(d));
  std::iota(order.begin(), order.end(), int64_t{0});
  const auto before = [x](int64_t i, int64_t j) { return x[i] > x[j] || (x[i] == x[j] && i < j); };
  picked.assign(static_cast<size_t>(d), 0);
  if (!diverse) {
    std::nth_element(order.begin(), order.begin() + (k - 1), order.end(), before);
    for (int64_t i = 0; i < k; ++i) picked[static_cast<size_t>(order[static_cast<size_t>(i)])] = 1;
    return;
  }
  std::sort(order.begin(), order.end(), before);
  blocked.assign(static_cast<size_t>(d), 0);
  int64_t count = 0;
  for (const int64_t i : order) {
    if (count == k) break;
    if (blocked[static_cast<size_t>(i)]) continue;
    picked[static_cast<size_t>(i)] = 1;
    ++count;
    const int64_t r = i / w, c = i % w;
    for (int64_t rr = std::max<int64_t>(0, r - window); rr <= std::min(h - 1, r + window); ++rr)
      for (int64_t cc = std::max<int64_t>(0, c - window); cc <= std::min(w - 1, c + window); ++cc)
        blocked[static_cast<size_t>(rr * w + cc)] = 1;
  }
}

/// The w-neighbourhood N_w(S) of a selection: every pixel within Chebyshev distance `window`
/// of a picked one.
inline void lens_dilate(const std::vector<unsigned char>& picked, int64_t h, int64_t w,
                        int64_t window, std::vector<unsigned char>& near) {
  near.assign(picked.size(), 0);
  for (int64_t r = 0; r < h; ++r)
    for (int64_t c = 0; c < w; ++c) {
      if (!picked[static_cast<size_t>(r * w + c)]) continue;
      for (int64_t rr = std::max<int64_t>(0, r - window); rr <= std::min(h - 1, r + window); ++rr)
        for (int64_t cc = std::max<int64_t>(0, c - window); cc <= std::min(w - 1, c + window); ++cc)
          near[static_cast<size_t>(rr * w + cc)] = 1;
    }
}

}  // namespace detail

/// LENS: the top-k intersection of two batches of 2-d maps, and its locality-sensitive forms
/// (Kamath et al., AAAI 2024). With S_a, S_b the features each map selects (its top-k, or with
/// `diverse` its top-k-div) and N_w(S) every pixel within Chebyshev distance w of S:
///
///     intersection = |S_a ∩ S_b| / k,  recall = |N_w(S_a) ∩ S_b| / k,  precision = |S_a ∩ N_w(S_b)| / k
///
/// With w = 0 all three are the top-k intersection. Pass saliency maps (`rar::attribution_map`),
/// the original first and the attacked second, as `rar::topk_intersection` takes them.
///
/// Differences from the LENS code (ksandeshk/LENS, MNIST evaluation), which computes the same
/// quantities on flat indices: there the 3 × 3 window of a pixel in the first or last column
/// wraps into the neighbouring row and pixel 0 is always dropped, and top-k-div considers only
/// the 600 largest features; rar uses the image grid and every feature. The denominator is k in
/// both, also when top-k-div runs out of features.
///
/// Example:
/// @code
/// auto m0 = rar::attribution_map(ig_clean), m1 = rar::attribution_map(ig_attacked);  // [N, H, W]
/// rar::LensResult r = rar::lens(m0, m1, rar::LensOptions().k(100).window(1));
/// double lens_recall = r.recall.mean().item<double>();
/// @endcode
/// @param a maps `[N, H, W]` (or `[N, 1, H, W]`), float32 or float64, any device
/// @param b maps of the same shape
/// @param options k, window, diverse
/// @return intersection, recall and precision, float64 `[N]` on the CPU
inline LensResult lens(const torch::Tensor& a, const torch::Tensor& b,
                       const LensOptions& options = {}) {
  const char* fn = "rar::lens";
  TORCH_CHECK(a.defined() && b.defined(), fn, ": both maps must be defined tensors");
  TORCH_CHECK(a.sizes() == b.sizes(), fn, ": the maps must have the same shape, got ", a.sizes(),
              " and ", b.sizes());
  TORCH_CHECK((a.dim() == 3 || (a.dim() == 4 && a.size(1) == 1)) && a.size(0) >= 1, fn,
              ": maps must be [N, H, W] or [N, 1, H, W] (sum channels with rar::attribution_map "
              "first), got shape ", a.sizes());
  TORCH_CHECK(a.is_floating_point() && b.is_floating_point(), fn,
              ": maps must be floating point, got ", a.scalar_type(), " and ", b.scalar_type());
  const int64_t n = a.size(0), h = a.size(-2), w = a.size(-1);
  TORCH_CHECK(options.k() >= 1 && options.k() <= h * w, fn, ": k must be in [1, ", h * w,
              "] (the pixels per map), got ", options.k());
  TORCH_CHECK(options.window() >= 0, fn, ": window must be >= 0, got ", options.window());
  const torch::Tensor x = a.detach().to(torch::kCPU, torch::kDouble).contiguous();
  const torch::Tensor y = b.detach().to(torch::kCPU, torch::kDouble).contiguous();
  LensResult r;
  r.intersection = torch::empty({n}, torch::kDouble);
  r.recall = torch::empty({n}, torch::kDouble);
  r.precision = torch::empty({n}, torch::kDouble);
  const double* px = x.data_ptr<double>();
  const double* py = y.data_ptr<double>();
  double* out_i = r.intersection.data_ptr<double>();
  double* out_r = r.recall.data_ptr<double>();
  double* out_p = r.precision.data_ptr<double>();
  const int64_t d = h * w;
  const auto k = static_cast<double>(options.k());
  at::parallel_for(0, n, 1, [&](int64_t begin, int64_t end) {
    std::vector<int64_t> order;
    std::vector<unsigned char> blocked, sa, sb, na, nb;
    for (int64_t s = begin; s < end; ++s) {
      const double* xs = px + s * d;
      const double* ys = py + s * d;
      if (std::any_of(xs, xs + d, [](double v) { return std::isnan(v); }) ||
          std::any_of(ys, ys + d, [](double v) { return std::isnan(v); })) {
        out_i[s] = out_r[s] = out_p[s] = std::numeric_limits<double>::quiet_NaN();
        continue;
      }
      detail::lens_select(xs, h, w, options.k(), options.window(), options.diverse(), order,
                          blocked, sa);
      detail::lens_select(ys, h, w, options.k(), options.window(), options.diverse(), order,
                          blocked, sb);
      detail::lens_dilate(sa, h, w, options.window(), na);
      detail::lens_dilate(sb, h, w, options.window(), nb);
      int64_t both = 0, near_a = 0, near_b = 0;
      for (int64_t i = 0; i < d; ++i) {
        const auto u = static_cast<size_t>(i);
        both += sa[u] && sb[u];
        near_a += na[u] && sb[u];
        near_b += sa[u] && nb[u];
      }
      out_i[s] = static_cast<double>(both) / k;
      out_r[s] = static_cast<double>(near_a) / k;
      out_p[s] = static_cast<double>(near_b) / k;
    }
  });
  return r;
}

}  // namespace rar
