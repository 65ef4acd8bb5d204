#pragma once
#include <memory>

namespace spdlog { class logger; }

namespace lowbit {

enum class LogLevel { trace, debug, info, warn, error, off };

// The library's spdlog logger ("lowbit"). Quiet by default (level off) so that an
// engine linking us sees nothing unless it asks.
std::shared_ptr<spdlog::logger> logger();
void set_log_level(LogLevel level);

}  // namespace lowbit
