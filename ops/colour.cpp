// libvips 8.14's colour formulas (see colour.hpp).
#include "colour.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

namespace tessera {

std::optional<Space> space_of(Interpretation i) {
    switch (i) {
        case Interpretation::srgb: return Space::srgb;
        case Interpretation::rgb16: return Space::rgb16;
        case Interpretation::bw: return Space::bw;
        case Interpretation::grey16: return Space::grey16;
        case Interpretation::multiband: return std::nullopt;
    }
    return std::nullopt;
}

int space_bands(Space s) { return s == Space::bw || s == Space::grey16 ? 1 : 3; }

Format space_format(Space s) {
    switch (s) {
        case Space::srgb:
        case Space::bw: return Format::u8;
        case Space::rgb16:
        case Space::grey16: return Format::u16;
        case Space::labs: return Format::i16;
        default: return Format::f32;
    }
}

Interpretation space_interpretation(Space s) {
    switch (s) {
        case Space::srgb: return Interpretation::srgb;
        case Space::rgb16: return Interpretation::rgb16;
        case Space::bw: return Interpretation::bw;
        case Space::grey16: return Interpretation::grey16;
        default: return Interpretation::multiband;
    }
}

namespace {

constexpr double kX0 = 95.0470, kY0 = 100.0, kZ0 = 108.8827;  // libvips's D65
constexpr int kQuant = 100000;                                // XYZ2Lab.c's cube-root table

// colour.c's calcul_tables for a range (256 or 65536): Y2v (linear ->
// level, one extra entry for the interpolation) and v2Y (level -> linear).
struct Gamma {
    std::vector<int> y2v;
    std::vector<float> v2y;
    explicit Gamma(int range) : y2v(std::size_t(range) + 1), v2y(std::size_t(range)) {
        for (int i = 0; i < range; ++i) {
            const float f = float(i) / float(range - 1);
            float v;
            if (f <= 0.0031308)
                v = float(12.92 * f);
            else
                v = float((1.0 + 0.055) * std::pow(double(f), 1.0 / 2.4) - 0.055);
            y2v[std::size_t(i)] = int(std::rint((range - 1) * v));
        }
        y2v[std::size_t(range)] = y2v[std::size_t(range) - 1];
        for (int i = 0; i < range; ++i) {
            const float f = float(i) / float(range - 1);
            if (f <= 0.04045)
                v2y[std::size_t(i)] = float(f / 12.92);
            else
                v2y[std::size_t(i)] = float(std::pow((double(f) + 0.055) / (1 + 0.055), 2.4));
        }
    }
    // vips_col_scRGB2sRGB's lookup of one linear value
    int level(float v) const {
        const int maxval = int(v2y.size()) - 1;
        if (std::isnan(v) || std::isinf(v)) return 0;
        float yf = v * float(maxval);
        yf = std::clamp(yf, 0.0f, float(maxval));
        const int yi = int(yf);
        const float l =
            float(y2v[std::size_t(yi)]) + float(y2v[std::size_t(yi) + 1] - y2v[std::size_t(yi)]) * (yf - float(yi));
        return int(std::rint(l));
    }
};

const Gamma& gamma8() {
    static const Gamma g(256);
    return g;
}
const Gamma& gamma16() {
    static const Gamma g(65536);
    return g;
}

const std::vector<float>& cbrt_table() {
    static const std::vector<float> t = [] {
        std::vector<float> v(kQuant);
        for (int i = 0; i < kQuant; ++i) {
            const float y = float(double(i) / kQuant);
            v[std::size_t(i)] = y < 0.008856 ? float(7.787 * y + (16.0 / 116.0)) : float(std::cbrt(double(y)));
        }
        return v;
    }();
    return t;
}

float cbrt_lookup(float n) {
    const auto& t = cbrt_table();
    const int i = std::clamp(int(n), 0, kQuant - 2);
    const float f = n - float(i);
    return t[std::size_t(i)] + f * (t[std::size_t(i) + 1] - t[std::size_t(i)]);
}

// One pixel's colour through the chain. Levels: 0 device (sRGB, B_W, ...),
// 1 scRGB, 2 XYZ, 3 LAB, 4 LABS.
int level_of(Space s) {
    switch (s) {
        case Space::scrgb: return 1;
        case Space::xyz: return 2;
        case Space::lab: return 3;
        case Space::labs: return 4;
        default: return 0;
    }
}

bool deep(Space s) { return s == Space::rgb16 || s == Space::grey16; }

void up(int level, float c[3]) {  // one step away from the device
    switch (level) {
        case 1: {  // scRGB -> XYZ (colour.c: SCALE x the matrix, in float x double)
            const float r = c[0], g = c[1], b = c[2];
            c[0] = float(kY0 * 0.4124 * r + kY0 * 0.3576 * g + kY0 * 0.18056 * b);
            c[1] = float(kY0 * 0.2126 * r + kY0 * 0.7152 * g + kY0 * 0.07220 * b);
            c[2] = float(kY0 * 0.0193 * r + kY0 * 0.1192 * g + kY0 * 0.9505 * b);
            break;
        }
        case 2: {  // XYZ -> LAB
            const float nx = float(kQuant * c[0] / kX0), ny = float(kQuant * c[1] / kY0),
                        nz = float(kQuant * c[2] / kZ0);
            const float cbx = cbrt_lookup(nx), cby = cbrt_lookup(ny), cbz = cbrt_lookup(nz);
            c[0] = float(116.0 * cby - 16.0);
            c[1] = float(500.0 * (cbx - cby));
            c[2] = float(200.0 * (cby - cbz));
            break;
        }
        default: break;
    }
}

void down(int level, float c[3]) {  // one step towards the device
    switch (level) {
        case 2: {  // XYZ -> scRGB
            const float x = c[0], y = c[1], z = c[2];
            c[0] = float(3.2406 / kY0 * x + -1.5372 / kY0 * y + -0.4986 / kY0 * z);
            c[1] = float(-0.9689 / kY0 * x + 1.8758 / kY0 * y + 0.0415 / kY0 * z);
            c[2] = float(0.0557 / kY0 * x + -0.2040 / kY0 * y + 1.0570 / kY0 * z);
            break;
        }
        case 3: {  // LAB -> XYZ (Lab2XYZ.c)
            const float L = c[0], a = c[1], b = c[2];
            float X, Y, Z;
            double cby, tmp;
            if (L < 8.0) {
                Y = float((L * kY0) / 903.3);
                cby = 7.787 * (Y / kY0) + 16.0 / 116.0;
            } else {
                cby = (L + 16.0) / 116.0;
                Y = float(kY0 * cby * cby * cby);
            }
            tmp = a / 500.0 + cby;
            X = float(tmp < 0.2069 ? kX0 * (tmp - 0.13793) / 7.787 : kX0 * tmp * tmp * tmp);
            tmp = cby - b / 200.0;
            Z = float(tmp < 0.2069 ? kZ0 * (tmp - 0.13793) / 7.787 : kZ0 * tmp * tmp * tmp);
            c[0] = X;
            c[1] = Y;
            c[2] = Z;
            break;
        }
        default: break;
    }
}

template <class T>
T clip_to(double v) {
    if constexpr (std::is_floating_point_v<T>)
        return T(v);
    else
        return T(std::clamp(v, double(std::numeric_limits<T>::lowest()), double(std::numeric_limits<T>::max())));
}

template <class S, class D>
void convert_as(const ConstTile& src, Space from, const Tile& dst, Space to) {
    const int nf = space_bands(from), nt = space_bands(to);
    const int extra = src.bands - nf;
    const int lf = level_of(from), lt = level_of(to);
    // extra bands between 8- and 16-bit spaces: x or / 256
    const double extra_scale = (deep(from) == deep(to)) ? 1.0 : deep(from) ? 1.0 / 256 : (deep(to) ? 256.0 : 1.0);
    const bool copy_grey = lf == 0 && lt == 0 && space_bands(from) == 1 && nt == 3 && deep(from) == deep(to);
    for (int y = dst.rect.y; y < dst.rect.bottom(); ++y) {
        const S* p = reinterpret_cast<const S*>(src.at(dst.rect.x, y));
        D* q = dst.row<D>(y);
        for (int x = 0; x < dst.rect.w; ++x, p += src.bands, q += dst.bands) {
            for (int e = 0; e < extra; ++e) q[nt + e] = clip_to<D>(double(p[nf + e]) * extra_scale);
            if (copy_grey) {  // libvips's BW2sRGB: the band three times
                q[0] = q[1] = q[2] = D(p[0]);
                continue;
            }
            if (from == to) {
                for (int k = 0; k < nt; ++k) q[k] = D(p[k]);
                continue;
            }
            float c[3];
            int level = lf;
            if (lf == 0) {  // device -> scRGB
                const Gamma& g = deep(from) ? gamma16() : gamma8();
                const int maxval = int(g.v2y.size()) - 1;
                for (int k = 0; k < 3; ++k) {
                    const int v = std::clamp(int(p[nf == 1 ? 0 : k]), 0, maxval);
                    c[k] = g.v2y[std::size_t(v)];
                }
                level = 1;
            } else if (lf == 4) {  // LABS -> LAB
                c[0] = float(double(p[0]) / (32767.0 / 100.0));
                c[1] = float(double(p[1]) / (32768.0 / 128.0));
                c[2] = float(double(p[2]) / (32768.0 / 128.0));
                level = 3;
            } else {
                for (int k = 0; k < 3; ++k) c[k] = float(p[k]);
            }
            const int target = lt == 0 ? 1 : lt == 4 ? 3 : lt;
            while (level < target) up(level++, c);
            while (level > target) down(level--, c);
            if (lt == 0) {
                const Gamma& g = deep(to) ? gamma16() : gamma8();
                if (nt == 1)
                    q[0] = D(g.level(float(0.2 * c[0] + 0.7 * c[1] + 0.1 * c[2])));
                else
                    for (int k = 0; k < 3; ++k) q[k] = D(g.level(c[k]));
            } else if (lt == 4) {  // LAB -> LABS
                q[0] = clip_to<D>(double(c[0]) * (32767.0 / 100.0));
                q[1] = clip_to<D>(double(c[1]) * (32768.0 / 128.0));
                q[2] = clip_to<D>(double(c[2]) * (32768.0 / 128.0));
            } else {
                for (int k = 0; k < 3; ++k) q[k] = D(c[k]);
            }
        }
    }
}

}  // namespace

void convert_colour(const ConstTile& src, Space from, const Tile& dst, Space to) {
    dispatch_format(src.format, [&](auto s0) {
        using S = decltype(s0);
        dispatch_format(dst.format, [&](auto d0) {
            using D = decltype(d0);
            convert_as<S, D>(src, from, dst, to);
        });
    });
}

}  // namespace tessera
