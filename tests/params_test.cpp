// Declared parameters (core/params.hpp ParamSpec): ranges, choices and
// defaults are checked and filled by the graph before an op is built, shown
// by `tessera ops`, and the command line's options take them from the same
// specs.
#include <doctest/doctest.h>

#include <fstream>

#include "support.hpp"

using namespace tessera;
namespace fs = std::filesystem;

namespace {

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

Params canvas(std::int64_t w, std::int64_t h) { return {{"width", w}, {"height", h}}; }

// An op that keeps the parameters it was built from, to see what the graph
// hands a constructor.
Params g_seen;
class SeeOp final : public Op {
public:
    SeeOp(const Params& p, std::span<const ImageInfo>) {
        g_seen = p;
        info_.width = info_.height = 1;
    }
    void demand(const Rect&, Demand&) const override {}
    void compute(const Tile&, std::span<const Pulled>) const override {}
};

OpSpec see_spec(std::vector<ParamSpec> params) {
    return {"see", "records its parameters", 0, 0, std::move(params), false, &make_op<SeeOp>};
}

}  // namespace

TEST_CASE("params: an out-of-range value names node and op and key and the value and the range") {
    Graph g(standard_registry());
    std::string e = tt::error_of([&] { g.add("black", {}, canvas(0, 10), "c"); });
    CHECK(has(e, "node 'c' (op black), key 'width': 0 is out of range; use a value in [1, 10000000]"));
    NodeId c = g.add("black", {}, canvas(40, 30), "c");
    e = tt::error_of([&] { g.add("shrink", {c}, {{"hshrink", std::int64_t(2)}, {"vshrink", std::int64_t(-3)}}, "s"); });
    CHECK(has(e, "node 's' (op shrink), key 'vshrink': -3 is out of range; use a value in [1, 1000000]"));
    e = tt::error_of([&] {
        g.add("mosaic", {c, c}, {{"at", std::vector<IntPair>{{0, 0}}}, {"blend_width", std::int64_t(100001)}}, "m");
    });
    CHECK(has(e, "node 'm' (op mosaic), key 'blend_width': 100001 is out of range; use a value in [1, 100000]"));
    // each element of a list, with its position
    ParamSpec bands{.name = "bands", .type = ParamType::integers, .min = 1};
    CHECK(bands.violation(std::vector<std::int64_t>{2, 0}) == "value 1 (0) is out of range; use values of at least 1");
    CHECK(bands.violation(std::vector<std::int64_t>{1, 3}).empty());
    ParamSpec ratio{.name = "ratio", .type = ParamType::number, .min = 0, .max = 0.5};
    CHECK(ratio.violation(0.75) == "0.75 is out of range; use a value in [0, 0.5]");
    CHECK(ratio.violation(0.5).empty());  // inclusive
}

TEST_CASE("params: a value outside the choices names node and op and key and the value and the choices") {
    Graph g(standard_registry());
    NodeId b = g.add("black", {}, canvas(8, 8), "b");
    std::string e = tt::error_of([&] {
        g.add("embed", {b},
              {{"x", std::int64_t(0)},
               {"y", std::int64_t(0)},
               {"width", std::int64_t(9)},
               {"height", std::int64_t(9)},
               {"extend", std::string("wrap")}},
              "e");
    });
    CHECK(has(e, "node 'e' (op embed), key 'extend': unknown extend 'wrap'; use black, white, background, copy, "
                 "repeat or mirror"));
    e = tt::error_of([&] { g.add("merge", {b}, {{"method", std::string("mean")}}, "m"); });
    CHECK(has(e, "node 'm' (op merge), key 'method': unknown method 'mean'; use first, last, min, max, sum or count"));
    // the choices are checked before the op looks at its inputs (b has no georeference)
    CHECK_FALSE(has(e, "georeference"));
}

TEST_CASE("params: a pipeline file's bad value names the file and node and key and what is allowed") {
    tt::TempDir dir;
    const fs::path p = dir / "p.json";
    auto error_for = [&](const std::string& save_keys) {
        std::ofstream(p) << R"({"version": 1, "nodes": [{"id": "c", "op": "black", "width": 4, "height": 4},
            {"id": "out", "op": "save", "inputs": ["c"], "path": "o.tif", )" +
                                save_keys + "}]}";
        return tt::error_of([&] { load_pipeline(p.string(), standard_registry()); });
    };
    std::string e = error_for(R"("compression": "zip")");
    CHECK(has(e, p.string()));
    CHECK(has(e, "node 'out' (op save), key 'compression'"));
    CHECK(has(e, "unknown compression 'zip'; use none, deflate, lzw, jpeg, zstd, blosc or blosc-zstd"));
    e = error_for(R"("tile": true, "tile_width": 8192, "tile_height": 8208)");
    CHECK(has(e, "node 'out' (op save), key 'tile_height'"));
    CHECK(has(e, "8208 is out of range; use a value in [16, 8192]"));
    CHECK(error_for(R"("tile": true, "tile_width": 8192)") == "(no error)");
}

TEST_CASE("params: defaults are filled in for the op and the node keeps what was given") {
    OpRegistry r;
    r.add(see_spec(
        {{.name = "n", .type = ParamType::integer, .doc = "n", .default_value = std::int64_t(7), .min = 0, .max = 9},
         {.name = "mode",
          .type = ParamType::string,
          .doc = "mode",
          .default_value = std::string("fast"),
          .choices = {"fast", "slow"}},
         {.name = "scale", .type = ParamType::number, .doc = "scale", .default_value = 0.5},
         // an old-style spec: shown default, none filled in
         {"old", ParamType::integer, false, "whatever the op picks", "old"}}));
    const ParamSpec& n = r.find("see")->params[0];
    CHECK(n.default_text == "7");  // derived from the value
    CHECK(r.find("see")->params[2].default_text == "0.5");
    CHECK(r.find("see")->params[3].default_text == "whatever the op picks");

    Graph g(r);
    NodeId id = g.add("see", {}, {{"mode", std::string("slow")}}, "s");
    CHECK(g_seen.integer("n") == 7);
    CHECK(g_seen.string("mode") == "slow");
    CHECK(g_seen.number("scale") == 0.5);
    CHECK_FALSE(g_seen.has("old"));
    // the node (and so its JSON) holds only what was given
    CHECK(g.node(id).params == Params{{"mode", std::string("slow")}});
    CHECK_FALSE(has(to_json(g), "\"n\""));

    // in the standard ops: black's bands and format, save's quality
    Graph s(standard_registry());
    NodeId b = s.add("black", {}, canvas(5, 4));
    CHECK(s.node(b).op->info().bands == 1);
    CHECK(s.node(b).op->info().format == Format::u8);
    Params full = complete_params(*standard_registry().find("save"), {{"path", std::string("x.png")}});
    CHECK(full.integer("quality") == 75);
    CHECK(full.string("bigtiff") == "auto");
    CHECK_FALSE(full.has("tile_size"));  // a dz key: whether it was given matters
}

TEST_CASE("params: a spec whose default breaks its own range or type is refused at registration") {
    OpRegistry r;
    std::string e = tt::error_of([&] {
        r.add(see_spec({{.name = "n", .type = ParamType::integer, .default_value = std::int64_t(12), .max = 10}}));
    });
    CHECK(has(e, "op 'see', parameter 'n'"));
    CHECK(has(e, "12 is out of range"));
    e = tt::error_of([&] { r.add(see_spec({{.name = "n", .type = ParamType::integer, .default_value = 1.5}})); });
    CHECK(has(e, "default_value is a number but the parameter is declared integer"));
    e = tt::error_of([&] {
        r.add(
            see_spec({{.name = "m", .type = ParamType::string, .default_value = std::string("x"), .choices = {"a"}}}));
    });
    CHECK(has(e, "unknown m 'x'; use a"));
}

TEST_CASE("params: tessera ops and ops --json show ranges and choices") {
    std::string out;
    REQUIRE(tt::run_command(tt::tessera_binary() + " ops", &out) == 0);
    CHECK(has(out, "quality : integer = 75, in [1, 100]"));
    CHECK(has(out, "layout : string = dz, one of dz, google, iiif or iiif3"));
    CHECK(has(out, "width : integer, required, in [1, 10000000]"));
    REQUIRE(tt::run_command(tt::tessera_binary() + " ops --json 2>/dev/null", &out) == 0);
    CHECK(out == ops_to_json(standard_registry()));
    const std::string compact = ops_to_json(standard_registry(), -1);
    CHECK(has(compact, R"({"default":"75","default_value":75,"doc":"for jpeg, webp, dz tiles and tiff with jpeg )"
                       R"(compression","max":100,"min":1,"name":"quality","required":false,"type":"integer"})"));
    CHECK(has(compact, R"({"choices":["dz","google","iiif","iiif3"],"default":"dz",)"));
    CHECK(has(compact, R"("choices":["nearest","bilinear","cubic"],"default":"nearest","default_value":"nearest")"));
}

TEST_CASE("params: a CLI option rejects the value its parameter rejects in JSON with the same words") {
    tt::TempDir tmp;
    fs::copy(tt::source_dir() / "examples" / "stitch", tmp / "ex", fs::copy_options::recursive);
    const std::string csv = (tmp / "ex" / "positions.csv").string();
    auto stitch = [&](const std::string& out, const std::string& opts, std::string* log) {
        return tt::run_command(tt::tessera_binary() + " stitch " + csv + " --canvas 1000 700 -o " +
                                   (tmp / out).string() + " --emit-json " + opts,
                               log);
    };
    auto json_error =
        [&](const std::string& save_keys) {
            std::ofstream(tmp / "p.json")
                << R"({"version": 1, "nodes": [{"id": "c", "op": "black", "width": 4, "height": 4},
            {"id": "out", "op": "save", "inputs": ["c"], )" +
                       save_keys + "}]}";
            return tt::error_of([&] { load_pipeline((tmp / "p.json").string(), standard_registry()); });
        };
    std::string log;
    CHECK(stitch("a.tif", "--quality 0", &log) != 0);
    CHECK(has(log, "--quality: 0 is out of range; use a value in [1, 100]"));
    std::string e = json_error(R"("path": "a.jpg", "quality": 0)");
    CHECK(has(e, "key 'quality'"));
    CHECK(has(e, "0 is out of range; use a value in [1, 100]"));

    // --tile-size is a TIFF's tile_width or a .dzi's tile_size: 8 is too
    // small for the one and fine for the other, on both sides
    CHECK(stitch("a.tif", "--tile-size 8", &log) != 0);
    CHECK(has(log, "--tile-size: 8 is out of range; use a value in [16, 8192]"));
    CHECK(has(json_error(R"("path": "a.tif", "tile": true, "tile_width": 8)"),
              "8 is out of range; use a value in [16, 8192]"));
    CHECK(stitch("a.dzi", "--tile-size 8", &log) == 0);
    CHECK(has(log, "\"tile_size\": 8"));
    CHECK(json_error(R"("path": "a.dzi", "tile_size": 8)") == "(no error)");
    CHECK(stitch("a.dzi", "--tile-size 8193", &log) != 0);
    CHECK(has(log, "--tile-size: 8193 is out of range; use a value in [1, 8192]"));

    // a choice: merge's --resampling is merge's resampling
    CHECK(tt::run_command(tt::tessera_binary() + " merge " + csv + " -o " + (tmp / "m.tif").string() +
                              " --resampling lanczos",
                          &log) != 0);
    CHECK(has(log, "--resampling: unknown resampling 'lanczos'; use nearest, bilinear or cubic"));
}

TEST_CASE("params: a strings parameter takes a list or a lone string and reads back from JSON unchanged") {
    OpRegistry r;
    r.add(see_spec({{.name = "names",
                     .type = ParamType::strings,
                     .doc = "names",
                     .default_value = std::vector<std::string>{"x"},
                     .choices = {}},
                    {.name = "kinds", .type = ParamType::strings, .doc = "kinds", .choices = {"a", "b"}}}));
    CHECK(r.find("see")->params[0].default_text == "[\"x\"]");
    CHECK(std::string(param_type_name(ParamType::strings)) == "array of strings");
    Graph g(r);
    // the default; a lone string is a list of one (as a lone number is numbers)
    g.add("see", {}, {}, "d");
    CHECK(g_seen.strings("names") == std::vector<std::string>{"x"});
    NodeId one = g.add("see", {}, {{"names", std::string("a,b")}}, "one");
    CHECK(g_seen.strings("names") == std::vector<std::string>{"a,b"});
    CHECK(g.node(one).params == Params{{"names", std::vector<std::string>{"a,b"}}});
    // names with commas, quotes and non-ASCII survive the JSON round trip
    const std::vector<std::string> names{"DAPI", "a, b", "q\"uote", "µm"};
    g.add("see", {}, {{"names", names}, {"kinds", std::vector<std::string>{"b", "a"}}}, "many");
    CHECK(g_seen.strings("names") == names);
    const std::string json = to_json(g);
    CHECK(has(json, R"("a, b")"));
    tt::TempDir dir;
    std::ofstream(dir / "p.json") << json;
    Graph back = load_pipeline((dir / "p.json").string(), r);
    CHECK(to_json(back) == json);
    CHECK(back.node(back.find("many")).params.strings("names") == names);
    // refusals: an element that is no string, a value outside the choices
    auto error_for = [&](const std::string& value) {
        std::ofstream(dir / "e.json") << R"({"version": 1, "nodes": [{"id": "s", "op": "see", "names": )" + value +
                                             "}]}";
        return tt::error_of([&] { load_pipeline((dir / "e.json").string(), r); });
    };
    std::string e = error_for(R"(["a", 1])");
    CHECK(has(e, "node 's' (op see), key 'names'"));
    CHECK(has(e, "expected array of strings, got array"));
    CHECK(has(error_for("3"), "expected array of strings, got integer"));
    CHECK(error_for(R"([])") == "(no error)");
    CHECK(has(tt::error_of([&] { g.add("see", {}, {{"kinds", std::vector<std::string>{"a", "c"}}}); }),
              "key 'kinds': value 1: unknown kinds 'c'; use a or b"));
    CHECK(has(tt::error_of([&] { g.add("see", {}, {{"names", std::int64_t(3)}}); }),
              "expected array of strings, got integer"));
    // save's channel_names is one, and `tessera ops` says so
    std::string out;
    REQUIRE(tt::run_command(tt::tessera_binary() + " ops", &out) == 0);
    CHECK(has(out, "channel_names : array of strings"));
}
