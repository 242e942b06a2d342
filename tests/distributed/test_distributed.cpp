// Data-parallel training with c10d: the shard and all-reduce helpers in-process (two Gloo ranks
// on threads), then rar_distributed end to end: 2 processes on 127.0.0.1 against 1 process on
// the same global batch, bad flags, and a rank whose peers never come.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <torch/csrc/distributed/c10d/HashStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <vector>

#include "data_parallel.hpp"
#include "sharded_ig_norm.hpp"
#include "support/experiment.hpp"
#include "support/temp_dir.hpp"

using Catch::Contains;
namespace fs = std::filesystem;

namespace {

/// A TCP port that was free a moment ago: bind port 0 on the loopback, read it, close.
int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  socklen_t length = sizeof address;
  REQUIRE(getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0);
  close(fd);
  return ntohs(address.sin_port);
}

/// A child process running `program args...`, stdout and stderr into `log`.
struct Child {
  pid_t pid = -1;
  std::string log;
};

Child spawn(const std::string& program, const std::vector<std::string>& args,
            const std::string& log) {
  std::cout.flush();  // the child must not inherit (and repeat) buffered output
  std::cerr.flush();
  const pid_t pid = fork();
  if (pid == 0) {  // the child: no Catch2 macros here
    const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
      close(fd);
    }
    std::vector<char*> argv{const_cast<char*>(program.c_str())};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(program.c_str(), argv.data());
    _exit(127);
  }
  REQUIRE(pid > 0);
  return {pid, log};
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// Waits for all children, at most `limit`; on time-out kills those still running. Returns the
/// exit codes (-1: killed or crashed).
std::vector<int> wait_all(std::vector<Child>& children, std::chrono::seconds limit) {
  std::vector<int> codes(children.size(), -2);
  const auto deadline = std::chrono::steady_clock::now() + limit;
  size_t running = children.size();
  while (running > 0) {
    for (size_t i = 0; i < children.size(); ++i) {
      if (codes[i] != -2) continue;
      int status = 0;
      if (waitpid(children[i].pid, &status, WNOHANG) == children[i].pid) {
        codes[i] = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        --running;
      }
    }
    if (running == 0) break;
    if (std::chrono::steady_clock::now() > deadline) {
      for (size_t i = 0; i < children.size(); ++i) {
        if (codes[i] != -2) continue;
        kill(children[i].pid, SIGKILL);
        waitpid(children[i].pid, nullptr, 0);
        codes[i] = -1;
        UNSCOPED_INFO("killed after " << limit.count() << " s: " << children[i].log);
      }
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (const auto& c : children) UNSCOPED_INFO(c.log << ":\n" << read_text(c.log));
  return codes;
}

int run_one(const std::vector<std::string>& args, const std::string& log,
            std::chrono::seconds limit = std::chrono::seconds(120)) {
  std::vector<Child> child{spawn(RAR_DISTRIBUTED_BIN, args, log)};
  return wait_all(child, limit)[0];
}

std::vector<std::string> concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

/// The parameters of a float64 checkpoint of rar_distributed. (load_model builds a float32
/// model; a float64 one loads the stored values unrounded.)
std::vector<torch::Tensor> checkpoint_parameters(const std::string& path) {
  auto net = rar::examples::load_model(path);
  net->to(torch::kDouble);
  rar::examples::load_checkpoint(path, net, nullptr);
  return net->parameters();
}

/// Largest |a - b| over all parameters of two checkpoints (which must have float64 weights).
double max_parameter_difference(const std::string& a, const std::string& b) {
  const auto pa = checkpoint_parameters(a), pb = checkpoint_parameters(b);
  REQUIRE(pa.size() == pb.size());
  double worst = 0;
  for (size_t i = 0; i < pa.size(); ++i) {
    REQUIRE(pa[i].scalar_type() == torch::kDouble);
    REQUIRE(pa[i].sizes() == pb[i].sizes());
    worst = std::max(worst, (pa[i] - pb[i]).abs().max().item<double>());
  }
  return worst;
}

}  // namespace

TEST_CASE("shard_positions partitions a global batch into equal strided shards", "[distributed]") {
  CHECK(rar::examples::shard_positions(8, 0, 2).equal(torch::tensor({0, 2, 4, 6}, torch::kLong)));
  CHECK(rar::examples::shard_positions(8, 1, 2).equal(torch::tensor({1, 3, 5, 7}, torch::kLong)));
  CHECK(rar::examples::shard_positions(6, 2, 3).equal(torch::tensor({2, 5}, torch::kLong)));
  const torch::Tensor x = torch::arange(12).view({6, 2});
  CHECK(rar::examples::shard_rows(x, 1, 3).equal(torch::tensor({{2, 3}, {8, 9}})));
  CHECK_THROWS_WITH(rar::examples::shard_positions(10, 0, 3),
                    Contains("global batch (10) must be divisible by the world size (3)"));
  CHECK_THROWS_WITH(rar::examples::shard_positions(8, 2, 2), Contains("rank must lie in [0, 2)"));
}

TEST_CASE("allreduce_gradients averages gradients over two Gloo ranks in one buffer",
          "[distributed]") {
  auto store = c10::make_intrusive<c10d::HashStore>();
  std::vector<double> values(2);
  std::vector<std::vector<torch::Tensor>> grads(2);
  std::vector<std::string> errors(2);
  auto rank_main = [&](int rank) {
    try {
      auto options = c10d::ProcessGroupGloo::Options::create(std::chrono::seconds(30));
      options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      c10d::ProcessGroupGloo group(store, rank, 2, options);
      // Two parameters; rank 1 leaves the second one's gradient undefined (counts as zeros).
      auto a = torch::zeros({2, 3}, torch::kDouble).requires_grad_(true);
      auto b = torch::zeros({4}, torch::kDouble).requires_grad_(true);
      a.mutable_grad() = torch::full({2, 3}, rank == 0 ? 1.0 : 3.0, torch::kDouble);
      if (rank == 0) b.mutable_grad() = torch::arange(4, torch::kDouble);
      // Parameters differ before the broadcast; rank 0's win.
      {
        torch::NoGradGuard no_grad;
        a.fill_(10.0 * (rank + 1));
      }
      rar::examples::broadcast_parameters(&group, {a, b});
      CHECK(a.detach().eq(10.0).all().item<bool>());
      values[rank] = rar::examples::allreduce_gradients(&group, {a, b}, rank == 0 ? 1.0 : 2.0);
      grads[rank] = {a.grad().clone(), b.grad().clone()};
    } catch (const std::exception& e) {
      errors[rank] = e.what();
    }
  };
  std::thread t0(rank_main, 0), t1(rank_main, 1);
  t0.join();
  t1.join();
  REQUIRE(errors[0].empty());
  REQUIRE(errors[1].empty());
  for (int rank = 0; rank < 2; ++rank) {
    CHECK(values[rank] == 1.5);
    CHECK(grads[rank][0].equal(torch::full({2, 3}, 2.0, torch::kDouble)));
    CHECK(grads[rank][1].equal(torch::arange(4, torch::kDouble) / 2));
  }
}

TEST_CASE("allreduce_gradients leaves a single process's gradients alone", "[distributed]") {
  auto a = torch::zeros({3}, torch::kDouble).requires_grad_(true);
  a.mutable_grad() = torch::tensor({1.0, 2.0, 3.0}, torch::kDouble);
  CHECK(rar::examples::allreduce_gradients(nullptr, {a}, 0.25) == 0.25);
  CHECK(a.grad().equal(torch::tensor({1.0, 2.0, 3.0}, torch::kDouble)));
}

TEST_CASE(
    "sharded_ig_norm equals rar::ig_norm on one rank, and the ranks' shards add up to it",
    "[distributed][regularizer]") {
  torch::manual_seed(5);
  rar::examples::NetConfig config;
  config.conv1 = 3, config.conv2 = 4, config.fc = 8;
  rar::examples::Net net(config);
  net->to(torch::kDouble);
  const torch::Tensor x = torch::rand({6, 1, 28, 28}, torch::kDouble);
  const torch::Tensor y = torch::tensor({0, 3, 1, 7, 2, 9}, torch::kLong);
  const auto options = rar::IGNormOptions()
                           .epsilon(0.1)
                           .steps(4)
                           .inner_stride(2)
                           .attack_steps(2)
                           .attack_step_size(0.02)
                           .lambda(1.0);
  const uint64_t seed = 42;
  auto parameter_gradient = [&](const torch::Tensor& loss) {
    std::vector<torch::Tensor> grads;
    for (const auto& g : torch::autograd::grad({loss}, net->parameters()))
      grads.push_back(g.reshape(-1));
    return torch::cat(grads);
  };

  const torch::Tensor library = rar::ig_norm(rar::IGNormOptions(options).seed(seed))(net, x, y);
  const torch::Tensor all = torch::arange(6, torch::kLong);
  const torch::Tensor mine = rar::examples::sharded_ig_norm(options, seed, x, all)(net, x, y);
  INFO("rar::ig_norm " << library.item<double>() << ", from the global start "
                       << mine.item<double>());
  CHECK(library.item<double>() > 1e-4);  // the attribution term is not trivially zero
  CHECK(mine.item<double>() == library.item<double>());
  const torch::Tensor g_library = parameter_gradient(library);
  CHECK(parameter_gradient(mine).equal(g_library));

  // Two ranks: each takes its rows of x and of the global start; the mean of their means is the
  // single batch's mean, and so is the mean of their gradients (to rounding).
  torch::Tensor value_sum = torch::zeros({}, torch::kDouble), grad_sum;
  for (int64_t rank = 0; rank < 2; ++rank) {
    const torch::Tensor rows = rar::examples::shard_positions(6, rank, 2);
    const torch::Tensor value =
        rar::examples::sharded_ig_norm(options, seed, x, rows)(net, x.index_select(0, rows),
                                                               y.index_select(0, rows));
    value_sum += value.detach();
    const torch::Tensor g = parameter_gradient(value);
    grad_sum = grad_sum.defined() ? grad_sum + g : g;
  }
  CHECK((value_sum / 2).item<double>() == Approx(library.item<double>()).epsilon(1e-12));
  CHECK(((grad_sum / 2) - g_library).abs().max().item<double>() <
        1e-12 * (1 + g_library.abs().max().item<double>()));
  CHECK_THROWS_WITH(rar::examples::sharded_ig_norm(options, seed, x, all.slice(0, 0, 2))(net, x, y),
                    Contains("the start function must return a tensor of x's shape"));
}

TEST_CASE(
    "rar_distributed: 2 ranks on 127.0.0.1 keep identical parameters and match one process on "
    "the same global batch (float64)",
    "[distributed][processes]") {
  // IG-NORM with small settings and random starts: every rank slices the start of the global
  // batch, so the 2 ranks use exactly the single process's starts (docs/distributed.md).
  const auto method = GENERATE(as<std::string>{}, "ig-norm", "natural");
  INFO("method " << method);
  TempDir tmp;
  const std::vector<std::string> common{"--synthetic",
                                        "64",
                                        "--dtype",
                                        "float64",
                                        "--model",
                                        "tiny",
                                        "--method",
                                        method,
                                        "--steps",
                                        "5",
                                        "--batch-size",
                                        "8",
                                        "--seed",
                                        "3",
                                        "--threads",
                                        "1",
                                        "--ig-steps",
                                        "4",
                                        "--inner-stride",
                                        "2",
                                        "--attack-steps",
                                        "2",
                                        "--epsilon",
                                        "0.1",
                                        "--attack-step-size",
                                        "0.02",
                                        "--lr",
                                        "0.01",
                                        "--log-every",
                                        "1",
                                        "--timeout",
                                        "60"};
  const std::string port = std::to_string(free_port());
  std::vector<Child> ranks;
  for (int rank = 0; rank < 2; ++rank) {
    ranks.push_back(
        spawn(RAR_DISTRIBUTED_BIN,
              concat(common, {"--rank", std::to_string(rank), "--world-size", "2", "--master-addr",
                              "127.0.0.1", "--master-port", port, "--out", tmp / "dist-{rank}.pt"}),
              tmp / ("rank" + std::to_string(rank) + ".log")));
  }
  const auto codes = wait_all(ranks, std::chrono::seconds(180));
  REQUIRE(codes == std::vector<int>{0, 0});
  CHECK_THAT(read_text(tmp / "rank0.log"), Contains("2 rank(s), gloo at 127.0.0.1:" + port) &&
                                               Contains("step 5/5") && Contains("images/s"));
  CHECK(read_text(tmp / "rank1.log").find("step ") == std::string::npos);  // rank 0 logs only

  REQUIRE(run_one(concat(common, {"--world-size", "1", "--out", tmp / "single.pt"}),
                  tmp / "single.log") == 0);
  REQUIRE(run_one(concat(common, {"--world-size", "1", "--steps", "1", "--lr", "1e-12", "--out",
                                  tmp / "almost-initial.pt"}),
                  tmp / "initial.log") == 0);

  const double ranks_apart = max_parameter_difference(tmp / "dist-0.pt", tmp / "dist-1.pt");
  const double from_single = max_parameter_difference(tmp / "dist-0.pt", tmp / "single.pt");
  const double moved = max_parameter_difference(tmp / "single.pt", tmp / "almost-initial.pt");
  INFO("rank 0 vs rank 1: " << ranks_apart << ", 2 ranks vs 1 process: " << from_single
                            << ", distance trained: " << moved);
  CHECK(ranks_apart == 0.0);
  CHECK(from_single < 1e-9);
  CHECK(moved > 1e-3);  // the comparison is not vacuous
}

TEST_CASE("rar_distributed rejects bad flags with a one-line error and a non-zero exit",
          "[distributed][processes]") {
  TempDir tmp;
  auto check_error = [&](const std::vector<std::string>& args, const std::string& expected) {
    const int code = run_one(args, tmp / "err.log", std::chrono::seconds(60));
    const std::string out = read_text(tmp / "err.log");
    INFO(out);
    CHECK(code != 0);
    CHECK_THAT(out, Contains(expected));
  };
  check_error({"--world-size", "3", "--batch-size", "10", "--synthetic", "20"},
              "rar_distributed: rank 0: error: --batch-size 10 (the global batch) must be "
              "divisible by --world-size 3");
  check_error({"--rank", "2", "--world-size", "2"}, "--rank must lie in [0, 2), got 2");
  check_error({"--method", "madry"}, "--method: madry not in");
  check_error({"--synthetic", "4", "--batch-size", "8"}, "--synthetic 4 is smaller than");
  check_error({"--ig-steps", "10", "--inner-stride", "3", "--synthetic", "16", "--batch-size", "8"},
              "--inner-stride 3 must divide --ig-steps 10");
  check_error({"--data", tmp / "nowhere", "--steps", "1"}, "nowhere");
  check_error({"--device", "cuda", "--world-size", "2", "--synthetic", "16", "--batch-size", "8"},
              "--device cuda");
}

TEST_CASE("rar_distributed stops by itself when the other ranks never come",
          "[distributed][processes]") {
  TempDir tmp;
  const auto start = std::chrono::steady_clock::now();
  // Rank 1 of 2 with nobody serving the store at that port.
  const int code =
      run_one({"--rank", "1", "--world-size", "2", "--master-port", std::to_string(free_port()),
               "--timeout", "3", "--synthetic", "16", "--batch-size", "8"},
              tmp / "alone.log", std::chrono::seconds(60));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  INFO(read_text(tmp / "alone.log"));
  CHECK(code == 1);
  CHECK_THAT(read_text(tmp / "alone.log"), Contains("rar_distributed: rank 1: error:"));
  CHECK(seconds < 45);
}

TEST_CASE(
    "rar_distributed ranks started with different training flags stop at once, naming "
    "the flag",
    "[distributed][processes]") {
  TempDir tmp;
  const std::string port = std::to_string(free_port());
  std::vector<Child> ranks;
  for (int rank = 0; rank < 2; ++rank) {
    ranks.push_back(
        spawn(RAR_DISTRIBUTED_BIN,
              {"--rank", std::to_string(rank), "--world-size", "2", "--master-port", port,
               "--synthetic", "16", "--batch-size", "8", "--model", "tiny", "--method", "natural",
               "--steps", rank == 0 ? "3" : "2", "--timeout", "30"},
              tmp / ("rank" + std::to_string(rank) + ".log")));
  }
  const auto start = std::chrono::steady_clock::now();
  const auto codes = wait_all(ranks, std::chrono::seconds(60));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(codes == std::vector<int>{1, 1});
  CHECK_THAT(read_text(tmp / "rank0.log"),
             Contains("rank 0: error: rank 1 was started with other training flags: '--steps 3' "
                      "here, '--steps 2' there"));
  CHECK_THAT(read_text(tmp / "rank1.log"),
             Contains("rank 1: error: rank 0 was started with other training flags: '--steps 2' "
                      "here, '--steps 3' there"));
  CHECK(seconds < 25);  // not the 30 s time-out: the check fails at the rendezvous
}
