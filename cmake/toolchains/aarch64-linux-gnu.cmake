# Cross build for aarch64 Linux (glibc) with Debian's gcc-aarch64-linux-gnu and
# libc6-dev-*-cross; programs run under qemu-user (qemu-aarch64), which CTest
# uses through CMAKE_CROSSCOMPILING_EMULATOR.  See ci/ports.sh.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(PL_TRIPLET aarch64-linux-gnu)
include(${CMAKE_CURRENT_LIST_DIR}/debian-cross.cmake)
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -L /usr/${PL_TRIPLET})
