#pragma once
// Collects TORCH_WARN messages while a guard installs the collector (LibTorch 2 changed the
// handler's interface).

#include <torch/torch.h>
#include <torch/version.h>

#include <string>
#include <vector>

namespace rar {
namespace test {

struct WarningCollector : c10::WarningHandler {
  std::vector<std::string> messages;
#if TORCH_VERSION_MAJOR >= 2
  void process(const c10::Warning& w) override { messages.push_back(w.msg()); }
#else
  void process(const c10::SourceLocation&, const std::string& msg, bool) override {
    messages.push_back(msg);
  }
#endif
};
#if TORCH_VERSION_MAJOR >= 2
using WarningGuard = c10::WarningUtils::WarningHandlerGuard;
#else
using WarningGuard = c10::Warning::WarningHandlerGuard;
#endif

}  // namespace test
}  // namespace rar
