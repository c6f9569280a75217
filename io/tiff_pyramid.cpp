// Tiled and pyramid TIFF output in one pass.
//
// Order. A TIFF's tiles can be written in any order, so this writer asks for
// level 0 in vertical bands of TiffOptions::band_width columns (rounded to a
// power-of-two number of tiles, so that every band-local level's tiles lie
// inside one band), top to bottom within a
// band: what must be live at once (the inputs' decode windows, the pyramid
// strips) is then one band wide, whatever the image's width. Within a band
// row its lanes (quarters) are interleaved, so that tiles computed at once
// are far apart and rarely wait on the same input.
//
// Levels. Every level-0 tile is compressed and shrunk 2x2 in the parallel
// stage (prepare); the serial stage writes its bytes and drops the shrunk
// block into the next level's strip (one band wide, one tile high). When a
// strip is complete its tiles are queued for compression (taken up by
// workers in later prepare calls) and shrunk into the level below, and so
// on. Levels whose tiles span more than one band (the small ones at the top)
// are kept whole in memory instead and finished at the end.
//
// Georeference. An image with a GeoRef is written as a GeoTIFF: GDAL turns
// the geotransform, CRS and nodata into GeoTIFF tags (gdal_common.hpp), which
// go into level 0's directory like any other tag.
//
// Layout. libtiff writes one directory (IFD) at a time, so the lower levels'
// tile bytes wait in an unlinked temporary file beside the output (a third
// of the data at most) and are copied in, raw, after level 0's directory.
// A COG wants the opposite: every directory first, then the levels' data from
// the smallest to level 0. There level 0's bytes wait in the temporary file
// too, and finish() writes the directories with their tile arrays deferred
// (libtiff's TIFFDeferStrileArrayWriting), then each level's tiles in
// row-major order, then the arrays.
#include "tiff_pyramid.hpp"

#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <limits>
#include <map>
#include <span>
#include <tuple>
#include <mutex>
#include <tiffio.h>
#include <unistd.h>

#include "gdal_common.hpp"
#include "temp_beside.hpp"
#include "tessera/core/error.hpp"
#include "tessera/core/temporaries.hpp"

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
// The GeoTIFF tags and GDAL_NODATA, so that libtiff lets us set them. GDAL
// registers the same ones (with the same types) when it is initialised;
// whichever comes first defines them.
TIFFFieldInfo kGeoFields[] = {
    {33550, -1, -1, TIFF_DOUBLE, FIELD_CUSTOM, 1, 1, const_cast<char*>("ModelPixelScaleTag")},
    {33922, -1, -1, TIFF_DOUBLE, FIELD_CUSTOM, 1, 1, const_cast<char*>("ModelTiepointTag")},
    {34264, -1, -1, TIFF_DOUBLE, FIELD_CUSTOM, 1, 1, const_cast<char*>("ModelTransformationTag")},
    {34735, -1, -1, TIFF_SHORT, FIELD_CUSTOM, 1, 1, const_cast<char*>("GeoKeyDirectoryTag")},
    {34736, -1, -1, TIFF_DOUBLE, FIELD_CUSTOM, 1, 1, const_cast<char*>("GeoDoubleParamsTag")},
    {34737, -1, -1, TIFF_ASCII, FIELD_CUSTOM, 1, 0, const_cast<char*>("GeoAsciiParamsTag")},
    {42113, -1, -1, TIFF_ASCII, FIELD_CUSTOM, 1, 0, const_cast<char*>("GDALNoDataValue")},
};
TIFFExtendProc g_parent_extender = nullptr;
extern "C" void geo_tag_extender(TIFF* tif) {
    if (g_parent_extender) g_parent_extender(tif);
    for (TIFFFieldInfo& f : kGeoFields)
        if (!TIFFFindField(tif, f.field_tag, TIFF_ANY)) TIFFMergeFieldInfo(tif, &f, 1);
}

void install_tiff_handlers() {
    static std::once_flag once;
    std::call_once(once, [] {
        TIFFSetErrorHandler(tiff_error_handler);
        TIFFSetWarningHandler(nullptr);
        g_parent_extender = TIFFSetTagExtender(geo_tag_extender);
    });
}

struct TileRecord {
    std::uint64_t offset = 0;
    std::uint64_t size = 0;
};


struct Level {
    int width = 0, height = 0;
    int tiles_x = 0, tiles_y = 0;
    Buffer pixels;                  // whole levels (above the band-local ones): the whole level
    std::vector<TileRecord> tiles;  // where each tile's bytes wait in the level file
};

// A band-local level's tile row within one band, filling up with the shrunk
// blocks of the level above: complete when `placed` reaches `needed`.
struct Strip {
    Buffer pixels;  // in the level's frame
    int placed = 0;
};

// What a producer rank sends the writer in a sharded run (one message
// each): a compressed tile, or a block of pixels for a level the writer
// finishes, or the end of its part.
struct RecordHead {
    enum Kind : std::uint32_t { tile = 1, pixels = 2, end = 3 };
    std::uint32_t kind = 0, level = 0;
    std::int32_t a = 0, b = 0;          // tile: index; pixels: the tile (a, b) of level - 1 it came from
    std::int32_t x = 0, y = 0, w = 0, h = 0;  // pixels: where, in the level's frame
};

class TiffSink final : public Sink {
public:
    TiffSink(std::string path, TiffOptions opt) : path_(std::move(path)), opt_(opt) { install_tiff_handlers(); }
    ~TiffSink() override { abort(); }

    std::optional<Point> tile_size() const override { return Point{opt_.tile_w, opt_.tile_h}; }

    std::vector<std::uint32_t> tile_order(int cols, int rows) const override {
        return band_tile_order(cols, rows, band_tiles());
    }

    // A share is a run of whole units: one band's rows [k R, (k + 1) R),
    // contiguous in the band order. Every strip of levels 1..log2(R) then
    // lies inside one unit, so a rank finishes those levels of its share
    // itself; the writer finishes the levels above from the blocks the ranks
    // send. R is the tallest that still gives every rank several units to
    // balance with. The bytes do not depend on it: every tile is the same
    // and the writer lays each level out in its own order.
    std::vector<std::size_t> share_starts(int cols, int rows, int ranks) const override {
        return band_share_starts(cols, rows, band_tiles(), unit_rows(cols, rows, ranks));
    }
    // The writer shrinks and compresses the levels above the ranks' own:
    // each a quarter of the one above, a third of level 0 in all from
    // level 1 on.
    std::uint64_t writer_cost(int cols, int rows, int ranks) const override {
        if (!opt_.pyramid) return 0;
        const int unit = unit_rows(cols, rows, ranks);
        int own = 0;
        while ((2 << own) <= unit) ++own;
        const double level0 = double(cols) * opt_.tile_w * double(rows) * opt_.tile_h;
        return std::uint64_t(level0 / std::pow(4.0, own + 1) * 4 / 3);
    }

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
        // levels 1..local_ fit the bands; those above are kept whole
        local_ = 0;
        while (local_ + 1 < levels_.size() && (1 << (local_ + 1)) <= band_tiles()) ++local_;
        std::uint64_t raw = 0;
        for (const Level& l : levels_) raw += std::uint64_t(l.tiles_x) * l.tiles_y * T * TH * info.pixel_bytes();
        bool big = opt_.bigtiff == TiffOptions::BigTiff::yes ||
                   (opt_.bigtiff == TiffOptions::BigTiff::automatic && raw > (std::uint64_t(1) << 32) - (64u << 20));
        if (opt_.bigtiff == TiffOptions::BigTiff::no && raw > (std::uint64_t(1) << 32) - (64u << 20) &&
            opt_.codec.compression == Compression::none)
            throw IoError(path_, "the image needs more than 4 GB uncompressed; use bigtiff (auto or yes)");

        big_ = big;
        nodata_ = info.geo && !info.geo->nodata.empty() ? info.geo->nodata[0] : std::nullopt;
        // sharded: this rank finishes the band-local levels 1..own_ of its
        // share; the writer finishes the rest
        own_ = local_;
        if (share_) {
            int unit = unit_rows(levels_[0].tiles_x, levels_[0].tiles_y, share_->courier->ranks());
            for (own_ = 0; (2 << own_) <= unit && own_ < local_;) ++own_;
            order_ = band_tile_order(levels_[0].tiles_x, levels_[0].tiles_y, band_tiles());
        }
        if (producer()) return;  // no file: everything goes to the writer
        if (info.geo) geo_tags_ = geotiff_tags(*info.geo, path_);
        remove_stale_temporaries(path_);
        tmp_ = temp_beside(path_, ".tmp");
        tmp_slot_ = track_temporary(tmp_);
        // a COG's directories come first, when every tile's size is known
        if (!opt_.cog) open_tiff();
        if (levels_.size() > 1 || opt_.cog || share_) {
            std::string lp = temp_beside(path_, ".levels");
            levels_file_ = std::fopen(lp.c_str(), "w+b");
            if (!levels_file_) fail("cannot create a temporary file beside the output: " + std::string(std::strerror(errno)));
            ::unlink(lp.c_str());  // gone from the folder; freed when closed
        }
        if (opt_.cog || share_) levels_[0].tiles.resize(std::size_t(levels_[0].tiles_x) * levels_[0].tiles_y);
        for (std::size_t L = 1; L < levels_.size(); ++L) {
            Level& l = levels_[L];
            if (L > local_) {
                l.pixels = Buffer(account_, Rect{0, 0, l.width, l.height}, info.bands, info.format);
                clear(l.pixels);
            }
            l.tiles.resize(std::size_t(l.tiles_x) * l.tiles_y);
        }
        if (!opt_.cog) set_tags(0);
        (void)tile_w;
        (void)tile_h;
    }

    // Parallel: compress the tile, shrink it for the next level, and take
    // one waiting lower-level tile to compress.
    struct Prepared {
        std::vector<std::uint8_t> bytes;
        Buffer half;
    };
    std::shared_ptr<void> prepare(const ConstTile& tile) override {
        auto p = std::make_shared<Prepared>();
        p->bytes = opt_.codec.encodes_raw() ? opt_.codec.encode(tile, opt_.tile_w, opt_.tile_h)
                                            : pad_tile(tile, opt_.tile_w, opt_.tile_h);
        if (levels_.size() > 1) {
            p->half = Buffer(account_, half_of(tile.rect, levels_[1]), tile.bands, tile.format);
            shrink2x2(tile, p->half.tile(), nodata_);
        }
        run_one_job();
        return p;
    }

    void write(const ConstTile& tile) override { consume(tile, prepare(tile)); }

    void consume(const ConstTile& tile, std::shared_ptr<void> prepared) override {
        int tx = tile.rect.x / opt_.tile_w, ty = tile.rect.y / opt_.tile_h;
        auto* p = static_cast<Prepared*>(prepared.get());
        const auto index = uint32_t(ty * levels_[0].tiles_x + tx);
        put_tile(0, index, p->bytes, false);
        if (levels_.size() > 1) {
            hand_up(1, p->half.view(), tx, ty);
            p->half.reset();
        }
        store_done_jobs();
        if (writer()) receive_parts(false);  // keeps the producers' sends moving
    }

    void finish() override {
        if (producer()) {
            encode_queued();
            store_done_jobs();
            send(RecordHead{RecordHead::end}, {});
            share_->courier->flush();
            strips_.clear();
            return;
        }
        if (tmp_.empty()) return;  // not started, or aborted
        if (writer()) {
            encode_queued();
            store_done_jobs();
            // until every producer has finished: take in what arrives, and
            // meanwhile compress the tiles of the levels this rank finishes
            while (ends_ < share_->courier->ranks() - 1) {
                if (receive_parts(false)) continue;
                if (run_one_job()) {
                    store_done_jobs();
                    continue;
                }
                receive_parts(true);
            }
        }
        if (!strips_.empty()) fail("internal: a pyramid strip was never completed");
        // the whole levels at the top, each from the one below
        for (std::size_t L = local_ + 1; L < levels_.size(); ++L) {
            Level& l = levels_[L];
            for (int ty = 0; ty < l.tiles_y; ++ty)
                for (int tx = 0; tx < l.tiles_x; ++tx) {
                    Rect r = Rect{tx * opt_.tile_w, ty * opt_.tile_h, opt_.tile_w, opt_.tile_h}.intersect(
                        Rect{0, 0, l.width, l.height});
                    ConstTile t = l.pixels.view().sub(r);
                    queue_tile(L, tx, ty, t);
                    if (L + 1 < levels_.size())
                        shrink2x2(t, levels_[L + 1].pixels.tile().sub(half_of(r, levels_[L + 1])), nodata_);
                }
        }
        encode_queued();
        store_done_jobs();
        if (!waiting_.empty()) fail("internal: a pyramid tile was never compressed");
        if (levels_file_ && std::fflush(levels_file_) != 0)
            fail("cannot write the temporary level file: " + std::string(std::strerror(errno)) + "; is the disk full?");
        if (opt_.cog)
            write_cog();
        else
            write_levels_after_first();
        TIFF* t = tif_;
        tif_ = nullptr;
        TIFFClose(t);
        close_levels();
        for (Level& l : levels_) l.pixels.reset();
        if (is_vsi_path(path_)) {  // a GDAL target (/vsimem/...): copied in, then the local file goes
            copy_to_vsi(tmp_, path_);
            std::error_code ec;
            std::filesystem::remove(tmp_, ec);
        } else {
            std::error_code ec;
            std::filesystem::rename(tmp_, path_, ec);
            if (ec) {
                std::filesystem::remove(tmp_, ec);
                throw IoError(path_, "cannot move the finished file into place: " + ec.message());
            }
        }
        tmp_.clear();
        untrack_temporary(tmp_slot_);
        tmp_slot_ = -1;
    }

    void abort() noexcept override {
        {
            std::lock_guard lock(jobs_mu_);
            queue_.clear();
        }
        for (auto& j : waiting_)
            if (account_) account_->release(j->pixels.size());
        waiting_.clear();
        for (Level& l : levels_) l.pixels.reset();
        strips_.clear();
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
        untrack_temporary(tmp_slot_);
        tmp_slot_ = -1;
    }

private:
    [[noreturn]] void fail(const std::string& msg) { throw IoError(path_, msg); }

    void open_tiff() {
        tif_ = TIFFOpen(tmp_.c_str(), big_ ? "w8" : "w");
        if (!tif_) fail("cannot create the output file (" + t_tiff_error + "); check the folder exists and is writable");
        if (opt_.codec.compression == Compression::jpeg) jpeg_tables_ = opt_.codec.jpeg_tables(info_.bands);
    }

    // Appends bytes to the temporary file; where they are.
    TileRecord store(const std::vector<std::uint8_t>& bytes) {
        TileRecord rec{levels_end_, bytes.size()};
        if (std::fwrite(bytes.data(), 1, bytes.size(), levels_file_) != bytes.size())
            fail("cannot write the temporary level file: " + std::string(std::strerror(errno)) + "; is the disk full?");
        levels_end_ += bytes.size();
        return rec;
    }

    // Writes level L's tiles, row-major, from the temporary file.
    void copy_level(std::size_t L) {
        for (std::size_t i = 0; i < levels_[L].tiles.size(); ++i) copy_tile(L, uint32_t(i));
    }
    void copy_tile(std::size_t L, uint32_t i) {
        const TileRecord& t = levels_[L].tiles[i];
        copy_bytes_.resize(t.size);
        if (pread(fileno(levels_file_), copy_bytes_.data(), t.size, off_t(t.offset)) != ssize_t(t.size))
            fail("cannot read back the temporary level file: " + std::string(std::strerror(errno)));
        write_tile(i, copy_bytes_);
    }

    // Level 0 was written tile by tile (a sharded writer's own share; the
    // other ranks' tiles wait in the level file and follow, in the same
    // order); its directory, then the others.
    void write_levels_after_first() {
        if (share_)
            for (std::size_t k = share_->last; k < order_.size(); ++k) copy_tile(0, order_[k]);
        if (!TIFFWriteDirectory(tif_)) fail("cannot write the TIFF directory (" + t_tiff_error + ")");
        for (std::size_t L = 1; L < levels_.size(); ++L) {
            set_tags(int(L));
            copy_level(L);
            if (!TIFFWriteDirectory(tif_)) fail("cannot write the TIFF directory (" + t_tiff_error + ")");
        }
    }

    // The COG layout: directories (tile arrays deferred), then the data from
    // the smallest level up, then the arrays.
    void write_cog() {
        open_tiff();
        for (std::size_t L = 0; L < levels_.size(); ++L) {
            set_tags(int(L));
            if (!TIFFDeferStrileArrayWriting(tif_) || !TIFFWriteCheck(tif_, 1, "tessera") ||
                !TIFFWriteDirectory(tif_))
                fail("cannot write the TIFF directory (" + t_tiff_error + ")");
        }
        for (std::size_t L = levels_.size(); L-- > 0;) {
            if (!TIFFSetDirectory(tif_, tdir_t(L))) fail("cannot go back to a TIFF directory (" + t_tiff_error + ")");
            copy_level(L);
            if (!TIFFForceStrileArrayWriting(tif_)) fail("cannot write the tile offsets (" + t_tiff_error + ")");
        }
    }

    // Level-0 tiles per band: a power of two, at least 2.
    int band_tiles() const {
        int n = 2;
        while (n * 2 * opt_.tile_w <= opt_.band_width) n *= 2;
        return n;
    }

    static void clear(Buffer& b) {
        double zero = 0;
        fill_pixels(b.tile(), &zero, 1);
    }

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
        if (in.geo && in.geo->alpha_band >= 0 && in.geo->alpha_band == in.bands - 1 && in.bands > (colour ? 3 : 1)) {
            // a georeferenced alpha band (e.g. a mask from gdal_load): the
            // last extra sample, so GDAL reads it back as alpha
            std::vector<uint16_t> extra(std::size_t(in.bands - (colour ? 3 : 1)), EXTRASAMPLE_UNSPECIFIED);
            extra.back() = EXTRASAMPLE_UNASSALPHA;
            TIFFSetField(tif_, TIFFTAG_EXTRASAMPLES, uint16_t(extra.size()), extra.data());
        } else if ((colour && in.bands == 4) || (!colour && in.bands == 2)) {
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
        if (opt_.codec.predictor && (opt_.codec.compression == Compression::deflate ||
                                     opt_.codec.compression == Compression::zstd ||
                                     opt_.codec.compression == Compression::lzw))
            TIFFSetField(tif_, TIFFTAG_PREDICTOR, uint16_t(PREDICTOR_HORIZONTAL));
        if (L == 0)
            for (const TiffTag& t : geo_tags_) {
                if (t.type == TIFF_ASCII) {
                    std::string text(t.data.begin(), t.data.end());
                    TIFFSetField(tif_, t.tag, text.c_str());  // stops at the terminating NUL
                } else {
                    TIFFSetField(tif_, t.tag, uint32_t(t.count), t.data.data());
                }
            }
    }

    void write_tile(uint32_t index, std::vector<std::uint8_t>& bytes) {
        tmsize_t n = opt_.codec.encodes_raw()
                         ? TIFFWriteRawTile(tif_, index, bytes.data(), tmsize_t(bytes.size()))
                         : TIFFWriteEncodedTile(tif_, index, bytes.data(), tmsize_t(bytes.size()));
        if (n < 0) fail("cannot write a tile (" + t_tiff_error + "); is the disk full?");
    }

    // `half` is the shrunk block of tile (tx, ty) of level L-1, for level
    // L: placed here, unless this is a producer rank and level L is not its
    // own (then the writer places it).
    void hand_up(std::size_t L, const ConstTile& half, int tx, int ty) {
        if (!producer() || L <= own_) return place_half(L, half, tx, ty);
        RecordHead h{RecordHead::pixels, std::uint32_t(L), tx, ty, half.rect.x, half.rect.y, half.rect.w, half.rect.h};
        std::vector<std::byte> px(std::size_t(half.rect.area()) * info_.pixel_bytes());
        copy_pixels(half, Tile{half.rect, half.bands, half.format, px.data(),
                               std::size_t(half.rect.w) * info_.pixel_bytes()});
        send(h, px);
    }

    // Places the block in level L. For a band-local level, when every tile
    // of the band's two rows above has landed, the strip is complete and is
    // flushed. One strip per level is live at a time in one process; a
    // sharded writer may fill several at once, from different ranks.
    void place_half(std::size_t L, const ConstTile& half, int tx, int ty) {
        Level& l = levels_[L];
        if (L > local_) {  // a whole level: just keep the pixels
            copy_pixels(half, l.pixels.tile());
            return;
        }
        const Level& above = levels_[L - 1];
        const int cols = band_tiles() >> (L - 1);  // level L-1 tiles per band
        const int band = tx / cols;
        const int strip_y = ty / 2;
        if (strip_y >= l.tiles_y) return;  // rows the rounded-down level does not have
        auto [it, fresh] = strips_.try_emplace({L, band, strip_y});
        Strip& strip = it->second;
        if (fresh) {
            strip.pixels = Buffer(account_, Rect{band * (cols / 2) * opt_.tile_w, strip_y * opt_.tile_h,
                                                 (cols / 2) * opt_.tile_w, opt_.tile_h},
                                  info_.bands, info_.format);
            clear(strip.pixels);
        }
        copy_pixels(half, strip.pixels.tile());
        const int band_cols = std::min(cols, above.tiles_x - band * cols);
        const int band_rows = std::min(2, above.tiles_y - 2 * strip_y);
        if (++strip.placed == band_cols * band_rows) {
            Buffer done = std::move(strip.pixels);
            strips_.erase(it);
            flush_strip(L, band, strip_y, done.view());
        }
    }

    // A complete strip of band-local level L: queue its tiles for
    // compression, shrink them into the level below.
    void flush_strip(std::size_t L, int band, int sy, const ConstTile& strip) {
        Level& l = levels_[L];
        const int T = opt_.tile_w, TH = opt_.tile_h;
        const int cols = band_tiles() >> L;
        for (int tx = band * cols; tx < std::min((band + 1) * cols, l.tiles_x); ++tx) {
            Rect r = Rect{tx * T, sy * TH, T, TH}.intersect(Rect{0, 0, l.width, l.height});
            ConstTile t = strip.sub(r);
            queue_tile(L, tx, sy, t);
            if (L + 1 < levels_.size()) {
                Buffer half(account_, half_of(r, levels_[L + 1]), t.bands, t.format);
                shrink2x2(t, half.tile(), nodata_);
                hand_up(L + 1, half.view(), tx, sy);
            }
        }
    }

    // --- Sharded runs ---
    bool producer() const { return share_ && !share_->writer(); }
    bool writer() const { return share_ && share_->writer(); }

    // Units of R = 2^k level-0 tile rows (see share_starts): the tallest,
    // up to a band's height, that gives every rank at least 8 units.
    int unit_rows(int cols, int rows, int ranks) const {
        return band_unit_rows(cols, rows, band_tiles(), ranks);
    }

    void send(const RecordHead& h, std::span<const std::byte> payload) {
        std::vector<std::byte> m(sizeof h + payload.size());
        std::memcpy(m.data(), &h, sizeof h);
        if (!payload.empty()) std::memcpy(m.data() + sizeof h, payload.data(), payload.size());
        share_->courier->send(std::move(m));
    }

    // Writer: takes in what the producers sent (wait: at least one message);
    // whether anything came.
    bool receive_parts(bool wait) {
        std::vector<std::byte> m;
        bool any = false;
        while (share_->courier->receive(m, wait)) {
            wait = false;
            any = true;
            RecordHead h;
            if (m.size() < sizeof h) fail("internal: a short message from another rank");
            std::memcpy(&h, m.data(), sizeof h);
            const std::span<const std::byte> payload(m.data() + sizeof h, m.size() - sizeof h);
            switch (h.kind) {
                case RecordHead::tile: {
                    std::vector<std::uint8_t> bytes(payload.size());
                    if (!payload.empty()) std::memcpy(bytes.data(), payload.data(), payload.size());
                    put_tile(h.level, std::uint32_t(h.a), bytes, true);
                    break;
                }
                case RecordHead::pixels: {
                    const Rect r{h.x, h.y, h.w, h.h};
                    if (payload.size() != std::size_t(r.area()) * info_.pixel_bytes())
                        fail("internal: a pixel block from another rank has the wrong size");
                    place_half(h.level,
                               ConstTile(r, info_.bands, info_.format, payload.data(),
                                         std::size_t(r.w) * info_.pixel_bytes()),
                               h.a, h.b);
                    break;
                }
                case RecordHead::end: ++ends_; break;
                default: fail("internal: an unknown message from another rank");
            }
        }
        return any;
    }

    // A compressed tile of level L, for the file: written now (level 0 of
    // this process's own tiles, in order, when the layout is not a COG),
    // kept in the level file (the rest), or sent to the writer (producers).
    void put_tile(std::size_t L, std::uint32_t index, std::vector<std::uint8_t>& bytes, bool remote) {
        if (producer()) {
            send(RecordHead{RecordHead::tile, std::uint32_t(L), std::int32_t(index)},
                 std::as_bytes(std::span(bytes)));
            return;
        }
        if (L == 0 && !opt_.cog && !remote)
            write_tile(index, bytes);
        else
            levels_[L].tiles[index] = store(bytes);
    }

    // dst (next level's frame) = 2x2 box average of src (this level's frame),
    // rounding to nearest for integers like libvips's pyramid shrink.
    template <class T, int NB>
    static void shrink2x2_rows(const ConstTile& src, const Tile& dst, int nb) {
        const int bands = NB > 0 ? NB : nb;
        for (int y = dst.rect.y; y < dst.rect.bottom(); ++y) {
            const T* a = src.row<T>(2 * y) + std::size_t(2 * dst.rect.x - src.rect.x) * bands;
            const T* b = src.row<T>(2 * y + 1) + std::size_t(2 * dst.rect.x - src.rect.x) * bands;
            T* o = dst.row<T>(y);
            const int n = dst.rect.w;
            // Sums in the narrowest type that cannot overflow (unsigned for
            // u8/u16), which lets the compiler vectorise this loop.
            using Sum = std::conditional_t<std::is_floating_point_v<T>, double,
                                           std::conditional_t<(sizeof(T) <= 2 && std::is_unsigned_v<T>), std::uint32_t,
                                                              std::int64_t>>;
            for (int x = 0; x < n; ++x, a += 2 * bands, b += 2 * bands, o += bands)
                for (int k = 0; k < bands; ++k) {
                    Sum sum = Sum(a[k]) + Sum(a[bands + k]) + Sum(b[k]) + Sum(b[bands + k]);
                    if constexpr (std::is_floating_point_v<T>)
                        o[k] = T(sum / 4);
                    else
                        o[k] = T((sum + 2) >> 2);  // arithmetic shift: rounds half up, like libvips
                }
        }
    }
    // The same where some samples are nodata: the mean of the valid ones of
    // each 2x2 block (rounded to nearest for integers), nodata if none is.
    template <class T>
    static void shrink2x2_valid(const ConstTile& src, const Tile& dst, double nodata) {
        const int bands = src.bands;
        const bool nan = std::isnan(nodata);
        const T nd = nan ? T(0) : T(nodata);
        auto valid = [&](T v) {
            if constexpr (std::is_floating_point_v<T>)
                return nan ? !std::isnan(v) : v != nd;
            else
                return v != nd;
        };
        for (int y = dst.rect.y; y < dst.rect.bottom(); ++y) {
            const T* a = src.row<T>(2 * y) + std::size_t(2 * dst.rect.x - src.rect.x) * bands;
            const T* b = src.row<T>(2 * y + 1) + std::size_t(2 * dst.rect.x - src.rect.x) * bands;
            T* o = dst.row<T>(y);
            for (int x = 0; x < dst.rect.w; ++x, a += 2 * bands, b += 2 * bands, o += bands)
                for (int k = 0; k < bands; ++k) {
                    const T v[4] = {a[k], a[bands + k], b[k], b[bands + k]};
                    double sum = 0;
                    int n = 0;
                    for (T s : v)
                        if (valid(s)) sum += double(s), ++n;
                    if (n == 0)
                        o[k] = nan ? T(nodata) : nd;
                    else if constexpr (std::is_floating_point_v<T>)
                        o[k] = T(sum / n);
                    else
                        o[k] = T(std::floor(sum / n + 0.5));
                }
        }
    }
    static void shrink2x2(const ConstTile& src, const Tile& dst, const std::optional<double>& nodata) {
        if (dst.rect.empty()) return;
        dispatch_format(src.format, [&](auto t) {
            using T = decltype(t);
            // a nodata no sample can hold (e.g. -9999 for u16) marks nothing
            if (nodata && (std::isnan(*nodata) ? std::is_floating_point_v<T>
                                               : (*nodata >= double(std::numeric_limits<T>::lowest()) &&
                                                  *nodata <= double(std::numeric_limits<T>::max()) &&
                                                  double(T(*nodata)) == *nodata)))
                return shrink2x2_valid<T>(src, dst, *nodata);
            switch (src.bands) {
                case 1: return shrink2x2_rows<T, 1>(src, dst, 1);
                case 3: return shrink2x2_rows<T, 3>(src, dst, 3);
                case 4: return shrink2x2_rows<T, 4>(src, dst, 4);
                default: return shrink2x2_rows<T, 0>(src, dst, src.bands);
            }
        });
    }

    // The part of the next level a tile of this level shrinks to.
    static Rect half_of(const Rect& r, const Level& next) {
        return Rect{r.x / 2, r.y / 2, r.right() / 2 - r.x / 2, r.bottom() / 2 - r.y / 2}.intersect(
            Rect{0, 0, next.width, next.height});
    }

    // Lower-level tiles wait here for compression, done by worker threads in
    // prepare() (a job each call, beside its own tile), so that the serial
    // stage only copies and writes.
    struct Job {
        std::size_t level = 0;
        std::size_t index = 0;
        std::vector<std::uint8_t> pixels;  // the whole tile, padded
        std::vector<std::uint8_t> bytes;   // compressed
        std::atomic<bool> done{false};
    };
    bool run_one_job() {
        std::shared_ptr<Job> job;
        {
            std::lock_guard lock(jobs_mu_);
            if (queue_.empty()) return false;
            job = std::move(queue_.front());
            queue_.pop_front();
        }
        encode_job(*job);
        return true;
    }
    // What the workers did not get to, on this thread.
    void encode_queued() {
        for (std::shared_ptr<Job> job;;) {
            {
                std::lock_guard lock(jobs_mu_);
                if (queue_.empty()) return;
                job = std::move(queue_.front());
                queue_.pop_front();
            }
            encode_job(*job);
        }
    }
    void encode_job(Job& job) {
        if (opt_.codec.encodes_raw()) {
            ConstTile t({0, 0, opt_.tile_w, opt_.tile_h}, info_.bands, info_.format,
                        reinterpret_cast<const std::byte*>(job.pixels.data()), std::size_t(opt_.tile_w) * info_.pixel_bytes());
            job.bytes = opt_.codec.encode(t, opt_.tile_w, opt_.tile_h);
        } else {
            job.bytes = job.pixels;  // LZW: libtiff encodes when it copies the level in
        }
        job.done.store(true, std::memory_order_release);
    }
    // Serial: stores every finished job's bytes in the level file.
    void store_done_jobs() {
        while (!waiting_.empty() && waiting_.front()->done.load(std::memory_order_acquire)) {
            Job& j = *waiting_.front();
            put_tile(j.level, std::uint32_t(j.index), j.bytes, false);
            if (account_) account_->release(j.pixels.size());
            waiting_.pop_front();
        }
    }

    void queue_tile(std::size_t L, int tx, int ty, const ConstTile& t) {
        auto job = std::make_shared<Job>();
        job->level = L;
        job->index = std::size_t(ty) * levels_[L].tiles_x + tx;
        job->pixels = pad_tile(t, opt_.tile_w, opt_.tile_h);
        if (account_) account_->charge(job->pixels.size());
        {
            std::lock_guard lock(jobs_mu_);
            queue_.push_back(job);
        }
        waiting_.push_back(std::move(job));
    }

    std::string path_;
    TiffOptions opt_;
    ImageInfo info_;
    std::vector<Level> levels_;
    std::size_t local_ = 0;  // levels 1..local_ are kept a band strip at a time
    std::size_t own_ = 0;    // of those, the ones this process finishes (all, unless sharded)
    std::map<std::tuple<std::size_t, int, int>, Strip> strips_;  // (level, band, strip row) -> strip
    std::vector<std::uint32_t> order_;                           // sharded: the level-0 tile order
    int ends_ = 0;                                               // writer: producers finished
    std::vector<std::uint8_t> copy_bytes_;
    std::vector<std::uint8_t> jpeg_tables_;
    std::vector<TiffTag> geo_tags_;
    std::optional<double> nodata_;  // band 1's, as GeoTIFF keeps one
    bool big_ = false;
    std::string tmp_;
    int tmp_slot_ = -1;  // tmp_ in the signal handler's list (temporaries.hpp)
    TIFF* tif_ = nullptr;
    std::FILE* levels_file_ = nullptr;
    std::uint64_t levels_end_ = 0;
    std::mutex jobs_mu_;
    std::deque<std::shared_ptr<Job>> queue_;    // not yet taken by a worker
    std::deque<std::shared_ptr<Job>> waiting_;  // not yet stored, in queue order
};

}  // namespace

std::vector<std::uint32_t> band_tile_order(int cols, int rows, int band) {
    constexpr int kLanes = 4;
    std::vector<std::uint32_t> order;
    order.reserve(std::size_t(cols) * rows);
    for (int b0 = 0; b0 < cols; b0 += band) {
        const int n = std::min(band, cols - b0);
        const int k = std::clamp(kLanes, 1, n);
        const int step = (n + k - 1) / k;  // lane j covers columns [j*step, (j+1)*step)
        for (int ty = 0; ty < rows; ++ty)
            for (int i = 0; i < step; ++i)
                for (int j = 0; j < k; ++j)
                    if (j * step + i < n) order.push_back(std::uint32_t(ty * cols + b0 + j * step + i));
    }
    return order;
}

int band_unit_rows(int cols, int rows, int band, int ranks) {
    const long bands = (cols + band - 1) / band;
    int unit = band;
    while (unit > 1 && bands * ((rows + unit - 1) / unit) < 8L * ranks) unit /= 2;
    return unit;
}

std::vector<std::size_t> band_share_starts(int cols, int rows, int band, int unit) {
    std::vector<std::size_t> starts;
    std::size_t pos = 0;
    for (int b0 = 0; b0 < cols; b0 += band) {
        const int n = std::min(band, cols - b0);
        for (int ty = 0; ty < rows; ty += unit) starts.push_back(pos + std::size_t(ty) * n);
        pos += std::size_t(n) * rows;
    }
    return starts;
}

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
