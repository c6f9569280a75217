// A byte-bounded LRU of decoded blocks, internal to io/: what a reader keeps
// of a compressed block (a TIFF strip or tile, a Zarr chunk) that several
// output tiles share, so it is decoded once while they are computed.
//
// Blocks are keyed by (owner, block): an owner is one source (a TIFF page,
// a zarr_load op), given a number never reused (next_owner()), so that a
// source that goes away drops its blocks (drop()) and a new one with the
// same address cannot be served them. Blocks are handed out as shared
// pointers: one evicted while a tile still copies from it lives until that
// copy ends. The most recently kept block stays even when it alone is over
// the budget (a tile must be able to use what it just decoded).
//
// Thread-safe (one mutex: lookups are a hash probe and a list splice, far
// below the cost of a decode). Deduplicating concurrent decodes of the same
// block is the caller's (tiff_stream: a page's own lock; zarr_load: striped
// locks), since only the caller knows what it may serialise.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace tessera::io {

class BlockCache {
public:
    using Bytes = std::shared_ptr<const std::vector<std::byte>>;

    explicit BlockCache(std::size_t budget) : budget_(budget) {}

    std::uint64_t next_owner() { return next_owner_++; }

    // The block, made most recent; null when it is not held.
    Bytes find(std::uint64_t owner, std::uint64_t block) {
        std::lock_guard lock(mu_);
        auto it = index_.find(owner);
        if (it == index_.end()) return nullptr;
        auto b = it->second.find(block);
        if (b == it->second.end()) return nullptr;
        lru_.splice(lru_.begin(), lru_, b->second);
        return b->second->bytes;
    }

    // Holds the block (unless it is held already), evicting the least
    // recently used others while over the budget.
    void keep(std::uint64_t owner, std::uint64_t block, Bytes bytes) {
        std::lock_guard lock(mu_);
        auto& blocks = index_[owner];
        if (blocks.count(block)) return;
        held_ += bytes->size();
        lru_.push_front({owner, block, std::move(bytes)});
        blocks.emplace(block, lru_.begin());
        while (held_ > budget_ && lru_.size() > 1) {
            Entry& old = lru_.back();
            held_ -= old.bytes->size();
            auto ix = index_.find(old.owner);
            ix->second.erase(old.block);
            if (ix->second.empty()) index_.erase(ix);
            lru_.pop_back();
        }
    }

    // Every block of the owner goes.
    void drop(std::uint64_t owner) {
        std::lock_guard lock(mu_);
        auto it = index_.find(owner);
        if (it == index_.end()) return;
        for (auto& [b, at] : it->second) {
            held_ -= at->bytes->size();
            lru_.erase(at);
        }
        index_.erase(it);
    }

    void set_budget(std::size_t bytes) {
        std::lock_guard lock(mu_);
        budget_ = bytes;
    }
    std::size_t held() const {
        std::lock_guard lock(mu_);
        return held_;
    }

private:
    struct Entry {
        std::uint64_t owner = 0;
        std::uint64_t block = 0;
        Bytes bytes;
    };
    mutable std::mutex mu_;
    std::list<Entry> lru_;  // front: most recent
    std::unordered_map<std::uint64_t, std::unordered_map<std::uint64_t, std::list<Entry>::iterator>> index_;
    std::size_t budget_ = 0, held_ = 0;
    std::atomic<std::uint64_t> next_owner_{1};
};

}  // namespace tessera::io
