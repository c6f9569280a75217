// Tiled and pyramid TIFF output in one pass.
//
// Order. A TIFF's tiles can be written in any order, so this writer asks for
// level 0 in the banded order of pyramid_layout.hpp (bands of
// TiffOptions::band_width columns): what is live at once is one band wide.
//
// Levels. Every level-0 tile is compressed and shrunk 2x2 in the parallel
// stage (prepare), straight into its place in its tile of the next level;
// the serial stage writes its bytes and counts the block in. When a tile's
// 2x2 group has landed, it is shrunk into the level below, and so on, and
// queued for compression (encode_queue.hpp: taken up by workers in later
// prepare calls, retired in queue order). Levels whose tiles span more than
// one band (the small ones at the top) are kept whole in memory instead and
// finished at the end. The shrink is libvips's pyramid mean, or GDAL's
// AVERAGE where a nodata value is set (core/shrink.hpp).
//
// Georeference. An image with a GeoRef is written as a GeoTIFF: GDAL turns
// the geotransform, CRS and nodata into GeoTIFF tags (gdal_common.hpp), which
// go into level 0's directory like any other tag.
//
// Sharded runs. A share is a run of whole units (pyramid_layout.hpp), so a
// rank finishes the levels 1..log2(R) of its share itself and sends the
// writer its compressed tiles and, for the levels above, the shrunk blocks
// (shard_messages.hpp); the writer lays each level out in its own order, so
// the bytes do not depend on the shares.
//
// Layout. libtiff writes one directory (IFD) at a time, so the lower levels'
// tile bytes wait in an unlinked temporary file beside the output (a third
// of the data at most) and are copied in, raw, after level 0's directory.
// A COG wants the opposite: every directory first, then the levels' data from
// the smallest to level 0. There level 0's bytes wait in the temporary file
// too, and finish() writes the directories with their tile arrays deferred
// (libtiff's TIFFDeferStrileArrayWriting), then each level's tiles in
// row-major order, then the arrays.
//
// OME-TIFF (TiffOptions::ome): the same pass and levels, stored as planes
// (ome_tiff.hpp: one per band, or one interleaved 8-bit RGB plane). Each
// tile is encoded once per plane (one band each); plane 0's level-0 tiles
// are written as they come, the other planes' wait in the level file with
// the lower levels. finish() writes, for each plane, its full-resolution
// main IFD with a SubIFDs tag, then its reduced levels (NewSubfileType 1),
// which libtiff links in as that IFD's SubIFDs: the OME 2016-06 pyramid
// layout Bio-Formats 6+, QuPath and raw2ometiff use (libvips' tiffsave
// subifd writes the same chain). The OME-XML goes into the first IFD's
// ImageDescription, its UUID a digest of every tile's bytes.
//
// Photometric, ExtraSamples, SampleFormat and PlanarConfig follow the
// samples of a plane: RGB for 3 or more bands of a colour interpretation,
// else min-is-black, and every sample beyond those ExtraSamples (alpha where
// it is one: the 4th of RGBA, the 2nd of grey + alpha, a georeferenced alpha
// band; unspecified otherwise), so that libtiff and GDAL read any band
// count without a warning.
#include "tiff_pyramid.hpp"

#include <array>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <tiffio.h>
#include <string_view>
#include <tuple>
#include <unistd.h>
#include <variant>

#include "encode_queue.hpp"
#include "gdal_common.hpp"
#include "pyramid_layout.hpp"
#include "shard_messages.hpp"
#include "temp_beside.hpp"
#include "tessera/core/error.hpp"
#include "tessera/core/shrink.hpp"
#include "tessera/io/output_target.hpp"

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

struct Level : LevelGrid {
    explicit Level(const LevelGrid& g) : LevelGrid(g) {}
    Buffer pixels;                  // whole levels (above the band-local ones): the whole level
    std::vector<TileRecord> tiles;  // where each tile's bytes wait in the level file
};

// A tile of a band-local level, filling up with the shrunk blocks of its
// 2x2 group of tiles in the level above.
struct Assembly {
    Buffer pixels;  // the tile, in the level's frame
    int placed = 0;
};

// A tile's compressed bytes, one vector per plane (one, but for OME-TIFF).
using PlaneBytes = std::vector<std::vector<std::uint8_t>>;

// A lower-level tile waiting for compression.
struct Job {
    std::size_t level = 0;
    std::size_t index = 0;
    Buffer pixels;     // the tile's own pixels (encode_planes pads what needs it), until encoded
    PlaneBytes bytes;  // compressed
};

class TiffSink final : public ShardedSink {
public:
    TiffSink(std::string path, TiffOptions opt)
        : path_(std::move(path)),
          opt_(opt),
          layout_(opt.tile_w, opt.band_width),
          queue_([this](Job& j) { encode_job(j); }, EncodeQueue<Job>::Order::kept) {
        install_tiff_handlers();
    }
    ~TiffSink() override { abort(); }

    std::optional<Point> tile_size() const override { return Point{opt_.tile_w, opt_.tile_h}; }

    std::vector<std::uint32_t> tile_order(int cols, int rows) const override { return layout_.order(cols, rows); }

    // Whole units (see the header): every tile of levels 1..log2(R) lies
    // inside one, so a rank finishes those levels of its share itself.
    std::vector<std::size_t> share_starts(int cols, int rows, int ranks) const override {
        return layout_.share_starts(cols, rows, ranks);
    }
    // The writer shrinks and compresses the levels above the ranks' own:
    // each a quarter of the one above, a third of level 0 in all from
    // level 1 on.
    std::uint64_t writer_cost(int cols, int rows, int ranks) const override {
        if (!opt_.pyramid) return 0;
        const int unit = layout_.unit_rows(cols, rows, ranks);
        int own = 0;
        while ((2 << own) <= unit) ++own;
        const double level0 = double(cols) * opt_.tile_w * double(rows) * opt_.tile_h;
        return std::uint64_t(level0 / std::pow(4.0, own + 1) * 4 / 3);
    }

    void start(const ImageInfo& info, const SinkContext& context) override {
        info_ = info;
        planes_ = opt_.ome && !ome_interleaved_rgb(info, opt_.ome->planes) ? info.bands : 1;
        spp_ = info.bands / planes_;
        digest_ = {0, 0};
        part_.start(context, "pyramid TIFF tiles");
        queue_.start(part_.account, context.threads);
        const int T = opt_.tile_w, TH = opt_.tile_h;
        // the levels: 2x smaller (rounded down) until one fits in a tile
        levels_.clear();
        for (const LevelGrid& g : pyramid_levels(info.width, info.height, T, TH, Halving::down,
                                                 opt_.pyramid ? T : INT_MAX, opt_.pyramid ? TH : INT_MAX))
            levels_.emplace_back(g);
        // levels 1..local_ fit the bands; those above are kept whole
        local_ = 0;
        while (local_ + 1 < levels_.size() && (1 << (local_ + 1)) <= layout_.band()) ++local_;
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
        if (part_.share) {
            int unit = layout_.unit_rows(levels_[0].tiles_x, levels_[0].tiles_y, part_.link->ranks());
            for (own_ = 0; (2 << own_) <= unit && own_ < local_;) ++own_;
            order_ = layout_.order(levels_[0].tiles_x, levels_[0].tiles_y);
        }
        if (part_.producer()) return;  // no file: everything goes to the writer
        if (info.geo) geo_tags_ = geotiff_tags(*info.geo, path_);
        out_.emplace(path_);
        // a COG's directories come first, when every tile's size is known
        if (!opt_.cog) open_tiff();
        if (levels_.size() > 1 || opt_.cog || part_.share || planes_ > 1) {
            std::string lp = temp_beside(path_, ".levels");
            levels_file_ = std::fopen(lp.c_str(), "w+b");
            if (!levels_file_)
                fail("cannot create a temporary file beside the output: " + std::string(std::strerror(errno)));
            ::unlink(lp.c_str());  // gone from the folder; freed when closed
        }
        if (opt_.cog || part_.share || planes_ > 1)
            levels_[0].tiles.resize(std::size_t(planes_) * levels_[0].tiles_x * levels_[0].tiles_y);
        for (std::size_t L = 1; L < levels_.size(); ++L) {
            Level& l = levels_[L];
            if (L > local_) {
                l.pixels = Buffer(part_.account, Rect{0, 0, l.width, l.height}, info.bands, info.format);
                clear(l.pixels);
            }
            l.tiles.resize(std::size_t(planes_) * l.tiles_x * l.tiles_y);
        }
        if (!opt_.cog) set_tags(0, 0);
    }

    // Parallel: compress the tile, shrink it for the next level, and take
    // one waiting lower-level tile to compress.
    struct Prepared {
        PlaneBytes bytes;
        Buffer half;  // a producer's block for the writer (shrink_up); else none
    };
    std::shared_ptr<void> prepare(const ConstTile& tile) override {
        auto p = std::make_shared<Prepared>();
        p->bytes = encode_planes(tile);
        if (levels_.size() > 1) p->half = shrink_up(1, tile, tile.rect.x / opt_.tile_w, tile.rect.y / opt_.tile_h);
        queue_.run(1);
        return p;
    }

    void consume(const ConstTile& tile, std::shared_ptr<void> prepared) override {
        int tx = tile.rect.x / opt_.tile_w, ty = tile.rect.y / opt_.tile_h;
        auto* p = static_cast<Prepared*>(prepared.get());
        const auto index = uint32_t(ty * levels_[0].tiles_x + tx);
        put_tile(0, index, p->bytes);
        if (levels_.size() > 1) hand_up(1, p->half, tx, ty);
        store_done_jobs();
        if (part_.writer()) receive_parts(false);  // keeps the producers' sends moving
    }

    // What is left to compress at the end (the last tiles, the whole levels
    // at the top) is encoded on this thread, not drained on new ones: it is
    // little, and fresh threads cost more than they save (their malloc
    // arenas: +30 MB peak RSS measured on the merge benchmark's COG).
    void finish() override {
        if (part_.producer()) {
            queue_.run(-1);
            store_done_jobs();
            part_.link->send_end();
            assemblies_.clear();
            return;
        }
        if (!out_) return;  // not started, or aborted
        if (part_.writer()) {
            queue_.run(-1);
            store_done_jobs();
            // until every producer has finished: take in what arrives, and
            // meanwhile compress the tiles of the levels this rank finishes
            while (ends_ < part_.link->ranks() - 1) {
                if (receive_parts(false)) continue;
                if (queue_.run(1)) {
                    store_done_jobs();
                    continue;
                }
                receive_parts(true);
            }
        }
        if (!assemblies_.empty()) fail("internal: a pyramid tile was never completed");
        // the whole levels at the top, each from the one below
        for (std::size_t L = local_ + 1; L < levels_.size(); ++L) {
            Level& l = levels_[L];
            for (int ty = 0; ty < l.tiles_y; ++ty)
                for (int tx = 0; tx < l.tiles_x; ++tx) {
                    const Rect r = tile_rect(L, tx, ty);
                    ConstTile t = l.pixels.view().sub(r);
                    queue_tile(L, tx, ty, t);
                    if (L + 1 < levels_.size())
                        shrink2x2_pyramid(t, levels_[L + 1].pixels.tile().sub(half_of(r, levels_[L + 1])), nodata_);
                }
        }
        queue_.run(-1);
        store_done_jobs();
        if (!queue_.all_retired()) fail("internal: a pyramid tile was never compressed");
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
        out_->commit();
        out_.reset();
    }

    void abort() noexcept override {
        queue_.clear();
        for (Level& l : levels_) l.pixels.reset();
        assemblies_.clear();
        if (tif_) {
            TIFFClose(tif_);
            tif_ = nullptr;
        }
        close_levels();
        out_.reset();  // removes the temporary file
    }

private:
    [[noreturn]] void fail(const std::string& msg) { throw IoError(path_, msg); }

    void open_tiff() {
        tif_ = TIFFOpen(out_->temp().c_str(), big_ ? "w8" : "w");
        if (!tif_)
            fail("cannot create the output file (" + t_tiff_error + "); check the folder exists and is writable");
        if (opt_.codec.compression == Compression::jpeg) jpeg_tables_ = opt_.codec.jpeg_tables(spp_);
    }

    // Appends bytes to the temporary file; where they are.
    TileRecord store(std::span<const std::byte> bytes) {
        TileRecord rec{levels_end_, bytes.size()};
        if (std::fwrite(bytes.data(), 1, bytes.size(), levels_file_) != bytes.size())
            fail("cannot write the temporary level file: " + std::string(std::strerror(errno)) + "; is the disk full?");
        levels_end_ += bytes.size();
        return rec;
    }

    // Writes level L's tiles of a plane, row-major, from the temporary file.
    void copy_level(std::size_t L, int plane = 0) {
        const std::size_t n = std::size_t(levels_[L].tiles_x) * levels_[L].tiles_y;
        for (std::size_t i = 0; i < n; ++i) copy_tile(L, uint32_t(i), plane);
    }
    void copy_tile(std::size_t L, uint32_t i, int plane = 0) {
        const TileRecord& t = levels_[L].tiles[std::size_t(plane) * levels_[L].tiles_x * levels_[L].tiles_y + i];
        copy_bytes_.resize(t.size);
        if (pread(fileno(levels_file_), copy_bytes_.data(), t.size, off_t(t.offset)) != ssize_t(t.size))
            fail("cannot read back the temporary level file: " + std::string(std::strerror(errno)));
        write_tile(i, copy_bytes_);
    }

    // Level 0 was written tile by tile (a sharded writer's own share; the
    // other ranks' tiles wait in the level file and follow, in the same
    // order); its directory, then the others.
    // OME-TIFF: so for each plane, its level 0 being a main IFD whose
    // SubIFDs are the directories of its levels that follow.
    void write_levels_after_first() {
        if (part_.share)
            for (std::size_t k = part_.share->last; k < order_.size(); ++k) copy_tile(0, order_[k]);
        for (int plane = 0; plane < planes_; ++plane) {
            if (plane > 0) {
                set_tags(0, plane);
                copy_level(0, plane);
            }
            if (plane == 0 && opt_.ome) {
                const std::string xml =
                    ome_xml(info_, *opt_.ome, planes_, std::filesystem::path(path_).filename().string(),
                            ome_uuid(digest_[0], digest_[1]));
                TIFFSetField(tif_, TIFFTAG_IMAGEDESCRIPTION, xml.c_str());
            }
            if (!TIFFWriteDirectory(tif_)) fail("cannot write the TIFF directory (" + t_tiff_error + ")");
            for (std::size_t L = 1; L < levels_.size(); ++L) {
                set_tags(int(L), plane);
                copy_level(L, plane);
                if (!TIFFWriteDirectory(tif_)) fail("cannot write the TIFF directory (" + t_tiff_error + ")");
            }
        }
    }

    // The COG layout: directories (tile arrays deferred), then the data from
    // the smallest level up, then the arrays.
    void write_cog() {
        open_tiff();
        for (std::size_t L = 0; L < levels_.size(); ++L) {
            set_tags(int(L), 0);
            if (!TIFFDeferStrileArrayWriting(tif_) || !TIFFWriteCheck(tif_, 1, "tessera") || !TIFFWriteDirectory(tif_))
                fail("cannot write the TIFF directory (" + t_tiff_error + ")");
        }
        for (std::size_t L = levels_.size(); L-- > 0;) {
            if (!TIFFSetDirectory(tif_, tdir_t(L))) fail("cannot go back to a TIFF directory (" + t_tiff_error + ")");
            copy_level(L);
            if (!TIFFForceStrileArrayWriting(tif_)) fail("cannot write the tile offsets (" + t_tiff_error + ")");
        }
    }

    static void clear(Buffer& b) {
        double zero = 0;
        fill_pixels(b.tile(), &zero, 1);
    }

    void close_levels() {
        if (levels_file_) std::fclose(levels_file_);
        levels_file_ = nullptr;
    }

    // The tags of level L of a plane (plane: OME-TIFF; else 0).
    void set_tags(int L, int plane) {
        const Level& l = levels_[L];
        const ImageInfo& in = info_;
        TIFFSetField(tif_, TIFFTAG_IMAGEWIDTH, uint32_t(l.width));
        TIFFSetField(tif_, TIFFTAG_IMAGELENGTH, uint32_t(l.height));
        TIFFSetField(tif_, TIFFTAG_TILEWIDTH, uint32_t(opt_.tile_w));
        TIFFSetField(tif_, TIFFTAG_TILELENGTH, uint32_t(opt_.tile_h));
        TIFFSetField(tif_, TIFFTAG_SAMPLESPERPIXEL, uint16_t(spp_));
        TIFFSetField(tif_, TIFFTAG_BITSPERSAMPLE, uint16_t(8 * format_size(in.format)));
        TIFFSetField(tif_, TIFFTAG_SAMPLEFORMAT,
                     uint16_t(format_is_float(in.format)                               ? SAMPLEFORMAT_IEEEFP
                              : (in.format == Format::i16 || in.format == Format::i32) ? SAMPLEFORMAT_INT
                                                                                       : SAMPLEFORMAT_UINT));
        TIFFSetField(tif_, TIFFTAG_PLANARCONFIG, uint16_t(PLANARCONFIG_CONTIG));
        TIFFSetField(tif_, TIFFTAG_SOFTWARE, "tessera");
        if (L > 0) TIFFSetField(tif_, TIFFTAG_SUBFILETYPE, uint32_t(FILETYPE_REDUCEDIMAGE));
        if (opt_.ome && L == 0 && levels_.size() > 1) {
            // the reduced levels, written next, become this IFD's SubIFDs
            std::vector<toff_t> sub(levels_.size() - 1, 0);
            TIFFSetField(tif_, TIFFTAG_SUBIFD, uint16_t(sub.size()), sub.data());
        }
        // Photometric covers 3 samples (RGB) or 1; every other sample is an
        // extra one, declared (see the header).
        const int spp = spp_;
        const bool colour = spp >= 3 && in.interpretation != Interpretation::multiband;
        uint16_t photometric = colour ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK;
        if (const int extras = spp - (colour ? 3 : 1); extras > 0) {
            std::vector<uint16_t> extra(std::size_t(extras), EXTRASAMPLE_UNSPECIFIED);
            if (in.geo && in.geo->alpha_band >= 0 && in.geo->alpha_band == in.bands - 1)
                extra.back() = EXTRASAMPLE_UNASSALPHA;  // a georeferenced alpha band (a gdal_load mask): GDAL reads it
                                                        // back as alpha
            else if ((colour && spp == 4) || (!colour && spp == 2))
                extra[0] = EXTRASAMPLE_UNASSALPHA;
            TIFFSetField(tif_, TIFFTAG_EXTRASAMPLES, uint16_t(extra.size()), extra.data());
        }
        switch (opt_.codec.compression) {
            case Compression::none: TIFFSetField(tif_, TIFFTAG_COMPRESSION, uint16_t(COMPRESSION_NONE)); break;
            case Compression::deflate:
                TIFFSetField(tif_, TIFFTAG_COMPRESSION, uint16_t(COMPRESSION_ADOBE_DEFLATE));
                break;
            case Compression::lzw: TIFFSetField(tif_, TIFFTAG_COMPRESSION, uint16_t(COMPRESSION_LZW)); break;
            case Compression::zstd: TIFFSetField(tif_, TIFFTAG_COMPRESSION, uint16_t(COMPRESSION_ZSTD)); break;
            case Compression::jpeg:
                TIFFSetField(tif_, TIFFTAG_COMPRESSION, uint16_t(COMPRESSION_JPEG));
                // tiles are abbreviated streams: the shared tables live here
                TIFFSetField(tif_, TIFFTAG_JPEGTABLES, uint32_t(jpeg_tables_.size()), jpeg_tables_.data());
                if (spp == 3) {
                    photometric = PHOTOMETRIC_YCBCR;
                    uint16_t f = uint16_t(jpeg_chroma_subsampling(opt_.codec.quality));
                    TIFFSetField(tif_, TIFFTAG_YCBCRSUBSAMPLING, f, f);
                }
                break;
        }
        TIFFSetField(tif_, TIFFTAG_PHOTOMETRIC, photometric);
        if (opt_.codec.predictor &&
            (opt_.codec.compression == Compression::deflate || opt_.codec.compression == Compression::zstd ||
             opt_.codec.compression == Compression::lzw))
            TIFFSetField(tif_, TIFFTAG_PREDICTOR, uint16_t(PREDICTOR_HORIZONTAL));
        if (L == 0 && plane == 0)
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
        tmsize_t n = opt_.codec.encodes_raw() ? TIFFWriteRawTile(tif_, index, bytes.data(), tmsize_t(bytes.size()))
                                              : TIFFWriteEncodedTile(tif_, index, bytes.data(), tmsize_t(bytes.size()));
        if (n < 0) fail("cannot write a tile (" + t_tiff_error + "); is the disk full?");
    }

    // Shrinks tile t, (tx, ty) of level L-1, into level L: straight into
    // its place there (half_target), from a worker (prepare: level 1) or
    // the serial stage; or, on a producer rank for a level the writer
    // finishes, into a block of its own, returned to be sent (hand_up).
    Buffer shrink_up(std::size_t L, const ConstTile& t, int tx, int ty) {
        const Rect h = half_of(t.rect, levels_[L]);
        if (part_.producer() && L > own_) {
            Buffer half(part_.account, h, t.bands, t.format);
            shrink2x2_pyramid(t, half.tile(), nodata_);
            return half;
        }
        if (const auto into = half_target(L, h, tx, ty)) shrink2x2_pyramid(t, *into, nodata_);
        return {};
    }

    // Serial, after shrink_up: the block is sent to the writer, or counted
    // in.
    void hand_up(std::size_t L, Buffer& half, int tx, int ty) {
        if (!half.valid()) return landed(L, tx, ty);
        part_.link->send_block(std::uint32_t(L), tx, ty, half.view(), half.rect(), true);
        half.reset();
    }

    // A block another rank sent (a writer's): copied into place, counted in.
    void place_half(std::size_t L, const ConstTile& half, int tx, int ty) {
        if (const auto into = half_target(L, half.rect, tx, ty)) copy_pixels(half, *into);
        landed(L, tx, ty);
    }

    // Where the block `half` of tile (tx, ty) of level L-1 goes in level L:
    // into the level's pixels (a whole level), or, for a band-local level,
    // into the tile of level L it belongs to, made when its first block
    // comes; nowhere past the rounded-down level. Workers call this beside
    // the serial stage (prepare), each for its own block: assemblies_mu_
    // guards the map; the pixels need no guard, as no two blocks overlap.
    //
    // A band-local level is assembled a tile at a time: when a tile's 2x2
    // group of tiles above has landed, it is complete (landed): shrunk into
    // the level below, then queued for compression as it is (no copy). What
    // is live is the level's tiles that a band's tile row has begun, a few
    // rows of tiles of a band at most; each is small enough to stay in the
    // cache between its blocks, its shrink and its encoding, where a
    // band-wide strip (6 MB at 256-pixel RGB tiles) was written cold, then
    // read cold to be copied out tile by tile.
    std::optional<Tile> half_target(std::size_t L, const Rect& half, int tx, int ty) {
        Level& l = levels_[L];
        if (L > local_) return l.pixels.tile().sub(half);
        const int ax = tx / 2, ay = ty / 2;                           // the tile of level L
        if (ax >= l.tiles_x || ay >= l.tiles_y) return std::nullopt;  // (an empty block)
        std::lock_guard lock(assemblies_mu_);
        auto [it, fresh] = assemblies_.try_emplace({L, ax, ay});
        Assembly& a = it->second;
        if (fresh) {
            // Not cleared: the blocks of its 2x2 group cover it exactly
            // (levels halve rounding down, half_of takes [x / 2, right / 2)
            // of each tile, tiles are of an even size), so every pixel is
            // written before it is complete; a 0xAB fill in its place left
            // odd-sized pyramids' bytes unchanged.
            a.pixels = Buffer(part_.account, tile_rect(L, ax, ay), info_.bands, info_.format);
        }
        return a.pixels.tile().sub(half);
    }

    // Serial: the block of tile (tx, ty) of level L-1 is in its place in
    // level L (half_target); the tile it completes is shrunk on, queued.
    void landed(std::size_t L, int tx, int ty) {
        if (L > local_) return;  // a whole level: finished at the end
        const Level& l = levels_[L];
        const Level& above = levels_[L - 1];
        const int ax = tx / 2, ay = ty / 2;
        if (ax >= l.tiles_x || ay >= l.tiles_y) return;
        const int group = std::min(2, above.tiles_x - 2 * ax) * std::min(2, above.tiles_y - 2 * ay);
        Buffer done;
        {
            std::lock_guard lock(assemblies_mu_);
            auto it = assemblies_.find({L, ax, ay});
            if (it == assemblies_.end()) fail("internal: a pyramid block landed in a tile that was never made");
            if (++it->second.placed < group) return;
            done = std::move(it->second.pixels);
            assemblies_.erase(it);
        }
        if (L + 1 < levels_.size()) {
            Buffer half = shrink_up(L + 1, done.view(), ax, ay);
            hand_up(L + 1, half, ax, ay);
        }
        queue_tile(L, ax, ay, std::move(done));
    }

    // Tile (tx, ty) of level L, clipped to the level.
    Rect tile_rect(std::size_t L, int tx, int ty) const {
        return Rect{tx * opt_.tile_w, ty * opt_.tile_h, opt_.tile_w, opt_.tile_h}.intersect(
            Rect{0, 0, levels_[L].width, levels_[L].height});
    }

    // --- Sharded runs ---

    // Writer: takes in what the producers sent (wait: at least one message);
    // whether anything came.
    bool receive_parts(bool wait) {
        bool any = false;
        while (auto m = part_.link->receive(wait)) {
            wait = false;
            any = true;
            if (const auto* t = std::get_if<TileMessage>(&*m)) {
                if (t->level >= levels_.size() || t->index >= levels_[t->level].tiles.size())
                    fail("internal: a tile from another rank that the pyramid does not have");
                note_digest(t->level, t->index, t->bytes);
                levels_[t->level].tiles[t->index] = store(t->bytes);
            } else if (const auto* b = std::get_if<BlockMessage>(&*m)) {
                if (b->level == 0 || b->level >= levels_.size())
                    fail("internal: pixels from another rank for a level the pyramid does not have");
                place_half(b->level, b->tile(info_.bands, info_.format), b->bx, b->by);
            } else if (std::holds_alternative<EndMessage>(*m)) {
                ++ends_;
            } else {
                fail("internal: an unexpected message from another rank");
            }
        }
        return any;
    }

    // A compressed tile of level L, for the file: written now (level 0 of
    // this process's own tiles, in order, when the layout is not a COG),
    // kept in the level file (the rest), or sent to the writer (producers).
    // A plane's tiles of a level follow those of the plane before.
    void put_tile(std::size_t L, std::uint32_t index, PlaneBytes& planes) {
        const auto n = std::uint32_t(levels_[L].tiles_x * levels_[L].tiles_y);
        for (int k = 0; k < planes_; ++k) {
            std::vector<std::uint8_t>& bytes = planes[std::size_t(k)];
            const std::uint32_t i = std::uint32_t(k) * n + index;
            if (part_.producer()) {
                part_.link->send_tile(std::uint32_t(L), i, bytes);
                continue;
            }
            const auto span = std::as_bytes(std::span(bytes));
            note_digest(L, i, span);
            if (L == 0 && k == 0 && !opt_.cog)
                write_tile(index, bytes);
            else
                levels_[L].tiles[i] = store(span);
        }
    }

    // OME-TIFF: the UUID's digest of every tile's bytes and place, the same
    // whatever order they arrive in (a sum of the tiles' hashes).
    void note_digest(std::size_t L, std::uint32_t i, std::span<const std::byte> bytes) {
        if (!opt_.ome) return;
        const std::uint64_t h =
            std::hash<std::string_view>{}(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
        std::uint64_t a = h ^ (std::uint64_t(L) << 56) ^ (std::uint64_t(i) * 0x9E3779B97F4A7C15ull);
        a ^= a >> 31;
        a *= 0xBF58476D1CE4E5B9ull;
        digest_[0] += a ^ (a >> 29);
        digest_[1] += (a * 0x94D049BB133111EBull) ^ h;
    }

    // The part of the next level a tile of this level shrinks to.
    static Rect half_of(const Rect& r, const Level& next) {
        return Rect{r.x / 2, r.y / 2, r.right() / 2 - r.x / 2, r.bottom() / 2 - r.y / 2}.intersect(
            Rect{0, 0, next.width, next.height});
    }

    // Lower-level tiles wait in queue_ for compression, done by worker
    // threads in prepare() (a job each call, beside its own tile), so that
    // the serial stage only copies and writes.
    void encode_job(Job& job) {
        job.bytes = encode_planes(job.pixels.view());
        job.pixels.reset();
    }
    // A tile's bytes for each plane: compressed, or for LZW raw (libtiff
    // encodes it when it writes the tile).
    PlaneBytes encode_planes(const ConstTile& t) const {
        PlaneBytes out(static_cast<std::size_t>(planes_));
        if (planes_ == 1 && opt_.codec.compression == Compression::jpeg) {
            out[0] = opt_.codec.encode(t, opt_.tile_w, opt_.tile_h);  // from the tile's rows where it is whole
            return out;
        }
        for (int k = 0; k < planes_; ++k) {
            std::vector<std::uint8_t> raw =
                planes_ == 1 ? pad_tile(t, opt_.tile_w, opt_.tile_h) : pad_band(t, k, opt_.tile_w, opt_.tile_h);
            // (a plane compresses with its whole tile's zstd parameters: tile_codec.hpp)
            const std::size_t whole = std::size_t(opt_.tile_w) * opt_.tile_h * t.pixel_bytes();
            out[std::size_t(k)] = opt_.codec.encodes_raw() ? opt_.codec.encode_padded(std::move(raw), spp_, t.format,
                                                                                      opt_.tile_w, opt_.tile_h, whole)
                                                           : std::move(raw);
        }
        return out;
    }
    // Serial: stores every finished job's bytes in the level file, in queue
    // order.
    void store_done_jobs() {
        queue_.retire([this](Job& j) { put_tile(j.level, std::uint32_t(j.index), j.bytes); });
    }

    // The tile's pixels as they are (encode_planes pads what needs it).
    void queue_tile(std::size_t L, int tx, int ty, Buffer pixels) {
        Job job;
        job.level = L;
        job.index = std::size_t(ty) * levels_[L].tiles_x + tx;
        job.pixels = std::move(pixels);
        queue_.push(std::move(job), 0);  // (the Buffer is charged to the account itself)
    }
    // A whole level's tile: a copy, of the tile alone.
    void queue_tile(std::size_t L, int tx, int ty, const ConstTile& t) {
        Buffer b(part_.account, t.rect, t.bands, t.format);
        copy_pixels(t, b.tile());
        queue_tile(L, tx, ty, std::move(b));
    }

    std::string path_;
    TiffOptions opt_;
    BandLayout layout_;
    ImageInfo info_;
    WriterPart part_;  // the run's account; sharded runs: the share and the link
    std::vector<Level> levels_;
    int planes_ = 1;                             // main IFDs (OME-TIFF: the bands, unless interleaved RGB)
    int spp_ = 1;                                // samples per pixel of each
    std::array<std::uint64_t, 2> digest_{0, 0};  // OME-TIFF: of the tiles, for the UUID
    std::size_t local_ = 0;                      // levels 1..local_ are kept a few tile rows of a band at a time
    std::size_t own_ = 0;                        // of those, the ones this process finishes (all, unless sharded)
    std::map<std::tuple<std::size_t, int, int>, Assembly> assemblies_;  // (level, tile column, row) -> its tile
    std::mutex assemblies_mu_;                                          // assemblies_'s map (half_target)
    std::vector<std::uint32_t> order_;                                  // sharded: the level-0 tile order
    int ends_ = 0;                                                      // writer: producers finished
    std::vector<std::uint8_t> copy_bytes_;
    std::vector<std::uint8_t> jpeg_tables_;
    std::vector<TiffTag> geo_tags_;
    std::optional<double> nodata_;  // band 1's, as GeoTIFF keeps one
    bool big_ = false;
    std::optional<OutputTarget> out_;  // the file being written (not on producers)
    TIFF* tif_ = nullptr;
    std::FILE* levels_file_ = nullptr;
    std::uint64_t levels_end_ = 0;
    EncodeQueue<Job> queue_;
};

}  // namespace

void check_tiff_options(const ImageInfo& info, const TiffOptions& o) {
    if (o.tile_w % 16 || o.tile_h % 16 || o.tile_w < 16 || o.tile_h < 16 || o.tile_w > 8192 || o.tile_h > 8192)
        throw ParamError("tile_width", "TIFF tiles are multiples of 16 between 16 and 8192 pixels; got " +
                                           std::to_string(o.tile_w) + "x" + std::to_string(o.tile_h));
    // (an OME-TIFF's planes are one band each, but for 8-bit RGB)
    const int spp = o.ome && !ome_interleaved_rgb(info, o.ome->planes) ? 1 : info.bands;
    if (o.codec.compression == Compression::jpeg && (info.format != Format::u8 || (spp != 1 && spp != 3)))
        throw ParamError("compression", "JPEG holds 1 or 3 bands of u8, and this image has " +
                                            std::to_string(info.bands) + " bands of " +
                                            std::string(format_name(info.format)) +
                                            "; use deflate, zstd or lzw, or cast first");
    if (o.codec.quality < 1 || o.codec.quality > 100) throw ParamError("quality", "use a JPEG quality in [1, 100]");
}

std::unique_ptr<Sink> make_tiff_sink(const std::string& path, const TiffOptions& options) {
    return std::make_unique<TiffSink>(path, options);
}

}  // namespace tessera::io
