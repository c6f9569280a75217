// Level geometry and the banded tile order (pyramid_layout.hpp).
#include "pyramid_layout.hpp"

#include <algorithm>

namespace tessera::io {

std::vector<LevelGrid> pyramid_levels(int width, int height, int tile_w, int tile_h, Halving halving, int fit_w,
                                      int fit_h) {
    std::vector<LevelGrid> levels;
    for (int w = width, h = height;;) {
        levels.push_back(LevelGrid{w, h, (w + tile_w - 1) / tile_w, (h + tile_h - 1) / tile_h});
        if ((w <= fit_w && h <= fit_h) || (halving == Halving::down && (w < 2 || h < 2))) break;
        w = halving == Halving::down ? w / 2 : (w + 1) / 2;
        h = halving == Halving::down ? h / 2 : (h + 1) / 2;
    }
    return levels;
}

BandLayout::BandLayout(int tile_w, int band_width) {
    while (std::int64_t(band_) * 2 * tile_w <= band_width) band_ *= 2;
}

std::vector<std::uint32_t> BandLayout::order(int cols, int rows) const {
    constexpr int kLanes = 4;
    std::vector<std::uint32_t> order;
    order.reserve(std::size_t(cols) * rows);
    for (int b0 = 0; b0 < cols; b0 += band_) {
        const int n = std::min(band_, cols - b0);
        const int k = std::clamp(kLanes, 1, n);
        const int step = (n + k - 1) / k;  // lane j covers columns [j*step, (j+1)*step)
        for (int ty = 0; ty < rows; ++ty)
            for (int i = 0; i < step; ++i)
                for (int j = 0; j < k; ++j)
                    if (j * step + i < n) order.push_back(std::uint32_t(ty * cols + b0 + j * step + i));
    }
    return order;
}

int BandLayout::unit_rows(int cols, int rows, int ranks) const {
    const long bands = (cols + band_ - 1) / band_;
    int unit = band_;
    while (unit > 1 && bands * ((rows + unit - 1) / unit) < 8L * ranks) unit /= 2;
    return unit;
}

std::vector<std::size_t> BandLayout::share_starts(int cols, int rows, int ranks) const {
    const int unit = unit_rows(cols, rows, ranks);
    std::vector<std::size_t> starts;
    std::size_t pos = 0;
    for (int b0 = 0; b0 < cols; b0 += band_) {
        const int n = std::min(band_, cols - b0);
        for (int ty = 0; ty < rows; ty += unit) starts.push_back(pos + std::size_t(ty) * n);
        pos += std::size_t(n) * rows;
    }
    return starts;
}

}  // namespace tessera::io
