// insert: a base image with N images drawn over it at given positions, later
// ones on top (libvips insert with expand=false, for N inputs in one node).
//
// Inputs: base, then the N images; "at" gives one [x, y] per image, the
// position of its top-left pixel on the base. The output is the base's size;
// parts of images outside it are clipped. A spatial index over the placed
// images means a tile demands only the images it overlaps, however many
// there are.
#include <string>

#include "ops_list.hpp"
#include "tessera/core/spatial_index.hpp"

namespace tessera {
namespace {

class InsertOp final : public Op {
public:
    InsertOp(const Params& p, std::span<const ImageInfo> in) {
        const ImageInfo& base = in[0];
        auto at = p.points("at");
        if (at.size() != in.size() - 1)
            throw ParamError("at", "has " + std::to_string(at.size()) + " positions for " +
                                       std::to_string(in.size() - 1) + " inserted images; give one [x, y] per image");
        std::vector<Rect> placed;
        for (std::size_t i = 1; i < in.size(); ++i) {
            if (in[i].bands != base.bands || in[i].format != base.format)
                throw ParamError("inputs", "image " + std::to_string(i) + " has " + std::to_string(in[i].bands) +
                                               " bands of " + std::string(format_name(in[i].format)) +
                                               " but the base has " + std::to_string(base.bands) + " bands of " +
                                               std::string(format_name(base.format)) +
                                               "; cast or convert it first");
            const IntPair& xy = at[i - 1];
            if (xy[0] < -kMaxDimension || xy[0] > kMaxDimension || xy[1] < -kMaxDimension || xy[1] > kMaxDimension)
                throw ParamError("at", "position " + std::to_string(i - 1) + " is out of range");
            placed.push_back({int(xy[0]), int(xy[1]), in[i].width, in[i].height});
            // wholly off the base it would never show: almost always wrong
            // coordinates (swapped x/y, another unit), so say so now
            if (placed.back().intersect(base.rect()).empty())
                throw ParamError("at", "position " + std::to_string(i - 1) + " [" + std::to_string(xy[0]) + ", " +
                                           std::to_string(xy[1]) + "] puts image " + std::to_string(i) + " (" +
                                           std::to_string(in[i].width) + "x" + std::to_string(in[i].height) +
                                           ") wholly outside the " + std::to_string(base.width) + "x" +
                                           std::to_string(base.height) +
                                           " base, where it would not show; check the position (its top-left pixel) "
                                           "or the base's size");
        }
        info_ = base;
        index_ = SpatialIndex(base.rect(), placed);
    }

    // Case analysis for an output rect r:
    //  1. r lies inside one placed image: that image alone, and only the
    //     topmost such one (everything under it is hidden);
    //  2. otherwise: the base's part of r, then each overlapping image's part
    //     in input order, so later images land on top; a part that later
    //     images cover entirely is hidden and not asked for at all.
    // Every need is placed, so pixels go straight into the output tile. Parts
    // are whole (never trimmed to their visible rows), so every tile in a row
    // asks an input for the same rows: a streaming decoder serves them from
    // one decode.
    void demand(const Rect& r, Demand& need) const override {
        std::vector<int> hits;
        index_.query(r, hits);
        const auto& rects = index_.rects();
        std::size_t first = 0;  // first hit that is visible
        bool covered = false;
        for (std::size_t k = hits.size(); k-- > 0;)
            if (rects[hits[k]].contains(r)) {
                first = k;
                covered = true;
                break;
            }
        // case 2: the base under everything, unless the images cover r together
        if (!covered && !covered_by(r, hits, 0)) need.push_back({0, r, r.origin()});
        for (std::size_t k = first; k < hits.size(); ++k) {
            const Rect& at = rects[hits[k]];
            Rect part = at.intersect(r);
            if (!covered_by(part, hits, k + 1))
                need.push_back({hits[k] + 1, part.translate(-at.x, -at.y), part.origin()});
        }
    }

    // Whether the images hits[from..] together cover all of `part`: part
    // minus each of them in turn, kept as a short list of disjoint rects.
    bool covered_by(const Rect& part, const std::vector<int>& hits, std::size_t from) const {
        const auto& rects = index_.rects();
        std::vector<Rect> left{part}, next;
        for (std::size_t j = from; j < hits.size() && !left.empty(); ++j) {
            const Rect& c = rects[hits[j]];
            next.clear();
            for (const Rect& r : left) {
                Rect i = r.intersect(c);
                if (i.empty()) {
                    next.push_back(r);
                    continue;
                }
                // the parts of r above, below, left and right of i
                next.push_back({r.x, r.y, r.w, i.y - r.y});
                next.push_back({r.x, i.bottom(), r.w, r.bottom() - i.bottom()});
                next.push_back({r.x, i.y, i.x - r.x, i.h});
                next.push_back({i.right(), i.y, r.right() - i.right(), i.h});
                std::erase_if(next, [](const Rect& q) { return q.empty(); });
            }
            std::swap(left, next);
        }
        return left.empty();
    }

    // Nothing to compute: every pixel comes from a placed need.
    void compute(const Tile&, std::span<const Pulled>) const override {}

private:
    SpatialIndex index_;
};

}  // namespace

OpSpec insert_op_spec() {
    return {"insert", "draws images over a base at [x, y] positions, later ones on top (one node for N images)", 1, -1,
            {{"at", ParamType::points, true, "", "one [x, y] per inserted image: its top-left on the base"}},
            false, &make_op<InsertOp>};
}

}  // namespace tessera
