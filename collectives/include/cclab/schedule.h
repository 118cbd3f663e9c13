// A hand-written algorithm's plan for one rank (DESIGN 3.3): an ordered list of steps over
// regions of the input, output and scratch buffers, with dependencies. Nothing here knows how the
// steps are carried out: the host executor runs them over a Transport, the simulator runs all
// ranks' schedules symbolically, and a stream-ordered CUDA executor can run the same list later.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace cclab {

enum class BufferKind : uint8_t { input, output, scratch };

/// `count` elements starting at element `offset` of one buffer.
struct Region {
  BufferKind buffer = BufferKind::input;
  size_t offset = 0;
  size_t count = 0;
};

enum class StepKind : uint8_t {
  send,    // send `source` to `peer`
  recv,    // receive into `target` from `peer`
  reduce,  // target = source op operand (target may equal source or operand)
  copy,    // target = source
  // Peer reads within a node (DESIGN 3.2): the owner exposes a region of its memory and the peer
  // reads it where it lies, so the copy a receive makes is saved. An expose pairs with one read
  // or read_reduce of `peer` by tag, like a send with a receive, and completes when the peer has
  // read; it counts as elements sent to the peer (its memory was read).
  expose,       // let `peer` read `source`; the region must stay unchanged until this completes
  read,         // target = the region `peer` exposed under `tag`
  read_reduce,  // target = source op the region `peer` exposed under `tag`
};

struct Step {
  StepKind kind = StepKind::copy;
  int peer = -1;          // send, recv
  uint32_t tag = 0;       // send, recv: matches one send of the peer with one receive here
  Region source;          // send, reduce, copy
  Region operand;         // reduce
  Region target;          // recv, reduce, copy
  bool finalize = false;  // reduce: last reduction of these elements (an average divides here)
  std::vector<uint32_t> deps;  // indices of earlier steps that must be complete first
};

/// The complete plan of one rank for one collective call.
struct Schedule {
  std::vector<Step> steps;
  size_t scratch_count = 0;  // elements of scratch the executor must provide

  uint32_t add(Step step);
  uint32_t send(int peer, uint32_t tag, Region source, std::vector<uint32_t> deps = {});
  uint32_t recv(int peer, uint32_t tag, Region target, std::vector<uint32_t> deps = {});
  uint32_t reduce(Region target, Region source, Region operand, bool finalize, std::vector<uint32_t> deps = {});
  uint32_t copy(Region target, Region source, std::vector<uint32_t> deps = {});
  uint32_t expose(int peer, uint32_t tag, Region source, std::vector<uint32_t> deps = {});
  uint32_t read(int peer, uint32_t tag, Region target, std::vector<uint32_t> deps = {});
  uint32_t read_reduce(int peer, uint32_t tag, Region target, Region source, bool finalize,
                       std::vector<uint32_t> deps = {});

  /// True when some step reads a peer's memory (the schedule needs ranks that share a node).
  bool reads_peers() const;

  /// Elements this rank sends in total, exposed regions included (the predicted volume, before
  /// multiplying by the dtype size).
  size_t elements_sent() const;
  size_t elements_received() const;
};

/// Where `region` starts, given the call's buffers and the element size: what every executor
/// (host, device) needs to turn a step into memory.
inline std::byte* region_address(const Region& region, const void* input, void* output, void* scratch,
                                 size_t element) {
  void* base = region.buffer == BufferKind::input    ? const_cast<void*>(input)
               : region.buffer == BufferKind::output ? output
                                                     : scratch;
  return static_cast<std::byte*>(base) + region.offset * element;
}

/// Tags of expose and read steps are below this bound: the executor keeps one flag slot per tag.
inline constexpr uint32_t kPeerReadTags = 64;

/// The same collective with every peer read carried by the transport instead: expose becomes a
/// send, read a receive, read_reduce a receive into scratch followed by the reduction. What runs
/// where ranks cannot address each other's memory. With `addressable`, only the peer reads between
/// this rank and a peer for which it is false are converted (the others stay reads); it must
/// answer the same for a pair on both ranks, as "same node" does.
Schedule through_transport(const Schedule& schedule, const std::function<bool(int peer)>& addressable = nullptr);

/// Human-readable listing, for debugging and `--dump-schedule`-style tooling.
std::string to_string(const Schedule& schedule);

}  // namespace cclab
