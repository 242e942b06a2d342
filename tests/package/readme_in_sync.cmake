# The README's usage example is tests/package/main.cpp, verbatim: fail when they drift apart.
file(READ "${README}" readme)
file(READ "${EXAMPLE}" example)
string(FIND "${readme}" "${example}" at)
if(at EQUAL -1)
  message(FATAL_ERROR "README.md does not contain tests/package/main.cpp verbatim; copy it into the usage section")
endif()
