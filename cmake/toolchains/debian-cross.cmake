# Shared part of the Debian cross toolchain files: compiler
# ${PL_TRIPLET}-gcc, sysroot /usr/${PL_TRIPLET}, and pkg-config restricted
# to the target so the host's hiredis or Criterion is never picked up (the
# cross builds have neither: PL_WITH_REDIS and the Criterion suites are off).
set(CMAKE_C_COMPILER ${PL_TRIPLET}-gcc)
set(CMAKE_CXX_COMPILER ${PL_TRIPLET}-g++)
set(CMAKE_FIND_ROOT_PATH /usr/${PL_TRIPLET})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
set(ENV{PKG_CONFIG_LIBDIR} "/usr/${PL_TRIPLET}/lib/pkgconfig:/usr/lib/${PL_TRIPLET}/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")
