// What the direct algorithms share (allreduce_direct.cc and its siblings): within one node, a rank
// reduces its part of the array from every rank's input where it lies, instead of receiving
// copies, and ranks read finished parts from their owners. The reads are Schedule steps (expose,
// read, read_reduce): the simulator proves them, and the executor carries them through
// PeerMemory, or through the transport where the ranks cannot address each other's memory.
//
// Words used below:
// - block: the part of the array one rank reduces (or owns): balanced_part(count, ranks, rank).
// - chunk: a block is read in up to kMostDirectChunks chunks of about `segment_bytes`, so a rank
//          reads chunk k + 1 while its peers already read the finished chunk k, and each chunk
//          is reduced while it is still in cache.
// - tags:  chunk k of the reduction phase uses tag k, chunk k of the phase that reads finished
//          blocks kMostDirectChunks + k; both below kPeerReadTags.
#pragma once

#include <cstddef>
#include <cstdint>

#include "algorithms/fragments.h"
#include "cclab/algorithm.h"
#include "patterns/partition.h"
#include "schedule/schedule_writer.h"

namespace cclab {

inline constexpr size_t kMostDirectChunks = 32;
static_assert(2 * kMostDirectChunks <= kPeerReadTags);

/// Chunks per block: every rank computes the same number from the whole array.
size_t direct_chunks(const CollectiveArgs& args, int ranks);

/// Tag of chunk `chunk` in the reduction phase, and in the phase that reads finished blocks.
inline uint32_t reduction_tag(size_t chunk) { return uint32_t(chunk); }
inline uint32_t result_tag(size_t chunk) { return uint32_t(kMostDirectChunks + chunk); }

/// Lets every other member of `group` read `chunk_of(p)` of this rank's memory, where p is that
/// member's position in the group (its rank, for Group::everyone).
template <typename ChunkOf>
void expose_to_every_peer(ScheduleWriter& writer, const Group& group, uint32_t tag, ChunkOf chunk_of) {
  for (int step = 1; step < group.size(); ++step) {
    const int peer = (group.position + step) % group.size();
    writer.expose(group.rank_at(peer), tag, chunk_of(peer));
  }
}

/// Reads from every other member of `group`, finished, what it exposed under `tag`, into
/// `target_of(p)` for the member at position p; the next member first.
template <typename TargetOf>
void read_from_every_peer(ScheduleWriter& writer, const Group& group, uint32_t tag, TargetOf target_of) {
  for (int step = 1; step < group.size(); ++step) {
    const int owner = (group.position + step) % group.size();
    writer.read(group.rank_at(owner), tag, target_of(owner));
  }
}

/// Chunk `chunk` (of `chunks`) of rank r's block of the array (block r of N balanced blocks).
Span chunk_of_block(const CollectiveArgs& args, int ranks, int owner, size_t chunk, size_t chunks);

/// The reduction phase of the direct allreduce and reduce, for one chunk: this rank lets every
/// peer read that peer's chunk of this rank's input, and reduces its own chunk from every rank's
/// input into its output (finalized).
void reduce_own_chunk(ScheduleWriter& writer, const CollectiveArgs& args, int ranks, int rank, size_t chunk,
                      size_t chunks);

/// target = own op (the same elements of every other member of `group`), read where they lie, one
/// member after the other starting with the next (so the members start on different owners); the
/// last reduction has `finalize` set.
void reduce_from_every_peer(ScheduleWriter& writer, const Group& group, uint32_t tag, Region own, Region target,
                            bool finalize);

}  // namespace cclab
