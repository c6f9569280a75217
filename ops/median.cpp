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
// Integer images with windows up to 7 x 7 run a selection network instead
// of a selection per sample: Batcher's odd-even merge sort of the size^2
// samples, less every comparator the index-th output does not depend on
// (3 x 3 median: 19 of 25), applied as a min and a max over 64 samples of
// a row at a time, which the compiler vectorises. It sorts, so it picks the
// same value std::nth_element does; floats keep nth_element (a network's
// min/max orders -0 and NaN differently, and nothing measured asks for it),
// as do larger windows (the network grows as n log^2 n). 20000^2 u8, 3 x 3,
// 2 threads: 55 CPU s with nth_element, libvips rank 49.
//
// Demand halo: size / 2 each side (size - 1 - size / 2 right and down for
// an even size), clipped to the image.
#include <algorithm>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "kernels.hpp"
#include "ops_list.hpp"

namespace tessera {
namespace {

// The comparators (lo, hi) of Batcher's odd-even merge sort of n values
// that the value at sorted position `keep` depends on, in order.
std::vector<std::pair<int, int>> selection_network(int n, int keep) {
    int np = 1;
    while (np < n) np <<= 1;
    // the network for np values; comparators reaching past n are dropped
    // (the missing values are +infinity there, so they would never swap)
    std::vector<std::pair<int, int>> all;
    for (int p = 1; p < np; p <<= 1)
        for (int k = p; k >= 1; k >>= 1)
            for (int j = k % p; j + k < np; j += 2 * k)
                for (int i = 0; i < std::min(k, np - j - k); ++i)
                    if ((i + j) / (2 * p) == (i + j + k) / (2 * p) && i + j + k < n)
                        all.emplace_back(i + j, i + j + k);
    // backwards from the output: a comparator matters if it writes a
    // position something that matters reads
    std::vector<bool> need(std::size_t(n), false);
    need[std::size_t(keep)] = true;
    std::vector<std::pair<int, int>> kept;
    for (auto it = all.rbegin(); it != all.rend(); ++it)
        if (need[std::size_t(it->first)] || need[std::size_t(it->second)]) {
            need[std::size_t(it->first)] = need[std::size_t(it->second)] = true;
            kept.push_back(*it);
        }
    std::reverse(kept.begin(), kept.end());
    return kept;
}

constexpr int kNetworkMaxSize = 7;
constexpr std::size_t kLanes = 64;  // samples of a row per pass of the network

// One comparator over kLanes lanes: the smaller of each pair to a, the
// larger to b (two runs of one buffer that never overlap: ivdep tells the
// compiler so, which lets it vectorise the loop; restrict is lost when it
// inlines this).
template <class T>
void compare_exchange(T* __restrict a, T* __restrict b) {
#pragma GCC ivdep
    for (std::size_t l = 0; l < kLanes; ++l) {
        // (as std::min and std::max, whose references defeat the compiler's
        // if-conversion)
        const T u = a[l], v = b[l];
        const bool swap = v < u;
        a[l] = swap ? v : u;
        b[l] = swap ? u : v;
    }
}

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
        if (size_ <= kNetworkMaxSize) network_ = selection_network(int(n), index_);
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
            if constexpr (std::is_integral_v<T>)
                if (size_ <= kNetworkMaxSize) return by_network<T>(src, out);
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
    // Case analysis: as compute's, with the window's samples of 64
    // neighbouring output samples as size^2 runs (run k: the window's k-th
    // sample, row major, of each), sorted lane by lane by the network.
    template <class T>
    TESSERA_VECTOR_CLONES void by_network(const ConstTile& src, const Tile& out) const {
        const Rect& r = out.rect;
        const Rect b = info_.rect();
        const int nb = out.bands, nw = size_ * size_;
        const std::size_t n = std::size_t(r.w) * std::size_t(nb);
        const std::size_t pn = std::size_t(r.w + size_ - 1) * std::size_t(nb);
        const bool inside = r.x - window_.left() >= b.x && r.right() + window_.right() <= b.right();
        thread_local std::vector<T> pad, work;
        thread_local std::vector<const T*> rows;
        if (!inside) pad.resize(std::size_t(size_) * pn);
        work.resize(std::size_t(nw) * kLanes);
        rows.resize(std::size_t(size_));
        std::vector<std::ptrdiff_t> cols(std::size_t(r.w + size_ - 1));
        for (std::size_t i = 0; i < cols.size(); ++i)
            cols[i] = std::ptrdiff_t(std::clamp(r.x + int(i) - window_.left(), b.x, b.right() - 1) - src.rect.x) * nb;
        for (int y = r.y; y < r.bottom(); ++y) {
            // the window's rows, their columns clamped at the image's edges
            for (int j = 0; j < size_; ++j) {
                const T* p = src.row<T>(std::clamp(y + j - window_.up(), b.y, b.bottom() - 1));
                if (inside) {
                    rows[std::size_t(j)] = p + cols[0];
                    continue;
                }
                T* o = pad.data() + std::size_t(j) * pn;
                for (std::size_t x = 0; x < cols.size(); ++x)
                    for (int k = 0; k < nb; ++k) *o++ = p[cols[x] + k];
                rows[std::size_t(j)] = pad.data() + std::size_t(j) * pn;
            }
            T* q = out.row<T>(y);
            for (std::size_t e0 = 0; e0 < n; e0 += kLanes) {
                const std::size_t m = std::min(kLanes, n - e0);
                for (int j = 0; j < size_; ++j)
                    for (int i = 0; i < size_; ++i)
                        std::memcpy(&work[std::size_t(j * size_ + i) * kLanes],
                                    rows[std::size_t(j)] + e0 + std::size_t(i) * std::size_t(nb), m * sizeof(T));
                for (const auto& [lo, hi] : network_)
                    compare_exchange(&work[std::size_t(lo) * kLanes], &work[std::size_t(hi) * kLanes]);
                std::memcpy(q + e0, &work[std::size_t(index_) * kLanes], m * sizeof(T));
            }
        }
    }

    int size_ = 3, index_ = 4;
    std::vector<std::pair<int, int>> network_;  // integer formats, size <= 7
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
