#include "tessera/core/buffer.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <new>

namespace tessera {

void copy_pixels(const ConstTile& src, const Tile& dst) {
    assert(src.bands == dst.bands && src.format == dst.format);
    Rect r = src.rect.intersect(dst.rect);
    if (r.empty()) return;
    std::size_t n = std::size_t(r.w) * dst.pixel_bytes();
    for (int y = r.y; y < r.bottom(); ++y) std::memcpy(dst.at(r.x, y), src.at(r.x, y), n);
}

void fill_pixels(const Tile& dst, const double* value, int nvalues) {
    if (dst.rect.empty()) return;
    dispatch_format(dst.format, [&](auto t) {
        using T = decltype(t);
        // one pixel of the fill value, clipped to the format's range
        std::vector<T> px(dst.bands);
        for (int b = 0; b < dst.bands; ++b) {
            double v = nvalues == 0 ? 0.0 : value[nvalues == 1 ? 0 : std::min(b, nvalues - 1)];
            v = std::clamp(v, format_min(dst.format), format_max(dst.format));
            if constexpr (std::is_integral_v<T>) v = std::nearbyint(v);
            px[b] = T(v);
        }
        bool zero = std::all_of(px.begin(), px.end(), [](T v) { return v == T(0); });
        for (int y = dst.rect.y; y < dst.rect.bottom(); ++y) {
            T* row = dst.row<T>(y);
            if (zero) {
                std::memset(row, 0, dst.row_bytes());
                continue;
            }
            for (int x = 0; x < dst.rect.w; ++x)
                for (int b = 0; b < dst.bands; ++b) row[std::size_t(x) * dst.bands + b] = px[b];
        }
    });
}

MemoryAccount& process_pixel_memory() {
    static MemoryAccount account;
    return account;
}

Buffer::Buffer(MemoryAccount* account, const Rect& rect, int bands, Format format)
    : account_(account), rect_(rect), bands_(bands), format_(format) {
    size_ = std::size_t(rect.area()) * bands * format_size(format);
    bytes_.reset(new std::byte[std::max<std::size_t>(size_, 1)]);
    if (account_) account_->charge(size_);
}

Buffer& Buffer::operator=(Buffer&& o) noexcept {
    if (this != &o) {
        reset();
        account_ = o.account_;
        rect_ = o.rect_;
        bands_ = o.bands_;
        format_ = o.format_;
        size_ = o.size_;
        bytes_ = std::move(o.bytes_);
        o.size_ = 0;
        o.account_ = nullptr;
    }
    return *this;
}

void Buffer::reset() {
    if (bytes_ && account_) account_->release(size_);
    bytes_.reset();
    size_ = 0;
}

}  // namespace tessera
