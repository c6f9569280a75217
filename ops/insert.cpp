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
#include "stack.hpp"

namespace tessera {
namespace {

class InsertOp final : public Op {
public:
    InsertOp(const Params& p, std::span<const ImageInfo> in) : stack_(p.points("at"), in) { info_ = in[0]; }

    // The case analysis is Stack::demand_insert's (shared with mosaic).
    void demand(const Rect& r, Demand& need) const override { stack_.demand_insert(r, need); }

    // Nothing to compute: every pixel comes from a placed need.
    void compute(const Tile&, std::span<const Pulled>) const override {}

private:
    Stack stack_;
};

}  // namespace

OpSpec insert_op_spec() {
    return {"insert",
            "draws images over a base at [x, y] positions, later ones on top (one node for N images)",
            1,
            -1,
            {{"at", ParamType::points, true, "", "one [x, y] per inserted image: its top-left on the base"}},
            false,
            &make_op<InsertOp>,
            false,
            "mosaic",
            "0"};
}

}  // namespace tessera
