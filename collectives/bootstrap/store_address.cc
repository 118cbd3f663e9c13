#include "bootstrap/store_address.h"

#include <algorithm>

#include "cclab/error.h"

namespace cclab {

std::string StoreAddress::to_string() const {
  const bool ipv6 = host.find(':') != std::string::npos;
  return (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

StoreAddress parse_store_address(const std::string& text, const std::string& what) {
  const auto malformed = [&] { return UsageError(what + " must be host:port (or [ipv6]:port), got '" + text + "'"); };
  StoreAddress address;
  std::string port_text;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') throw malformed();
    address.host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string::npos || text.find(':') != colon) throw malformed();
    address.host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
  }
  if (address.host.empty() || port_text.empty() || port_text.size() > 5 ||
      !std::all_of(port_text.begin(), port_text.end(), [](char c) { return c >= '0' && c <= '9'; }))
    throw malformed();
  const unsigned long port = std::stoul(port_text);
  if (port > 65535) throw malformed();
  address.port = static_cast<uint16_t>(port);
  return address;
}

}  // namespace cclab
