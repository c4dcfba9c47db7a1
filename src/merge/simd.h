// Function multi-versioning for the merge kernels: AVX-512 (x86-64-v4) and AVX2 (x86-64-v3)
// clones beside the baseline, chosen at load time, so no global -m flags (v4: 6% less user CPU
// than v3 for the TIES bench on the project's AMD EPYC VM). The files using it are compiled with
// -ffp-contract=off, so all clones round identically. Compiled out under ThreadSanitizer: gcc
// runs the clones' resolver before the TSan runtime is up (docs/robustness.md).
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_THREAD__)
#define SEPTA_MERGE_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define SEPTA_MERGE_CLONES
#endif
