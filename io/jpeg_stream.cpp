#include "jpeg_stream.hpp"

#include <atomic>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <jpeglib.h>
#include <unistd.h>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "file_cache.hpp"
#include "tessera/core/compute_slots.hpp"
#include "tessera/core/error.hpp"

namespace tessera::io {

namespace {

constexpr std::size_t kReadChunk = 256 * 1024;
// Columns decoded beyond an expected region on each side (an iMCU and more).
constexpr int kCropMargin = 32;
// Decoders a source keeps for segments announced (expect) and not yet ended
// (release): a run's plan announces at most its tiles in flight ahead.
constexpr std::size_t kMaxSegments = 8;

std::atomic<std::uint64_t> g_rows_decoded{0}, g_rows_skipped{0}, g_pixels_decoded{0};

// Everything libjpeg's callbacks need, reached from the decompress struct.
// Errors longjmp back to the function that called libjpeg; the message is
// kept here. No C++ object with a destructor lives in those frames.
struct Context {
    jpeg_error_mgr err;
    jpeg_source_mgr src;
    std::jmp_buf jump;
    char message[JMSG_LENGTH_MAX + 256] = {0};
    const std::string* path = nullptr;
    std::uint64_t offset = 0;  // file offset of the byte after the buffer
    std::unique_ptr<std::uint8_t[]> buffer{new std::uint8_t[kReadChunk]};
    bool truncated = false;
    int fd = -1;  // when set, read from it directly rather than through the FileCache
};

Context* ctx(j_common_ptr c) { return static_cast<Context*>(c->client_data); }

extern "C" void on_error(j_common_ptr c) {
    (*c->err->format_message)(c, ctx(c)->message);
    std::longjmp(ctx(c)->jump, 1);
}
extern "C" void on_message(j_common_ptr) {}  // warnings: as libvips, not fatal

extern "C" void src_init(j_decompress_ptr) {}
extern "C" boolean src_fill(j_decompress_ptr d) {
    Context* x = ctx(reinterpret_cast<j_common_ptr>(d));
    std::size_t n = 0;
    try {
        if (x->fd >= 0) {
            ssize_t r = ::pread(x->fd, x->buffer.get(), kReadChunk, off_t(x->offset));
            n = r > 0 ? std::size_t(r) : 0;
        } else {
            n = FileCache::instance().read(*x->path, x->offset, x->buffer.get(), kReadChunk);
        }
    } catch (const std::exception& e) {
        std::snprintf(x->message, sizeof x->message, "%s", e.what());
        std::longjmp(x->jump, 1);
    }
    if (n == 0) {
        // End of file before the image ended: hand libjpeg an EOI marker so
        // it stops, and report the file as truncated.
        x->truncated = true;
        x->buffer[0] = 0xFF;
        x->buffer[1] = JPEG_EOI;
        n = 2;
    }
    x->offset += n;
    d->src->next_input_byte = x->buffer.get();
    d->src->bytes_in_buffer = n;
    return TRUE;
}
extern "C" void src_skip(j_decompress_ptr d, long n) {
    if (n <= 0) return;
    jpeg_source_mgr* s = d->src;
    if (std::size_t(n) <= s->bytes_in_buffer) {
        s->next_input_byte += n;
        s->bytes_in_buffer -= std::size_t(n);
        return;
    }
    Context* x = ctx(reinterpret_cast<j_common_ptr>(d));
    x->offset += std::uint64_t(n) - s->bytes_in_buffer;
    s->bytes_in_buffer = 0;
    s->next_input_byte = nullptr;
}
extern "C" void src_term(j_decompress_ptr) {}

// Points d's errors at c (before jpeg_create_decompress).
void attach_errors(Context& c, jpeg_decompress_struct& d) {
    d.err = jpeg_std_error(&c.err);
    c.err.error_exit = on_error;
    c.err.output_message = on_message;
    d.client_data = &c;
}

// Makes c the data source of d, from the start of the file.
void attach_source(Context& c, jpeg_decompress_struct& d) {
    c.src = {};
    c.src.init_source = src_init;
    c.src.fill_input_buffer = src_fill;
    c.src.skip_input_data = src_skip;
    c.src.resync_to_restart = jpeg_resync_to_restart;
    c.src.term_source = src_term;
    d.src = &c.src;
}

// One open decode of one file: libjpeg state plus the window of rows.
class Decoder {
public:
    Decoder(std::string path, const ImageInfo& info, MemoryAccount* account)
        : path_(std::move(path)), info_(info), account_(account) {}
    ~Decoder() { close(); }

    std::mutex mu;

    // Copies out.rect into out; returns true if the decode had to restart.
    bool read(const Tile& out) {
        // Cases:
        //  - nothing open, rows above the window (let go already), or
        //    columns the open decode does not make: start over from the top.
        //    The new decode makes the hint's columns, or whole rows when the
        //    request lies outside the hint (the advice was wrong), so that it
        //    always makes this request's columns;
        //  - rows below the window: decode on down to them;
        //  - rows in the window: copy them.
        const Rect& r = out.rect;
        bool rewound = false;
        const bool outside = open_ && (r.x < crop_x_ || r.right() > crop_x_ + crop_w_);
        if (!open_ || r.y < lo_ || outside) {
            if (hint_ && (r.x < hint_->x || r.right() > hint_->right())) hint_.reset();
            rewound = open_;
            close();
            start();
        }
        if (r.bottom() > hi_) advance(r.y, r.bottom());
        const std::size_t px = std::size_t(info_.bands);
        for (int y = r.y; y < r.bottom(); ++y)
            std::memcpy(out.at(r.x, y), row(y) + std::size_t(r.x - crop_x_) * px, std::size_t(r.w) * px);
        return rewound;
    }

    // The region the next decode will be asked for (see Op::expect).
    void set_hint(const Rect& region) { hint_ = region; }
    // Whether this decoder is for r: it has no hint, or r lies in its
    // hint's columns and at or below its hint's top row.
    bool serves(const Rect& r) const {
        return !hint_ || (r.y >= hint_->y && r.x >= hint_->x && r.right() <= hint_->right());
    }

    std::size_t bytes() const { return window_.size(); }

private:
    std::uint8_t* row(int y) const {
        return reinterpret_cast<std::uint8_t*>(window_.tile().data) + std::size_t(y % capacity_) * row_bytes();
    }
    std::size_t row_bytes() const { return std::size_t(crop_w_) * info_.bands; }

    [[noreturn]] void fail(const std::string& what) {
        std::string m = ctx_.message;
        close();
        throw IoError(path_, what + (m.empty() ? "" : ": " + m) +
                                 "; the file may be truncated or damaged: check it, or write it again");
    }

    void start() {
        ctx_.path = &path_;
        ctx_.offset = 0;
        ctx_.truncated = false;
        ctx_.message[0] = 0;
        attach_errors(ctx_, d_);
        if (setjmp(ctx_.jump)) {
            jpeg_destroy_decompress(&d_);
            created_ = false;
            fail("cannot decode the JPEG header");
        }
        jpeg_create_decompress(&d_);
        created_ = true;
        attach_source(ctx_, d_);
        jpeg_read_header(&d_, TRUE);
        d_.out_color_space = info_.bands == 1 ? JCS_GRAYSCALE : JCS_RGB;
        d_.dct_method = JDCT_ISLOW;  // libvips's choice; any other changes pixels
        jpeg_start_decompress(&d_);
        if (int(d_.output_width) != info_.width || int(d_.output_height) != info_.height ||
            int(d_.output_components) != info_.bands)
            fail("the file changed since the pipeline was built");
        crop_x_ = 0;
        crop_w_ = info_.width;
        if (hint_ && (hint_->x > kCropMargin || hint_->right() < info_.width - kCropMargin)) {
            // Decode only the columns asked for (IDCT, upsampling and colour
            // conversion are skipped for the rest), plus a margin so that
            // the edge columns see the same neighbours as in a whole decode.
            // libjpeg widens the crop to whole iMCUs and says where it landed.
            JDIMENSION x = JDIMENSION(std::max(0, hint_->x - kCropMargin));
            JDIMENSION w = JDIMENSION(std::min(info_.width, hint_->right() + kCropMargin)) - x;
            jpeg_crop_scanline(&d_, &x, &w);
            crop_x_ = int(x);
            crop_w_ = int(w);
        }
        if (window_.valid() && std::size_t(crop_w_) * info_.bands * capacity_ != window_.size()) {
            window_.reset();  // rows are a different width now
            capacity_ = 0;
        }
        open_ = true;
        lo_ = hi_ = 0;
    }

    // Makes rows [y0, y1) available: skips [hi, y0) if the window has not
    // reached y0, lets go of rows above y0, decodes up to y1.
    void advance(int y0, int y1) {
        if (y0 > hi_) {
            long skipped = guarded([&] { return long(jpeg_skip_scanlines(&d_, JDIMENSION(y0 - hi_))); });
            if (skipped < 0) fail("cannot decode");
            hi_ += int(skipped);
            lo_ = hi_;
            g_rows_skipped += std::uint64_t(skipped);
        }
        lo_ = std::max(lo_, std::min(y0, hi_));
        int need = y1 - lo_;
        if (need > capacity_) grow(need);
        while (hi_ < y1) {
            JSAMPROW rows[16];
            int n = 0;
            for (; n < 16 && hi_ + n < y1; ++n) rows[n] = row(hi_ + n);
            long got = guarded([&] { return long(jpeg_read_scanlines(&d_, rows, JDIMENSION(n))); });
            if (got < 0) fail("cannot decode");
            if (ctx_.truncated) fail("premature end of JPEG data");
            if (got == 0) fail("the decoder stopped early");
            g_rows_decoded += std::uint64_t(got);
            g_pixels_decoded += std::uint64_t(got) * d_.output_width;
            hi_ += int(got);
        }
    }

    // Runs one libjpeg call with its error exit landing here: -1 on error.
    // (setjmp in a frame of its own, holding nothing that a longjmp could
    // leave half-updated.)
    template <class F>
    long guarded(F&& call) {
        if (setjmp(ctx_.jump)) return -1;
        return call();
    }

    // A bigger ring keeping rows [lo, hi) at the same slots (y % capacity).
    void grow(int rows) {
        int cap = std::max(rows, 2 * capacity_);
        cap = std::min(cap, info_.height);
        Buffer next(account_, {0, 0, crop_w_, cap}, info_.bands, Format::u8);
        int old = capacity_;
        auto old_row = [&](int y) {
            return reinterpret_cast<std::uint8_t*>(window_.tile().data) + std::size_t(y % old) * row_bytes();
        };
        for (int y = lo_; y < hi_; ++y)
            std::memcpy(reinterpret_cast<std::uint8_t*>(next.tile().data) + std::size_t(y % cap) * row_bytes(),
                        old_row(y), row_bytes());
        window_ = std::move(next);
        capacity_ = cap;
    }

    void close() {
        if (created_) jpeg_destroy_decompress(&d_);
        created_ = false;
        open_ = false;
        lo_ = hi_ = 0;
    }

    std::string path_;
    ImageInfo info_;
    MemoryAccount* account_;
    jpeg_decompress_struct d_{};
    Context ctx_;
    bool created_ = false, open_ = false;
    int lo_ = 0, hi_ = 0;  // rows [lo, hi) are in the window
    Buffer window_;
    int capacity_ = 0;
    std::optional<Rect> hint_;
    int crop_x_ = 0, crop_w_ = 0;  // the decoded columns
};

// A source's decoders, one per announced segment (Op::expect) not yet
// ended (Op::release), oldest first: usually one; two while the last tiles
// of a segment and the first of the next are in flight together (the
// writer's lanes put a scan's last tile of a row a few positions before its
// first of the next row), so that neither segment's reads restart the
// other's decode with the wrong crop.
using Slot = std::vector<std::shared_ptr<Decoder>>;

struct Registry {
    std::mutex mu;
    std::list<std::pair<JpegDecoders::Source, Slot>> lru;
    std::unordered_map<JpegDecoders::Source, decltype(lru)::iterator> map;
    std::size_t budget = std::size_t(1) << 30;
    std::atomic<std::size_t> rewinds{0};
    std::size_t live = 0, max_live = 0;  // decoders open, and most at once
    MemoryAccount account{&process_pixel_memory()};
};

// Never destroyed: a load op releases its decoder when it is destroyed,
// which may be after static destruction began (a graph in a static).
Registry& reg() {
    static Registry* r = new Registry;
    return *r;
}

}  // namespace

bool probe_streamable_jpeg(const std::string& path, ImageInfo& info) {
    // A plain open and close: building a graph must leave no descriptor open.
    unsigned char magic[3] = {0, 0, 0};
    if (std::FILE* f = std::fopen(path.c_str(), "rb")) {
        std::size_t n = std::fread(magic, 1, 3, f);
        std::fclose(f);
        if (n != 3) return false;
    }
    if (magic[0] != 0xFF || magic[1] != 0xD8 || magic[2] != 0xFF) return false;
    jpeg_decompress_struct d{};
    Context c;
    c.path = &path;
    c.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (c.fd < 0) return false;
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{c.fd};
    attach_errors(c, d);
    if (setjmp(c.jump)) {
        jpeg_destroy_decompress(&d);
        return false;  // libvips will say what is wrong with it
    }
    jpeg_create_decompress(&d);
    attach_source(c, d);
    jpeg_read_header(&d, TRUE);
    bool ok =
        d.data_precision == 8 && (d.num_components == 1 || (d.num_components == 3 && d.jpeg_color_space == JCS_YCbCr));
    info.width = int(d.image_width);
    info.height = int(d.image_height);
    info.bands = d.num_components == 1 ? 1 : 3;
    info.format = Format::u8;
    info.interpretation = info.bands == 1 ? Interpretation::bw : Interpretation::srgb;
    jpeg_destroy_decompress(&d);
    return ok;
}

JpegDecoders& JpegDecoders::instance() {
    static JpegDecoders d;
    return d;
}

namespace {
// The source's slot, made empty if there is none; now the most recently
// used. (Under the registry's lock.)
Slot& slot_for(Registry& r, JpegDecoders::Source source) {
    auto it = r.map.find(source);
    if (it != r.map.end()) {
        r.lru.splice(r.lru.begin(), r.lru, it->second);
        return it->second->second;
    }
    r.lru.emplace_front(source, Slot{});
    r.map.emplace(source, r.lru.begin());
    return r.lru.front().second;
}

std::shared_ptr<Decoder> add_decoder(Registry& r, Slot& slot, const std::string& path, const ImageInfo& info) {
    slot.push_back(std::make_shared<Decoder>(path, info, &r.account));
    r.max_live = std::max(r.max_live, ++r.live);
    return slot.back();
}

void drop_slot(Registry& r, decltype(Registry::lru)::iterator it) {
    r.live -= it->second.size();
    r.map.erase(it->first);
    r.lru.erase(it);
}
}  // namespace

JpegDecoders::Source JpegDecoders::new_source() {
    static std::atomic<Source> next{1};
    return next.fetch_add(1);
}

void JpegDecoders::read(Source source, const std::string& path, const ImageInfo& info, const Tile& out) {
    Registry& r = reg();
    std::shared_ptr<Decoder> dec;
    {
        // the newest decoder whose segment this read is of, else the oldest
        std::lock_guard lock(r.mu);
        Slot& slot = slot_for(r, source);
        for (auto it = slot.rbegin(); it != slot.rend() && !dec; ++it)
            if ((*it)->serves(out.rect)) dec = *it;
        if (!dec) dec = slot.empty() ? add_decoder(r, slot, path, info) : slot.front();
    }
    {
        // Busy: another tile is having this decoder make rows, most often
        // the rows this one needs too (a row of tiles over one scan); the
        // wait lends this thread's slot to the run's spare thread.
        auto lock = lock_or_lend(dec->mu);
        if (dec->read(out)) ++r.rewinds;
    }
    // Over budget: drop the least recently used sources' decoders (not this one's).
    std::lock_guard lock(r.mu);
    while (r.account.current() > r.budget && r.lru.size() > 1 && r.lru.back().first != source)
        drop_slot(r, std::prev(r.lru.end()));
}

void JpegDecoders::expect(Source source, const std::string& path, const ImageInfo& info, const Rect& region) {
    Registry& r = reg();
    std::shared_ptr<Decoder> dec;
    {
        // A decoder of its own for the new segment, even when the newest has
        // not started yet: a run's source stage announces segments up to its
        // tiles in flight ahead of the tiles computed, so the newest may be
        // the current segment's, its first tile not yet computed (giving it
        // this hint instead made the current segment's reads fall outside
        // it and decode whole rows). Decoders are released oldest first, one
        // per segment ended, so one whose segment was never read (its tiles
        // all served from a cache) goes at its segment's end as well.
        std::lock_guard lock(r.mu);
        Slot& slot = slot_for(r, source);
        if (slot.size() >= kMaxSegments) {  // more announced than a plan keeps open: not a plan's use; keep the newest
            r.live -= 1;
            slot.erase(slot.begin());
        }
        dec = add_decoder(r, slot, path, info);
    }
    std::lock_guard lock(dec->mu);
    dec->set_hint(region);  // used when the decoder starts
}

void JpegDecoders::release(Source source) {
    // the oldest segment ended: its decoder goes (the source's last: the slot)
    Registry& r = reg();
    std::lock_guard lock(r.mu);
    auto it = r.map.find(source);
    if (it == r.map.end()) return;
    Slot& slot = it->second->second;
    if (slot.size() > 1) {
        slot.erase(slot.begin());
        --r.live;
    } else {
        drop_slot(r, it->second);
    }
}

void JpegDecoders::forget(Source source) {
    Registry& r = reg();
    std::lock_guard lock(r.mu);
    auto it = r.map.find(source);
    if (it != r.map.end()) drop_slot(r, it->second);
}

void JpegDecoders::set_budget(std::size_t bytes) {
    std::lock_guard lock(reg().mu);
    reg().budget = bytes;
}
std::size_t JpegDecoders::rewinds() const { return reg().rewinds.load(); }
std::string JpegDecoders::stats() const {
    return "jpeg: " + std::to_string(g_pixels_decoded.load() / 1000000) + " Mpx decoded (" +
           std::to_string(g_rows_decoded.load()) + " rows, " + std::to_string(g_rows_skipped.load()) + " skipped), " +
           std::to_string(rewinds()) + " restarts, at most " + std::to_string(reg().max_live) +
           " decoders open holding " + std::to_string(reg().account.peak() >> 20) + " MB of rows";
}
std::uint64_t JpegDecoders::pixels_decoded() const { return g_pixels_decoded.load(); }
std::size_t JpegDecoders::live() const {
    std::lock_guard lock(reg().mu);
    return reg().live;
}
MemoryAccount& JpegDecoders::account() { return reg().account; }

}  // namespace tessera::io
