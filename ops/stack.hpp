// Images stacked on a base at integer positions, later ones on top: the
// geometry insert and mosaic share (mosaic with blend "none" is insert, and
// even a feathered mosaic is insert wherever its images do not overlap).
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "tessera/core/image_info.hpp"
#include "tessera/core/op.hpp"
#include "tessera/core/params.hpp"
#include "tessera/core/spatial_index.hpp"

namespace tessera {

class Stack {
public:
    Stack() = default;
    // Inputs are the base, then the images; `at` gives one [x, y] per image.
    // Checks counts, bands and formats, and the range of the positions
    // (ParamError naming "at" or "inputs" and the fix).
    Stack(const std::vector<IntPair>& at, std::span<const ImageInfo> in);
    // Same, each image's rect grown by grow[k] columns and rows on its
    // right and bottom (mosaic: the extra column of an image at a fraction
    // of a pixel).
    Stack(const std::vector<IntPair>& at, std::span<const ImageInfo> in, const std::vector<Point>& grow);

    const SpatialIndex& index() const { return index_; }
    // The placed images (output frame), index k is input k + 1.
    const std::vector<Rect>& rects() const { return index_.rects(); }
    // The bounding box of the part of image k that no later image covers
    // (empty when later images hide it all): insert never asks outside it.
    const Rect& visible(std::size_t k) const { return visible_[k]; }

    // insert's demand for r: placed needs only, later images on top, nothing
    // asked for that later images hide.
    void demand_insert(const Rect& r, Demand& need) const;
    // Same, with the images overlapping r already looked up (index().query).
    void demand_insert(const Rect& r, const std::vector<int>& hits, Demand& need) const;

    // Whether the images hits[from..], each shrunk by `inset` on every side,
    // together cover all of `part`.
    bool covered_by(const Rect& part, const std::vector<int>& hits, std::size_t from, int inset = 0) const;
    // Same with a rect of each image's own instead of its rect less an inset
    // (cores[k] for image k, indexed as rects()).
    bool covered_by(const Rect& part, const std::vector<int>& hits, std::size_t from,
                    const std::vector<Rect>& cores) const;
    // The bounding box of what the same cores (each image less `inset`, or
    // cores[k]) leave of `part`: empty exactly when covered_by; `part`
    // itself past 64 pieces, never a smaller box than the truth.
    Rect uncovered_box(const Rect& part, const std::vector<int>& hits, std::size_t from, int inset) const;
    Rect uncovered_box(const Rect& part, const std::vector<int>& hits, std::size_t from,
                       const std::vector<Rect>& cores) const;

private:
    void find_visible();
    // The bounding box of what images hits[from..] leave of part (empty
    // when they cover it all; part itself past 64 pieces).
    Rect uncovered_box(const Rect& part, const std::vector<int>& hits, std::size_t from) const;
    // left minus c, in place (next: scratch)
    static void subtract(std::vector<Rect>& left, const Rect& c, std::vector<Rect>& next);
    template <class CoreOf>
    bool covered(const Rect& part, const std::vector<int>& hits, std::size_t from, CoreOf core_of) const;
    template <class CoreOf>
    Rect uncovered(const Rect& part, const std::vector<int>& hits, std::size_t from, CoreOf core_of) const;
    SpatialIndex index_;
    std::vector<Rect> visible_;
};

}  // namespace tessera
