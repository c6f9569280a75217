// A uniform-grid index of rectangles, for ops with thousands of inputs: a
// query returns only the rectangles that overlap it, in insertion order
// (later inputs are drawn on top, so order matters to callers).
#pragma once

#include <cstdint>
#include <vector>

#include "tessera/core/rect.hpp"

namespace tessera {

class SpatialIndex {
public:
    SpatialIndex() = default;
    // `bounds` is the area queries will ask about; rects outside it are kept
    // only for their part inside. Cell size adapts to the typical rect size.
    SpatialIndex(const Rect& bounds, const std::vector<Rect>& rects);

    // Indices (into the constructor's rects) of those overlapping r, ascending.
    void query(const Rect& r, std::vector<int>& out) const;
    const std::vector<Rect>& rects() const { return rects_; }

private:
    Rect bounds_;
    int cell_ = 1;
    int cols_ = 0, rows_ = 0;
    std::vector<Rect> rects_;
    std::vector<std::uint32_t> start_;  // CSR: cell c holds items_[start_[c] .. start_[c+1])
    std::vector<int> items_;
};

}  // namespace tessera
