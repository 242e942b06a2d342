#pragma once
/// @file
/// `rar::Split`: a model written as tail(head(x)). Every function of the library sees the
/// composition; the robust-IG terms (`rar::ig_norm`, `rar::ig_sum_norm`, `rar::ig_sum`,
/// `rar/regularizer/layer_rar.hpp`) take IG at the layer h = head(x), and the layer explainers
/// (`rar::explain::grad_cam()`, ...) read the layer from it.

#include <rar/core/model.hpp>

#include <torch/torch.h>

#include <type_traits>
#include <utility>

namespace rar {

/// A model split at a hidden layer h: `head` maps the input to h, `tail` maps h to the logits.
///
/// As a model it is the composition: `rar::call_model(split, x)` is `tail(head(x))`, so every
/// term and function of the library accepts it (`rar::cross_entropy()`, `rar::adversarial`,
/// attacks, metrics see the whole network). The robust-IG terms `rar::ig_norm`,
/// `rar::ig_sum_norm` and `rar::ig_sum` read the split: called with a `Split` they apply the size
/// function to the layer attribution IG_h^{ℓ_y}(x, x′), taken along the straight path from
/// head(x) to head(x′) *in h-space* (as `rar::layer_integrated_gradients`), while x′ is still
/// searched in the input ball N(x, ε) ∩ [clip_min, clip_max]. With head = identity the terms are
/// exactly the input-space ones.
///
/// Lvalues are held by reference and rvalues are moved in, like `std::forward_as_tuple` (module
/// holders share their module either way, so no weights are copied): keep head and tail alive
/// while the `Split` is used. `Split{head, tail}` deduces the holding from its arguments.
///
/// Example:
/// @code
/// torch::nn::Sequential head(torch::nn::Linear(784, 128), torch::nn::ReLU());  // up to h
/// torch::nn::Sequential tail(torch::nn::Linear(128, 10));                      // the rest
/// rar::Split model{head, tail};           // shares head's and tail's modules
/// auto objective = rar::cross_entropy() + rar::ig_norm(rar::IGNormOptions().epsilon(0.1));
/// objective(model, x, y).backward();      // ℓ(x) + λ·max_{x′} ‖IG_h(x, x′)‖₁, h = 128 units
/// torch::Tensor logits = rar::call_model(model, x);  // tail(head(x))
/// @endcode
/// @tparam Head the model up to the layer (a reference type when an lvalue was given)
/// @tparam Tail the rest of the model (a reference type when an lvalue was given)
template <class Head, class Tail>
class Split {
  static_assert(is_model_v<std::remove_reference_t<Head>>,
                "rar::Split: head must be a model (a torch::nn module holder, a module with "
                "torch::Tensor forward(const torch::Tensor&), or a callable "
                "torch::Tensor(const torch::Tensor&)) mapping the input to the layer");
  static_assert(is_model_v<std::remove_reference_t<Tail>>,
                "rar::Split: tail must be a model (a torch::nn module holder, a module with "
                "torch::Tensor forward(const torch::Tensor&), or a callable "
                "torch::Tensor(const torch::Tensor&)) mapping the layer to the output [N, C]");

 public:
  /// Holds `head` and `tail` (by reference for lvalues, moved in for rvalues).
  ///
  /// Example: `rar::Split model{head, tail};`
  /// @param head the model up to the layer: `[N, ...]` input to the layer `[N, ...]`
  /// @param tail the rest: the layer `[N, ...]` to the output `[N, C]`
  Split(Head head, Tail tail) : head_(std::forward<Head>(head)), tail_(std::forward<Tail>(tail)) {}

  /// The model up to the layer.
  ///
  /// Example: `torch::Tensor h = rar::call_model(model.head(), x);`
  /// @return the head, as held
  std::remove_reference_t<Head>& head() noexcept { return head_; }
  /// The model up to the layer (const access).
  ///
  /// Example: `const auto& head = std::as_const(model).head();`
  /// @return the head, as held
  const std::remove_reference_t<Head>& head() const noexcept { return head_; }

  /// The rest of the model, from the layer to the output.
  ///
  /// Example: `torch::Tensor logits = rar::call_model(model.tail(), h);`
  /// @return the tail, as held
  std::remove_reference_t<Tail>& tail() noexcept { return tail_; }
  /// The rest of the model (const access).
  ///
  /// Example: `const auto& tail = std::as_const(model).tail();`
  /// @return the tail, as held
  const std::remove_reference_t<Tail>& tail() const noexcept { return tail_; }

  /// The whole model: tail(head(x)).
  ///
  /// Example: `torch::Tensor logits = model.forward(x);  // = rar::call_model(model, x)`
  /// @param x the input batch `[N, ...]`
  /// @return the output `[N, C]`
  torch::Tensor forward(const torch::Tensor& x) { return call_model(tail_, call_model(head_, x)); }
  /// The whole model: tail(head(x)) (for a const `Split`).
  ///
  /// Example: `torch::Tensor logits = std::as_const(model).forward(x);`
  /// @param x the input batch `[N, ...]`
  /// @return the output `[N, C]`
  torch::Tensor forward(const torch::Tensor& x) const {
    return call_model(tail_, call_model(head_, x));
  }

  /// The whole model: tail(head(x)), so a `Split` is also a plain callable.
  ///
  /// Example: `torch::Tensor logits = model(x);`
  /// @param x the input batch `[N, ...]`
  /// @return the output `[N, C]`
  torch::Tensor operator()(const torch::Tensor& x) { return forward(x); }
  /// The whole model: tail(head(x)) (for a const `Split`).
  ///
  /// Example: `torch::Tensor logits = std::as_const(model)(x);`
  /// @param x the input batch `[N, ...]`
  /// @return the output `[N, C]`
  torch::Tensor operator()(const torch::Tensor& x) const { return forward(x); }

 private:
  Head head_;
  Tail tail_;
};

/// Deduces `rar::Split`'s holding: lvalues by reference, rvalues by value.
///
/// Example: `rar::Split model{head, [](const torch::Tensor& h) { return h.flatten(1); }};`
template <class Head, class Tail>
Split(Head&&, Tail&&) -> Split<Head, Tail>;

/// Type trait: whether `T` (cv- and reference-qualified or not) is a `rar::Split`.
///
/// Example: `static_assert(rar::is_split_v<decltype(rar::Split{head, tail})>);`
template <class T>
struct is_split : std::false_type {};
/// `rar::is_split` is true for every `rar::Split<Head, Tail>`.
template <class Head, class Tail>
struct is_split<Split<Head, Tail>> : std::true_type {};

/// `rar::is_split<std::decay_t<T>>::value`.
///
/// Example: `static_assert(!rar::is_split_v<torch::nn::Sequential>);`
template <class T>
inline constexpr bool is_split_v = is_split<std::decay_t<T>>::value;

}  // namespace rar
