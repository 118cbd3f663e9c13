// The rendezvous store's wire format, which TcpStoreServer and TcpStoreClient both speak.
//
// Every message is a frame: u32 payload length (big-endian), then the payload, which is a list of
// fields, each a u32 length (big-endian) and its bytes. The first field of a request names the
// operation; the first field of a reply is "OK", "TIMEOUT" or "ERR".
//   HELLO token            -> OK | ERR reason (and the server closes the connection)
//   SET key value          -> OK
//   WAIT timeout_ms key... -> OK value...            once every key exists
//                          -> TIMEOUT index...       when timeout_ms passed; indices of missing keys
//   DEL key                -> OK
// The protocol is strictly request/reply: a client has at most one request in flight.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "cclab/deadline.h"

namespace cclab {

// Before a peer has shown the token it may only send a short HELLO; afterwards frames are bounded
// so that a corrupt length prefix cannot make either side allocate much (a rendezvous carries
// addresses: a WAIT's reply for 10^4 ranks of 4 KiB each fits).
constexpr uint32_t kMaxHelloFrame = 4096;
constexpr uint32_t kMaxFrame = 64u << 20;

/// The big-endian u32 at `data`: a frame's or a field's length.
uint32_t get_u32(const char* data);

/// A frame of `fields`; Error if it would exceed kMaxFrame.
std::string encode_frame(const std::vector<std::string>& fields);

/// Splits a payload into fields; false if the lengths do not add up.
bool decode_fields(const char* data, size_t size, std::vector<std::string>& fields);

/// Reads one whole frame from `fd` (the store at `peer`) and splits it into its fields; Error if
/// it is corrupt, TimeoutError if it has not arrived by `deadline`.
std::vector<std::string> recv_frame(int fd, Deadline deadline, const std::string& peer);

}  // namespace cclab
