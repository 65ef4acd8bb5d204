#include "lowbit/core/log.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace lowbit {

std::shared_ptr<spdlog::logger> logger() {
  static const std::shared_ptr<spdlog::logger> instance = [] {
    auto l = std::make_shared<spdlog::logger>(
        "lowbit", std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
    l->set_level(spdlog::level::off);
    l->set_pattern("[%H:%M:%S.%e] [lowbit] [%^%l%$] %v");
    return l;
  }();
  return instance;
}

void set_log_level(LogLevel level) {
  logger()->set_level(static_cast<spdlog::level::level_enum>(static_cast<int>(level)));
}

}  // namespace lowbit
