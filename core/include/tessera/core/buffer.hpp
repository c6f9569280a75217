// Pixel memory: accounted buffers and the views ops read and write.
//
// Every byte of pixel memory the evaluator holds is allocated through a
// MemoryAccount, so the peak can be read back (tests, --stats) and compared
// with a budget. Views (Tile, ConstTile) never own memory.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>

#include "tessera/core/format.hpp"
#include "tessera/core/image_info.hpp"
#include "tessera/core/rect.hpp"

namespace tessera {

// Bytes of pixel memory held, and the peak. An account may have a parent
// that sees every charge too: the evaluator's account and the io caches'
// both report to process_pixel_memory(), whose peak is the whole process's.
class MemoryAccount {
public:
    explicit MemoryAccount(MemoryAccount* parent = nullptr) : parent_(parent) {}
    MemoryAccount(const MemoryAccount&) = delete;
    MemoryAccount& operator=(const MemoryAccount&) = delete;

    void charge(std::size_t n) {
        std::size_t now = current_.fetch_add(n, std::memory_order_relaxed) + n;
        std::size_t p = peak_.load(std::memory_order_relaxed);
        while (now > p && !peak_.compare_exchange_weak(p, now, std::memory_order_relaxed)) {}
        if (parent_) parent_->charge(n);
    }
    void release(std::size_t n) {
        current_.fetch_sub(n, std::memory_order_relaxed);
        if (parent_) parent_->release(n);
    }
    std::size_t current() const { return current_.load(std::memory_order_relaxed); }
    std::size_t peak() const { return peak_.load(std::memory_order_relaxed); }
    void reset_peak() { peak_.store(current(), std::memory_order_relaxed); }

private:
    MemoryAccount* parent_;
    std::atomic<std::size_t> current_{0};
    std::atomic<std::size_t> peak_{0};
};

// Every accounted pixel byte of the process: evaluators, tile caches, the io
// layer's decode windows and the sinks' strips.
MemoryAccount& process_pixel_memory();

// A writable view of pixels covering `rect`, in the frame of the image it
// belongs to. Row r of the view (r in [rect.y, rect.bottom())) starts at
// data + (r - rect.y) * stride.
struct Tile {
    Rect rect;
    int bands = 1;
    Format format = Format::u8;
    std::byte* data = nullptr;
    std::size_t stride = 0;  // bytes between rows

    std::size_t pixel_bytes() const { return std::size_t(bands) * format_size(format); }
    std::size_t row_bytes() const { return std::size_t(rect.w) * pixel_bytes(); }
    // Address of pixel (x, y), image coordinates; (x, y) must lie in rect.
    std::byte* at(int x, int y) const {
        return data + std::size_t(y - rect.y) * stride + std::size_t(x - rect.x) * pixel_bytes();
    }
    template <class T>
    T* row(int y) const {
        return reinterpret_cast<T*>(data + std::size_t(y - rect.y) * stride);
    }
    // The part of this view covering sub (which must lie inside rect).
    Tile sub(const Rect& s) const { return {s, bands, format, at(s.x, s.y), stride}; }
    // The same memory seen in another frame: pixel p here is p + (dx, dy) there.
    Tile moved(int dx, int dy) const { return {rect.translate(dx, dy), bands, format, data, stride}; }
};

struct ConstTile {
    Rect rect;
    int bands = 1;
    Format format = Format::u8;
    const std::byte* data = nullptr;
    std::size_t stride = 0;

    ConstTile() = default;
    ConstTile(Rect r, int b, Format f, const std::byte* d, std::size_t s)
        : rect(r), bands(b), format(f), data(d), stride(s) {}
    ConstTile(const Tile& t) : rect(t.rect), bands(t.bands), format(t.format), data(t.data), stride(t.stride) {}

    std::size_t pixel_bytes() const { return std::size_t(bands) * format_size(format); }
    std::size_t row_bytes() const { return std::size_t(rect.w) * pixel_bytes(); }
    const std::byte* at(int x, int y) const {
        return data + std::size_t(y - rect.y) * stride + std::size_t(x - rect.x) * pixel_bytes();
    }
    template <class T>
    const T* row(int y) const {
        return reinterpret_cast<const T*>(data + std::size_t(y - rect.y) * stride);
    }
    ConstTile sub(const Rect& s) const { return {s, bands, format, at(s.x, s.y), stride}; }
};

// Copies the pixels of src that lie in dst.rect (same frame, same bands and
// format) into dst.
void copy_pixels(const ConstTile& src, const Tile& dst);
// Sets every pixel of dst to `value` (one double per band, or one for all),
// converted to dst's format with clipping.
void fill_pixels(const Tile& dst, const double* value, int nvalues);

// An owned, accounted block of pixels: the only way pixel memory is made.
// Move-only; the bytes are returned to the account when it dies.
class Buffer {
public:
    Buffer() = default;
    Buffer(MemoryAccount* account, const Rect& rect, int bands, Format format);
    Buffer(Buffer&& o) noexcept { *this = std::move(o); }
    Buffer& operator=(Buffer&& o) noexcept;
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;
    ~Buffer() { reset(); }

    void reset();
    bool valid() const { return bool(bytes_); }
    std::size_t size() const { return size_; }
    Tile tile() const {
        return {rect_, bands_, format_, bytes_.get(), std::size_t(rect_.w) * bands_ * format_size(format_)};
    }
    ConstTile view() const { return tile(); }
    const Rect& rect() const { return rect_; }

private:
    MemoryAccount* account_ = nullptr;
    Rect rect_;
    int bands_ = 1;
    Format format_ = Format::u8;
    std::size_t size_ = 0;
    std::unique_ptr<std::byte[]> bytes_;
};

}  // namespace tessera
