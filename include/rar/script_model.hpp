#pragma once
/// @file
/// `rar::ScriptModel`: a TorchScript module (exported from Python with `torch.jit.script` or
/// `torch.jit.trace`) as a rar model, so every attribution method, metric, attack and
/// regularizer takes it: train or export in Python, explain and harden in C++.

#include <torch/script.h>
#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

namespace rar {

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
/// // A ReLU network is attacked through a smooth twin (softplus, same weights) exported from
/// // Python; passing net as its own surrogate is refused (its map has no input curvature).
/// rar::ScriptModel smooth = rar::ScriptModel::load("net_softplus.pt");
/// rar::AttackResult r = rar::attribution_attack(net, smooth, method, x, y);
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
  /// Marks TorchScript models: the scope-based methods (DeepLIFT on non-Sequential models,
  /// guided backprop, `rar::smooth_surrogate`) cannot switch TorchScript operators and say so.
  using rar_torchscript_tag = void;
  /// Wraps a loaded (or C++-built) TorchScript module; it must have a `forward` method.
  ///
  /// Example:
  /// @code
  /// torch::jit::Module m = torch::jit::load("net.pt");
  /// rar::ScriptModel net(m);  // shares m's parameters
  /// @endcode
  /// @param module the TorchScript module, shared (not copied)
  explicit ScriptModel(torch::jit::Module module) : module_(std::move(module)) {
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

 private:
  torch::jit::Module module_;
};

}  // namespace rar
