# Cross-compiling for 64-bit Windows with Debian's mingw-w64
# (gcc-mingw-w64-x86-64), running the results under Wine:
#   cmake -B build-win -DCMAKE_TOOLCHAIN_FILE=cmake/mingw-w64-x86_64.cmake
#   ctest --test-dir build-win      (ci/windows.sh keeps `wineserver -p` alive)
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)
set(PL_MINGW_PREFIX x86_64-w64-mingw32)

set(CMAKE_C_COMPILER ${PL_MINGW_PREFIX}-gcc)
set(CMAKE_CXX_COMPILER ${PL_MINGW_PREFIX}-g++)
set(CMAKE_RC_COMPILER ${PL_MINGW_PREFIX}-windres)

set(CMAKE_FIND_ROOT_PATH /usr/${PL_MINGW_PREFIX})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
# pkg-config must not find the host's (Linux) packages.
set(ENV{PKG_CONFIG_LIBDIR} /usr/${PL_MINGW_PREFIX}/lib/pkgconfig)
set(ENV{PKG_CONFIG_PATH} "")

# Self-contained executables: no libgcc / libwinpthread DLLs to find at run
# time under Wine.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-static-libgcc")

find_program(PL_WINE NAMES wine64 wine)
if(PL_WINE)
    set(CMAKE_CROSSCOMPILING_EMULATOR ${PL_WINE})
endif()
