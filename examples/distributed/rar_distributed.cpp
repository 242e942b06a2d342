// rar_distributed: data-parallel RAR training over LibTorch's own c10d (Gloo with a TCPStore on
// the CPU, NCCL on GPUs where LibTorch has it). One process per rank; each trains on its share
// of every global batch and the gradients are averaged over the ranks after each backward pass,
// so the update is the single-process update on the global batch. See docs/distributed.md.
//
//   rar_distributed --rank 0 --world-size 2 --master-port 29500 --method ig-norm &
//   rar_distributed --rank 1 --world-size 2 --master-port 29500 --method ig-norm

#include <CLI/CLI.hpp>
#include <rar/rar.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "data_parallel.hpp"
#include "sharded_ig_norm.hpp"
#include "support/datasets.hpp"
#include "support/experiment.hpp"
#include "support/models.hpp"
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace rar::examples;

struct Flags {
  int rank = 0, world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  std::string interface;  // network interface for Gloo (else GLOO_SOCKET_IFNAME, else a default)
  double timeout = 300;   // seconds: rendezvous and every collective
  std::string method = "ig-norm", dtype = "float32", device = "cpu", model = "quick",
              optimizer = "adam";
  int64_t steps = 100, batch_size = 50, synthetic = 0, log_every = 10;
  uint64_t seed = 0;
  int threads = 0;
  std::string data, out;
  double learning_rate = 1e-3;
  // IG-NORM (defaults: the quick Fashion-MNIST preset of rar_mnist)
  double epsilon = 0.1, attack_step_size = 0.01, lambda = 1.0;
  int64_t ig_steps = 10, inner_stride = 5, attack_steps = 5;
};

[[noreturn]] void fail(const std::string& message) { throw std::invalid_argument(message); }

void validate(const Flags& f) {
  if (f.world_size < 1) fail("--world-size must be >= 1, got " + std::to_string(f.world_size));
  if (f.rank < 0 || f.rank >= f.world_size)
    fail("--rank must lie in [0, " + std::to_string(f.world_size) + "), got " +
         std::to_string(f.rank));
  if (f.batch_size % f.world_size != 0)
    fail("--batch-size " + std::to_string(f.batch_size) +
         " (the global batch) must be divisible "
         "by --world-size " +
         std::to_string(f.world_size) +
         ", so that every rank gets an equal "
         "share");
  if (f.world_size > 1 && (f.master_port < 1 || f.master_port > 65535))
    fail("--master-port must lie in [1, 65535], got " + std::to_string(f.master_port));
  if (f.synthetic > 0 && f.synthetic < f.batch_size)
    fail("--synthetic " + std::to_string(f.synthetic) + " is smaller than --batch-size " +
         std::to_string(f.batch_size));
  if (f.method == "ig-norm" && f.ig_steps % f.inner_stride != 0)
    fail("--inner-stride " + std::to_string(f.inner_stride) + " must divide --ig-steps " +
         std::to_string(f.ig_steps));
  if (f.out.find("{rank}") == std::string::npos && f.out.find('{') != std::string::npos)
    fail("--out: the only placeholder is {rank}, got " + f.out);
}

// The network: the paper's MNIST CNN at three widths.
NetConfig net_config(const std::string& model, int64_t classes) {
  NetConfig c;
  c.arch = Architecture::mnist_cnn;
  c.classes = classes;
  if (model == "quick") {
    c.conv1 = 16, c.conv2 = 32, c.fc = 128;  // rar_mnist's quick preset
  } else if (model == "tiny") {
    c.conv1 = 4, c.conv2 = 8, c.fc = 32;  // for tests
  }                                       // "paper": 32/64/1024
  return c;
}

// `count` 28 x 28 images, uniform in [0, 1], labelled by a fixed random linear classifier so
// that there is something to learn. The same on every rank (drawn from `seed` only).
Dataset synthetic_dataset(int64_t count, uint64_t seed) {
  at::Generator gen = rar::seeded_generator(seed ^ 0x5EED5EED5EEDULL);
  Dataset d;
  d.images = torch::rand({count, 1, 28, 28}, gen, torch::kFloat);
  const torch::Tensor w = torch::randn({28 * 28, 10}, gen, torch::kFloat);
  d.labels = (d.images.flatten(1) - 0.5).matmul(w).argmax(1);
  d.classes = 10;
  return d;
}

// The global batch of `step`: a seeded draw without replacement, the same on every rank.
torch::Tensor global_batch_indices(int64_t data_size, int64_t batch, uint64_t seed, int64_t step) {
  at::Generator gen =
      rar::seeded_generator(seed * 1000003ULL + static_cast<uint64_t>(step));
  return torch::randperm(data_size, gen, torch::kLong).slice(0, 0, batch);
}

// The objective of one step on this rank's rows `x` (positions `shard` of the global batch
// `x_global`). IG-NORM starts its inner maximization from the random start of the WHOLE global
// batch, drawn from (seed, step) alone and sliced to this rank's rows: the ranks together use
// exactly the starts of a single process on the same batch (docs/distributed.md).
std::function<torch::Tensor(Net&, const torch::Tensor&, const torch::Tensor&)> objective_for(
    const Flags& f, int64_t step, const torch::Tensor& x_global, const torch::Tensor& shard) {
  if (f.method == "natural") {
    return [term = rar::cross_entropy()](Net& net, const torch::Tensor& x, const torch::Tensor& y) {
      return term(net, x, y);
    };
  }
  const auto options = rar::IGNormOptions()
                           .epsilon(f.epsilon)
                           .steps(f.ig_steps)
                           .inner_stride(f.inner_stride)
                           .attack_steps(f.attack_steps)
                           .attack_step_size(f.attack_step_size)
                           .lambda(f.lambda);
  const uint64_t seed = f.seed * 1000003ULL + static_cast<uint64_t>(step);
  auto term = rar::cross_entropy() + sharded_ig_norm(options, seed, x_global, shard);
  return
      [term](Net& net, const torch::Tensor& x, const torch::Tensor& y) { return term(net, x, y); };
}

bool is_loopback(const std::string& address) {
  return address == "localhost" || address.rfind("127.", 0) == 0 || address == "::1";
}

// Gloo's network device: the interface named by --interface or GLOO_SOCKET_IFNAME; loopback when
// the master is on this machine's loopback; else the address this machine's hostname resolves
// to (Gloo falls back to loopback when it does not resolve).
std::shared_ptr<::gloo::transport::Device> gloo_device(const Flags& f) {
  std::string interface = f.interface;
  if (interface.empty()) {
    if (const char* env = std::getenv("GLOO_SOCKET_IFNAME")) interface = env;
  }
  if (!interface.empty()) return c10d::ProcessGroupGloo::createDeviceForInterface(interface);
  if (is_loopback(f.master_addr))
    return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
  return c10d::ProcessGroupGloo::createDefaultDevice();
}

// The flags that must be the same on every rank ("--name value" items), and the data set size
// (the path may differ between machines, the data may not).
std::vector<std::string> training_flags(const Flags& f, int64_t data_size) {
  std::ostringstream lr, eps, step_size, lambda;
  lr << f.learning_rate, eps << f.epsilon, step_size << f.attack_step_size, lambda << f.lambda;
  std::vector<std::string> items{"--world-size " + std::to_string(f.world_size),
                                 "--method " + f.method,
                                 "--steps " + std::to_string(f.steps),
                                 "--batch-size " + std::to_string(f.batch_size),
                                 "--seed " + std::to_string(f.seed),
                                 "--dtype " + f.dtype,
                                 "--device " + f.device,
                                 "--model " + f.model,
                                 "--optimizer " + f.optimizer,
                                 "--lr " + lr.str(),
                                 "images " + std::to_string(data_size)};
  if (f.method == "ig-norm") {
    for (std::string item : {"--epsilon " + eps.str(), "--ig-steps " + std::to_string(f.ig_steps),
                             "--inner-stride " + std::to_string(f.inner_stride),
                             "--attack-steps " + std::to_string(f.attack_steps),
                             "--attack-step-size " + step_size.str(), "--lambda " + lambda.str()})
      items.push_back(item);
  }
  return items;
}

// Every rank publishes its training flags in the store and compares them with every other
// rank's, so that a rank started with other flags fails at once, naming the difference, instead
// of hanging in an all-reduce of another size.
void check_same_flags(c10d::Store& store, const Flags& f, int64_t data_size) {
  const std::vector<std::string> mine = training_flags(f, data_size);
  std::string joined;
  for (const auto& item : mine) joined += item + "\n";
  store.set("rar_distributed/flags/" + std::to_string(f.rank),
            std::vector<uint8_t>(joined.begin(), joined.end()));
  std::string problem;
  for (int other = 0; other < f.world_size && problem.empty(); ++other) {
    if (other == f.rank) continue;
    const std::vector<uint8_t> bytes = store.get("rar_distributed/flags/" + std::to_string(other));
    std::istringstream theirs(std::string(bytes.begin(), bytes.end()));
    std::string item;
    for (const auto& own : mine) {
      if (!std::getline(theirs, item) || item != own) {
        problem = "rank " + std::to_string(other) + " was started with other training flags: '" +
                  own + "' here, '" + item + "' there; every rank needs the same flags but --rank";
        break;
      }
    }
  }
  // Rank 0 serves the store: it leaves only after every rank has read what it needs.
  store.set("rar_distributed/checked/" + std::to_string(f.rank), {1});
  if (f.rank == 0) {
    std::vector<std::string> keys;
    for (int r = 0; r < f.world_size; ++r)
      keys.push_back("rar_distributed/checked/" + std::to_string(r));
    store.wait(keys);
  }
  if (!problem.empty()) fail(problem);
}

// Rendezvous at master-addr:master-port (rank 0 serves the TCPStore), check that all ranks
// train the same thing, and build the group.
c10::intrusive_ptr<c10d::ProcessGroup> make_group(const Flags& f, bool cuda, int64_t data_size) {
  const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(f.timeout * 1000));
  c10d::TCPStoreOptions store_options;
  store_options.port = static_cast<std::uint16_t>(f.master_port);
  store_options.isServer = f.rank == 0;
  store_options.numWorkers = static_cast<std::size_t>(f.world_size);
  store_options.waitWorkers = true;
  store_options.timeout = timeout;
  auto store = c10::make_intrusive<c10d::TCPStore>(f.master_addr, store_options);
  check_same_flags(*store, f, data_size);
  if (cuda) {
#ifdef USE_C10D_NCCL
    auto options = c10d::ProcessGroupNCCL::Options::create();
    options->timeout = timeout;
    return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, f.rank, f.world_size, options);
#endif
  }
  auto options = c10d::ProcessGroupGloo::Options::create(timeout);
  options->devices.push_back(gloo_device(f));
  options->threads = 2;
  return c10::make_intrusive<c10d::ProcessGroupGloo>(store, f.rank, f.world_size, options);
}

torch::Device pick_device(const Flags& f) {
  if (f.device != "cuda") return torch::kCPU;
#ifndef USE_C10D_NCCL
  if (f.world_size > 1)
    fail(
        "--device cuda needs NCCL, and this build of rar_distributed has Gloo only (LibTorch "
        "without USE_C10D_NCCL, e.g. Debian's CPU build); use --device cpu, or rebuild against "
        "a CUDA LibTorch (docs/distributed.md)");
#endif
  if (!torch::cuda::is_available()) fail("--device cuda: CUDA is not available");
  // One GPU per rank on each machine: local rank = rank modulo the GPUs of this machine.
  const auto gpus = static_cast<int64_t>(torch::cuda::device_count());
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(f.rank % gpus));
}

// "{rank}" in --out becomes the rank; without it only rank 0 writes.
std::string output_path(const Flags& f) {
  if (f.out.empty()) return "";
  const auto at = f.out.find("{rank}");
  if (at == std::string::npos) return f.rank == 0 ? f.out : "";
  std::string path = f.out;
  path.replace(at, 6, std::to_string(f.rank));
  return path;
}

int run(const Flags& f) {
  validate(f);
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  // Default: a loopback master means every rank is on this machine, so they share its cores;
  // otherwise one rank per machine is assumed (give --threads when several share one).
  const int ranks_here = is_loopback(f.master_addr) ? f.world_size : 1;
  torch::set_num_threads(f.threads > 0 ? f.threads : std::max(1, cores / ranks_here));
  const torch::Device device = pick_device(f);
  const torch::Dtype dtype = f.dtype == "float64" ? torch::kDouble : torch::kFloat;

  const Dataset data =
      f.synthetic > 0 ? synthetic_dataset(f.synthetic, f.seed)
                      : load_mnist(f.data.empty() ? kDebianFashionMnistDir : f.data, Split::train);
  if (data.size() < f.batch_size)
    fail("the training set has " + std::to_string(data.size()) +
         " images, fewer than --batch-size " + std::to_string(f.batch_size));

  c10::intrusive_ptr<c10d::ProcessGroup> group;
  if (f.world_size > 1) group = make_group(f, device.is_cuda(), data.size());
  const bool lead = f.rank == 0;
  if (lead) {
    std::cout << "rar_distributed: " << f.world_size << " rank(s), "
              << (group ? group->getBackendName() + " at " + f.master_addr + ":" +
                              std::to_string(f.master_port)
                        : std::string("single process"))
              << ", " << f.method << ", " << f.dtype << " on " << device << ", global batch "
              << f.batch_size << " (" << f.batch_size / f.world_size << " per rank), "
              << data.size() << " images" << std::endl;
  }

  torch::manual_seed(f.seed);
  Net net(net_config(f.model, data.classes));
  net->to(device, dtype);
  broadcast_parameters(group.get(), net->parameters());  // every rank starts from rank 0's model

  std::unique_ptr<torch::optim::Optimizer> optimizer;
  if (f.optimizer == "adam") {
    optimizer = std::make_unique<torch::optim::Adam>(net->parameters(),
                                                     torch::optim::AdamOptions(f.learning_rate));
  } else {
    optimizer = std::make_unique<torch::optim::SGD>(
        net->parameters(), torch::optim::SGDOptions(f.learning_rate).momentum(0.9));
  }

  const torch::Tensor shard = shard_positions(f.batch_size, f.rank, f.world_size);
  auto window_start = std::chrono::steady_clock::now();
  int64_t window_steps = 0;
  for (int64_t step = 1; step <= f.steps; ++step) {
    const torch::Tensor batch = global_batch_indices(data.size(), f.batch_size, f.seed, step);
    const torch::Tensor x_global = data.images.index_select(0, batch).to(device, dtype);
    const torch::Tensor x = shard_rows(x_global, f.rank, f.world_size);  // this rank's rows
    const torch::Tensor y = data.labels.index_select(0, batch.index_select(0, shard)).to(device);
    net->train();
    optimizer->zero_grad();
    const torch::Tensor loss = objective_for(f, step, x_global, shard)(net, x, y);
    loss.backward();
    const double global_loss =
        allreduce_gradients(group.get(), net->parameters(), loss.item<double>());
    optimizer->step();
    ++window_steps;
    if (lead && (step % f.log_every == 0 || step == f.steps)) {
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - window_start).count();
      std::cout << "step " << step << "/" << f.steps << "  loss " << std::fixed
                << std::setprecision(4) << global_loss << "  " << std::setprecision(1)
                << static_cast<double>(window_steps * f.batch_size) / std::max(seconds, 1e-9)
                << " images/s" << std::defaultfloat << std::setprecision(6) << std::endl;
      window_start = std::chrono::steady_clock::now();
      window_steps = 0;
    }
  }

  const std::string path = output_path(f);
  if (!path.empty()) save_checkpoint(path, net, optimizer.get(), f.steps);
  if (group) group->barrier()->wait();  // rank 0 serves the store: leave only when all are done
  if (lead && !path.empty()) std::cout << "rar_distributed: saved " << path << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "rar_distributed: data-parallel RAR training over LibTorch's c10d (one process per rank)"};
  // A flag given twice takes its last value: `rar_distributed $COMMON --steps 1` overrides.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  Flags f;
  app.add_option("--rank", f.rank, "this process's rank, 0 .. world-size - 1");
  app.add_option("--world-size", f.world_size, "number of processes (ranks)");
  app.add_option("--master-addr", f.master_addr, "address of rank 0's machine (the TCPStore)");
  app.add_option("--master-port", f.master_port, "port of the TCPStore on rank 0's machine");
  app.add_option("--interface", f.interface,
                 "network interface Gloo binds to (default: $GLOO_SOCKET_IFNAME, else loopback "
                 "for a loopback master, else this machine's hostname)");
  app.add_option("--timeout", f.timeout,
                 "seconds to wait for the other ranks (rendezvous, "
                 "every all-reduce)")
      ->check(CLI::PositiveNumber);
  app.add_option("--method", f.method, "training objective")
      ->check(CLI::IsMember({"natural", "ig-norm"}));
  app.add_option("--steps", f.steps, "training steps")->check(CLI::PositiveNumber);
  app.add_option("--batch-size", f.batch_size, "GLOBAL batch size (divisible by --world-size)")
      ->check(CLI::PositiveNumber);
  app.add_option("--seed", f.seed, "seed of the model, the batches and the random starts");
  app.add_option("--dtype", f.dtype, "float32 or float64")
      ->check(CLI::IsMember({"float32", "float64"}));
  app.add_option("--device", f.device, "cpu (Gloo) or cuda (NCCL)")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  auto* data_opt = app.add_option("--data", f.data,
                                  "IDX folder (MNIST / Fashion-MNIST); default: Debian's "
                                  "Fashion-MNIST in /usr/share/datasets/fashion-mnist");
  app.add_option("--synthetic", f.synthetic, "train on N generated 28x28 images instead")
      ->check(CLI::PositiveNumber)
      ->excludes(data_opt);
  app.add_option("--out", f.out,
                 "checkpoint written at the end (rar_mnist's format); {rank} in the name gives "
                 "one per rank, else rank 0 writes it");
  app.add_option("--model", f.model,
                 "CNN width: tiny (4/8/32), quick (16/32/128), paper "
                 "(32/64/1024)")
      ->check(CLI::IsMember({"tiny", "quick", "paper"}));
  app.add_option("--optimizer", f.optimizer, "adam or sgd (momentum 0.9)")
      ->check(CLI::IsMember({"adam", "sgd"}));
  app.add_option("--lr", f.learning_rate, "learning rate")->check(CLI::PositiveNumber);
  app.add_option("--threads", f.threads,
                 "intra-op threads per rank (0: the cores, divided by the world size "
                 "when the master is on loopback)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--log-every", f.log_every, "steps between progress lines (rank 0)")
      ->check(CLI::PositiveNumber);
  app.add_option("--epsilon", f.epsilon, "IG-NORM: radius of the L-inf ball")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--ig-steps", f.ig_steps, "IG-NORM: IG points m")->check(CLI::PositiveNumber);
  app.add_option("--inner-stride", f.inner_stride,
                 "IG-NORM: the inner maximization uses every s-th point")
      ->check(CLI::PositiveNumber);
  app.add_option("--attack-steps", f.attack_steps, "IG-NORM: inner ascent steps")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--attack-step-size", f.attack_step_size, "IG-NORM: inner ascent step size")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--lambda", f.lambda, "IG-NORM: weight of the attribution term")
      ->check(CLI::NonNegativeNumber);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    return run(f);
  } catch (const c10::Error& e) {
    const std::string message = e.what_without_backtrace();
    std::cerr << "rar_distributed: rank " << f.rank
              << ": error: " << message.substr(0, message.find('\n')) << std::endl;
    return 1;
  } catch (const std::exception& e) {
    const std::string message = e.what();
    std::cerr << "rar_distributed: rank " << f.rank
              << ": error: " << message.substr(0, message.find('\n')) << std::endl;
    return 1;
  }
}
