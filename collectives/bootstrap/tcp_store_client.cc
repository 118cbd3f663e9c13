#include "bootstrap/tcp_store_client.h"

#include <algorithm>
#include <cmath>
#include <thread>

#include "bootstrap/socket_io.h"
#include "bootstrap/tcp_store_protocol.h"
#include "cclab/error.h"

namespace cclab {

std::chrono::milliseconds TcpStoreClient::reply_grace_for(double timeout_s) {
  const double seconds = std::clamp(timeout_s / 2, 1.0, 4.0);
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
}

// The server answers a WAIT itself when its timeout passes; a client gives it reply_grace_ longer.
TcpStoreClient::TcpStoreClient(StoreAddress address, const std::string& token, Deadline connect_deadline,
                               std::chrono::milliseconds reply_grace)
    : address_(std::move(address)), reply_grace_(reply_grace) {
  // The server may not be listening yet (rank 0 starting late under the env launcher): retry with
  // a growing pause until the deadline.
  std::string error = "no attempt made";
  auto pause = std::chrono::milliseconds(20);
  for (;;) {
    socket_ = try_connect(address_, connect_deadline, error);
    if (socket_ || connect_deadline.passed()) break;
    const auto wake = std::min(Clock::now() + pause, connect_deadline.when);
    std::this_thread::sleep_until(wake);
    pause = std::min(pause * 2, std::chrono::milliseconds(500));
  }
  if (!socket_)
    throw TimeoutError("could not connect to the rendezvous store at " + address_.to_string() + ": " + error);
  const auto reply = request({"HELLO", token}, Deadline{Clock::now() + reply_grace_});
  if (reply[0] != "OK") {
    broken_ = true;
    throw Error("the rendezvous store at " + address_.to_string() + " refused this process: " +
                (reply.size() > 1 ? reply[1] : reply[0]) + " (CCLAB_TOKEN must be the job's token)");
  }
}

std::vector<std::string> TcpStoreClient::request(const std::vector<std::string>& fields, Deadline reply_deadline) {
  if (broken_) throw Error("the connection to the rendezvous store at " + address_.to_string() + " failed earlier");
  try {
    send_all(socket_.get(), encode_frame(fields), reply_deadline, address_.to_string());
    auto reply = recv_frame(socket_.get(), reply_deadline, address_.to_string());
    if (reply[0] == "ERR" && fields[0] != "HELLO")
      throw Error("the rendezvous store at " + address_.to_string() + " rejected " + fields[0] + ": " +
                  (reply.size() > 1 ? reply[1] : std::string("no reason given")));
    return reply;
  } catch (...) {
    broken_ = true;
    throw;
  }
}

void TcpStoreClient::set(const std::string& key, const std::string& value) {
  std::lock_guard lock(mutex_);
  request({"SET", key, value}, Deadline{Clock::now() + reply_grace_});
}

void TcpStoreClient::erase(const std::string& key) {
  std::lock_guard lock(mutex_);
  request({"DEL", key}, Deadline{Clock::now() + reply_grace_});
}

TcpStoreClient::WaitResult TcpStoreClient::wait_all(const std::vector<std::string>& keys, Deadline deadline) {
  std::lock_guard lock(mutex_);
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline.when - Clock::now());
  std::vector<std::string> fields{"WAIT", std::to_string(std::max<long long>(0, left.count()))};
  fields.insert(fields.end(), keys.begin(), keys.end());
  const auto reply = request(fields, Deadline{std::max(deadline.when, Clock::now()) + reply_grace_});
  WaitResult result;
  if (reply[0] == "OK" && reply.size() == keys.size() + 1) {
    result.values.assign(reply.begin() + 1, reply.end());
  } else if (reply[0] == "TIMEOUT") {
    for (size_t i = 1; i < reply.size(); ++i) result.missing.push_back(std::stoul(reply[i]));
  } else {
    broken_ = true;
    throw Error("the rendezvous store at " + address_.to_string() + " sent an unexpected reply to WAIT");
  }
  return result;
}

std::string TcpStoreClient::get(const std::string& key, Deadline deadline) {
  const auto start = Clock::now();
  auto result = wait_all({key}, deadline);
  if (!result.missing.empty()) {
    const double waited = std::chrono::duration<double>(Clock::now() - start).count();
    throw TimeoutError("key '" + key + "' did not appear in the rendezvous store within " +
                       format_seconds(std::round(waited * 10) / 10) + " s");
  }
  return std::move(result.values[0]);
}

}  // namespace cclab
