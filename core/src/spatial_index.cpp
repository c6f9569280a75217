#include "tessera/core/spatial_index.hpp"

#include <algorithm>
#include <cmath>

namespace tessera {

SpatialIndex::SpatialIndex(const Rect& bounds, const std::vector<Rect>& rects) : bounds_(bounds), rects_(rects) {
    // Cells about the size of a typical rect keep both the cells per rect and
    // the rects per cell small; the grid is capped at ~1M cells.
    std::vector<int> sizes;
    for (const Rect& r : rects)
        if (!r.empty()) sizes.push_back(std::max(r.w, r.h));
    int typical = 256;
    if (!sizes.empty()) {
        std::nth_element(sizes.begin(), sizes.begin() + sizes.size() / 2, sizes.end());
        typical = std::max(64, sizes[sizes.size() / 2]);
    }
    double min_cell = std::sqrt(double(std::max<std::int64_t>(bounds.area(), 1)) / 1e6);
    cell_ = std::max(typical, int(std::ceil(min_cell)));
    cols_ = std::max(1, (bounds.w + cell_ - 1) / cell_);
    rows_ = std::max(1, (bounds.h + cell_ - 1) / cell_);

    auto cells_of = [&](const Rect& r, auto&& fn) {
        Rect c = r.intersect(bounds_);
        if (c.empty()) return;
        int x0 = (c.x - bounds_.x) / cell_, x1 = (c.right() - 1 - bounds_.x) / cell_;
        int y0 = (c.y - bounds_.y) / cell_, y1 = (c.bottom() - 1 - bounds_.y) / cell_;
        for (int y = y0; y <= y1; ++y)
            for (int x = x0; x <= x1; ++x) fn(y * cols_ + x);
    };
    std::vector<std::uint32_t> count(std::size_t(cols_) * rows_ + 1, 0);
    for (const Rect& r : rects_) cells_of(r, [&](int c) { ++count[c + 1]; });
    for (std::size_t i = 1; i < count.size(); ++i) count[i] += count[i - 1];
    start_ = count;
    items_.resize(count.back());
    for (int i = 0; i < int(rects_.size()); ++i) cells_of(rects_[i], [&](int c) { items_[count[c]++] = i; });
}

void SpatialIndex::query(const Rect& r, std::vector<int>& out) const {
    out.clear();
    Rect c = r.intersect(bounds_);
    if (c.empty() || rects_.empty()) return;
    int x0 = (c.x - bounds_.x) / cell_, x1 = (c.right() - 1 - bounds_.x) / cell_;
    int y0 = (c.y - bounds_.y) / cell_, y1 = (c.bottom() - 1 - bounds_.y) / cell_;
    for (int y = y0; y <= y1; ++y)
        for (int x = x0; x <= x1; ++x)
            for (std::uint32_t k = start_[y * cols_ + x]; k < start_[y * cols_ + x + 1]; ++k)
                if (rects_[items_[k]].overlaps(r)) out.push_back(items_[k]);
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
}

}  // namespace tessera
