#include <cmath>
#include <algorithm>
#include <filesystem>
#include <iomanip>
#include <iostream>

#include "support/experiment.hpp"
#include "support/progress.hpp"

// The evaluation: NA and AA under PGD, IN and CO under the top-k attribution attack, and the
// randomization sanity check, on the first correctly classified test images.

namespace rar {
namespace examples {

namespace {

// Class indices predicted by `net`, computed in batches without a graph.
torch::Tensor predict(Net& net, const torch::Tensor& images, torch::Device device, int64_t batch) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> out;
  for (int64_t i = 0; i < images.size(0); i += batch) {
    const auto x = images.slice(0, i, std::min(images.size(0), i + batch)).to(device);
    out.push_back(net->forward(x).argmax(1).cpu());
  }
  return torch::cat(out);
}

}  // namespace

rar::AttributionAttackOptions attack_options(const EvalConfig& config) {
  return rar::AttributionAttackOptions()
      .kind(rar::AttackKind::top_k)
      .k(config.attack_k)
      .epsilon(config.epsilon)
      .step_size(config.attack_step_size)
      .iterations(config.attack_iterations)
      .measure_every(config.measure_every)
      .measure(config.attack_measure)
      .seed(config.seed);
}

torch::Tensor correctly_classified(Net& net, const Dataset& test, int64_t count,
                                   torch::Device device, int64_t batch) {
  std::vector<int64_t> picked;
  for (int64_t i = 0; i < test.size() && static_cast<int64_t>(picked.size()) < count; i += batch) {
    const int64_t end = std::min(test.size(), i + batch);
    const auto pred = predict(net, test.images.slice(0, i, end), device, batch);
    const auto ok = pred.eq(test.labels.slice(0, i, end));
    for (int64_t j = 0; j < end - i && static_cast<int64_t>(picked.size()) < count; ++j)
      if (ok[j].item<bool>()) picked.push_back(i + j);
  }
  return torch::tensor(picked, torch::kLong);
}


double evaluation_surrogate_beta(Net& net, const NetExplainer& method, const Dataset& test,
                                 const torch::Tensor& picked, const EvalConfig& c,
                                 torch::Device device, const std::string& name) {
  if (c.surrogate_beta > 0 || picked.size(0) == 0) return c.surrogate_beta;
  // One β per model, by fidelity on the images it will attack (docs/guide.md §6): the
  // surrogate must predict the model's class and share its map's top-k features.
  const auto rule = rar::SurrogateBetaOptions().k(c.eval_k);
  const auto choice = rar::choose_surrogate_beta(net, method,
                                                 test.images.index_select(0, picked).to(device),
                                                 test.labels.index_select(0, picked).to(device), rule);
  std::cout << "  [" << name << "] surrogate beta " << choice.beta << " (class agreement "
            << percent(choice.agreement) << ", top-" << c.eval_k << " map agreement "
            << (std::isnan(choice.map_agreement) ? std::string("not measured")
                                                 : percent(choice.map_agreement))
            << " on " << picked.size(0) << " images"
            << (choice.reached ? ""
                               : ", below " + percent(rule.threshold()) + " / " +
                                     percent(rule.map_threshold()) + " at the largest beta")
            << ")" << std::endl;
  return choice.beta;
}

EvalResult evaluate(Net& net, const Dataset& test, const EvalConfig& c, torch::Device device,
                    const std::string& name) {
  const auto method = make_explainer(explainer_config(c), net->config());  // checks it first
  net->to(device);
  net->eval();
  EvalResult r;
  r.name = name;
  const auto start = Clock::now();
  // NA and AA on the first `accuracy_images` test images.
  const int64_t count =
      c.accuracy_images > 0 ? std::min(c.accuracy_images, test.size()) : test.size();
  int64_t natural = 0, adversarial = 0;
  for (int64_t i = 0; i < count; i += c.batch_size) {
    const int64_t end = std::min(count, i + c.batch_size);
    const auto x = test.images.slice(0, i, end).to(device);
    const auto y = test.labels.slice(0, i, end).to(device);
    const auto x_adv = rar::pgd_attack(net, x, y,
                                       rar::PGDOptions()
                                           .epsilon(c.epsilon)
                                           .steps(c.pgd_steps)
                                           .step_size(c.pgd_step_size)
                                           .seed(c.seed + static_cast<uint64_t>(i)));
    torch::NoGradGuard no_grad;
    natural += net->forward(x).argmax(1).eq(y).sum().item<int64_t>();
    adversarial += net->forward(x_adv).argmax(1).eq(y).sum().item<int64_t>();
    std::cout << "  [" << name << "] NA/AA " << end << "/" << count << " images, "
              << format_duration(seconds_since(start)) << "\r" << std::flush;
  }
  std::cout << std::endl;
  r.accuracy_images = count;
  r.natural_accuracy = static_cast<double>(natural) / static_cast<double>(count);
  r.adversarial_accuracy = static_cast<double>(adversarial) / static_cast<double>(count);

  // IN and CO under the top-k attack on correctly classified images, batched.
  const auto picked = correctly_classified(net, test, c.attack_images, device, c.batch_size);
  const double beta = evaluation_surrogate_beta(net, method, test, picked, c, device, name);
  r.surrogate_beta = beta;
  auto surrogate = rar::smooth_surrogate(net, beta > 0 ? beta : 10.0);
  double in_sum = 0, co_sum = 0, in_sq = 0, co_sq = 0, kept = 0, agree = 0;
  double infidelity = 0, deletion = 0, insertion = 0, sparseness = 0, complexity = 0;
  double lens_recall = 0, lens_precision = 0, certified = 0;
  double faithful = 0, lipschitz = 0, stability = 0;
  const auto attack_start = Clock::now();
  for (int64_t i = 0; i < picked.size(0); i += c.batch_size) {
    const auto idx = picked.slice(0, i, std::min(picked.size(0), i + c.batch_size));
    const auto x = test.images.index_select(0, idx).to(device);
    const auto y = test.labels.index_select(0, idx).to(device);
    auto opts = attack_options(c);
    opts.seed(c.seed + static_cast<uint64_t>(i));
    const auto result = rar::attribution_attack(net, surrogate, method, x, y, opts);
    if (i == 0 && c.strength_images > 0) {
      // Is the attack stronger than random noise? On the first images, at the same budget.
      const int64_t s = std::min<int64_t>(c.strength_images, idx.size(0));
      rar::AttackResult head;
      for (auto [to, from] : {std::pair{&head.adversarial, &result.adversarial},
                              {&head.original_map, &result.original_map},
                              {&head.adversarial_map, &result.adversarial_map},
                              {&head.topk_intersection, &result.topk_intersection},
                              {&head.kendall_tau, &result.kendall_tau},
                              {&head.prediction_kept, &result.prediction_kept},
                              {&head.improved, &result.improved},
                              {&head.surrogate_agreement, &result.surrogate_agreement}})
        *to = from->slice(0, 0, s);
      // A weak attack also warns here; the verdict is printed with the table.
      r.strength = rar::attack_strength(net, method, x.slice(0, 0, s), y.slice(0, 0, s), head,
                                        rar::AttributionAttackOptions(opts).k(c.eval_k));
    }
    const torch::Tensor in =
        rar::topk_intersection(result.original_map, result.adversarial_map, c.eval_k)
            .to(torch::kDouble);
    const torch::Tensor co = result.kendall_tau.nan_to_num(0.0).to(torch::kDouble);
    in_sum += in.sum().item<double>();
    co_sum += co.sum().item<double>();
    in_sq += in.square().sum().item<double>();
    co_sq += co.square().sum().item<double>();
    kept += result.prediction_kept.to(torch::kDouble).sum().item<double>();
    agree += result.surrogate_agreement.to(torch::kDouble).sum().item<double>();
    if (c.metrics) {
      // The clean maps' quality, on the same images (the maps the attack started from).
      const torch::Tensor attr = method(net, x, y, false).detach();
      infidelity += rar::infidelity(net, x, attr,
                                    rar::InfidelityOptions().target(y).normalize(true).seed(c.seed))
                        .sum()
                        .item<double>();
      const int64_t pixels = x.size(-1) * x.size(-2);
      const auto curve = rar::PerturbationCurveOptions()
                             .target(y)
                             .abs(true)
                             .group_channels(true)
                             .features_per_step(std::max<int64_t>(1, pixels / 16));
      deletion += rar::deletion_curve(net, x, attr, curve).auc.sum().item<double>();
      insertion += rar::insertion_curve(net, x, attr, curve).auc.sum().item<double>();
      sparseness += rar::sparseness(attr).nan_to_num(0.0).sum().item<double>();
      complexity += rar::complexity(attr).nan_to_num(0.0).sum().item<double>();
      // Robustness beyond IN/CO: locality-aware overlap of the attacked maps, and the radius
      // within which a smoothed map's top-k is certified.
      const int64_t b = x.size(0), h = x.size(-2), w = x.size(-1);
      if (result.original_map.numel() == b * h * w) {
        const auto l = rar::lens(result.original_map.reshape({b, h, w}),
                                 result.adversarial_map.reshape({b, h, w}),
                                 rar::LensOptions().k(std::min(c.eval_k, h * w)).window(1));
        lens_recall += l.recall.sum().item<double>();
        lens_precision += l.precision.sum().item<double>();
      }
      const auto certificate = rar::certified_topk(
          net, rar::explain::saliency(), x,
          rar::CertifiedTopKOptions()
              .k(std::min(c.eval_k, x[0].numel() - 1))
              .sigma(0.1)
              .samples(200)
              .overlap(0.5)
              .alpha(0.001)
              .target(y)
              .batch_samples(50)
              .seed(c.seed + static_cast<uint64_t>(i)));
      certified += certificate.radius.sum().item<double>();
      // Quantus' faithfulness and robustness of the measured maps (NaN samples count as 0).
      const uint64_t seed = c.seed + static_cast<uint64_t>(i);
      faithful += rar::faithfulness_correlation(
                      net, x, attr,
                      rar::FaithfulnessCorrelationOptions()
                          .nr_runs(20)
                          .subset_size(std::max<int64_t>(1, x[0].numel() / 8))
                          .target(y)
                          .seed(seed))
                      .nan_to_num(0.0)
                      .sum()
                      .item<double>();
      lipschitz += rar::local_lipschitz_estimate(
                       net, method, x,
                       rar::LocalLipschitzOptions().nr_samples(10).target(y).seed(seed))
                       .nan_to_num(0.0)
                       .sum()
                       .item<double>();
      stability += rar::relative_input_stability(
                       net, method, x,
                       rar::RelativeStabilityOptions()
                           .nr_samples(10)
                           .prediction_change(rar::PredictionChange::skip)
                           .target(y)
                           .seed(seed))
                       .nan_to_num(0.0)
                       .sum()
                       .item<double>();
    }
    const double done = static_cast<double>(i + idx.size(0));
    const double elapsed = seconds_since(attack_start);
    std::cout << "  [" << name << "] attribution attack " << i + idx.size(0) << "/"
              << picked.size(0) << " images, " << format_duration(elapsed) << ", eta "
              << format_duration(elapsed / done * (static_cast<double>(picked.size(0)) - done))
              << std::endl;
  }
  r.attacked_images = picked.size(0);
  const double attacked = std::max<double>(1.0, static_cast<double>(r.attacked_images));
  r.topk_intersection = in_sum / attacked;
  r.kendall = co_sum / attacked;
  if (r.attacked_images > 1) {
    // Standard error of the mean: sqrt(sample variance / n).
    const double n = static_cast<double>(r.attacked_images);
    const auto se = [n](double sum, double sq) {
      return std::sqrt(std::max(0.0, (sq - sum * sum / n) / (n - 1)) / n);
    };
    r.topk_intersection_se = se(in_sum, in_sq);
    r.kendall_se = se(co_sum, co_sq);
  }
  r.prediction_kept = kept / attacked;
  if (r.attacked_images > 0) r.surrogate_agreement = agree / attacked;
  if (c.metrics && r.attacked_images > 0) {
    r.infidelity = infidelity / attacked;
    r.deletion_auc = deletion / attacked;
    r.insertion_auc = insertion / attacked;
    r.sparseness = sparseness / attacked;
    r.complexity = complexity / attacked;
    r.lens_recall = lens_recall / attacked;
    r.lens_precision = lens_precision / attacked;
    r.certified_radius = certified / attacked;
    r.faithfulness_correlation = faithful / attacked;
    r.local_lipschitz = lipschitz / attacked;
    r.relative_input_stability = stability / attacked;
  }
  return r;
}

void sanity_check(Net& net, const Dataset& test, const EvalConfig& c, torch::Device device,
                  int64_t count) {
  net->to(device);
  net->eval();
  const auto picked = correctly_classified(net, test, count, device, c.batch_size);
  const auto x = test.images.index_select(0, picked).to(device);
  const auto y = test.labels.index_select(0, picked).to(device);
  const auto method = make_explainer(explainer_config(c), net->config());
  const auto steps = rar::parameter_randomization_test(
      net, method, x, y, rar::RandomizationOptions().k(c.eval_k).seed(c.seed));
  std::cout << "model-parameter randomization (cascading, from the output down) of the "
            << explainer_title(c.explainer) << " maps on " << picked.size(0) << " images:\n"
            << std::left << std::setw(22) << "randomized up to" << std::right << std::setw(10)
            << "Spearman" << std::setw(12) << ("top-" + std::to_string(c.eval_k)) << "\n";
  for (const auto& s : steps)
    std::cout << std::left << std::setw(22) << (s.layer.empty() ? "(trained model)" : s.layer)
              << std::right << std::fixed << std::setprecision(4) << std::setw(10) << s.spearman
              << std::setw(12) << s.topk_intersection << "\n";
  std::cout.unsetf(std::ios::floatfield);
  std::cout << "maps that stay similar after randomization do not reflect what the model learned"
            << std::endl;
}

}  // namespace examples
}  // namespace rar
