#include "bootstrap/job_token.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "bootstrap/socket_io.h"
#include "bootstrap/unique_fd.h"
#include "cclab/error.h"

namespace cclab {

std::string make_job_token() {
  UniqueFd random(::open("/dev/urandom", O_RDONLY | O_CLOEXEC));
  if (!random) throw Error("cannot open /dev/urandom for the job token: " + errno_text(errno));
  unsigned char bytes[16];
  size_t got = 0;
  while (got < sizeof bytes) {
    const ssize_t n = ::read(random.get(), bytes + got, sizeof bytes - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw Error("cannot read /dev/urandom for the job token: " + errno_text(errno));
    got += static_cast<size_t>(n);
  }
  static const char kHex[] = "0123456789abcdef";
  std::string token;
  for (unsigned char byte : bytes) {
    token += kHex[byte >> 4];
    token += kHex[byte & 15];
  }
  return token;
}

bool same_token(const std::string& offered, const std::string& expected) {
  if (offered.size() != expected.size()) return false;
  unsigned char difference = 0;
  for (size_t i = 0; i < offered.size(); ++i) difference |= static_cast<unsigned char>(offered[i] ^ expected[i]);
  return difference == 0;
}

}  // namespace cclab
