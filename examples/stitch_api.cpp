// stitch_api: the example stitch with the typed C++ API (tessera/ops_api.hpp).
//
//   stitch_api POSITIONS CANVAS_W CANVAS_H OUT.tif [PIPELINE_OUT.json]
//
// POSITIONS: a positions CSV (file,x,y) or a Fiji TileConfiguration.txt,
// tile paths relative to its folder, later tiles on top. Every tile goes on
// a black canvas in one insert node. With a fifth argument it also writes
// the job as a JSON pipeline that `tessera run` turns into the same file.
#include <fstream>
#include <iostream>
#include <tessera/api.hpp>

int main(int argc, char** argv) try {
    if (argc < 5) return std::cerr << "usage: stitch_api POSITIONS CANVAS_W CANVAS_H OUT.tif [PIPELINE_OUT.json]\n", 2;
    using namespace tessera;
    std::vector<Image> tiles;
    std::vector<IntPair> at;
    for (const Placement& t : read_positions(argv[1])) {
        tiles.push_back(load(t.file));  // reads the header only
        at.push_back(placed_at(t.at));
    }
    const Image stitched = insert(black(std::stoll(argv[2]), std::stoll(argv[3]), {.bands = 3}), tiles, at);
    const op::SaveOptions tiff{.compression = op::SaveCompression::deflate, .tile = true};
    if (argc > 5) std::ofstream(argv[5]) << to_json(save_graph(stitched, argv[4], tiff));
    const RunStats s = save(stitched, argv[4], tiff);
    std::cout << "wrote " << argv[4] << ": " << s.tiles << " tiles in " << s.seconds << " s\n";
} catch (const std::exception& e) {
    std::cerr << "stitch_api: error: " << e.what() << "\n";
    return 1;
}
