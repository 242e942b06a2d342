#pragma once
/// @file
/// One way to call every kind of model: module holders, modules, shared pointers and callables.

#include <torch/torch.h>

#include <exception>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace rar {
namespace detail {

template <class T>
inline constexpr bool always_false_v = false;

template <class T>
inline constexpr bool is_module_holder_v =
    std::is_base_of_v<torch::detail::ModuleHolderIndicator, std::decay_t<T>>;

template <class T>
struct is_shared_ptr : std::false_type {};
template <class T>
struct is_shared_ptr<std::shared_ptr<T>> : std::true_type {};

template <class M, class = void>
struct has_tensor_forward : std::false_type {};
template <class M>
struct has_tensor_forward<
    M, std::void_t<decltype(std::declval<M&>().forward(std::declval<const torch::Tensor&>()))>>
    : std::true_type {};

template <class T>
struct shared_ptr_to_module : std::false_type {};
template <class T>
struct shared_ptr_to_module<std::shared_ptr<T>> : has_tensor_forward<T> {};

template <class M, class = void>
struct has_parameters : std::false_type {};
template <class M>
struct has_parameters<M, std::void_t<decltype(std::declval<const M&>().parameters())>>
    : std::true_type {};

/// The parameters of a model, when it has any that rar can see: a module (holder, shared
/// pointer or object), or any type with a `parameters()` member (`rar::ScriptModel`, a smooth
/// surrogate); empty for plain callables.
template <class M>
std::vector<torch::Tensor> model_parameters(const M& model) {
  using D = std::decay_t<M>;
  if constexpr (is_module_holder_v<D>) {
    return model.is_empty() ? std::vector<torch::Tensor>{} : model->parameters();
  } else if constexpr (is_shared_ptr<D>::value) {
    if constexpr (std::is_base_of_v<torch::nn::Module, typename D::element_type>)
      return model ? model->parameters() : std::vector<torch::Tensor>{};
    else
      return {};
  } else if constexpr (has_parameters<D>::value) {
    std::vector<torch::Tensor> out;
    for (const torch::Tensor& p : model.parameters()) out.push_back(p);
    return out;
  } else {
    return {};
  }
}

}  // namespace detail

/// True when `M` can be used as a model: a module holder (`torch::nn::Sequential`,
/// `torch::nn::Linear`, a `TORCH_MODULE` of the user's), a module or `std::shared_ptr` to one
/// with `forward(Tensor)`, or any callable `torch::Tensor(const torch::Tensor&)`.
///
/// Example:
/// @code
/// static_assert(rar::is_model_v<torch::nn::Sequential>);
/// auto lambda = [](const torch::Tensor& x) { return x.sum(1, true); };
/// static_assert(rar::is_model_v<decltype(lambda)>);
/// @endcode
template <class M>
inline constexpr bool is_model_v =
    detail::is_module_holder_v<M> ||
    detail::shared_ptr_to_module<std::decay_t<M>>::value ||
    detail::has_tensor_forward<std::decay_t<M>>::value ||
    std::is_invocable_r_v<torch::Tensor, M&, const torch::Tensor&>;

/// Calls `model` on `input`, whatever kind of model it is.
///
/// `torch::nn::Sequential::operator()` returns void (its `forward` is a template), so
/// module holders and shared pointers are called through `->forward(x)`; modules through
/// `.forward(x)`; everything else through `model(x)`. Every rar function calls models through
/// this one helper; use it in your own terms and explainers too.
///
/// Example:
/// @code
/// torch::nn::Sequential net(torch::nn::Linear(4, 3));
/// torch::Tensor logits = rar::call_model(net, torch::rand({2, 4}));  // net(x) does not compile
/// @endcode
/// @param model a module holder, module, `std::shared_ptr` to a module, or callable
///        `torch::Tensor(const torch::Tensor&)`
/// @param input the batch to evaluate
/// @return the model's output
template <class M>
torch::Tensor call_model(M&& model, const torch::Tensor& input) {
  using D = std::decay_t<M>;
  if constexpr (detail::is_module_holder_v<D>) {
    // ptr() also works on a const holder, whose operator-> would hide a non-const forward.
    return model.ptr()->forward(input);
  } else if constexpr (detail::is_shared_ptr<D>::value) {
    static_assert(detail::has_tensor_forward<typename D::element_type>::value,
                  "rar: a std::shared_ptr model must point to a module with "
                  "torch::Tensor forward(const torch::Tensor&)");
    return model->forward(input);
  } else if constexpr (detail::has_tensor_forward<D>::value) {
    return model.forward(input);
  } else if constexpr (std::is_invocable_r_v<torch::Tensor, M&, const torch::Tensor&>) {
    return model(input);
  } else {
    static_assert(detail::always_false_v<M>,
                  "rar: a model must be a torch::nn module holder (e.g. torch::nn::Sequential), "
                  "a module with torch::Tensor forward(const torch::Tensor&), or a callable "
                  "torch::Tensor(const torch::Tensor&)");
    return {};
  }
}

namespace detail {

/// Compile-time check used at every public entry point that takes a model.
template <class M>
constexpr void static_check_model() {
  static_assert(is_model_v<M>,
                "rar: a model must be a torch::nn module holder (e.g. torch::nn::Sequential), "
                "a module with torch::Tensor forward(const torch::Tensor&), or a callable "
                "torch::Tensor(const torch::Tensor&)");
}

/// The first non-empty line of an error text (LibTorch's messages carry backtraces).
inline std::string first_error_line(const std::string& text) {
  const size_t begin = text.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return text;
  return text.substr(begin, text.find('\n', begin) - begin);
}

/// Raises, in the caller's terms, the error of a model (or score) that failed on an internal
/// batch built from `input` (path points, perturbed copies): LibTorch's message names the
/// internal batch's shape (e.g. `[128, 1, 28, 28]` for 8 images × 16 steps), which the user never
/// made. The model is called once more on the user's own input to say what is wrong there:
/// it fails on the input itself, or it does not return one row of logits per sample, or only the
/// internal batch (`batch`, e.g. "a batch of 128 path points (8 samples x 16 steps)") fails.
template <class Model>
[[noreturn]] void rethrow_in_user_terms(const char* fn, Model& model, const torch::Tensor& input,
                                        const std::string& batch, const std::exception& error) {
  const std::string what = first_error_line(error.what());
  torch::Tensor out;
  try {
    torch::NoGradGuard no_grad;
    out = call_model(model, input.detach());
  } catch (const std::exception& own) {
    TORCH_CHECK(false, fn, ": the model fails on the input itself (shape ", input.sizes(),
                "): ", first_error_line(own.what()));
  }
  TORCH_CHECK(out.dim() == 2 && out.size(0) == input.size(0), fn,
              ": the model must return one row of scores per sample, [N, classes]; for the input "
              "of shape ", input.sizes(), " (N = ", input.size(0), ") it returns shape ",
              out.sizes());
  TORCH_CHECK(false, fn, ": the model runs on the input of shape ", input.sizes(),
              " but fails on ", batch, ": ", what);
}

}  // namespace detail
}  // namespace rar
