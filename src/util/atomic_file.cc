#include "util/atomic_file.h"
#include "util/atomic_stream.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "septa/error.h"

namespace septa {

namespace {

// Removes "path.tmp.<pid>" files whose writer was killed: its process no longer exists and
// nobody holds the file's lock (both, so neither a reused pid nor a writer that has created
// its file but not yet locked it loses data).
void remove_stale_temporaries(const std::string& path) {
  const std::size_t slash = path.find_last_of('/');
  const std::string directory = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  const std::string prefix =
      (slash == std::string::npos ? path : path.substr(slash + 1)) + ".tmp.";
  DIR* dir = ::opendir(directory.c_str());
  if (dir == nullptr) return;
  while (const dirent* entry = ::readdir(dir)) {
    const std::string name = entry->d_name;
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string digits = name.substr(prefix.size());
    if (digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) continue;
    const auto pid = static_cast<pid_t>(std::stol(digits));
    if (pid == ::getpid() || ::kill(pid, 0) == 0 || errno != ESRCH) continue;
    const std::string stale = (slash == std::string::npos ? "" : directory) + name;
    const int fd = ::open(stale.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) ::unlink(stale.c_str());
    ::close(fd);
  }
  ::closedir(dir);
}

}  // namespace

void write_file_atomically(const std::string& path, const std::string& bytes) {
  write_file_atomically_streamed(path, [&](const ByteSink& out) { out(bytes.data(), bytes.size()); });
}

void write_file_atomically_streamed(const std::string& path,
                                    const std::function<void(const ByteSink&)>& produce) {
  write_file_atomically_patched(path, [&](const ByteSink& out, const BytePatch&) { produce(out); });
}

/*
 * The written bytes' writeback to the disk starts every kWriteback bytes (sync_file_range), so
 * it runs while the rest is produced and the fsync before the rename waits only for the last
 * piece: saving a 31 MB model, the fsync had waited 10-20 ms for all of it (Linux only; the
 * fsync alone makes the file durable, as before).
 */
void write_file_atomically_patched(
    const std::string& path, const std::function<void(const ByteSink&, const BytePatch&)>& produce) {
  constexpr std::size_t kWriteback = std::size_t{4} << 20;
  remove_stale_temporaries(path);
  const std::string temporary = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw IoError(path + ": cannot create: " + std::strerror(errno));
  ::flock(fd, LOCK_EX);  // released when the file closes or the process dies
  std::size_t end = 0, flushed = 0;  // bytes written; bytes whose writeback has started
  const ByteSink out = [&](const char* data, std::size_t size) {
    std::size_t written = 0;
    while (written < size) {
      const ssize_t n = ::write(fd, data + written, size - written);
      if (n < 0) {
        if (errno == EINTR) continue;
        throw IoError(path + ": write failed: " + std::strerror(errno));
      }
      written += static_cast<std::size_t>(n);
    }
    end += size;
#ifdef SYNC_FILE_RANGE_WRITE
    if (end - flushed >= kWriteback) {
      ::sync_file_range(fd, static_cast<off_t>(flushed), static_cast<off_t>(end - flushed),
                        SYNC_FILE_RANGE_WRITE);
      flushed = end;
    }
#else
    (void)flushed;
    (void)kWriteback;
#endif
  };
  const BytePatch patch = [&](std::size_t offset, const char* data, std::size_t size) {
    if (offset > end || size > end - offset)
      throw InternalError(path + ": patch beyond the bytes written");
    std::size_t written = 0;
    while (written < size) {
      const ssize_t n = ::pwrite(fd, data + written, size - written,
                                 static_cast<off_t>(offset + written));
      if (n < 0) {
        if (errno == EINTR) continue;
        throw IoError(path + ": write failed: " + std::strerror(errno));
      }
      written += static_cast<std::size_t>(n);
    }
  };
  try {
    produce(out, patch);
  } catch (...) {
    ::close(fd);
    ::unlink(temporary.c_str());
    throw;
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    const std::string reason = std::strerror(errno);
    ::unlink(temporary.c_str());
    throw IoError(path + ": write failed: " + reason);
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    ::unlink(temporary.c_str());
    throw IoError(path + ": cannot rename the temporary file into place: " + reason);
  }
}

void check_writable(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
    throw IoError(path + ": cannot write: it is a directory");
  const std::string temporary = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
  if (fd < 0) throw IoError(path + ": cannot create: " + std::strerror(errno));
  ::close(fd);
  ::unlink(temporary.c_str());
}

std::string read_file(const std::string& path, std::size_t max_bytes, const std::string& option) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path + ": cannot open: " + std::strerror(errno));
  std::string bytes;
  std::size_t block = 1 << 16;
  for (;;) {
    // Reads up to one byte past the limit, so a file of exactly max_bytes passes.
    const std::size_t room = max_bytes - std::min(max_bytes, bytes.size());
    const std::size_t want = room >= block ? block : room + 1;
    const std::size_t old = bytes.size();
    bytes.resize(old + want);
    in.read(&bytes[old], static_cast<std::streamsize>(want));
    bytes.resize(old + static_cast<std::size_t>(in.gcount()));
    if (bytes.size() > max_bytes)
      throw FormatError(path + ": larger than " + std::to_string(max_bytes) +
                        " bytes, the limit (" + option + " raises it)");
    if (!in) break;
    block = std::min<std::size_t>(2 * block, std::size_t{1} << 26);
  }
  if (in.bad()) throw IoError(path + ": read failed");
  return bytes;
}

}  // namespace septa
