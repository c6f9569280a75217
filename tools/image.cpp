// tessera::Image (tessera/image.hpp): a graph node as a value, the memory
// source, and windows computed on parallel workers.
#include "tessera/image.hpp"

#include <cstring>
#include <map>
#include <mutex>

#include "tessera/core/error.hpp"
#include "tessera/tessera.hpp"

namespace tessera {

namespace detail {
// The graph an Image's node lives in, shared by the Images built on it.
struct ImageStore {
    std::mutex mu;
    std::shared_ptr<const Graph> graph;  // never replaced: only appended to
    // `graph`, when this store made it and may append to it (null for a
    // graph given by the caller, Image(graph, node), which may be read by
    // anyone at any time)
    Graph* appendable = nullptr;
    // graph() or shared_graph() handed it out: it must not change again
    bool exposed = false;
    int readers = 0;  // Pins held
    // The number the next node of each op added in place is named with:
    // counted on success only (Graph::add's own count goes up on failure
    // too), so that a refused apply leaves the next one's id as a fresh
    // graph would name it.
    std::map<std::string, std::size_t> next_id;

    static std::shared_ptr<ImageStore> make(const OpRegistry& registry, const Execution& execution) {
        auto s = std::make_shared<ImageStore>();
        auto g = std::make_shared<Graph>(registry);
        g->execution = execution;
        s->appendable = g.get();
        s->graph = std::move(g);
        return s;
    }
};
}  // namespace detail

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

// An Image's hold on its store's graph while it reads it (a window, the
// ancestors a save or standalone copies): apply() appends in place only
// while no one holds one. Taken and given back under the store's mutex, so
// the reads happen before any later append.
struct Pin {
    detail::ImageStore& store;
    const Graph* graph;
    explicit Pin(detail::ImageStore& s);
    ~Pin();
    Pin(const Pin&) = delete;
    Pin& operator=(const Pin&) = delete;
};

}  // namespace

Pin::Pin(detail::ImageStore& s) : store(s) {
    std::lock_guard lock(store.mu);
    ++store.readers;
    graph = store.graph.get();
}
Pin::~Pin() {
    std::lock_guard lock(store.mu);
    --store.readers;
}

const OpRegistry& image_registry() {
    static const OpRegistry registry = [] {
        OpRegistry r;
        for (const OpSpec& s : standard_registry().specs()) r.add(s);
        r.add(memory_op_spec());
        return r;
    }();
    return registry;
}

Image::Image(std::shared_ptr<const Graph> graph, NodeId node) : node_(node) {
    if (!graph || node_ >= graph->size()) throw Error("Image: the node is not in the graph");
    const Node& n = graph->node(node_);
    if (n.spec->sink)
        throw GraphError(n.id, n.op_name, "", "a sink has no pixels to read; take the image of its input");
    op_ = n.op;
    store_ = std::make_shared<detail::ImageStore>();
    store_->graph = std::move(graph);  // the caller's: read only
}

// A node of a store's graph just added (under the store's mutex) or of a
// store no other thread sees yet.
Image::Image(std::shared_ptr<detail::ImageStore> store, NodeId node)
    : store_(std::move(store)), node_(node), op_(store_->graph->node(node).op) {}

Image Image::apply(const std::string& op, const std::vector<Image>& inputs, const Params& params,
                   const OpRegistry& registry) {
    // A sink is refused before anything is added: a save node left in a
    // shared graph would refuse later loads of its path there.
    if (const OpSpec* spec = registry.find(op); spec && spec->sink)
        throw GraphError("", op, "",
                         "a sink has no pixels to read; write an image with Image::save (or tessera::" + op + ")");
    // The graphs the inputs are read from, each pinned once.
    std::map<const detail::ImageStore*, std::unique_ptr<Pin>> pins;
    auto pinned = [&](const Image& in) -> const Graph& {
        auto& p = pins[in.store_.get()];
        if (!p) p = std::make_unique<Pin>(*in.store_);
        return *p->graph;
    };
    if (!inputs.empty()) {
        // Appended to the first input's graph when it may be (every input
        // of that graph is taken as it is, the others' ancestors copied in).
        const std::shared_ptr<detail::ImageStore>& target = inputs.front().store_;
        for (const Image& in : inputs)
            if (in.store_ != target) pinned(in);
        std::lock_guard lock(target->mu);
        if (target->appendable && !target->exposed && target->readers == 0 &&
            &target->appendable->registry() == &registry) {
            Graph& g = *target->appendable;
            Copier c{g, {}};
            std::vector<NodeId> ins;
            ins.reserve(inputs.size());
            for (const Image& in : inputs)
                ins.push_back(in.store_ == target ? in.node_ : c.copy(*pins.at(in.store_.get())->graph, in.node_));
            std::size_t k = target->next_id[op];
            std::string id;
            do id = op + std::to_string(k++);
            while (g.contains(id));
            const NodeId n = g.add(op, ins, params, id);
            target->next_id[op] = k;
            return Image(target, n);
        }
    }
    // A new graph of the inputs' ancestors, with the first input's execution.
    auto store = detail::ImageStore::make(registry, inputs.empty() ? Execution{} : pinned(inputs.front()).execution);
    Copier c{*store->appendable, {}};
    std::vector<NodeId> ins;
    ins.reserve(inputs.size());
    for (const Image& in : inputs) ins.push_back(c.copy(pinned(in), in.node_));
    const NodeId n = store->appendable->add(op, ins, params);
    return Image(std::move(store), n);
}

const Graph& Image::graph() const {
    std::lock_guard lock(store_->mu);
    store_->exposed = true;
    return *store_->graph;
}

std::shared_ptr<const Graph> Image::shared_graph() const {
    std::lock_guard lock(store_->mu);
    store_->exposed = true;
    return store_->graph;
}

std::string Image::id() const {
    std::lock_guard lock(store_->mu);
    return store_->graph->node(node_).id;
}

std::string Image::op_name() const {
    std::lock_guard lock(store_->mu);
    return store_->graph->node(node_).op_name;
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
    auto store = detail::ImageStore::make(image_registry(), Execution{});
    const NodeId n = store->appendable->add("memory", {}, {{"handle", handle}});
    // the node holds the block now; `block` going out of scope leaves it the owner
    return Image(std::move(store), n);
}

void Image::read_into(const Tile& dst, const RegionOptions& options) const {
    const Pin pin(*store_);
    const Graph& graph = *pin.graph;
    const Node& n = graph.node(node_);
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
    const int tw = std::max(graph.execution.tile_w, 1), th = std::max(graph.execution.tile_h, 1);
    std::vector<Rect> tiles;
    for (int ty = dst.rect.y / th * th; ty < dst.rect.bottom(); ty += th)
        for (int tx = dst.rect.x / tw * tw; tx < dst.rect.right(); tx += tw)
            tiles.push_back(Rect{tx, ty, tw, th}.intersect(dst.rect));
    const int threads = options.threads > 0 ? options.threads : graph.execution.threads;
    parallel_reads(graph, tiles.size(), threads, options.cancel, [&](Evaluator& ev, std::size_t i) {
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
    Params p = options;
    p.set("path", path);
    return run_sink("save", {*this}, p, run);
}

RunStats Image::run_sink(const std::string& op, const std::vector<Image>& inputs, const Params& params,
                         const RunOptions& run, const OpRegistry& registry) {
    Graph g = sink_graph(op, inputs, params, registry);
    return Evaluator(g).run_sinks(run);
}

Graph Image::sink_graph(const std::string& op, const std::vector<Image>& inputs, const Params& params,
                        const OpRegistry& registry) {
    Graph g(registry);
    std::vector<NodeId> ins;
    {
        std::vector<std::unique_ptr<Pin>> pins;
        Copier c{g, {}};
        for (const Image& in : inputs) {
            pins.push_back(std::make_unique<Pin>(*in.store_));
            if (pins.size() == 1) g.execution = pins.front()->graph->execution;
            ins.push_back(c.copy(*pins.back()->graph, in.node_));
        }
    }
    const NodeId n = g.add(op, ins, params);
    if (!g.node(n).spec->sink)
        throw GraphError(g.node(n).id, op, "", "not a sink: build it with Image::apply and save that");
    return g;
}

Graph Image::standalone() const {
    const Pin pin(*store_);
    Graph g(pin.graph->registry());
    g.execution = pin.graph->execution;
    Copier c{g, {}};
    c.copy(*pin.graph, node_);
    return g;
}

}  // namespace tessera
