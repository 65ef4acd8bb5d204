#include "lowbit/core/log.hpp"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <mutex>
#include <utility>

#include "common/log.hpp"

namespace lowbit {
namespace {

spdlog::level::level_enum to_spdlog(LogLevel level) {
  switch (level) {
    case LogLevel::trace: return spdlog::level::trace;
    case LogLevel::debug: return spdlog::level::debug;
    case LogLevel::info: return spdlog::level::info;
    case LogLevel::warn: return spdlog::level::warn;
    case LogLevel::error: return spdlog::level::err;
    case LogLevel::off: break;
  }
  return spdlog::level::off;
}

LogLevel from_spdlog(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace: return LogLevel::trace;
    case spdlog::level::debug: return LogLevel::debug;
    case spdlog::level::info: return LogLevel::info;
    case spdlog::level::warn: return LogLevel::warn;
    case spdlog::level::err:
    case spdlog::level::critical: return LogLevel::error;
    default: return LogLevel::off;
  }
}

// The logger's one sink: the user's LogSink when one is set, else coloured stderr.
// base_sink holds its mutex around sink_it_, so the callback is never re-entered
// and swapping it is safe while other threads log.
class DispatchSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  DispatchSink() : stderr_(std::make_unique<spdlog::sinks::stderr_color_sink_st>()) {
    stderr_->set_pattern("[%H:%M:%S.%e] [lowbit] [%^%l%$] %v");
  }
  void set(LogSink sink) {
    std::lock_guard lock(mutex_);
    user_ = std::move(sink);
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    if (user_)
      user_(from_spdlog(msg.level), std::string_view(msg.payload.data(), msg.payload.size()));
    else
      stderr_->log(msg);
  }
  void flush_() override { stderr_->flush(); }

 private:
  std::unique_ptr<spdlog::sinks::stderr_color_sink_st> stderr_;
  LogSink user_;
};

struct State {
  std::shared_ptr<DispatchSink> sink = std::make_shared<DispatchSink>();
  spdlog::logger logger{"lowbit", sink};
  State() { logger.set_level(spdlog::level::off); }
};

State& state() {
  static State s;
  return s;
}

}  // namespace

namespace detail {
spdlog::logger& logger() { return state().logger; }
}  // namespace detail

void set_log_level(LogLevel level) { state().logger.set_level(to_spdlog(level)); }

LogLevel log_level() { return from_spdlog(state().logger.level()); }

void set_log_sink(LogSink sink) { state().sink->set(std::move(sink)); }

void log_message(LogLevel level, std::string_view message) {
  if (level == LogLevel::off) return;
  state().logger.log(to_spdlog(level), spdlog::string_view_t(message.data(), message.size()));
}

std::string_view to_string(LogLevel level) {
  switch (level) {
    case LogLevel::trace: return "trace";
    case LogLevel::debug: return "debug";
    case LogLevel::info: return "info";
    case LogLevel::warn: return "warning";
    case LogLevel::error: return "error";
    case LogLevel::off: break;
  }
  return "off";
}

}  // namespace lowbit
