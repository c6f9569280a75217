// Background ("ink") values the way libvips makes them, shared by the ops
// that paint a background (arrayjoin, embed).
#pragma once

#include <cmath>
#include <limits>
#include <type_traits>

namespace tessera {

// One sample of a background value: the double goes through a float image,
// then vips_cast clips and truncates toward zero.
template <class T>
T ink_sample(double v) {
    float f = float(v);
    if constexpr (std::is_floating_point_v<T>) {
        return T(f);
    } else {
        double d = f;
        if (std::isnan(d)) return T(0);
        if (d <= double(std::numeric_limits<T>::lowest())) return std::numeric_limits<T>::lowest();
        if (d >= double(std::numeric_limits<T>::max())) return std::numeric_limits<T>::max();
        return T(d);
    }
}

}  // namespace tessera
