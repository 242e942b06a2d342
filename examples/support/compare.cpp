#include "support/compare.hpp"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <limits>
#include <sstream>
#include <stdexcept>

#include "support/plot.hpp"

namespace rar {
namespace examples {
namespace {

constexpr const char* kStateHeader = "rar-compare-state 1";

std::string checkpoint_path(const std::string& prefix, Method method) {
  return prefix + "." + method_name(method) + ".pt";
}

const CompareRow* find_row(const std::vector<CompareRow>& rows, Method method) {
  for (const auto& row : rows)
    if (row.method == method) return &row;
  return nullptr;
}

}  // namespace

void write_atomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) throw std::runtime_error(path + ": cannot write");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) throw std::runtime_error(path + ": cannot move into place: " + ec.message());
}

double CompareRow::seconds_per_step() const {
  return steps > 0 ? train_seconds / static_cast<double>(steps)
                   : std::numeric_limits<double>::quiet_NaN();
}

void write_compare_state(const std::string& path, const std::string& settings,
                         const std::vector<CompareRow>& rows) {
  // One row per line, tab-separated; numbers with enough digits to read back exactly.
  std::ostringstream out;
  out << kStateHeader << "\n" << "settings\t" << settings << "\n";
  out << std::setprecision(17);
  for (const auto& r : rows)
    out << "row\t" << method_name(r.method) << "\t" << r.steps << "\t" << r.train_seconds << "\t"
        << r.cpu_seconds << "\t"
        << r.eval.natural_accuracy << "\t" << r.eval.adversarial_accuracy << "\t"
        << r.eval.topk_intersection << "\t" << r.eval.kendall << "\t" << r.eval.accuracy_images
        << "\t" << r.eval.attacked_images << "\t" << r.eval.prediction_kept << "\n";
  write_atomically(path, out.str());
}

std::ifstream open_state_file(const std::string& path, const std::string& header,
                              const std::string& noun, const std::string& run,
                              const std::string& settings) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot read the " + noun + " state");
  std::string line;
  if (!std::getline(in, line) || line != header)
    throw std::runtime_error(path + ": not a " + noun + " state file");
  if (!std::getline(in, line) || line.rfind("settings\t", 0) != 0)
    throw std::runtime_error(path + ": no settings line");
  const std::string saved = line.substr(9);
  if (saved != settings)
    throw std::runtime_error(path + ": written by " + run + " with other settings (" + saved +
                             "; now " + settings + "): rerun without --resume to start over");
  return in;
}

std::vector<CompareRow> read_compare_state(const std::string& path, const std::string& settings) {
  std::ifstream in = open_state_file(path, kStateHeader, "comparison", "a comparison", settings);
  std::string line;
  std::vector<CompareRow> rows;
  for (int number = 3; std::getline(in, line); ++number) {
    if (line.empty()) continue;
    std::istringstream fields(line);
    std::string tag, name;
    CompareRow r;
    EvalResult& e = r.eval;
    std::getline(fields, tag, '\t');
    std::getline(fields, name, '\t');
    fields >> r.steps >> r.train_seconds >> r.cpu_seconds >> e.natural_accuracy >> e.adversarial_accuracy >>
        e.topk_intersection >> e.kendall >> e.accuracy_images >> e.attacked_images >>
        e.prediction_kept;
    if (tag != "row" || fields.fail())
      throw std::runtime_error(path + ": line " + std::to_string(number) + " is not a result row");
    try {
      r.method = parse_method(name);
    } catch (const std::exception& error) {
      throw std::runtime_error(path + ": line " + std::to_string(number) + ": " + error.what());
    }
    e.name = method_title(r.method);
    rows.push_back(r);
  }
  return rows;
}

std::vector<CompareRow> compare(const std::function<TrainConfig(Method)>& train_config,
                                const Dataset& data, const Dataset& test, const EvalConfig& eval,
                                const CompareConfig& config, torch::Device device) {
  if (config.methods.empty()) throw std::invalid_argument("compare: no methods selected");
  if (!(config.seconds > 0))
    throw std::invalid_argument("--seconds must be positive, got " + std::to_string(config.seconds));
  const std::string state_path = config.prefix + ".state";
  const std::filesystem::path parent = std::filesystem::path(config.prefix).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  std::vector<CompareRow> finished;  // every finished row the state file holds
  if (config.resume && std::filesystem::exists(state_path))
    finished = read_compare_state(state_path, config.settings);
  else
    write_compare_state(state_path, config.settings, finished);
  if (!config.banner.empty()) std::cout << config.banner << std::endl;

  std::vector<CompareRow> rows;
  const size_t count = config.methods.size();
  for (size_t i = 0; i < count; ++i) {
    const Method method = config.methods[i];
    const std::string title = method_title(method);
    std::cout << "\n== " << i + 1 << "/" << count << ": " << title;
    if (const CompareRow* done = find_row(finished, method)) {
      std::cout << " finished in an earlier run (" << done->steps << " steps): skipped"
                << std::endl;
      rows.push_back(*done);
      continue;
    }
    std::cout << ", " << config.seconds << " s of training ==" << std::endl;
    TrainConfig tc = train_config(method);
    tc.method = method;
    tc.max_seconds = config.seconds;
    tc.max_steps = std::numeric_limits<int64_t>::max();
    tc.checkpoint_every = 0;
    tc.checkpoint_seconds = config.checkpoint_seconds;
    tc.net.classes = data.classes;
    torch::manual_seed(tc.seed);
    Net net(tc.net);
    const TrainProgress progress =
        train(net, data, tc, device, checkpoint_path(config.prefix, method), config.resume);
    CompareRow row;
    row.method = method;
    row.steps = progress.steps;
    row.train_seconds = progress.seconds;
    row.cpu_seconds = progress.cpu_seconds;
    std::cout << "[" << title << "] trained " << row.steps << " steps in " << std::fixed
              << std::setprecision(1) << row.train_seconds << " s ("
              << std::setprecision(2) << row.steps / std::max(row.train_seconds, 1e-9)
              << " steps/s, " << row.cpu_seconds << " CPU s); evaluating" << std::endl;
    std::cout.unsetf(std::ios::floatfield);
    row.eval = evaluate(net, test, eval, device, title);
    rows.push_back(row);
    finished.push_back(row);
    write_compare_state(state_path, config.settings, finished);
    report_comparison(rows, config.seconds, config.prefix);
  }
  return rows;
}

void report_comparison(const std::vector<CompareRow>& rows, double budget_seconds,
                       const std::string& prefix) {
  std::cout << "\n"
            << std::left << std::setw(16) << "method" << std::right << std::setw(8) << "steps"
            << std::setw(9) << "steps/s" << std::setw(8) << "CPU s" << std::setw(9) << "NA" << std::setw(9) << "AA"
            << std::setw(9) << "IN" << std::setw(9) << "CO" << "\n";
  for (const auto& r : rows) {
    std::cout << std::left << std::setw(16) << r.eval.name << std::right << std::setw(8)
              << r.steps << std::fixed << std::setprecision(2) << std::setw(9)
              << 1.0 / r.seconds_per_step() << std::setprecision(0) << std::setw(8)
              << r.cpu_seconds << std::setprecision(2) << std::setw(8)
              << 100 * r.eval.natural_accuracy
              << "%" << std::setw(8) << 100 * r.eval.adversarial_accuracy << "%" << std::setw(8)
              << 100 * r.eval.topk_intersection << "%" << std::setprecision(4) << std::setw(9)
              << r.eval.kendall << "\n";
  }
  std::cout.unsetf(std::ios::floatfield);
  std::cout << "(" << budget_seconds << " s of training per method; NA/AA on "
            << (rows.empty() ? 0 : rows[0].eval.accuracy_images)
            << " test images; IN/CO under the top-k attack on up to "
            << (rows.empty() ? 0 : rows[0].eval.attacked_images)
            << " correctly classified ones)" << std::endl;
  if (prefix.empty()) return;

  std::ostringstream csv, json;
  csv << "\"method\",\"steps\",\"seconds_per_step\",\"NA\",\"AA\",\"IN\",\"CO\","
         "\"train_seconds\",\"cpu_seconds\",\"accuracy_images\",\"attacked_images\","
         "\"prediction_kept\"\n";
  json << "{\n  \"budget_seconds\": " << json_number(budget_seconds) << ",\n  \"methods\": [\n";
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    const auto& e = r.eval;
    csv << csv_quote(method_name(r.method)) << "," << r.steps << ","
        << csv_number(r.seconds_per_step()) << "," << csv_number(e.natural_accuracy) << ","
        << csv_number(e.adversarial_accuracy) << "," << csv_number(e.topk_intersection) << ","
        << csv_number(e.kendall) << "," << csv_number(r.train_seconds) << ","
        << csv_number(r.cpu_seconds) << ","
        << e.accuracy_images << "," << e.attacked_images << "," << csv_number(e.prediction_kept)
        << "\n";
    json << "    {\"method\": " << json_quote(method_name(r.method))
         << ", \"title\": " << json_quote(e.name) << ", \"steps\": " << r.steps
         << ", \"seconds_per_step\": " << json_number(r.seconds_per_step())
         << ", \"NA\": " << json_number(e.natural_accuracy)
         << ", \"AA\": " << json_number(e.adversarial_accuracy)
         << ", \"IN\": " << json_number(e.topk_intersection)
         << ", \"CO\": " << json_number(e.kendall)
         << ", \"train_seconds\": " << json_number(r.train_seconds)
         << ", \"cpu_seconds\": " << json_number(r.cpu_seconds)
         << ", \"accuracy_images\": " << e.accuracy_images
         << ", \"attacked_images\": " << e.attacked_images
         << ", \"prediction_kept\": " << json_number(e.prediction_kept) << "}"
         << (i + 1 < rows.size() ? "," : "") << "\n";
  }
  json << "  ]\n}\n";
  write_atomically(prefix + ".csv", csv.str());
  write_atomically(prefix + ".json", json.str());

  // Robustness against natural accuracy: every method had the same training time, so accuracy
  // is the axis along which they trade.
  std::vector<std::string> series;
  ScatterPanel in{"top-k intersection (IN) vs NA", "natural accuracy NA (%)", "IN (%)", {}, {}};
  ScatterPanel aa{"adversarial accuracy (AA) vs NA", "natural accuracy NA (%)", "AA (%)", {}, {}};
  for (const auto& r : rows) {
    series.push_back(r.eval.name);
    in.x.push_back(100 * r.eval.natural_accuracy);
    in.y.push_back(100 * r.eval.topk_intersection);
    aa.x.push_back(100 * r.eval.natural_accuracy);
    aa.y.push_back(100 * r.eval.adversarial_accuracy);
  }
  write_scatter_plot(prefix + ".png", {in, aa}, series);
}

}  // namespace examples
}  // namespace rar
