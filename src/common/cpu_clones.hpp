#pragma once
// CM_CPU_CLONES marks a hot element loop (conversions, task vectors, the element-wise combinations) to be
// compiled twice: for baseline x86-64 and for x86-64-v3 (AVX2), the copy chosen once at load time for the CPU
// it runs on (GCC's target_clones, an ifunc). The build is portable (never -march=native) and still uses the
// wider vectors where they exist. Both copies give the same bits: the build passes -ffp-contract=off, so the
// AVX2 copy forms no fused multiply-adds the baseline would not. Empty on other compilers and targets.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__CUDACC__)
#define CM_CPU_CLONES __attribute__((target_clones("default", "arch=x86-64-v3")))
#else
#define CM_CPU_CLONES
#endif
