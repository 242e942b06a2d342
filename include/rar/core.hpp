#pragma once
/// @file
/// The core every area builds on: the threat model (ball, ascent, projection, the ascent loop,
/// the inner maximization's diagnostics), score functions, model calling and `rar::Split`, the
/// randomness contract, the explainer concept and `rar::Attribution`.

#include <rar/core/attribution.hpp>
#include <rar/core/batching.hpp>
#include <rar/core/explainer.hpp>
#include <rar/core/model.hpp>
#include <rar/core/random.hpp>
#include <rar/core/score.hpp>
#include <rar/core/split.hpp>
#include <rar/core/threat_model.hpp>
