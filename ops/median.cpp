// median: a rank filter over a size x size window, as libvips 8.14's
// vips_median / vips_rank (morphology/rank.c): each output sample is the
// index-th smallest (from 0) of the window's samples of its band; index
// defaults to size^2 / 2, the median (vips_median's). 0 is the window's
// minimum, size^2 - 1 its maximum. Every format, the format kept, exact
// (a selection, no arithmetic).
// The image border: as libvips's rank, which embeds its input with extend
// copy first, the size is kept and samples beyond the edge are the nearest
// edge pixel.
//
// Demand halo: size / 2 each side (size - 1 - size / 2 right and down for
// an even size), clipped to the image.
#include <algorithm>
#include <string>
#include <vector>

#include "kernels.hpp"
#include "ops_list.hpp"

namespace tessera {
namespace {

class MedianOp final : public Op {
public:
    MedianOp(const Params& p, std::span<const ImageInfo> in) {
        size_ = int(p.integer("size"));
        const std::int64_t n = std::int64_t(size_) * size_;
        index_ = int(p.integer("index", n / 2));
        if (index_ < 0 || index_ >= n)
            throw ParamError("index", std::to_string(index_) + " is outside the " + std::to_string(size_) + " x " +
                                          std::to_string(size_) + " window; use 0 (minimum) to " +
                                          std::to_string(n - 1) + " (maximum)");
        window_.w = window_.h = size_;
        info_ = in[0];
    }

    // Case analysis for an output rect r: one case, r grown by the
    // window's reach, clipped to the image (rows and columns beyond it read
    // the edge).
    void demand(const Rect& r, Demand& need) const override {
        need.push_back({0, window_.support(r, info_.rect()), std::nullopt});
    }

    void compute(const Tile& out, std::span<const Pulled> in) const override {
        const ConstTile& src = in[0].tile;
        const Rect& r = out.rect;
        const Rect b = info_.rect();
        const int nb = out.bands;
        dispatch_format(out.format, [&](auto zero) {
            using T = decltype(zero);
            std::vector<int> cols(std::size_t(r.w + size_ - 1));
            for (std::size_t i = 0; i < cols.size(); ++i)
                cols[i] = (std::clamp(r.x + int(i) - window_.left(), b.x, b.right() - 1) - src.rect.x) * nb;
            std::vector<const T*> rows(static_cast<std::size_t>(size_));
            std::vector<T> win(std::size_t(size_) * std::size_t(size_));
            for (int y = r.y; y < r.bottom(); ++y) {
                for (int j = 0; j < size_; ++j)
                    rows[std::size_t(j)] = src.row<T>(std::clamp(y + j - window_.up(), b.y, b.bottom() - 1));
                T* q = out.row<T>(y);
                for (int x = 0; x < r.w; ++x)
                    for (int k = 0; k < nb; ++k) {
                        std::size_t n = 0;
                        for (int j = 0; j < size_; ++j)
                            for (int i = 0; i < size_; ++i)
                                win[n++] = rows[std::size_t(j)][cols[std::size_t(x + i)] + k];
                        std::nth_element(win.begin(), win.begin() + index_, win.end());
                        q[std::size_t(x) * nb + k] = win[std::size_t(index_)];
                    }
            }
        });
    }

private:
    int size_ = 3, index_ = 4;
    Mask window_;  // only its reach
};

}  // namespace

OpSpec median_op_spec() {
    return {"median",
            "rank filter over a size x size window: the median, or the index-th smallest (libvips median, rank; "
            "the size kept, edges copied); halo: size / 2",
            1,
            1,
            {{.name = "size",
              .type = ParamType::integer,
              .doc = "the window's width and height",
              .default_value = std::int64_t(3),
              .min = 1,
              .max = 101},
             {.name = "index",
              .type = ParamType::integer,
              .default_text = "size^2 / 2 (the median)",
              .doc = "which sample of the sorted window: 0 the minimum, size^2 - 1 the maximum",
              .min = 0,
              .max = 101 * 101 - 1}},
            false,
            &make_op<MedianOp>,
            false,
            "neighbourhood",
            "size / 2 (the window's reach)"};
}

}  // namespace tessera
