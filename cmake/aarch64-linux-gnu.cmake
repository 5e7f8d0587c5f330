# aarch64-linux-gnu.cmake - cross-compiles wandler for 64-bit ARM Linux on an x86-64 Debian host
# and runs the programs it builds under qemu-user.
#
#   cmake -S . -B build/aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
#         -DWANDLER_KERNELS_ONLY=ON
#   cmake --build build/aarch64 && (cd build/aarch64 && ctest)   # tests run under qemu-aarch64
#
# Needs Debian's gcc-aarch64-linux-gnu and libc6-dev-arm64-cross (the compiler and its libc),
# qemu-user (qemu-aarch64), and the arm64 build of each library the build links, installed
# through multiarch (dpkg --add-architecture arm64): libcmocka-dev:arm64 for the tests
# (scripts/deps.sh cross installs all of these). The whole library would also need the arm64
# PCRE2, jansson, libcurl and OpenSSL development packages; libcurl's pulls in some 36 packages
# and upgrades amd64 libraries in lock step, so the cross build is the engine and its kernel and
# format tests (WANDLER_KERNELS_ONLY), which is what differs between the architectures.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
# GCC 12 for aarch64 (not for x86-64) reports a false -Wstringop-overflow in gguf_write.c: it
# cannot see that a GGUF element size is at most 8 bytes. The x86-64 gcc and clang builds keep
# the warning.
set(CMAKE_C_FLAGS_INIT "-Wno-stringop-overflow")

# Headers and libraries of the target: the cross libc's sysroot, then the multiarch arm64
# packages (/usr/lib/aarch64-linux-gnu, architecture-independent headers in /usr/include).
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu /usr/lib/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# pkg-config must see the arm64 .pc files only (never the host's).
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")

# ctest (and add_test commands naming a target) run the programs through qemu; -L points it at
# the arm64 dynamic loader and libc.
find_program(WANDLER_QEMU_AARCH64 qemu-aarch64 REQUIRED)
set(CMAKE_CROSSCOMPILING_EMULATOR "${WANDLER_QEMU_AARCH64};-L;/usr/aarch64-linux-gnu")
