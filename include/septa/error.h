// Typed exceptions thrown by every septa library; only cli/main turns them into exit codes.
#pragma once

#include <stdexcept>
#include <string>

namespace septa {

// Base of all septa errors.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Malformed input data, template or model content; the message starts with "file:line: ".
class FormatError : public Error {
 public:
  using Error::Error;
};

// An option outside its allowed range; the message names the option and the range.
class OptionError : public Error {
 public:
  using Error::Error;
};

// A file that cannot be opened, read, written or renamed.
class IoError : public Error {
 public:
  using Error::Error;
};

// A model file that is truncated, corrupted, foreign or of an unknown version, or a Model
// object used while empty (neither trained nor loaded).
class ModelError : public Error {
 public:
  using Error::Error;
};

// A computation that left the finite numbers (non-finite potentials or weights, a diverging
// optimiser): the input or the options, not septa, are the likely cause.
class NumericalError : public Error {
 public:
  using Error::Error;
};

// Work stopped on request (progress callback returned false, Ctrl-C).
class Cancelled : public Error {
 public:
  using Error::Error;
};

// A broken internal invariant: a bug in septa, named by source location.
class InternalError : public Error {
 public:
  using Error::Error;
};

}  // namespace septa

// Throws septa::InternalError naming the source place when `condition` is false.
#define SEPTA_CHECK(condition)                                                     \
  do {                                                                             \
    if (!(condition))                                                              \
      throw ::septa::InternalError(std::string(__FILE__) + "(" +                   \
                                   std::to_string(__LINE__) + ") [" #condition "]"); \
  } while (0)
