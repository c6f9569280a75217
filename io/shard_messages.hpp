// The messages of a streaming writer's sharded run (shard.hpp), internal to
// io/: what a producer rank sends the writer (rank 0), typed, and encoded on
// core's MessageWriter/MessageReader (native sizes and byte order: the ranks
// run one build). The pyramid TIFF writer sends compressed tiles and the
// shrunk blocks of the levels the writer finishes; the Deep Zoom writer its
// share, then the blocks (or the parts of them) rank 0 needs; both end with
// an EndMessage once the producer's part is complete.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "tessera/core/buffer.hpp"
#include "tessera/core/op.hpp"
#include "tessera/core/shard.hpp"

namespace tessera::io {

// A producer's share: positions [first, stop) of the sink's tile order.
struct ShareMessage {
    int rank = 0;
    std::uint64_t first = 0, stop = 0;
};
// A compressed tile: tile `index` (row-major) of `level`.
struct TileMessage {
    std::uint32_t level = 0, index = 0;
    std::span<const std::byte> bytes;
};
// Pixels of block (bx, by) of `level`, covering `rect` in the level's
// frame; `whole` is what all the pieces of that block sent cover, `last`
// marks the block's last piece.
struct BlockMessage {
    std::uint32_t level = 0;
    int bx = 0, by = 0;
    Rect rect, whole;
    bool last = true;
    std::span<const std::byte> pixels;
    // The pixels as a view; Error if they are not rect's in this layout.
    ConstTile tile(int bands, Format format) const;
};
struct EndMessage {};
using ShardMessage = std::variant<ShareMessage, TileMessage, BlockMessage, EndMessage>;

// One sink run's side of the courier, for the producers' sends and the
// writer's receives. `what` names the messages in errors ("Deep Zoom
// pieces").
class ShardLink {
public:
    ShardLink(Courier& courier, std::string what) : courier_(&courier), what_(std::move(what)) {}

    Courier& courier() const { return *courier_; }
    int rank() const { return courier_->rank(); }
    int ranks() const { return courier_->ranks(); }

    // Producer.
    void send(const ShareMessage& m);
    void send_tile(std::uint32_t level, std::uint32_t index, std::span<const std::uint8_t> bytes);
    void send_block(std::uint32_t level, int bx, int by, const ConstTile& pixels, const Rect& whole, bool last);
    // The end of this producer's part: sent, then every message flushed.
    void send_end();

    // Writer: the next message (wait: waits for one, else none when nothing
    // has arrived); its spans stay valid until the next receive.
    std::optional<ShardMessage> receive(bool wait);

private:
    Courier* courier_;
    std::string what_;
    std::vector<std::byte> in_;
};

// What a streaming writer keeps of its SinkContext: the account its own
// buffers are charged to and, in a sharded run, its share and the link to
// the other ranks. Set at start().
struct WriterPart {
    MemoryAccount* account = nullptr;
    std::optional<Share> share;
    std::optional<ShardLink> link;

    // `what` names the writer's messages in errors.
    void start(const SinkContext& context, const std::string& what) {
        account = context.account;
        share.reset();
        link.reset();
        if (context.share) {
            share = *context.share;
            link.emplace(*share->courier, what);
        }
    }
    // A rank > 0 of a sharded run: sends what it made to the writer.
    bool producer() const { return share && !share->writer(); }
    // Rank 0 of a sharded run: takes in the producers' parts and writes.
    bool writer() const { return share && share->writer(); }
};

}  // namespace tessera::io
