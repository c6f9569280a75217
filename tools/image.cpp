// tessera::Image (tessera/image.hpp): a graph node as a value, the memory
// source, and windows computed on parallel workers.
#include "tessera/image.hpp"

#include <cstring>
#include <map>
#include <mutex>

#include "tessera/core/error.hpp"
#include "tessera/tessera.hpp"

namespace tessera {
namespace {

// Pixels a caller owns, as from_memory was given them.
struct MemoryBlock {
    std::shared_ptr<const void> owner;
    const std::byte* data = nullptr;
    ImageInfo info;
    std::size_t stride = 0;
};

// Blocks by handle, so that a "memory" node's parameters (plain values, as
// every node's are) can name one. Weak: the nodes hold the blocks, this
// only finds them while a node does (apply() adding one again).
struct MemoryTable {
    std::mutex mu;
    std::int64_t next = 1;
    std::map<std::int64_t, std::weak_ptr<const MemoryBlock>> blocks;

    std::int64_t add(std::shared_ptr<const MemoryBlock> b) {
        std::lock_guard lock(mu);
        std::erase_if(blocks, [](const auto& kv) { return kv.second.expired(); });
        blocks[next] = b;
        return next++;
    }
    std::shared_ptr<const MemoryBlock> find(std::int64_t handle) {
        std::lock_guard lock(mu);
        auto it = blocks.find(handle);
        return it == blocks.end() ? nullptr : it->second.lock();
    }
};
MemoryTable& memory_table() {
    static MemoryTable t;
    return t;
}

// memory: the pixels of a MemoryBlock, copied into each tile asked for.
class MemoryOp final : public Op {
public:
    MemoryOp(const Params& p, std::span<const ImageInfo>) : block_(memory_table().find(p.integer("handle"))) {
        if (!block_)
            throw ParamError("handle", "no memory image " + std::to_string(p.integer("handle")) +
                                           " in this process: a memory node stands for pixels held by the process "
                                           "that made it (tessera.from_array); save them to a file and load that");
        info_ = block_->info;
    }

    void demand(const Rect&, Demand&) const override {}  // a source: no inputs

    void compute(const Tile& out, std::span<const Pulled>) const override {
        const std::size_t px = info_.pixel_bytes();
        for (int y = out.rect.y; y < out.rect.bottom(); ++y)
            std::memcpy(out.at(out.rect.x, y),
                        block_->data + std::size_t(y) * block_->stride + std::size_t(out.rect.x) * px, out.row_bytes());
    }

private:
    std::shared_ptr<const MemoryBlock> block_;
};

OpSpec memory_op_spec() {
    return {"memory",
            "pixels held in this process's memory (tessera.from_array: a numpy array, not copied); valid only in "
            "the process that made it",
            0,
            0,
            {{.name = "handle",
              .type = ParamType::integer,
              .required = true,
              .doc = "the memory image's number in this process",
              .min = 1}},
            false,
            &make_op<MemoryOp>,
            false,
            "source",
            "0"};
}

// Adds the ancestors of source nodes to `dst` again (by op, parameters and
// inputs), each once, keeping their ids where `dst` has no node of that id.
struct Copier {
    Graph& dst;
    std::map<std::pair<const Graph*, NodeId>, NodeId> done;

    NodeId copy(const Graph& src, NodeId n) {
        if (auto it = done.find({&src, n}); it != done.end()) return it->second;
        const Node& node = src.node(n);
        std::vector<NodeId> inputs;
        inputs.reserve(node.inputs.size());
        for (NodeId in : node.inputs) inputs.push_back(copy(src, in));
        const NodeId m = dst.add(node.op_name, inputs, node.params, dst.contains(node.id) ? "" : node.id);
        if (node.cache) dst.set_cache(m, true);
        done[{&src, n}] = m;
        return m;
    }
};

}  // namespace

const OpRegistry& image_registry() {
    static const OpRegistry registry = [] {
        OpRegistry r;
        for (const OpSpec& s : standard_registry().specs()) r.add(s);
        r.add(memory_op_spec());
        return r;
    }();
    return registry;
}

Image::Image(std::shared_ptr<const Graph> graph, NodeId node) : graph_(std::move(graph)), node_(node) {
    if (!graph_ || node_ >= graph_->size()) throw Error("Image: the node is not in the graph");
    const Node& n = graph_->node(node_);
    if (n.spec->sink)
        throw GraphError(n.id, n.op_name, "", "a sink has no pixels to read; take the image of its input");
}

Image Image::apply(const std::string& op, const std::vector<Image>& inputs, const Params& params,
                   const OpRegistry& registry) {
    auto g = std::make_shared<Graph>(registry);
    if (!inputs.empty()) g->execution = inputs.front().graph().execution;
    Copier c{*g, {}};
    std::vector<NodeId> ins;
    ins.reserve(inputs.size());
    for (const Image& in : inputs) ins.push_back(c.copy(in.graph(), in.node()));
    const NodeId n = g->add(op, ins, params);
    return Image(std::move(g), n);
}

Image Image::from_memory(std::shared_ptr<const void> owner, const std::byte* data, const ImageInfo& info,
                         std::size_t stride) {
    if (info.width < 1 || info.height < 1 || info.width > kMaxDimension || info.height > kMaxDimension)
        throw ParamError("shape", "a memory image must be 1 to " + std::to_string(kMaxDimension) +
                                      " pixels on each side, not " + std::to_string(info.width) + "x" +
                                      std::to_string(info.height));
    if (info.bands < 1 || info.bands > kMaxBands)
        throw ParamError("bands", "a memory image has 1 to " + std::to_string(kMaxBands) + " bands, not " +
                                      std::to_string(info.bands));
    if (!data || stride < std::size_t(info.width) * info.pixel_bytes())
        throw ParamError("stride", "the rows (stride " + std::to_string(stride) + " bytes) are shorter than " +
                                       std::to_string(info.width) + " pixels of " + std::to_string(info.pixel_bytes()) +
                                       " bytes");
    auto block = std::make_shared<const MemoryBlock>(MemoryBlock{std::move(owner), data, info, stride});
    const std::int64_t handle = memory_table().add(block);
    auto g = std::make_shared<Graph>(image_registry());
    const NodeId n = g->add("memory", {}, {{"handle", handle}});
    // the node holds the block now; `block` going out of scope leaves it the owner
    return Image(std::move(g), n);
}

void Image::read_into(const Tile& dst, const RegionOptions& options) const {
    const Node& n = graph_->node(node_);
    const ImageInfo& im = info();
    if (dst.rect.empty() || !im.rect().contains(dst.rect))
        throw GraphError(n.id, n.op_name, "",
                         "the window " + std::to_string(dst.rect.w) + "x" + std::to_string(dst.rect.h) + " at (" +
                             std::to_string(dst.rect.x) + ", " + std::to_string(dst.rect.y) +
                             ") is empty or not inside the image (" + std::to_string(im.width) + "x" +
                             std::to_string(im.height) + ")");
    if (dst.bands != im.bands || dst.format != im.format)
        throw GraphError(n.id, n.op_name, "", "read_into: the destination's bands and format must be the image's");
    // the execution grid's tiles that the window touches, cut to it, in
    // row-major order (parallel_reads takes them in order)
    const int tw = std::max(graph_->execution.tile_w, 1), th = std::max(graph_->execution.tile_h, 1);
    std::vector<Rect> tiles;
    for (int ty = dst.rect.y / th * th; ty < dst.rect.bottom(); ty += th)
        for (int tx = dst.rect.x / tw * tw; tx < dst.rect.right(); tx += tw)
            tiles.push_back(Rect{tx, ty, tw, th}.intersect(dst.rect));
    const int threads = options.threads > 0 ? options.threads : graph_->execution.threads;
    parallel_reads(*graph_, tiles.size(), threads, options.cancel, [&](Evaluator& ev, std::size_t i) {
        const Buffer b = ev.render(node_, tiles[i]);
        copy_pixels(b.view(), dst.sub(tiles[i]));
    });
}

Buffer Image::region(const Rect& rect, const RegionOptions& options) const {
    const ImageInfo& im = info();
    if (rect.empty() || !im.rect().contains(rect)) {
        read_into(Tile{rect, im.bands, im.format, nullptr, 0}, options);  // throws, naming the node
        return {};
    }
    Buffer b(nullptr, rect, im.bands, im.format);
    read_into(b.tile(), options);
    return b;
}

RunStats Image::save(const std::string& path, const Params& options, const RunOptions& run) const {
    Graph g(graph_->registry());
    g.execution = graph_->execution;
    Copier c{g, {}};
    const NodeId n = c.copy(*graph_, node_);
    Params p = options;
    p.set("path", path);
    g.add("save", {n}, p);
    return Evaluator(g).run_sinks(run);
}

Graph Image::standalone() const {
    Graph g(graph_->registry());
    g.execution = graph_->execution;
    Copier c{g, {}};
    c.copy(*graph_, node_);
    return g;
}

}  // namespace tessera
