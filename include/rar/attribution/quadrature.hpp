#pragma once
/// @file
/// Quadrature rules on [0, 1] for the path integral of Integrated Gradients.

#include <c10/util/Exception.h>

#include <cmath>
#include <cstdint>
#include <vector>

namespace rar {

/// How the path integral ∫₀¹ ∂F(x' + α(x − x'))/∂x dα is approximated with `steps` points.
///
/// Node placement follows Captum 0.7 (`riemann_left`, `riemann_right`, `riemann_middle`,
/// `riemann_trapezoid`, `gausslegendre`). One deliberate difference: our trapezoid weights are
/// 1/(2(m−1)), 1/(m−1), …, 1/(2(m−1)) and sum to 1, whereas Captum's are 1/(2m), 1/m, …, 1/(2m)
/// and sum to (m−1)/m, so Captum's trapezoid attributions are ours times (m−1)/m.
///
/// Example: `rar::IGOptions().method(rar::Quadrature::riemann_right).steps(50)`.
enum class Quadrature {
  riemann_left,       ///< α_k = (k−1)/m, w_k = 1/m, k = 1..m
  riemann_right,      ///< α_k = k/m, w_k = 1/m (the RAR paper's rule)
  riemann_middle,     ///< α_k = (k−½)/m, w_k = 1/m
  riemann_trapezoid,  ///< α_k = (k−1)/(m−1), end weights halved; needs m ≥ 2
  gauss_legendre      ///< Gauss-Legendre nodes and weights mapped to [0, 1]; exact for degree 2m−1
};

/// Nodes α_k in [0, 1] and weights w_k of a quadrature rule, in increasing α.
///
/// Example:
/// @code
/// rar::QuadratureRule rule = rar::quadrature(rar::Quadrature::riemann_middle, 4);
/// // rule.alphas == {0.125, 0.375, 0.625, 0.875}, rule.weights == {0.25, 0.25, 0.25, 0.25}
/// @endcode
struct QuadratureRule {
  std::vector<double> alphas;   ///< the points on the path, α_k
  std::vector<double> weights;  ///< the weights, w_k (they sum to 1)
};

namespace detail {

/// torch.linspace's own formula (symmetric from both ends), so that nodes match Captum bit for bit.
inline std::vector<double> linspace(double start, double end, int64_t n) {
  std::vector<double> v(static_cast<size_t>(n));
  if (n == 1) {
    v[0] = start;
    return v;
  }
  const double step = (end - start) / static_cast<double>(n - 1);
  const int64_t halfway = n / 2;
  for (int64_t i = 0; i < n; ++i)
    v[static_cast<size_t>(i)] = i < halfway ? start + step * static_cast<double>(i)
                                            : end - step * static_cast<double>(n - i - 1);
  return v;
}

/// Gauss-Legendre nodes and weights on [−1, 1] (Newton on the Legendre recurrence), ascending.
inline void gauss_legendre_nodes(int64_t n, std::vector<double>& x, std::vector<double>& w) {
  const double pi = std::acos(-1.0);
  x.assign(static_cast<size_t>(n), 0.0);
  w.assign(static_cast<size_t>(n), 0.0);
  const int64_t half = (n + 1) / 2;
  for (int64_t i = 0; i < half; ++i) {
    double z = std::cos(pi * (static_cast<double>(i) + 0.75) / (static_cast<double>(n) + 0.5));
    double dp = 0.0;
    for (int iter = 0; iter < 100; ++iter) {
      double p0 = 1.0, p1 = 0.0;
      for (int64_t j = 1; j <= n; ++j) {  // P_j(z) by the three-term recurrence
        const double p2 = p1;
        p1 = p0;
        p0 = ((2.0 * static_cast<double>(j) - 1.0) * z * p1 - (static_cast<double>(j) - 1.0) * p2) /
             static_cast<double>(j);
      }
      dp = static_cast<double>(n) * (z * p0 - p1) / (z * z - 1.0);
      const double dz = p0 / dp;
      z -= dz;
      if (std::abs(dz) < 1e-16) break;
    }
    // Recompute the derivative at the converged node for the weight.
    double p0 = 1.0, p1 = 0.0;
    for (int64_t j = 1; j <= n; ++j) {
      const double p2 = p1;
      p1 = p0;
      p0 = ((2.0 * static_cast<double>(j) - 1.0) * z * p1 - (static_cast<double>(j) - 1.0) * p2) /
           static_cast<double>(j);
    }
    dp = static_cast<double>(n) * (z * p0 - p1) / (z * z - 1.0);
    const double weight = 2.0 / ((1.0 - z * z) * dp * dp);
    x[static_cast<size_t>(i)] = -z;  // ascending order
    x[static_cast<size_t>(n - 1 - i)] = z;
    w[static_cast<size_t>(i)] = weight;
    w[static_cast<size_t>(n - 1 - i)] = weight;
  }
  if (n % 2 == 1) x[static_cast<size_t>(n / 2)] = 0.0;
}

}  // namespace detail

namespace detail {

/// Right-Riemann points k = stride, 2·stride, .. ≤ m of the m-point path, each weighted
/// stride/m: the official RAR code's `IG_approx` (stride = 1 gives the full m-point rule), used
/// by the inner maximization of the RAR terms.
inline QuadratureRule strided_right_riemann(int64_t steps, int64_t stride) {
  QuadratureRule rule;
  const double m = static_cast<double>(steps);
  for (int64_t k = stride; k <= steps; k += stride) {
    rule.alphas.push_back(static_cast<double>(k) / m);
    rule.weights.push_back(static_cast<double>(stride) / m);
  }
  return rule;
}

}  // namespace detail

/// Returns the nodes and weights of `method` with `steps` points on [0, 1].
///
/// Example:
/// @code
/// auto rule = rar::quadrature(rar::Quadrature::gauss_legendre, 8);  // rule.alphas, rule.weights
/// @endcode
/// @param method the quadrature rule
/// @param steps the number of points m (≥ 1; ≥ 2 for the trapezoid rule)
/// @return `steps` nodes in increasing order and their weights (summing to 1)
inline QuadratureRule quadrature(Quadrature method, int64_t steps) {
  TORCH_CHECK(steps >= 1, "rar::quadrature: steps must be >= 1, got ", steps);
  const double m = static_cast<double>(steps);
  QuadratureRule rule;
  switch (method) {
    case Quadrature::riemann_left:
      rule.alphas = detail::linspace(0.0, 1.0 - 1.0 / m, steps);
      rule.weights.assign(static_cast<size_t>(steps), 1.0 / m);
      break;
    case Quadrature::riemann_right:
      rule.alphas = detail::linspace(1.0 / m, 1.0, steps);
      rule.weights.assign(static_cast<size_t>(steps), 1.0 / m);
      break;
    case Quadrature::riemann_middle:
      rule.alphas = detail::linspace(1.0 / (2.0 * m), 1.0 - 1.0 / (2.0 * m), steps);
      rule.weights.assign(static_cast<size_t>(steps), 1.0 / m);
      break;
    case Quadrature::riemann_trapezoid:
      TORCH_CHECK(steps >= 2, "rar::quadrature: the trapezoid rule needs steps >= 2, got ", steps);
      rule.alphas = detail::linspace(0.0, 1.0, steps);
      rule.weights.assign(static_cast<size_t>(steps), 1.0 / (m - 1.0));
      rule.weights.front() /= 2.0;
      rule.weights.back() /= 2.0;
      break;
    case Quadrature::gauss_legendre: {
      std::vector<double> x, w;
      detail::gauss_legendre_nodes(steps, x, w);
      rule.alphas.resize(x.size());
      rule.weights.resize(w.size());
      for (size_t i = 0; i < x.size(); ++i) {
        rule.alphas[i] = 0.5 * (x[i] + 1.0);
        rule.weights[i] = 0.5 * w[i];
      }
      break;
    }
    default:
      TORCH_CHECK(false, "rar::quadrature: unknown method ", static_cast<int>(method));
  }
  return rule;
}

}  // namespace rar
