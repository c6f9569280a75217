// bandjoin: the bands of N images side by side, in input order (libvips
// bandjoin). The inputs must have one size and one format: libvips would
// embed smaller images in black and cast every input up to a common format,
// which here is explicit (embed, cast) so that nothing is widened or padded
// by surprise; a mismatch is refused naming the input. Demand halo: none.
#include <cstring>
#include <string>

#include "ops_list.hpp"

namespace tessera {
namespace {

class BandjoinOp final : public Op {
public:
    BandjoinOp(const Params&, std::span<const ImageInfo> in) {
        info_ = in[0];
        int bands = 0;
        for (std::size_t i = 0; i < in.size(); ++i) {
            const ImageInfo& s = in[i];
            if (s.width != in[0].width || s.height != in[0].height)
                throw Error("bandjoin: input " + std::to_string(i) + " is " + std::to_string(s.width) + "x" +
                            std::to_string(s.height) + ", input 0 " + std::to_string(in[0].width) + "x" +
                            std::to_string(in[0].height) + "; make them one size first (embed, extract_area, resize)");
            if (s.format != in[0].format)
                throw Error("bandjoin: input " + std::to_string(i) + " is " + std::string(format_name(s.format)) +
                            ", input 0 " + std::string(format_name(in[0].format)) + "; cast them to one format first");
            bands += s.bands;
            band_counts_.push_back(s.bands);
        }
        if (bands > kMaxBands)
            throw Error("bandjoin: " + std::to_string(bands) + " bands in all, more than " + std::to_string(kMaxBands));
        info_.bands = bands;
        info_.interpretation = default_interpretation(bands, info_.format);
        if (info_.geo) {
            // per-band nodata follows its band; alpha only if input 0's
            std::vector<std::optional<double>> nd;
            bool any = false;
            for (std::size_t i = 0; i < in.size(); ++i)
                for (int b = 0; b < in[i].bands; ++b) {
                    std::optional<double> v;
                    if (in[i].geo && std::size_t(b) < in[i].geo->nodata.size()) v = in[i].geo->nodata[std::size_t(b)];
                    any = any || v.has_value();
                    nd.push_back(v);
                }
            info_.geo->nodata = any ? nd : std::vector<std::optional<double>>{};
        }
    }

    // Case analysis for an output rect r: one case, the same rect of every
    // input (the bands interleave, so nothing can be placed).
    void demand(const Rect& r, Demand& need) const override {
        for (int i = 0; i < int(band_counts_.size()); ++i) need.push_back({i, r, std::nullopt});
    }

    void compute(const Tile& out, std::span<const Pulled> in) const override {
        const std::size_t s = format_size(out.format), op = out.pixel_bytes();
        std::size_t offset = 0;
        for (const Pulled& p : in) {
            const ConstTile& src = p.tile;
            const std::size_t ip = src.pixel_bytes();
            for (int y = out.rect.y; y < out.rect.bottom(); ++y) {
                const std::byte* a = src.at(out.rect.x, y);
                std::byte* q = out.at(out.rect.x, y) + offset;
                for (int x = 0; x < out.rect.w; ++x, a += ip, q += op) std::memcpy(q, a, ip);
            }
            offset += std::size_t(src.bands) * s;
        }
    }

private:
    std::vector<int> band_counts_;
};

}  // namespace

OpSpec bandjoin_op_spec() {
    return {"bandjoin",
            "the bands of N images of one size and format, in input order (libvips bandjoin); halo: none",
            1,
            -1,
            {},
            false,
            &make_op<BandjoinOp>,
            false,
            "bands",
            "0"};
}

}  // namespace tessera
