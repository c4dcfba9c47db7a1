// Sequential writing past the page cache: bytes appended to a file opened with O_DIRECT go
// through two aligned staging buffers, and a background thread writes each full buffer while
// the caller fills the other. The data reaches the device as it is produced, instead of all
// at once in a final fsync, and it does not fill the page cache (whose fresh pages are costly
// on virtual machines). A device or file system that refuses a direct write (EINVAL) gets the
// rest through the page cache.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace septa::safetensors {

class DirectStream {
 public:
  static constexpr std::size_t kAlign = 4096;           // offsets, lengths and addresses
  static constexpr std::size_t kBuffer = 8u << 20;      // bytes per staging buffer

  // Writes from offset 0 of `fd` (opened O_DIRECT by the caller); `path` names it in errors.
  DirectStream(int fd, std::string path);
  ~DirectStream();  // stops the thread; staged bytes not flushed are dropped
  DirectStream(const DirectStream&) = delete;
  DirectStream& operator=(const DirectStream&) = delete;

  void append(const void* bytes, std::size_t n);
  // Writes the staged rest, zero-padded to kAlign (the caller truncates the file to `size()`),
  // and waits for every write. IoError on any failed write.
  void flush();
  std::uint64_t size() const { return appended_; }

 private:
  struct Aligned {
    void operator()(unsigned char* p) const;
  };
  void hand_over(std::size_t bytes);  // the current buffer, `bytes` long, to the thread
  void run();
  void check_error();

  int fd_;
  std::string path_;
  std::unique_ptr<unsigned char, Aligned> buffers_[2];
  int current_ = 0;           // the buffer being filled
  std::size_t filled_ = 0;    // bytes in it
  std::uint64_t appended_ = 0;
  std::uint64_t offset_ = 0;  // file offset of the current buffer

  std::mutex mutex_;
  std::condition_variable changed_;
  // Guarded by mutex_: the buffer handed over (-1 none), its length and offset; stop; error.
  int pending_ = -1;
  std::size_t pending_bytes_ = 0;
  std::uint64_t pending_offset_ = 0;
  bool stop_ = false;
  std::string error_;
  std::thread thread_;
};

}  // namespace septa::safetensors
