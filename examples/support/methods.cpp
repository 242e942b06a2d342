#include <algorithm>
#include <stdexcept>

#include "support/experiment.hpp"
#include "support/names.hpp"

// The training methods: their one name table (read by `train --method`, `compare --methods`
// and every results table) and the objective each one trains.

namespace rar {
namespace examples {
namespace {

/// Each training method's command-line name and its title in the results table: `train
/// --method`, `compare --methods`, the objectives and every table read this one list.
constexpr Named<Method> kMethods[] = {{Method::natural, "natural", "NATURAL"},
                                      {Method::madry, "madry", "Madry"},
                                      {Method::ig_norm, "ig-norm", "IG-NORM"},
                                      {Method::ig_sum_norm, "ig-sum-norm", "IG-SUM-NORM"},
                                      {Method::ig_sum_norm_fast, "ig-sum-norm-fast",
                                       "IG-SUM-NORM-FAST"},
                                      {Method::input_grad, "input-grad", "INPUT-GRAD"},
                                      {Method::ssr, "ssr", "SSR"},
                                      {Method::art, "art", "ART"},
                                      {Method::alignment, "alignment", "ALIGNMENT"},
                                      {Method::distributional, "distributional", "DISTRIBUTIONAL"}};

}  // namespace

Method parse_method(const std::string& name) { return parse_name(kMethods, name, "method"); }

std::string method_name(Method method) { return table_entry(kMethods, method).name; }

std::string method_title(Method method) { return table_entry(kMethods, method).title; }

std::vector<std::string> method_names() { return table_names(kMethods); }

std::vector<Method> all_methods() {
  std::vector<Method> methods;
  for (const auto& entry : kMethods) methods.push_back(entry.value);
  return methods;
}

std::vector<Method> parse_method_list(const std::string& names) {
  std::vector<Method> methods;
  size_t begin = 0;
  while (true) {
    const size_t comma = names.find(',', begin);
    const std::string name =
        names.substr(begin, comma == std::string::npos ? std::string::npos : comma - begin);
    const Method method = parse_method(name);
    if (std::find(methods.begin(), methods.end(), method) != methods.end())
      throw std::invalid_argument("method '" + name + "' is listed twice");
    methods.push_back(method);
    if (comma == std::string::npos) break;
    begin = comma + 1;
  }
  return methods;
}

std::function<torch::Tensor(Net&, const torch::Tensor&, const torch::Tensor&)> make_objective(
    const TrainConfig& c, int64_t step) {
  const uint64_t seed = c.seed * 1000003ULL + static_cast<uint64_t>(step);
  // The term is built anew each step: `penalty_every` counts steps through first_call. Its
  // random starts then draw from the stream (seed, step % penalty_every): one per step.
  const auto phase = static_cast<uint64_t>(step % std::max<int64_t>(1, c.penalty_every));
  auto wrap = [](auto term) {
    return [term](Net& net, const torch::Tensor& x, const torch::Tensor& y) {
      return term(net, x, y);
    };
  };
  switch (c.method) {
    case Method::natural:
      return wrap(rar::cross_entropy());
    case Method::madry:
      return wrap(rar::adversarial(rar::PGDOptions()
                                       .epsilon(c.epsilon)
                                       .steps(c.attack_steps)
                                       .step_size(c.attack_step_size)
                                       .seed(seed)));
    case Method::ig_norm:
      return wrap(rar::cross_entropy() + rar::ig_norm(rar::IGNormOptions()
                                                          .epsilon(c.epsilon)
                                                          .steps(c.ig_steps)
                                                          .inner_stride(c.inner_stride)
                                                          .attack_steps(c.attack_steps)
                                                          .attack_step_size(c.attack_step_size)
                                                          .lambda(c.lambda)
                                                          .quadrature(c.quadrature)
                                                          .inner_objective(c.inner_objective)
                                                          .penalty_every(c.penalty_every)
                                                          .first_call(phase)
                                                          .seed(seed)));
    case Method::ig_sum_norm:
      return wrap(rar::ig_sum_norm(rar::IGSumNormOptions()
                                       .epsilon(c.epsilon)
                                       .steps(c.ig_steps)
                                       .inner_stride(c.inner_stride)
                                       .attack_steps(c.attack_steps)
                                       .attack_step_size(c.attack_step_size)
                                       .beta(c.beta)
                                       .quadrature(c.quadrature)
                                       .inner_objective(c.inner_objective)
                                       .penalty_every(c.penalty_every)
                                       .first_call(phase)
                                       .seed(seed)));
    case Method::ig_sum_norm_fast:
      // The recipe's levers at the preset's ball, weight and seed (docs/methods.md).
    {
      const auto fast = rar::IGSumNormOptions::fast(c.epsilon).beta(c.beta);
      return wrap(rar::ig_sum_norm(
          rar::IGSumNormOptions(fast)
              .first_call(static_cast<uint64_t>(step % fast.penalty_every()))
              .seed(seed)));
    }
    case Method::input_grad:
      return wrap(rar::cross_entropy() +
                  rar::input_gradient_norm(
                      rar::InputGradientOptions().epsilon(c.epsilon).lambda(c.lambda)));
    case Method::ssr:
      return wrap(rar::ssr(rar::SSROptions().alpha(c.ssr_alpha).scale(c.ssr_scale)));
    case Method::art:
      return wrap(rar::art(rar::ARTOptions()
                               .epsilon(c.epsilon)
                               .attack_steps(c.art_attack_steps)
                               .attack_step_size(c.art_step_fraction * c.epsilon)
                               .lambda(c.art_lambda)
                               .surrogate_beta(c.art_surrogate_beta)
                               .seed(seed)));
    case Method::alignment:
      return wrap(rar::attribution_alignment(rar::AlignmentOptions()
                                                 .epsilon(c.epsilon)
                                                 .attack_steps(c.attack_steps)
                                                 .attack_step_size(c.attack_step_size)
                                                 .lambda(c.alignment_lambda)
                                                 .ig(rar::IGOptions().steps(c.ig_steps))
                                                 .seed(seed)));
    case Method::distributional:
      return wrap(rar::distributional_ig(rar::DistributionalIGOptions()
                                             .beta(c.beta)
                                             .gamma(c.distributional_gamma)
                                             .steps(c.ig_steps)
                                             .inner_stride(c.inner_stride)
                                             .attack_steps(c.attack_steps)
                                             .attack_step_size(c.distributional_step_size)
                                             .seed(seed)));
  }
  throw std::logic_error("make_objective: unknown method");
}

}  // namespace examples
}  // namespace rar
