// Turns torch's exceptions (c10::Error, jit::ErrorReport, ...) into septa::Error at the public
// entry points of the neural modules (nn/api.cc, the methods' own APIs such as VBA's), so that
// callers see typed errors without torch's backtraces.
#pragma once

#include <c10/util/Exception.h>

#include <new>
#include <string>

#include "septa/error.h"

namespace septa::nn {

// Runs `body`; septa errors and bad_alloc pass through, any other exception becomes Error.
template <typename Body>
auto guarded(const Body& body) -> decltype(body()) {
  try {
    return body();
  } catch (const c10::Error& e) {
    throw Error(std::string("torch: ") + e.what_without_backtrace());
  } catch (const Error&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(std::string("torch: ") + e.what());
  }
}

}  // namespace septa::nn
