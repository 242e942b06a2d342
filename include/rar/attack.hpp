#pragma once
/// @file
/// All attacks: PGD on predictions, attacks on attributions, and the smooth surrogates they
/// differentiate. The threat model they share (ball, ascent, projection) is in
/// `rar/core/threat_model.hpp`.

#include <rar/attack/attribution_attack.hpp>
#include <rar/attack/pgd.hpp>
#include <rar/attack/strength.hpp>
#include <rar/attack/surrogate.hpp>
#include <rar/attack/surrogate_beta.hpp>
#include <rar/core/threat_model.hpp>
