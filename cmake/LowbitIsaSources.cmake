# lowbit_add_isa_sources(<target> <isa> FLAGS <flag>... FILES <file>...)
#
# Compiles FILES into <target> with FLAGS (this call is the one place an ISA's compile
# flags are written) and defines LOWBIT_ISA_<ISA>=1 on <target>, which is what the
# kernel lists (kernels/lists/*.inc) test before naming the ISA's variants. So a
# variant is in the dispatch table exactly when its file was built with its flags.
# The flags must enable the features of the C++ set lowbit::isa::<isa>
# (include/lowbit/kernels/cpu_features.hpp) and no more; each ISA folder's target.hpp
# checks that at compile time. The flags are also kept in the global property
# LOWBIT_ISA_FLAGS_<isa>, for test files that must be built as the ISA's kernels are.
function(lowbit_add_isa_sources target isa)
  cmake_parse_arguments(ARG "" "" "FLAGS;FILES" ${ARGN})
  if(NOT ARG_FILES)
    message(FATAL_ERROR "lowbit_add_isa_sources(${isa}): no FILES")
  endif()
  string(REPLACE ";" " " _flags "${ARG_FLAGS}")
  foreach(_file IN LISTS ARG_FILES)
    set_property(SOURCE ${_file} APPEND PROPERTY COMPILE_OPTIONS ${ARG_FLAGS})
  endforeach()
  target_sources(${target} PRIVATE ${ARG_FILES})
  string(TOUPPER "${isa}" _upper)
  target_compile_definitions(${target} PRIVATE LOWBIT_ISA_${_upper}=1)
  set_property(GLOBAL APPEND PROPERTY LOWBIT_BUILT_ISAS ${isa})
  set_property(GLOBAL PROPERTY LOWBIT_ISA_FLAGS_${isa} ${ARG_FLAGS})
  list(LENGTH ARG_FILES _n)
  message(STATUS "lowbit: ${isa} kernels (${_n} files, ${_flags})")
endfunction()
