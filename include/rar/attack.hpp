#pragma once
/// @file
/// All attacks: the shared ε-ball (projection, ascent step, random start), PGD on predictions,
/// attacks on attributions, and the smooth surrogates they differentiate.

#include <rar/attack/attribution_attack.hpp>
#include <rar/attack/ball.hpp>
#include <rar/attack/pgd.hpp>
#include <rar/attack/surrogate.hpp>
