#include "tessera/graphs/pipeline.hpp"

#include <algorithm>
#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/depth_first_search.hpp>
#include <filesystem>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <optional>
#include <queue>
#include <sstream>
#include <unordered_map>

#include "build_cancel.hpp"
#include "tessera/core/error.hpp"

namespace tessera {

using json = nlohmann::json;

namespace {

const char* json_type(const json& j) {
    switch (j.type()) {
        case json::value_t::null: return "null";
        case json::value_t::boolean: return "boolean";
        case json::value_t::number_integer:
        case json::value_t::number_unsigned: return "integer";
        case json::value_t::number_float: return "number";
        case json::value_t::string: return "string";
        case json::value_t::array: return "array";
        case json::value_t::object: return "object";
        default: return "value";
    }
}

bool is_int(const json& j) { return j.is_number_integer(); }

// A JSON value as the ParamValue its spec asks for; throws the reason.
ParamValue to_param(const ParamSpec& spec, const json& j) {
    auto fail = [&]() -> ParamValue {
        throw std::string("expected ") + param_type_name(spec.type) + ", got " + json_type(j);
    };
    switch (spec.type) {
        case ParamType::boolean:
            if (j.is_boolean()) return j.get<bool>();
            return fail();
        case ParamType::integer:
            if (is_int(j)) return j.get<std::int64_t>();
            return fail();
        case ParamType::number:
            if (j.is_number()) return j.get<double>();
            return fail();
        case ParamType::string:
            if (j.is_string()) return j.get<std::string>();
            return fail();
        case ParamType::integers: {
            if (!j.is_array()) return fail();
            std::vector<std::int64_t> v;
            for (const auto& e : j) {
                if (!is_int(e)) return fail();
                v.push_back(e.get<std::int64_t>());
            }
            return v;
        }
        case ParamType::numbers: {
            if (j.is_number()) return std::vector<double>{j.get<double>()};
            if (!j.is_array()) return fail();
            std::vector<double> v;
            for (const auto& e : j) {
                if (!e.is_number()) return fail();
                v.push_back(e.get<double>());
            }
            return v;
        }
        case ParamType::strings: {
            // a lone string is a list of one, as a lone number is numbers
            if (j.is_string()) return std::vector<std::string>{j.get<std::string>()};
            if (!j.is_array()) return fail();
            std::vector<std::string> v;
            for (const auto& e : j) {
                if (!e.is_string()) return fail();
                v.push_back(e.get<std::string>());
            }
            return v;
        }
        case ParamType::points:
        case ParamType::coords: {
            // Pairs of numbers; all whole: points (an integer token as it
            // is, so no precision is lost past 2^53), else coords.
            if (!j.is_array()) return fail();
            std::vector<IntPair> v;
            std::vector<NumPair> c;
            v.reserve(j.size());
            c.reserve(j.size());
            bool whole = true;
            for (const auto& e : j) {
                if (!e.is_array() || e.size() != 2 || !e[0].is_number() || !e[1].is_number()) return fail();
                c.push_back({e[0].get<double>(), e[1].get<double>()});
                if (is_int(e[0]) && is_int(e[1])) {
                    v.push_back({e[0].get<std::int64_t>(), e[1].get<std::int64_t>()});
                } else if (auto w = whole_points(std::vector<NumPair>{c.back()})) {
                    v.push_back(w->front());
                } else if (spec.type == ParamType::points) {
                    throw "pair " + std::to_string(c.size() - 1) + " " + e.dump() +
                        " is not whole pixels, and this op places whole pixels only; round the positions, or use "
                        "mosaic, which resamples images to place them at fractions of a pixel";
                } else {
                    whole = false;
                }
            }
            if (whole) return v;
            return c;
        }
    }
    return fail();
}

json from_param(const ParamValue& v) {
    return std::visit(
        [](const auto& x) -> json {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<T, std::vector<IntPair>>) {
                json a = json::array();
                for (const auto& p : x) a.push_back({p[0], p[1]});
                return a;
            } else if constexpr (std::is_same_v<T, std::vector<NumPair>>) {
                // whole numbers as integers (10, not 10.0); the rest as the
                // shortest decimal that reads back as the same double
                auto num = [](double d) -> json {
                    if (auto w = whole_points(std::vector<NumPair>{NumPair{d, 0.0}})) return (*w)[0][0];
                    return d;
                };
                json a = json::array();
                for (const auto& p : x) a.push_back({num(p[0]), num(p[1])});
                return a;
            } else {
                return json(x);
            }
        },
        v);
}

// A setting's spec (execution_params).
const ParamSpec& execution_spec(const std::string& key) {
    for (const ParamSpec& p : execution_params())
        if (p.name == key) return p;
    throw Error("internal: no execution setting '" + key + "'");
}

// An integer setting, checked by its spec.
int int_setting(const json& j, const char* key) {
    if (!is_int(j))
        throw GraphError("", "", std::string("execution.") + key, std::string("expected integer, got ") + json_type(j));
    const std::string why = execution_spec(key).violation(ParamValue(j.get<std::int64_t>()));
    if (!why.empty()) throw GraphError("", "", std::string("execution.") + key, why);
    return int(j.get<std::int64_t>());
}

}  // namespace

const std::vector<ParamSpec>& execution_params() {
    static const std::vector<ParamSpec> specs = {
        {.name = "tile",
         .type = ParamType::integer,
         .doc = "tile width and height (one value, or [width, height])",
         .default_value = std::int64_t(256),
         .min = 16,
         .max = 8192},
        {.name = "threads",
         .type = ParamType::integer,
         .doc = "threads computing at once (0: every core; with 2 or more, a spare thread takes over from one waiting "
                "on a decoder)",
         .default_value = std::int64_t(0),
         .min = 0,
         .max = 1024},
        {.name = "memory_mb",
         .type = ParamType::integer,
         .doc = "budget for the tiles in flight (0: none)",
         .default_value = std::int64_t(0),
         .min = 0,
         .max = 1 << 30},
        {.name = "cache_mb",
         .type = ParamType::integer,
         .doc = "budget of the per-node tile caches",
         .default_value = std::int64_t(256),
         .min = 0,
         .max = 1 << 30},
        {.name = "on_error",
         .type = ParamType::string,
         .doc = "a file that cannot be read: fail, or fill with background",
         .default_value = std::string("fail"),
         .choices = {"fail", "background"}},
    };
    return specs;
}

namespace {

Execution parse_execution(const json& j) {
    Execution e;
    if (!j.is_object()) throw GraphError("", "", "execution", std::string("expected object, got ") + json_type(j));
    for (const auto& [key, v] : j.items()) {
        if (key == "tile") {
            if (is_int(v)) {
                e.tile_w = e.tile_h = int_setting(v, "tile");
            } else if (v.is_array() && v.size() == 2) {
                e.tile_w = int_setting(v[0], "tile");
                e.tile_h = int_setting(v[1], "tile");
            } else {
                throw GraphError("", "", "execution.tile", "expected [width, height] or one integer");
            }
        } else if (key == "threads") {
            e.threads = int_setting(v, "threads");
        } else if (key == "memory_mb") {
            e.memory_mb = std::size_t(int_setting(v, "memory_mb"));
        } else if (key == "cache_mb") {
            e.cache_mb = std::size_t(int_setting(v, "cache_mb"));
        } else if (key == "on_error") {
            if (v == "fail")
                e.on_error = Execution::OnError::fail;
            else if (v == "background")
                e.on_error = Execution::OnError::background;
            else
                throw GraphError("", "", "execution.on_error", "use \"fail\" or \"background\"");
        } else {
            throw GraphError("", "", "execution." + key,
                             "unknown setting; use tile, threads, memory_mb, cache_mb or on_error");
        }
    }
    return e;
}

struct RawNode {
    std::string id, op;
    std::vector<std::string> inputs;
    std::vector<std::size_t> input_index;
    const json* body;
};

// The ids of one cycle through the node `start` reached by a back edge.
struct CycleFinder : boost::default_dfs_visitor {
    std::vector<std::size_t>* cycle_end;
    template <class E, class G>
    void back_edge(E e, const G& g) {
        if (cycle_end->empty()) {
            cycle_end->push_back(boost::source(e, g));
            cycle_end->push_back(boost::target(e, g));
        }
    }
};

}  // namespace

namespace {

// A relative file path is relative to the pipeline's folder. GDAL's own
// names are left as they are: /vsi... paths are absolute anyway, and
// connection or subdataset strings (DRIVER:..., e.g.
// SENTINEL2_L1C:/data/MTD_MSIL1C.xml:10m:EPSG_32632) start with a driver
// prefix that is no folder.
std::string resolve_path(const std::string& value, const std::string& base_dir) {
    if (base_dir.empty() || value.empty()) return value;
    const auto colon = value.find(':');
    if (colon != std::string::npos && colon > 1 &&
        std::all_of(value.begin(), value.begin() + std::ptrdiff_t(colon),
                    [](unsigned char c) { return std::isalnum(c) || c == '_'; }))
        return value;
    std::filesystem::path p(value);
    return p.is_relative() ? (std::filesystem::path(base_dir) / p).lexically_normal().string() : value;
}

// The resolved value of a node's "path"-like parameter, if it has one.
std::optional<std::string> path_param(const RawNode& r, const OpSpec& spec, const std::string& base_dir) {
    for (const ParamSpec& ps : spec.params)
        if (ps.is_path && r.body->contains(ps.name) && (*r.body)[ps.name].is_string())
            return resolve_path((*r.body)[ps.name].get<std::string>(), base_dir);
    return std::nullopt;
}

// The errors of one pipeline file: GraphErrors whose message begins with
// the file's name.
struct Complaint {
    const std::string& source;
    GraphError operator()(const std::string& node, const std::string& op, const std::string& key,
                          const std::string& msg) const {
        return GraphError(node, op, key, source + ": " + msg);
    }
};

// The pipeline's text as nlohmann's parser reads it, a byte at a time,
// with the build's cancel flag checked every 64 KiB: a pipeline of
// hundreds of thousands of nodes takes seconds to parse, and SIGTERM must
// stop it within one (issue 16). Cancelled is no json::exception, so it
// leaves parse_json as it is.
class CancellableBytes {
public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = char;
    using difference_type = std::ptrdiff_t;
    using pointer = const char*;
    using reference = const char&;
    explicit CancellableBytes(const char* p = nullptr) : p_(p) {}
    reference operator*() const { return *p_; }
    CancellableBytes& operator++() {
        if ((reinterpret_cast<std::uintptr_t>(++p_) & 0xffff) == 0) throw_if_build_cancelled();
        return *this;
    }
    CancellableBytes operator++(int) {
        CancellableBytes old = *this;
        ++*this;
        return old;
    }
    bool operator==(const CancellableBytes& o) const { return p_ == o.p_; }

private:
    const char* p_;
};

// The JSON of a pipeline, or an Error naming the file and the byte.
json parse_json(std::string_view text, const std::string& source) {
    try {
        return json::parse(CancellableBytes(text.data()), CancellableBytes(text.data() + text.size()));
    } catch (const json::parse_error& e) {
        throw Error(source + ": malformed JSON at byte " + std::to_string(e.byte) + ": " +
                    std::string(e.what()).substr(std::string(e.what()).find(':') + 2));
    } catch (const json::exception& e) {
        // Not only syntax: a number past double's range (1e999) throws
        // out_of_range 406 while parsing (found by fuzz_pipeline; it escaped
        // as a non-tessera exception).
        std::string what = e.what();
        throw Error(source + ": malformed JSON: " + what.substr(what.find(']') + 2) + "; numbers must fit a double");
    }
}

// An object of version 1 with nodes, and nothing but version, execution
// and nodes.
void check_top_level(json& doc, const Complaint& err) {
    if (!doc.is_object()) throw err("", "", "", "a pipeline is a JSON object with version, execution and nodes");
    for (const auto& [key, v] : doc.items())
        if (key != "version" && key != "execution" && key != "nodes")
            throw err("", "", key, "unknown top-level key; use version, execution and nodes");
    if (!doc.contains("version") || !is_int(doc["version"]))
        throw err("", "", "version", "missing or not an integer; write \"version\": 1");
    if (doc["version"].get<std::int64_t>() != kPipelineVersion)
        throw err("", "", "version",
                  "version " + doc["version"].dump() + " is not supported; this build reads version 1");
    if (!doc.contains("nodes") || !doc["nodes"].is_array())
        throw err("", "", "nodes", "missing or not an array of node objects");
}

// 1. Every node's id, op and inputs, ids checked (unique, inputs known).
std::vector<RawNode> read_nodes(const json& nodes, const OpRegistry& registry, const Complaint& err) {
    std::vector<RawNode> raw;
    std::unordered_map<std::string, std::size_t> index;
    raw.reserve(nodes.size());
    for (std::size_t i = 0; i < nodes.size(); ++i) {
        if (i % 4096 == 4095) throw_if_build_cancelled();  // (Graph::add checks it as the nodes are built)
        const json& n = nodes[i];
        std::string where = "node #" + std::to_string(i);
        if (!n.is_object()) throw err(where, "", "", std::string("expected an object, got ") + json_type(n));
        if (!n.contains("id") || !n["id"].is_string() || n["id"].get<std::string>().empty())
            throw err(where, "", "id", "every node needs a non-empty string id");
        RawNode r;
        r.id = n["id"].get<std::string>();
        if (!n.contains("op") || !n["op"].is_string()) throw err(r.id, "", "op", "missing or not a string");
        r.op = n["op"].get<std::string>();
        if (!registry.find(r.op)) throw err(r.id, r.op, "op", "unknown op '" + r.op + "'; `tessera ops` lists the ops");
        if (n.contains("inputs")) {
            if (!n["inputs"].is_array()) throw err(r.id, r.op, "inputs", "expected an array of node ids");
            for (const auto& in : n["inputs"]) {
                if (!in.is_string()) throw err(r.id, r.op, "inputs", "expected an array of node ids (strings)");
                r.inputs.push_back(in.get<std::string>());
            }
        }
        r.body = &n;
        if (!index.emplace(r.id, i).second)
            throw err(r.id, r.op, "id", "the id is used by another node; ids must be unique");
        raw.push_back(std::move(r));
    }
    for (auto& r : raw)
        for (const auto& in : r.inputs) {
            auto it = index.find(in);
            if (it == index.end()) throw err(r.id, r.op, "inputs", "unknown input id '" + in + "'");
            r.input_index.push_back(it->second);
        }
    return raw;
}

// A source that reads what a sink of this pipeline writes (save to
// /vsimem/a.tif, then gdal_load /vsimem/a.tif) reads it after that sink
// has finished: the sink becomes its input, which such an op (one that
// takes an optional input) uses for the header and as the ordering.
void link_hand_overs(std::vector<RawNode>& raw, const OpRegistry& registry, const std::string& base_dir) {
    std::unordered_map<std::string, std::size_t> written;
    for (std::size_t i = 0; i < raw.size(); ++i)
        if (registry.find(raw[i].op)->sink)
            if (auto p = path_param(raw[i], *registry.find(raw[i].op), base_dir)) written.emplace(*p, i);
    // A sink fed by the source itself (read a.tif, process, save a.tif) is
    // not a hand-over (linking would make a cycle): it is not linked, and
    // the graph refuses it (an output may not replace its own input).
    auto feeds = [&](std::size_t from, std::size_t sink) {
        std::vector<std::size_t> stack{sink};
        std::vector<bool> seen(raw.size(), false);
        while (!stack.empty()) {
            std::size_t n = stack.back();
            stack.pop_back();
            if (n == from) return true;
            if (seen[n]) continue;
            seen[n] = true;
            for (std::size_t in : raw[n].input_index) stack.push_back(in);
        }
        return false;
    };
    for (std::size_t i = 0; i < raw.size(); ++i) {
        RawNode& r = raw[i];
        const OpSpec* spec = registry.find(r.op);
        if (spec->sink || !r.inputs.empty() || spec->max_inputs == 0) continue;
        if (auto p = path_param(r, *spec, base_dir)) {
            auto it = written.find(*p);
            if (it == written.end() || feeds(i, it->second)) continue;
            r.inputs.push_back(raw[it->second].id);
            r.input_index.push_back(it->second);
        }
    }
}

// 2. Cycles: a depth-first search over the declared edges; a back edge
// closes a cycle, reported by the ids along it.
void refuse_cycles(const std::vector<RawNode>& raw, const Complaint& err) {
    using Dag = boost::adjacency_list<boost::vecS, boost::vecS, boost::directedS>;
    Dag dag(raw.size());
    for (std::size_t i = 0; i < raw.size(); ++i)
        for (std::size_t in : raw[i].input_index) boost::add_edge(in, i, dag);
    std::vector<std::size_t> back;
    CycleFinder finder;
    finder.cycle_end = &back;
    boost::depth_first_search(dag, boost::visitor(finder));
    if (back.empty()) return;
    // back = {u, v}: v reaches u; walk from v to u over inputs reversed.
    std::size_t u = back[0], v = back[1];
    std::vector<std::size_t> prev(raw.size(), SIZE_MAX);
    std::queue<std::size_t> q;
    q.push(v);
    prev[v] = v;
    while (!q.empty() && prev[u] == SIZE_MAX) {
        std::size_t x = q.front();
        q.pop();
        for (auto [e, end] = boost::out_edges(x, dag); e != end; ++e) {
            std::size_t y = boost::target(*e, dag);
            if (prev[y] == SIZE_MAX) {
                prev[y] = x;
                q.push(y);
            }
        }
    }
    std::vector<std::string> path{raw[u].id};
    for (std::size_t x = u; x != v && prev[x] != SIZE_MAX; x = prev[x]) path.push_back(raw[prev[x]].id);
    std::string s;
    for (auto it = path.rbegin(); it != path.rend(); ++it) s += *it + " -> ";
    s += raw[v].id;
    throw err(raw[v].id, raw[v].op, "inputs", "the inputs form a cycle (" + s + "); a pipeline must be acyclic");
}

// A node's parameters from its JSON keys (paths resolved against base_dir),
// and its "cache" flag; unknown keys and wrong types name the key.
Params node_params(const RawNode& r, const OpSpec& spec, const std::string& base_dir, const Complaint& err,
                   bool& cache) {
    Params params;
    cache = false;
    for (const auto& [key, v] : r.body->items()) {
        if (key == "id" || key == "op" || key == "inputs") continue;
        if (key == "cache") {
            if (!v.is_boolean()) throw err(r.id, r.op, key, std::string("expected boolean, got ") + json_type(v));
            cache = v.get<bool>();
            continue;
        }
        // init-capture: clang 14 (the fuzz build) cannot capture a structured binding
        auto ps = std::find_if(spec.params.begin(), spec.params.end(),
                               [&key = key](const ParamSpec& p) { return p.name == key; });
        if (ps == spec.params.end()) {
            std::string names;
            for (const auto& p : spec.params) names += (names.empty() ? "" : ", ") + p.name;
            throw err(r.id, r.op, key,
                      "unknown key; " + r.op + " takes " + (names.empty() ? "no parameters" : names) +
                          " (and id, op, inputs, cache)");
        }
        try {
            ParamValue pv = to_param(*ps, v);
            if (ps->is_path) pv = resolve_path(std::get<std::string>(pv), base_dir);
            params.set(key, std::move(pv));
        } catch (const std::string& msg) {
            throw err(r.id, r.op, key, msg);
        }
    }
    return params;
}

// 3. Build in a stable topological order: file order wherever inputs
// allow it, so that a saved graph reads back with the same node ids.
void build_nodes(Graph& g, const std::vector<RawNode>& raw, const OpRegistry& registry, const std::string& base_dir,
                 const Complaint& err) {
    std::vector<std::size_t> pending(raw.size());
    std::vector<std::vector<std::size_t>> users(raw.size());
    for (std::size_t i = 0; i < raw.size(); ++i) {
        pending[i] = raw[i].input_index.size();
        for (std::size_t in : raw[i].input_index) users[in].push_back(i);
    }
    std::priority_queue<std::size_t, std::vector<std::size_t>, std::greater<>> ready;
    for (std::size_t i = 0; i < raw.size(); ++i)
        if (pending[i] == 0) ready.push(i);
    std::vector<NodeId> built(raw.size());
    while (!ready.empty()) {
        std::size_t i = ready.top();
        ready.pop();
        const RawNode& r = raw[i];
        bool cache = false;
        const Params params = node_params(r, *registry.find(r.op), base_dir, err, cache);
        std::vector<NodeId> ins;
        for (std::size_t in : r.input_index) ins.push_back(built[in]);
        try {
            built[i] = g.add(r.op, ins, params, r.id);
        } catch (const GraphError& e) {
            throw err(e.node(), e.op(), e.key(), e.message());
        }
        if (cache) g.set_cache(built[i], true);
        for (std::size_t u : users[i])
            if (--pending[u] == 0) ready.push(u);
    }
}

}  // namespace

Graph parse_pipeline(std::string_view text, const OpRegistry& registry, const std::string& source,
                     const std::string& base_dir) {
    json doc = parse_json(text, source);
    const Complaint err{source};
    check_top_level(doc, err);
    Graph g(registry);
    if (doc.contains("execution")) {
        try {
            g.execution = parse_execution(doc["execution"]);
        } catch (const GraphError& e) {
            throw err("", "", e.key(), e.message());
        }
    }
    std::vector<RawNode> raw = read_nodes(doc["nodes"], registry, err);
    link_hand_overs(raw, registry, base_dir);
    refuse_cycles(raw, err);
    build_nodes(g, raw, registry, base_dir, err);
    return g;
}

Graph load_pipeline(const std::string& path, const OpRegistry& registry) {
    refuse_special_file(path, "a pipeline file");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw IoError(path, "cannot open the pipeline file; check the path");
    std::stringstream ss;
    ss << in.rdbuf();
    auto dir = std::filesystem::path(path).parent_path();
    return parse_pipeline(ss.str(), registry, path, dir.empty() ? "." : dir.string());
}

std::string to_json(const Graph& g, int indent) {
    json doc;
    doc["version"] = kPipelineVersion;
    const Execution& e = g.execution;
    doc["execution"] = {{"tile", {e.tile_w, e.tile_h}},
                        {"threads", e.threads},
                        {"memory_mb", e.memory_mb},
                        {"cache_mb", e.cache_mb}};
    if (e.on_error == Execution::OnError::background) doc["execution"]["on_error"] = "background";
    json nodes = json::array();
    for (NodeId n = 0; n < g.size(); ++n) {
        const Node& nd = g.node(n);
        json j;
        j["id"] = nd.id;
        j["op"] = nd.op_name;
        if (!nd.inputs.empty()) {
            json ins = json::array();
            for (NodeId in : nd.inputs) ins.push_back(g.node(in).id);
            j["inputs"] = ins;
        }
        if (nd.cache) j["cache"] = true;
        for (const auto& [key, v] : nd.params.values()) j[key] = from_param(v);
        nodes.push_back(std::move(j));
    }
    doc["nodes"] = std::move(nodes);
    return doc.dump(indent) + "\n";
}

std::string ops_to_json(const OpRegistry& registry, int indent) {
    json ops = json::array();
    for (const OpSpec& s : registry.specs()) {
        json params = json::array();
        for (const ParamSpec& p : s.params) {
            json jp = {{"name", p.name}, {"type", param_type_name(p.type)}, {"required", p.required}, {"doc", p.doc}};
            if (!p.required) jp["default"] = p.default_text;
            if (p.is_path) jp["path"] = true;
            // the typed default, and what the graph accepts
            if (p.default_value) jp["default_value"] = from_param(*p.default_value);
            auto bound = [&](double b) {
                return p.type == ParamType::integer || p.type == ParamType::integers ? json(std::int64_t(b)) : json(b);
            };
            if (p.min) jp["min"] = bound(*p.min);
            if (p.max) jp["max"] = bound(*p.max);
            if (!p.choices.empty()) jp["choices"] = p.choices;
            params.push_back(jp);
        }
        json inputs = {{"min", s.min_inputs}};
        if (s.max_inputs >= 0) inputs["max"] = s.max_inputs;
        ops.push_back({{"name", s.name},
                       {"doc", s.doc},
                       {"kind", s.kind},
                       {"halo", s.halo},
                       {"inputs", inputs},
                       {"sink", s.sink},
                       {"params", params}});
    }
    return json({{"ops", ops}}).dump(indent) + "\n";
}

}  // namespace tessera
