// extract_band: bands [band, band + n) of the input (libvips extract_band),
// any format, copied sample for sample. The bands must exist: a band past
// the last is refused naming the key, as libvips ("bad extract band").
// Demand halo: none.
#include <cstring>
#include <string>

#include "ops_list.hpp"

namespace tessera {
namespace {

class ExtractBandOp final : public Op {
public:
    ExtractBandOp(const Params& p, std::span<const ImageInfo> in) {
        const ImageInfo& src = in[0];
        band_ = int(p.integer("band"));
        const int n = int(p.integer("n"));
        if (band_ >= src.bands)
            throw ParamError("band", "band " + std::to_string(band_) + " of a " + std::to_string(src.bands) +
                                         "-band image does not exist; bands count from 0");
        if (band_ + n > src.bands)
            throw ParamError("n", std::to_string(n) + " bands from band " + std::to_string(band_) + " run past the " +
                                      std::to_string(src.bands) +
                                      " bands; use n <= " + std::to_string(src.bands - band_));
        info_ = src;
        info_.bands = n;
        info_.interpretation = default_interpretation(n, src.format);
        if (info_.geo) {
            auto& nd = info_.geo->nodata;
            if (!nd.empty()) nd = std::vector<std::optional<double>>(nd.begin() + band_, nd.begin() + band_ + n);
            const int a = info_.geo->alpha_band;
            info_.geo->alpha_band = a >= band_ && a < band_ + n ? a - band_ : -1;
        }
    }

    // Case analysis for an output rect r: one case, the same rect of the
    // input (the bands change, so it cannot be placed), the bands copied.
    void demand(const Rect& r, Demand& need) const override { need.push_back({0, r, std::nullopt}); }

    void compute(const Tile& out, std::span<const Pulled> in) const override {
        const ConstTile& src = in[0].tile;
        const std::size_t s = format_size(out.format), ip = src.pixel_bytes(), op = out.pixel_bytes();
        const std::size_t skip = std::size_t(band_) * s;
        for (int y = out.rect.y; y < out.rect.bottom(); ++y) {
            const std::byte* p = src.at(out.rect.x, y) + skip;
            std::byte* q = out.at(out.rect.x, y);
            for (int x = 0; x < out.rect.w; ++x, p += ip, q += op) std::memcpy(q, p, op);
        }
    }

private:
    int band_ = 0;
};

}  // namespace

OpSpec extract_band_op_spec() {
    return {"extract_band",
            "bands [band, band + n) of the input (libvips extract_band); halo: none",
            1,
            1,
            {{.name = "band",
              .type = ParamType::integer,
              .required = true,
              .doc = "the first band, from 0",
              .min = 0,
              .max = kMaxBands - 1},
             {.name = "n",
              .type = ParamType::integer,
              .doc = "how many bands",
              .default_value = std::int64_t(1),
              .min = 1,
              .max = kMaxBands}},
            false,
            &make_op<ExtractBandOp>,
            false,
            "bands",
            "0"};
}

}  // namespace tessera
