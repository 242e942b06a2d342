#pragma once
/// @file
/// Attributional Robustness Training (ART) of Singh, Kumari, Mangla, Sinha, Balasubramanian,
/// Krishnamurthy, "Attributional Robustness Training using Input-Gradient Spatial Alignment"
/// (ECCV 2020; arXiv 1911.13073), following the authors' code (nupurkmr9/Attributional-Robustness,
/// `cifar/cifar_robust_train.py`, `cifar/loss_art.py`, `cifar/saliency_pgd.py`). See
/// docs/methods.md for the formula, defaults and choices.

#include <rar/core/model.hpp>
#include <rar/core/random.hpp>
#include <rar/core/score.hpp>
#include <rar/core/threat_model.hpp>
#include <rar/detail/arg.hpp>
#include <rar/nn/model.hpp>
#include <rar/nn/surrogate.hpp>
#include <rar/regularizer/common.hpp>
#include <rar/regularizer/term.hpp>

#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <utility>

namespace rar {

/// Options of `rar::art`.
///
/// Defaults are the authors' CIFAR-10 setting (their images are in [0, 1], the normalization
/// sits inside the network): an L∞ ball of ε = 8/255, 3 sign steps of 5/255 from a uniform
/// random start, the triplet over the top 1000 of 3072 input elements (`top_k = 0` keeps that
/// fraction, 1000/3072, for any input size: 255 of MNIST's 784 pixels), weight 0.5. For MNIST-like
/// data use a larger ball, e.g. `epsilon(0.3).attack_step_size(0.19)` (the same step/ε ratio).
/// The authors differentiate the triplet through softplus activations (β = 50 in their
/// WideResNet); `surrogate_beta(50)` does the same with `rar::smooth_surrogate` for a model
/// built on `rar::nn` activations. The default, 0, uses the model itself (see docs/methods.md).
///
/// Example:
/// @code
/// auto objective = rar::art(rar::ARTOptions().epsilon(0.3).attack_step_size(0.19)
///                               .surrogate_beta(50.0));
/// objective(model, images, labels).backward();
/// @endcode
struct ARTOptions {
  /// The ball N(x, ε) ∩ [clip_min, clip_max] of the adversarial point (defaults: ε = 8/255,
  /// L∞, [0, 1]).
  RAR_ARG(BallOptions, ball) = BallOptions().epsilon(8.0 / 255.0);
  /// The ascent on the triplet loss (defaults: 3 steps of 5/255 from a random start, seed 0).
  RAR_ARG(AscentOptions, ascent) = AscentOptions().steps(3).step_size(5.0 / 255.0);
  /// Radius ε of the ball: `ball().epsilon()`.
  RAR_ARG_ALIAS(double, ball, epsilon, epsilon);
  /// Norm of the ball (L∞: sign steps, as the authors; L2: normalized steps): `ball().norm()`.
  RAR_ARG_ALIAS(Norm, ball, norm, norm);
  /// Lower end of the data range; x must lie in the range: `ball().clip_min()`.
  RAR_ARG_ALIAS(double, ball, clip_min, clip_min);
  /// Upper end of the data range: `ball().clip_max()`.
  RAR_ARG_ALIAS(double, ball, clip_max, clip_max);
  /// Ascent steps on the triplet loss (0: x̃ is the start point): `ascent().steps()`.
  RAR_ARG_ALIAS(int64_t, ascent, attack_steps, steps);
  /// Size of each ascent step: `ascent().step_size()`.
  RAR_ARG_ALIAS(double, ascent, attack_step_size, step_size);
  /// Start at a uniform random point of the ball (else at x): `ascent().random_start()`.
  RAR_ARG_ALIAS(bool, ascent, random_start, random_start);
  /// Seed of the random starts: call i of the term draws from the stream (seed, i).
  RAR_ARG_ALIAS(uint64_t, ascent, seed, seed);
  /// Number k of input elements (of each flattened sample) the attack's triplet is taken over:
  /// the k largest |∂z_y/∂x| at the start point. 0 (default): round(D·1000/3072), at least 1,
  /// the authors' fraction; otherwise 1 ≤ k ≤ D.
  RAR_ARG(int64_t, top_k) = 0;
  /// Weight λ of the triplet term (the authors' 0.5).
  RAR_ARG(double, lambda) = 0.5;
  /// > 0: the gradients in the triplet (in the attack and in the loss) are those of
  /// `rar::smooth_surrogate(model, surrogate_beta)`; the cross-entropy and the top-k selection
  /// use the model itself. 0 (default): the model itself everywhere.
  RAR_ARG(double, surrogate_beta) = 0.0;
  /// Called with every iterate of the attack; the objective it receives is the per-sample
  /// triplet loss on the top-k elements (see `rar::AscentCallback`).
  RAR_ARG(AscentCallback, callback);
  /// Mean (default, as the authors) or sum over the batch.
  RAR_ARG(Reduction, reduction) = Reduction::mean;
};

namespace detail {

/// Validates ART options; `fn` names the public entry point.
inline void check_art_options(const char* fn, const ARTOptions& options) {
  check_ball(fn, options.ball());
  check_ascent(fn, options.ascent(), "attack_steps", "attack_step_size");
  TORCH_CHECK(options.top_k() >= 0, fn, ": top_k must be >= 0 (0: the authors' fraction), got ",
              options.top_k());
  TORCH_CHECK(std::isfinite(options.lambda()) && options.lambda() >= 0, fn,
              ": lambda must be finite and >= 0, got ", options.lambda());
  TORCH_CHECK(std::isfinite(options.surrogate_beta()) && options.surrogate_beta() >= 0, fn,
              ": surrogate_beta must be finite and >= 0 (0: no surrogate), got ",
              options.surrogate_beta());
}

/// The number of elements the attack's triplet uses for samples of `d` elements.
inline int64_t art_top_k(const char* fn, int64_t top_k, int64_t d) {
  if (top_k == 0) {
    return std::max<int64_t>(1, std::llround(static_cast<double>(d) * 1000.0 / 3072.0));
  }
  TORCH_CHECK(top_k <= d, fn, ": top_k must lie in [1, D = ", d,
              "] (D: elements per sample), got ", top_k);
  return top_k;
}

/// The two input gradients of ART's triplet at a batch of points.
struct ARTGradients {
  torch::Tensor positive;  ///< ∂z_y/∂x, the true class's
  torch::Tensor negative;  ///< ∂z_{y′}/∂x, y′ the largest other logit
};

/// Input gradients of the true-class logit z_y and of the top other logit z_{y′} (y′ the
/// largest logit other than y, at each point) w.r.t. `leaf` `[M, ...]`, which must require
/// grad. With `create_graph` both are differentiable (in the parameters and in `leaf`).
template <class Model>
ARTGradients art_gradients(const char* fn, Model& model, const torch::Tensor& leaf,
                           const torch::Tensor& y, bool create_graph) {
  torch::AutoGradMode grad_mode(true);
  const torch::Tensor logits = call_model(model, leaf);
  TORCH_CHECK(logits.dim() == 2 && logits.size(0) == leaf.size(0) && logits.size(1) >= 2, fn,
              ": the model must return logits [N, C] with N = ", leaf.size(0),
              " and C >= 2, got ", logits.sizes());
  const torch::Tensor idx = y.unsqueeze(1);
  check_class_range(fn, y, logits.size(1));
  const torch::Tensor z_y = logits.gather(1, idx).squeeze(1);
  const torch::Tensor z_other =
      logits.scatter(1, idx, -std::numeric_limits<double>::infinity()).amax(1);
  auto grad = [&](const torch::Tensor& s, bool retain) {
    torch::Tensor g = torch::autograd::grad({s.sum()}, {leaf}, {}, retain, create_graph,
                                            /*allow_unused=*/true)[0];
    return g.defined() ? g : torch::zeros_like(leaf);
  };
  torch::Tensor positive = grad(z_y, /*retain=*/true);
  torch::Tensor negative = grad(z_other, /*retain=*/create_graph);
  return {positive, negative};
}

/// The authors' attack (`topk_alignment_saliency_attack`): from a start in the ball, ascend
/// softplus(d(x̃, ∂z_y) − d(x̃, ∂z_{y′})) restricted to the top-k |∂z_y| elements at the start
/// (chosen with `model`; the gradients in the loss come from `smooth`). Returns x̃, detached.
template <class Model, class Smooth>
torch::Tensor art_attack(const char* fn, Model& model, Smooth& smooth, const torch::Tensor& x,
                         const torch::Tensor& y, const ARTOptions& options, uint64_t index) {
  const torch::Tensor start = ascent_start(x, options.ball(), options.ascent(), index);
  if (options.attack_steps() == 0) {
    if (options.callback()) options.callback()(0, start, torch::Tensor());
    return start;
  }
  const int64_t d = x[0].numel();
  const int64_t k = art_top_k(fn, options.top_k(), d);
  torch::Tensor top;  // [N, k] indices into the flattened sample; undefined = every element
  if (k < d) {
    const torch::Tensor leaf = start.detach().requires_grad_(true);
    const torch::Tensor g = art_gradients(fn, model, leaf, y, false).positive;
    top = std::get<1>(g.detach().flatten(1).abs().topk(k, 1));
  }
  auto pick = [&](const torch::Tensor& t) {
    return top.defined() ? t.flatten(1).gather(1, top) : t.flatten(1);
  };
  auto direction = [&](const torch::Tensor& point) {
    torch::AutoGradMode grad_mode(true);
    const torch::Tensor leaf = point.detach().requires_grad_(true);
    const ARTGradients g = art_gradients(fn, smooth, leaf, y, true);
    const torch::Tensor anchor = pick(leaf);
    const torch::Tensor triplet = torch::softplus(cosine_distance(anchor, pick(g.positive)) -
                                                  cosine_distance(anchor, pick(g.negative)));
    const torch::Tensor dir = torch::autograd::grad({triplet.sum()}, {leaf})[0];
    return AscentDirection{dir, triplet.detach()};
  };
  return projected_ascent(x, start, options.ball(), options.ascent(), direction,
                          options.callback());
}

/// The ART loss at a given x̃ `[N, ...]` (per sample, `[N]`): CE(f(x̃), y) + λ·t, t the mean
/// over the two anchors a ∈ {x, x̃} of softplus(d_ap − d_an), with the authors' mining
/// d_ap = max over the two positives {∂z_y(x), ∂z_y(x̃)} of d(a, ·) and d_an = min over the
/// two negatives {∂z_{y′}(x), ∂z_{y′}(x̃)}, d = 1 − cos. Gradients from `smooth`, CE from `model`.
template <class Model, class Smooth>
torch::Tensor art_per_sample(const char* fn, Model& model, Smooth& smooth, const torch::Tensor& x,
                             const torch::Tensor& x_adv, const torch::Tensor& y, double lambda) {
  torch::AutoGradMode grad_mode(true);
  const int64_t n = x.size(0);
  const torch::Tensor points = torch::cat({x.detach(), x_adv.detach()}, 0).requires_grad_(true);
  const ARTGradients g = art_gradients(fn, smooth, points, y.repeat({2}), true);
  const torch::Tensor anchors = points.detach();
  // Row i's partner is the other point of the same sample: roll by N over the 2N rows.
  const torch::Tensor d_ap = torch::max(cosine_distance(anchors, g.positive),
                                        cosine_distance(anchors, g.positive.roll(n, 0)));
  const torch::Tensor d_an = torch::min(cosine_distance(anchors, g.negative),
                                        cosine_distance(anchors, g.negative.roll(n, 0)));
  const torch::Tensor triplet = torch::softplus(d_ap - d_an).view({2, n}).mean(0);
  const torch::Tensor ce = score::cross_entropy(call_model(model, x_adv.detach()), y);
  return ce + lambda * triplet;
}

/// ART with the gradients of `smooth`: attack, then the loss at the attack's point.
template <class Model, class Smooth>
torch::Tensor art_loss(const char* fn, Model& model, Smooth& smooth, const torch::Tensor& x,
                       const torch::Tensor& y, const ARTOptions& options, uint64_t index) {
  const torch::Tensor x_adv = art_attack(fn, model, smooth, x.detach(), y, options, index);
  return reduce(art_per_sample(fn, model, smooth, x, x_adv, y, options.lambda()),
                options.reduction());
}

}  // namespace detail

/// Attributional Robustness Training (Singh et al., ECCV 2020), as in the authors' code:
///
///     loss = CE(f(x̃), y) + λ · ½ Σ_{a ∈ {x, x̃}} softplus(d_ap(a) − d_an(a)),
///     d_ap(a) = max_{u ∈ {x, x̃}} 1 − cos(a, ∂z_y(u)),  d_an(a) = min_{u ∈ {x, x̃}} 1 − cos(a, ∂z_{y′}(u)),
///
/// averaged over the batch: the input itself is the anchor, the input gradient of the true
/// logit the positive and that of the largest other logit y′ the negative, so the term aligns
/// the saliency map with the image and away from the runner-up class. x̃ comes from
/// `attack_steps` sign steps (from a random start in the ball) that ascend the same triplet loss
/// with a single anchor x̃, over the `top_k` elements of largest |∂z_y| at the start. x̃ is
/// detached; the triplet is differentiable in the parameters (double backward).
///
/// **Randomness.** Like `rar::adversarial`, the term counts its calls (`rar::CallCounter`): call
/// i draws its random start from the stream (seed, i) (`rar::ascent_start`).
///
/// Example:
/// @code
/// auto objective = rar::art(rar::ARTOptions().epsilon(0.3).attack_step_size(0.19));
/// torch::Tensor loss = objective(model, x, y);
/// loss.backward();
/// @endcode
/// @param options the ball, the ascent, top_k, λ, surrogate_beta, callback, reduction
/// @return a `rar::Term` `(model, x, y) -> loss`, 0-dim
inline auto art(const ARTOptions& options = {}) {
  const char* fn = "rar::art";
  detail::check_art_options(fn, options);
  return make_term([options, fn, calls = CallCounter()](auto& model, const torch::Tensor& x,
                                                        const torch::Tensor& y) {
    detail::check_labelled_batch(fn, x, y);
    detail::check_in_clip_range(fn, "x", x, options.ball());
    const uint64_t index = calls.next();
    if (options.surrogate_beta() > 0) {
      auto smooth = smooth_surrogate(model, options.surrogate_beta());
      return detail::art_loss(fn, model, smooth, x, y, options, index);
    }
    return detail::art_loss(fn, model, model, x, y, options, index);
  });
}

}  // namespace rar
