// stitch_api: the example stitch built with the C++ API instead of JSON.
//
//   stitch_api POSITIONS.csv CANVAS_W CANVAS_H OUT.tif [PIPELINE_OUT.json]
//
// Reads `file,x,y` rows (paths relative to the CSV's folder; later rows on
// top), inserts every tile on a black canvas in one node, and saves. With a
// fifth argument it also writes the graph as a JSON pipeline that
// `tessera run` turns into the same file.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <tessera/tessera.hpp>

int main(int argc, char** argv) {
    if (argc < 5) {
        std::cerr << "usage: stitch_api POSITIONS.csv CANVAS_W CANVAS_H OUT.tif [PIPELINE_OUT.json]\n";
        return 2;
    }
    namespace fs = std::filesystem;
    using namespace tessera;
    try {
        fs::path csv = argv[1];
        std::ifstream in(csv);
        if (!in) throw IoError(csv.string(), "cannot open the positions file");
        std::string line;
        std::getline(in, line);  // header: file,x,y

        Graph g(standard_registry());
        std::vector<NodeId> inputs{g.add("black", {},
                                         {{"width", std::int64_t(std::stoi(argv[2]))},
                                          {"height", std::int64_t(std::stoi(argv[3]))},
                                          {"bands", std::int64_t(3)}},
                                         "canvas")};
        std::vector<IntPair> at;
        while (std::getline(in, line)) {
            std::stringstream ss(line);
            std::string file, x, y;
            std::getline(ss, file, ',');
            std::getline(ss, x, ',');
            std::getline(ss, y, ',');
            if (file.empty()) continue;
            // Files are read lazily: this reads the header only.
            inputs.push_back(g.add("load", {}, {{"path", (csv.parent_path() / file).lexically_normal().string()}}));
            at.push_back({std::stoll(x), std::stoll(y)});
        }
        NodeId mosaic = g.add("insert", inputs, {{"at", at}}, "mosaic");
        g.add("save", {mosaic},
              {{"path", std::string(argv[4])}, {"compression", std::string("deflate")}, {"tile", true}}, "save");

        if (argc > 5) std::ofstream(argv[5]) << to_json(g);
        RunStats s = Evaluator(g).run_sinks();
        std::cout << "wrote " << argv[4] << ": " << s.tiles << " tiles in " << s.seconds << " s, peak pixel memory "
                  << s.peak_pixel_bytes / 1024 << " KiB\n";
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "stitch_api: error: " << e.what() << "\n";
        return 1;
    }
}
