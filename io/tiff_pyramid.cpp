// Tiled and pyramid TIFF output in one pass.
//
// Level 0 tiles arrive from the evaluator in row-major order, already
// compressed in the parallel stage (prepare), and go straight into the TIFF.
// Each lower level keeps one strip (a tile row) of its pixels: every tile
// that arrives is shrunk 2x2 into the strip of the level below, and when a
// strip is complete its tiles are compressed, stored, and shrunk in turn. So
// memory is one strip per level (less than one level-0 strip in all), and
// nothing is read back from the output.
//
// libtiff writes one directory (IFD) at a time, so the lower levels' tile
// bytes wait in an unlinked temporary file beside the output (a third of the
// data at most) and are copied in, raw, after level 0's directory.
#include "tiff_pyramid.hpp"

#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <tiffio.h>
#include <unistd.h>

#include "tessera/core/error.hpp"

namespace tessera::io {

namespace {

// libtiff reports through a global handler: keep the last message of this
// thread, so the IoError can say what libtiff said.
thread_local std::string t_tiff_error;
extern "C" void tiff_error_handler(const char* module, const char* fmt, va_list ap) {
    char buf[1024];
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    t_tiff_error = (module ? std::string(module) + ": " : std::string()) + buf;
}
void install_tiff_handlers() {
    static std::once_flag once;
    std::call_once(once, [] {
        TIFFSetErrorHandler(tiff_error_handler);
        TIFFSetWarningHandler(nullptr);
    });
}

std::string temp_name_beside(const std::string& path, const char* what) {
    static std::atomic<unsigned> counter{0};
    namespace fs = std::filesystem;
    fs::path p(path);
    std::string name = "." + p.filename().string() + ".tessera-" + std::to_string(getpid()) + "-" +
                       std::to_string(counter++) + what;
    return (p.parent_path() / name).string();
}

struct TileRecord {
    std::uint64_t offset = 0;
    std::uint64_t size = 0;
};

struct Level {
    int width = 0, height = 0;
    int tiles_x = 0, tiles_y = 0;
    Buffer strip;                    // levels >= 1: one tile row of pixels
    std::vector<TileRecord> tiles;   // levels >= 1: where each tile's bytes wait
};

class TiffSink final : public Sink {
public:
    TiffSink(std::string path, TiffOptions opt) : path_(std::move(path)), opt_(opt) { install_tiff_handlers(); }
    ~TiffSink() override { abort(); }

    std::optional<Point> tile_size() const override { return Point{opt_.tile_w, opt_.tile_h}; }

    void start(const ImageInfo& info, int tile_w, int tile_h) override {
        info_ = info;
        const int T = opt_.tile_w, TH = opt_.tile_h;
        // the levels: 2x smaller (rounded down) until one fits in a tile
        levels_.clear();
        for (int w = info.width, h = info.height;;) {
            Level l;
            l.width = w;
            l.height = h;
            l.tiles_x = (w + T - 1) / T;
            l.tiles_y = (h + TH - 1) / TH;
            levels_.push_back(std::move(l));
            if (!opt_.pyramid || (w <= T && h <= TH) || w < 2 || h < 2) break;
            w /= 2;
            h /= 2;
        }
        std::uint64_t raw = 0;
        for (const Level& l : levels_) raw += std::uint64_t(l.tiles_x) * l.tiles_y * T * TH * info.pixel_bytes();
        bool big = opt_.bigtiff == TiffOptions::BigTiff::yes ||
                   (opt_.bigtiff == TiffOptions::BigTiff::automatic && raw > (std::uint64_t(1) << 32) - (64u << 20));
        if (opt_.bigtiff == TiffOptions::BigTiff::no && raw > (std::uint64_t(1) << 32) - (64u << 20) &&
            opt_.codec.compression == Compression::none)
            throw IoError(path_, "the image needs more than 4 GB uncompressed; use bigtiff (auto or yes)");

        tmp_ = temp_name_beside(path_, ".tmp");
        tif_ = TIFFOpen(tmp_.c_str(), big ? "w8" : "w");
        if (!tif_) fail("cannot create the output file (" + t_tiff_error + "); check the folder exists and is writable");
        if (levels_.size() > 1) {
            std::string lp = temp_name_beside(path_, ".levels");
            levels_file_ = std::fopen(lp.c_str(), "w+b");
            if (!levels_file_) fail("cannot create a temporary file beside the output: " + std::string(std::strerror(errno)));
            ::unlink(lp.c_str());  // gone from the folder; freed when closed
        }
        for (std::size_t i = 1; i < levels_.size(); ++i) {
            Level& l = levels_[i];
            l.strip = Buffer(account_, {0, 0, l.width, TH}, info.bands, info.format);
            double zero = 0;
            fill_pixels(l.strip.tile(), &zero, 1);
            l.tiles.resize(std::size_t(l.tiles_x) * l.tiles_y);
        }
        if (opt_.codec.compression == Compression::jpeg) jpeg_tables_ = opt_.codec.jpeg_tables(info.bands);
        set_tags(0);
        (void)tile_w;
        (void)tile_h;
    }

    std::shared_ptr<void> prepare(const ConstTile& tile) override {
        if (!opt_.codec.encodes_raw()) return nullptr;
        return std::make_shared<std::vector<std::uint8_t>>(opt_.codec.encode(tile, opt_.tile_w, opt_.tile_h));
    }

    void write(const ConstTile& tile) override { consume(tile, prepare(tile)); }

    void consume(const ConstTile& tile, std::shared_ptr<void> prepared) override {
        int tx = tile.rect.x / opt_.tile_w, ty = tile.rect.y / opt_.tile_h;
        auto* bytes = static_cast<std::vector<std::uint8_t>*>(prepared.get());
        std::vector<std::uint8_t> own;
        if (!bytes) {
            own = pad_tile(tile, opt_.tile_w, opt_.tile_h);
            bytes = &own;
        }
        write_level0(ty * levels_[0].tiles_x + tx, *bytes);
        feed(0, tile, tx, ty);
    }

    void finish() override {
        if (!tif_) return;
        if (!TIFFWriteDirectory(tif_)) fail("cannot write the TIFF directory (" + t_tiff_error + ")");
        // lower levels, from the temporary file, raw
        if (levels_file_ && std::fflush(levels_file_) != 0)
            fail("cannot write the temporary level file: " + std::string(std::strerror(errno)) + "; is the disk full?");
        std::vector<std::uint8_t> bytes;
        for (std::size_t L = 1; L < levels_.size(); ++L) {
            set_tags(int(L));
            const Level& l = levels_[L];
            for (std::size_t i = 0; i < l.tiles.size(); ++i) {
                bytes.resize(l.tiles[i].size);
                if (pread(fileno(levels_file_), bytes.data(), bytes.size(), off_t(l.tiles[i].offset)) !=
                    ssize_t(bytes.size()))
                    fail("cannot read back the temporary level file: " + std::string(std::strerror(errno)));
                write_tile(uint32_t(i), bytes);
            }
            if (!TIFFWriteDirectory(tif_)) fail("cannot write the TIFF directory (" + t_tiff_error + ")");
        }
        TIFF* t = tif_;
        tif_ = nullptr;
        TIFFClose(t);  // TIFFClose flushes; a failure shows as a short file below
        close_levels();
        std::error_code ec;
        std::filesystem::rename(tmp_, path_, ec);
        if (ec) {
            std::filesystem::remove(tmp_, ec);
            throw IoError(path_, "cannot move the finished file into place: " + ec.message());
        }
        tmp_.clear();
    }

    void abort() noexcept override {
        if (tif_) {
            TIFFClose(tif_);
            tif_ = nullptr;
        }
        close_levels();
        if (!tmp_.empty()) {
            std::error_code ec;
            std::filesystem::remove(tmp_, ec);
            tmp_.clear();
        }
    }

private:
    [[noreturn]] void fail(const std::string& msg) { throw IoError(path_, msg); }

    void close_levels() {
        if (levels_file_) std::fclose(levels_file_);
        levels_file_ = nullptr;
    }

    void set_tags(int L) {
        const Level& l = levels_[L];
        const ImageInfo& in = info_;
        TIFFSetField(tif_, TIFFTAG_IMAGEWIDTH, uint32_t(l.width));
        TIFFSetField(tif_, TIFFTAG_IMAGELENGTH, uint32_t(l.height));
        TIFFSetField(tif_, TIFFTAG_TILEWIDTH, uint32_t(opt_.tile_w));
        TIFFSetField(tif_, TIFFTAG_TILELENGTH, uint32_t(opt_.tile_h));
        TIFFSetField(tif_, TIFFTAG_SAMPLESPERPIXEL, uint16_t(in.bands));
        TIFFSetField(tif_, TIFFTAG_BITSPERSAMPLE, uint16_t(8 * format_size(in.format)));
        TIFFSetField(tif_, TIFFTAG_SAMPLEFORMAT,
                     uint16_t(format_is_float(in.format)                                   ? SAMPLEFORMAT_IEEEFP
                              : (in.format == Format::i16 || in.format == Format::i32) ? SAMPLEFORMAT_INT
                                                                                       : SAMPLEFORMAT_UINT));
        TIFFSetField(tif_, TIFFTAG_PLANARCONFIG, uint16_t(PLANARCONFIG_CONTIG));
        TIFFSetField(tif_, TIFFTAG_SOFTWARE, "tessera");
        if (L > 0) TIFFSetField(tif_, TIFFTAG_SUBFILETYPE, uint32_t(FILETYPE_REDUCEDIMAGE));
        bool colour = in.bands >= 3 && in.interpretation != Interpretation::multiband;
        uint16_t photometric = colour ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK;
        if ((colour && in.bands == 4) || (!colour && in.bands == 2)) {
            uint16_t extra = EXTRASAMPLE_UNASSALPHA;
            TIFFSetField(tif_, TIFFTAG_EXTRASAMPLES, uint16_t(1), &extra);
        }
        switch (opt_.codec.compression) {
            case Compression::none: TIFFSetField(tif_, TIFFTAG_COMPRESSION, uint16_t(COMPRESSION_NONE)); break;
            case Compression::deflate: TIFFSetField(tif_, TIFFTAG_COMPRESSION, uint16_t(COMPRESSION_ADOBE_DEFLATE)); break;
            case Compression::lzw: TIFFSetField(tif_, TIFFTAG_COMPRESSION, uint16_t(COMPRESSION_LZW)); break;
            case Compression::zstd: TIFFSetField(tif_, TIFFTAG_COMPRESSION, uint16_t(COMPRESSION_ZSTD)); break;
            case Compression::jpeg:
                TIFFSetField(tif_, TIFFTAG_COMPRESSION, uint16_t(COMPRESSION_JPEG));
                // tiles are abbreviated streams: the shared tables live here
                TIFFSetField(tif_, TIFFTAG_JPEGTABLES, uint32_t(jpeg_tables_.size()), jpeg_tables_.data());
                if (in.bands == 3) {
                    photometric = PHOTOMETRIC_YCBCR;
                    uint16_t f = uint16_t(jpeg_chroma_subsampling(opt_.codec.quality));
                    TIFFSetField(tif_, TIFFTAG_YCBCRSUBSAMPLING, f, f);
                }
                break;
        }
        TIFFSetField(tif_, TIFFTAG_PHOTOMETRIC, photometric);
    }

    void write_tile(uint32_t index, std::vector<std::uint8_t>& bytes) {
        tmsize_t n = opt_.codec.encodes_raw()
                         ? TIFFWriteRawTile(tif_, index, bytes.data(), tmsize_t(bytes.size()))
                         : TIFFWriteEncodedTile(tif_, index, bytes.data(), tmsize_t(bytes.size()));
        if (n < 0) fail("cannot write a tile (" + t_tiff_error + "); is the disk full?");
    }

    void write_level0(std::size_t index, std::vector<std::uint8_t>& bytes) { write_tile(uint32_t(index), bytes); }

    // A finished tile of level L at grid (tx, ty): shrink it into level L+1's
    // strip; the last tile of an odd row (or of the last row) completes it.
    void feed(std::size_t L, const ConstTile& tile, int tx, int ty) {
        if (L + 1 >= levels_.size()) return;
        Level& next = levels_[L + 1];
        const int TH = opt_.tile_h;
        int strip_y = (ty * TH / 2) / TH;  // the next level's tile row this lands in
        Tile strip = next.strip.tile().moved(0, strip_y * TH);
        Rect dst = Rect{tile.rect.x / 2, tile.rect.y / 2, tile.rect.right() / 2 - tile.rect.x / 2,
                        tile.rect.bottom() / 2 - tile.rect.y / 2}
                       .intersect(Rect{0, 0, next.width, next.height})
                       .intersect(strip.rect);
        shrink2x2(tile, strip.sub(dst));
        bool row_done = tx == levels_[L].tiles_x - 1;
        bool strip_done = row_done && (ty % 2 == 1 || ty == levels_[L].tiles_y - 1);
        if (strip_done && strip_y < next.tiles_y) flush_strip(L + 1, strip_y);
    }

    // Level L's strip holds its tile row sy: store its tiles, feed them down.
    void flush_strip(std::size_t L, int sy) {
        Level& l = levels_[L];
        const int T = opt_.tile_w, TH = opt_.tile_h;
        Tile strip = l.strip.tile().moved(0, sy * TH);
        for (int tx = 0; tx < l.tiles_x; ++tx) {
            Rect r = Rect{tx * T, sy * TH, T, TH}.intersect(Rect{0, 0, l.width, l.height});
            ConstTile t = strip.sub(r);
            std::vector<std::uint8_t> bytes = opt_.codec.encodes_raw() ? opt_.codec.encode(t, T, TH) : pad_tile(t, T, TH);
            TileRecord& rec = l.tiles[std::size_t(sy) * l.tiles_x + tx];
            rec.offset = levels_end_;
            rec.size = bytes.size();
            if (std::fwrite(bytes.data(), 1, bytes.size(), levels_file_) != bytes.size())
                fail("cannot write the temporary level file: " + std::string(std::strerror(errno)) +
                     "; is the disk full?");
            levels_end_ += bytes.size();
            feed(L, t, tx, sy);
        }
        double zero = 0;
        fill_pixels(l.strip.tile(), &zero, 1);
    }

    // dst (next level's frame) = 2x2 box average of src (this level's frame),
    // rounding to nearest for integers like libvips's pyramid shrink.
    static void shrink2x2(const ConstTile& src, const Tile& dst) {
        if (dst.rect.empty()) return;
        dispatch_format(src.format, [&](auto t) {
            using T = decltype(t);
            const int nb = src.bands;
            for (int y = dst.rect.y; y < dst.rect.bottom(); ++y) {
                const T* a = src.row<T>(2 * y);
                const T* b = src.row<T>(2 * y + 1);
                T* o = dst.row<T>(y);
                for (int x = dst.rect.x; x < dst.rect.right(); ++x) {
                    std::size_t i = std::size_t(2 * x - src.rect.x) * nb;
                    for (int k = 0; k < nb; ++k) {
                        if constexpr (std::is_floating_point_v<T>) {
                            o[std::size_t(x - dst.rect.x) * nb + k] =
                                T((double(a[i + k]) + a[i + nb + k] + b[i + k] + b[i + nb + k]) / 4);
                        } else {
                            std::int64_t s = std::int64_t(a[i + k]) + a[i + nb + k] + b[i + k] + b[i + nb + k];
                            o[std::size_t(x - dst.rect.x) * nb + k] = T((s + 2) >> 2);
                        }
                    }
                }
            }
        });
    }

    std::string path_;
    TiffOptions opt_;
    ImageInfo info_;
    std::vector<Level> levels_;
    std::vector<std::uint8_t> jpeg_tables_;
    std::string tmp_;
    TIFF* tif_ = nullptr;
    std::FILE* levels_file_ = nullptr;
    std::uint64_t levels_end_ = 0;
};

}  // namespace

void check_tiff_options(const ImageInfo& info, const TiffOptions& o) {
    if (o.tile_w % 16 || o.tile_h % 16 || o.tile_w < 16 || o.tile_h < 16 || o.tile_w > 8192 || o.tile_h > 8192)
        throw ParamError("tile_width", "TIFF tiles are multiples of 16 between 16 and 8192 pixels; got " +
                                           std::to_string(o.tile_w) + "x" + std::to_string(o.tile_h));
    if (o.codec.compression == Compression::jpeg && (info.format != Format::u8 || (info.bands != 1 && info.bands != 3)))
        throw ParamError("compression", "JPEG holds 1 or 3 bands of u8, and this image has " + std::to_string(info.bands) +
                                            " bands of " + std::string(format_name(info.format)) +
                                            "; use deflate, zstd or lzw, or cast first");
    if (o.codec.quality < 1 || o.codec.quality > 100)
        throw ParamError("quality", "use a JPEG quality in [1, 100]");
}

std::unique_ptr<Sink> make_tiff_sink(const std::string& path, const TiffOptions& options) {
    return std::make_unique<TiffSink>(path, options);
}

}  // namespace tessera::io
