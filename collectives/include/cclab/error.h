// Errors carry what failed and where; the CLI maps them to exit statuses.
#pragma once

#include <stdexcept>
#include <string>

namespace cclab {

/// Something failed at run time (transport, peer, system call). Exit status 1.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A wait passed its deadline; the message names the peer that did not answer.
class TimeoutError : public Error {
 public:
  using Error::Error;
};

/// The user asked for something invalid (flag, size, dtype/op pair). Exit status 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace cclab
