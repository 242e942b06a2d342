// Smooth MPRT and Efficient MPRT against numpy/torch transcriptions of Quantus' SmoothMPRT and
// EfficientMPRT (tests/data/make_randomisation_reference.py) with the same random weights and
// noise, the histogram entropy against np.histogram + scipy.stats.entropy, the model left
// untouched, and bad input.

#include <catch2/catch.hpp>
#include <rar/explain/explainers.hpp>
#include <rar/metrics/randomisation.hpp>
#include <rar/metrics/sanity.hpp>
#include <string>

#include "support/models.hpp"
#include "support/reference.hpp"

using Catch::Matchers::Contains;
using rar::test::max_rel_diff;

namespace {

const rar::test::Reference& randomisation_reference() {
  static const rar::test::Reference ref(rar::test::data_path("randomisation_reference.txt"));
  return ref;
}

/// The CNN of make_randomisation_reference.py ([N, 2, 5, 5] -> [N, 4]) with its weights.
torch::nn::Sequential randomisation_cnn(torch::Dtype dtype) {
  namespace nn = torch::nn;
  nn::Sequential net(nn::Conv2d(nn::Conv2dOptions(2, 3, 3).padding(1)), nn::Tanh(), nn::Flatten(),
                     nn::Linear(75, 8), nn::Tanh(), nn::Linear(8, 4));
  net->to(dtype);
  randomisation_reference().load_into(*net, "cnn");
  return net;
}

/// Sets each layer to the reference's random weights `random.<layer>.<param>`.
rar::LayerRandomizer randomisation_fixed_weights() {
  return [](const std::string& name, torch::nn::Module& layer) {
    for (auto& p : layer.named_parameters(/*recurse=*/false))
      p.value().copy_(randomisation_reference().tensor("random." + name + "." + p.key()));
  };
}

}  // namespace

TEMPLATE_TEST_CASE("smooth_mprt matches Quantus' SmoothMPRT with the same weights and noise",
                   "[randomisation][smooth_mprt]", float, double) {
  const auto& ref = randomisation_reference();
  const torch::Dtype dtype = rar::test::dtype_of<TestType>();
  const double tol = std::is_same_v<TestType, float> ? 1e-4 : 1e-9;
  auto net = randomisation_cnn(dtype);
  const rar::test::ModuleState before(*net);
  const auto x = ref.tensor("input").to(dtype);
  const auto y = ref.labels("target");
  struct Case {
    rar::LayerOrder order;
    const char* name;
  };
  for (const Case c :
       {Case{rar::LayerOrder::bottom_up, "bottom_up"}, Case{rar::LayerOrder::top_down, "top_down"},
        Case{rar::LayerOrder::independent, "independent"}}) {
    INFO(c.name);
    const auto r = rar::smooth_mprt(net, rar::explain::saliency(), x, y,
                                    rar::SmoothMPRTOptions()
                                        .samples(5)
                                        .noise_magnitude(0.1)
                                        .noise(ref.tensor("noise"))
                                        .layer_order(c.order)
                                        .randomize(randomisation_fixed_weights()));
    const std::vector<std::string> expected_layers = c.order == rar::LayerOrder::top_down
                                                         ? std::vector<std::string>{"5", "3", "0"}
                                                         : std::vector<std::string>{"0", "3", "5"};
    CHECK(r.layers == expected_layers);
    CHECK(r.similarity.scalar_type() == torch::kDouble);
    CHECK(r.similarity.device().is_cpu());
    CHECK(r.similarity.sizes() == torch::IntArrayRef{3, 3});
    if (std::is_same_v<TestType, double>) {
      CHECK(max_rel_diff(r.similarity, ref.tensor(std::string("smooth_mprt.") + c.name)) < tol);
    } else {
      // Spearman ρ of float32 maps: ranks of nearly equal pixels may swap.
      CHECK(max_rel_diff(r.similarity, ref.tensor(std::string("smooth_mprt.") + c.name)) < 0.05);
    }
    CHECK(max_rel_diff(r.average(), r.similarity.mean(0)) == 0.0);
  }
  CHECK(rar::test::ModuleState(*net) == before);
}

TEST_CASE("smooth_mprt with one sample and the default randomiser is the plain MPRT's Spearman",
          "[randomisation][smooth_mprt]") {
  // samples(1): no noise, so the similarities are those of parameter_randomization_test, whose
  // Gaussian weights (stream (seed, 0), output layer first) the default randomiser shares.
  auto net = randomisation_cnn(torch::kDouble);
  const auto& ref = randomisation_reference();
  const auto x = ref.tensor("input");
  const auto y = ref.labels("target");
  auto saliency = rar::explain::saliency();
  const auto r = rar::smooth_mprt(
      net, saliency, x, y,
      rar::SmoothMPRTOptions().samples(1).layer_order(rar::LayerOrder::top_down).seed(4));
  const auto steps = rar::parameter_randomization_test(net, saliency, x, y,
                                                       rar::RandomizationOptions().k(5).seed(4));
  REQUIRE(steps.size() == 4);
  for (size_t l = 0; l < 3; ++l) {
    CHECK(r.layers[l] == steps[l + 1].layer);
    CHECK(r.similarity[static_cast<int64_t>(l)].nan_to_num(0.0).mean().item<double>() ==
          Approx(steps[l + 1].spearman).epsilon(1e-12));
  }
  // The seeded noise is reproducible.
  const auto opts = rar::SmoothMPRTOptions().samples(3).seed(9);
  CHECK(rar::smooth_mprt(net, saliency, x, y, opts)
            .similarity.equal(rar::smooth_mprt(net, saliency, x, y, opts).similarity));
}

TEST_CASE("histogram_entropy matches np.histogram and scipy.stats.entropy on bin edges and ties",
          "[randomisation][entropy]") {
  const auto& ref = randomisation_reference();
  const auto values = ref.tensor("entropy.values");
  for (const int64_t bins : {1, 5, 10, 100}) {
    INFO("bins " << bins);
    CHECK(max_rel_diff(rar::histogram_entropy(values, bins),
                       ref.tensor("entropy." + std::to_string(bins))) < 1e-12);
  }
  // Uniform over D distinct equally spaced values in D bins: ln D.
  const auto ramp = torch::arange(16, torch::kDouble).view({1, 16});
  CHECK(rar::histogram_entropy(ramp, 16).item<double>() == Approx(std::log(16.0)).epsilon(1e-14));
}

TEMPLATE_TEST_CASE("efficient_mprt matches Quantus' EfficientMPRT with the same weights",
                   "[randomisation][efficient_mprt]", float, double) {
  const auto& ref = randomisation_reference();
  const torch::Dtype dtype = rar::test::dtype_of<TestType>();
  auto net = randomisation_cnn(dtype);
  const rar::test::ModuleState before(*net);
  const auto x = ref.tensor("input").to(dtype);
  const auto y = ref.labels("target");
  for (const int64_t bins : {100, 7}) {
    for (const auto order : {rar::LayerOrder::bottom_up, rar::LayerOrder::top_down}) {
      INFO("bins " << bins);
      const auto r =
          rar::efficient_mprt(net, rar::explain::saliency(), x, y,
                              rar::EfficientMPRTOptions().bins(bins).layer_order(order).randomize(
                                  randomisation_fixed_weights()));
      const std::string prefix = "efficient_mprt." + std::to_string(bins) + ".";
      CHECK(r.score.scalar_type() == torch::kDouble);
      CHECK(r.score.sizes() == torch::IntArrayRef{3});
      if (std::is_same_v<TestType, double>) {
        CHECK(max_rel_diff(r.original_complexity, ref.tensor(prefix + "original")) < 1e-9);
        CHECK(max_rel_diff(r.randomised_complexity, ref.tensor(prefix + "randomised")) < 1e-9);
        CHECK(max_rel_diff(r.score, ref.tensor(prefix + "score")) < 1e-9);
      } else {
        // float32 values near a bin edge may change bins: one count in 50 moves H by < 0.1.
        CHECK(max_rel_diff(r.original_complexity, ref.tensor(prefix + "original")) < 0.1);
      }
    }
  }
  CHECK(rar::test::ModuleState(*net) == before);
}

TEST_CASE("smooth_mprt, efficient_mprt and histogram_entropy reject bad input",
          "[randomisation][errors]") {
  auto net = randomisation_cnn(torch::kDouble);
  const auto& ref = randomisation_reference();
  const auto x = ref.tensor("input");
  const auto y = ref.labels("target");
  auto saliency = rar::explain::saliency();
  CHECK_THROWS_WITH(rar::smooth_mprt(net, saliency, x, y, rar::SmoothMPRTOptions().samples(0)),
                    Contains("rar::smooth_mprt") && Contains("samples must be >= 1, got 0"));
  CHECK_THROWS_WITH(
      rar::smooth_mprt(net, saliency, x, y, rar::SmoothMPRTOptions().noise_magnitude(-1)),
      Contains("rar::smooth_mprt") && Contains("noise_magnitude must be finite and >= 0"));
  CHECK_THROWS_WITH(
      rar::smooth_mprt(net, saliency, x, y,
                       rar::SmoothMPRTOptions().samples(3).noise(ref.tensor("noise"))),
      Contains("rar::smooth_mprt") && Contains("noise must have shape"));
  CHECK_THROWS_WITH(rar::smooth_mprt(net, saliency, x, torch::tensor({0, 1})),
                    Contains("rar::smooth_mprt") && Contains("target"));
  CHECK_THROWS_WITH(rar::efficient_mprt(net, saliency, x, y, rar::EfficientMPRTOptions().bins(0)),
                    Contains("rar::efficient_mprt") && Contains("bins must be >= 1, got 0"));
  CHECK_THROWS_WITH(
      rar::efficient_mprt(net, saliency, x, y,
                          rar::EfficientMPRTOptions().layer_order(rar::LayerOrder::independent)),
      Contains("rar::efficient_mprt") && Contains("cascading"));
  CHECK_THROWS_WITH(rar::efficient_mprt(net, saliency, x.to(torch::kInt), y),
                    Contains("rar::efficient_mprt") && Contains("float32 or float64"));
  CHECK_THROWS_WITH(rar::histogram_entropy(x, 0),
                    Contains("rar::histogram_entropy") && Contains("bins must be >= 1"));
}
