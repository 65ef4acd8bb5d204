#pragma once
#include <span>

#include "lowbit/core/matrix_view.hpp"

namespace lowbit {

// ||ref - approx||_F / ||ref||_F, accumulated in double. With an importance vector
// (one weight per column) both norms weight column c by importance[c]:
// sqrt(sum_c imp_c (ref - approx)^2 / sum_c imp_c ref^2).
double relative_rmse(ConstMatrixView<float> ref, ConstMatrixView<float> approx,
                     std::span<const float> importance = {});

}  // namespace lowbit
