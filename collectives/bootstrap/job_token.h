// The job token: the secret every rank of a job presents to the rendezvous store, so that other
// users on the host (or the network, when the store listens beyond loopback) cannot read or inject
// rendezvous data. The launcher makes one per job; the store compares what a peer offers with it.
#pragma once

#include <string>

namespace cclab {

/// A fresh random job token: 128 bits from /dev/urandom as 32 lowercase hex digits.
std::string make_job_token();

/// Compares without an early exit, so response timing does not reveal how much of a guess was right.
/// (The length is no secret: tokens are always 32 hex digits.)
bool same_token(const std::string& offered, const std::string& expected);

}  // namespace cclab
