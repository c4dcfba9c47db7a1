// Allocator construct() that default-initialises: resize() of a trivial element type leaves the
// new elements unwritten instead of zeroing them.
#pragma once

#include <new>
#include <utility>

namespace septa::util {

/*
 * Mixed into an allocator (with `using DefaultInitConstruct::construct;`, which hides the base
 * allocator's own): std::allocator's construct(p) value-initialises, i.e. writes zeros to every
 * new element of a trivial type on the resizing thread, faulting its pages in there. For arrays
 * that a parallel pass then writes in full.
 */
struct DefaultInitConstruct {
  template <class U>
  void construct(U* p) noexcept(noexcept(::new(static_cast<void*>(p)) U)) {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};

}  // namespace septa::util
