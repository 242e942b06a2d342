// The example programs end to end on fixture data: bad flags and files, a killed and resumed
// training run, smoke runs of rar_mnist, rar_gtsrb and rar_flower, and their `compare`.

#include "support/experiment.hpp"
#include "support/fixtures.hpp"

#include <catch2/catch.hpp>

#include <csignal>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>
#include <sys/wait.h>
#include <thread>
#include <tuple>
#include <unistd.h>

using Catch::Contains;

namespace {

struct Run {
  int code;
  std::string output;
};

// Runs a program with arguments, stdout and stderr together.
Run run(const std::string& program, const std::vector<std::string>& args) {
  std::string command = program;
  for (const auto& a : args) command += " '" + a + "'";
  command += " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string output;
  char buffer[4096];
  while (size_t n = fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

// An MNIST-format fixture: `count` random 28x28 images with labels 0..9, in `dir`.
void write_digits(const std::string& dir, const std::string& prefix, uint32_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  Bytes pixels(static_cast<size_t>(count) * 28 * 28), labels(count);
  for (auto& p : pixels) p = static_cast<uint8_t>(rng() % 256);
  for (uint32_t i = 0; i < count; ++i) labels[i] = static_cast<uint8_t>(i % 10);
  write_idx_pair(dir, prefix, false, idx_file(2051, {count, 28, 28}, pixels),
                 idx_file(2049, {count}, labels));
}

int64_t checkpoint_step(const std::string& path) {
  torch::serialize::InputArchive archive;
  archive.load_from(path);
  torch::Tensor step;
  archive.read("step", step);
  return step.item<int64_t>();
}

void check_same_parameters(const std::string& a, const std::string& b) {
  auto net_a = rar::examples::load_model(a);
  auto net_b = rar::examples::load_model(b);
  const auto pa = net_a->parameters(), pb = net_b->parameters();
  REQUIRE(pa.size() == pb.size());
  for (size_t i = 0; i < pa.size(); ++i) CHECK(pa[i].equal(pb[i]));
}

/// Squared Euclidean distance between two networks' parameters (same architecture).
double squared_distance(const rar::examples::Net& a, const rar::examples::Net& b) {
  double d = 0;
  for (size_t i = 0; i < a->parameters().size(); ++i)
    d += (a->parameters()[i] - b->parameters()[i]).square().sum().item<double>();
  return d;
}

}  // namespace

TEST_CASE("load_model restores a checkpoint in the dtype it was saved in", "[examples][checkpoint]") {
  TempDir tmp;
  rar::examples::NetConfig config;
  config.conv1 = 3, config.conv2 = 4, config.fc = 8;
  for (const auto dtype : {torch::kFloat, torch::kDouble}) {
    torch::manual_seed(3);
    rar::examples::Net net(config);
    net->to(dtype);
    // float64 values that float32 cannot hold: a rounding load would change them.
    {
      torch::NoGradGuard no_grad;
      for (auto& p : net->parameters()) p.add_(1e-12);
    }
    const std::string path = tmp / "net.pt";
    rar::examples::save_checkpoint(path, net, nullptr, 7);
    const auto loaded = rar::examples::load_model(path);
    const auto saved = net->parameters(), back = loaded->parameters();
    REQUIRE(saved.size() == back.size());
    for (size_t i = 0; i < saved.size(); ++i) {
      CHECK(back[i].scalar_type() == dtype);
      CHECK(back[i].equal(saved[i]));
    }
    CHECK(!loaded->is_training());
  }
}

TEST_CASE("rar_mnist rejects bad flags and bad files with a one-line error and a non-zero exit",
          "[examples][cli]") {
  TempDir tmp;
  write_digits(tmp / "data", "t10k", 20, 1);
  auto r = run(RAR_MNIST_BIN, {"train", "--method", "bogus"});
  CHECK(r.code != 0);
  CHECK_THAT(r.output, Contains("--method: bogus not in"));
  r = run(RAR_MNIST_BIN, {"train", "--steps", "-3"});
  CHECK(r.code != 0);
  r = run(RAR_MNIST_BIN, {"train", "--data", tmp / "data", "--steps", "1"});
  CHECK(r.code == 1);
  CHECK_THAT(r.output, Contains("rar_mnist: error:") && Contains("train-images-idx3-ubyte"));
  r = run(RAR_MNIST_BIN, {"eval", "--data", tmp / "data", "--model", "A=" + tmp / "missing.pt"});
  CHECK(r.code == 1);
  CHECK_THAT(r.output, Contains("missing.pt: no such checkpoint file"));
  write_file(tmp / "junk.pt", Bytes{'n', 'o', 'p', 'e'});
  r = run(RAR_MNIST_BIN, {"eval", "--data", tmp / "data", "--model", "A=" + tmp / "junk.pt"});
  CHECK(r.code == 1);
  CHECK_THAT(r.output, Contains("junk.pt: not a rar example checkpoint"));
  // One line: the error and nothing else.
  CHECK(std::count(r.output.begin(), r.output.end(), '\n') == 1);
  // An unknown explainer is refused before anything runs, naming the choices.
  for (const std::string command : {"eval", "explain"}) {
    r = run(RAR_MNIST_BIN, {command, "--data", tmp / "data", "--model",
                            (command == "eval" ? "A=" : "") + tmp / "junk.pt", "--explainer", "shap"});
    INFO(command << ": " << r.output);
    CHECK(r.code != 0);
    CHECK_THAT(r.output,
               Contains("--explainer: shap not in {ig,saliency,deeplift,smoothgrad,guided-backprop,"
                        "gradient-x-input,gradient-shap,occlusion,kernel-shap,lime,expected-gradients,idgi,"
                        "blur-ig,guided-ig}"));
  }
}

TEST_CASE("rar_mnist --dataset mnist trains on the mnist package's digits with no --data",
          "[examples][mnist-json]") {
  TempDir tmp;
  write_mnist_package((fs::path(tmp / "share") / "rar" / "mnist").string(), std::vector<int>(10, 6));
  // The default folder: $RAR_MNIST_DIR, else $XDG_DATA_HOME/rar/mnist.
  const std::string xdg = "env -u RAR_MNIST_DIR XDG_DATA_HOME='" + tmp / "share" + "' ";
  auto r = run(xdg + RAR_MNIST_BIN, {"train", "--dataset", "mnist", "--steps", "2", "--batch-size",
                                     "8", "--out", tmp / "m.pt"});
  INFO(r.output);
  REQUIRE(r.code == 0);
  CHECK(fs::exists(tmp / "m.pt"));
  r = run(xdg + RAR_MNIST_BIN, {"eval", "--dataset", "mnist", "--model", "A=" + tmp / "m.pt",
                                "--accuracy-images", "10", "--attack-images", "2",
                                "--attack-iterations", "1", "--strength-images", "0"});
  INFO(r.output);
  CHECK(r.code == 0);
  // No digits anywhere: one line naming the folder and the script that brings them.
  r = run("RAR_MNIST_DIR='" + tmp / "none" + "' " + RAR_MNIST_BIN,
          {"train", "--dataset", "mnist", "--steps", "1", "--out", tmp / "n.pt"});
  CHECK(r.code == 1);
  CHECK_THAT(r.output, Contains(tmp / "none") && Contains("scripts/fetch-mnist"));
  CHECK(std::count(r.output.begin(), r.output.end(), '\n') == 1);
}

TEST_CASE("eval --protocol paper measures a quick model under the paper's protocol for the data set",
          "[examples][protocol]") {
  TempDir tmp;
  write_digits(tmp / "data", "train", 60, 3);
  write_digits(tmp / "data", "t10k", 40, 4);
  const auto t = run(RAR_MNIST_BIN, {"train", "--data", tmp / "data", "--steps", "1", "--out", tmp / "m.pt"});
  INFO(t.output);
  REQUIRE(t.code == 0);
  const std::vector<std::string> small = {"--accuracy-images", "10", "--attack-images", "2",
                                          "--attack-iterations", "1", "--strength-images", "0"};
  auto eval = [&](const std::vector<std::string>& flags) {
    std::vector<std::string> args = {"eval", "--data", tmp / "data", "--model", "A=" + tmp / "m.pt"};
    args.insert(args.end(), flags.begin(), flags.end());
    args.insert(args.end(), small.begin(), small.end());
    return run(RAR_MNIST_BIN, args);
  };
  // The quick preset's own protocol (Fashion-MNIST: eps 0.1, PGD 20, k 100 / 100, IG 20 points).
  auto r = eval({});
  INFO(r.output);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.output, Contains("protocol: eps 0.1; AA under PGD 20 x 0.01") &&
                           Contains("top-k attack k 100") && Contains("maps of 20 IG points") &&
                           Contains("the attack's of 5, iterate of lowest top-k intersection"));
  // The paper's, for Fashion-MNIST and for MNIST (eps 0.3, PGD 40, attack k 200).
  r = eval({"--protocol", "paper"});
  REQUIRE(r.code == 0);
  CHECK_THAT(r.output, Contains("protocol: eps 0.1; AA under PGD 20 x 0.01") &&
                           Contains("top-k attack k 100") && Contains("maps of 100 IG points"));
  r = eval({"--dataset", "mnist", "--protocol", "paper"});
  REQUIRE(r.code == 0);
  CHECK_THAT(r.output, Contains("protocol: eps 0.3; AA under PGD 40 x 0.01") &&
                           Contains("top-k attack k 200") && Contains("eval k 100") &&
                           Contains("maps of 100 IG points, the attack's of 100, iterate of "
                                    "lowest Kendall's tau"));
  // --attack-measure and --surrogate-ig-steps override the protocol's.
  r = eval({"--dataset", "mnist", "--protocol", "paper", "--attack-measure", "intersection",
            "--surrogate-ig-steps", "10"});
  REQUIRE(r.code == 0);
  CHECK_THAT(r.output, Contains("the attack's of 10, iterate of lowest top-k intersection"));
  r = eval({"--attack-measure", "lens"});
  REQUIRE(r.code == 0);
  CHECK_THAT(r.output, Contains("iterate of lowest LENS recall"));
  r = eval({"--attack-measure", "spearman"});
  CHECK(r.code != 0);
  CHECK_THAT(r.output, Contains("--attack-measure"));
  r = eval({"--protocol", "fast"});
  CHECK(r.code != 0);
  CHECK_THAT(r.output, Contains("--protocol"));
}

TEST_CASE("the quick preset decays the fast recipe's learning rate, and the loop follows a schedule",
          "[examples][schedule]") {
  using namespace rar::examples;
  for (const DatasetKind kind : {DatasetKind::fashion_mnist, DatasetKind::mnist}) {
    TrainConfig t;
    EvalConfig e;
    apply_preset(kind, "quick", Method::ig_sum_norm_fast, t, e);
    CHECK(t.learning_rate == 1e-3);
    REQUIRE(t.lr_schedule.size() == 1);
    CHECK(t.lr_schedule[0].first == 2000);
    CHECK(t.lr_schedule[0].second == 1e-4);
    // The other methods keep the constant rate; the paper preset is the paper's.
    for (const Method other : {Method::natural, Method::madry, Method::ig_sum_norm}) {
      TrainConfig o;
      apply_preset(kind, "quick", other, o, e);
      CHECK(o.lr_schedule.empty());
    }
    TrainConfig paper;
    apply_preset(kind, "paper", Method::ig_sum_norm_fast, paper, e);
    CHECK(paper.lr_schedule.empty());
  }
  // A schedule entry (from, rate) applies from step `from` on (steps count from 0): one Adam
  // step under {0: 1e-2} is one step at 1e-2, under {1: 1e-2} one step at the base rate.
  TempDir tmp;
  Dataset data;
  torch::manual_seed(5);
  data.images = torch::rand({8, 1, 28, 28});
  data.labels = torch::arange(8) % 10;
  data.classes = 10;
  auto one_step = [&](double rate, std::vector<std::pair<int64_t, double>> schedule) {
    TrainConfig c;
    c.net.conv1 = 4;
    c.net.conv2 = 4;
    c.net.fc = 8;
    c.batch_size = 8;
    c.max_steps = 1;
    c.max_seconds = 0;
    c.learning_rate = rate;
    c.lr_schedule = std::move(schedule);
    torch::manual_seed(11);
    Net net(c.net);
    std::ostringstream quiet;
    auto* old = std::cout.rdbuf(quiet.rdbuf());
    train(net, data, c, torch::kCPU, tmp / "s.pt", false);
    std::cout.rdbuf(old);
    return net;
  };
  const Net base = one_step(1e-3, {});
  CHECK(squared_distance(one_step(1e-3, {{0, 1e-2}}), one_step(1e-2, {})) == 0.0);
  CHECK(squared_distance(one_step(1e-3, {{1, 1e-2}}), base) == 0.0);
  CHECK(squared_distance(one_step(1e-3, {{0, 1e-2}}), base) > 1e-6);
}

TEST_CASE("a killed IG-NORM training run resumes to the parameters of an uninterrupted one",
          "[examples][checkpoint]") {
  TempDir tmp;
  write_digits(tmp / "data", "train", 100, 2);
  const std::vector<std::string> common = {"train", "--data", tmp / "data", "--method", "ig-norm",
                                           "--steps", "24", "--checkpoint-every", "2",
                                           "--threads", "1", "--seed", "5"};
  auto with_out = [&](const std::string& out, bool resume) {
    auto args = common;
    args.push_back("--out");
    args.push_back(out);
    if (resume) args.push_back("--resume");
    return args;
  };
  const auto full = run(RAR_MNIST_BIN, with_out(tmp / "full.pt", false));
  REQUIRE(full.code == 0);
  CHECK_THAT(full.output, Contains("[IG-NORM] step 20") && Contains("img/s") && Contains("eta"));

  // Start the same run, kill it (SIGKILL: no chance to clean up) once it has checkpointed.
  std::vector<std::string> args = with_out(tmp / "killed.pt", false);
  std::vector<char*> argv;
  std::string binary = RAR_MNIST_BIN;
  argv.push_back(binary.data());
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    freopen("/dev/null", "w", stdout);
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!(fs::exists(tmp / "killed.pt") && checkpoint_step(tmp / "killed.pt") >= 4) &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  const int64_t reached = checkpoint_step(tmp / "killed.pt");
  INFO("killed at checkpoint step " << reached);
  REQUIRE(reached >= 4);
  REQUIRE(reached < 24);  // it really was interrupted

  const auto resumed = run(RAR_MNIST_BIN, with_out(tmp / "killed.pt", true));
  REQUIRE(resumed.code == 0);
  CHECK_THAT(resumed.output, Contains("resumed " + tmp / "killed.pt" + " at step " + std::to_string(reached)));
  CHECK(checkpoint_step(tmp / "killed.pt") == 24);
  check_same_parameters(tmp / "full.pt", tmp / "killed.pt");
}

TEST_CASE("rar_mnist trains, evaluates and explains on fixture data", "[examples][smoke]") {
  TempDir tmp;
  write_digits(tmp / "data", "train", 60, 3);
  write_digits(tmp / "data", "t10k", 40, 4);
  REQUIRE(run(RAR_MNIST_BIN, {"train", "--data", tmp / "data", "--steps", "3", "--out", tmp / "m.pt"}).code == 0);
  const auto e = run(RAR_MNIST_BIN, {"eval", "--data", tmp / "data", "--model", "NATURAL=" + tmp / "m.pt",
                                     "--accuracy-images", "20", "--attack-images", "3",
                                     "--attack-iterations", "2", "--results", tmp / "table"});
  REQUIRE(e.code == 0);
  CHECK_THAT(e.output, Contains("NATURAL") && Contains("NA") && Contains("CO"));
  CHECK(fs::exists(tmp / "table.csv"));
  CHECK(fs::exists(tmp / "table.json"));
  // By default the surrogate's beta is chosen by fidelity, once per model.
  CHECK_THAT(e.output, Contains("[NATURAL] surrogate beta ") && Contains("surrogate agreement NATURAL (beta "));
  // The attack is checked against random-sign at the same budget on its first images.
  CHECK_THAT(e.output, Contains("attack strength NATURAL on ") && Contains("vs random-sign"));
  // A fixed beta, and the maps' quality metrics next to IN/CO.
  const auto q = run(RAR_MNIST_BIN, {"eval", "--data", tmp / "data", "--model", "NATURAL=" + tmp / "m.pt",
                                     "--accuracy-images", "10", "--attack-images", "3",
                                     "--attack-iterations", "2", "--surrogate-beta", "10", "--metrics",
                                     "--results", tmp / "quality"});
  INFO(q.output);
  REQUIRE(q.code == 0);
  CHECK_THAT(q.output, Contains("surrogate agreement NATURAL (beta 10): ") && Contains("infidelity") &&
                           Contains("insertion") && Contains("complexity") &&
                           Contains("LENS-recall") && Contains("certified radius") &&
                           Contains("faithfulness") && Contains("Lipschitz"));
  CHECK_THAT(q.output, !Contains("[NATURAL] surrogate beta "));
  std::ifstream quality_csv(tmp / "quality.csv");
  std::string header;
  std::getline(quality_csv, header);
  CHECK(header == "model,NA,AA,IN,CO,IN_se,CO_se,accuracy_images,attacked_images,prediction_kept,surrogate_beta,"
                  "surrogate_agreement,infidelity,deletion_auc,insertion_auc,sparseness,complexity,"
                  "strength_images,strength_IN,strength_CO,random_sign_IN,random_sign_CO,lens_recall,"
                  "lens_precision,certified_radius,faithfulness_correlation,local_lipschitz,"
                  "relative_input_stability");
  const auto bad_beta = run(RAR_MNIST_BIN, {"eval", "--data", tmp / "data", "--model", "A=" + tmp / "m.pt",
                                            "--surrogate-beta", "-1"});
  CHECK(bad_beta.code != 0);
  CHECK_THAT(bad_beta.output, Contains("must be 'auto' or a number > 0, got -1"));
  const auto x = run(RAR_MNIST_BIN, {"explain", "--data", tmp / "data", "--model", tmp / "m.pt",
                                     "--out", tmp / "png", "--count", "2"});
  REQUIRE(x.code == 0);
  CHECK(fs::exists(tmp / "png/m.png"));
  CHECK_THAT(x.output, Contains("rows: image | IG map") && Contains("surrogate beta "));
  // The panel's β is eval's: chosen by the same rule on the same attacked images (all of eval's,
  // not only the 2 shown), and the panel's line names it.
  {
    const auto choice = [](const std::string& output, const std::string& name) {
      const std::string key = "[" + name + "] surrogate beta ";
      const auto at = output.find(key);
      if (at == std::string::npos) return std::string();
      return output.substr(at + key.size(), output.find(')', at) - at - key.size());
    };
    const auto ev = run(RAR_MNIST_BIN, {"eval", "--data", tmp / "data", "--model", "m=" + tmp / "m.pt",
                                        "--accuracy-images", "2", "--attack-iterations", "1",
                                        "--strength-images", "0"});
    INFO(ev.output << "\n" << x.output);
    REQUIRE(ev.code == 0);
    const std::string from_eval = choice(ev.output, "m"), from_explain = choice(x.output, "m");
    REQUIRE(!from_eval.empty());
    CHECK(from_explain == from_eval);  // "10 (class agreement 100%, top-100 map agreement ..."
    const std::string beta = from_eval.substr(0, from_eval.find(' '));
    CHECK_THAT(x.output, Contains("intersection per row, surrogate beta " + beta + ":"));
  }
  // Every method on the same images, one row each (the comparison panel).
  const auto all = run(RAR_MNIST_BIN, {"explain", "--data", tmp / "data", "--model", tmp / "m.pt",
                                       "--out", tmp / "png", "--count", "2", "--compare-explainers", "all"});
  INFO(all.output);
  REQUIRE(all.code == 0);
  CHECK(fs::exists(tmp / "png/m-explainers.png"));
  CHECK_THAT(all.output, Contains("occlusion") && Contains("KernelSHAP") && Contains("LIME") &&
                             Contains("GradientSHAP") && Contains("one row per method"));
  const auto bad = run(RAR_MNIST_BIN, {"explain", "--data", tmp / "data", "--model", tmp / "m.pt",
                                       "--compare-explainers", "ig,shap"});
  CHECK(bad.code == 1);
  CHECK_THAT(bad.output, Contains("--compare-explainers: unknown explainer 'shap'"));

  // Other attribution methods: saliency attacks itself through the surrogate; DeepLIFT is
  // measured while the attack follows the surrogate's IG, and the program says so.
  const auto s = run(RAR_MNIST_BIN, {"eval", "--data", tmp / "data", "--model", "NATURAL=" + tmp / "m.pt",
                                     "--accuracy-images", "10", "--attack-images", "3",
                                     "--attack-iterations", "2", "--explainer", "saliency"});
  INFO(s.output);
  REQUIRE(s.code == 0);
  CHECK_THAT(s.output, Contains("NATURAL") && Contains("CO"));
  const auto d = run(RAR_MNIST_BIN, {"explain", "--data", tmp / "data", "--model", tmp / "m.pt",
                                     "--out", tmp / "deeplift", "--count", "2", "--explainer", "deeplift"});
  INFO(d.output);
  REQUIRE(d.code == 0);
  CHECK_THAT(d.output, Contains("explainer deeplift: IN/CO compare DeepLIFT maps") &&
                           Contains("the attack follows the gradient of the smooth surrogate's IG") &&
                           Contains("rows: image | DeepLIFT map"));
  CHECK(fs::exists(tmp / "deeplift/m.png"));
}

TEST_CASE("train --init fine-tunes from another checkpoint's weights", "[examples][smoke]") {
  TempDir tmp;
  write_digits(tmp / "data", "train", 60, 3);
  write_digits(tmp / "data", "t10k", 20, 4);
  const auto train = [&](const std::string& out, std::vector<std::string> extra) {
    std::vector<std::string> args = {"train", "--data", tmp / "data", "--out", tmp / out};
    args.insert(args.end(), extra.begin(), extra.end());
    return run(RAR_MNIST_BIN, args);
  };
  REQUIRE(train("base.pt", {"--steps", "4", "--seed", "1"}).code == 0);
  const auto tuned = train("tuned.pt", {"--steps", "1", "--init", tmp / "base.pt", "--method", "ig-norm"});
  INFO(tuned.output);
  REQUIRE(tuned.code == 0);
  CHECK_THAT(tuned.output, Contains("starting from the weights of " + tmp / "base.pt"));
  CHECK(checkpoint_step(tmp / "tuned.pt") == 1);  // a fresh step count
  REQUIRE(train("fresh.pt", {"--steps", "1", "--method", "ig-norm"}).code == 0);
  // One step away from the base weights, far from a fresh initialization.
  auto base = rar::examples::load_model(tmp / "base.pt");
  auto fine = rar::examples::load_model(tmp / "tuned.pt");
  auto fresh = rar::examples::load_model(tmp / "fresh.pt");
  const double to_base = squared_distance(fine, base), fresh_to_base = squared_distance(fresh, base);
  CHECK(to_base > 0);
  CHECK(to_base < 0.01 * fresh_to_base);
  const auto missing = train("x.pt", {"--steps", "1", "--init", tmp / "nope.pt"});
  CHECK(missing.code != 0);
  CHECK_THAT(missing.output, Contains("nope.pt"));
}

TEST_CASE("train --lambda, --beta, --epsilon and --learning-rate set the objective's settings",
          "[examples][smoke]") {
  TempDir tmp;
  write_digits(tmp / "data", "train", 60, 3);
  write_digits(tmp / "data", "t10k", 20, 4);
  const auto train = [&](const std::string& out, std::vector<std::string> extra) {
    std::vector<std::string> args = {"train", "--data", tmp / "data", "--out", tmp / out,
                                     "--steps", "2", "--seed", "3", "--ig-steps", "4",
                                     "--inner-stride", "2", "--inner-steps", "2"};
    args.insert(args.end(), extra.begin(), extra.end());
    const auto r = run(RAR_MNIST_BIN, args);
    INFO(r.output);
    REQUIRE(r.code == 0);
    return rar::examples::load_model(tmp / out);
  };
  // Same seed, same data: the weights differ only through the regularizer's weight.
  for (const auto& [method, flag] :
       std::vector<std::pair<std::string, std::string>>{{"ig-norm", "--lambda"},
                                                        {"ig-sum-norm", "--beta"}}) {
    INFO(method << " " << flag);
    const auto none = train(method + "-0.pt", {"--method", method, flag, "0"});
    const auto big = train(method + "-5.pt", {"--method", method, flag, "5"});
    const auto again = train(method + "-5b.pt", {"--method", method, flag, "5"});
    CHECK(squared_distance(big, again) == 0.0);
    CHECK(squared_distance(none, big) > 1e-10);
  }
  // --epsilon: the preset's own radius (0.1 on Fashion-MNIST) changes nothing, another one
  // changes the adversarial steps.
  {
    const auto preset = train("madry.pt", {"--method", "madry"});
    CHECK(squared_distance(preset, train("madry-eps.pt", {"--method", "madry", "--epsilon", "0.1"})) ==
          0.0);
    CHECK(squared_distance(preset, train("madry-eps2.pt", {"--method", "madry", "--epsilon", "0.3"})) >
          1e-10);
  }
  // With weight 0, IG-NORM's step is the natural step: the regularizer is gone.
  const auto natural = train("natural.pt", {"--method", "natural"});
  CHECK(squared_distance(natural, train("ig-norm-0b.pt", {"--method", "ig-norm", "--lambda", "0"})) <
        1e-12);
  // --learning-rate: Adam's first step moves every parameter with a gradient by the rate
  // (m / sqrt(v) = g / |g|), so one step at 1e-2 and one at 1e-3 (the preset's) differ by 9e-3.
  {
    const auto one_step = [&](const std::string& out, std::vector<std::string> extra) {
      std::vector<std::string> args = {"train", "--data", tmp / "data", "--out", tmp / out,
                                       "--steps", "1", "--seed", "3", "--method", "natural"};
      args.insert(args.end(), extra.begin(), extra.end());
      const auto r = run(RAR_MNIST_BIN, args);
      INFO(r.output);
      REQUIRE(r.code == 0);
      return rar::examples::load_model(tmp / out);
    };
    const auto slow = one_step("lr-slow.pt", {});
    const auto fast = one_step("lr-fast.pt", {"--learning-rate", "1e-2"});
    double largest = 0;
    for (size_t i = 0; i < slow->parameters().size(); ++i)
      largest = std::max(largest,
                         (slow->parameters()[i] - fast->parameters()[i]).abs().max().item<double>());
    CHECK(largest == Approx(9e-3).epsilon(1e-3));
  }
  for (const std::vector<std::string>& bad :
       {std::vector<std::string>{"train", "--lambda", "-1"}, {"train", "--beta", "x"},
        {"train", "--learning-rate", "0"}, {"train", "--epsilon", "0"},
        {"eval", "--model", "A=a.pt", "--surrogate-ig-steps", "0"}}) {
    const auto r = run(RAR_MNIST_BIN, bad);
    INFO(r.output);
    CHECK(r.code != 0);
    CHECK_THAT(r.output, Contains(bad[bad.size() - 2]));  // names the flag
  }
}

TEST_CASE("rar_gtsrb trains and evaluates on a GTSRB fixture tree", "[examples][smoke]") {
  TempDir tmp;
  write_gtsrb(tmp);
  REQUIRE(run(RAR_GTSRB_BIN, {"train", "--data", tmp.path.string(), "--steps", "2", "--batch-size", "2",
                              "--out", tmp / "g.pt"}).code == 0);
  const auto e = run(RAR_GTSRB_BIN, {"eval", "--data", tmp.path.string(), "--model", "NATURAL=" + tmp / "g.pt",
                                     "--attack-images", "2", "--attack-iterations", "1"});
  INFO(e.output);
  REQUIRE(e.code == 0);
  CHECK_THAT(e.output, Contains("NATURAL"));
  // DeepLIFT on the leaky residual network (standardized input) through the program.
  const auto d = run(RAR_GTSRB_BIN, {"eval", "--data", tmp.path.string(), "--model", "NATURAL=" + tmp / "g.pt",
                                     "--attack-images", "2", "--attack-iterations", "1",
                                     "--explainer", "deeplift"});
  INFO(d.output);
  REQUIRE(d.code == 0);
  CHECK_THAT(d.output, Contains("explainer deeplift") && Contains("NATURAL"));
  // Guided backprop changes ReLUs only, and this ResNet's are leaky: refused in one line.
  const auto g = run(RAR_GTSRB_BIN, {"eval", "--data", tmp.path.string(), "--model", "NATURAL=" + tmp / "g.pt",
                                     "--explainer", "guided-backprop"});
  INFO(g.output);
  CHECK(g.code == 1);
  CHECK_THAT(g.output, Contains("rar_gtsrb: error: --explainer guided-backprop: this network's "
                                "activations are leaky ReLUs"));
  CHECK(std::count(g.output.begin(), g.output.end(), '\n') == 1);
}

TEST_CASE("rar_flower trains and evaluates on a Flower-17 fixture tree", "[examples][smoke]") {
  TempDir tmp;
  write_flowers(tmp);
  REQUIRE(run(RAR_FLOWER_BIN, {"train", "--data", tmp / "jpg", "--steps", "1", "--batch-size", "2",
                               "--out", tmp / "f.pt"}).code == 0);
  const auto e = run(RAR_FLOWER_BIN, {"eval", "--data", tmp / "jpg", "--model", "NATURAL=" + tmp / "f.pt",
                                      "--accuracy-images", "4", "--attack-images", "1",
                                      "--attack-iterations", "1"});
  INFO(e.output);
  REQUIRE(e.code == 0);
  CHECK_THAT(e.output, Contains("NATURAL"));
}

namespace {

// The rows of a CSV file written by `compare`: fields split at commas (the method field is
// quoted and has no commas), the header first.
std::vector<std::vector<std::string>> read_csv(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::vector<std::string>> rows;
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> fields;
    std::stringstream stream(line);
    std::string field;
    while (std::getline(stream, field, ',')) fields.push_back(field);
    if (!line.empty() && line.back() == ',') fields.emplace_back();  // an empty last field
    rows.push_back(fields);
  }
  return rows;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), {}};
}

size_t count_of(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// Checks one data row of a comparison CSV: the method's quoted name, at least one step, a
// finite positive time per step, NA/AA/IN in [0, 1], CO in [-1, 1], training time >= the budget,
// `accuracy_images` images for NA/AA and at least `attacked` for IN/CO.
void check_compare_row(const std::vector<std::string>& row, const std::string& method,
                       double budget, int64_t accuracy_images = 10, int64_t attacked = 1) {
  INFO("row of " << method);
  REQUIRE(row.size() == 12);
  CHECK(row[0] == "\"" + method + "\"");
  CHECK(std::stoll(row[1]) >= 1);
  const double per_step = std::stod(row[2]);
  CHECK(std::isfinite(per_step));
  CHECK(per_step > 0);
  for (int column : {3, 4, 5}) {
    const double v = std::stod(row[column]);
    CHECK(std::isfinite(v));
    CHECK(v >= 0);
    CHECK(v <= 1);
  }
  const double co = std::stod(row[6]);
  CHECK(std::isfinite(co));
  CHECK(co >= -1);
  CHECK(co <= 1);
  const double trained = std::stod(row[7]);
  CHECK(trained >= budget);  // the loop stops at the first step past the budget
  CHECK(trained == Approx(per_step * std::stod(row[1])).epsilon(1e-9));
  CHECK(std::stod(row[8]) > 0);  // CPU seconds
  CHECK(std::stoll(row[9]) == accuracy_images);
  CHECK(std::stoll(row[10]) >= attacked);
}

const std::vector<std::string> kCompareEval = {"--accuracy-images", "10", "--attack-images", "2",
                                               "--attack-iterations", "1", "--threads", "1"};

}  // namespace

TEST_CASE("rar_mnist compare trains every method for the same time and evaluates each",
          "[examples][compare]") {
  TempDir tmp;
  write_digits(tmp / "data", "train", 60, 5);
  write_digits(tmp / "data", "t10k", 30, 6);
  std::vector<std::string> args = {"compare", "--data", tmp / "data", "--seconds", "0.05",
                                   "--results", tmp / "all"};
  args.insert(args.end(), kCompareEval.begin(), kCompareEval.end());
  const auto r = run(RAR_MNIST_BIN, args);
  INFO(r.output);
  REQUIRE(r.code == 0);
  const auto methods = rar::examples::method_names();
  REQUIRE(methods.size() == 10);
  CHECK_THAT(r.output, Contains("== 1/10: NATURAL, 0.05 s of training ==") &&
                           Contains("== 10/10: DISTRIBUTIONAL") &&
                           Contains("[IG-SUM-NORM-FAST] trained") && Contains("[SSR] trained") &&
                           Contains("steps/s") && Contains("wrote " + tmp / "all.csv"));
  const auto csv = read_csv(tmp / "all.csv");
  REQUIRE(csv.size() == 1 + methods.size());
  CHECK(csv[0][0] == "\"method\"");
  CHECK(csv[0][2] == "\"seconds_per_step\"");
  CHECK(csv[0][6] == "\"CO\"");
  for (size_t i = 0; i < methods.size(); ++i) check_compare_row(csv[i + 1], methods[i], 0.05);

  const std::string json = read_text(tmp / "all.json");
  CHECK(count_of(json, "\"method\": ") == methods.size());
  CHECK(count_of(json, "null") == 0);  // every number finite
  CHECK_THAT(json, Contains("\"budget_seconds\": 0.05") &&
                       Contains("\"method\": \"ig-sum-norm\", \"title\": \"IG-SUM-NORM\""));
  // The plot: two panels and a legend, drawn at twice the size, with the legend's colors.
  const auto plot = rar::examples::read_raster(tmp / "all.png", 3);
  CHECK(plot.height == 2 * 250);
  CHECK(plot.width > 2 * 2 * 300);
  // Series 0 (NATURAL) and 1 (Madry) in the palette's first colors: at least the legend's
  // 5 x 5 square, doubled, of each (markers of methods that land on the same point may hide).
  size_t blue = 0, orange = 0;
  for (size_t p = 0; p + 2 < plot.pixels.size(); p += 3) {
    blue += plot.pixels[p] == 31 && plot.pixels[p + 1] == 119 && plot.pixels[p + 2] == 180;
    orange += plot.pixels[p] == 255 && plot.pixels[p + 1] == 127 && plot.pixels[p + 2] == 14;
  }
  CHECK(blue >= 5 * 5 * 4);
  CHECK(orange >= 5 * 5 * 4);
}

TEST_CASE("compare --resume skips finished methods and continues others from their checkpoints",
          "[examples][compare]") {
  TempDir tmp;
  write_digits(tmp / "data", "train", 60, 7);
  write_digits(tmp / "data", "t10k", 30, 8);
  auto compare = [&](const std::string& methods, std::vector<std::string> extra) {
    std::vector<std::string> args = {"compare", "--data", tmp / "data", "--seconds", "0.05",
                                     "--methods", methods, "--results", tmp / "c"};
    args.insert(args.end(), kCompareEval.begin(), kCompareEval.end());
    args.insert(args.end(), extra.begin(), extra.end());
    return run(RAR_MNIST_BIN, args);
  };
  const auto first = compare("natural,input-grad", {});
  INFO(first.output);
  REQUIRE(first.code == 0);
  const auto before = read_csv(tmp / "c.csv");
  REQUIRE(before.size() == 3);
  CHECK(fs::exists(tmp / "c.natural.pt"));
  CHECK(fs::exists(tmp / "c.input-grad.pt"));
  CHECK(fs::exists(tmp / "c.state"));

  // A third method added: the two finished ones are skipped, their rows kept as they were.
  const auto more = compare("natural,input-grad,ssr", {"--resume"});
  INFO(more.output);
  REQUIRE(more.code == 0);
  CHECK_THAT(more.output,
             Contains("NATURAL finished in an earlier run (" + before[1][1] + " steps): skipped") &&
                 Contains("INPUT-GRAD finished in an earlier run") && Contains("[SSR] trained"));
  CHECK(count_of(more.output, "[NATURAL] NA/AA") == 0);  // not evaluated again
  const auto after = read_csv(tmp / "c.csv");
  REQUIRE(after.size() == 4);
  CHECK(after[1] == before[1]);
  CHECK(after[2] == before[2]);
  check_compare_row(after[3], "ssr", 0.05);

  // Interrupted before its row was saved: the checkpoint holds the budget's training time, so
  // the resumed method trains no further and evaluates to the same row.
  fs::remove(tmp / "c.state");
  const auto again = compare("natural", {"--resume"});
  INFO(again.output);
  REQUIRE(again.code == 0);
  CHECK_THAT(again.output, Contains("resumed " + tmp / "c.natural.pt" + " at step " + before[1][1]));
  const auto resumed = read_csv(tmp / "c.csv");
  REQUIRE(resumed.size() == 2);
  CHECK(resumed[1] == before[1]);

  // A state written with other settings is refused in one line.
  const auto other = compare("natural", {"--resume", "--seed", "9"});
  CHECK(other.code == 1);
  CHECK_THAT(other.output, Contains("c.state: written by a comparison with other settings"));
  CHECK(count_of(other.output, "\n") == 1);
}

TEST_CASE("compare refuses a bad --methods list in one line with exit code 1",
          "[examples][compare][cli]") {
  for (const auto& [methods, message] :
       std::vector<std::pair<std::string, std::string>>{
           {"natural,bogus",
            "rar_mnist: error: --methods: unknown method 'bogus' (expected natural, madry, "
            "ig-norm, ig-sum-norm, ig-sum-norm-fast, input-grad, ssr, art, alignment or "
            "distributional)"},
           {"ssr,art,ssr", "rar_mnist: error: --methods: method 'ssr' is listed twice"},
           {"", "rar_mnist: error: --methods: unknown method ''"}}) {
    // No data directory is needed: the list is checked before anything loads.
    const auto r = run(RAR_MNIST_BIN, {"compare", "--data", "/nonexistent", "--methods",
                                       methods.empty() ? "," : methods});
    INFO(methods << ": " << r.output);
    CHECK(r.code == 1);
    CHECK_THAT(r.output, Contains(message));
    CHECK(count_of(r.output, "\n") == 1);
  }
}

TEST_CASE("rar_gtsrb and rar_flower compare on their fixture trees", "[examples][compare]") {
  TempDir tmp;
  write_gtsrb(tmp);
  auto g = run(RAR_GTSRB_BIN, {"compare", "--data", tmp.path.string(), "--methods", "natural,ssr",
                               "--seconds", "0.05", "--train-batch-size", "2", "--accuracy-images",
                               "10", "--attack-images", "1", "--attack-iterations", "1",
                               "--threads", "1", "--results", tmp / "g"});
  INFO(g.output);
  REQUIRE(g.code == 0);
  auto csv = read_csv(tmp / "g.csv");
  REQUIRE(csv.size() == 3);
  // The fixture's test set has 3 images, of which the barely trained nets may get none right.
  check_compare_row(csv[1], "natural", 0.05, 3, 0);
  check_compare_row(csv[2], "ssr", 0.05, 3, 0);

  write_flowers(tmp);
  const auto f = run(RAR_FLOWER_BIN, {"compare", "--data", tmp / "jpg", "--methods", "madry",
                                      "--seconds", "0.05", "--train-batch-size", "2",
                                      "--accuracy-images", "10", "--attack-images", "1",
                                      "--attack-iterations", "1", "--threads", "1", "--results",
                                      tmp / "f"});
  INFO(f.output);
  REQUIRE(f.code == 0);
  csv = read_csv(tmp / "f.csv");
  REQUIRE(csv.size() == 2);
  check_compare_row(csv[1], "madry", 0.05);
}

namespace {

// Checks one data row of a frontier CSV: the method, its budget, steps, training time past the
// budget, NA/AA/IN in [0, 1] with a standard error, CO in [-1, 1], the surrogate's beta.
void check_frontier_row(const std::vector<std::string>& row, const std::string& method,
                        double budget) {
  INFO("frontier row of " << method << " at " << budget << " s");
  REQUIRE(row.size() == 19);
  CHECK(row[0] == "\"" + method + "\"");
  CHECK(std::stod(row[1]) == budget);
  CHECK(std::stoll(row[2]) >= 1);
  CHECK(std::stod(row[3]) >= budget);  // the snapshot is the first step past the budget
  CHECK(std::stod(row[4]) > 0);
  for (int column : {5, 6, 7}) {
    const double v = std::stod(row[column]);
    CHECK(v >= 0);
    CHECK(v <= 1);
  }
  CHECK(std::stod(row[8]) >= 0);  // IN's standard error over 2 images
  const double co = std::stod(row[9]);
  CHECK(co >= -1);
  CHECK(co <= 1);
  CHECK(std::stod(row[11]) > 0);  // the surrogate's beta, chosen per snapshot
  CHECK(std::stoll(row[13]) == 10);
  CHECK(std::stoll(row[16]) <= 1);  // the strength check on the first attacked image
}

const std::vector<std::string> kFrontierEval = {"--accuracy-images", "10", "--attack-images", "2",
                                                "--attack-iterations", "1", "--strength-images",
                                                "1", "--threads", "1"};

}  // namespace

TEST_CASE("frontier snapshots each method at every budget, evaluates each and plots them",
          "[examples][frontier]") {
  TempDir tmp;
  write_digits(tmp / "data", "train", 60, 9);
  write_digits(tmp / "data", "t10k", 30, 10);
  auto frontier = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"frontier", "--data", tmp / "data", "--methods",
                                     "natural,ig-sum-norm-fast", "--budgets", "0.05,0.1",
                                     "--results", tmp / "f"};
    args.insert(args.end(), kFrontierEval.begin(), kFrontierEval.end());
    args.insert(args.end(), extra.begin(), extra.end());
    return run(RAR_MNIST_BIN, args);
  };
  const auto r = frontier({});
  INFO(r.output);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.output, Contains("== 1/2: NATURAL, snapshots at 0.05 0.1 s of training ==") &&
                           Contains("[IG-SUM-NORM-FAST] snapshot at 0.1 s") &&
                           Contains("evaluating the 0.05 s snapshot") &&
                           Contains("wrote " + tmp / "f.csv"));
  const auto csv = read_csv(tmp / "f.csv");
  REQUIRE(csv.size() == 5);
  CHECK(csv[0][1] == "\"budget\"");
  CHECK(csv[0][8] == "\"IN_se\"");
  check_frontier_row(csv[1], "natural", 0.05);
  check_frontier_row(csv[2], "natural", 0.1);
  check_frontier_row(csv[3], "ig-sum-norm-fast", 0.05);
  check_frontier_row(csv[4], "ig-sum-norm-fast", 0.1);
  // A later snapshot has trained at least as long as an earlier one.
  CHECK(std::stoll(csv[2][2]) >= std::stoll(csv[1][2]));
  CHECK(std::stod(csv[2][3]) >= std::stod(csv[1][3]));
  for (const char* file : {"f.natural.0.05s.pt", "f.natural.0.1s.pt",
                           "f.ig-sum-norm-fast.0.05s.pt", "f.ig-sum-norm-fast.0.1s.pt", "f.state",
                           "f.json"})
    CHECK(fs::exists(tmp / file));
  const std::string json = read_text(tmp / "f.json");
  CHECK(count_of(json, "\"budget\": ") == 4);
  CHECK_THAT(json, Contains("\"title\": \"Fashion-MNIST, quick preset: robustness against "
                            "training time\""));
  // Four panels in a 2 x 2 grid under a title, doubled, with both methods' colors.
  const auto plot = rar::examples::read_raster(tmp / "f.png", 3);
  CHECK(plot.height == 2 * (18 + 2 * 250));
  size_t blue = 0, orange = 0;
  for (size_t p = 0; p + 2 < plot.pixels.size(); p += 3) {
    blue += plot.pixels[p] == 31 && plot.pixels[p + 1] == 119 && plot.pixels[p + 2] == 180;
    orange += plot.pixels[p] == 255 && plot.pixels[p + 1] == 127 && plot.pixels[p + 2] == 14;
  }
  // The legend's square and the markers: the second series' last marker in each panel is drawn
  // on top of everything; the first series' may be hidden where points coincide.
  CHECK(blue >= 5 * 5 * 4 * (1 + 1));
  CHECK(orange >= 5 * 5 * 4 * (1 + 4));

  // Resumed after everything was evaluated: nothing is trained or evaluated again.
  const auto again = frontier({"--resume"});
  INFO(again.output);
  REQUIRE(again.code == 0);
  CHECK(count_of(again.output, "evaluated in an earlier run: skipped") == 2);
  CHECK(count_of(again.output, "evaluating the") == 0);
  CHECK(read_csv(tmp / "f.csv") == csv);

  // Killed after the last snapshot of the second method, before its rows were saved: the
  // resumed run evaluates the saved snapshots without training them again.
  fs::remove(tmp / "f.state");
  fs::remove(tmp / "f.ig-sum-norm-fast.0.1s.pt");
  const auto killed = frontier({"--resume"});
  INFO(killed.output);
  REQUIRE(killed.code == 0);
  CHECK_THAT(killed.output,
             Contains("[NATURAL] every snapshot exists: not trained again") &&
                 Contains("resumed " + tmp / "f.ig-sum-norm-fast.pt"));
  const auto resumed = read_csv(tmp / "f.csv");
  REQUIRE(resumed.size() == 5);
  // The natural model's snapshots are the same files: the same steps and training times.
  for (size_t i : {1, 2, 3}) {
    CHECK(resumed[i][1] == csv[i][1]);
    CHECK(resumed[i][2] == csv[i][2]);
    CHECK(resumed[i][3] == csv[i][3]);
  }
  // The missing snapshot is taken from the checkpoint, already past the last budget.
  check_frontier_row(resumed[4], "ig-sum-norm-fast", 0.1);

  // A state written with other settings is refused in one line.
  const auto other = frontier({"--resume", "--seed", "3"});
  CHECK(other.code == 1);
  CHECK_THAT(other.output, Contains("f.state: written by a frontier run with other settings"));
}

TEST_CASE("frontier refuses bad --budgets and --methods in one line with exit code 1",
          "[examples][frontier][cli]") {
  for (const auto& [flag, value, message] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"--budgets", "60,30", "--budgets: budgets must increase, got 30 after 60"},
           {"--budgets", "10,x", "--budgets: 'x' is not a number of seconds"},
           {"--budgets", "0,10", "--budgets: budgets must be > 0 seconds, got 0"},
           {"--methods", "natural,fast", "--methods: unknown method 'fast'"}}) {
    const auto r = run(RAR_MNIST_BIN, {"frontier", "--data", "/nonexistent", flag, value});
    INFO(r.output);
    CHECK(r.code == 1);
    CHECK_THAT(r.output, Contains(message));
    CHECK(count_of(r.output, "\n") == 1);
  }
}
