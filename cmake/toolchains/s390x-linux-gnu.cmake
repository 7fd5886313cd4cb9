# Cross build for s390x Linux (glibc) with Debian's gcc-s390x-linux-gnu and
# libc6-dev-*-cross; programs run under qemu-user (qemu-s390x), which CTest
# uses through CMAKE_CROSSCOMPILING_EMULATOR.  See ci/ports.sh.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR s390x)
set(PL_TRIPLET s390x-linux-gnu)
include(${CMAKE_CURRENT_LIST_DIR}/debian-cross.cmake)
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-s390x -L /usr/${PL_TRIPLET})
