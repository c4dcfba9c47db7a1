// Keeps freed message buffers in the heap while ranks exchange them round after round.
#pragma once

#ifdef __GLIBC__
#include <malloc.h>
#endif

namespace septa::crf {

/*
 * Over ranks, every round (an SGD mix) or gradient evaluation allocates and frees message
 * buffers of megabytes (the parts received from the other ranks, the messages to them). Under
 * the fixed thresholds that training sets (limit_heap_retention: trim 1 MiB, mapping 128 KiB)
 * each buffer was a fresh mapping, faulted in page by page every time: 0.2-0.3 s of system
 * time per rank on CoNLL-2000 at 2 ranks for -a separate, 0.15-0.2 s for 30 L-BFGS iterations.
 * While an object of this class lives (when `on`), buffers up to 32 MiB come from the heap and
 * the heap keeps up to 64 MiB of free memory, so the next round reuses them; training's
 * thresholds come back when it goes.
 */
class KeepRoundBuffers {
 public:
  explicit KeepRoundBuffers(bool on) : on_(on) {
#ifdef __GLIBC__
    if (on_) {
      mallopt(M_MMAP_THRESHOLD, 32 << 20);
      mallopt(M_TRIM_THRESHOLD, 64 << 20);
    }
#endif
  }
  ~KeepRoundBuffers() {
#ifdef __GLIBC__
    if (on_) {
      mallopt(M_TRIM_THRESHOLD, 1 << 20);    // limit_heap_retention's
      mallopt(M_MMAP_THRESHOLD, 128 << 10);  // glibc's default, fixed by the call above
    }
#endif
  }
  KeepRoundBuffers(const KeepRoundBuffers&) = delete;
  KeepRoundBuffers& operator=(const KeepRoundBuffers&) = delete;

 private:
  bool on_;
};

}  // namespace septa::crf
