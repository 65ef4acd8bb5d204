# lowbit_write_pkg_config(OUT): writes lowbit.pc for the install tree.
#
# The prefix is relative to the .pc file's folder (${pcfiledir}, understood by
# pkg-config and pkgconf), so `cmake --install --prefix P` and DESTDIR installs need no
# reconfiguration. A shared liblowbit lists its own dependencies under Libs.private (only
# `pkg-config --static` needs them); a static one needs them on every link, C++ runtime
# included, since the C API's callers may be C programs linked by the C compiler.
function(lowbit_write_pkg_config out)
  set(_pkgconfigdir "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
  if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
    set(LOWBIT_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
    set(LOWBIT_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
  else()
    # <prefix>/<libdir>/pkgconfig -> <prefix>: one ".." per path component.
    file(RELATIVE_PATH _up "/lowbit-prefix/${_pkgconfigdir}" "/lowbit-prefix")
    set(LOWBIT_PC_PREFIX "\${pcfiledir}/${_up}")
    set(LOWBIT_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
  endif()
  if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
    set(LOWBIT_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
  else()
    set(LOWBIT_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
  endif()

  set(_deps -ltbb -lspdlog)
  if(TARGET fmt::fmt)
    list(APPEND _deps -lfmt)  # spdlog built against an external fmt (Debian's)
  endif()
  get_filename_component(_blas "${LOWBIT_OPENBLAS_LIBRARY}" NAME_WE)
  string(REGEX REPLACE "^lib" "" _blas "${_blas}")
  list(APPEND _deps -l${_blas} -pthread -lstdc++ -lm)
  list(JOIN _deps " " _deps)
  if(LOWBIT_SHARED)
    set(LOWBIT_PC_LIBS "")
    set(LOWBIT_PC_LIBS_PRIVATE " ${_deps}")
  else()
    set(LOWBIT_PC_LIBS " ${_deps}")
    set(LOWBIT_PC_LIBS_PRIVATE "")
  endif()
  configure_file(${PROJECT_SOURCE_DIR}/cmake/lowbit.pc.in ${out} @ONLY)
endfunction()
