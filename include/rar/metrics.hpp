#pragma once
/// @file
/// All metrics: saliency maps, top-k intersection, rank correlations (batched and on Eigen
/// vectors), LENS, the certified top-k radius, the center-of-mass shift; Quantus' families:
/// faithfulness (correlation, estimate, monotonicity, ROAD, completeness, random logit),
/// robustness (max-sensitivity, local Lipschitz, relative stabilities, continuity, input
/// invariance), localisation (relevance mass and rank, pointing game), randomisation (cascading
/// and independent MPRT, Smooth and Efficient MPRT) and quality (infidelity, deletion and
/// insertion, sparseness, complexity).

#include <rar/metrics/attribution_map.hpp>
#include <rar/metrics/batched_rank_correlation.hpp>
#include <rar/metrics/center_of_mass.hpp>
#include <rar/metrics/certified.hpp>
#include <rar/metrics/faithfulness.hpp>
#include <rar/metrics/lens.hpp>
#include <rar/metrics/localisation.hpp>
#include <rar/metrics/per_sample.hpp>
#include <rar/metrics/quality.hpp>
#include <rar/metrics/randomisation.hpp>
#include <rar/metrics/rank_correlation.hpp>
#include <rar/metrics/robustness.hpp>
#include <rar/metrics/sanity.hpp>
#include <rar/metrics/sensitivity.hpp>
#include <rar/metrics/topk.hpp>
