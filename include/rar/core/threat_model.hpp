#pragma once
/// @file
/// The threat model shared by PGD, the attribution attacks, the RAR inner maximization,
/// input-gradient regularization and max-sensitivity, defined once:
///
/// - the *ball* (`rar::BallOptions`: epsilon, norm, clip_min, clip_max), the set
///   N(x, ε) ∩ [clip_min, clip_max]^D, its projection and its random points;
/// - the *ascent* (`rar::AscentOptions`: steps, step_size, random_start, seed), the projected
///   ascent loop x′ ← Π(x′ + step(∇)) with a per-iterate callback (`rar::AscentCallback`), and
///   what an inner maximization found (`rar::InnerMaxDiagnostics`).
///
/// Each block is validated by one function (`rar::detail::check_ball`,
/// `rar::detail::check_ascent`) that names the calling function, the field and the value.

#include <rar/core/random.hpp>
#include <rar/detail/arg.hpp>

#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

namespace rar {

/// The norm of the perturbation ball N(x, ε).
///
/// Example: `rar::pgd_attack(model, x, y, rar::PGDOptions().norm(rar::Norm::l2).epsilon(1.5))`.
enum class Norm {
  linf,  ///< ‖x′ − x‖∞ ≤ ε; steps are sign-gradient steps
  l2     ///< ‖x′ − x‖₂ ≤ ε per sample; steps are normalized-gradient steps
};

/// The ball of a threat model: N(x, ε) in the L∞ or L2 norm, intersected with the valid input
/// range [clip_min, clip_max]. Held by every options struct with a perturbation set
/// (`PGDOptions`, `AttributionAttackOptions`, `IGNormOptions`, `IGSumNormOptions`,
/// `InputGradientOptions`, `MaxSensitivityOptions`), which also keep flat setters for its fields.
///
/// Example:
/// @code
/// auto ball = rar::BallOptions().epsilon(8.0 / 255).norm(rar::Norm::linf);
/// auto pgd = rar::PGDOptions().ball(ball);          // the same ball for PGD ...
/// auto reg = rar::IGNormOptions().ball(ball);       // ... and for IG-NORM's inner maximization
/// torch::Tensor inside = rar::project_to_ball(x + 0.1, x, ball);
/// @endcode
struct BallOptions {
  /// Radius ε of the ball (finite, ≥ 0), in input units.
  RAR_ARG(double, epsilon) = 0.3;
  /// The norm: L∞ (sign steps) or L2 per sample (normalized-gradient steps).
  RAR_ARG(Norm, norm) = Norm::linf;
  /// Lower end of the valid input range (may be −∞).
  RAR_ARG(double, clip_min) = 0.0;
  /// Upper end of the valid input range (≥ clip_min; may be +∞).
  RAR_ARG(double, clip_max) = 1.0;
};

/// The projected ascent over a ball: how many steps, how long, and where it starts. Held by
/// `PGDOptions`, `AttributionAttackOptions`, `IGNormOptions` and `IGSumNormOptions`, which keep
/// their own flat names for its fields (`steps`, `iterations`, `attack_steps`, ...).
///
/// Example:
/// @code
/// auto ascent = rar::AscentOptions().steps(20).step_size(0.01).seed(7);
/// auto pgd = rar::PGDOptions().ascent(ascent);  // pgd.steps() == 20
/// @endcode
struct AscentOptions {
  /// Number of steps (≥ 0; 0 returns the start point).
  RAR_ARG(int64_t, steps) = 40;
  /// Length α of each step (finite, ≥ 0): α·sign(∇) for L∞, α·∇/‖∇‖₂ for L2.
  RAR_ARG(double, step_size) = 0.01;
  /// Start from a uniformly random point of the ball (drawn from the stream of `seed`) instead of
  /// the input itself.
  RAR_ARG(bool, random_start) = true;
  /// Seed of the random draws (see `rar/core/random.hpp` for the contract): the same seed gives
  /// the same start on every device.
  RAR_ARG(uint64_t, seed) = 0;
};

/// A per-iterate callback of the projected ascent (ensmallen-style): called as
/// `callback(iteration, iterate, objective)` for every iterate x′_t, t = 0 (the start) …
/// steps (the result).
///
/// - `iteration`: t; `iterate`: x′_t `[N, ...]`, detached (do not modify it in place);
/// - `objective`: the per-sample objective `[N]` the ascent climbs at x′_t (detached), when the
///   step computed it on the way; undefined when it is not known — always at the last iterate
///   t = steps, and for steps without an objective (e.g. random-sign steps).
///
/// The callable returns `void`, or `bool`: `true` stops the ascent, which then returns x′_t.
/// Callbacks run on the thread that runs the ascent; one shared between threads must be
/// thread-safe itself.
///
/// Example:
/// @code
/// std::vector<double> trace;
/// auto opts = rar::PGDOptions().callback(
///     [&](int64_t t, const torch::Tensor& x, const torch::Tensor& objective) {
///       if (objective.defined()) trace.push_back(objective.mean().item<double>());
///       return t >= 5 && trace.back() > 2.0;  // stop once the mean loss exceeds 2
///     });
/// @endcode
class AscentCallback {
 public:
  /// The signature every callback is called with.
  using Signature = bool(int64_t iteration, const torch::Tensor& iterate,
                         const torch::Tensor& objective);

  /// No callback (`static_cast<bool>(callback)` is false).
  AscentCallback() = default;

  /// Wraps `f`, a callable `(int64_t, const torch::Tensor&, const torch::Tensor&)` returning
  /// `void` or something convertible to `bool` (true = stop).
  /// @param f the callback
  template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, AscentCallback>>>
  AscentCallback(F f) {  // NOLINT: implicit, so a lambda can be passed where a callback is expected
    static_assert(std::is_invocable_v<F&, int64_t, const torch::Tensor&, const torch::Tensor&>,
                  "rar::AscentCallback: a callback must be callable as "
                  "(int64_t iteration, const torch::Tensor& iterate, const torch::Tensor& "
                  "objective), returning void or bool (true stops the ascent)");
    using R = std::invoke_result_t<F&, int64_t, const torch::Tensor&, const torch::Tensor&>;
    if constexpr (std::is_void_v<R>) {
      f_ = [f = std::move(f)](int64_t t, const torch::Tensor& x, const torch::Tensor& v) mutable {
        f(t, x, v);
        return false;
      };
    } else {
      static_assert(std::is_convertible_v<R, bool>,
                    "rar::AscentCallback: a callback must return void or bool");
      f_ = [f = std::move(f)](int64_t t, const torch::Tensor& x, const torch::Tensor& v) mutable {
        return static_cast<bool>(f(t, x, v));
      };
    }
  }

  /// Whether a callable is held.
  explicit operator bool() const noexcept { return static_cast<bool>(f_); }

  /// Calls the callback (false without one).
  /// @param iteration t, from 0 (the start) to steps
  /// @param iterate x′_t, detached
  /// @param objective the per-sample objective at x′_t, or undefined
  /// @return true to stop the ascent
  bool operator()(int64_t iteration, const torch::Tensor& iterate,
                  const torch::Tensor& objective) const {
    return f_ ? f_(iteration, iterate, objective) : false;
  }

 private:
  std::function<Signature> f_;
};

/// What an ascent direction function returns: the direction to step along (e.g. ∇ of the
/// summed objective, x's shape) and, when known, the per-sample objective `[N]` at the iterate
/// (reported to the callback).
///
/// Example:
/// @code
/// auto direction = [&](const torch::Tensor& x_adv) {
///   torch::Tensor leaf = x_adv.detach().requires_grad_(true);
///   torch::Tensor loss = rar::score::cross_entropy(rar::call_model(model, leaf), y);
///   return rar::AscentDirection{torch::autograd::grad({loss.sum()}, {leaf})[0], loss.detach()};
/// };
/// @endcode
struct AscentDirection {
  /// The direction, shape of the iterate (only its sign, or its per-sample direction, is used).
  torch::Tensor direction;
  /// The per-sample objective `[N]` at the iterate, or undefined.
  torch::Tensor objective;
};

namespace detail {

/// Validates a ball: ε finite and ≥ 0, clip_min ≤ clip_max (neither NaN). `fn` names the
/// public entry point, `epsilon_name` the caller's name for ε (e.g. "radius").
inline void check_ball(const char* fn, const BallOptions& ball,
                       const char* epsilon_name = "epsilon") {
  TORCH_CHECK(std::isfinite(ball.epsilon()) && ball.epsilon() >= 0, fn, ": ", epsilon_name,
              " must be finite and >= 0, got ", ball.epsilon());
  TORCH_CHECK(ball.norm() == Norm::linf || ball.norm() == Norm::l2, fn,
              ": norm must be Norm::linf or Norm::l2, got ", static_cast<int>(ball.norm()));
  TORCH_CHECK(ball.clip_min() <= ball.clip_max(), fn,
              ": clip_min must be <= clip_max, got clip_min = ", ball.clip_min(),
              " and clip_max = ", ball.clip_max());
}

/// Checks that every entry of `x` lies in the ball's data range [clip_min, clip_max]. Nothing is
/// clamped silently: an input outside the range (e.g. pixels in [0, 255] against the default
/// [0, 1]) would be cut to the range by the first projection, so it is an error naming the
/// range, how many values lie outside and their extent. `fn` names the public entry point,
/// `name` the argument.
inline void check_in_clip_range(const char* fn, const char* name, const torch::Tensor& x,
                                const BallOptions& ball) {
  if (!std::isfinite(ball.clip_min()) && !std::isfinite(ball.clip_max())) return;
  if (!x.defined() || x.numel() == 0) return;
  torch::NoGradGuard no_grad;
  const torch::Tensor d = x.detach();
  const double lo = d.min().item<double>();
  const double hi = d.max().item<double>();
  if (lo >= ball.clip_min() && hi <= ball.clip_max()) return;
  const int64_t outside = d.lt(ball.clip_min()).logical_or(d.gt(ball.clip_max())).sum().item<int64_t>();
  TORCH_CHECK(false, fn, ": ", name, " must lie in the data range [clip_min, clip_max] = [",
              ball.clip_min(), ", ", ball.clip_max(), "], but ", outside, " of its ", d.numel(),
              " values lie outside (they span [", lo, ", ", hi,
              "]); nothing is clamped silently: rescale the ", name,
              " or set clip_min/clip_max to its range");
}

/// Validates an ascent: steps ≥ 0, step_size finite and ≥ 0. `fn` names the public entry
/// point; `steps_name` and `step_size_name` are the caller's names for the fields (e.g.
/// "iterations", "attack_step_size").
inline void check_ascent(const char* fn, const AscentOptions& ascent,
                         const char* steps_name = "steps",
                         const char* step_size_name = "step_size") {
  TORCH_CHECK(ascent.steps() >= 0, fn, ": ", steps_name, " must be >= 0, got ", ascent.steps());
  TORCH_CHECK(std::isfinite(ascent.step_size()) && ascent.step_size() >= 0, fn, ": ",
              step_size_name, " must be finite and >= 0, got ", ascent.step_size());
}

/// Per-sample L2 norm of `t` `[N, ...]`, shaped `[N, 1, ..., 1]` for broadcasting.
inline torch::Tensor sample_norm(const torch::Tensor& t) {
  std::vector<int64_t> shape(static_cast<size_t>(t.dim()), 1);
  shape[0] = t.size(0);
  return t.flatten(1).norm(2, 1).view(shape);
}

/// A direction function's result as an `AscentDirection` (a bare tensor is the direction).
inline AscentDirection as_direction(AscentDirection d) { return d; }
/// A direction function's result as an `AscentDirection` (a bare tensor is the direction).
inline AscentDirection as_direction(torch::Tensor g) { return {std::move(g), torch::Tensor()}; }

}  // namespace detail

/// Projects `x_adv` onto N(x, ε) ∩ [clip_min, clip_max]: δ ← clamp(δ, −ε, ε) for L∞,
/// δ ← δ·min(1, ε/(‖δ‖₂ + 1e-12)) per sample for L2, then x + δ is clipped to the range.
///
/// For L∞ this is the exact Euclidean projection onto the intersection (both sets are boxes);
/// for L2 it returns a feasible point when x is inside the range (clipping only shrinks |δ_i|),
/// not always the exact projection.
///
/// Example: `torch::Tensor inside = rar::project_to_ball(x_adv, x, rar::BallOptions().epsilon(0.1));`
/// @param x_adv the point to project `[N, ...]`
/// @param x the center of the ball, same shape
/// @param ball ε, norm and range
/// @return the projected point, shape of x
inline torch::Tensor project_to_ball(const torch::Tensor& x_adv, const torch::Tensor& x,
                                     const BallOptions& ball) {
  torch::Tensor delta = x_adv - x;
  const double epsilon = ball.epsilon();
  if (ball.norm() == Norm::linf) {
    delta = delta.clamp(-epsilon, epsilon);
  } else {
    const torch::Tensor n = detail::sample_norm(delta);
    delta = delta * torch::clamp_max(epsilon / (n + 1e-12), 1.0);
  }
  return (x + delta).clamp(ball.clip_min(), ball.clip_max());
}

/// One ascent step of size `step_size` along `direction`: x′ + α·sign(g) for L∞,
/// x′ + α·g/(‖g‖₂ + 1e-12) per sample for L2 (no projection).
///
/// Example: `x_adv = rar::project_to_ball(rar::ascent_step(x_adv, g, 0.01, rar::Norm::linf), x, ball);`
/// @param x_adv the iterate `[N, ...]`
/// @param direction the ascent direction, same shape
/// @param step_size α ≥ 0
/// @param norm the ball's norm, which decides the step's geometry
/// @return the moved iterate
inline torch::Tensor ascent_step(const torch::Tensor& x_adv, const torch::Tensor& direction,
                                 double step_size, Norm norm) {
  if (norm == Norm::linf) return x_adv + step_size * direction.sign();
  return x_adv + step_size * direction / (detail::sample_norm(direction) + 1e-12);
}

/// A uniformly random point of N(x, ε) ∩ [clip_min, clip_max], drawn from `gen` on the CPU:
/// uniform in the L∞ cube, or uniform in the L2 ball (Gaussian direction, radius ε·u^(1/D),
/// u ~ U(0, 1)); then clipped to the range.
///
/// Draw order (part of the randomness contract): L∞ draws one uniform tensor of x's shape; L2
/// draws one normal tensor of x's shape, then N uniforms.
///
/// Example:
/// @code
/// at::Generator gen = rar::seeded_generator(7);
/// torch::Tensor start = rar::random_start(gen, x, rar::BallOptions().epsilon(0.3));
/// @endcode
/// @param gen a CPU generator (`rar::seeded_generator`)
/// @param x the centers `[N, ...]`
/// @param ball ε, norm and range
/// @return the random points, shape, dtype and device of x
inline torch::Tensor random_start(at::Generator& gen, const torch::Tensor& x,
                                  const BallOptions& ball) {
  const double epsilon = ball.epsilon();
  torch::Tensor delta;
  if (ball.norm() == Norm::linf) {
    delta = uniform_like(gen, x, -epsilon, epsilon);
  } else {
    const torch::Tensor direction = normal_like(gen, x);
    const double d = static_cast<double>(x[0].numel());
    std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
    shape[0] = x.size(0);
    const torch::Tensor u = uniform_like(gen, torch::empty(shape, x.options()), 0.0, 1.0);
    delta = direction / (detail::sample_norm(direction) + 1e-12) * epsilon * u.pow(1.0 / d);
  }
  return (x + delta).clamp(ball.clip_min(), ball.clip_max());
}

/// Where an ascent starts: a random point of the ball drawn from the stream (seed, index) when
/// `random_start` is set, otherwise x itself. Detached, without a graph.
///
/// Example:
/// @code
/// auto ascent = rar::AscentOptions().seed(3);
/// torch::Tensor start = rar::ascent_start(x, rar::BallOptions(), ascent);  // stream (3, 0)
/// @endcode
/// @param x the centers `[N, ...]`
/// @param ball ε, norm and range
/// @param ascent random_start and seed
/// @param index the call index of the stream (0 for a one-shot function)
/// @return the start point, shape, dtype and device of x
inline torch::Tensor ascent_start(const torch::Tensor& x, const BallOptions& ball,
                                  const AscentOptions& ascent, uint64_t index = 0) {
  if (!ascent.random_start()) return x.detach();
  at::Generator gen = seeded_generator(ascent.seed(), index);
  torch::NoGradGuard no_grad;
  return random_start(gen, x.detach(), ball);
}

/// Projected ascent: from `start`, `ascent.steps()` times
/// x′ ← Π_{N(x, ε) ∩ [clip_min, clip_max]}(x′ + step(direction(x′))), the step being
/// `rar::ascent_step` of `ascent.step_size()` in the ball's norm. The one loop behind PGD, the
/// attribution attacks and the RAR inner maximization; use it with any objective.
///
/// `direction(x′)` returns the ascent direction (a tensor of x's shape) or an
/// `rar::AscentDirection` with the per-sample objective too. The callback is called with every
/// iterate t = 0 … steps (see `rar::AscentCallback`); when it returns true the loop stops and
/// returns that iterate. `ascent.random_start()` and `ascent.seed()` are not used here (the
/// start is given; see `rar::ascent_start`). Arguments are assumed validated
/// (`detail::check_ball`, `detail::check_ascent`).
///
/// Example (ascend the logit of class 0 over an L2 ball):
/// @code
/// auto ball = rar::BallOptions().epsilon(1.0).norm(rar::Norm::l2);
/// auto ascent = rar::AscentOptions().steps(10).step_size(0.2);
/// torch::Tensor x_adv = rar::projected_ascent(x, x, ball, ascent, [&](const torch::Tensor& p) {
///   torch::Tensor leaf = p.detach().requires_grad_(true);
///   torch::Tensor score = rar::call_model(model, leaf).select(1, 0);
///   return rar::AscentDirection{torch::autograd::grad({score.sum()}, {leaf})[0], score.detach()};
/// });
/// @endcode
/// @param x the centers of the ball `[N, ...]`
/// @param start the first iterate, shape of x (inside the ball, e.g. from `rar::ascent_start`)
/// @param ball ε, norm and range
/// @param ascent steps and step_size
/// @param direction callable `(const torch::Tensor& x′)` returning a tensor or an
///        `rar::AscentDirection`
/// @param callback called with every iterate (optional)
/// @return the last iterate (or the one the callback stopped at), detached
template <class DirectionFn>
torch::Tensor projected_ascent(const torch::Tensor& x, const torch::Tensor& start,
                               const BallOptions& ball, const AscentOptions& ascent,
                               DirectionFn&& direction, const AscentCallback& callback = {}) {
  static_assert(std::is_invocable_v<DirectionFn&, const torch::Tensor&>,
                "rar::projected_ascent: direction must be callable as (const torch::Tensor& "
                "iterate) returning torch::Tensor or rar::AscentDirection");
  torch::Tensor x_adv = start.detach();
  const torch::Tensor anchor = x.detach();
  for (int64_t t = 0; t < ascent.steps(); ++t) {
    const AscentDirection d = detail::as_direction(direction(x_adv));
    if (callback &&
        callback(t, x_adv, d.objective.defined() ? d.objective.detach() : d.objective)) {
      return x_adv;
    }
    torch::NoGradGuard no_grad;
    x_adv = project_to_ball(ascent_step(x_adv, d.direction, ascent.step_size(), ball.norm()),
                            anchor, ball);
  }
  if (callback) callback(ascent.steps(), x_adv, torch::Tensor());
  return x_adv;
}

namespace detail {

/// Runs `first`, then `second`, on every iterate; stops when either asks to.
inline AscentCallback chain_callbacks(AscentCallback first, AscentCallback second) {
  if (!first) return second;
  if (!second) return first;
  return AscentCallback([first = std::move(first), second = std::move(second)](
                            int64_t t, const torch::Tensor& x, const torch::Tensor& v) {
    const bool stop_first = first(t, x, v);
    const bool stop_second = second(t, x, v);
    return stop_first || stop_second;
  });
}

// The signatures the library used before the blocks existed, kept for code that calls them.

/// `rar::project_to_ball` with the ball's fields spelled out.
inline torch::Tensor project(const torch::Tensor& x_adv, const torch::Tensor& x, double epsilon,
                             Norm norm, double clip_min, double clip_max) {
  return project_to_ball(
      x_adv, x, BallOptions().epsilon(epsilon).norm(norm).clip_min(clip_min).clip_max(clip_max));
}

using rar::ascent_step;

/// `rar::random_start` with the ball's fields spelled out.
inline torch::Tensor random_start(at::Generator& gen, const torch::Tensor& x, double epsilon,
                                  Norm norm, double clip_min, double clip_max) {
  return rar::random_start(
      gen, x, BallOptions().epsilon(epsilon).norm(norm).clip_min(clip_min).clip_max(clip_max));
}

/// `rar::projected_ascent` with the ball's and the ascent's fields spelled out.
template <class GradFn>
torch::Tensor projected_ascent(const torch::Tensor& x, torch::Tensor x_adv, int64_t steps,
                               double step_size, double epsilon, Norm norm, double clip_min,
                               double clip_max, GradFn&& grad_fn) {
  return rar::projected_ascent(
      x, x_adv, BallOptions().epsilon(epsilon).norm(norm).clip_min(clip_min).clip_max(clip_max),
      AscentOptions().steps(steps).step_size(step_size), grad_fn);
}

}  // namespace detail

/// What the inner maximization found, for logging (set `diagnostics` in the options).
///
/// It is filled by an `rar::AscentCallback` the term installs on its inner ascent (next to the
/// option `callback`, which receives the same iterates). Not thread-safe: with concurrent calls
/// of one term, give each its own.
///
/// Example:
/// @code
/// auto diagnostics = std::make_shared<rar::InnerMaxDiagnostics>();
/// auto objective = rar::cross_entropy() + rar::ig_norm(rar::IGNormOptions().diagnostics(diagnostics));
/// objective(model, x, y).backward();
/// std::cout << diagnostics->objective.front() << " -> " << diagnostics->objective.back() << "\n";
/// @endcode
struct InnerMaxDiagnostics {
  /// The maximizer x′ of the last call, detached, `[N, ...]`.
  torch::Tensor adversarial;
  /// Mean inner objective over the batch at the start and after each ascent step.
  std::vector<double> objective;
};

}  // namespace rar
