#pragma once
/// @file
/// Attribution at a hidden layer h of a model written as tail(head(x)): layer Integrated
/// Gradients (the path in h-space, Captum 0.7's `LayerIntegratedGradients`) and layer
/// conductance (the path in input space, Captum 0.7's `LayerConductance`).
///
/// Layer IG is IG_h^{F}(x, x′) of Chen et al., "Robust Attribution Regularization" (NeurIPS
/// 2019), and the internal influence of Leino, Sen, Datta, Fredrikson, Li, "Influence-Directed
/// Explanations for Deep Convolutional Networks" (ITC 2018); layer conductance is from Dhamdhere,
/// Sundararajan, Yan, "How Important Is a Neuron?" (ICLR 2019).

#include <rar/attribution/integrated_gradients.hpp>
#include <rar/attribution/quadrature.hpp>
#include <rar/core/model.hpp>
#include <rar/core/score.hpp>
#include <rar/detail/checks.hpp>

#include <torch/torch.h>

#include <algorithm>
#include <utility>
#include <vector>

namespace rar {

namespace detail {

/// Checks that a layer output `h` (from `head`) is a floating-point batch of `n` samples with
/// the input's dtype and device; `what` says which evaluation produced it.
inline void check_layer_output(const char* fn, const char* what, const torch::Tensor& h,
                               const torch::Tensor& input) {
  TORCH_CHECK(h.defined() && h.dim() >= 1 && h.size(0) == input.size(0), fn, ": head(", what,
              ") must be a batch [N, ...] with N = ", input.size(0), " rows, got shape ",
              h.defined() ? h.sizes() : c10::IntArrayRef{});
  TORCH_CHECK(h.scalar_type() == input.scalar_type() && h.device() == input.device(), fn,
              ": head(", what, ") must have the input's dtype ", input.scalar_type(),
              " and device ", input.device(), ", got ", h.scalar_type(), " on ", h.device());
}

/// The two ends of the h-space path: h = head(input) and h′ = head(baseline), the baseline
/// given in input space (zeros when undefined, broadcast like `rar::integrated_gradients`'s).
/// Both keep their graph when `create_graph` (so the attributions are differentiable w.r.t.
/// the head's parameters and the input); otherwise they are computed without one.
template <class Head>
std::pair<torch::Tensor, torch::Tensor> layer_endpoints(const char* fn, Head& head,
                                                        const torch::Tensor& input,
                                                        const IGOptions& options) {
  const torch::Tensor baseline = prepare_ig(fn, input, options).first;
  torch::AutoGradMode grad_mode(options.create_graph());
  torch::Tensor h = call_model(head, input);
  check_layer_output(fn, "input", h, input);
  torch::Tensor h_base = call_model(head, baseline.contiguous());
  check_layer_output(fn, "baseline", h_base, input);
  TORCH_CHECK(h_base.sizes() == h.sizes(), fn,
              ": head(baseline) must have the shape of head(input) ", h.sizes(), ", got ",
              h_base.sizes());
  return {std::move(h), std::move(h_base)};
}

/// IGOptions for the tail: the caller's options with the baseline moved into h-space.
inline IGOptions tail_options(IGOptions options, const torch::Tensor& h_base) {
  options.baseline(h_base);
  return options;
}

}  // namespace detail

/// Integrated Gradients at a hidden layer: attributions to h = head(input), along the straight
/// path from h′ = head(baseline) to h in h-space.
///
/// With F = score(tail(·), target) and the quadrature nodes α_k and weights w_k of
/// `options.method()`:
///
///     LIG_j(x) = (h_j − h′_j) · Σ_k w_k ∂F(h′ + α_k (h − h′))/∂h_j
///
/// so Σ_j LIG_j → F(tail(h)) − F(tail(h′)) as steps grow (completeness in h-space). This is
/// `rar::integrated_gradients(tail, head(input), options)` with the baseline replaced by
/// `head(baseline)`, and numerically the same as Captum 0.7's `LayerIntegratedGradients` on the
/// layer's output (`attribute_to_layer_input=False`). With head = identity it is
/// `rar::integrated_gradients(tail, input, options)`. The baseline is given in input space
/// (zeros by default, broadcast like `rar::integrated_gradients`'s); the path is straight in
/// h-space, not the image of the input-space path. Costs two head forwards over N rows and IG's
/// N·steps tail forwards and backwards; `internal_batch_size` chunks the tail's path batch.
///
/// With `create_graph` the attributions are differentiable w.r.t. the parameters of head and
/// tail and w.r.t. the input (through h and the gradients): the quantity IG_h^{ℓ_y}(x, x′) of
/// Chen et al. (NeurIPS 2019) that RAR terms at a layer differentiate.
///
/// Example:
/// @code
/// torch::nn::Sequential head(torch::nn::Conv2d(1, 16, 3), torch::nn::ReLU());
/// torch::nn::Sequential tail(torch::nn::Flatten(), torch::nn::Linear(16 * 26 * 26, 10));
/// torch::Tensor a = rar::layer_integrated_gradients(head, tail, images,
///                                                   rar::IGOptions().target(labels));
/// // a has the shape of head(images): [N, 16, 26, 26]
/// @endcode
/// @param head the model up to the layer: any model mapping `[N, ...]` to the layer `[N, ...]`
/// @param tail the rest of the model: any model mapping the layer to the output `[N, C]`
/// @param input batch `[N, ...]`, float32 or float64
/// @param options baseline (input space), target, steps, method, internal_batch_size,
///        create_graph, score — as for `rar::integrated_gradients`
/// @return attributions with the shape, dtype and device of head(input)
template <class Head, class Tail>
torch::Tensor layer_integrated_gradients(Head&& head, Tail&& tail, const torch::Tensor& input,
                                         const IGOptions& options = {}) {
  detail::static_check_model<Head>();
  detail::static_check_model<Tail>();
  const auto [h, h_base] =
      detail::layer_endpoints("rar::layer_integrated_gradients", head, input, options);
  return integrated_gradients(tail, h, detail::tail_options(options, h_base));
}

/// Layer Integrated Gradients and the convergence delta of each sample.
///
/// `delta[n] = Σ_j attributions[n, j] − (F(x_n) − F(x′_n))` with F = score(tail(head(·)),
/// target), Captum's `return_convergence_delta=True`; it goes to 0 as steps grow.
///
/// Example:
/// @code
/// auto r = rar::layer_integrated_gradients_with_delta(head, tail, x, rar::IGOptions().target(y));
/// double worst = r.delta.abs().max().item<double>();
/// @endcode
/// @param head the model up to the layer
/// @param tail the rest of the model
/// @param input batch `[N, ...]`
/// @param options as for `rar::layer_integrated_gradients`
/// @return the attributions (shape of head(input)) and `delta` `[N]`
template <class Head, class Tail>
Attribution layer_integrated_gradients_with_delta(Head&& head, Tail&& tail,
                                                  const torch::Tensor& input,
                                                  const IGOptions& options = {}) {
  detail::static_check_model<Head>();
  detail::static_check_model<Tail>();
  const auto [h, h_base] = detail::layer_endpoints("rar::layer_integrated_gradients_with_delta",
                                                   head, input, options);
  return integrated_gradients_with_delta(tail, h, detail::tail_options(options, h_base));
}

/// Layer conductance: the flow of the input-space IG through the hidden layer h = head(x).
///
/// Along the input path x_α = x′ + α (x − x′), with h(α) = head(x_α) and
/// F = score(tail(·), target), the conductance of unit j is
///
///     Cond_j = ∫₀¹ ∂F/∂h_j (h(α)) · dh_j(α)/dα dα ≈ Σ_{k=0}^{m−1} ∂F/∂h_j (h(α_k)) · (h_j(α_{k+1}) − h_j(α_k))
///
/// with the m + 1 nodes α_0 < … < α_m of `options.method()` at steps + 1 points (only the
/// nodes are used, not the weights), exactly as Captum 0.7's `LayerConductance` discretizes it.
/// The sum telescopes to first order: Σ_j Cond_j ≈ F(x_{α_m}) − F(x_{α_0}), which is
/// F(x) − F(x′) for the trapezoid rule (its nodes include 0 and 1); the nodes of the other
/// rules stop short of one end or both, as in Captum. Unlike layer IG the path is the image of
/// the straight input path, so Cond ≠ LIG unless head is affine. Costs one forward of head and tail and one backward
/// of the tail over N·(steps + 1) rows (chunked by `internal_batch_size`).
///
/// Example:
/// @code
/// torch::Tensor c = rar::layer_conductance(head, tail, x, rar::IGOptions().target(y).steps(50));
/// @endcode
/// @param head the model up to the layer
/// @param tail the rest of the model
/// @param input batch `[N, ...]`, float32 or float64
/// @param options baseline (input space), target, steps (m; m + 1 nodes are evaluated), method,
///        internal_batch_size, create_graph (differentiable w.r.t. the parameters and the
///        input), score
/// @return conductance of every unit of h, shape, dtype and device of head(input)
template <class Head, class Tail>
torch::Tensor layer_conductance(Head&& head, Tail&& tail, const torch::Tensor& input,
                                const IGOptions& options = {}) {
  detail::static_check_model<Head>();
  detail::static_check_model<Tail>();
  const char* fn = "rar::layer_conductance";
  const auto [baseline, target] = detail::prepare_ig(fn, input, options);
  const bool graph = options.create_graph();
  torch::AutoGradMode grad_mode(true);
  const QuadratureRule rule = quadrature(options.method(), options.steps() + 1);
  const int64_t points = static_cast<int64_t>(rule.alphas.size());
  const int64_t n = input.size(0);
  const auto steps_shape = detail::leading_shape(points, input.dim());
  const torch::Tensor alphas =
      torch::tensor(rule.alphas, torch::kDouble).to(input.options()).view(steps_shape);
  std::vector<int64_t> flat_shape(input.sizes().begin(), input.sizes().end());
  flat_shape[0] = points * n;
  // Step-major rows k·N + n, as in rar::integrated_gradients.
  torch::Tensor path =
      (baseline.unsqueeze(0) + alphas * (input - baseline).unsqueeze(0)).reshape(flat_shape);
  if (!graph) path = path.detach();
  const torch::Tensor path_target = target.defined() ? target.repeat({points}) : target;

  const int64_t rows = points * n;
  const int64_t chunk = options.internal_batch_size() > 0 ? options.internal_batch_size() : rows;
  std::vector<torch::Tensor> layer, grads;
  for (int64_t start = 0; start < rows; start += chunk) {
    const int64_t stop = std::min(rows, start + chunk);
    torch::Tensor h;
    {
      torch::AutoGradMode head_grad(graph);
      h = call_model(head, path.slice(0, start, stop));
    }
    TORCH_CHECK(h.defined() && h.dim() >= 1 && h.size(0) == stop - start, fn,
                ": head must map a batch of ", stop - start, " rows to [", stop - start,
                ", ...], got shape ", h.defined() ? h.sizes() : c10::IntArrayRef{});
    const torch::Tensor leaf = detail::differentiable_leaf(h, graph);
    const torch::Tensor t =
        path_target.defined() ? path_target.slice(0, start, stop) : path_target;
    const torch::Tensor s = options.score()(call_model(tail, leaf), t);
    TORCH_CHECK(s.dim() == 1 && s.size(0) == stop - start, fn,
                ": the score function must return one value per sample, shape [", stop - start,
                "], got ", s.sizes());
    grads.push_back(torch::autograd::grad({s.sum()}, {leaf}, {}, /*retain_graph=*/graph,
                                          /*create_graph=*/graph)[0]);
    layer.push_back(graph ? h : h.detach());
  }
  const torch::Tensor hs = layer.size() == 1 ? layer[0] : torch::cat(layer);
  const torch::Tensor gs = grads.size() == 1 ? grads[0] : torch::cat(grads);
  std::vector<int64_t> step_major(hs.sizes().begin(), hs.sizes().end());
  step_major[0] = n;
  step_major.insert(step_major.begin(), points);
  const torch::Tensor hv = hs.reshape(step_major);
  const torch::Tensor gv = gs.reshape(step_major);
  return (gv.slice(0, 0, points - 1) * (hv.slice(0, 1, points) - hv.slice(0, 0, points - 1)))
      .sum(0);
}

}  // namespace rar
