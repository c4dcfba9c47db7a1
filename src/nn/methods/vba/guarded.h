// Turns torch's exceptions (c10::Error, ...) into septa::Error at the public entry points of VBA,
// so that callers see typed errors without torch's backtraces (as nn/api.cc does).
#pragma once

#include <c10/util/Exception.h>

#include <new>
#include <string>

#include "septa/error.h"

namespace septa::nn::vba {

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

}  // namespace septa::nn::vba
