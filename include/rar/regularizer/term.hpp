#pragma once
/// @file
/// Loss terms `(model, x, y) -> 0-dim loss` that compose with `+` and scalar `*`, and the
/// plain cross-entropy term.

#include <rar/core/model.hpp>
#include <rar/core/score.hpp>
#include <rar/detail/checks.hpp>

#include <torch/torch.h>

#include <cmath>
#include <type_traits>
#include <utility>

namespace rar {

/// How per-sample losses are combined into the batch loss.
///
/// Example: `auto summed = rar::cross_entropy(rar::Reduction::sum);`
enum class Reduction {
  mean,  ///< average over the batch (LibTorch's default)
  sum    ///< sum over the batch (the RAR paper's code)
};

/// A loss term: any callable `(model, x, y) -> torch::Tensor` (0-dim, differentiable in the
/// model's parameters), wrapped so that terms compose with `+` and scalar `*`.
///
/// Example:
/// @code
/// auto objective = rar::cross_entropy() + 1.0 * rar::ig_norm(rar::IGNormOptions().epsilon(0.1));
/// torch::Tensor loss = objective(model, x, y);
/// auto mine = rar::make_term([](auto& model, const torch::Tensor& x, const torch::Tensor& y) {
///   return 1e-4 * rar::call_model(model, x).pow(2).mean();  // any user term
/// });
/// auto total = objective + mine;
/// @endcode
template <class F>
class Term {
 public:
  /// Wraps `f`, a callable `(model, x, y) -> torch::Tensor`.
  /// @param f the loss function; `rar::make_term(f)` deduces `F`
  explicit Term(F f) : f_(std::move(f)) {}

  /// Evaluates the term on a batch `x` with labels `y`.
  ///
  /// Example: `torch::Tensor loss = objective(model, x, y); loss.backward();`
  /// @param model any model (module holder, module, or callable `Tensor(const Tensor&)`)
  /// @param x batch `[N, ...]`
  /// @param y int64 labels `[N]`
  /// @return the loss, 0-dim, differentiable in the model's parameters
  template <class Model>
  torch::Tensor operator()(Model&& model, const torch::Tensor& x, const torch::Tensor& y) const {
    detail::static_check_model<Model>();
    torch::Tensor loss = f_(model, x, y);
    // Never a NaN loss in silence: the inputs were checked finite on the way in, so a
    // non-finite loss comes from the model (e.g. parameters that diverged in an earlier step).
    if (loss.defined() && loss.numel() == 1 && loss.is_floating_point()) {
      const double value = loss.detach().item<double>();
      TORCH_CHECK(std::isfinite(value), "rar loss term: the loss is ", value,
                  " for finite inputs x of shape ", x.sizes(),
                  ": the model's output or its gradients are not finite (are its parameters "
                  "finite? a learning rate that diverged makes them NaN)");
    }
    return loss;
  }

 private:
  F f_;
};

/// Type trait: whether `T` is a `rar::Term` (what `+` and `*` compose).
///
/// Example: `static_assert(rar::is_term<decltype(rar::cross_entropy())>::value);`
template <class T>
struct is_term : std::false_type {};
/// `rar::is_term` is true for every `rar::Term<F>`.
template <class F>
struct is_term<Term<F>> : std::true_type {};

/// Makes any callable `(model, x, y) -> torch::Tensor` a composable term (a term stays itself).
///
/// Example:
/// @code
/// auto weight_decay = rar::make_term([](auto& model, const torch::Tensor&, const torch::Tensor&) {
///   torch::Tensor sum = torch::zeros({});
///   for (const auto& p : model->parameters()) sum = sum + p.pow(2).sum();
///   return 1e-4 * sum;
/// });
/// auto objective = rar::cross_entropy() + weight_decay;
/// @endcode
/// @param f a callable `(model, x, y) -> torch::Tensor` (0-dim loss), or a `rar::Term`
/// @return a `rar::Term` wrapping `f` (`f` itself when it already is one)
template <class F>
auto make_term(F&& f) {
  if constexpr (is_term<std::decay_t<F>>::value) {
    return std::decay_t<F>(std::forward<F>(f));
  } else {
    return Term<std::decay_t<F>>(std::forward<F>(f));
  }
}

/// The sum of two terms; either side may also be a plain callable of the term signature.
///
/// Example: `auto objective = rar::cross_entropy() + rar::ig_norm();`
/// @param a a term (or a callable `(model, x, y) -> torch::Tensor` when `b` is a term)
/// @param b a term (or such a callable when `a` is a term)
/// @return the term `(model, x, y) -> a(model, x, y) + b(model, x, y)`
template <class A, class B,
          class = std::enable_if_t<(is_term<std::decay_t<A>>::value ||
                                    is_term<std::decay_t<B>>::value) &&
                                   !std::is_arithmetic_v<std::decay_t<A>> &&
                                   !std::is_arithmetic_v<std::decay_t<B>>>>
auto operator+(A&& a, B&& b) {
  return make_term([ta = make_term(std::forward<A>(a)), tb = make_term(std::forward<B>(b))](
                       auto& model, const torch::Tensor& x, const torch::Tensor& y) {
    return ta(model, x, y) + tb(model, x, y);
  });
}

/// A term scaled by a constant: `0.5 * term`.
///
/// Example: `auto objective = rar::cross_entropy() + 0.5 * rar::ig_norm();`
/// @param scale the factor
/// @param term the term to scale
/// @return the term `(model, x, y) -> scale * term(model, x, y)`
template <class F>
auto operator*(double scale, const Term<F>& term) {
  return make_term([scale, term](auto& model, const torch::Tensor& x, const torch::Tensor& y) {
    return scale * term(model, x, y);
  });
}

/// A term scaled by a constant: `term * 0.5`.
///
/// Example: `auto objective = rar::cross_entropy() + rar::ig_norm() * 0.5;`
/// @param term the term to scale
/// @param scale the factor
/// @return the term `(model, x, y) -> scale * term(model, x, y)`
template <class F>
auto operator*(const Term<F>& term, double scale) {
  return scale * term;
}

namespace detail {

/// Validates a labelled batch for a loss term.
inline void check_labelled_batch(const char* fn, const torch::Tensor& x, const torch::Tensor& y) {
  check_input(fn, "x", x);
  TORCH_CHECK(y.defined() && y.scalar_type() == torch::kLong && y.dim() == 1 &&
                  y.size(0) == x.size(0),
              fn, ": y must be int64 labels of shape [", x.size(0), "], got ",
              y.defined() ? y.sizes() : torch::IntArrayRef{}, " ",
              y.defined() ? c10::toString(y.scalar_type()) : "undefined");
  TORCH_CHECK(y.device() == x.device(), fn, ": y must be on x's device ", x.device(), ", got ",
              y.device());
}

/// Mean or sum of per-sample values `[N]`.
inline torch::Tensor reduce(const torch::Tensor& per_sample, Reduction reduction) {
  return reduction == Reduction::mean ? per_sample.mean() : per_sample.sum();
}

}  // namespace detail

/// The cross-entropy loss ℓ(x, y) of the model's logits: the natural training objective.
///
/// Example:
/// @code
/// torch::Tensor loss = rar::cross_entropy()(model, x, y);
/// @endcode
/// @param reduction mean (default) or sum over the batch
/// @return a `rar::Term` `(model, x, y) -> loss`, 0-dim
inline auto cross_entropy(Reduction reduction = Reduction::mean) {
  return make_term([reduction](auto& model, const torch::Tensor& x, const torch::Tensor& y) {
    detail::check_labelled_batch("rar::cross_entropy", x, y);
    return detail::reduce(score::cross_entropy(rar::call_model(model, x), y), reduction);
  });
}

}  // namespace rar
