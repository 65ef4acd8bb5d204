// Iq4Lanes' code-book look-ups compiled with this file's flags (tests/CMakeLists.txt,
// tests/neon/CMakeLists.txt for the AArch64 one).
#define LOWBIT_IQ4_PROBE_NAME iq4_lookup_avx512
#include "kernels/iq4_lookup_probe.inc"
