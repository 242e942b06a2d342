#pragma once
/// @file
/// `rar::ScriptModel`: a TorchScript module (exported from Python with `torch.jit.script` or
/// `torch.jit.trace`) as a rar model, so every attribution method, metric, attack and
/// regularizer takes it: train or export in Python, explain and harden in C++.

#include <torch/csrc/jit/passes/constant_propagation.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/passes/inliner.h>
#include <torch/csrc/jit/passes/remove_mutation.h>
#include <torch/csrc/jit/passes/subgraph_rewrite.h>
#include <torch/library.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <memory>
#include <mutex>
#include <optional>
#include <rar/nn/functional.hpp>
#include <rar/nn/layers.hpp>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace rar {

namespace detail {

/// The TorchScript operators that `rar::ScriptModel::scope_aware` routes through rar's
/// scope-aware functions: `aten::<name>` becomes `rar::<name>` with the same arguments.
inline const std::vector<std::pair<const char*, const char*>>& script_routes() {
  // {aten operator, its arguments in IR form}
  static const std::vector<std::pair<const char*, const char*>> routes = {
      {"relu", "%x"},
      {"leaky_relu", "%x, %a"},
      {"elu", "%x, %a, %s, %i"},
      {"sigmoid", "%x"},
      {"tanh", "%x"},
      {"softplus", "%x, %b, %t"},
      {"gelu", "%x, %a"},
      {"silu", "%x"},
      {"max_pool2d", "%x, %k, %s, %p, %d, %c"},
      {"softmax", "%x, %d, %t"},
      {"layer_norm", "%x, %s, %w, %b, %e, %c"},
  };
  return routes;
}

/// Registers `rar::relu`, `rar::max_pool2d`, ... with LibTorch's operator registry, once per
/// process. Each runs the `rar::nn::functional` function of the same name, which computes what
/// torch computes outside rar's scopes and applies the scope's rule (DeepLIFT's rescale,
/// guided backprop, the surrogate's softplus) inside one. The kernels are composite (autograd
/// records what they call), and the schemas are conservative so that TorchScript's optimizer
/// neither merges nor drops calls (DeepLIFT pairs the input's calls with the reference's).
inline void register_script_operators() {
  static std::once_flag once;
  std::call_once(once, [] {
    // Another copy of rar in the same process (a second shared library) may have registered
    // them already; the operators are the same.
    if (c10::Dispatcher::singleton().findSchema({"rar::relu", ""}).has_value()) return;
    static torch::Library lib(torch::Library::FRAGMENT, "rar", c10::nullopt, __FILE__, __LINE__);
    const auto conservative = [](const char* schema) {
      return torch::schema(schema, c10::AliasAnalysisKind::CONSERVATIVE);
    };
    namespace F = rar::nn::functional;
    lib.def(conservative("rar::relu(Tensor self) -> Tensor"),
            [](const at::Tensor& x) { return F::relu(x); });
    lib.def(conservative("rar::leaky_relu(Tensor self, Scalar negative_slope) -> Tensor"),
            [](const at::Tensor& x, const c10::Scalar& a) {
              return F::leaky_relu(x, torch::nn::LeakyReLUOptions().negative_slope(a.toDouble()));
            });
    lib.def(conservative("rar::elu(Tensor self, Scalar alpha, Scalar scale, Scalar input_scale) "
                         "-> Tensor"),
            [](const at::Tensor& x, const c10::Scalar& alpha, const c10::Scalar& scale,
               const c10::Scalar& input_scale) {
              TORCH_CHECK(scale.toDouble() == 1.0 && input_scale.toDouble() == 1.0,
                          "rar::ScriptModel: rar routes aten::elu with scale = input_scale = 1 "
                          "only (torch.nn.ELU), got scale = ",
                          scale.toDouble(), ", input_scale = ", input_scale.toDouble());
              return F::elu(x, torch::nn::ELUOptions().alpha(alpha.toDouble()));
            });
    lib.def(conservative("rar::sigmoid(Tensor self) -> Tensor"),
            [](const at::Tensor& x) { return F::sigmoid(x); });
    lib.def(conservative("rar::tanh(Tensor self) -> Tensor"),
            [](const at::Tensor& x) { return F::tanh(x); });
    lib.def(conservative("rar::softplus(Tensor self, Scalar beta, Scalar threshold) -> Tensor"),
            [](const at::Tensor& x, const c10::Scalar& beta, const c10::Scalar& threshold) {
              return F::softplus(x, torch::nn::SoftplusOptions()
                                        .beta(beta.toDouble())
                                        .threshold(threshold.toDouble()));
            });
    lib.def(conservative("rar::gelu(Tensor self, str approximate) -> Tensor"),
            [](const at::Tensor& x, c10::string_view approximate) {
              return F::gelu(x, torch::nn::functional::GELUFuncOptions().approximate(
                                    std::string(approximate.data(), approximate.size())));
            });
    lib.def(conservative("rar::silu(Tensor self) -> Tensor"),
            [](const at::Tensor& x) { return F::silu(x); });
    lib.def(conservative("rar::max_pool2d(Tensor self, int[] kernel_size, int[] stride, "
                         "int[] padding, int[] dilation, bool ceil_mode) -> Tensor"),
            [](const at::Tensor& x, c10::IntArrayRef kernel, c10::IntArrayRef stride,
               c10::IntArrayRef padding, c10::IntArrayRef dilation, bool ceil_mode) {
              // torch's defaults: stride [] is the kernel; one value stands for both dims.
              const auto pair = [](c10::IntArrayRef v, c10::IntArrayRef fallback) {
                const c10::IntArrayRef u = v.empty() ? fallback : v;
                return torch::ExpandingArray<2>(u.size() == 1 ? std::vector<int64_t>{u[0], u[0]}
                                                               : u.vec());
              };
              return F::max_pool2d(x, torch::nn::functional::MaxPool2dFuncOptions(
                                          pair(kernel, kernel))
                                          .stride(pair(stride, kernel))
                                          .padding(pair(padding, padding))
                                          .dilation(pair(dilation, dilation))
                                          .ceil_mode(ceil_mode));
            });
    lib.def(conservative("rar::softmax(Tensor self, int dim, ScalarType? dtype) -> Tensor"),
            [](const at::Tensor& x, int64_t dim, c10::optional<c10::ScalarType> dtype) {
              return rar::nn::functional::softmax(dtype ? x.to(*dtype) : x, dim);
            });
    lib.def(conservative("rar::layer_norm(Tensor input, int[] normalized_shape, Tensor? weight, "
                         "Tensor? bias, float eps, bool cudnn_enable) -> Tensor"),
            [](const at::Tensor& x, c10::IntArrayRef shape, const c10::optional<at::Tensor>& w,
               const c10::optional<at::Tensor>& b, double eps, bool /*cudnn_enable*/) {
              return rar::nn::functional::layer_norm(x, shape, w ? *w : at::Tensor(),
                                                     b ? *b : at::Tensor(), eps);
            });
  });
}

/// What `route_script_module` made of a module: the rewritten clone, and what it could not
/// route.
struct ScriptRouting {
  torch::jit::Module module;           ///< the clone, sharing the source's parameters
  std::vector<std::string> kinked;     ///< kinked operators left as they are (aten::relu6, ...)
};

/// Collects the kinds of the nodes of `block` and its sub-blocks.
inline void collect_node_kinds(torch::jit::Block* block, std::set<std::string>& kinds) {
  for (torch::jit::Node* node : block->nodes()) {
    kinds.insert(node->kind().toQualString());
    for (torch::jit::Block* sub : node->blocks()) collect_node_kinds(sub, kinds);
  }
}

/// The `prim::GetAttr[name="training"]` nodes of `block` and its sub-blocks.
inline void collect_training_reads(torch::jit::Block* block, std::vector<torch::jit::Node*>& out) {
  for (torch::jit::Node* node : block->nodes()) {
    if (node->kind() == c10::prim::GetAttr && node->s(c10::attr::name) == "training")
      out.push_back(node);
    for (torch::jit::Block* sub : node->blocks()) collect_training_reads(sub, out);
  }
}

/// Whether every module of `m` (itself included) is in evaluation mode.
inline bool all_in_eval_mode(const torch::jit::Module& m) {
  for (const torch::jit::Module& sub : m.modules())
    if (sub.is_training()) return false;
  return true;
}

/// Clones `source` with its parameters and buffers shared (`clone(/*inplace=*/true)`: new
/// types, so the source's own methods are untouched), inlines the clone's `forward` into one
/// graph, turns in-place operations into their functional forms where that provably keeps the
/// graph's meaning (LibTorch's `RemoveTensorMutation`), and routes every operator of
/// `script_routes()` to its `rar::` twin. An in-place activation that cannot be made
/// functional is refused: routing it would change what the model computes.
///
/// With `eval_mode`, every read of a module's `training` flag becomes the constant false and is
/// propagated: the training-only branches (batch norm's running-statistics updates) go, and
/// with them the writes that keep LibTorch from proving torchvision's in-place ReLUs and
/// `out += identity` safe to make functional.
inline ScriptRouting route_script_module(const torch::jit::Module& source, bool eval_mode) {
  register_script_operators();
  ScriptRouting out{source.clone(/*inplace=*/true), {}};
  std::shared_ptr<torch::jit::Graph> graph = out.module.get_method("forward").graph();
  torch::jit::Inline(*graph);
  if (eval_mode) {
    std::vector<torch::jit::Node*> reads;
    collect_training_reads(graph->block(), reads);
    for (torch::jit::Node* node : reads) {
      torch::jit::WithInsertPoint point(node);
      node->output()->replaceAllUsesWith(graph->insertConstant(false));
      node->destroy();
    }
    torch::jit::ConstantPropagation(graph);
  }
  torch::jit::RemoveTensorMutation(graph);
  torch::jit::EliminateDeadCode(graph);
  torch::jit::SubgraphRewriter rewriter;
  for (const auto& [name, args] : script_routes()) {
    const std::string params = std::string(args);
    rewriter.RegisterRewritePattern(
        "graph(" + params + "):\n  %r = aten::" + name + "(" + params + ")\n  return (%r)",
        "graph(" + params + "):\n  %r = rar::" + name + "(" + params + ")\n  return (%r)");
  }
  rewriter.runOnGraph(graph);
  std::set<std::string> kinds;
  collect_node_kinds(graph->block(), kinds);
  for (const auto& [name, args] : script_routes()) {
    const std::string inplace = std::string("aten::") + name + "_";
    TORCH_CHECK(kinds.count(inplace) == 0, "rar::ScriptModel: the TorchScript forward calls ",
                inplace, " on a tensor that is also read elsewhere (an alias or a graph input), "
                "so rar cannot route it without changing what the model computes; ",
                eval_mode ? "use the out-of-place form (torch.nn.ReLU(inplace=False), F.relu(x)) "
                            "in the exported model"
                          : "the model is in training mode, whose batch-norm updates keep the "
                            "in-place operations from being proven safe: call eval() on it");
  }
  for (const char* kinked : {"aten::relu6", "aten::hardtanh", "aten::hardtanh_", "aten::prelu",
                             "aten::threshold", "aten::threshold_", "aten::rrelu",
                             "aten::hardswish", "aten::hardsigmoid", "aten::clamp",
                             "aten::clamp_", "aten::max_pool2d_with_indices"})
    if (kinds.count(kinked) != 0) out.kinked.emplace_back(kinked);
  return out;
}

}  // namespace detail

/// A TorchScript module used as a rar model: `forward(x)` runs the module's `forward` on one
/// tensor and returns its tensor output, so `rar::integrated_gradients`, `rar::saliency`,
/// `rar::pgd_attack`, `rar::attribution_attack`, `rar::cross_entropy() + rar::ig_norm(...)` and
/// the rest accept it like a `torch::nn::Sequential`.
///
/// The module is held by value; `torch::jit::Module` is a reference-like handle, so copies of
/// a `ScriptModel` share the same parameters, mode and device (as copies of a LibTorch module
/// holder do). Gradients flow through the TorchScript graph as through eager code: input
/// gradients, `create_graph` (double backward, as the attribution attack and the RAR terms
/// need) and parameter gradients for training all work.
///
/// The module's `forward` must take one tensor and return one tensor (e.g. logits `[N, C]`);
/// a module whose `forward` returns a tuple, a list or a dict is rejected on the first call
/// with the type it returned. Wrap such a module in Python (`return self.net(x)[0]`) or use a
/// lambda `[&](const torch::Tensor& x) { return m.forward({x}).toTuple()->elements()[0]
/// .toTensor(); }` as the model.
///
/// Example:
/// @code
/// // Python: torch.jit.script(net.double().eval()).save("net.pt")
/// rar::ScriptModel net = rar::ScriptModel::load("net.pt");
/// net.eval();
/// torch::Tensor ig = rar::integrated_gradients(net, x, rar::IGOptions().target(y));
/// // DeepLIFT, guided backprop and the smooth surrogate route the graph's ReLUs, max-pools,
/// // ... through rar's operators (see scope_aware()):
/// torch::Tensor dl = rar::deeplift(net, x, rar::DeepLiftOptions().target(y));
/// // A ReLU network is attacked through its softplus surrogate (same weights), chosen here;
/// // passing net (or a copy of it) as its own surrogate is refused: its map has no curvature.
/// rar::AttackResult r = rar::attribution_attack(net, rar::auto_surrogate(), method, x, y);
///
/// // Harden it in C++ and save it back for Python:
/// net.train();
/// torch::optim::Adam opt(net.parameters(), torch::optim::AdamOptions(1e-3));
/// auto objective = rar::cross_entropy() + rar::ig_norm(rar::IGNormOptions().epsilon(0.1));
/// opt.zero_grad();
/// objective(net, x, y).backward();
/// opt.step();
/// net.save("net_hardened.pt");  // Python: torch.jit.load("net_hardened.pt")
/// @endcode
class ScriptModel {
 public:
  /// Marks TorchScript models: the scope-based methods (DeepLIFT, guided backprop,
  /// deconvolution, Guided Grad-CAM, `rar::smooth_surrogate`) run them through their
  /// scope-aware twin (`scope_aware()`).
  using rar_torchscript_tag = void;
  /// Wraps a loaded (or C++-built) TorchScript module; it must have a `forward` method.
  ///
  /// Example:
  /// @code
  /// torch::jit::Module m = torch::jit::load("net.pt");
  /// rar::ScriptModel net(m);  // shares m's parameters
  /// @endcode
  /// @param module the TorchScript module, shared (not copied)
  explicit ScriptModel(torch::jit::Module module)
      : module_(std::move(module)), twin_cache_(std::make_shared<TwinCache>()) {
    TORCH_CHECK(module_.find_method("forward").has_value(),
                "rar::ScriptModel: the TorchScript module ", module_.type()->repr_str(),
                " has no forward method");
  }

  /// Loads a TorchScript file saved by `torch.jit.save` / `ScriptModule.save` (Python) or
  /// `torch::jit::Module::save` (C++), with its tensors placed on `device`.
  ///
  /// Throws `c10::Error` naming `path` when the file is missing or is not a TorchScript
  /// archive, or when the module has no `forward` method.
  ///
  /// Example:
  /// @code
  /// auto net = rar::ScriptModel::load("models/mnist_cnn.pt");
  /// auto gpu_net = rar::ScriptModel::load("models/mnist_cnn.pt", torch::kCUDA);
  /// @endcode
  /// @param path file written by `torch.jit.save`
  /// @param device where the parameters and buffers are loaded (default CPU)
  /// @return the model, wrapping the loaded module
  static ScriptModel load(const std::string& path, torch::Device device = torch::kCPU) {
    torch::jit::Module module;
    try {
      module = torch::jit::load(path, device);
    } catch (const c10::Error& e) {
      TORCH_CHECK(false, "rar::ScriptModel::load: cannot load a TorchScript module from '", path,
                  "': ", e.what_without_backtrace());
    } catch (const std::exception& e) {
      TORCH_CHECK(false, "rar::ScriptModel::load: cannot load a TorchScript module from '", path,
                  "': ", e.what());
    }
    TORCH_CHECK(module.find_method("forward").has_value(),
                "rar::ScriptModel::load: the module in '", path, "' (", module.type()->repr_str(),
                ") has no forward method");
    return ScriptModel(std::move(module));
  }

  /// Runs the module's `forward` on `input` and returns its tensor output.
  ///
  /// Throws `c10::Error` naming the returned type when `forward` does not return a tensor.
  ///
  /// Example:
  /// @code
  /// torch::Tensor logits = net.forward(x);  // also: net(x)
  /// @endcode
  /// @param input the batch passed to the module's `forward`
  /// @return the module's output tensor
  torch::Tensor forward(const torch::Tensor& input) const {
    if (source_) sync_modes();
    // get_method is const and the module is a shared handle: calling it does not copy anything.
    const torch::IValue out = module_.get_method("forward")({input});
    TORCH_CHECK(out.isTensor(),
                "rar::ScriptModel::forward: the TorchScript module's forward must return a "
                "Tensor (logits [N, C]), got ",
                out.type()->repr_str());
    return out.toTensor();
  }

  /// Same as `forward(input)`.
  ///
  /// Example:
  /// @code
  /// torch::Tensor logits = net(x);
  /// @endcode
  /// @param input the batch passed to the module's `forward`
  /// @return the module's output tensor
  torch::Tensor operator()(const torch::Tensor& input) const { return forward(input); }

  /// The module's parameters (recursively, in the module's order), sharing storage with it: pass
  /// them to a `torch::optim` optimizer to train the module in C++.
  ///
  /// Example:
  /// @code
  /// torch::optim::SGD opt(net.parameters(), torch::optim::SGDOptions(0.01));
  /// @endcode
  /// @return the parameter tensors (not copies)
  std::vector<torch::Tensor> parameters() const {
    std::vector<torch::Tensor> out;
    for (const torch::Tensor& p : module_.parameters(/*recurse=*/true)) out.push_back(p);
    return out;
  }

  /// The module's parameters by their PyTorch `state_dict` names (e.g. `"0.weight"`), sharing
  /// storage with it.
  ///
  /// Example:
  /// @code
  /// for (const auto& p : net.named_parameters()) std::cout << p.key() << " " << p.value().sizes();
  /// @endcode
  /// @return name → parameter tensor (not copies), in the module's order
  torch::OrderedDict<std::string, torch::Tensor> named_parameters() const {
    torch::OrderedDict<std::string, torch::Tensor> out;
    for (const auto& p : module_.named_parameters(/*recurse=*/true)) out.insert(p.name, p.value);
    return out;
  }

  /// Sets training (`on` = true) or evaluation mode on the module and all its submodules
  /// (Dropout, BatchNorm), as `torch::nn::Module::train` does.
  ///
  /// Example:
  /// @code
  /// net.train();        // before a training step
  /// net.train(false);   // same as net.eval()
  /// @endcode
  /// @param on true for training mode
  void train(bool on = true) { module_.train(on); }

  /// Sets evaluation mode: what attributions and attacks should see.
  ///
  /// Example:
  /// @code
  /// net.eval();
  /// @endcode
  void eval() { module_.eval(); }

  /// Whether the module is in training mode.
  ///
  /// Example:
  /// @code
  /// if (net.is_training()) net.eval();
  /// @endcode
  /// @return true in training mode, false in evaluation mode
  bool is_training() const { return module_.is_training(); }

  /// Moves the parameters and buffers to `device` and converts floating-point ones to `dtype`.
  ///
  /// Example:
  /// @code
  /// net.to(torch::kCUDA, torch::kFloat);
  /// @endcode
  /// @param device target device
  /// @param dtype target floating-point dtype
  /// @param non_blocking asynchronous copy where possible
  /// @return `*this`
  ScriptModel& to(torch::Device device, torch::Dtype dtype, bool non_blocking = false) {
    module_.to(device, dtype, non_blocking);
    return *this;
  }

  /// Converts the floating-point parameters and buffers to `dtype`.
  ///
  /// Example:
  /// @code
  /// net.to(torch::kDouble);  // float64 attributions
  /// @endcode
  /// @param dtype target floating-point dtype
  /// @param non_blocking asynchronous copy where possible
  /// @return `*this`
  ScriptModel& to(torch::Dtype dtype, bool non_blocking = false) {
    module_.to(dtype, non_blocking);
    return *this;
  }

  /// Moves the parameters and buffers to `device`.
  ///
  /// Example:
  /// @code
  /// net.to(torch::kCUDA);
  /// @endcode
  /// @param device target device
  /// @param non_blocking asynchronous copy where possible
  /// @return `*this`
  ScriptModel& to(torch::Device device, bool non_blocking = false) {
    module_.to(device, non_blocking);
    return *this;
  }

  /// Saves the module (with its current parameters, e.g. after training in C++) as a
  /// TorchScript file that `torch.jit.load` (Python) and `rar::ScriptModel::load` read.
  ///
  /// Example:
  /// @code
  /// net.save("net_hardened.pt");
  /// @endcode
  /// @param path file to write
  void save(const std::string& path) const { module_.save(path); }

  /// The wrapped TorchScript module (a handle sharing state with this model).
  ///
  /// Example:
  /// @code
  /// torch::IValue out = net.module().forward({x});  // any other method or output type
  /// @endcode
  /// @return the module handle
  torch::jit::Module& module() noexcept { return module_; }

  /// The wrapped TorchScript module (a handle sharing state with this model).
  ///
  /// Example:
  /// @code
  /// const auto& m = net.module();
  /// @endcode
  /// @return the module handle
  const torch::jit::Module& module() const noexcept { return module_; }

  /// The same model (its parameters and buffers shared, its training mode followed) whose
  /// `forward` calls rar's scope-aware operators instead of TorchScript's: `aten::relu`,
  /// `leaky_relu`, `elu`, `sigmoid`, `tanh`, `softplus`, `gelu`, `silu`, `max_pool2d`,
  /// `softmax` and `layer_norm` (their in-place forms too, where that keeps the graph's meaning)
  /// become `rar::relu`, ..., registered with LibTorch's operator registry. Outside rar's
  /// scopes they compute exactly what torch computes; inside one they follow its rule. This is
  /// what lets `rar::deeplift`, `rar::guided_backprop`, `rar::deconvolution`, Guided Grad-CAM,
  /// `rar::smooth_surrogate` and `rar::auto_surrogate()` work on TorchScript models; they call it
  /// themselves.
  ///
  /// The twin is a clone of the module with new types and the `forward` graph inlined, so the
  /// module's own methods are untouched. It is made once per model and mode (copies of a
  /// `ScriptModel` share it) and reused; the twin of a twin is itself. Made while every module
  /// is in eval mode (what attributions want), it has eval mode built in, which lets LibTorch
  /// prove in-place ReLUs and residual `+=` safe to make functional; such a twin raises if
  /// called after the model went back to training mode. An in-place activation on a tensor
  /// that is read elsewhere cannot be routed without changing the model and raises.
  ///
  /// Example:
  /// @code
  /// rar::ScriptModel net = rar::ScriptModel::load("resnet18.pt");
  /// rar::ScriptModel twin = net.scope_aware();
  /// torch::Tensor same = twin(x);  // equals net(x) bit for bit outside rar's scopes
  /// @endcode
  /// @return the scope-aware twin
  ScriptModel scope_aware() const {
    if (source_) return *this;
    const bool eval_mode = detail::all_in_eval_mode(module_);
    std::lock_guard<std::mutex> lock(twin_cache_->mutex);
    std::shared_ptr<ScriptModel>& slot = eval_mode ? twin_cache_->eval : twin_cache_->live;
    if (!slot) {
      detail::ScriptRouting routing = detail::route_script_module(module_, eval_mode);
      ScriptModel twin(std::move(routing.module));
      twin.source_ = module_;
      twin.eval_only_ = eval_mode;
      twin.kinked_ = std::move(routing.kinked);
      slot = std::make_shared<ScriptModel>(std::move(twin));
    }
    return *slot;
  }

  /// On a twin made by `scope_aware()`: the kinked TorchScript operators it calls that rar does
  /// not route (`aten::relu6`, `aten::hardtanh`, `aten::prelu`, `aten::clamp`, ...), which a
  /// softplus surrogate cannot smooth. Empty on a model that is not a twin.
  ///
  /// Example:
  /// @code
  /// if (!net.scope_aware().kinked_operators().empty()) { ... }
  /// @endcode
  /// @return the operators' qualified names
  const std::vector<std::string>& kinked_operators() const noexcept { return kinked_; }

 private:
  struct TwinCache {
    std::mutex mutex;
    std::shared_ptr<ScriptModel> eval;  // made while the model was in eval mode
    std::shared_ptr<ScriptModel> live;  // made in training mode: follows the mode
  };

  // A twin follows its source's training mode, module by module (both trees have the same
  // modules in the same order); one made in eval mode has the mode built in.
  void sync_modes() const {
    if (eval_only_) {
      TORCH_CHECK(!source_->is_training(),
                  "rar::ScriptModel: this scope-aware twin (e.g. a smooth surrogate) was made "
                  "while the model was in eval mode and has eval mode built in, but the model is "
                  "now in training mode; make it again (rar::smooth_surrogate(model, beta)) "
                  "after train(), or call eval()");
      return;
    }
    std::vector<torch::jit::Module> targets;
    for (const torch::jit::Module& m : module_.modules()) targets.push_back(m);
    size_t i = 0;
    for (const torch::jit::Module& m : source_->modules()) {
      if (i == targets.size()) break;
      const bool on = m.is_training();
      if (targets[i].is_training() != on) targets[i].setattr("training", on);
      ++i;
    }
  }

  torch::jit::Module module_;
  std::shared_ptr<TwinCache> twin_cache_;
  std::optional<torch::jit::Module> source_;  // set on a twin: the module it routes
  bool eval_only_ = false;                     // a twin made in eval mode
  std::vector<std::string> kinked_;
};

}  // namespace rar
