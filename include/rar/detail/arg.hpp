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
