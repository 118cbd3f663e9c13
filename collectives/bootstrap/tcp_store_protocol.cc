#include "bootstrap/tcp_store_protocol.h"

#include "bootstrap/socket_io.h"
#include "cclab/error.h"

namespace cclab {
namespace {

void put_u32(std::string& out, uint32_t value) {
  const unsigned char bytes[4] = {static_cast<unsigned char>(value >> 24), static_cast<unsigned char>(value >> 16),
                                  static_cast<unsigned char>(value >> 8), static_cast<unsigned char>(value)};
  out.append(reinterpret_cast<const char*>(bytes), 4);
}

}  // namespace

uint32_t get_u32(const char* data) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(data);
  return (uint32_t{bytes[0]} << 24) | (uint32_t{bytes[1]} << 16) | (uint32_t{bytes[2]} << 8) | uint32_t{bytes[3]};
}

std::string encode_frame(const std::vector<std::string>& fields) {
  size_t payload = 0;
  for (const auto& field : fields) payload += 4 + field.size();
  if (payload > kMaxFrame) throw Error("store message of " + std::to_string(payload) + " bytes is too large");
  std::string frame;
  frame.reserve(4 + payload);
  put_u32(frame, static_cast<uint32_t>(payload));
  for (const auto& field : fields) {
    put_u32(frame, static_cast<uint32_t>(field.size()));
    frame += field;
  }
  return frame;
}

bool decode_fields(const char* data, size_t size, std::vector<std::string>& fields) {
  fields.clear();
  size_t at = 0;
  while (at < size) {
    if (size - at < 4) return false;
    const uint32_t length = get_u32(data + at);
    at += 4;
    if (length > size - at) return false;
    fields.emplace_back(data + at, length);
    at += length;
  }
  return true;
}

std::vector<std::string> recv_frame(int fd, Deadline deadline, const std::string& peer) {
  char header[4];
  recv_exact(fd, header, 4, deadline, peer);
  const uint32_t length = get_u32(header);
  if (length > kMaxFrame) throw Error("the rendezvous store at " + peer + " sent a corrupt message");
  std::string payload(length, '\0');
  recv_exact(fd, payload.data(), length, deadline, peer);
  std::vector<std::string> fields;
  if (!decode_fields(payload.data(), payload.size(), fields) || fields.empty())
    throw Error("the rendezvous store at " + peer + " sent a corrupt message");
  return fields;
}

}  // namespace cclab
