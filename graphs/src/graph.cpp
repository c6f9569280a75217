#include "tessera/graphs/graph.hpp"

#include <boost/graph/adjacency_list.hpp>
#include <filesystem>
#include <optional>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "build_cancel.hpp"
#include "tessera/core/error.hpp"
#include "tessera/core/file_identity.hpp"

namespace tessera {

using BoostDag = boost::adjacency_list<boost::vecS, boost::vecS, boost::bidirectionalS>;

struct Graph::Impl {
    const OpRegistry* registry;
    BoostDag dag;  // vertex i is nodes[i]; an edge runs from an input to its consumer
    std::vector<Node> nodes;
    std::unordered_map<std::string, NodeId> by_id;
    std::unordered_map<std::string, std::size_t> auto_ids;
    std::vector<NodeId> sink_ids;  // the sinks, in order: a new source is checked against these alone
};

Graph::Graph(const OpRegistry& registry) : impl_(std::make_unique<Impl>()) { impl_->registry = &registry; }
Graph::~Graph() = default;
Graph::Graph(Graph&&) noexcept = default;
Graph& Graph::operator=(Graph&&) noexcept = default;

namespace {

// The value in the canonical type for its spec (integers where numbers are
// declared become doubles, a lone number or string becomes a one-element list), so
// that a graph saved to JSON and read back has equal params. Throws a
// message when the type cannot be taken.
ParamValue canonical(const ParamSpec& spec, const ParamValue& v) {
    ParamType t = param_type_of(v);
    // Whole coords are points (as JSON reads them back), where points or
    // coords are declared; fractional ones where points are is the refusal
    // below.
    if (auto c = std::get_if<std::vector<NumPair>>(&v))
        if (spec.type == ParamType::points || spec.type == ParamType::coords)
            if (auto w = whole_points(*c)) return *w;
    if (t == spec.type) return v;
    switch (spec.type) {
        case ParamType::coords:
            if (t == ParamType::points) return v;
            break;
        case ParamType::points:
            if (t == ParamType::coords)
                throw std::string("expected ") + param_type_name(spec.type) +
                    ", got fractional positions; this op places whole pixels only: round them, or use mosaic, "
                    "which resamples images to place them at fractions of a pixel";
            break;
        case ParamType::number:
            if (auto i = std::get_if<std::int64_t>(&v)) return double(*i);
            break;
        case ParamType::numbers:
            if (auto i = std::get_if<std::int64_t>(&v)) return std::vector<double>{double(*i)};
            if (auto d = std::get_if<double>(&v)) return std::vector<double>{*d};
            if (auto l = std::get_if<std::vector<std::int64_t>>(&v)) return std::vector<double>(l->begin(), l->end());
            break;
        case ParamType::strings:
            if (auto s = std::get_if<std::string>(&v)) return std::vector<std::string>{*s};
            break;
        default: break;
    }
    throw std::string("expected ") + param_type_name(spec.type) + ", got " + param_type_name(t);
}

std::string param_list(const OpSpec& spec) {
    std::string s;
    for (const auto& p : spec.params) s += (s.empty() ? "" : ", ") + p.name;
    return s.empty() ? "no parameters" : s;
}

// Whether writing `out` would replace or remove the input file `in`: the
// same file (device and inode, so a symlink or a hard link to it counts
// too), or, for a folder a sink fills, a file inside it (its real path, so
// reached through a symlink too).
bool clobbers(const Op::FileUse& out, const std::string& in) {
    namespace fs = std::filesystem;
    const auto target = file_identity(out.path);
    if (!target) return false;
    if (!out.folder) return file_identity(in) == target;
    std::error_code ec;
    fs::path p = fs::weakly_canonical(fs::absolute(in, ec), ec);
    if (ec) return false;
    for (fs::path dir = p.parent_path(); !dir.empty(); dir = dir.parent_path()) {
        if (file_identity(dir.string()) == target) return true;
        if (dir == dir.root_path()) break;
    }
    return false;
}

}  // namespace

// An output that is one of the run's inputs is refused as the graph is
// built, before anything is read or written: the save would destroy the
// file the run reads (issue 16). Checked both ways, whichever is added
// last: a sink against every source already in the graph, a source
// against every sink that is not upstream of it (a gdal_load of a file an
// earlier save writes reads it after that save and declares no file).
// (A source is checked against the sinks' list, not every node: with tens
// of thousands of loads, a scan of the whole graph per load made building
// quadratic, 12 s of CPU at 40 000 loads.)
static void check_no_clobber(const std::vector<Node>& nodes, const std::vector<NodeId>& sinks, const Node& added) {
    const std::vector<Op::FileUse> writes = added.op->files_written();
    const std::vector<std::string> reads = added.op->files_read();
    if (writes.empty() && reads.empty()) return;
    auto refuse = [](const Node& sink, const Op::FileUse& out, const Node& source, const std::string& in) {
        throw GraphError(sink.id, sink.op_name, "path",
                         "the output '" + out.path + "'" +
                             (out.folder ? " is a folder that the save replaces and that holds"
                                         : " is the same file as") +
                             " the input '" + in + "' of node '" + source.id + "' (op " + source.op_name +
                             "; compared by device and inode, so links count); writing it would destroy that input: "
                             "write the output elsewhere");
    };
    if (!writes.empty())
        for (const Node& n : nodes) {
            if (&n == &added) continue;
            for (const Op::FileUse& out : writes)
                for (const std::string& in : n.op->files_read())
                    if (clobbers(out, in)) refuse(added, out, n, in);
        }
    if (reads.empty() || sinks.empty()) return;
    std::unordered_set<const Node*> upstream;
    std::vector<NodeId> stack(added.inputs);
    while (!stack.empty()) {
        const Node* n = &nodes[stack.back()];
        stack.pop_back();
        if (upstream.insert(n).second) stack.insert(stack.end(), n->inputs.begin(), n->inputs.end());
    }
    for (NodeId id : sinks) {
        const Node& n = nodes[id];
        if (upstream.count(&n)) continue;
        for (const Op::FileUse& out : n.op->files_written())
            for (const std::string& in : reads)
                if (clobbers(out, in)) refuse(n, out, added, in);
    }
}

namespace {
std::atomic<const std::atomic<bool>*> g_build_cancel{nullptr};
}  // namespace

void set_build_cancel(const std::atomic<bool>* flag) { g_build_cancel.store(flag); }

void throw_if_build_cancelled() {
    if (const std::atomic<bool>* c = g_build_cancel.load(std::memory_order_relaxed); c && c->load()) throw Cancelled();
}

NodeId Graph::add(const std::string& op, const std::vector<NodeId>& inputs, const Params& params,
                  const std::string& id_in) {
    throw_if_build_cancelled();
    Impl& m = *impl_;
    std::string id = id_in;
    if (id.empty()) {
        do id = op + std::to_string(m.auto_ids[op]++);
        while (m.by_id.count(id));
    }
    const OpSpec* spec = m.registry->find(op);
    if (!spec) throw GraphError(id, "", "op", "unknown op '" + op + "'; `tessera ops` lists the ops");
    if (m.by_id.count(id)) throw GraphError(id, op, "id", "the id is used by another node; ids must be unique");

    int n = int(inputs.size());
    if (n < spec->min_inputs || (spec->max_inputs >= 0 && n > spec->max_inputs)) {
        std::string want = spec->max_inputs < 0 ? "at least " + std::to_string(spec->min_inputs)
                           : spec->min_inputs == spec->max_inputs
                               ? std::to_string(spec->min_inputs)
                               : std::to_string(spec->min_inputs) + " to " + std::to_string(spec->max_inputs);
        throw GraphError(id, op, "inputs", "takes " + want + " input(s), got " + std::to_string(n));
    }
    std::vector<ImageInfo> infos;
    infos.reserve(inputs.size());
    for (NodeId in : inputs) {
        if (in >= m.nodes.size()) throw GraphError(id, op, "inputs", "refers to a node that does not exist");
        if (m.nodes[in].spec->sink && !spec->inputs_may_be_sinks)
            throw GraphError(id, op, "inputs",
                             "input '" + m.nodes[in].id + "' is a sink (" + m.nodes[in].op_name +
                                 ") and has no output to read");
        infos.push_back(m.nodes[in].op->info());
    }

    // Check keys and types against the spec before the op sees them.
    Params canon;
    for (const auto& [key, value] : params.values()) {
        // init-capture: clang 14 (the fuzz build) cannot capture a structured binding
        auto it = std::find_if(spec->params.begin(), spec->params.end(),
                               [&key = key](const ParamSpec& p) { return p.name == key; });
        if (it == spec->params.end())
            throw GraphError(id, op, key, "unknown parameter; " + op + " takes " + param_list(*spec));
        try {
            canon.set(key, canonical(*it, value));
        } catch (const std::string& msg) {
            throw GraphError(id, op, key, msg);
        }
    }
    for (const auto& p : spec->params)
        if (p.required && !canon.has(p.name))
            throw GraphError(id, op, p.name, "required parameter is missing (" + p.doc + ")");

    std::unique_ptr<Op> built;
    try {
        // ranges, choices and defaults are the spec's; the node keeps the
        // parameters as given, so the graph saves to the same JSON
        built = spec->create(complete_params(*spec, canon), infos);
    } catch (const ParamError& e) {
        throw GraphError(id, op, e.key(), e.what());
    } catch (const GraphError&) {
        throw;
    } catch (const Error& e) {
        throw GraphError(id, op, "", e.what());
    }

    std::shared_ptr<const Op> made = std::move(built);
    check_no_clobber(m.nodes, m.sink_ids, Node{id, op, inputs, {}, false, spec, made});
    NodeId nid = boost::add_vertex(m.dag);
    for (NodeId in : inputs) boost::add_edge(in, nid, m.dag);
    m.nodes.push_back(Node{id, op, inputs, std::move(canon), false, spec, std::move(made)});
    m.by_id.emplace(id, nid);
    if (spec->sink) m.sink_ids.push_back(nid);
    return nid;
}

std::size_t Graph::size() const { return impl_->nodes.size(); }
const Node& Graph::node(NodeId n) const { return impl_->nodes.at(n); }
const OpRegistry& Graph::registry() const { return *impl_->registry; }

NodeId Graph::find(std::string_view id) const {
    auto it = impl_->by_id.find(std::string(id));
    if (it == impl_->by_id.end()) throw GraphError(std::string(id), "", "", "no node has this id");
    return it->second;
}
bool Graph::contains(std::string_view id) const { return impl_->by_id.count(std::string(id)) != 0; }
void Graph::set_cache(NodeId n, bool on) { impl_->nodes.at(n).cache = on; }

std::size_t Graph::consumers(NodeId n) const { return boost::out_degree(n, impl_->dag); }

std::vector<NodeId> Graph::sinks() const { return impl_->sink_ids; }

namespace {
std::string dot_escape(const std::string& s) {
    std::string o;
    for (char c : s) {
        if (c == '"' || c == '\\') o += '\\';
        o += c;
    }
    return o;
}
}  // namespace

std::string Graph::to_dot(std::size_t collapse) const {
    const Impl& m = *impl_;
    std::ostringstream os;
    os << "digraph tessera {\n  rankdir=LR;\n  node [shape=box, fontname=\"Helvetica\"];\n";
    // A source node read only by one consumer that has more than `collapse`
    // such inputs is drawn as part of a summary node.
    std::vector<bool> hidden(m.nodes.size(), false);
    std::vector<std::size_t> folded(m.nodes.size(), 0);
    for (NodeId n = 0; n < m.nodes.size(); ++n) {
        const auto& ins = m.nodes[n].inputs;
        std::vector<NodeId> leaves;
        for (NodeId in : ins)
            if (m.nodes[in].inputs.empty() && consumers(in) == 1) leaves.push_back(in);
        if (collapse > 0 && leaves.size() > collapse) {
            for (std::size_t k = 2; k + 1 < leaves.size(); ++k) hidden[leaves[k]] = true;
            folded[n] = leaves.size() - 3;
        }
    }
    for (NodeId n = 0; n < m.nodes.size(); ++n) {
        if (hidden[n]) continue;
        const Node& nd = m.nodes[n];
        const ImageInfo& i = nd.op->info();
        os << "  n" << n << " [label=\"" << dot_escape(nd.id) << "\\n"
           << nd.op_name << "\\n"
           << i.width << "x" << i.height << "x" << i.bands << " " << format_name(i.format) << "\"";
        if (nd.spec->sink) os << ", shape=doubleoctagon";
        os << "];\n";
    }
    for (NodeId n = 0; n < m.nodes.size(); ++n) {
        if (folded[n]) {
            os << "  f" << n << " [label=\"... " << folded[n] << " more inputs\", shape=box3d];\n";
            os << "  f" << n << " -> n" << n << ";\n";
        }
        for (NodeId in : m.nodes[n].inputs)
            if (!hidden[in]) os << "  n" << in << " -> n" << n << ";\n";
        // the statistics pre-pass (Op::statistics): the input is read
        // whole first, drawn as a dashed edge of its own
        for (const StatisticRequest& rq : m.nodes[n].op->statistics()) {
            const NodeId in = m.nodes[n].inputs[std::size_t(rq.input)];
            if (!hidden[in])
                os << "  n" << in << " -> n" << n
                   << " [style=dashed, color=blue, label=\"pre-pass: " << (rq.histogram ? "histogram" : "min/max/mean")
                   << "\"];\n";
        }
    }
    os << "}\n";
    return os.str();
}

}  // namespace tessera
