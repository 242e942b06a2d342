#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <stdexcept>

#include "support/experiment.hpp"

// The results table on the console and in CSV and JSON files.

namespace rar {
namespace examples {

void report(const std::vector<EvalResult>& results, const std::string& prefix) {
  std::cout << "\n"
            << std::left << std::setw(18) << "model" << std::right << std::setw(9) << "NA"
            << std::setw(9) << "AA" << std::setw(9) << "IN" << std::setw(8) << "±SE"
            << std::setw(9) << "CO" << std::setw(9) << "±SE" << "\n";
  for (const auto& r : results) {
    std::cout << std::left << std::setw(18) << r.name << std::right << std::fixed
              << std::setprecision(2) << std::setw(8) << 100 * r.natural_accuracy << "%"
              << std::setw(8) << 100 * r.adversarial_accuracy << "%" << std::setw(8)
              << 100 * r.topk_intersection << "%" << std::setw(7) << 100 * r.topk_intersection_se
              << std::setprecision(4) << std::setw(9) << r.kendall << std::setw(9) << r.kendall_se
              << "\n";
  }
  std::cout.unsetf(std::ios::floatfield);
  const bool metrics = !results.empty() && std::isfinite(results[0].deletion_auc);
  if (metrics) {
    std::cout << "\n"
              << std::left << std::setw(18) << "model" << std::right << std::setw(12) << "infidelity"
              << std::setw(11) << "deletion" << std::setw(11) << "insertion" << std::setw(12)
              << "sparseness" << std::setw(12) << "complexity" << "\n";
    for (const auto& r : results)
      std::cout << std::left << std::setw(18) << r.name << std::right << std::setprecision(4)
                << std::setw(12) << r.infidelity << std::setw(11) << r.deletion_auc << std::setw(11)
                << r.insertion_auc << std::setw(12) << r.sparseness << std::setw(12) << r.complexity
                << "\n";
    std::cout << "(the clean maps on the attacked images: infidelity (normalized, lower is better), "
                 "deletion AUC (lower is better), insertion AUC (higher is better) of the softmax "
                 "probability, sparseness (Gini) and complexity (entropy))\n";
    std::cout << "\n"
              << std::left << std::setw(18) << "model" << std::right << std::setw(13)
              << "LENS-recall" << std::setw(16) << "LENS-precision" << std::setw(18)
              << "certified radius" << std::setw(14) << "faithfulness" << std::setw(11)
              << "Lipschitz" << std::setw(6) << "RIS" << "\n";
    for (const auto& r : results)
      std::cout << std::left << std::setw(18) << r.name << std::right << std::setprecision(4)
                << std::setw(13) << r.lens_recall << std::setw(16) << r.lens_precision
                << std::setw(18) << r.certified_radius << std::setw(14)
                << r.faithfulness_correlation << std::setw(11) << r.local_lipschitz << std::setw(10)
                << r.relative_input_stability << "\n";
    std::cout << "(robustness beyond IN/CO: LENS recall and precision of the attacked maps (top-k "
                 "with a 3 x 3 neighbourhood, higher is more robust); the mean l2 radius within "
                 "which half of a smoothed gradient map's top-k is certified (sigma 0.1, 200 "
                 "samples; higher is more robust); Quantus' faithfulness correlation (higher is "
                 "more faithful), local Lipschitz estimate and relative input stability (lower "
                 "is more stable) of the clean maps)\n";
  }
  for (const auto& r : results)
    if (std::isfinite(r.surrogate_agreement))
      std::cout << "surrogate agreement " << r.name << " (beta " << std::defaultfloat << std::setprecision(6)
                << r.surrogate_beta << "): " << std::setprecision(1) << std::fixed
                << 100 * r.surrogate_agreement << "% of the attacked images"
                << (r.surrogate_agreement < rar::SurrogateBetaOptions().threshold()
                        ? " (below " + percent(rar::SurrogateBetaOptions().threshold()) +
                              ": the attack may be weak; raise the surrogate's beta)"
                        : std::string())
                << "\n";
  for (const auto& r : results)
    if (r.strength.samples > 0)
      std::cout << "attack strength " << r.name << " on " << r.strength.samples
                << " images: IN " << std::setprecision(1) << std::fixed
                << 100 * r.strength.attack_topk_intersection << "% vs random-sign "
                << 100 * r.strength.random_topk_intersection << "%, CO " << std::setprecision(4)
                << r.strength.attack_kendall << " vs " << r.strength.random_kendall
                << (r.strength.stronger ? " (stronger)"
                               : " (NOT stronger: the IN/CO above understate the maps' fragility; "
                                 "check the surrogate's agreement and the attack's iterations)")
                << "\n";
  std::cout.unsetf(std::ios::floatfield);
  std::cout << "(NA/AA on " << (results.empty() ? 0 : results[0].accuracy_images)
            << " test images; IN/CO under the top-k attack on "
            << (results.empty() ? 0 : results[0].attacked_images)
            << " correctly classified ones; ±SE: standard error of the mean over those images)\n";
  if (prefix.empty()) return;
  std::ofstream csv(prefix + ".csv"), json(prefix + ".json");
  if (!csv || !json) throw std::runtime_error(prefix + ".csv/.json: cannot write the results");
  csv << "model,NA,AA,IN,CO,IN_se,CO_se,accuracy_images,attacked_images,prediction_kept,surrogate_beta,surrogate_agreement,"
         "infidelity,deletion_auc,insertion_auc,sparseness,complexity,strength_images,strength_IN,"
         "strength_CO,random_sign_IN,random_sign_CO,lens_recall,lens_precision,certified_radius,"
         "faithfulness_correlation,local_lipschitz,relative_input_stability\n";
  // Model names come from the command line (--model NAME=...): quoted in both files.
  json << "[\n";
  for (size_t i = 0; i < results.size(); ++i) {
    const auto& r = results[i];
    csv << csv_quote(r.name) << "," << csv_number(r.natural_accuracy) << ","
        << csv_number(r.adversarial_accuracy) << "," << csv_number(r.topk_intersection) << ","
        << csv_number(r.kendall) << "," << csv_number(r.topk_intersection_se) << ","
        << csv_number(r.kendall_se) << "," << r.accuracy_images << "," << r.attacked_images << ","
        << csv_number(r.prediction_kept) << "," << csv_number(r.surrogate_beta) << ","
        << csv_number(r.surrogate_agreement) << ","
        << csv_number(r.infidelity) << "," << csv_number(r.deletion_auc) << ","
        << csv_number(r.insertion_auc) << "," << csv_number(r.sparseness) << ","
        << csv_number(r.complexity) << "," << r.strength.samples << ","
        << csv_number(r.strength.attack_topk_intersection) << "," << csv_number(r.strength.attack_kendall) << ","
        << csv_number(r.strength.random_topk_intersection) << "," << csv_number(r.strength.random_kendall) << ","
        << csv_number(r.lens_recall) << "," << csv_number(r.lens_precision) << ","
        << csv_number(r.certified_radius) << "," << csv_number(r.faithfulness_correlation) << ","
        << csv_number(r.local_lipschitz) << "," << csv_number(r.relative_input_stability) << "\n";
    json << "  {\"model\": " << json_quote(r.name) << ", \"NA\": " << json_number(r.natural_accuracy)
         << ", \"AA\": " << json_number(r.adversarial_accuracy)
         << ", \"IN\": " << json_number(r.topk_intersection)
         << ", \"CO\": " << json_number(r.kendall)
         << ", \"IN_se\": " << json_number(r.topk_intersection_se)
         << ", \"CO_se\": " << json_number(r.kendall_se) << ", \"accuracy_images\": " << r.accuracy_images
         << ", \"attacked_images\": " << r.attacked_images
         << ", \"prediction_kept\": " << json_number(r.prediction_kept)
         << ", \"surrogate_beta\": " << json_number(r.surrogate_beta)
         << ", \"surrogate_agreement\": " << json_number(r.surrogate_agreement)
         << ", \"infidelity\": " << json_number(r.infidelity)
         << ", \"deletion_auc\": " << json_number(r.deletion_auc)
         << ", \"insertion_auc\": " << json_number(r.insertion_auc)
         << ", \"sparseness\": " << json_number(r.sparseness)
         << ", \"complexity\": " << json_number(r.complexity)
         << ", \"strength_images\": " << r.strength.samples
         << ", \"strength_IN\": " << json_number(r.strength.attack_topk_intersection)
         << ", \"strength_CO\": " << json_number(r.strength.attack_kendall)
         << ", \"random_sign_IN\": " << json_number(r.strength.random_topk_intersection)
         << ", \"random_sign_CO\": " << json_number(r.strength.random_kendall)
         << ", \"lens_recall\": " << json_number(r.lens_recall)
         << ", \"lens_precision\": " << json_number(r.lens_precision)
         << ", \"certified_radius\": " << json_number(r.certified_radius)
         << ", \"faithfulness_correlation\": " << json_number(r.faithfulness_correlation)
         << ", \"local_lipschitz\": " << json_number(r.local_lipschitz)
         << ", \"relative_input_stability\": " << json_number(r.relative_input_stability) << "}"
         << (i + 1 < results.size() ? "," : "") << "\n";
  }
  json << "]\n";
}

std::string csv_quote(const std::string& text) {
  std::string out = "\"";
  for (const char ch : text) out += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return out + "\"";
}

std::string json_quote(const std::string& text) {
  std::string out = "\"";
  for (const char ch : text) {
    const auto u = static_cast<unsigned char>(ch);
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (u < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", u);
      out += escaped;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

namespace {
std::string shortest(double value) {
  char text[32];
  for (int digits = 6; digits <= 17; ++digits) {  // the fewest digits that read back exactly
    std::snprintf(text, sizeof text, "%.*g", digits, value);
    if (std::strtod(text, nullptr) == value) break;
  }
  return text;
}
}  // namespace

std::string json_number(double value) { return std::isfinite(value) ? shortest(value) : "null"; }

std::string percent(double fraction) {
  std::ostringstream out;
  out << std::setprecision(6) << 100 * fraction << "%";
  return out.str();
}

std::string csv_number(double value) { return std::isfinite(value) ? shortest(value) : ""; }

}  // namespace examples
}  // namespace rar
