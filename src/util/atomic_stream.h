// Crash-safe file output written in pieces: the file's bytes need not be in memory at once.
#pragma once

#include <cstddef>
#include <functional>
#include <string>

namespace septa {

// Receives the next bytes of a file being written.
using ByteSink = std::function<void(const char* data, std::size_t size)>;

// write_file_atomically (util/atomic_file.h) of the bytes that `produce` passes to its sink, in
// order. When `produce` throws, the temporary file is removed and the error passes on; the
// file at `path` is then as it was.
void write_file_atomically_streamed(const std::string& path,
                                    const std::function<void(const ByteSink&)>& produce);
// Overwrites `size` bytes already passed to the sink, from `offset` bytes into the file: a
// field that counts or sums later bytes, written first as a placeholder.
using BytePatch = std::function<void(std::size_t offset, const char* data, std::size_t size)>;
// write_file_atomically_streamed whose `produce` may also patch what it has written.
void write_file_atomically_patched(
    const std::string& path, const std::function<void(const ByteSink&, const BytePatch&)>& produce);

}  // namespace septa
