// thumbnail_api: a thumbnail and a window of it, with the typed C++ API.
//
//   thumbnail_api IN WIDTH OUT
//
// Shrinks IN (any format `tessera formats` reads) to WIDTH pixels wide, the
// height following the aspect ratio, writes it to OUT (its extension picks
// the format) and prints the mean of each band of the thumbnail's centre
// 32x32 window, read without writing anything (computed in parallel, only
// the tiles of IN that window needs).
#include <iostream>
#include <tessera/ops_api.hpp>

int main(int argc, char** argv) try {
    if (argc != 4) return std::cerr << "usage: thumbnail_api IN WIDTH OUT\n", 2;
    using namespace tessera;
    const Image thumb = cast(resize(load(argv[1]), {.width = std::stoll(argv[2])}), op::CastFormat::u8);
    const Rect centre = Rect{thumb.width() / 2 - 16, thumb.height() / 2 - 16, 32, 32}.intersect(thumb.info().rect());
    const Buffer px = thumb.region(centre);
    std::cout << thumb.width() << "x" << thumb.height() << " mean";
    for (int b = 0; b < thumb.bands(); ++b) {
        double sum = 0;
        for (int y = 0; y < centre.h; ++y)
            for (int x = 0; x < centre.w; ++x) sum += px.view().row<std::uint8_t>(centre.y + y)[x * thumb.bands() + b];
        std::cout << " " << sum / (double(centre.w) * centre.h);
    }
    std::cout << "\n";
    save(thumb, argv[3]);
} catch (const std::exception& e) {
    std::cerr << "thumbnail_api: error: " << e.what() << "\n";
    return 1;
}
