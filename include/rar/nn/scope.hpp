#pragma once
/// @file
/// The scopes that switch `rar::nn` activations: a thread-local stack of RAII guards set by the
/// library's methods (DeepLIFT's rescale rule, the softplus surrogate, guided backprop,
/// deconvolution). Outside every scope the activations compute exactly what `torch::nn` does.

#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace rar {
namespace nn {

/// How `rar::nn` activations propagate gradients inside a scope.
///
/// Example: `rar::nn::Scope scope(rar::nn::Rule::guided_backprop);`
enum class Rule {
  plain,            ///< the activation's own derivative (autograd as usual)
  rescale,          ///< DeepLIFT's rescale rule Δy/Δz against the reference activations
  guided_backprop,  ///< ReLU: relu(∂L/∂z), i.e. only positive gradients through active units
  deconvolution     ///< ReLU: relu(∂L/∂y), ignoring the forward mask
};

namespace detail {

/// The reference activations of one DeepLIFT pass, recorded call by call on the reference and
/// replayed, in the same order, on the input.
struct DeepLiftTape {
  /// What a recorded call was (a replayed call must be the same).
  enum class Op { activation, max_pool, product, softmax, layer_norm };
  /// One recorded call: its input z′ and output y′ on the reference.
  struct Entry {
    torch::Tensor input, output;
    torch::Tensor indices;  ///< max pooling: the reference's pooling indices (else undefined)
    torch::Tensor other;    ///< products: the reference's second operand (else undefined)
    Op op = Op::activation;
  };
  bool recording = true;       ///< true while the reference runs, false while the input runs
  std::vector<Entry> entries;  ///< the reference's activation calls, in call order
  size_t next = 0;             ///< the next entry to replay
  double eps = 1e-10;          ///< below |z − z′| < eps the plain derivative is used
};

/// What the activations of this thread do now.
struct ScopeState {
  double beta = 0.0;             ///< > 0: ReLU-like activations become softplus_β (surrogate)
  Rule rule = Rule::plain;       ///< the gradient rule
  DeepLiftTape* tape = nullptr;  ///< the rescale rule's reference activations
  int64_t calls = 0;             ///< rar::nn activation calls seen in this scope
  int64_t relu_calls = 0;        ///< of which ReLU (the only ones guided backprop changes)
  int64_t kinked_calls = 0;      ///< of which ReLU or LeakyReLU (the ones a surrogate smooths)
};

/// The innermost scope of this thread (null outside every scope).
inline ScopeState*& current_scope() noexcept {
  thread_local ScopeState* state = nullptr;
  return state;
}

}  // namespace detail

/// An RAII guard that switches the `rar::nn` activations of the calling thread until it is
/// destroyed, also when an exception leaves the block.
///
/// Scopes nest: a new scope starts from the enclosing one's settings (so a softplus surrogate
/// explained with DeepLIFT uses both the softplus and the rescale rule) and restores it on
/// exit. They are thread-local: a scope on one thread never changes the activations another
/// thread runs, so several threads may explain with the same model at once. Library methods
/// (`rar::deeplift`, `rar::guided_backprop`, `rar::smooth_surrogate`, ...) open scopes
/// themselves; users rarely need one.
///
/// Example:
/// @code
/// {
///   rar::nn::Scope scope;
///   scope.beta(10.0);              // every rar::nn::ReLU is softplus_10 in this block
///   torch::Tensor smooth_logits = model->forward(x);
/// }                                // plain ReLUs again
/// @endcode
class Scope {
 public:
  /// Opens a scope with the enclosing scope's settings (plain ones outside every scope) and,
  /// when given, the gradient rule `rule`.
  Scope() : previous_(detail::current_scope()) {
    if (previous_ != nullptr) {
      state_.beta = previous_->beta;
      state_.rule = previous_->rule;
      state_.tape = previous_->tape;
    }
    detail::current_scope() = &state_;
  }
  /// Opens a scope with the gradient rule `rule` (other settings from the enclosing scope).
  /// @param rule how activations propagate gradients in this scope
  explicit Scope(Rule rule) : Scope() { state_.rule = rule; }
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;
  /// Restores the enclosing scope, which also counts the calls made in this one.
  ~Scope() {
    if (previous_ != nullptr) {
      previous_->calls += state_.calls;
      previous_->relu_calls += state_.relu_calls;
      previous_->kinked_calls += state_.kinked_calls;
    }
    detail::current_scope() = previous_;
  }

  /// Smooths ReLU-like activations to softplus_β (β > 0) in this scope; 0 restores them.
  /// @param beta the softplus sharpness
  /// @return this scope
  Scope& beta(double beta) {
    TORCH_CHECK(std::isfinite(beta) && beta >= 0, "rar::nn::Scope: beta must be >= 0, got ", beta);
    state_.beta = beta;
    return *this;
  }
  /// The state the activations read (for the library's methods).
  /// @return this scope's mutable state
  detail::ScopeState& state() noexcept { return state_; }
  /// Number of `rar::nn` activation calls made inside this scope so far.
  /// @return the count (ReLU, LeakyReLU, ELU, Sigmoid, Tanh and Softplus calls)
  int64_t calls() const noexcept { return state_.calls; }

 private:
  detail::ScopeState state_;
  detail::ScopeState* previous_;
};

/// Whether the calling thread is inside a `rar::nn::Scope`.
///
/// Example: `assert(!rar::nn::in_scope());  // activations compute what torch::nn computes`
/// @return true inside a scope
inline bool in_scope() noexcept { return detail::current_scope() != nullptr; }

}  // namespace nn
}  // namespace rar
