// Builds a small graph with the installed headers and libraries, runs it,
// and checks a pixel: exit 0 only if the installed package works.
#include <cstdio>
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
    return v == 200 ? 0 : 1;
}
