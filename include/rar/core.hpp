#pragma once
/// @file
/// The core every area builds on: the threat model (ball, ascent, projection, the ascent loop),
/// score functions, model calling, the randomness contract and the explainer concept.

#include <rar/core/batching.hpp>
#include <rar/core/explainer.hpp>
#include <rar/core/model.hpp>
#include <rar/core/random.hpp>
#include <rar/core/score.hpp>
#include <rar/core/threat_model.hpp>
