#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <utility>
#include <vector>

#include "support/experiment.hpp"

// Checkpoints: a versioned archive with named fields, written durably (temporary file, fsync,
// rename, fsync of the directory) and read with errors that name the file and the field.
//
// Format version 2, the fields of the archive:
//   format        "rar-example-checkpoint"
//   version       2
//   dtype         "float32" | "float64": the parameters' dtype
//   net           arch ("mnist_cnn" | "resnet"), in_channels, image_size, classes, conv1, conv2,
//                 fc, units_per_stage (ints), leaky_slope (double), standardize (bool)
//   model         the parameters and buffers (Module::save)
//   checksum      FNV-1a 64 of the parameters' and buffers' bytes in named order
//   step, seconds, cpu_seconds, optimizer (optional: optimizer state of a training run)
// Version 1 (before 2026-12) stored the net as 10 doubles by position and no dtype; it still
// loads.

namespace rar {
namespace examples {
namespace {

constexpr const char* kFormat = "rar-example-checkpoint";
constexpr int64_t kVersion = 2;

// The first non-empty line of an error text, shortened: error messages stay one line.
std::string first_line(const std::string& text) {
  size_t begin = text.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return "unreadable";
  std::string line = text.substr(begin, text.find('\n', begin) - begin);
  if (line.size() > 160) line = line.substr(0, 157) + "...";
  return line;
}

// An error this file raises on purpose (already naming the file and the field).
struct CheckpointError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

CheckpointError field_error(const std::string& path, const std::string& field,
                            const std::string& what) {
  return CheckpointError(path + ": checkpoint field '" + field + "' " + what);
}

// Runs `read`; any error other than a CheckpointError (LibTorch's archive and TorchScript
// readers raise several kinds on corrupted bytes) becomes one line naming the file.
template <class F>
auto guarded(const std::string& path, F&& read) {
  try {
    return read();
  } catch (const CheckpointError&) {
    throw;
  } catch (const std::exception& e) {
    throw CheckpointError(path + ": not a rar example checkpoint (" + first_line(e.what()) + ")");
  }
}

const char* dtype_name(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat: return "float32";
    case torch::kDouble: return "float64";
    case torch::kHalf: return "float16";
    case torch::kBFloat16: return "bfloat16";
    default: return "?";
  }
}

const char* architecture_name(Architecture arch) {
  return arch == Architecture::resnet ? "resnet" : "mnist_cnn";
}

// FNV-1a over the bytes of every parameter and buffer, in named order, as CPU-contiguous data.
int64_t checksum(Net& net) {
  uint64_t h = 1469598103934665603ULL;
  auto add = [&](const torch::Tensor& t) {
    const torch::Tensor c = t.detach().cpu().contiguous();
    const auto* bytes = static_cast<const unsigned char*>(c.data_ptr());
    const size_t n = static_cast<size_t>(c.numel()) * c.element_size();
    for (size_t i = 0; i < n; ++i) h = (h ^ bytes[i]) * 1099511628211ULL;
  };
  for (const auto& p : net->named_parameters()) add(p.value());
  for (const auto& b : net->named_buffers()) add(b.value());
  return static_cast<int64_t>(h);
}

// fsync of a file or directory; throws naming it.
void sync_path(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  if (fd < 0) throw std::runtime_error(path + ": cannot open to sync: " + std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) throw std::runtime_error(path + ": cannot sync to disk: " + std::strerror(err));
}

// A field of the archive as an IValue; throws naming the field when it is missing.
c10::IValue read_field(torch::serialize::InputArchive& archive, const std::string& path,
                       const std::string& key, const std::string& name) {
  c10::IValue value;
  if (!archive.try_read(key, value)) throw field_error(path, name, "is missing");
  return value;
}

int64_t read_int(torch::serialize::InputArchive& archive, const std::string& path,
                 const std::string& key, const std::string& name) {
  const c10::IValue v = read_field(archive, path, key, name);
  if (!v.isInt()) throw field_error(path, name, "is a " + v.tagKind() + ", expected an int");
  return v.toInt();
}

// The net of a version-2 checkpoint, every field checked.
NetConfig read_net(torch::serialize::InputArchive& archive, const std::string& path) {
  torch::serialize::InputArchive net;
  if (!archive.try_read("net", net)) throw field_error(path, "net", "is missing");
  NetConfig nc;
  const c10::IValue arch = read_field(net, path, "arch", "net.arch");
  if (!arch.isString()) throw field_error(path, "net.arch", "is a " + arch.tagKind() + ", expected a string");
  try {
    nc.arch = parse_architecture(arch.toStringRef());
  } catch (const std::exception& e) {
    throw field_error(path, "net.arch", "is '" + arch.toStringRef() + "', expected mnist_cnn or resnet");
  }
  const std::pair<const char*, int64_t*> ints[] = {
      {"in_channels", &nc.in_channels}, {"image_size", &nc.image_size}, {"classes", &nc.classes},
      {"conv1", &nc.conv1},             {"conv2", &nc.conv2},           {"fc", &nc.fc},
      {"units_per_stage", &nc.units_per_stage}};
  for (const auto& [key, out] : ints) {
    *out = read_int(net, path, key, std::string("net.") + key);
    if (*out <= 0)
      throw field_error(path, std::string("net.") + key,
                        "is " + std::to_string(*out) + ", expected a positive size");
  }
  const c10::IValue slope = read_field(net, path, "leaky_slope", "net.leaky_slope");
  if (!slope.isDouble())
    throw field_error(path, "net.leaky_slope", "is a " + slope.tagKind() + ", expected a double");
  nc.leaky_slope = slope.toDouble();
  const c10::IValue standardize = read_field(net, path, "standardize", "net.standardize");
  if (!standardize.isBool())
    throw field_error(path, "net.standardize", "is a " + standardize.tagKind() + ", expected a bool");
  nc.standardize = standardize.toBool();
  return nc;
}

// The net of a version-1 checkpoint: 10 doubles by position.
NetConfig read_net_v1(torch::serialize::InputArchive& archive, const std::string& path) {
  torch::Tensor v;
  if (!archive.try_read("net_config", v))
    throw std::runtime_error(path + ": not a rar example checkpoint (no field 'version' or 'net_config')");
  if (v.numel() != 10 || !v.is_floating_point())
    throw field_error(path, "net_config", "has " + std::to_string(v.numel()) + " values, expected 10");
  auto at = [&](int64_t i) { return v[i].item<double>(); };
  NetConfig nc;
  nc.arch = static_cast<Architecture>(static_cast<int>(at(0)));
  nc.in_channels = static_cast<int64_t>(at(1));
  nc.image_size = static_cast<int64_t>(at(2));
  nc.classes = static_cast<int64_t>(at(3));
  nc.conv1 = static_cast<int64_t>(at(4));
  nc.conv2 = static_cast<int64_t>(at(5));
  nc.fc = static_cast<int64_t>(at(6));
  nc.units_per_stage = static_cast<int64_t>(at(7));
  nc.leaky_slope = at(8);
  nc.standardize = at(9) != 0.0;
  return nc;
}

// Opens `path` as an archive; one-line errors for a missing or unreadable file.
void open_archive(const std::string& path, torch::serialize::InputArchive& archive) {
  if (!std::filesystem::is_regular_file(path))
    throw std::runtime_error(path + ": no such checkpoint file");
  guarded(path, [&] {
    archive.load_from(path);
    return 0;
  });
}

// The format version of an open archive: 1 when it has no version field; checks the format
// name and refuses versions newer than this program's.
int64_t format_version(torch::serialize::InputArchive& archive, const std::string& path) {
  c10::IValue version;
  if (!archive.try_read("version", version)) return 1;
  if (!version.isInt()) throw field_error(path, "version", "is a " + version.tagKind() + ", expected an int");
  const c10::IValue format = read_field(archive, path, "format", "format");
  if (!format.isString() || format.toStringRef() != kFormat)
    throw field_error(path, "format", "is not '" + std::string(kFormat) + "'");
  if (version.toInt() > kVersion || version.toInt() < 2)
    throw field_error(path, "version",
                      "is " + std::to_string(version.toInt()) + ", but this program reads versions 1 to " +
                          std::to_string(kVersion) + (version.toInt() > kVersion ? " (a newer rar wrote it)" : ""));
  return version.toInt();
}

int64_t load_checkpoint_fields(const std::string& path, Net& net, torch::optim::Optimizer* optimizer,
                               TrainProgress* time);
Net load_model_fields(const std::string& path);

}  // namespace

void save_checkpoint(const std::string& path, Net& net, torch::optim::Optimizer* optimizer,
                     int64_t step, const TrainProgress* time) {
  torch::serialize::OutputArchive archive, model_archive, net_archive;
  archive.write("format", c10::IValue(std::string(kFormat)));
  archive.write("version", c10::IValue(kVersion));
  const auto parameters = net->parameters();
  const torch::ScalarType dtype =
      parameters.empty() ? torch::kFloat : parameters.front().scalar_type();
  archive.write("dtype", c10::IValue(std::string(dtype_name(dtype))));
  const NetConfig& nc = net->config();
  net_archive.write("arch", c10::IValue(std::string(architecture_name(nc.arch))));
  net_archive.write("in_channels", c10::IValue(nc.in_channels));
  net_archive.write("image_size", c10::IValue(nc.image_size));
  net_archive.write("classes", c10::IValue(nc.classes));
  net_archive.write("conv1", c10::IValue(nc.conv1));
  net_archive.write("conv2", c10::IValue(nc.conv2));
  net_archive.write("fc", c10::IValue(nc.fc));
  net_archive.write("units_per_stage", c10::IValue(nc.units_per_stage));
  net_archive.write("leaky_slope", c10::IValue(nc.leaky_slope));
  net_archive.write("standardize", c10::IValue(nc.standardize));
  archive.write("net", net_archive);
  net->save(model_archive);
  archive.write("model", model_archive);
  archive.write("checksum", c10::IValue(checksum(net)));
  if (optimizer) {
    torch::serialize::OutputArchive optimizer_archive;
    optimizer->save(optimizer_archive);
    archive.write("optimizer", optimizer_archive);
  }
  archive.write("step", torch::tensor(step, torch::kLong));
  if (time) {
    archive.write("seconds", torch::tensor(time->seconds, torch::kDouble));
    archive.write("cpu_seconds", torch::tensor(time->cpu_seconds, torch::kDouble));
  }
  const std::string tmp = path + ".tmp";
  try {
    archive.save_to(tmp);
  } catch (const c10::Error& e) {
    throw std::runtime_error(path + ": cannot write checkpoint: " +
                             first_line(e.what_without_backtrace()));
  }
  // Durable as well as atomic: the new bytes reach the disk before the name points at them,
  // and the rename itself is synced, so a power cut leaves the old file or the new one.
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  sync_path(tmp, false);
  sync_path(dir, true);
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);  // atomic on POSIX: readers see old or new, never half
  if (ec) throw std::runtime_error(path + ": cannot move checkpoint into place: " + ec.message());
  sync_path(dir, true);
}

int64_t load_checkpoint(const std::string& path, Net& net, torch::optim::Optimizer* optimizer,
                        TrainProgress* time) {
  return guarded(path, [&] { return load_checkpoint_fields(path, net, optimizer, time); });
}

Net load_model(const std::string& path) {
  return guarded(path, [&] { return load_model_fields(path); });
}

namespace {

int64_t load_checkpoint_fields(const std::string& path, Net& net, torch::optim::Optimizer* optimizer,
                               TrainProgress* time) {
  torch::serialize::InputArchive archive;
  open_archive(path, archive);
  const int64_t version = format_version(archive, path);
  std::string field = "model";
  try {
    torch::serialize::InputArchive model_archive;
    if (!archive.try_read("model", model_archive)) throw field_error(path, "model", "is missing");
    // Module::load replaces each tensor by the stored one, whatever its shape: compare them.
    std::vector<std::pair<std::string, std::vector<int64_t>>> shapes;
    for (const auto& p : net->named_parameters()) shapes.emplace_back(p.key(), p.value().sizes().vec());
    net->load(model_archive);
    const auto loaded = net->named_parameters();
    for (const auto& [name, shape] : shapes) {
      const auto* t = loaded.find(name);
      if (t && t->sizes().vec() != shape)
        throw field_error(path, "model",
                          "does not fit the network of field 'net': parameter '" + name +
                              "' has shape " + c10::str(t->sizes()) + ", the network needs " +
                              c10::str(c10::IntArrayRef(shape)));
    }
    if (version >= 2) {
      field = "checksum";
      if (read_int(archive, path, "checksum", "checksum") != checksum(net))
        throw field_error(path, "checksum",
                          "does not match the parameters read: the file is corrupted");
    }
    if (optimizer) {
      field = "optimizer";
      torch::serialize::InputArchive optimizer_archive;
      if (archive.try_read("optimizer", optimizer_archive)) optimizer->load(optimizer_archive);
    }
    field = "step";
    torch::Tensor step, seconds, cpu_seconds;
    if (!archive.try_read("step", step)) throw field_error(path, "step", "is missing");
    if (step.numel() != 1) throw field_error(path, "step", "is not one number");
    if (time) {
      time->steps = step.item<int64_t>();
      time->seconds = archive.try_read("seconds", seconds) ? seconds.item<double>() : 0.0;
      time->cpu_seconds =
          archive.try_read("cpu_seconds", cpu_seconds) ? cpu_seconds.item<double>() : 0.0;
    }
    return step.item<int64_t>();
  } catch (const c10::Error& e) {
    throw field_error(path, field,
                      "does not fit this network (" + first_line(e.what_without_backtrace()) + ")");
  }
}

Net load_model_fields(const std::string& path) {
  torch::serialize::InputArchive archive;
  open_archive(path, archive);
  const int64_t version = format_version(archive, path);
  const NetConfig nc = version >= 2 ? read_net(archive, path) : read_net_v1(archive, path);
  Net net(nc);
  if (version >= 2) {
    const c10::IValue dtype = read_field(archive, path, "dtype", "dtype");
    const std::string name = dtype.isString() ? dtype.toStringRef() : "";
    if (name == "float64")
      net->to(torch::kDouble);
    else if (name != "float32")
      throw field_error(path, "dtype", "is '" + name + "', expected float32 or float64");
  } else {
    // Version 1 recorded no dtype: take the first parameter's, following Module::save's nested
    // archives along its dotted name.
    torch::serialize::InputArchive model_archive;
    archive.try_read("model", model_archive);
    const auto parameters = net->named_parameters();
    if (parameters.size() > 0) {
      const std::string& key = parameters[0].key();
      torch::serialize::InputArchive* level = &model_archive;
      std::vector<torch::serialize::InputArchive> path_archives;
      path_archives.reserve(static_cast<size_t>(std::count(key.begin(), key.end(), '.')));
      size_t begin = 0;
      bool found = true;
      for (size_t dot; found && (dot = key.find('.', begin)) != std::string::npos; begin = dot + 1) {
        path_archives.emplace_back();
        found = level->try_read(key.substr(begin, dot - begin), path_archives.back());
        level = &path_archives.back();
      }
      torch::Tensor first;
      if (found && level->try_read(key.substr(begin), first) && first.is_floating_point())
        net->to(first.scalar_type());
    }
  }
  load_checkpoint_fields(path, net, nullptr, nullptr);
  net->eval();
  return net;
}

}  // namespace
}  // namespace examples
}  // namespace rar
