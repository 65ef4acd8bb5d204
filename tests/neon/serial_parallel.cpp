// lowbit/core/parallel.hpp for the cross-compiled kernel tree: Debian has no arm64
// TBB on an amd64 host, and the kernel tests only need parallel_for's contract (the
// GSQ quantizer that makes the GSQ families' inputs calls it), which one thread
// meets: the body sees every index once.
#include <string>

#include "lowbit/core/error.hpp"
#include "lowbit/core/parallel.hpp"

namespace lowbit {

void set_num_threads(int threads) {
  if (threads < 0) throw Error("set_num_threads: thread count " + std::to_string(threads) + " is negative");
}

int num_threads() { return 1; }

void parallel_for(int64_t n, int64_t /*grain*/, const std::function<void(int64_t, int64_t)>& body) {
  if (n > 0) body(0, n);
}

}  // namespace lowbit
