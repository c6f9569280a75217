#include "tessera/core/statistics.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "tessera/core/error.hpp"
#include "tessera/core/statistics_sink.hpp"

namespace tessera {

double Moments::sigma() const {
    if (count < 2) return 0.0;
    const double n = double(count);
    return std::sqrt(std::fabs(sum2 - sum * sum / n) / (n - 1));
}

void Moments::add(const Moments& b) {
    if (b.count == 0) return;
    if (count == 0) {
        *this = b;
        return;
    }
    // the smaller (larger) value; of equal ones, the first in raster order
    auto before = [](std::int64_t y1, std::int64_t x1, std::int64_t y0, std::int64_t x0) {
        return y1 < y0 || (y1 == y0 && x1 < x0);
    };
    if (b.min < min || (b.min == min && before(b.ymin, b.xmin, ymin, xmin))) {
        min = b.min;
        xmin = b.xmin, ymin = b.ymin;
    }
    if (b.max > max || (b.max == max && before(b.ymax, b.xmax, ymax, xmax))) {
        max = b.max;
        xmax = b.xmax, ymax = b.ymax;
    }
    sum += b.sum;
    sum2 += b.sum2;
    count += b.count;
}

double Statistics::percentile(double percent, int band) const {
    if (histograms.empty()) throw Error("internal: a percentile was asked of statistics without a histogram");
    const std::size_t bins = histograms[0].size();
    std::uint64_t n = 0;
    std::vector<std::uint64_t> h(bins, 0);
    for (std::size_t b = 0; b < histograms.size(); ++b)
        if (band < 0 || int(b) == band)
            for (std::size_t v = 0; v < bins; ++v) h[v] += histograms[b][v];
    for (std::uint64_t c : h) n += c;
    if (n == 0) return 0.0;
    const double target = std::clamp(percent, 0.0, 100.0) / 100.0 * double(n);
    std::uint64_t cum = 0;
    if (binned) {
        // the ends exactly (the moments know them); between, the point of
        // the bin where the count reaches the target
        const Moments& m = band < 0 || std::size_t(band) >= bands.size() ? all : bands[std::size_t(band)];
        if (percent <= 0) return m.min;
        if (percent >= 100) return m.max;
        for (std::size_t v = 0; v < bins; ++v) {
            if (h[v] == 0) continue;
            if (double(cum + h[v]) >= target) {
                const double frac = std::clamp((target - double(cum)) / double(h[v]), 0.0, 1.0);
                return std::clamp(hist_lo + hist_width * (double(v) + frac), m.min, m.max);
            }
            cum += h[v];
        }
        return m.max;
    }
    for (std::size_t v = 0; v < bins; ++v) {
        cum += h[v];
        if (cum > 0 && double(cum) >= target) return double(std::int64_t(v) + hist_offset);
    }
    return double(std::int64_t(bins) - 1 + hist_offset);
}

namespace {

template <class T>
void moments_kernel(const ConstTile& t, std::vector<Moments>& m) {
    const int bands = t.bands;
    std::vector<double> mn(std::size_t(bands), std::numeric_limits<double>::infinity());
    std::vector<double> mx(std::size_t(bands), -std::numeric_limits<double>::infinity());
    std::vector<double> s(std::size_t(bands), 0.0), s2(std::size_t(bands), 0.0);
    // (where: x + y * w within the tile; strictly smaller or larger only,
    // so the first in raster order)
    std::vector<std::int64_t> at_mn(std::size_t(bands), 0), at_mx(std::size_t(bands), 0);
    // row-major, band-interleaved: the same order for a block whatever the run
    for (int y = t.rect.y; y < t.rect.bottom(); ++y) {
        const T* p = t.row<T>(y);
        const std::int64_t row = std::int64_t(y - t.rect.y) * t.rect.w;
        for (int x = 0; x < t.rect.w; ++x)
            for (int b = 0; b < bands; ++b) {
                const double v = double(p[std::size_t(x) * bands + b]);
                if (v < mn[b]) mn[b] = v, at_mn[b] = row + x;
                if (v > mx[b]) mx[b] = v, at_mx[b] = row + x;
                s[b] += v;
                s2[b] += v * v;
            }
    }
    const std::uint64_t n = std::uint64_t(t.rect.area());
    const std::int64_t w = t.rect.w;
    for (int b = 0; b < bands; ++b)
        m[std::size_t(b)] = Moments{.min = mn[b],
                                    .max = mx[b],
                                    .sum = s[b],
                                    .sum2 = s2[b],
                                    .count = n,
                                    .xmin = t.rect.x + at_mn[b] % w,
                                    .ymin = t.rect.y + at_mn[b] / w,
                                    .xmax = t.rect.x + at_mx[b] % w,
                                    .ymax = t.rect.y + at_mx[b] / w};
}

template <class T>
void histogram_kernel(const ConstTile& t, std::vector<std::vector<std::uint64_t>>& h, int offset) {
    const int bands = t.bands;
    for (int y = t.rect.y; y < t.rect.bottom(); ++y) {
        const T* p = t.row<T>(y);
        for (int x = 0; x < t.rect.w; ++x)
            for (int b = 0; b < bands; ++b)
                ++h[std::size_t(b)][std::size_t(int(p[std::size_t(x) * bands + b]) - offset)];
    }
}

// A binned histogram (statistics.hpp): the bin of v, the last bin also
// holding the maximum; not finite samples are not counted.
template <class T>
void binned_kernel(const ConstTile& t, std::vector<std::vector<std::uint64_t>>& h, double lo, double width) {
    const int bands = t.bands;
    const std::size_t last = h.empty() ? 0 : h[0].size() - 1;
    const double inv = 1.0 / width;
    for (int y = t.rect.y; y < t.rect.bottom(); ++y) {
        const T* p = t.row<T>(y);
        for (int x = 0; x < t.rect.w; ++x)
            for (int b = 0; b < bands; ++b) {
                const double v = double(p[std::size_t(x) * bands + b]);
                if (!std::isfinite(v)) continue;
                const double k = std::floor((v - lo) * inv);
                ++h[std::size_t(b)][k <= 0 ? 0 : k >= double(last) ? last : std::size_t(k)];
            }
    }
}

// Statistics in a message between ranks, and back.
void put_moments(MessageWriter& w, const Moments& m) { w.put(m); }

std::vector<std::byte> encode(const Statistics& s) {
    MessageWriter w;
    w.put(std::uint32_t(s.bands.size()));
    for (const Moments& m : s.bands) put_moments(w, m);
    put_moments(w, s.all);
    w.put(s.hist_offset);
    w.put(std::uint8_t(s.binned));
    w.put(s.hist_lo);
    w.put(s.hist_width);
    w.put(std::uint32_t(s.histograms.size()));
    for (const auto& h : s.histograms) {
        w.put(std::uint32_t(h.size()));
        for (std::uint64_t c : h) w.put(c);
    }
    return std::move(w.bytes());
}

Statistics decode(const std::vector<std::byte>& bytes) {
    MessageReader r(bytes, 0, "statistics");
    Statistics s;
    s.bands.resize(r.get<std::uint32_t>());
    for (Moments& m : s.bands) m = r.get<Moments>();
    s.all = r.get<Moments>();
    s.hist_offset = r.get<int>();
    s.binned = r.get<std::uint8_t>() != 0;
    s.hist_lo = r.get<double>();
    s.hist_width = r.get<double>();
    s.histograms.resize(r.get<std::uint32_t>());
    for (auto& h : s.histograms) {
        h.resize(r.get<std::uint32_t>());
        for (std::uint64_t& c : h) c = r.get<std::uint64_t>();
    }
    return s;
}

}  // namespace

std::vector<Moments> StatisticsSink::moments_of(const ConstTile& tile) {
    std::vector<Moments> m(std::size_t(tile.bands));
    if (tile.rect.empty()) return m;
    dispatch_format(tile.format, [&](auto v) { moments_kernel<decltype(v)>(tile, m); });
    return m;
}

std::vector<std::size_t> StatisticsSink::share_starts(int cols, int rows, int) const {
    // any block may begin a share: the combination is in block order anyway
    std::vector<std::size_t> s(std::size_t(cols) * std::size_t(rows));
    for (std::size_t i = 0; i < s.size(); ++i) s[i] = i;
    if (s.empty()) s.push_back(0);
    return s;
}

void StatisticsSink::start(const ImageInfo& info, const SinkContext& context) {
    if (histogram_ && !histogram_format(info.format) && !range_)
        throw Error("internal: a binned histogram of " + std::string(format_name(info.format)) +
                    " samples was asked without their range");
    bands_ = info.bands;
    format_ = info.format;
    share_ = context.share;
    first_ = share_ ? share_->first : 0;
    partials_.clear();
    hist_.clear();
    result_ = Statistics{};
    if (histogram_) {
        const std::size_t bins = format_ == Format::u8 ? 256 : 65536;
        hist_.assign(std::size_t(bands_), std::vector<std::uint64_t>(bins, 0));
        result_.hist_offset = format_ == Format::i16 ? -32768 : 0;
        if (!histogram_format(format_)) {
            const auto [lo, hi] = *range_;
            if (!std::isfinite(lo) || !std::isfinite(hi))
                throw Error("a histogram of " + std::string(format_name(format_)) +
                            " samples needs finite ones; these range from " + std::to_string(lo) + " to " +
                            std::to_string(hi) + " (replace the infinities first)");
            result_.binned = true;
            result_.hist_lo = lo;
            // (a constant image: every sample in the first bin)
            result_.hist_width = hi > lo ? (hi - lo) / double(bins) : 1.0;
        }
    }
}

std::shared_ptr<void> StatisticsSink::prepare(const ConstTile& tile) {
    return std::make_shared<std::vector<Moments>>(moments_of(tile));
}

void StatisticsSink::consume(const ConstTile& tile, std::shared_ptr<void> prepared) {
    auto m = prepared ? std::static_pointer_cast<std::vector<Moments>>(prepared)
                      : std::make_shared<std::vector<Moments>>(moments_of(tile));
    partials_.push_back(std::move(*m));
    if (histogram_)
        dispatch_format(format_, [&](auto v) {
            using T = decltype(v);
            if (result_.binned)
                binned_kernel<T>(tile, hist_, result_.hist_lo, result_.hist_width);
            else if constexpr (sizeof(T) <= 2)
                histogram_kernel<T>(tile, hist_, result_.hist_offset);
        });
}

void StatisticsSink::finish() {
    const int offset = result_.hist_offset;
    if (share_ && share_->courier->ranks() > 1) {
        Courier& c = *share_->courier;
        if (!share_->writer()) {
            MessageWriter w;
            w.put(std::uint64_t(first_));
            w.put(std::uint64_t(partials_.size()));
            for (const auto& p : partials_)
                for (const Moments& m : p) w.put(m);
            for (const auto& h : hist_)
                for (std::uint64_t v : h) w.put(v);
            c.send(std::move(w.bytes()));
            c.flush();
            result_ = decode(c.broadcast({}));
            return;
        }
        // the writer: every producer's blocks at their positions
        std::vector<std::pair<std::size_t, std::vector<std::vector<Moments>>>> parts;
        parts.push_back({first_, std::move(partials_)});
        std::vector<std::byte> msg;
        for (int k = 1; k < c.ranks(); ++k) {
            c.receive(msg, true);
            MessageReader r(msg, 0, "statistics blocks");
            const auto first = std::size_t(r.get<std::uint64_t>());
            std::vector<std::vector<Moments>> p(std::size_t(r.get<std::uint64_t>()));
            for (auto& block : p) {
                block.resize(std::size_t(bands_));
                for (Moments& m : block) m = r.get<Moments>();
            }
            for (auto& h : hist_)
                for (std::uint64_t& v : h) v += r.get<std::uint64_t>();
            parts.push_back({first, std::move(p)});
        }
        std::sort(parts.begin(), parts.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
        partials_.clear();
        for (auto& [first, p] : parts)
            for (auto& block : p) partials_.push_back(std::move(block));
    }
    // every block in block order, then the bands in band order
    Statistics s;
    s.hist_offset = offset;
    s.binned = result_.binned;
    s.hist_lo = result_.hist_lo;
    s.hist_width = result_.hist_width;
    s.bands.assign(std::size_t(bands_), Moments{});
    for (const auto& block : partials_)
        for (int b = 0; b < bands_; ++b) s.bands[std::size_t(b)].add(block[std::size_t(b)]);
    for (const Moments& m : s.bands) s.all.add(m);
    s.histograms = std::move(hist_);
    partials_.clear();
    if (share_ && share_->courier->ranks() > 1)
        result_ = decode(share_->courier->broadcast(encode(s)));
    else
        result_ = std::move(s);
}

}  // namespace tessera
