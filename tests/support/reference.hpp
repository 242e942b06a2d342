#pragma once
// Loader for reference tensors generated offline (tests/data/make_*.py) and committed as text.
//
// File format: one tensor per line, whitespace separated:
//   <name> <ndim> <d0> ... <d(ndim-1)> <v0> <v1> ... <v(numel-1)>
// values in row-major order, printed with 17 significant digits (float64 round trip).
// Lines starting with '#' and blank lines are ignored.

#include <torch/torch.h>

#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace rar {
namespace test {

/// Path of a file under tests/data.
inline std::string data_path(const std::string& file) {
  return std::string(RAR_TEST_DATA_DIR) + "/" + file;
}

/// A set of named float64 reference tensors read from one text file.
class Reference {
 public:
  explicit Reference(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("reference file not found: " + path);
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') continue;
      std::istringstream row(line);
      std::string name;
      int64_t ndim = 0;
      row >> name >> ndim;
      std::vector<int64_t> shape(static_cast<size_t>(ndim));
      int64_t numel = 1;
      for (auto& d : shape) {
        row >> d;
        numel *= d;
      }
      std::vector<double> values(static_cast<size_t>(numel));
      for (auto& v : values) {
        std::string token;  // "nan"/"inf" are not read by operator>> for double
        row >> token;
        v = std::stod(token);
      }
      if (!row) throw std::runtime_error("malformed reference entry '" + name + "' in " + path);
      tensors_[name] = torch::tensor(values, torch::kDouble).reshape(shape);
    }
  }

  bool has(const std::string& name) const { return tensors_.count(name) > 0; }

  /// The tensor called `name` (float64, CPU); throws naming it when absent.
  torch::Tensor tensor(const std::string& name) const {
    auto it = tensors_.find(name);
    if (it == tensors_.end()) throw std::runtime_error("reference tensor missing: " + name);
    return it->second.clone();
  }

  /// The tensor called `name` as int64 (targets, labels).
  torch::Tensor labels(const std::string& name) const { return tensor(name).to(torch::kLong); }

  /// Copies `<prefix>.<name>` into every parameter and buffer of `module` that the file has
  /// (PyTorch state_dict names, e.g. "mlp.0.weight"); throws if a parameter is missing.
  void load_into(torch::nn::Module& module, const std::string& prefix) const {
    torch::NoGradGuard no_grad;
    for (auto& p : module.named_parameters(true)) {
      auto& dst = p.value();
      dst.copy_(tensor(prefix + "." + p.key()).to(dst.dtype()));
    }
    for (auto& b : module.named_buffers(true)) {
      const std::string name = prefix + "." + b.key();
      if (has(name)) b.value().copy_(tensor(name).to(b.value().dtype()));
    }
  }

 private:
  std::map<std::string, torch::Tensor> tensors_;
};

}  // namespace test
}  // namespace rar
