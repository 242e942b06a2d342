#pragma once
/// @file
/// The `RAR_ARG` macro: an option field with a chainable setter, a getter and an in-line default.

#include <utility>

/// Declares an option field `name` of type `T` in the LibTorch `TORCH_ARG` style.
///
/// It expands to a chainable setter `name(value)` returning `*this`, a const getter
/// `name()`, a mutable getter, and the private field `name_` whose default follows the
/// macro in-line:
/// @code
/// struct MyOptions {
///   RAR_ARG(int64_t, steps) = 50;
/// };
/// auto opts = MyOptions().steps(10);  // opts.steps() == 10
/// @endcode
#define RAR_ARG(T, name)                                                 \
 public:                                                                 \
  inline auto name(const T& new_##name)->decltype(*this) { /* NOLINT */  \
    this->name##_ = new_##name;                                          \
    return *this;                                                        \
  }                                                                      \
  inline auto name(T&& new_##name)->decltype(*this) { /* NOLINT */       \
    this->name##_ = std::move(new_##name);                               \
    return *this;                                                        \
  }                                                                      \
  inline const T& name() const noexcept { /* NOLINT */                   \
    return this->name##_;                                                \
  }                                                                      \
  inline T& name() noexcept { /* NOLINT */                               \
    return this->name##_;                                                \
  }                                                                      \
                                                                         \
 private:                                                                \
  T name##_ /* NOLINT */

/// Declares a flat option `name` of type `T` that forwards to the field `field` of the option
/// block `block` (itself declared with `RAR_ARG`): a chainable setter `name(value)` and getters
/// that read and write `block().field()`.
///
/// One concept's fields are defined once, in a block, and every options struct that uses the
/// block keeps the flat names users know:
/// @code
/// struct MyAttackOptions {
///   RAR_ARG(rar::AscentOptions, ascent) = rar::AscentOptions();
///   RAR_ARG_ALIAS(int64_t, ascent, iterations, steps);  // iterations() is ascent().steps()
/// };
/// auto opts = MyAttackOptions().iterations(10);  // opts.ascent().steps() == 10
/// @endcode
#define RAR_ARG_ALIAS(T, block, name, field)                            \
 public:                                                                 \
  inline auto name(const T& new_##name)->decltype(*this) { /* NOLINT */  \
    this->block##_.field(new_##name);                                    \
    return *this;                                                        \
  }                                                                      \
  inline const T& name() const noexcept { /* NOLINT */                   \
    return this->block##_.field();                                       \
  }                                                                      \
  inline T& name() noexcept { /* NOLINT */                               \
    return this->block##_.field();                                       \
  }                                                                      \
                                                                         \
 private:                                                                \
  static_assert(true, "RAR_ARG_ALIAS needs a semicolon")
