#pragma once
/// @file
/// What the scope-based methods (DeepLIFT on any model, guided backprop, deconvolution, the
/// smooth surrogate) need to know about a model: its module tree, whether its nonlinearities
/// are `rar::nn` ones, and, for Sequentials of `torch::nn` activations, a twin Sequential that
/// shares every weight but uses `rar::nn` activations.

#include <torch/torch.h>

#include <memory>
#include <rar/core/model.hpp>
#include <rar/nn/activation.hpp>
#include <string>
#include <type_traits>
#include <utility>

namespace rar {
namespace nn {
namespace detail {

/// Detects TorchScript models (`rar::ScriptModel` declares `rar_torchscript_tag`).
template <class M, class = void>
struct is_torchscript : std::false_type {};
template <class M>
struct is_torchscript<M, std::void_t<typename M::rar_torchscript_tag>> : std::true_type {};
/// True for `rar::ScriptModel`: its activations are TorchScript operators that no scope sees
/// until the model is routed through rar's operators (`rar::ScriptModel::scope_aware`).
template <class M>
inline constexpr bool is_torchscript_v = is_torchscript<std::decay_t<M>>::value;

/// The module at the root of `model`, or null when the model is a plain callable.
template <class M>
const torch::nn::Module* module_root(const M& model) {
  using D = std::decay_t<M>;
  if constexpr (rar::detail::is_module_holder_v<D>) {
    return model.is_empty() ? nullptr : model.ptr().get();
  } else if constexpr (rar::detail::is_shared_ptr<D>::value) {
    if constexpr (std::is_base_of_v<torch::nn::Module, typename D::element_type>)
      return model.get();
    else
      return nullptr;
  } else if constexpr (std::is_base_of_v<torch::nn::Module, D>) {
    return &model;
  } else {
    return nullptr;
  }
}

/// The first `torch::nn` nonlinearity that matters to a method (`sees`) in the module tree of
/// `root`, the root itself first: its name ("torch::nn::ReLU") and its path ("" for the root),
/// or a null name when there is none.
inline std::pair<const char*, std::string> first_torch_activation(const torch::nn::Module& root,
                                                                   Sees sees) {
  if (const char* name = torch_activation_name(root, sees)) return {name, ""};
  std::pair<const char*, std::string> found{nullptr, ""};
  for_each_submodule(root, "", [&](const std::string& path, const torch::nn::Module& m) {
    if (found.first == nullptr)
      if (const char* name = torch_activation_name(m, sees)) found = {name, path};
  });
  return found;
}

/// Raises an error naming the first `torch::nn` nonlinearity found in `model`'s module tree:
/// inside a custom module, `fn` cannot switch it and would silently treat it as linear (or keep
/// its zero curvature). `what` says what the method needs the activations for.
/// `sees` says which nonlinearities matter to `fn`.
template <class M>
void check_no_torch_activations(const char* fn, const M& model, const char* what,
                                Sees sees = Sees::every) {
  const torch::nn::Module* root = module_root(model);
  if (root == nullptr) return;
  const auto [name, path] = first_torch_activation(*root, sees);
  if (name == nullptr) return;
  TORCH_CHECK(!path.empty(), fn, ": the model is a ", name, "; ", what);
  TORCH_CHECK(false, fn, ": the model's module '", path, "' is a ", name, ", which ", fn,
              " cannot switch; ", what,
              ". Use the drop-in rar::nn::ReLU, LeakyReLU, ELU, Sigmoid, Tanh, Softplus, GELU "
              "or SiLU (or rar::nn::functional::relu, ... in a custom forward)");
}

/// Raises an error when a batch-norm module of `model` is in training mode (methods that run
/// the input and a reference separately need a fixed affine map).
template <class M>
void check_batch_norm_eval(const char* fn, const M& model) {
  const torch::nn::Module* root = module_root(model);
  if (root == nullptr) return;
  for_each_submodule(*root, "", [&](const std::string& path, const torch::nn::Module& m) {
    const bool bn = dynamic_cast<const torch::nn::BatchNorm1dImpl*>(&m) != nullptr ||
                    dynamic_cast<const torch::nn::BatchNorm2dImpl*>(&m) != nullptr ||
                    dynamic_cast<const torch::nn::BatchNorm3dImpl*>(&m) != nullptr;
    TORCH_CHECK(!bn || !m.is_training(), fn, ": the model's module '", path,
                "' is batch norm in training mode; call eval() on the model first");
  });
}

/// The `rar::nn` twin of a `torch::nn` activation module (same options), or an empty
/// AnyModule when `m` is not one of the eight activations rar::nn replaces.
inline torch::nn::AnyModule rar_twin(const std::shared_ptr<torch::nn::Module>& m) {
  namespace tnn = torch::nn;
  if (auto r = std::dynamic_pointer_cast<tnn::ReLUImpl>(m)) return tnn::AnyModule(ReLU(r->options));
  if (auto r = std::dynamic_pointer_cast<tnn::LeakyReLUImpl>(m))
    return tnn::AnyModule(LeakyReLU(r->options));
  if (auto r = std::dynamic_pointer_cast<tnn::ELUImpl>(m)) return tnn::AnyModule(ELU(r->options));
  if (std::dynamic_pointer_cast<tnn::SigmoidImpl>(m)) return tnn::AnyModule(Sigmoid());
  if (std::dynamic_pointer_cast<tnn::TanhImpl>(m)) return tnn::AnyModule(Tanh());
  if (auto r = std::dynamic_pointer_cast<tnn::SoftplusImpl>(m))
    return tnn::AnyModule(Softplus(r->options));
  if (auto r = std::dynamic_pointer_cast<tnn::GELUImpl>(m)) return tnn::AnyModule(GELU(r->options));
  if (std::dynamic_pointer_cast<tnn::SiLUImpl>(m)) return tnn::AnyModule(SiLU());
  return {};
}

/// A Sequential with the children of `net` (shared: same weights, buffers and modes), except
/// that every direct `torch::nn` ReLU/LeakyReLU/ELU/Sigmoid/Tanh/Softplus/GELU/SiLU child is
/// replaced by its `rar::nn` twin. Activations that matter to `fn` (`sees`) deeper inside child
/// modules cannot be swapped from outside and raise an error naming them.
inline torch::nn::Sequential with_rar_activations(const char* fn, const torch::nn::Sequential& net,
                                                  const char* what, Sees sees = Sees::every) {
  TORCH_CHECK(!net.is_empty(), fn, ": the Sequential is an empty holder");
  torch::nn::Sequential out;
  const auto names = net->named_children().keys();
  size_t index = 0;
  for (const auto& child : *net) {
    const std::string& name = names[index++];
    torch::nn::AnyModule twin = rar_twin(child.ptr());
    if (!twin.is_empty()) {
      out->push_back(name, std::move(twin));
      continue;
    }
    for_each_submodule(
        *child.ptr(), name, [&](const std::string& path, const torch::nn::Module& m) {
          if (const char* act = torch_activation_name(m, sees)) {
            TORCH_CHECK(false, fn, ": the Sequential's module '", path, "' is a ", act,
                        " inside a child module, which ", fn, " cannot switch; ", what,
                        ". Use the drop-in rar::nn activations in that child");
          }
        });
    if (const char* act = torch_activation_name(*child.ptr(), sees)) {
      TORCH_CHECK(false, fn, ": the Sequential's child '", name, "' is a ", act,
                  ", which has no rar::nn twin; ", what);
    }
    out->push_back(name, child);
  }
  // The shared children keep their own train/eval modes (a new container's flag is unused).
  return out;
}

/// Whether `net` has a direct child that is a `torch::nn` activation with a rar::nn twin.
inline bool has_torch_activation_child(const torch::nn::Sequential& net) {
  if (net.is_empty()) return false;
  for (const auto& child : *net)
    if (!rar_twin(child.ptr()).is_empty()) return true;
  return false;
}

}  // namespace detail
}  // namespace nn
}  // namespace rar
