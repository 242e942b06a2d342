# Checks that every `rar::name` the feature matrix (docs/feature-matrix.md) names exists: its
# last component must be declared somewhere under include/rar (as a function, type or alias).
#   cmake -DMATRIX=docs/feature-matrix.md -DINCLUDE_DIR=include -P feature_matrix.cmake
file(READ "${MATRIX}" text)
string(REGEX MATCHALL "`rar::[A-Za-z_0-9:]+" names "${text}")
list(REMOVE_DUPLICATES names)
list(LENGTH names count)
if(count LESS 10)
  message(FATAL_ERROR "feature matrix ${MATRIX}: only ${count} rar:: names found; is it the right file?")
endif()
file(GLOB_RECURSE headers "${INCLUDE_DIR}/rar/*.hpp")
set(all "")
foreach(h IN LISTS headers)
  file(READ "${h}" content)
  string(APPEND all "${content}\n")
endforeach()
set(missing "")
foreach(n IN LISTS names)
  string(REGEX REPLACE "^`rar::" "" n "${n}")
  string(REGEX REPLACE "^.*::" "" last "${n}")
  # A declaration: `name(` after a type, `struct|class|using|enum class name`, or a module
  # holder `TORCH_MODULE(name)`.
  if(NOT all MATCHES "[ *&>]${last}\\(" AND NOT all MATCHES "(struct|class|using|enum class) ${last}[ ;{=]"
     AND NOT all MATCHES "TORCH_MODULE\\(${last}\\)")
    list(APPEND missing "rar::${n}")
  endif()
endforeach()
if(missing)
  list(JOIN missing ", " missing)
  # A plain message is printed as is; FATAL_ERROR's text is re-wrapped to the terminal width,
  # which depends on the length of the path, so the names go on their own line first.
  message("feature matrix names what include/rar does not declare: ${missing}")
  message(FATAL_ERROR "feature matrix ${MATRIX}: names missing from include/rar (listed above)")
endif()
message(STATUS "feature matrix: all ${count} rar:: names exist")
