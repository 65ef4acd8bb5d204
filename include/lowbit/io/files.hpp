#pragma once
// The files lowbit writes, and file names made from tensor names.
//
// Every writer (GgufWriter, SafetensorsWriter, save_hf_gptq_checkpoint,
// HessianAccumulator::save) writes atomically: a temporary file in the output's
// folder, fsync, rename over the output. docs/reliability.md gives the whole contract
// (signals, the file-size limit, special files, permissions, hard links and symlinks).
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lowbit {

// Checks, before any work, that `out` can be written the way lowbit writes outputs,
// and throws lowbit::Error naming the path and the problem when it cannot:
//   * `out` exists and is not a regular file (a directory, /dev/null or another
//     device, a FIFO, a socket; a symlink counts as what it points to): the rename
//     would replace it with a regular file;
//   * `out` is the same file as one of `inputs` (same device and inode: the same path,
//     another spelling, a hard link or a symlink to it): the output would replace the
//     input it is made from;
//   * its folder does not exist or is not a folder, or its name is longer than the
//     file system allows (NAME_MAX), or is empty, "." or "..";
//   * no file can be created in its folder (permissions, read-only file system): a
//     temporary file is created there and removed at once to find out.
// Inputs that do not exist are skipped (opening them reports that).
void check_output_path(const std::filesystem::path& out, const std::vector<std::filesystem::path>& inputs = {});

// The file name for tensor `name` followed by `suffix` (e.g. ".hess"), safe to put in
// a folder: it never contains '/', never starts with '.', and so can never be ".",
// ".." or a path that leaves the folder. The bytes '%', '/', '\\', control characters
// (NUL included, 0x01-0x1f, 0x7f) and a leading '.' are written as %XX (two upper-case
// hex digits); every other byte is kept, so ordinary names map to themselves:
// "blk.0.attn_q.weight" -> "blk.0.attn_q.weight.hess", "../x" -> "%2E.%2Fx.hess",
// "/abs/x" -> "%2Fabs%2Fx.hess". Throws Error for an empty name or a result longer
// than 255 bytes (NAME_MAX on Linux file systems).
std::string tensor_file_name(std::string_view name, std::string_view suffix = {});

// The inverse of tensor_file_name for a file name without its suffix: %XX decoded.
// nullopt when `stem` is not a name tensor_file_name produces (a '%' without two
// hex digits, an escapable byte left unescaped, a lower-case escape).
std::optional<std::string> tensor_name_from_file_name(std::string_view stem);

}  // namespace lowbit
