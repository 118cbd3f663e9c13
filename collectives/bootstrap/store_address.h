// Where the rendezvous store listens, as launchers pass it to ranks (CCLAB_STORE, the gloo store
// address): parsed once, with a message naming the setting when it is malformed.
#pragma once

#include <cstdint>
#include <string>

namespace cclab {

/// Where a store listens: "host:port", or "[v6 address]:port".
struct StoreAddress {
  std::string host;
  uint16_t port = 0;
  std::string to_string() const;
};
/// Parses "host:port" / "[::1]:port"; UsageError naming `what` (e.g. "CCLAB_STORE") if malformed.
StoreAddress parse_store_address(const std::string& text, const std::string& what = "store address");

}  // namespace cclab
