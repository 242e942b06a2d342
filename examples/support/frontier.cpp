#include "support/frontier.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <limits>
#include <sstream>
#include <stdexcept>

#include "support/compare.hpp"
#include "support/plot.hpp"

// Robustness against training time: snapshots at budgets, each evaluated like `eval`.

namespace rar {
namespace examples {
namespace {

constexpr const char* kStateHeader = "rar-frontier-state 1";

// A number as the default stream writes it (60, 0.05), whatever state std::cout was left in.
std::string budget_text(double budget) {
  std::ostringstream out;
  out << budget;
  return out.str();
}

std::string checkpoint_path(const std::string& prefix, Method method) {
  return prefix + "." + method_name(method) + ".pt";
}

std::string snapshot_path(const std::string& prefix, Method method, double budget) {
  return prefix + "." + method_name(method) + "." + budget_text(budget) + "s.pt";
}

const FrontierRow* find_row(const std::vector<FrontierRow>& rows, Method method, double budget) {
  for (const auto& row : rows)
    if (row.method == method && row.budget == budget) return &row;
  return nullptr;
}

// Trains `method` to the last budget, saving a snapshot whenever the training time first passes
// a budget that has none yet (before the step's checkpoint, so a resumed run misses none).
void train_with_snapshots(const std::function<TrainConfig(Method)>& train_config,
                          const Dataset& data, const FrontierConfig& config, Method method,
                          torch::Device device) {
  size_t next = 0;
  while (next < config.budgets.size() &&
         std::filesystem::exists(snapshot_path(config.prefix, method, config.budgets[next])))
    ++next;
  const std::string title = method_title(method);
  if (next == config.budgets.size()) {
    std::cout << "[" << title << "] every snapshot exists: not trained again" << std::endl;
    return;
  }
  TrainConfig tc = train_config(method);
  tc.method = method;
  tc.max_seconds = config.budgets.back();
  tc.max_steps = std::numeric_limits<int64_t>::max();
  tc.checkpoint_every = 0;
  tc.checkpoint_seconds = config.checkpoint_seconds;
  tc.net.classes = data.classes;
  torch::manual_seed(tc.seed);
  Net net(tc.net);
  auto snapshot = [&](Net& trained, const TrainProgress& progress) {
    while (next < config.budgets.size() && progress.seconds >= config.budgets[next]) {
      const double budget = config.budgets[next];
      save_checkpoint(snapshot_path(config.prefix, method, budget), trained, nullptr,
                      progress.steps, &progress);
      std::cout << "[" << title << "] snapshot at " << budget_text(budget)
                << " s: step " << progress.steps << std::endl;
      ++next;
    }
  };
  const TrainProgress done = train(net, data, tc, device, checkpoint_path(config.prefix, method),
                                   config.resume, snapshot);
  // A checkpoint already past the last budget trains no step: its snapshots are taken now.
  snapshot(net, done);
}

}  // namespace

std::vector<double> parse_budgets(const std::string& text) {
  std::vector<double> budgets;
  size_t begin = 0;
  while (true) {
    const size_t comma = text.find(',', begin);
    const std::string item =
        text.substr(begin, comma == std::string::npos ? std::string::npos : comma - begin);
    double value = 0;
    size_t used = 0;
    try {
      value = std::stod(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size() || !std::isfinite(value))
      throw std::invalid_argument("--budgets: '" + item + "' is not a number of seconds");
    if (value <= 0)
      throw std::invalid_argument("--budgets: budgets must be > 0 seconds, got " + item);
    if (!budgets.empty() && value <= budgets.back())
      throw std::invalid_argument("--budgets: budgets must increase, got " + item + " after " +
                                  budget_text(budgets.back()));
    budgets.push_back(value);
    if (comma == std::string::npos) break;
    begin = comma + 1;
  }
  return budgets;
}

void write_frontier_state(const std::string& path, const std::string& settings,
                          const std::vector<FrontierRow>& rows) {
  std::ostringstream out;
  out << kStateHeader << "\n" << "settings\t" << settings << "\n" << std::setprecision(17);
  for (const auto& r : rows) {
    const EvalResult& e = r.eval;
    out << "row\t" << method_name(r.method) << "\t" << r.budget << "\t" << r.steps << "\t"
        << r.train_seconds << "\t" << r.cpu_seconds << "\t" << e.natural_accuracy << "\t"
        << e.adversarial_accuracy << "\t" << e.topk_intersection << "\t"
        << e.topk_intersection_se << "\t" << e.kendall << "\t" << e.kendall_se << "\t"
        << e.surrogate_beta << "\t" << e.surrogate_agreement << "\t" << e.accuracy_images << "\t"
        << e.attacked_images << "\t" << e.prediction_kept << "\t" << e.strength.samples << "\t"
        << e.strength.attack_topk_intersection << "\t" << e.strength.random_topk_intersection
        << "\t" << e.strength.stronger << "\n";
  }
  write_atomically(path, out.str());
}

std::vector<FrontierRow> read_frontier_state(const std::string& path,
                                             const std::string& settings) {
  std::ifstream in = open_state_file(path, kStateHeader, "frontier", "a frontier run", settings);
  std::string line;
  // Numbers as written (NaN included, which operator>> does not read).
  auto number = [](std::istream& fields) {
    std::string text;
    std::getline(fields, text, '\t');
    size_t used = 0;
    const double v = std::stod(text, &used);
    if (used != text.size()) throw std::invalid_argument(text);
    return v;
  };
  std::vector<FrontierRow> rows;
  for (int line_number = 3; std::getline(in, line); ++line_number) {
    if (line.empty()) continue;
    std::istringstream fields(line);
    std::string tag, name;
    std::getline(fields, tag, '\t');
    std::getline(fields, name, '\t');
    FrontierRow r;
    EvalResult& e = r.eval;
    try {
      if (tag != "row") throw std::invalid_argument(tag);
      r.method = parse_method(name);
      r.budget = number(fields);
      r.steps = static_cast<int64_t>(number(fields));
      r.train_seconds = number(fields);
      r.cpu_seconds = number(fields);
      e.natural_accuracy = number(fields);
      e.adversarial_accuracy = number(fields);
      e.topk_intersection = number(fields);
      e.topk_intersection_se = number(fields);
      e.kendall = number(fields);
      e.kendall_se = number(fields);
      e.surrogate_beta = number(fields);
      e.surrogate_agreement = number(fields);
      e.accuracy_images = static_cast<int64_t>(number(fields));
      e.attacked_images = static_cast<int64_t>(number(fields));
      e.prediction_kept = number(fields);
      e.strength.samples = static_cast<int64_t>(number(fields));
      e.strength.attack_topk_intersection = number(fields);
      e.strength.random_topk_intersection = number(fields);
      e.strength.stronger = number(fields) != 0;
      if (!fields.eof()) throw std::invalid_argument("extra fields");
    } catch (const std::exception&) {
      throw std::runtime_error(path + ": line " + std::to_string(line_number) +
                               " is not a frontier row");
    }
    e.name = method_title(r.method);
    rows.push_back(r);
  }
  return rows;
}

std::vector<FrontierRow> frontier(const std::function<TrainConfig(Method)>& train_config,
                                  const Dataset& data, const Dataset& test, const EvalConfig& eval,
                                  const FrontierConfig& config, torch::Device device) {
  if (config.methods.empty()) throw std::invalid_argument("frontier: no methods selected");
  if (config.budgets.empty()) throw std::invalid_argument("frontier: no budgets");
  const std::string state_path = config.prefix + ".state";
  const std::filesystem::path parent = std::filesystem::path(config.prefix).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  std::vector<FrontierRow> finished;
  if (config.resume && std::filesystem::exists(state_path)) {
    finished = read_frontier_state(state_path, config.settings);
  } else if (config.resume) {
    // Killed before the first evaluation was saved: the snapshots and checkpoints stay.
    write_frontier_state(state_path, config.settings, finished);
  } else {
    // A fresh run: snapshots of an earlier run must not stand in for this one's.
    for (const Method method : config.methods) {
      std::filesystem::remove(checkpoint_path(config.prefix, method));
      for (const double budget : config.budgets)
        std::filesystem::remove(snapshot_path(config.prefix, method, budget));
    }
    write_frontier_state(state_path, config.settings, finished);
  }
  if (!config.banner.empty()) std::cout << config.banner << std::endl;

  std::vector<FrontierRow> rows;
  const size_t count = config.methods.size();
  for (size_t i = 0; i < count; ++i) {
    const Method method = config.methods[i];
    const std::string title = method_title(method);
    bool all_done = true;
    for (const double budget : config.budgets)
      all_done = all_done && find_row(finished, method, budget) != nullptr;
    std::cout << "\n== " << i + 1 << "/" << count << ": " << title;
    if (all_done) {
      std::cout << " evaluated in an earlier run: skipped" << std::endl;
    } else {
      std::cout << ", snapshots at";
      for (const double budget : config.budgets) std::cout << " " << budget_text(budget);
      std::cout << " s of training ==" << std::endl;
      train_with_snapshots(train_config, data, config, method, device);
    }
    for (const double budget : config.budgets) {
      if (const FrontierRow* done = find_row(finished, method, budget)) {
        rows.push_back(*done);
        continue;
      }
      const std::string path = snapshot_path(config.prefix, method, budget);
      Net net = load_model(path);
      TrainProgress at;
      load_checkpoint(path, net, nullptr, &at);
      FrontierRow row;
      row.method = method;
      row.budget = budget;
      row.steps = at.steps;
      row.train_seconds = at.seconds;
      row.cpu_seconds = at.cpu_seconds;
      std::cout << "[" << title << "] evaluating the " << budget_text(budget) << " s snapshot ("
                << row.steps << " steps)" << std::endl;
      row.eval = evaluate(net, test, eval, device, title);
      rows.push_back(row);
      finished.push_back(row);
      write_frontier_state(state_path, config.settings, finished);
    }
    report_frontier(rows, config.prefix, config.title);
  }
  return rows;
}

void report_frontier(const std::vector<FrontierRow>& rows, const std::string& prefix,
                     const std::string& title) {
  std::cout << "\n"
            << std::left << std::setw(16) << "method" << std::right << std::setw(8) << "budget"
            << std::setw(8) << "steps" << std::setw(9) << "NA" << std::setw(9) << "AA"
            << std::setw(9) << "IN" << std::setw(7) << "±SE" << std::setw(8) << "CO"
            << std::setw(8) << "±SE" << std::setw(7) << "beta" << "\n";
  for (const auto& r : rows) {
    const EvalResult& e = r.eval;
    std::cout << std::left << std::setw(16) << e.name << std::right << std::setw(7)
              << budget_text(r.budget) << "s" << std::setw(8) << r.steps << std::fixed << std::setprecision(2)
              << std::setw(8) << 100 * e.natural_accuracy << "%" << std::setw(8)
              << 100 * e.adversarial_accuracy << "%" << std::setw(8) << 100 * e.topk_intersection
              << "%" << std::setw(7) << 100 * e.topk_intersection_se << std::setprecision(4)
              << std::setw(8) << e.kendall << std::setw(8) << e.kendall_se
              << std::setw(7) << budget_text(e.surrogate_beta) << "\n";
  }
  std::cout.unsetf(std::ios::floatfield);
  if (prefix.empty()) return;

  std::ostringstream csv, json;
  csv << "\"method\",\"budget\",\"steps\",\"train_seconds\",\"cpu_seconds\",\"NA\",\"AA\",\"IN\","
         "\"IN_se\",\"CO\",\"CO_se\",\"surrogate_beta\",\"surrogate_agreement\","
         "\"accuracy_images\",\"attacked_images\",\"prediction_kept\",\"strength_images\","
         "\"strength_IN\",\"random_sign_IN\"\n";
  json << "{\n  \"title\": " << json_quote(title) << ",\n  \"rows\": [\n";
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    const auto& e = r.eval;
    csv << csv_quote(method_name(r.method)) << "," << csv_number(r.budget) << "," << r.steps
        << "," << csv_number(r.train_seconds) << "," << csv_number(r.cpu_seconds) << ","
        << csv_number(e.natural_accuracy) << "," << csv_number(e.adversarial_accuracy) << ","
        << csv_number(e.topk_intersection) << "," << csv_number(e.topk_intersection_se) << ","
        << csv_number(e.kendall) << "," << csv_number(e.kendall_se) << ","
        << csv_number(e.surrogate_beta) << "," << csv_number(e.surrogate_agreement) << ","
        << e.accuracy_images << "," << e.attacked_images << "," << csv_number(e.prediction_kept)
        << "," << e.strength.samples << "," << csv_number(e.strength.attack_topk_intersection)
        << "," << csv_number(e.strength.random_topk_intersection) << "\n";
    json << "    {\"method\": " << json_quote(method_name(r.method))
         << ", \"title\": " << json_quote(e.name) << ", \"budget\": " << json_number(r.budget)
         << ", \"steps\": " << r.steps << ", \"train_seconds\": " << json_number(r.train_seconds)
         << ", \"cpu_seconds\": " << json_number(r.cpu_seconds)
         << ", \"NA\": " << json_number(e.natural_accuracy)
         << ", \"AA\": " << json_number(e.adversarial_accuracy)
         << ", \"IN\": " << json_number(e.topk_intersection)
         << ", \"IN_se\": " << json_number(e.topk_intersection_se)
         << ", \"CO\": " << json_number(e.kendall) << ", \"CO_se\": " << json_number(e.kendall_se)
         << ", \"surrogate_beta\": " << json_number(e.surrogate_beta)
         << ", \"surrogate_agreement\": " << json_number(e.surrogate_agreement)
         << ", \"accuracy_images\": " << e.accuracy_images
         << ", \"attacked_images\": " << e.attacked_images
         << ", \"prediction_kept\": " << json_number(e.prediction_kept)
         << ", \"strength_images\": " << e.strength.samples
         << ", \"strength_IN\": " << json_number(e.strength.attack_topk_intersection)
         << ", \"random_sign_IN\": " << json_number(e.strength.random_topk_intersection) << "}"
         << (i + 1 < rows.size() ? "," : "") << "\n";
  }
  json << "  ]\n}\n";
  write_atomically(prefix + ".csv", csv.str());
  write_atomically(prefix + ".json", json.str());

  // One polyline per method, in the order the methods first appear.
  std::vector<std::string> series;
  std::vector<Method> order;
  for (const auto& r : rows)
    if (std::find(order.begin(), order.end(), r.method) == order.end()) {
      order.push_back(r.method);
      series.push_back(r.eval.name);
    }
  const std::string x_label = "training seconds (log)";
  LinePanel in{"top-k intersection IN", x_label, "IN (%)", {}, {}, true};
  LinePanel aa{"adversarial accuracy AA", x_label, "AA (%)", {}, {}, true};
  LinePanel na{"natural accuracy NA", x_label, "NA (%)", {}, {}, true};
  LinePanel co{"Kendall's tau CO", x_label, "CO", {}, {}, true};
  for (const Method method : order) {
    for (LinePanel* panel : {&in, &aa, &na, &co}) {
      panel->x.emplace_back();
      panel->y.emplace_back();
    }
    for (const auto& r : rows) {
      if (r.method != method) continue;
      const double t = r.train_seconds > 0 ? r.train_seconds : r.budget;
      for (LinePanel* panel : {&in, &aa, &na, &co}) panel->x.back().push_back(t);
      in.y.back().push_back(100 * r.eval.topk_intersection);
      aa.y.back().push_back(100 * r.eval.adversarial_accuracy);
      na.y.back().push_back(100 * r.eval.natural_accuracy);
      co.y.back().push_back(r.eval.kendall);
    }
  }
  write_line_plot(prefix + ".png", {in, aa, na, co}, series,
                  title.empty() ? "robustness against training time" : title, 2);
}

}  // namespace examples
}  // namespace rar
