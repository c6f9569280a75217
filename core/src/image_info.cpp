#include "tessera/core/image_info.hpp"

namespace tessera {

GeoRef GeoRef::shifted(double dx, double dy) const {
    GeoRef g = *this;
    auto& t = g.transform;
    t[0] = transform[0] + dx * transform[1] + dy * transform[2];
    t[3] = transform[3] + dx * transform[4] + dy * transform[5];
    return g;
}

GeoRef GeoRef::scaled(double xf, double yf) const {
    GeoRef g = *this;
    auto& t = g.transform;
    t[1] *= xf;
    t[4] *= xf;
    t[2] *= yf;
    t[5] *= yf;
    return g;
}

}  // namespace tessera
