#pragma once
/// @file
/// All metrics: saliency maps, top-k intersection, rank correlations (batched and on Eigen
/// vectors), the center-of-mass shift, max-sensitivity and the model-parameter randomization
/// test.

#include <rar/metrics/attribution_map.hpp>
#include <rar/metrics/batched_rank_correlation.hpp>
#include <rar/metrics/center_of_mass.hpp>
#include <rar/metrics/certified.hpp>
#include <rar/metrics/faithfulness.hpp>
#include <rar/metrics/lens.hpp>
#include <rar/metrics/per_sample.hpp>
#include <rar/metrics/quality.hpp>
#include <rar/metrics/randomisation.hpp>
#include <rar/metrics/rank_correlation.hpp>
#include <rar/metrics/sanity.hpp>
#include <rar/metrics/sensitivity.hpp>
#include <rar/metrics/topk.hpp>
