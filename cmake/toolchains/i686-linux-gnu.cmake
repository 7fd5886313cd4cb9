# 32-bit x86 Linux (glibc) with Debian's gcc-i686-linux-gnu and
# libc6-dev-i386-cross.  The programs run natively on an x86_64 kernel; they
# are linked against the cross libc's own loader (an rpath and
# --dynamic-linker into /usr/i686-linux-gnu), so no libc6:i386 is needed.
# For 64-bit time_t add -DCMAKE_C_FLAGS=-D_TIME_BITS=64 (ci/ports.sh).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR i686)
set(PL_TRIPLET i686-linux-gnu)
include(${CMAKE_CURRENT_LIST_DIR}/debian-cross.cmake)
set(CMAKE_EXE_LINKER_FLAGS_INIT
    "-Wl,--dynamic-linker=/usr/${PL_TRIPLET}/lib/ld-linux.so.2 -Wl,-rpath,/usr/${PL_TRIPLET}/lib")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-Wl,-rpath,/usr/${PL_TRIPLET}/lib")
