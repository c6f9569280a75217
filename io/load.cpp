// load: an image file as a source (libvips: JPEG, PNG, TIFF, WebP, and
// anything else libvips opens).
//
// Building the op reads the header only and closes the file again: a
// pipeline of 2000 loads holds no descriptors until it runs. compute() finds
// the file in the shared open-image cache (a bounded LRU, IoLimits::
// max_open_files), opening it on first use, and reads the tile's rect through
// a libvips region of its own. Plain JPEGs and striped or tiled TIFFs are
// read in parts instead (jpeg_stream.hpp, tiff_stream.hpp), where libvips
// would decode and hold the whole file. Pixels are libvips's decode,
// unchanged.
#include <cstdio>
#include <cstring>
#include <string>

#include "file_cache.hpp"
#include "io_list.hpp"
#include "jpeg_stream.hpp"
#include "tiff_stream.hpp"
#include "tessera/io/io.hpp"
#include "vips_common.hpp"
#include "zarr_codec.hpp"

namespace tessera {
namespace {

using namespace vipsio;

class LoadOp final : public Op {
public:
    LoadOp(const Params& p, std::span<const ImageInfo>) {
        path_ = p.string("path");
        if (path_.empty()) throw ParamError("path", "is empty; give the image file to read");
        page_ = int(p.integer("page"));
        stamp_ = check_readable(path_);
        // Plain 8-bit JPEGs are decoded in strips as the tiles pass (see
        // jpeg_stream.hpp), where libvips would decode the whole file per
        // open; their header comes from libjpeg, which is also quicker than
        // a libvips open (thousands of tiles in a stitch).
        jpeg_ = page_ == 0 && io::probe_streamable_jpeg(path_, info_);
        if (!jpeg_) {
            ImagePtr im = open_image(path_, page_);  // header only; closed again below
            info_ = header_of(im.get(), path_);
            // A striped TIFF would be decoded whole by libvips (a sequential
            // format to it): read it block by block instead (tiff_stream.hpp).
            tiff_ = loader_of(im.get()).rfind("tiffload", 0) == 0 && io::probe_streamable_tiff(path_, page_, info_);
            if (!tiff_) check_decode_size(im.get());
        }
    }

    ~LoadOp() override {
        if (jpeg_) io::JpegDecoders::instance().forget(source_);  // its window goes with it
    }

    // Formats libvips must decode whole to serve a rect: refuse a header
    // that claims more memory than the limit (a decompression bomb, or a
    // file better converted to a tiled TIFF).
    static std::string loader_of(VipsImage* im) {
        const char* loader = nullptr;
        if (vips_image_get_typeof(im, VIPS_META_LOADER)) vips_image_get_string(im, VIPS_META_LOADER, &loader);
        return loader ? loader : "";
    }

    void check_decode_size(VipsImage* im) const {
        const std::string l = loader_of(im);
        bool in_parts = l.rfind("tiffload", 0) == 0 || l.rfind("vipsload", 0) == 0 || l.rfind("openslideload", 0) == 0;
        if (in_parts || info_.bytes() <= decode_limit_bytes()) return;
        throw IoError(path_,
                      "claims " + std::to_string(info_.width) + "x" + std::to_string(info_.height) + "x" +
                          std::to_string(info_.bands) + " pixels (" + std::to_string(info_.bytes() >> 20) +
                          " MB decoded), and " + (l.empty() ? std::string("its format") : l) +
                          " decodes whole, over the limit of " + std::to_string(decode_limit_bytes() >> 20) +
                          " MB; if the file is genuine, convert it to a tiled TIFF or raise IoLimits::max_decode_mb");
    }

    void expect(const Rect& region) const override {
        if (jpeg_) io::JpegDecoders::instance().expect(source_, path_, info_, region);
        if (tiff_) io::TiffReaders::instance().expect(path_, page_);
    }

    void release() const override {
        if (tiff_) {
            io::TiffReaders::instance().release(path_, page_);
            io::FileCache::instance().close(path_);
        }
        if (!jpeg_) return;
        io::JpegDecoders::instance().release(source_);
        io::FileCache::instance().close(path_);  // and its descriptor (reopened if asked again)
    }

    void demand(const Rect&, Demand&) const override {}  // a source: no inputs

    // out.rect lies inside the image (the evaluator asks for no more).
    // Cases: a plain JPEG, from its streaming decoder; a TIFF libtiff can
    // serve in blocks, from the TIFF readers; anything else through libvips,
    // a region per call, since libvips regions are not to be shared
    // between threads; the image itself is, read-only. For a fully decoded
    // image the region points into its memory, so the only copy is into out.
    void compute(const Tile& out, std::span<const Pulled>) const override {
        if (out.rect.empty()) return;
        if (jpeg_) {
            io::JpegDecoders::instance().read(source_, path_, info_, out);
            return;
        }
        if (tiff_) {
            io::TiffReaders::instance().read(path_, page_, info_, out);
            return;
        }
        SharedImage image = OpenImageCache::instance().get(path_, page_, stamp_, info_);
        RegionPtr region(vips_region_new(image.get()));
        if (!region) throw_vips_error(path_, "cannot read pixels");
        VipsRect r{out.rect.x, out.rect.y, out.rect.w, out.rect.h};
        if (vips_region_prepare(region.get(), &r)) {
            // libvips remembers a failed decode in the image: forget it, so a
            // later run (with the file fixed) opens it afresh.
            region.reset();
            OpenImageCache::instance().drop(path_, page_, image);
            throw_vips_error(path_, "could not be decoded; the file may be truncated or damaged: check it, or "
                                    "write it again");
        }
        const std::size_t row = out.row_bytes();
        for (int y = out.rect.y; y < out.rect.bottom(); ++y)
            std::memcpy(out.at(out.rect.x, y), VIPS_REGION_ADDR(region.get(), r.left, y), row);
    }

    std::vector<std::string> files_read() const override { return {path_}; }
    bool decodes_from_top() const override { return jpeg_; }

private:
    std::string path_;
    int page_ = 0;
    FileStamp stamp_;
    bool jpeg_ = false;
    bool tiff_ = false;  // read by io::TiffReaders
    // this op's decoder (a file placed twice is two loads, each read in its
    // own order)
    io::JpegDecoders::Source source_ = io::JpegDecoders::new_source();
};

// "key: value" lines about an opened image.
void describe_into(std::string& s, VipsImage* im, const std::string& path) {
    auto line = [&](const std::string& k, const std::string& v) { s += k + ": " + v + "\n"; };
    ImageInfo info = header_of(im, path);
    line("file", path);
    line("size", std::to_string(info.width) + "x" + std::to_string(info.height));
    line("bands", std::to_string(info.bands));
    line("format", std::string(format_name(info.format)));
    std::string interp(interpretation_name(info.interpretation));
    VipsInterpretation v = vips_image_guess_interpretation(im);
    if (info.interpretation == Interpretation::multiband && v != VIPS_INTERPRETATION_MULTIBAND)
        interp += std::string(" (libvips: ") + vips_enum_nick(VIPS_TYPE_INTERPRETATION, v) + ")";
    line("interpretation", interp);
    const char* loader = nullptr;
    if (vips_image_get_typeof(im, VIPS_META_LOADER) && !vips_image_get_string(im, VIPS_META_LOADER, &loader) && loader)
        line("loader", loader);
    int n = 0;
    if (vips_image_get_typeof(im, VIPS_META_N_PAGES) && !vips_image_get_int(im, VIPS_META_N_PAGES, &n) && n > 1)
        line("pages", std::to_string(n));
    n = 0;
    if (vips_image_get_typeof(im, VIPS_META_N_SUBIFDS) && !vips_image_get_int(im, VIPS_META_N_SUBIFDS, &n) && n > 0)
        line("levels", std::to_string(n + 1) + " (pyramid in sub-IFDs)");
    if (vips_image_get_typeof(im, "openslide.level-count") && !vips_image_get_int(im, "openslide.level-count", &n))
        line("levels", std::to_string(n));
    // libvips keeps resolution in pixels per millimetre; 1 is its "unknown".
    if (im->Xres > 0 && im->Yres > 0 && !(im->Xres == 1.0 && im->Yres == 1.0)) {
        char buf[96];
        std::snprintf(buf, sizeof buf, "%.4g x %.4g pixels/mm (%.4g x %.4g dpi)", im->Xres, im->Yres, im->Xres * 25.4,
                      im->Yres * 25.4);
        line("resolution", buf);
    }
}

}  // namespace

OpSpec load_op_spec() {
    return {"load",
            "an image file (JPEG, PNG, TIFF, WebP, ... anything libvips reads), opened lazily",
            0,
            0,
            {{"path", ParamType::string, true, "", "the image file; relative to the pipeline's folder", true},
             {.name = "page",
              .type = ParamType::integer,
              .doc = "page (or frame) of a multi-page file, from 0",
              .default_value = std::int64_t(0),
              .min = 0,
              .max = 1'000'000}},
            false,
            &make_op<LoadOp>,
            false,
            "source",
            "0"};
}

std::uint64_t jpeg_pixels_decoded() { return io::JpegDecoders::instance().pixels_decoded(); }

std::string io_stats() {
    return io::JpegDecoders::instance().stats() + "; " + io::TiffReaders::instance().stats() + "; " +
           io::zarr_chunk_stats();
}

ImageInfo read_image_header(const std::string& path) {
    vipsio::ImagePtr im = vipsio::open_image(path, 0);
    return vipsio::header_of(im.get(), path);
}

std::string describe_image(const std::string& path) {
    vipsio::ImagePtr im = vipsio::open_image(path, 0);
    std::string s;
    describe_into(s, im.get(), path);
    return s;
}

}  // namespace tessera
