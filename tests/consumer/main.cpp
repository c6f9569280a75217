// Builds a small graph with the installed headers and libraries, runs it,
// and checks a pixel; then the same with the typed builders of the
// installed, generated tessera/ops_api.hpp: exit 0 only if both work.
#include <cstdio>
#include <tessera/api.hpp>
#include <tessera/tessera.hpp>

int main(int argc, char** argv) {
    if (argc < 2) return 2;
    using namespace tessera;
    Graph g(standard_registry());
    auto canvas = g.add("black", {}, {{"width", std::int64_t(64)}, {"height", std::int64_t(48)}, {"value", 7.0}});
    auto spot = g.add("black", {}, {{"width", std::int64_t(8)}, {"height", std::int64_t(8)}, {"value", 200.0}});
    auto ins = g.add("insert", {canvas, spot}, {{"at", std::vector<IntPair>{{10, 20}}}});
    g.add("save", {ins}, {{"path", std::string(argv[1])}});
    Evaluator(g).run_sinks();
    Buffer b = Evaluator(g).render(ins, {12, 22, 1, 1});
    int v = int(*reinterpret_cast<const unsigned char*>(b.view().data));
    std::printf("pixel (12, 22) = %d\n", v);
    const Image typed = insert(black(64, 48, {.value = {7.0}}), {black(8, 8, {.value = {200.0}})}, {IntPair{10, 20}});
    const Buffer t = typed.region({12, 22, 1, 1});
    const int tv = int(*reinterpret_cast<const unsigned char*>(t.view().data));
    std::printf("typed pixel (12, 22) = %d\n", tv);
    return v == 200 && tv == 200 ? 0 : 1;
}
