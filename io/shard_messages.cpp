// Typed shard messages on MessageWriter/MessageReader (shard_messages.hpp).
#include "shard_messages.hpp"

#include "tessera/core/error.hpp"

namespace tessera::io {

namespace {

enum class Kind : std::uint8_t { share = 1, tile = 2, block = 3, end = 4 };

}  // namespace

ConstTile BlockMessage::tile(int bands, Format format) const {
    const std::size_t row = std::size_t(rect.w) * bands * format_size(format);
    if (rect.empty() || pixels.size() != row * std::size_t(rect.h))
        throw Error("internal: a block of pixels from another rank has the wrong size");
    return ConstTile(rect, bands, format, pixels.data(), row);
}

void ShardLink::send(const ShareMessage& m) {
    MessageWriter w;
    w.put(Kind::share);
    w.put(m.rank);
    w.put(m.first);
    w.put(m.stop);
    courier_->send(std::move(w.bytes()));
}

void ShardLink::send_tile(std::uint32_t level, std::uint32_t index, std::span<const std::uint8_t> bytes) {
    MessageWriter w;
    w.bytes().reserve(32 + bytes.size());
    w.put(Kind::tile);
    w.put(level);
    w.put(index);
    w.put_bytes(std::as_bytes(bytes));
    courier_->send(std::move(w.bytes()));
}

void ShardLink::send_block(std::uint32_t level, int bx, int by, const ConstTile& pixels, const Rect& whole, bool last) {
    const std::size_t row = pixels.row_bytes(), n = row * std::size_t(pixels.rect.h);
    MessageWriter w;
    w.bytes().reserve(64 + n);
    w.put(Kind::block);
    w.put(level);
    w.put(bx);
    w.put(by);
    w.put(pixels.rect);
    w.put(whole);
    w.put(std::uint8_t(last));
    // the rows, packed (a view's stride may be wider)
    w.put(std::uint64_t(n));
    std::vector<std::byte>& b = w.bytes();
    for (int y = pixels.rect.y; y < pixels.rect.bottom(); ++y) {
        const std::byte* p = pixels.at(pixels.rect.x, y);
        b.insert(b.end(), p, p + row);
    }
    courier_->send(std::move(b));
}

void ShardLink::send_end() {
    MessageWriter w;
    w.put(Kind::end);
    courier_->send(std::move(w.bytes()));
    courier_->flush();
}

std::optional<ShardMessage> ShardLink::receive(bool wait) {
    if (!courier_->receive(in_, wait)) return std::nullopt;
    MessageReader r(in_, 0, what_);
    ShardMessage out;
    switch (r.get<Kind>()) {
        case Kind::share: {
            ShareMessage m;
            m.rank = r.get<int>();
            m.first = r.get<std::uint64_t>();
            m.stop = r.get<std::uint64_t>();
            out = m;
            break;
        }
        case Kind::tile: {
            TileMessage m;
            m.level = r.get<std::uint32_t>();
            m.index = r.get<std::uint32_t>();
            m.bytes = r.get_bytes();
            out = m;
            break;
        }
        case Kind::block: {
            BlockMessage m;
            m.level = r.get<std::uint32_t>();
            m.bx = r.get<int>();
            m.by = r.get<int>();
            m.rect = r.get<Rect>();
            m.whole = r.get<Rect>();
            m.last = r.get<std::uint8_t>() != 0;
            m.pixels = r.get_bytes();
            out = m;
            break;
        }
        case Kind::end: out = EndMessage{}; break;
        default: throw Error("internal: " + what_ + " from another rank: an unknown message");
    }
    if (!r.done()) throw Error("internal: " + what_ + " from another rank: a message longer than its kind");
    return out;
}

}  // namespace tessera::io
