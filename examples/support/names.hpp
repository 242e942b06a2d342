#pragma once
/// @file
/// Name tables: each command-line choice (training method, explainer) is listed once, with its
/// name on the command line and its title in the output; parsing, the CLI's list of choices
/// and the titles all read that one table.

#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

namespace rar {
namespace examples {

/// One entry of a name table.
template <class Enum>
struct Named {
  Enum value;
  const char* name;   ///< on the command line
  const char* title;  ///< in tables, progress lines and panels
};

/// The names of a table, in its order (for CLI11's `IsMember` and for help texts).
template <class Enum, size_t N>
std::vector<std::string> table_names(const Named<Enum> (&table)[N]) {
  std::vector<std::string> names;
  for (const Named<Enum>& entry : table) names.push_back(entry.name);
  return names;
}

/// "a, b or c": the names of a table as a sentence.
template <class Enum, size_t N>
std::string table_choices(const Named<Enum> (&table)[N]) {
  std::string out;
  for (size_t i = 0; i < N; ++i)
    out += (i == 0 ? "" : i + 1 == N ? " or " : ", ") + std::string(table[i].name);
  return out;
}

/// The value named `name`; throws "unknown <what> 'name' (expected a, b or c)" otherwise.
template <class Enum, size_t N>
Enum parse_name(const Named<Enum> (&table)[N], const std::string& name, const char* what) {
  for (const Named<Enum>& entry : table)
    if (name == entry.name) return entry.value;
  throw std::invalid_argument("unknown " + std::string(what) + " '" + name + "' (expected " +
                              table_choices(table) + ")");
}

/// The entry of `value` ("?" for name and title if the table lacks it).
template <class Enum, size_t N>
Named<Enum> table_entry(const Named<Enum> (&table)[N], Enum value) {
  for (const Named<Enum>& entry : table)
    if (entry.value == value) return entry;
  return {value, "?", "?"};
}

}  // namespace examples
}  // namespace rar
