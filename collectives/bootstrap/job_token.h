// The job token: the secret every rank of a job presents to the rendezvous store, so that other
// users on the host (or the network, when the store listens beyond loopback) cannot read or inject
// rendezvous data. The launcher makes one per job; the store compares what a peer offers with it.
#pragma once

#include <cstddef>
#include <string>

namespace cclab {

/// The shortest token a store accepts: 16 characters (64 bits as hex), so that a token cannot be
/// guessed over a network in the life of a job. cclab's own tokens have 32.
constexpr size_t kShortestToken = 16;

/// A fresh random job token: 128 bits from /dev/urandom as 32 lowercase hex digits.
std::string make_job_token();

/// Compares without an early exit, so response timing does not reveal how much of a guess was right.
/// (The length is no secret.)
bool same_token(const std::string& offered, const std::string& expected);

}  // namespace cclab
