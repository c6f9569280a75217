#include "tessera/graphs/evaluator.hpp"

#include <chrono>
#include <cmath>
#include <cstring>
#include <tuple>
#include <algorithm>
#include <list>
#include <mutex>
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/info.h>
#include <oneapi/tbb/parallel_pipeline.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>
#include <unordered_map>

#include "tessera/core/error.hpp"

namespace tessera {

namespace {

// A stable report of background fills: by node, then top to bottom, left
// to right.
void sort_filled(std::vector<Filled>& f) {
    std::sort(f.begin(), f.end(), [](const Filled& a, const Filled& b) {
        return std::tie(a.node, a.rect.y, a.rect.x, a.rect.w, a.rect.h) <
               std::tie(b.node, b.rect.y, b.rect.x, b.rect.w, b.rect.h);
    });
}

// Background fills into a rank's statistics message, and back.
void append_filled(MessageWriter& out, const std::vector<Filled>& filled) {
    out.put(std::uint32_t(filled.size()));
    for (const Filled& f : filled) {
        out.put(f.node);
        out.put(f.file);
        out.put(f.rect);
        out.put(f.message);
    }
}
void read_filled(MessageReader in, std::vector<Filled>& filled) {
    for (std::uint32_t k = 0, n = in.get<std::uint32_t>(); k < n; ++k) {
        Filled f;
        f.node = in.get_string();
        f.file = in.get_string();
        f.rect = in.get<Rect>();
        f.message = in.get_string();
        filled.push_back(std::move(f));
    }
}

// One LRU of tiles for all cached nodes, under one byte budget. Entries are
// keyed by (node, rect): a hit needs the same rect asked again, which is what
// fan-out (two consumers of one node pulling the same tile) produces.
class TileCache {
public:
    TileCache(MemoryAccount& account, std::size_t budget) : account_(account), budget_(budget) {}

    bool lookup(NodeId n, const Rect& r, const Tile& dst) {
        std::shared_ptr<const Buffer> hit;
        {
            std::lock_guard lock(mu_);
            auto it = map_.find(Key{n, r});
            if (it == map_.end()) {
                ++misses_;
                return false;
            }
            lru_.splice(lru_.begin(), lru_, it->second);
            hit = it->second->buffer;
            ++hits_;
        }
        copy_pixels(hit->view(), dst);
        return true;
    }

    void store(NodeId n, const Rect& r, const ConstTile& src) {
        auto b = std::make_shared<Buffer>(&account_, r, src.bands, src.format);
        if (b->size() > budget_) return;
        copy_pixels(src, b->tile());
        std::lock_guard lock(mu_);
        Key k{n, r};
        if (map_.count(k)) return;
        lru_.push_front(Entry{k, std::move(b)});
        map_.emplace(k, lru_.begin());
        bytes_ += lru_.front().buffer->size();
        while (bytes_ > budget_ && !lru_.empty()) {
            bytes_ -= lru_.back().buffer->size();
            map_.erase(lru_.back().key);
            lru_.pop_back();
        }
    }

    std::size_t hits() const { return hits_; }
    std::size_t misses() const { return misses_; }

private:
    struct Key {
        NodeId node;
        Rect rect;
        bool operator==(const Key&) const = default;
    };
    struct KeyHash {
        std::size_t operator()(const Key& k) const {
            std::size_t h = k.node * 0x9E3779B97F4A7C15ull;
            for (int v : {k.rect.x, k.rect.y, k.rect.w, k.rect.h}) h = (h ^ std::size_t(unsigned(v))) * 0x100000001B3ull;
            return h;
        }
    };
    struct Entry {
        Key key;
        std::shared_ptr<const Buffer> buffer;
    };
    MemoryAccount& account_;
    std::size_t budget_;
    std::mutex mu_;
    std::list<Entry> lru_;
    std::unordered_map<Key, std::list<Entry>::iterator, KeyHash> map_;
    std::size_t bytes_ = 0;
    std::size_t hits_ = 0, misses_ = 0;
};

// A computed tile on its way from the parallel stage to the sink.
struct Computed {
    std::shared_ptr<Buffer> buffer;
    std::shared_ptr<void> prepared;
};

}  // namespace

struct Evaluator::Impl {
    const Graph& g;
    MemoryAccount account{&process_pixel_memory()};
    std::vector<bool> cached;
    std::unique_ptr<TileCache> cache;
    const std::atomic<bool>* cancel = nullptr;
    std::atomic<bool> stop{false};
    std::mutex filled_mu;
    std::vector<Filled> filled;  // this run's background fills

    explicit Impl(const Graph& graph) : g(graph) {
        cached.resize(g.size());
        bool any = false;
        for (NodeId n = 0; n < g.size(); ++n) {
            // Explicitly marked nodes, and nodes read by several consumers,
            // which would otherwise compute the same tile more than once.
            cached[n] = g.node(n).cache || (g.consumers(n) > 1 && !g.node(n).inputs.empty());
            any = any || cached[n];
        }
        if (any && g.execution.cache_mb > 0)
            cache = std::make_unique<TileCache>(account, g.execution.cache_mb << 20);
    }

    // What the sources are told during a run, found by walking demand alone
    // (no pixels) over the tiles in run order. A node's uses fall into
    // segments: a segment ends after the node's last use, and also after any
    // use that the next one goes back up from (a smaller top row), since a
    // source that streams rows top to bottom must restart there anyway.
    // Before a segment's first tile the node hears expect(union of the
    // segment's rects); after its last tile, release(). The walk visits a
    // (node, rect) pair once per tile, so diamonds cost no more than the run.
    struct Plan {
        std::vector<std::pair<std::size_t, NodeId>> releases;            // after tile #
        std::vector<std::tuple<std::size_t, NodeId, Rect>> expects;      // before tile #
    };
    Plan plan(NodeId root, const std::vector<Rect>& tiles) const {
        struct Segment {
            std::size_t first = SIZE_MAX, last = 0;
            int last_y = 0;
            Rect region;
        };
        std::vector<Segment> seg(g.size());
        Plan out;
        auto close = [&](NodeId n) {
            out.releases.push_back({seg[n].last, n});
            out.expects.push_back({seg[n].first, n, seg[n].region});
        };
        std::vector<std::pair<NodeId, Rect>> stack, seen;
        Demand need;
        for (std::size_t i = 0; i < tiles.size(); ++i) {
            seen.clear();
            stack.push_back({root, tiles[i]});
            while (!stack.empty()) {
                auto [n, r] = stack.back();
                stack.pop_back();
                if (std::find(seen.begin(), seen.end(), std::pair{n, r}) != seen.end()) continue;
                seen.push_back({n, r});
                Segment& s = seg[n];
                if (s.first != SIZE_MAX && s.last != i && r.y < s.last_y) {
                    close(n);
                    s = Segment{};
                }
                if (s.first == SIZE_MAX) s.first = i;
                s.last = i;
                s.last_y = r.y;
                s.region = s.region.unite(r);
                need.clear();
                g.node(n).op->demand(r, need);
                for (const Need& d : need)
                    if (!d.rect.empty()) stack.push_back({g.node(n).inputs[d.input], d.rect});
            }
        }
        for (NodeId n = 0; n < g.size(); ++n)
            if (seg[n].first != SIZE_MAX) close(n);
        std::sort(out.releases.begin(), out.releases.end());
        std::sort(out.expects.begin(), out.expects.end(),
                  [](const auto& x, const auto& y) { return std::get<0>(x) < std::get<0>(y); });
        return out;
    }

    // What each tile costs to compute, for balancing shares across ranks:
    // its own pixels plus every pixel its sources are asked for (decoding
    // dominates; a tile over four overlapping inputs costs about four
    // times an empty one). A walk of demand alone, like plan().
    std::vector<std::uint64_t> tile_costs(NodeId root, const std::vector<Rect>& tiles) const {
        std::vector<std::uint64_t> cost(tiles.size());
        std::vector<std::pair<NodeId, Rect>> stack, seen;
        Demand need;
        for (std::size_t i = 0; i < tiles.size(); ++i) {
            seen.clear();
            std::uint64_t c = std::uint64_t(tiles[i].area());
            stack.push_back({root, tiles[i]});
            while (!stack.empty()) {
                auto [n, r] = stack.back();
                stack.pop_back();
                if (std::find(seen.begin(), seen.end(), std::pair{n, r}) != seen.end()) continue;
                seen.push_back({n, r});
                if (g.node(n).inputs.empty()) c += std::uint64_t(r.area());
                need.clear();
                g.node(n).op->demand(r, need);
                for (const Need& d : need)
                    if (!d.rect.empty()) stack.push_back({g.node(n).inputs[d.input], d.rect});
            }
            cost[i] = c;
        }
        return cost;
    }

    // Rank `rank`'s share of positions: whole units [starts[k], starts[k+1])
    // (the last ends at costs.size()), cut where the running cost is
    // nearest to rank/ranks of the total, rank 0's `writer` extra counted
    // in front. The same on every rank.
    static std::pair<std::size_t, std::size_t> share_of(const std::vector<std::size_t>& starts,
                                                        const std::vector<std::uint64_t>& costs, int rank,
                                                        int ranks, std::uint64_t writer) {
        std::vector<std::uint64_t> prefix{0};  // cost before unit k
        for (std::size_t k = 0; k < starts.size(); ++k) {
            const std::size_t end = k + 1 < starts.size() ? starts[k + 1] : costs.size();
            std::uint64_t c = 0;
            for (std::size_t i = starts[k]; i < end; ++i) c += costs[i];
            prefix.push_back(prefix.back() + c);
        }
        auto cut = [&](int r) -> std::size_t {  // position where rank r's share begins
            if (r <= 0) return 0;
            if (r >= ranks) return costs.size();
            const long double target =
                (long double)(prefix.back() + writer) * r / ranks - (long double)writer;
            std::size_t best = 0;
            for (std::size_t k = 1; k < prefix.size(); ++k)
                if (std::abs((long double)prefix[k] - target) < std::abs((long double)prefix[best] - target)) best = k;
            return best < starts.size() ? starts[best] : costs.size();
        };
        return {cut(rank), std::max(cut(rank), cut(rank + 1))};
    }

    // Tiles in flight for a run of `node` into `sink`: enough to keep every
    // thread busy while the serial writer catches up, and no more, because
    // each holds a tile of pixels (plus the scratch of its unplaced needs).
    // Under a memory budget, fewer; an error if not even one tile fits.
    std::size_t tokens_for(NodeId node, const Sink& sink) const {
        const Execution& ex = g.execution;
        const ImageInfo& info = g.info(node);
        const auto want = sink.tile_size();
        const int tw = want ? want->x : ex.tile_w, th = want ? want->y : ex.tile_h;
        const int threads = ex.threads > 0 ? ex.threads : tbb::info::default_concurrency();
        std::size_t tokens = std::size_t(threads) * 2;
        const std::size_t tile_bytes = std::size_t(tw) * th * info.pixel_bytes();
        if (ex.memory_mb > 0) {
            std::size_t fit = (ex.memory_mb << 20) / std::max<std::size_t>(tile_bytes, 1);
            if (fit < 1)
                throw GraphError(g.node(node).id, g.node(node).op_name, "",
                                 "memory_mb " + std::to_string(ex.memory_mb) + " cannot hold one " + std::to_string(tw) +
                                     "x" + std::to_string(th) + " tile of " + std::to_string(info.bands) + " x " +
                                     std::string(format_name(info.format)) + " (" + std::to_string(tile_bytes >> 10) +
                                     " KiB); raise memory_mb or lower the tile size");
            tokens = std::min(tokens, fit);
        }
        return tokens;
    }

    bool cancelled() const { return stop.load(std::memory_order_relaxed) || (cancel && cancel->load()); }

    // A node's compute, under the run's error policy: with on_error =
    // background a source (no inputs) that cannot read its file fills its
    // part with 0 and the part is recorded; anything else propagates.
    void compute(NodeId n, const Tile& dst, std::span<const Pulled> pulled) {
        const Node& node = g.node(n);
        if (g.execution.on_error != Execution::OnError::background || !node.inputs.empty()) {
            node.op->compute(dst, pulled);
            return;
        }
        try {
            node.op->compute(dst, pulled);
        } catch (const IoError& e) {
            const double zero = 0;
            fill_pixels(dst, &zero, 1);
            std::lock_guard lock(filled_mu);
            filled.push_back({node.id, e.path(), dst.rect, e.what()});
        }
    }

    // Fills dst (dst.rect in n's frame) with n's pixels: demand, pull the
    // unplaced needs into scratch, compute, then pull the placed needs
    // straight into dst. Recursion depth is the graph's depth, never its
    // fan-in: an op with thousands of inputs demands only those it overlaps.
    void pull(NodeId n, const Tile& dst) {
        if (cancelled()) throw Cancelled();
        const Node& node = g.node(n);
        bool use_cache = cache && cached[n];
        if (use_cache && cache->lookup(n, dst.rect, dst)) return;
        Demand need;
        node.op->demand(dst.rect, need);
        try {
            std::vector<Buffer> scratch;
            std::vector<Pulled> pulled;
            for (const Need& d : need) {
                if (d.place) continue;
                const ImageInfo& in = g.info(node.inputs[d.input]);
                scratch.emplace_back(&account, d.rect, in.bands, in.format);
                if (!d.rect.empty()) pull(node.inputs[d.input], scratch.back().tile());
                pulled.push_back({d.input, scratch.back().view()});
            }
            compute(n, dst, pulled);
            pulled.clear();
            scratch.clear();  // free before going deeper: placed pulls reuse dst
            for (const Need& d : need) {
                if (!d.place || d.rect.empty()) continue;
                Tile part = dst.sub({d.place->x, d.place->y, d.rect.w, d.rect.h});
                pull(node.inputs[d.input], part.moved(d.rect.x - d.place->x, d.rect.y - d.place->y));
            }
        } catch (const GraphError&) {
            throw;
        } catch (const Cancelled&) {
            throw;
        } catch (const Error& e) {
            // The innermost failing node names itself; outer ones pass it on.
            throw GraphError(node.id, node.op_name, "", e.what());
        }
        if (use_cache) cache->store(n, dst.rect, dst);
    }
};

Evaluator::Evaluator(const Graph& g) : impl_(std::make_unique<Impl>(g)) {}
Evaluator::~Evaluator() = default;
MemoryAccount& Evaluator::account() { return impl_->account; }

Buffer Evaluator::render(NodeId node, const Rect& rect) {
    const ImageInfo& info = impl_->g.info(node);
    if (!info.rect().contains(rect)) throw GraphError(impl_->g.node(node).id, "", "", "render: rect outside the image");
    Buffer b(nullptr, rect, info.bands, info.format);
    impl_->pull(node, b.tile());
    return b;
}

RunStats Evaluator::run(NodeId node, Sink& sink, const RunOptions& options) {
    Impl& m = *impl_;
    const Graph& g = m.g;
    const Execution& ex = g.execution;
    const ImageInfo& info = g.info(node);
    const auto want = sink.tile_size();
    const int tw = want ? want->x : ex.tile_w, th = want ? want->y : ex.tile_h;
    if (tw < 1 || th < 1) throw Error("the sink asked for an empty tile size");
    const std::size_t cols = (std::size_t(info.width) + tw - 1) / tw;
    const std::size_t rows = (std::size_t(info.height) + th - 1) / th;
    const std::size_t total = cols * rows;
    const int threads = ex.threads > 0 ? ex.threads : tbb::info::default_concurrency();

    const std::size_t tokens = impl_->tokens_for(node, sink);

    m.cancel = options.cancel;
    m.stop = false;
    m.account.reset_peak();
    process_pixel_memory().reset_peak();
    auto t0 = std::chrono::steady_clock::now();
    RunStats stats;
    stats.tokens = tokens;
    {
        std::lock_guard lock(m.filled_mu);
        m.filled.clear();
    }
    // the tiles, in the order the sink asks for
    std::vector<Rect> tiles(total);
    {
        std::vector<std::uint32_t> order = sink.tile_order(int(cols), int(rows));
        if (!order.empty() && order.size() != total) throw Error("the sink's tile order does not list every tile once");
        std::vector<bool> listed(order.empty() ? 0 : total, false);
        for (std::size_t k = 0; k < total; ++k) {
            std::size_t i = order.empty() ? k : order[k];
            if (!order.empty()) {
                if (i >= total || listed[i]) throw Error("the sink's tile order must list every tile exactly once");
                listed[i] = true;
            }
            tiles[k] = Rect{int(i % cols) * tw, int(i / cols) * th, tw, th}.intersect(info.rect());
        }
    }
    // A sharded run computes one share of those positions (see RunOptions).
    Cluster* cluster = options.cluster && options.cluster->ranks() > 1 ? options.cluster : nullptr;
    std::unique_ptr<Courier> courier;
    std::size_t first = 0, last = total;
    std::optional<Share> share;
    bool skip = false;  // a sink that cannot be split: rank 0 does it all
    if (cluster) {
        courier = cluster->courier(options.cancel);
        auto* sharded = dynamic_cast<ShardedSink*>(&sink);
        const std::vector<std::size_t> starts =
            sharded ? sharded->share_starts(int(cols), int(rows), cluster->ranks()) : std::vector<std::size_t>{};
        if (starts.empty()) {
            skip = cluster->rank() != 0;
        } else {
            if (starts.front() != 0 || !std::is_sorted(starts.begin(), starts.end()) || starts.back() > total)
                throw Error("internal: the sink's share starts are not ascending positions from 0");
            std::tie(first, last) =
                Impl::share_of(starts, m.tile_costs(node, tiles), cluster->rank(), cluster->ranks(),
                               sharded->writer_cost(int(cols), int(rows), cluster->ranks()));
            share = Share{first, last, courier.get()};
        }
        if (skip) first = last = 0;
        tiles = std::vector<Rect>(tiles.begin() + std::ptrdiff_t(first), tiles.begin() + std::ptrdiff_t(last));
    }
    const std::size_t mine = tiles.size();
    const Impl::Plan plan = m.plan(node, tiles);
    std::atomic<std::uint64_t> busy_ns{0};
    double share_seconds = 0, sink_seconds = 0;
    const auto& releases = plan.releases;
    std::size_t next_release = 0, next_expect = 0;
    std::size_t next = 0, done = 0, pixels = 0;
    bool user_cancel = false;

    try {
        if (!skip) {  // (skip: rank 0 computes and writes this output alone)
            sink.start(info, SinkContext{tw, th, threads, &m.account, share ? &*share : nullptr});
            // More threads than cores is allowed (it must not change the bits,
            // and tests check that); TBB needs the global limit raised for it.
            tbb::global_control allow(tbb::global_control::max_allowed_parallelism,
                                      std::max<std::size_t>(threads, tbb::info::default_concurrency()));
            tbb::task_arena arena(threads);
            arena.execute([&] {
                tbb::parallel_pipeline(
                    tokens,
                    // serial: hand out the tiles in the order the sink asked for
                    tbb::make_filter<void, std::size_t>(tbb::filter_mode::serial_in_order,
                                                        [&](tbb::flow_control& fc) -> std::size_t {
                                                            if (next >= mine || m.cancelled()) {
                                                                fc.stop();
                                                                return 0;
                                                            }
                                                            // sources hear what the coming tiles will ask of them
                                                            for (; next_expect < plan.expects.size() &&
                                                                   std::get<0>(plan.expects[next_expect]) == next;
                                                                 ++next_expect) {
                                                                const auto& [at, n, region] = plan.expects[next_expect];
                                                                g.node(n).op->expect(region);
                                                            }
                                                            return next++;
                                                        }) &
                        // parallel: compute the tile
                        tbb::make_filter<std::size_t, Computed>(
                            tbb::filter_mode::parallel,
                            [&](std::size_t i) {
                                const auto t = std::chrono::steady_clock::now();
                                const Rect& r = tiles[i];
                                auto b = std::make_shared<Buffer>(&m.account, r, info.bands, info.format);
                                m.pull(node, b->tile());
                                auto prepared = sink.prepare(b->view());
                                busy_ns += std::uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                             std::chrono::steady_clock::now() - t)
                                                             .count());
                                return Computed{std::move(b), std::move(prepared)};
                            }) &
                        // serial, in order: the sink writes
                        tbb::make_filter<Computed, void>(
                            tbb::filter_mode::serial_in_order, [&](Computed c) {
                                if (m.cancelled()) return;
                                const auto& b = c.buffer;
                                const auto ts = std::chrono::steady_clock::now();
                            sink.consume(b->view(), std::move(c.prepared));
                            sink_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - ts).count();
                                // tiles arrive here in order: whatever no later tile needs can go
                                for (; next_release < releases.size() && releases[next_release].first == done;
                                     ++next_release)
                                    g.node(releases[next_release].second).op->release();
                                ++done;
                                pixels += std::size_t(b->rect().area());
                                if (options.progress) {
                                    Progress p{done, mine, pixels, m.account.current(),
                                               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()};
                                    if (!options.progress(p)) {
                                        user_cancel = true;
                                        m.stop = true;
                                    }
                                }
                            }));
            });
            if (m.cancelled() || user_cancel) throw Cancelled();
            share_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            const auto tf = std::chrono::steady_clock::now();
            sink.finish();
            sink_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - tf).count();
        }
    } catch (...) {
        sink.abort();
        // The run unwinds (failed or cancelled), so no plan's release() is
        // coming: every source lets go of its decoders, windows and files
        // now, not when the graph goes, or a long-lived caller's failed runs
        // would hold them (the pipeline has stopped: no tile is in flight).
        for (NodeId n = 0; n < g.size(); ++n) try {
                g.node(n).op->release();
            } catch (...) {
            }
        throw;
    }
    stats.tiles = done;
    {
        // a stable report: by node, then top to bottom, left to right
        std::lock_guard lock(m.filled_mu);
        stats.filled = std::move(m.filled);
        m.filled.clear();
        sort_filled(stats.filled);
    }
    stats.peak_pixel_bytes = m.account.peak();
    if (cluster) {
        // every rank's part, to rank 0; then nobody goes on (to a next sink
        // that may read this output) before the writer has finished
        RankStats mine_stats{cluster->rank(),
                             done,
                             double(busy_ns.load()) * 1e-9,
                             share_seconds,
                             std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
                             sink_seconds,
                             courier->seconds_waited(),
                             courier->bytes_sent()};
        // (and what it filled with background, so that rank 0 reports the
        // whole job's)
        MessageWriter mine;
        mine.put(mine_stats);
        if (cluster->rank() != 0) append_filled(mine, stats.filled);
        for (const auto& b : cluster->gather(std::move(mine.bytes()), options.cancel)) {
            MessageReader in(b, 0, "rank statistics");
            const RankStats r = in.get<RankStats>();
            stats.ranks.push_back(r);
            if (r.rank != 0) read_filled(std::move(in), stats.filled);
        }
        if (cluster->rank() == 0) sort_filled(stats.filled);
        cluster->barrier(options.cancel);
    }
    stats.peak_process_pixel_bytes = process_pixel_memory().peak();
    stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (m.cache) {
        stats.cache_hits = m.cache->hits();
        stats.cache_misses = m.cache->misses();
    }
    return stats;
}

RunStats Evaluator::run_sinks(const RunOptions& options) {
    RunStats all;
    std::vector<NodeId> sinks = impl_->g.sinks();
    if (sinks.empty()) throw Error("the pipeline has no sink (save) node, so there is nothing to write; add a save node");
    // every sink's budget is checked before the first one writes anything
    std::vector<std::unique_ptr<Sink>> made;
    for (NodeId s : sinks) {
        made.push_back(impl_->g.node(s).op->make_sink());
        impl_->tokens_for(s, *made.back());
    }
    for (std::size_t k = 0; k < sinks.size(); ++k) {
        RunStats r = run(sinks[k], *made[k], options);
        all.tiles += r.tiles;
        all.peak_pixel_bytes = std::max(all.peak_pixel_bytes, r.peak_pixel_bytes);
        all.peak_process_pixel_bytes = std::max(all.peak_process_pixel_bytes, r.peak_process_pixel_bytes);
        all.cache_hits += r.cache_hits;
        all.cache_misses += r.cache_misses;
        all.tokens = r.tokens;
        all.seconds += r.seconds;
        all.filled.insert(all.filled.end(), r.filled.begin(), r.filled.end());
        all.ranks.insert(all.ranks.end(), r.ranks.begin(), r.ranks.end());
    }
    return all;
}

void parallel_reads(const Graph& g, std::size_t n, int threads, const std::atomic<bool>* cancel,
                    const std::function<void(Evaluator& ev, std::size_t i)>& fn) {
    if (n == 0) return;
    const int cores = tbb::info::default_concurrency();
    const int workers = int(std::min<std::size_t>(std::size_t(threads > 0 ? threads : std::max(cores, 1)), n));
    std::atomic<std::size_t> next{0};
    std::atomic<bool> failed{false};
    std::exception_ptr error;
    std::mutex error_mu;
    auto worker = [&] {
        Evaluator ev(g);
        for (std::size_t i; !failed && (i = next++) < n;) {
            try {
                if (cancel && cancel->load()) throw Cancelled();
                fn(ev, i);
            } catch (...) {
                std::lock_guard lock(error_mu);
                if (!error) error = std::current_exception();
                failed = true;
            }
        }
    };
    tbb::global_control allow(tbb::global_control::max_allowed_parallelism,
                              std::max(workers, tbb::info::default_concurrency()));
    tbb::task_arena arena(workers);
    arena.execute([&] {
        tbb::task_group group;
        for (int k = 0; k < workers; ++k) group.run(worker);
        group.wait();
    });
    if (error) std::rethrow_exception(error);
}

NodeId source_of(const Graph& g, NodeId node) {
    while (!g.node(node).inputs.empty()) node = g.node(node).inputs[0];
    return node;
}

}  // namespace tessera
