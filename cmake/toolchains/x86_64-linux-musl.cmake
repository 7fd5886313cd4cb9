# x86_64 Linux with musl libc through Debian's musl-tools (the musl-gcc
# wrapper).  Runs natively.  musl's headers come without the kernel's
# (no linux/*.h), which is what this build checks; pkg-config is
# restricted as for the cross builds (no hiredis or Criterion for musl).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR x86_64)
set(CMAKE_C_COMPILER musl-gcc)
set(CMAKE_FIND_ROOT_PATH /usr/lib/x86_64-linux-musl /usr/include/x86_64-linux-musl)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/x86_64-linux-musl/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")
