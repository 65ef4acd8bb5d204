#include "lowbit/model/bpw_allocation.hpp"

#include <algorithm>
#include <cmath>
#include <queue>
#include <string>

#include "lowbit/core/error.hpp"

namespace lowbit {

TypeAllocation allocate_types(std::span<const std::vector<TypeCandidate>> items, uint64_t budget) {
  // Each item's lower convex hull, by increasing bytes (strictly decreasing error).
  std::vector<std::vector<size_t>> hull(items.size());
  TypeAllocation a;
  a.choice.resize(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    const auto& c = items[i];
    if (c.empty()) throw Error("type allocation: item " + std::to_string(i) + " has no candidate type");
    for (const auto& x : c)
      if (!(x.error >= 0) || !std::isfinite(x.error))
        throw Error("type allocation: item " + std::to_string(i) + " has an error of " + std::to_string(x.error));
    std::vector<size_t> order(c.size());
    for (size_t k = 0; k < c.size(); ++k) order[k] = k;
    std::sort(order.begin(), order.end(), [&](size_t x, size_t y) {
      return c[x].bytes != c[y].bytes ? c[x].bytes < c[y].bytes : c[x].error < c[y].error;
    });
    std::vector<size_t>& h = hull[i];
    for (size_t k : order) {
      if (!h.empty() && c[k].error >= c[h.back()].error) continue;  // dominated: more bytes, no less error
      if (!h.empty() && c[k].bytes == c[h.back()].bytes) continue;
      // Pop points above the segment from h[-2] to k (keeps slopes increasing).
      while (h.size() >= 2) {
        const TypeCandidate &p = c[h[h.size() - 2]], &q = c[h.back()], &r = c[k];
        const double lhs = (q.error - p.error) * double(r.bytes - p.bytes);
        const double rhs = (r.error - p.error) * double(q.bytes - p.bytes);
        if (lhs >= rhs) h.pop_back();  // q lies on or above the chord p-r
        else break;
      }
      h.push_back(k);
    }
    a.choice[i] = h.front();
    a.bytes += c[h.front()].bytes;
    a.error += c[h.front()].error;
  }
  if (a.bytes > budget)
    throw Error("type allocation: the smallest types take " + std::to_string(a.bytes) + " bytes, over the budget of " +
                std::to_string(budget));
  // Upgrades by error saved per byte; ties by item index so the result is deterministic.
  struct Step {
    double ratio;
    size_t item, pos;  // moving from hull[item][pos - 1] to hull[item][pos]
  };
  auto worse = [](const Step& x, const Step& y) { return x.ratio != y.ratio ? x.ratio < y.ratio : x.item > y.item; };
  std::priority_queue<Step, std::vector<Step>, decltype(worse)> q(worse);
  auto push = [&](size_t i, size_t pos) {
    if (pos >= hull[i].size()) return;
    const TypeCandidate &from = items[i][hull[i][pos - 1]], &to = items[i][hull[i][pos]];
    q.push({(from.error - to.error) / double(to.bytes - from.bytes), i, pos});
  };
  for (size_t i = 0; i < items.size(); ++i) push(i, 1);
  bool lp_known = false;  // the LP optimum, a lower bound of every integer choice's error
  double lp = 0;
  while (!q.empty()) {
    const Step s = q.top();
    q.pop();
    const TypeCandidate &from = items[s.item][hull[s.item][s.pos - 1]], &to = items[s.item][hull[s.item][s.pos]];
    const uint64_t extra = to.bytes - from.bytes;
    if (a.bytes + extra > budget) {
      if (!lp_known) {  // the LP optimum takes this upgrade in part and nothing after it
        lp = a.error - (from.error - to.error) * double(budget - a.bytes) / double(extra);
        lp_known = true;
      }
      continue;  // this item stops here (its later upgrades have lower ratios)
    }
    a.bytes += extra;
    a.error -= from.error - to.error;
    a.choice[s.item] = hull[s.item][s.pos];
    push(s.item, s.pos + 1);
  }
  // The hull skips candidates above it; one that lowers an item's error within the
  // bytes left is still worth taking (in item order, so the result is deterministic).
  for (size_t i = 0; i < items.size(); ++i) {
    const TypeCandidate& cur = items[i][a.choice[i]];
    const uint64_t room = budget - a.bytes + cur.bytes;
    size_t best = a.choice[i];
    for (size_t k = 0; k < items[i].size(); ++k)
      if (items[i][k].bytes <= room && items[i][k].error < items[i][best].error) best = k;
    a.bytes = a.bytes - cur.bytes + items[i][best].bytes;
    a.error = a.error - cur.error + items[i][best].error;
    a.choice[i] = best;
  }
  a.bound = lp_known ? std::max(0.0, a.error - lp) : 0.0;
  return a;
}

}  // namespace lowbit
