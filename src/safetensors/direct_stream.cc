#include "safetensors/direct_stream.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>

#include "septa/error.h"

namespace septa::safetensors {

void DirectStream::Aligned::operator()(unsigned char* p) const { std::free(p); }

DirectStream::DirectStream(int fd, std::string path) : fd_(fd), path_(std::move(path)) {
  for (auto& buffer : buffers_) {
    void* p = nullptr;
    if (::posix_memalign(&p, kAlign, kBuffer) != 0) throw std::bad_alloc();
    buffer.reset(static_cast<unsigned char*>(p));
  }
  thread_ = std::thread([this] { run(); });
}

DirectStream::~DirectStream() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

void DirectStream::check_error() {
  if (!error_.empty()) throw IoError(path_ + ": write failed: " + error_);
}

void DirectStream::append(const void* bytes, std::size_t n) {
  const auto* p = static_cast<const unsigned char*>(bytes);
  while (n > 0) {
    const std::size_t chunk = std::min(n, kBuffer - filled_);
    std::memcpy(buffers_[current_].get() + filled_, p, chunk);
    filled_ += chunk;
    appended_ += chunk;
    p += chunk;
    n -= chunk;
    if (filled_ == kBuffer) hand_over(kBuffer);
  }
}

void DirectStream::hand_over(std::size_t bytes) {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [&] { return pending_ < 0 || !error_.empty(); });
  check_error();
  pending_ = current_;
  pending_bytes_ = bytes;
  pending_offset_ = offset_;
  lock.unlock();
  changed_.notify_all();
  offset_ += bytes;
  current_ ^= 1;
  filled_ = 0;
}

void DirectStream::flush() {
  if (filled_ > 0) {
    const std::size_t padded = (filled_ + kAlign - 1) / kAlign * kAlign;
    std::memset(buffers_[current_].get() + filled_, 0, padded - filled_);
    hand_over(padded);
  }
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [&] { return pending_ < 0 || !error_.empty(); });
  check_error();
}

void DirectStream::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    changed_.wait(lock, [&] { return pending_ >= 0 || stop_; });
    if (pending_ < 0) return;  // stopped, nothing to write
    const unsigned char* p = buffers_[pending_].get();
    std::size_t left = pending_bytes_;
    std::uint64_t offset = pending_offset_;
    lock.unlock();
    std::string error;
    while (left > 0) {
      const ssize_t n = ::pwrite(fd_, p, left, static_cast<off_t>(offset));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EINVAL) {  // no direct I/O here after all: use the page cache
        const int flags = ::fcntl(fd_, F_GETFL);
        if (flags >= 0 && (flags & O_DIRECT) && ::fcntl(fd_, F_SETFL, flags & ~O_DIRECT) == 0) continue;
      }
      if (n <= 0) {
        error = n < 0 ? std::strerror(errno) : "no progress";
        break;
      }
      p += n;
      left -= static_cast<std::size_t>(n);
      offset += static_cast<std::uint64_t>(n);
    }
    lock.lock();
    if (!error.empty() && error_.empty()) error_ = error;
    pending_ = -1;
    changed_.notify_all();
  }
}

}  // namespace septa::safetensors
