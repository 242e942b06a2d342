// LENS (Kamath et al., AAAI 2024): LENS-recall, LENS-precision and top-k-div, against the numpy
// transcription of tests/data/make_lens_reference.py, and their properties.

#include <rar/metrics/lens.hpp>
#include <rar/metrics/topk.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <string>

#include "support/reference.hpp"

namespace {

const rar::test::Reference& lens_reference() {
  static const rar::test::Reference ref(rar::test::data_path("lens_reference.txt"));
  return ref;
}

}  // namespace

TEST_CASE("lens matches the numpy reference for k, window and top-k-div", "[metrics][lens]") {
  const auto& ref = lens_reference();
  const auto a = ref.tensor("lens.a"), b = ref.tensor("lens.b");
  for (const int64_t k : {5, 12, 30}) {
    for (const int64_t w : {0, 1, 2}) {
      for (const bool diverse : {false, true}) {
        const std::string name = "lens.k" + std::to_string(k) + ".w" + std::to_string(w) +
                                 (diverse ? ".div" : ".top");
        INFO(name);
        const auto r = rar::lens(a, b, rar::LensOptions().k(k).window(w).diverse(diverse));
        const auto expected = ref.tensor(name);  // [N, 3]: intersection, recall, precision
        CHECK(torch::allclose(r.intersection, expected.select(1, 0), 0, 1e-15));
        CHECK(torch::allclose(r.recall, expected.select(1, 1), 0, 1e-15));
        CHECK(torch::allclose(r.precision, expected.select(1, 2), 0, 1e-15));
        // float32 maps and a channel dimension give the same figures.
        const auto r32 = rar::lens(a.to(torch::kFloat).unsqueeze(1), b.to(torch::kFloat).unsqueeze(1),
                                   rar::LensOptions().k(k).window(w).diverse(diverse));
        CHECK(torch::equal(r32.recall, r.recall));
      }
    }
  }
}

TEST_CASE("lens: properties (window 0 is the top-k intersection, a one-pixel shift is kept, "
          "identical maps give 1) and errors",
          "[metrics][lens]") {
  torch::manual_seed(3);
  const auto a = torch::rand({5, 12, 10}, torch::kDouble);
  const auto b = torch::rand({5, 12, 10}, torch::kDouble);
  const auto w0 = rar::lens(a, b, rar::LensOptions().k(15).window(0));
  const auto topk = rar::topk_intersection(a, b, 15);
  CHECK(torch::equal(w0.intersection, topk));
  CHECK(torch::equal(w0.recall, topk));
  CHECK(torch::equal(w0.precision, topk));
  // Recall and precision never fall below the intersection, and grow with the window.
  const auto w1 = rar::lens(a, b, rar::LensOptions().k(15).window(1));
  const auto w2 = rar::lens(a, b, rar::LensOptions().k(15).window(2));
  CHECK((w1.recall >= w1.intersection).all().item<bool>());
  CHECK((w2.recall >= w1.recall).all().item<bool>());
  CHECK((w2.precision >= w1.precision).all().item<bool>());
  // The same map shifted by one pixel (inside the border): intersection drops, LENS keeps all.
  auto blob = torch::zeros({1, 12, 10}, torch::kDouble);
  blob.index_put_({0, torch::indexing::Slice(3, 6), torch::indexing::Slice(3, 6)},
                  torch::arange(1, 10, torch::kDouble).view({3, 3}));
  const auto moved = torch::roll(blob, {1}, {2});
  const auto s = rar::lens(blob, moved, rar::LensOptions().k(9).window(1));
  CHECK(s.intersection.item<double>() == Approx(6.0 / 9));
  CHECK(s.recall.item<double>() == 1.0);
  CHECK(s.precision.item<double>() == 1.0);
  // top-k-div spreads its picks (no two adjacent in the blob); identical maps pick alike.
  const auto div = rar::lens(blob, blob, rar::LensOptions().k(4).window(1).diverse(true));
  CHECK(div.intersection.item<double>() == 1.0);
  const auto same = rar::lens(a, a, rar::LensOptions().k(20).window(1).diverse(true));
  CHECK(torch::equal(same.intersection, torch::ones({5}, torch::kDouble)));
  // NaN in a sample gives NaN for that sample only.
  auto bad = a.clone();
  bad[1][0][0] = NAN;
  const auto nan = rar::lens(bad, b, rar::LensOptions().k(5));
  CHECK(std::isnan(nan.recall[1].item<double>()));
  CHECK_FALSE(std::isnan(nan.recall[0].item<double>()));
  CHECK_THROWS_WITH(rar::lens(a, b, rar::LensOptions().k(121)),
                    Catch::Contains("rar::lens: k must be in [1, 120] (the pixels per map), got 121"));
  CHECK_THROWS_WITH(rar::lens(a, b, rar::LensOptions().window(-1)),
                    Catch::Contains("rar::lens: window must be >= 0, got -1"));
  CHECK_THROWS_WITH(rar::lens(a, b.slice(0, 0, 4)), Catch::Contains("the maps must have the same shape"));
  CHECK_THROWS_WITH(rar::lens(a.unsqueeze(1).expand({5, 3, 12, 10}), b.unsqueeze(1).expand({5, 3, 12, 10})),
                    Catch::Contains("maps must be [N, H, W] or [N, 1, H, W]"));
}
