#pragma once
// The library's spdlog logger, for code inside lowbit only (spdlog is a private
// dependency; the public interface is lowbit/core/log.hpp). Use it with fmt-style
// formatting: detail::logger().info("{}: {} rows", name, rows).
#include <spdlog/spdlog.h>

namespace lowbit::detail {

spdlog::logger& logger();

}  // namespace lowbit::detail
