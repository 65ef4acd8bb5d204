#pragma once
// The library's log. Quiet by default (level off), so an engine linking lowbit sees
// nothing unless it asks. Messages go to stderr unless a sink is installed; the
// logging backend is private to the library (no third-party type in this header).
#include <functional>
#include <string_view>

namespace lowbit {

enum class LogLevel { trace, debug, info, warn, error, off };

// Messages at `level` or above are emitted; off silences everything.
void set_log_level(LogLevel level);
LogLevel log_level();

// Receives each emitted message: its level and its text (no time stamp, level or
// trailing newline). Calls are serialised (one at a time, from whichever thread
// logs). The default (also restored by an empty function) writes
// "[12:34:56.789] [lowbit] [info] text" lines to stderr.
using LogSink = std::function<void(LogLevel level, std::string_view message)>;
void set_log_sink(LogSink sink);

// Emits a message through the library's log (level and sink apply): lets a tool
// built on lowbit interleave its own messages with the library's.
void log_message(LogLevel level, std::string_view message);

// "trace", "debug", "info", "warning", "error", "off".
std::string_view to_string(LogLevel level);

}  // namespace lowbit
