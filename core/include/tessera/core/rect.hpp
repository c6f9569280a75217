// Half-open integer rectangles: [x, x + w) x [y, y + h).
//
// Every rect in Tessera is in the pixel frame of one particular image (its
// origin is that image's top-left pixel); which image is said where a rect is
// passed around. Nobody writes right/bottom arithmetic by hand: use the
// helpers below so that empty and clipped cases stay correct.
#pragma once

#include <algorithm>
#include <cstdint>
#include <ostream>

namespace tessera {

struct Point {
    int x = 0;
    int y = 0;
    friend bool operator==(const Point&, const Point&) = default;
};

struct Rect {
    int x = 0;
    int y = 0;
    int w = 0;
    int h = 0;

    constexpr int right() const { return x + w; }   // one past the last column
    constexpr int bottom() const { return y + h; }  // one past the last row
    constexpr bool empty() const { return w <= 0 || h <= 0; }
    constexpr std::int64_t area() const { return empty() ? 0 : std::int64_t(w) * h; }
    constexpr Point origin() const { return {x, y}; }

    constexpr Rect intersect(const Rect& o) const {
        int l = std::max(x, o.x), t = std::max(y, o.y);
        int r = std::min(right(), o.right()), b = std::min(bottom(), o.bottom());
        if (r <= l || b <= t) return {l, t, 0, 0};
        return {l, t, r - l, b - t};
    }
    constexpr bool overlaps(const Rect& o) const { return !intersect(o).empty(); }
    // True for any rect that is empty: there is nothing of it outside.
    constexpr bool contains(const Rect& o) const {
        return o.empty() || (o.x >= x && o.y >= y && o.right() <= right() && o.bottom() <= bottom());
    }
    constexpr bool contains(Point p) const { return p.x >= x && p.y >= y && p.x < right() && p.y < bottom(); }
    constexpr Rect translate(int dx, int dy) const { return {x + dx, y + dy, w, h}; }
    // The smallest rect holding both (an empty one adds nothing).
    constexpr Rect unite(const Rect& o) const {
        if (empty()) return o;
        if (o.empty()) return *this;
        int l = std::min(x, o.x), t = std::min(y, o.y);
        return {l, t, std::max(right(), o.right()) - l, std::max(bottom(), o.bottom()) - t};
    }
    friend bool operator==(const Rect&, const Rect&) = default;
};

inline std::ostream& operator<<(std::ostream& os, const Rect& r) {
    return os << "[" << r.x << "," << r.y << " " << r.w << "x" << r.h << "]";
}

}  // namespace tessera
