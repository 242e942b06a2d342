#pragma once
/// @file
/// Layer-wise relevance propagation (Bach, Binder, Montavon, Klauschen, Müller, Samek, "On
/// Pixel-Wise Explanations for Non-Linear Classifier Decisions by Layer-Wise Relevance
/// Propagation", PLOS ONE 2015) with the ε, γ, α1β0 and identity rules (Montavon, Binder,
/// Lapuschkin, Samek, Müller, "Layer-Wise Relevance Propagation: An Overview", 2019), for
/// `torch::nn::Sequential` networks. Matches Captum 0.7's `LRP`.

#include <rar/core/attribution.hpp>
#include <rar/core/model.hpp>
#include <rar/core/score.hpp>
#include <rar/detail/arg.hpp>
#include <rar/detail/checks.hpp>
#include <rar/nn/activation.hpp>

#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

namespace rar {

/// The propagation rule of LRP at one layer: how the relevance R_out of the layer's outputs is
/// shared among its inputs a.
///
/// Every rule but `identity` is Captum's z-rule with modified weights W′ (and bias b′):
/// z′ = layer′(a), s = R_out / (z′ + eps·sign(z′)) with sign(0) = 1, R_in = a ⊙ J′ᵀ s, where J′ᵀ
/// is the layer′'s backward (Wᵀ for Linear, the transposed convolution for Conv, the routing
/// to the maximum for max pooling, the spreading over the window for average pooling).
/// - `epsilon(eps)`: W′ = W (Captum `EpsilonRule(epsilon)`, default eps 1e-9).
/// - `gamma(g, zero_bias)`: W′ = W + g·max(W, 0), stabilizer 1e-9 (Captum `GammaRule(gamma,
///   set_bias_to_zero)`, default g 0.25).
/// - `alpha1_beta0(zero_bias)`: W′ = max(W, 0), stabilizer 1e-9 (Captum `Alpha1_Beta0_Rule`).
/// - `identity()`: R_in = R_out, for layers whose output has the input's shape (Captum
///   `IdentityRule`).
/// Layers without weights (pooling) ignore the weight change; `zero_bias` sets b′ = 0.
///
/// Example:
/// @code
/// auto opts = rar::LRPOptions().target(y).rule(0, rar::LRPRule::gamma(0.25));
/// @endcode
class LRPRule {
 public:
  /// Which rule.
  enum class Kind { epsilon, gamma, alpha1_beta0, identity };

  /// The ε rule: z-rule with the layer's own weights and stabilizer `eps`.
  /// @param eps stabilizer added to |z| (≥ 0; 0 is the plain z-rule, which divides by z)
  /// @return the rule
  static LRPRule epsilon(double eps = 1e-9) {
    TORCH_CHECK(std::isfinite(eps) && eps >= 0,
                "rar::LRPRule::epsilon: eps must be finite and >= 0, got ", eps);
    return LRPRule(Kind::epsilon, eps, 0.0, false);
  }
  /// The γ rule: weights W + γ·max(W, 0), favouring positive contributions.
  /// @param gamma the boost of the positive weights (≥ 0; 0 is the ε rule with eps 1e-9)
  /// @param set_bias_to_zero use b′ = 0 in z′
  /// @return the rule
  static LRPRule gamma(double gamma = 0.25, bool set_bias_to_zero = false) {
    TORCH_CHECK(std::isfinite(gamma) && gamma >= 0,
                "rar::LRPRule::gamma: gamma must be finite and >= 0, got ", gamma);
    return LRPRule(Kind::gamma, kStabilizer, gamma, set_bias_to_zero);
  }
  /// The α1β0 rule (deep Taylor z⁺): only the positive weights max(W, 0).
  /// @param set_bias_to_zero use b′ = 0 in z′
  /// @return the rule
  static LRPRule alpha1_beta0(bool set_bias_to_zero = false) {
    return LRPRule(Kind::alpha1_beta0, kStabilizer, 0.0, set_bias_to_zero);
  }
  /// The identity rule: relevance passes unchanged (the layer's output must have its input's
  /// shape).
  /// @return the rule
  static LRPRule identity() { return LRPRule(Kind::identity, kStabilizer, 0.0, false); }

  /// Which rule this is.
  /// @return the kind
  Kind kind() const noexcept { return kind_; }
  /// The stabilizer ε in z′ + ε·sign(z′) (1e-9 for every rule but `epsilon(eps)`, as in Captum).
  /// @return ε
  double stabilizer() const noexcept { return eps_; }
  /// γ of the γ rule (0 for the others).
  /// @return γ
  double gamma_factor() const noexcept { return gamma_; }
  /// Whether z′ drops the bias.
  /// @return true when b′ = 0
  bool zero_bias() const noexcept { return zero_bias_; }
  /// A readable name, e.g. `gamma(0.25)`.
  /// @return the rule and its parameters
  std::string str() const {
    std::ostringstream s;
    switch (kind_) {
      case Kind::epsilon: s << "epsilon(" << eps_ << ")"; break;
      case Kind::gamma: s << "gamma(" << gamma_ << (zero_bias_ ? ", zero bias)" : ")"); break;
      case Kind::alpha1_beta0: s << (zero_bias_ ? "alpha1_beta0(zero bias)" : "alpha1_beta0"); break;
      case Kind::identity: s << "identity"; break;
    }
    return s.str();
  }

 private:
  static constexpr double kStabilizer = 1e-9;  // Captum's PropagationRule.STABILITY_FACTOR
  LRPRule(Kind kind, double eps, double gamma, bool zero_bias)
      : kind_(kind), eps_(eps), gamma_(gamma), zero_bias_(zero_bias) {}
  Kind kind_;
  double eps_;
  double gamma_;
  bool zero_bias_;
};

/// Per-layer rules of `LRPOptions`: layer path → rule.
using LRPLayerRules = std::map<std::string, LRPRule>;

/// Options for `rar::lrp`.
///
/// Layers are named by their path in the Sequential: the child's name (its index "3" unless it
/// was pushed back with a name), and for nested Sequentials the names joined by dots ("1.0").
/// A rule given for a nested Sequential applies to every layer in it that carries a rule
/// (Linear, Conv, pooling, batch norm), unless a deeper path has its own. (LibTorch cannot put
/// a `torch::nn::Sequential` inside another; nest a subclass of `torch::nn::SequentialImpl` with
/// a plain `forward`: LRP walks every child that is a `SequentialImpl`.)
///
/// Example:
/// @code
/// auto opts = rar::LRPOptions()
///                 .target(y)
///                 .rule(0, rar::LRPRule::gamma(0.25))      // the first convolution
///                 .rule("7", rar::LRPRule::epsilon(0.05));  // a Linear layer
/// torch::Tensor relevance = rar::lrp(net, x, opts);
/// @endcode
struct LRPOptions {
  /// Class per sample, int64 `[N]` or 0-dim; undefined: the network output must be `[N]`.
  RAR_ARG(torch::Tensor, target);
  /// The rule of every layer that carries one and has none in `rules` (Captum: ε, eps 1e-9).
  RAR_ARG(LRPRule, default_rule) = LRPRule::epsilon();
  /// Rules by layer path (see the struct's comment); set them with `rule(layer, rule)`.
  RAR_ARG(LRPLayerRules, rules);
  /// Keep the graph so the relevance is differentiable w.r.t. the input (attribution attacks):
  /// the rules' arithmetic is differentiated as computed (sign(z′) and max-pool routing are
  /// piecewise constant).
  RAR_ARG(bool, create_graph) = false;

 public:
  /// Sets the rule of the layer (or nested Sequential) at `layer`, e.g. "3" or "1.0".
  /// @param layer the layer's path
  /// @param rule its rule
  /// @return these options
  LRPOptions& rule(const std::string& layer, const LRPRule& rule) {
    rules_.insert_or_assign(layer, rule);
    return *this;
  }
  /// Sets the rule of the Sequential's child `index` (the path `std::to_string(index)`).
  /// @param index the child's position
  /// @param rule its rule
  /// @return these options
  LRPOptions& rule(int64_t index, const LRPRule& rule) {
    return this->rule(std::to_string(index), rule);
  }
};

namespace detail {

/// One leaf of the Sequential as LRP sees it.
struct LRPLayer {
  torch::nn::AnyModule module;    ///< the network's module
  torch::nn::AnyModule modified;  ///< the module with the rule's weights (empty: the module's own)
  std::string path;               ///< "3", "1.0", ...
  std::string type;               ///< "torch::nn::Linear", ...
  bool ruled = false;             ///< carries a rule (else relevance passes through, reshaped)
  LRPRule rule = LRPRule::epsilon();
  bool inplace = false;           ///< overwrites its input
};

/// The module's type name without LibTorch's "Impl" suffix.
inline std::string lrp_type_name(const torch::nn::Module& m) {
  std::string name = m.name();
  if (name.size() > 4 && name.compare(name.size() - 4, 4, "Impl") == 0) name.resize(name.size() - 4);
  return name;
}

template <class Impl>
bool lrp_is(const std::shared_ptr<torch::nn::Module>& m) {
  return std::dynamic_pointer_cast<Impl>(m) != nullptr;
}

/// A copy of `m` (sharing everything but the weight and bias handles) whose forward uses the
/// rule's weights; empty for rules that keep the weights. Copy construction, unlike `clone()`,
/// runs no `reset()` and so draws nothing from the global random generator.
template <class Impl>
torch::nn::AnyModule lrp_modified(const std::shared_ptr<torch::nn::Module>& module,
                                  const LRPRule& rule) {
  const auto m = std::dynamic_pointer_cast<Impl>(module);
  if (m == nullptr) return {};
  const bool change_weight = (rule.kind() == LRPRule::Kind::gamma && rule.gamma_factor() != 0) ||
                             rule.kind() == LRPRule::Kind::alpha1_beta0;
  const bool change_bias = rule.zero_bias() && m->bias.defined();
  if (!(change_weight && m->weight.defined()) && !change_bias) return {};
  auto copy = std::make_shared<Impl>(*m);
  torch::NoGradGuard no_grad;
  if (change_weight && m->weight.defined()) {
    const torch::Tensor w = m->weight.detach();
    copy->weight = rule.kind() == LRPRule::Kind::gamma
                       ? w + rule.gamma_factor() * w.clamp_min(0)
                       : w.clamp_min(0);
  }
  if (change_bias) copy->bias = torch::zeros_like(m->bias.detach());
  return torch::nn::AnyModule(copy);
}

/// The walker's list of supported layers, for error messages.
inline const char* lrp_supported_layers() {
  return "Linear, Conv1d, Conv2d, BatchNorm1d/2d (eval), MaxPool1d/2d, AvgPool1d/2d and "
         "AdaptiveAvgPool1d/2d carry a rule; ReLU, LeakyReLU, ELU, Sigmoid, Tanh, Softplus "
         "(torch::nn or rar::nn), Dropout/Dropout2d (eval), Flatten, Unflatten and Identity pass "
         "relevance through; nested Sequentials are walked";
}

/// Flattens nested Sequentials into their leaves, assigns each its rule (`inherited`: the rule
/// of an enclosing Sequential), and marks the keys of `rules` it used.
inline void lrp_layers(const char* fn, const torch::nn::SequentialImpl& net,
                       const std::string& prefix, const LRPOptions& options,
                       const LRPRule* inherited, std::vector<LRPLayer>& layers,
                       std::set<std::string>& used) {
  using namespace torch::nn;
  const auto names = net.named_children().keys();
  size_t index = 0;
  for (const auto& any : net) {
    const std::string path = prefix + names[index++];
    const auto m = any.ptr();
    const auto own = options.rules().find(path);
    const LRPRule* own_rule = own == options.rules().end() ? nullptr : &own->second;
    if (own_rule != nullptr) used.insert(path);
    if (auto seq = std::dynamic_pointer_cast<SequentialImpl>(m)) {
      lrp_layers(fn, *seq, path + ".", options, own_rule != nullptr ? own_rule : inherited,
                 layers, used);
      continue;
    }
    LRPLayer layer;
    layer.module = any;
    layer.path = path;
    layer.type = lrp_type_name(*m);
    const bool weighted = lrp_is<LinearImpl>(m) || lrp_is<Conv1dImpl>(m) || lrp_is<Conv2dImpl>(m);
    const bool norm = lrp_is<BatchNorm1dImpl>(m) || lrp_is<BatchNorm2dImpl>(m);
    const bool pool = lrp_is<MaxPool1dImpl>(m) || lrp_is<MaxPool2dImpl>(m) ||
                      lrp_is<AvgPool1dImpl>(m) || lrp_is<AvgPool2dImpl>(m) ||
                      lrp_is<AdaptiveAvgPool1dImpl>(m) || lrp_is<AdaptiveAvgPool2dImpl>(m);
    const bool activation = lrp_is<ReLUImpl>(m) || lrp_is<LeakyReLUImpl>(m) ||
                            lrp_is<ELUImpl>(m) || lrp_is<SigmoidImpl>(m) || lrp_is<TanhImpl>(m) ||
                            lrp_is<SoftplusImpl>(m) || rar::nn::detail::is_rar_activation(*m);
    const bool dropout = lrp_is<DropoutImpl>(m) || lrp_is<Dropout2dImpl>(m);
    const bool reshape = lrp_is<FlattenImpl>(m) || lrp_is<UnflattenImpl>(m) || lrp_is<IdentityImpl>(m);
    if (norm || dropout) {
      TORCH_CHECK(!m->is_training(), fn, ": layer ", path, " (", layer.type,
                  ") is in training mode; LRP explains the network as it predicts, so call "
                  "eval() on the network first");
    }
    if (weighted || norm || pool) {
      layer.ruled = true;
      layer.rule = own_rule != nullptr   ? *own_rule
                   : inherited != nullptr ? *inherited
                                          : options.default_rule();
      if (lrp_is<LinearImpl>(m)) layer.modified = lrp_modified<LinearImpl>(m, layer.rule);
      if (lrp_is<Conv1dImpl>(m)) layer.modified = lrp_modified<Conv1dImpl>(m, layer.rule);
      if (lrp_is<Conv2dImpl>(m)) layer.modified = lrp_modified<Conv2dImpl>(m, layer.rule);
      if (lrp_is<BatchNorm1dImpl>(m)) layer.modified = lrp_modified<BatchNorm1dImpl>(m, layer.rule);
      if (lrp_is<BatchNorm2dImpl>(m)) layer.modified = lrp_modified<BatchNorm2dImpl>(m, layer.rule);
    } else if (activation || dropout || reshape) {
      TORCH_CHECK(own_rule == nullptr || own_rule->kind() == LRPRule::Kind::identity, fn,
                  ": layer ", path, " (", layer.type, ") was given the rule ", own_rule->str(),
                  ", but it passes relevance through unchanged; rules apply to Linear, Conv, "
                  "pooling and batch-norm layers");
      auto inplace = [&](auto* impl) { return impl != nullptr && impl->options.inplace(); };
      layer.inplace = inplace(dynamic_cast<ReLUImpl*>(m.get())) ||
                      inplace(dynamic_cast<LeakyReLUImpl*>(m.get())) ||
                      inplace(dynamic_cast<ELUImpl*>(m.get())) ||
                      inplace(dynamic_cast<DropoutImpl*>(m.get())) ||
                      inplace(dynamic_cast<Dropout2dImpl*>(m.get())) ||
                      inplace(dynamic_cast<rar::nn::ReLUImpl*>(m.get())) ||
                      inplace(dynamic_cast<rar::nn::LeakyReLUImpl*>(m.get())) ||
                      inplace(dynamic_cast<rar::nn::ELUImpl*>(m.get()));
    } else {
      TORCH_CHECK(false, fn, ": layer ", path, " (", layer.type,
                  ") has no LRP rule. Supported: ", lrp_supported_layers(),
                  ". For other models use rar::deeplift or rar::integrated_gradients");
    }
    layers.push_back(std::move(layer));
  }
}

/// The leaves of `net` with their rules, validated against `options` (every key of
/// `options.rules()` must name a layer or nested Sequential).
inline std::vector<LRPLayer> lrp_plan(const char* fn, const torch::nn::SequentialImpl& net,
                                      const LRPOptions& options) {
  std::vector<LRPLayer> layers;
  std::set<std::string> used;
  lrp_layers(fn, net, "", options, nullptr, layers, used);
  TORCH_CHECK(!layers.empty(), fn, ": the Sequential has no layers");
  for (const auto& [key, rule] : options.rules()) {
    if (used.count(key) > 0) continue;
    std::ostringstream known;
    for (size_t i = 0; i < layers.size(); ++i)
      known << (i > 0 ? ", " : "") << layers[i].path << " (" << layers[i].type << ")";
    TORCH_CHECK(false, fn, ": a rule (", rule.str(), ") was given for layer '", key,
                "', but the Sequential has no layer at that path; its layers are ", known.str());
  }
  return layers;
}

/// Relevance at the input and the explained score `[N]`: one forward with the network's
/// weights, then the rules layer by layer from the top, where R = score at the target.
inline std::pair<torch::Tensor, torch::Tensor> lrp_sequential(const char* fn,
                                                              std::vector<LRPLayer>& layers,
                                                              const torch::Tensor& input,
                                                              const torch::Tensor& target,
                                                              bool create_graph) {
  torch::AutoGradMode grad_mode(true);
  const size_t count = layers.size();
  // ins[i] is the layer's input (a leaf requiring grad where the layer's backward is needed,
  // unless create_graph keeps one graph from the input); outs[i] its output.
  std::vector<torch::Tensor> ins(count), outs(count);
  const torch::Tensor x = differentiable_leaf(input, create_graph);
  torch::Tensor a = create_graph ? x : input.detach();
  for (size_t i = 0; i < count; ++i) {
    LRPLayer& layer = layers[i];
    const bool own_graph = layer.ruled && layer.rule.kind() != LRPRule::Kind::identity &&
                           layer.modified.is_empty();
    if (!create_graph && own_graph) a = a.detach().requires_grad_(true);
    ins[i] = a;
    const torch::Tensor arg = layer.inplace ? a.clone() : a;
    if (create_graph || own_graph) {
      outs[i] = layer.module.forward(arg);
    } else {
      torch::NoGradGuard no_grad;
      outs[i] = layer.module.forward(arg);
    }
    a = outs[i];
  }
  const torch::Tensor& out = a;
  TORCH_CHECK(out.dim() >= 1 && out.size(0) == input.size(0), fn,
              ": the network must return one row per sample, [", input.size(0), ", ...], got ",
              out.sizes());
  torch::Tensor score, relevance;
  if (target.defined()) {
    TORCH_CHECK(out.dim() == 2, fn, ": with a target the network output must be [N, C], got ",
                out.sizes());
    const torch::Tensor index = gather_target(fn, out, target);
    score = out.gather(1, index);
    relevance = torch::zeros_like(out).scatter(1, index, score);
    score = score.squeeze(1);
  } else {
    TORCH_CHECK(out.dim() == 1, fn, ": without a target the network output must be [N], got ",
                out.sizes(), "; pass a target (class per sample)");
    score = out;
    relevance = out;
  }
  if (!create_graph) relevance = relevance.detach();
  for (size_t i = count; i-- > 0;) {
    LRPLayer& layer = layers[i];
    if (!layer.ruled) {
      relevance = relevance.reshape(ins[i].sizes());
      continue;
    }
    if (layer.rule.kind() == LRPRule::Kind::identity) {
      TORCH_CHECK(ins[i].sizes() == outs[i].sizes(), fn, ": layer ", layer.path, " (",
                  layer.type, ") has the identity rule, which passes relevance unchanged and so "
                  "needs an output of the input's shape; the layer maps ", ins[i].sizes(), " to ",
                  outs[i].sizes());
      continue;
    }
    torch::Tensor in = ins[i];
    torch::Tensor z = outs[i];
    if (!layer.modified.is_empty()) {
      if (!create_graph) in = in.detach().requires_grad_(true);
      z = layer.modified.forward(in);
    }
    torch::Tensor s;
    {
      // z + ε·sign(z) with sign(0) = 1 (Captum's stabilizer), as z ± ε: the same numbers in
      // fewer passes over the layer's output.
      const torch::Tensor zd = create_graph ? z : z.detach();
      const double eps = layer.rule.stabilizer();
      s = relevance / (eps == 0 ? zd : torch::where(zd.detach() >= 0, zd + eps, zd - eps));
    }
    torch::Tensor c = torch::autograd::grad({z}, {in}, {s}, /*retain_graph=*/create_graph,
                                            /*create_graph=*/create_graph, /*allow_unused=*/true)[0];
    if (!c.defined()) c = torch::zeros_like(in);
    // Out of place: c may be an expanded view (the backward of a mean, e.g. adaptive pooling
    // to 1×1).
    relevance = create_graph ? in * c : in.detach() * c;
  }
  relevance = relevance.reshape(input.sizes());
  if (!create_graph) return {relevance.detach(), score.detach()};
  return {relevance, score};
}

/// The Sequential inside `model`, or null when the model is not a `torch::nn::Sequential`
/// (holder or `std::shared_ptr`).
template <class Model>
std::shared_ptr<torch::nn::SequentialImpl> lrp_as_sequential(Model& model) {
  using D = std::decay_t<Model>;
  if constexpr (is_module_holder_v<D>) {
    if (model.is_empty()) return nullptr;
    return std::dynamic_pointer_cast<torch::nn::SequentialImpl>(
        std::shared_ptr<torch::nn::Module>(model.ptr()));
  } else if constexpr (is_shared_ptr<D>::value) {
    if constexpr (std::is_base_of_v<torch::nn::Module, typename D::element_type>) {
      return std::dynamic_pointer_cast<torch::nn::SequentialImpl>(
          std::shared_ptr<torch::nn::Module>(model));
    } else {
      return nullptr;
    }
  } else {
    return nullptr;
  }
}

/// The one implementation behind `lrp` and `lrp_with_delta`: relevance and score.
template <class Model>
std::pair<torch::Tensor, torch::Tensor> lrp_impl(const char* fn, Model& model,
                                                 const torch::Tensor& input,
                                                 const LRPOptions& options) {
  check_input(fn, "input", input);
  const torch::Tensor target =
      expand_target(fn, options.target(), input.size(0), input.device());
  const auto net = lrp_as_sequential(model);
  TORCH_CHECK(net != nullptr, fn,
              ": LRP supports torch::nn::Sequential models (nested Sequentials included), whose "
              "layers it walks to apply a rule per layer; this model is not a Sequential. For "
              "other models (residual blocks, custom forwards, lambdas, TorchScript) use "
              "rar::deeplift or rar::integrated_gradients");
  std::vector<LRPLayer> layers = lrp_plan(fn, *net, options);
  return lrp_sequential(fn, layers, input, target, options.create_graph());
}

}  // namespace detail

/// Layer-wise relevance propagation (Bach et al., PLOS ONE 2015) for `torch::nn::Sequential`
/// networks, with a rule per layer. Matches Captum 0.7's `LRP(model).attribute(x, target)`.
///
/// The relevance starts at the output as the target's score, R = F_t(x) at class t (0
/// elsewhere), and is propagated down layer by layer. A layer that carries a rule (Linear,
/// Conv1d/2d, BatchNorm1d/2d in eval, MaxPool1d/2d, AvgPool1d/2d, AdaptiveAvgPool1d/2d) shares
/// it among its inputs a by the rule (see `LRPRule`), by default the ε rule with ε = 1e-9:
///
///     z = layer(a),  s = R_out / (z + ε·sign(z)),  R_in = a ⊙ Jᵀ s
///
/// (R_in,i = Σ_j a_i w_ji R_out,j / (z_j + ε·sign(z_j)) for a Linear layer; max pooling routes
/// R to the maximum, average pooling spreads it over the window). Activations (ReLU, LeakyReLU,
/// ELU, Sigmoid, Tanh, Softplus of torch::nn or rar::nn), Dropout in eval, Flatten, Unflatten and
/// Identity pass R through unchanged (reshaped). Σ R is conserved by layers without bias for
/// ε → 0; a bias absorbs its share, ε a little more.
///
/// Costs one forward and one backward through the network, plus one more forward of every
/// layer whose rule changes its weights (γ, α1β0, zero bias); the network is not modified.
///
/// Differences from Captum: the same numbers, but also Conv1d, BatchNorm1d, AvgPool1d,
/// AdaptiveAvgPool1d, the activations other than ReLU and Tanh, Dropout2d, Flatten, Unflatten
/// and Identity are accepted (Captum raises for them; a flatten there has to be a reshape in
/// the forward), and `create_graph` makes the relevance differentiable.
///
/// Example:
/// @code
/// torch::nn::Sequential net(torch::nn::Conv2d(1, 8, 3), torch::nn::ReLU(),
///                           torch::nn::MaxPool2d(2), torch::nn::Flatten(),
///                           torch::nn::Linear(8 * 13 * 13, 10));
/// auto relevance = rar::lrp(net, x, rar::LRPOptions().target(y)
///                                       .rule(0, rar::LRPRule::gamma(0.25)));
/// @endcode
/// @param model a `torch::nn::Sequential` (holder or `std::shared_ptr`); other models raise an
///        error that points to DeepLIFT and Integrated Gradients
/// @param input batch `[N, ...]`, float32 or float64 (the network's dtype and device)
/// @param options target, default_rule, rules per layer, create_graph
/// @return the relevance, shape/dtype/device of `input`
template <class Model>
torch::Tensor lrp(Model&& model, const torch::Tensor& input, const LRPOptions& options = {}) {
  detail::static_check_model<Model>();
  return detail::lrp_impl("rar::lrp", model, input, options).first;
}

/// LRP with the convergence delta of each sample: `delta[n] = Σ relevance[n] − F_t(x_n)`,
/// the relevance absorbed (negative) or created (positive) on the way down by biases and the
/// stabilizers. Captum's `return_convergence_delta=True` gives the same number with the
/// opposite sign (output − Σ relevance); rar keeps the sign of `Attribution::delta` of every
/// method, Σ attributions − the explained quantity.
///
/// Example:
/// @code
/// rar::Attribution r = rar::lrp_with_delta(net, x, rar::LRPOptions().target(y));
/// @endcode
/// @param model a `torch::nn::Sequential`
/// @param input batch `[N, ...]`
/// @param options target, default_rule, rules per layer, create_graph
/// @return relevance (input's shape) and delta `[N]`
template <class Model>
Attribution lrp_with_delta(Model&& model, const torch::Tensor& input,
                           const LRPOptions& options = {}) {
  detail::static_check_model<Model>();
  auto [relevance, score] = detail::lrp_impl("rar::lrp_with_delta", model, input, options);
  torch::Tensor delta = relevance.reshape({input.size(0), -1}).sum(1) - score;
  return {std::move(relevance), std::move(delta)};
}

}  // namespace rar
