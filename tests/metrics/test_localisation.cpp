// Localisation metrics: relevance mass accuracy, relevance rank accuracy and the pointing game
// against numpy transcriptions of Quantus (after Quantus' normalise_by_max preprocessing, which
// the metrics are invariant to), analytic maps, channel-broadcast masks and bad input.

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <rar/metrics/localisation.hpp>

#include "support/models.hpp"
#include "support/reference.hpp"

using Catch::Matchers::Contains;

namespace {

const rar::test::Reference& loc_reference() {
  static const rar::test::Reference ref(
      rar::test::data_path("localisation_robustness_reference.txt"));
  return ref;
}

/// max |a − b| / max(1, |b|) over entries, NaN positions required to agree.
double loc_max_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return rar::test::nan_aware_rel_diff(a, b, 1.0);
}

}  // namespace

TEMPLATE_TEST_CASE(
    "localisation metrics match Quantus' formulas on maps with ties, negative "
    "values and an empty region",
    "[localisation]", float, double) {
  const auto& ref = loc_reference();
  const torch::Dtype dtype = rar::test::dtype_of<TestType>();
  // float32 maps: each value off by 6e-8 relative, amplified where a map sums to almost 0.
  const double tol = std::is_same_v<TestType, float> ? 1e-3 : 1e-12;
  for (const std::string name : {"loc", "loc_channels"}) {
    const auto map = ref.tensor(name + ".map").to(dtype);
    const auto mask = ref.tensor(name + ".mask").to(torch::kBool);
    for (const bool abs : {false, true}) {
      const std::string tag = name + (abs ? ".abs" : ".plain");
      INFO(tag);
      const auto opts = rar::LocalisationOptions().abs(abs);
      const auto rma = rar::relevance_mass_accuracy(map, mask, opts);
      CHECK(rma.scalar_type() == torch::kDouble);
      CHECK(rma.device().is_cpu());
      CHECK(rma.sizes() == torch::IntArrayRef{map.size(0)});
      CHECK(loc_max_diff(rma, ref.tensor(tag + ".rma")) < tol);
      // Ranks and the maximum are exact in either dtype when no two values round together.
      CHECK(loc_max_diff(rar::relevance_rank_accuracy(map, mask, opts), ref.tensor(tag + ".rra")) <
            1e-12);
      CHECK(loc_max_diff(rar::pointing_game(map, mask, opts), ref.tensor(tag + ".pg")) < 1e-12);
      auto weighted = opts;
      CHECK(loc_max_diff(rar::pointing_game(map, mask, weighted.weighted(true)),
                         ref.tensor(tag + ".pg_weighted")) < 1e-12);
    }
  }
}

TEST_CASE("the two-argument localisation forms take the map as given", "[localisation]") {
  const auto& ref = loc_reference();
  const auto map = ref.tensor("loc.map");
  const auto mask = ref.tensor("loc.mask").to(torch::kBool);
  CHECK(loc_max_diff(rar::relevance_mass_accuracy(map, mask), ref.tensor("loc.plain.rma")) < 1e-12);
  CHECK(loc_max_diff(rar::relevance_rank_accuracy(map, mask), ref.tensor("loc.plain.rra")) < 1e-12);
  CHECK(loc_max_diff(rar::pointing_game(map, mask), ref.tensor("loc.plain.pg")) < 1e-12);
  // A 0/1 mask of another dtype is the same region.
  CHECK(loc_max_diff(rar::relevance_rank_accuracy(map, mask.to(torch::kFloat)),
                     ref.tensor("loc.plain.rra")) < 1e-12);
}

TEST_CASE("localisation metrics on analytic maps", "[localisation]") {
  // One sample [1, 2, 3]: the region is the first row.
  const auto mask = torch::tensor({{{1, 1, 1}, {0, 0, 0}}}).to(torch::kBool);
  SECTION("all mass inside: RMA 1, RRA 1, a hit weighted by the half outside") {
    const auto map = torch::tensor({{{3.0, 2.0, 1.0}, {0.0, 0.0, 0.0}}});
    CHECK(rar::relevance_mass_accuracy(map, mask).item<double>() == Approx(1.0));
    CHECK(rar::relevance_rank_accuracy(map, mask).item<double>() == Approx(1.0));
    CHECK(rar::pointing_game(map, mask).item<double>() == 1.0);
    CHECK(rar::pointing_game(map, mask, rar::LocalisationOptions().weighted(true)).item<double>() ==
          Approx(0.5));
  }
  SECTION("mass split 1 : 3, the top-3 holding one inside position, the maximum outside") {
    const auto map = torch::tensor({{{1.0, 0.0, 0.0}, {1.0, 1.0, 1.0}}});
    CHECK(rar::relevance_mass_accuracy(map, mask).item<double>() == Approx(0.25));
    // Stable descending order: positions 0, 3, 4 (ties by position): one of three inside.
    CHECK(rar::relevance_rank_accuracy(map, mask).item<double>() == Approx(1.0 / 3.0));
    // The maximum 1 is shared by position 0 (inside) and 3, 4, 5: a hit.
    CHECK(rar::pointing_game(map, mask).item<double>() == 1.0);
    const auto miss = torch::tensor({{{1.0, 0.0, 0.0}, {2.0, 1.0, 1.0}}});
    CHECK(rar::pointing_game(miss, mask).item<double>() == 0.0);
    CHECK(
        rar::pointing_game(miss, mask, rar::LocalisationOptions().weighted(true)).item<double>() ==
        0.0);
  }
  SECTION("abs turns a negative peak into the maximum") {
    const auto map = torch::tensor({{{-5.0, 0.0, 0.0}, {1.0, 0.0, 0.0}}});
    CHECK(rar::pointing_game(map, mask).item<double>() == 0.0);
    CHECK(rar::pointing_game(map, mask, rar::LocalisationOptions().abs(true)).item<double>() ==
          1.0);
    CHECK(rar::relevance_mass_accuracy(map, mask, rar::LocalisationOptions().abs(true))
              .item<double>() == Approx(5.0 / 6.0));
  }
  SECTION("an empty region gives NaN, a positive scaling of the map changes nothing") {
    const auto map = torch::rand({2, 2, 3}, torch::kDouble);
    auto m = torch::zeros({2, 2, 3}, torch::kBool);
    m[1][0][1] = true;
    for (const auto& r : {rar::relevance_mass_accuracy(map, m),
                          rar::relevance_rank_accuracy(map, m), rar::pointing_game(map, m)}) {
      CHECK(std::isnan(r[0].item<double>()));
      CHECK(!std::isnan(r[1].item<double>()));
    }
    CHECK(torch::allclose(rar::relevance_mass_accuracy(7.5 * map, m).nan_to_num(-1),
                          rar::relevance_mass_accuracy(map, m).nan_to_num(-1)));
    CHECK(torch::equal(rar::relevance_rank_accuracy(7.5 * map, m).nan_to_num(-1),
                       rar::relevance_rank_accuracy(map, m).nan_to_num(-1)));
  }
}

TEST_CASE("a mask with one channel applies to every channel of the map", "[localisation]") {
  torch::manual_seed(3);
  const auto map = torch::randn({2, 3, 4, 4}, torch::kDouble);
  const auto mask = torch::rand({2, 1, 4, 4}) < 0.4;
  const auto full = mask.expand({2, 3, 4, 4}).contiguous();
  CHECK(torch::equal(rar::relevance_mass_accuracy(map, mask),
                     rar::relevance_mass_accuracy(map, full)));
  CHECK(torch::equal(rar::relevance_rank_accuracy(map, mask),
                     rar::relevance_rank_accuracy(map, full)));
  CHECK(torch::equal(rar::pointing_game(map, mask), rar::pointing_game(map, full)));
}

TEST_CASE("localisation metrics reject bad input", "[localisation]") {
  const auto map = torch::rand({2, 1, 3, 3});
  const auto mask = torch::rand({2, 1, 3, 3}) < 0.5;
  CHECK_THROWS_WITH(
      rar::relevance_mass_accuracy(map, torch::ones({2, 1, 3, 4}, torch::kBool)),
      Contains("rar::relevance_mass_accuracy") && Contains("mask must have the map's shape"));
  CHECK_THROWS_WITH(rar::relevance_rank_accuracy(map, torch::ones({3, 1, 3, 3}, torch::kBool)),
                    Contains("rar::relevance_rank_accuracy") && Contains("mask"));
  CHECK_THROWS_WITH(rar::pointing_game(map, torch::ones({2, 9}, torch::kBool)),
                    Contains("rar::pointing_game") && Contains("[2, 9]"));
  CHECK_THROWS_WITH(rar::pointing_game(map, 2 * torch::ones({2, 1, 3, 3})),
                    Contains("rar::pointing_game") && Contains("only 0 and 1"));
  CHECK_THROWS_WITH(rar::relevance_mass_accuracy(map.to(torch::kInt), mask),
                    Contains("rar::relevance_mass_accuracy") && Contains("float32 or float64"));
  auto bad = map.clone();
  bad[1][0][0][0] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_WITH(rar::relevance_rank_accuracy(bad, mask),
                    Contains("rar::relevance_rank_accuracy") && Contains("finite"));
  CHECK_THROWS_WITH(rar::pointing_game(map, torch::Tensor()),
                    Contains("rar::pointing_game") && Contains("mask must be a defined tensor"));
}
