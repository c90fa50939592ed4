// Opening and reading files that sit next to the state file, in a folder
// another local user may be able to write to: nothing here follows a
// symbolic link planted at a companion's name, blocks on a FIFO, or reads a
// device without end.
#pragma once

#include <sys/types.h>

#include <cerrno>
#include <filesystem>
#include <optional>
#include <string>

#include "model/error.hpp"

namespace azlb::store {

// "what path: strerror(e)", the store's message for a failed system call.
model::Error io_error(const std::string& what, const std::filesystem::path&, int e);
inline model::Error io_error(const std::string& what, const std::filesystem::path& p) { return io_error(what, p, errno); }

// The largest state file azlb reads (64 MiB; a 50,000-VM state is ~8 MB).
inline constexpr std::size_t kMaxStateBytes = 64u << 20;

// Opens (creating with `mode` if missing) a regular file for the lock, pid or
// log of a state file: O_NOFOLLOW, never a FIFO or device. `flags` adds to
// O_CLOEXEC|O_NOFOLLOW (O_RDWR, O_WRONLY|O_APPEND...). Returns the descriptor.
model::Result<int> open_companion(const std::filesystem::path&, int flags, mode_t mode);

// The whole of a regular file of at most `max_bytes`; nullopt if it does not
// exist. A FIFO, device or folder at the path is an error naming it, as is a
// larger file (naming the limit).
model::Result<std::optional<std::string>> read_regular_file(const std::filesystem::path&, std::size_t max_bytes);

// Writes `text` to a new file with an unpredictable name in the same folder
// (O_EXCL), then renames it over `path`: whatever was at `path` (a symbolic
// link, another user's file) is replaced, never written through.
model::Status replace_file(const std::filesystem::path&, const std::string& text, mode_t mode);

}  // namespace azlb::store
