// calc: a pixel-wise expression over named inputs and bands, through
// muparser (the expression language of GDAL 3.11's `gdal raster calc`):
//   {"op": "calc", "inputs": ["red", "nir"], "names": "B04 B08",
//    "expression": "(B08 - B04) / (B08 + B04)"}
// Demand halo: none.
//
// Naming, as GDAL's calc tools: input i is called by the i-th word of
// `names` (separated by spaces or commas), else A, B, C ... (gdal_calc.py's
// letters). In the expression, NAME[k] is band k of that input (counted
// from 1, as gdal raster calc's A[1]) and a bare NAME is "the band of the
// output being computed": with any bare name the expression is evaluated
// once per output band, the output having as many bands as the widest input
// named bare (each such input has 1 band, repeated, or that many, as
// libvips's bandalike); with indexed names only, the output has one band.
// All inputs have the same width and height.
//
// Arithmetic: every sample is read as a double and the expression
// evaluated in double (muparser's value type; its functions sin, sqrt,
// log, min, max, the ?: operator, comparisons giving 1 or 0 ...). The
// result is stored in `format` (default float, as gdal raster calc): a
// float as the C conversion, an integer rounded to the nearest (half away
// from zero), clipped to the format's range, NaN as 0: GDALCopyWords's
// rule, so an integer `format` matches gdal_calc.py --type.
//
// nodata, as gdal_calc.py's --NoDataValue: when `nodata` is given, an
// output sample is that value wherever a sample the expression reads for
// it equals its input band's nodata value (from the input's georeference),
// and the output's georeference says so for every band. Without `nodata`
// the output has none (an input's nodata no longer marks the same pixels).
//
// The expression is parsed when the graph is built (a syntax error or an
// unknown name is a ParamError on `expression` naming muparser's position
// in it). A muparser parser is not thread-safe (its evaluation stack is a
// member), so each worker thread takes its own from a pool, built and
// compiled the first time that worker needs one and kept for every later
// tile: at most one compilation per thread, none per tile. Evaluation is
// muparser's per-value Eval() on compiled bytecode: its bulk mode measured
// no faster (33-45 ns against 32-36 ns a value for the NDVI expression,
// 1M values) and, as Debian builds it with OpenMP, would start OpenMP
// threads of its own beside the evaluator's.
#include <muParser.h>

#include <cctype>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "arith.hpp"
#include "ops_list.hpp"

namespace tessera {
namespace {

// muparser's default name characters, plus the brackets of NAME[k] (which
// muparser does not use otherwise), so that "B04[2]" is one variable.
constexpr const char* kNameChars = "0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ[]";

std::vector<std::string> split_names(const std::string& s) {
    std::vector<std::string> out;
    std::string cur;
    for (char c : s) {
        if (c == ',' || std::isspace(static_cast<unsigned char>(c))) {
            if (!cur.empty()) out.push_back(cur);
            cur.clear();
        } else {
            cur += c;
        }
    }
    if (!cur.empty()) out.push_back(cur);
    return out;
}

bool valid_name(const std::string& n) {
    if (n.empty() || std::isdigit(static_cast<unsigned char>(n[0]))) return false;
    for (char c : n)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
    return true;
}

// One variable the expression uses: input `input`, band `band` (from 0),
// or the output's band when band < 0 (a bare name).
struct Var {
    std::string name;
    int input = 0;
    int band = -1;
};

template <class T>
void store_row(const double* v, std::size_t n, std::byte* out) {
    T* q = reinterpret_cast<T*>(out);
    for (std::size_t i = 0; i < n; ++i) q[i] = arith::stored_round<T>(v[i]);
}
using RowWriter = void (*)(const double*, std::size_t, std::byte*);

class CalcOp final : public Op {
public:
    CalcOp(const Params& p, std::span<const ImageInfo> in) : expression_(p.string("expression")) {
        std::vector<std::string> names = split_names(p.string("names", ""));
        if (names.empty()) {
            if (in.size() > 26)
                throw ParamError("names", "calc has " + std::to_string(in.size()) +
                                              " inputs and only 26 default names (A to Z); name them with 'names'");
            for (std::size_t i = 0; i < in.size(); ++i) names.push_back(std::string(1, char('A' + i)));
        }
        if (names.size() != in.size())
            throw ParamError("names", "names " + std::to_string(names.size()) + " inputs and calc has " +
                                          std::to_string(in.size()) + "; give one name per input, in input order");
        for (std::size_t i = 0; i < names.size(); ++i) {
            if (!valid_name(names[i]))
                throw ParamError("names",
                                 "'" + names[i] + "' is no name: use letters, digits and _, not starting with a digit");
            for (std::size_t j = 0; j < i; ++j)
                if (names[j] == names[i]) throw ParamError("names", "'" + names[i] + "' names two inputs");
            if (in[i].width != in[0].width || in[i].height != in[0].height)
                throw Error("calc: input " + std::to_string(i) + " ('" + names[i] + "') is " +
                            std::to_string(in[i].width) + "x" + std::to_string(in[i].height) + " and input 0 is " +
                            std::to_string(in[0].width) + "x" + std::to_string(in[0].height) +
                            "; give inputs of one size (extract_area or embed first)");
        }
        // Every name the expression may use; muparser says which it does.
        std::vector<Var> all;
        for (std::size_t i = 0; i < names.size(); ++i) {
            all.push_back({names[i], int(i), -1});
            for (int b = 0; b < in[i].bands; ++b)
                all.push_back({names[i] + "[" + std::to_string(b + 1) + "]", int(i), b});
        }
        try {
            mu::Parser parser;
            parser.DefineNameChars(kNameChars);
            std::vector<double> slots(all.size(), 1.0);
            for (std::size_t v = 0; v < all.size(); ++v) parser.DefineVar(all[v].name, &slots[v]);
            parser.SetExpr(expression_);
            parser.Eval();  // compiles: syntax and names are checked here
            if (parser.GetNumResults() != 1)
                throw ParamError("expression", "has " + std::to_string(parser.GetNumResults()) +
                                                   " comma-separated expressions; give one (bandjoin several calcs)");
            const auto& used = parser.GetUsedVar();
            for (const Var& v : all)
                if (used.count(v.name)) vars_.push_back(v);
        } catch (const mu::Parser::exception_type& e) {
            throw ParamError("expression", e.GetMsg() + " (position " + std::to_string(e.GetPos()) +
                                               ", counted from 0, in \"" + expression_ + "\")");
        }
        int bands = 1;
        for (const Var& v : vars_)
            if (v.band < 0) bands = std::max(bands, in[std::size_t(v.input)].bands);
        for (const Var& v : vars_)
            if (v.band < 0 && in[std::size_t(v.input)].bands != 1 && in[std::size_t(v.input)].bands != bands)
                throw ParamError("expression", "names '" + v.name + "' bare (per band) with " +
                                                   std::to_string(in[std::size_t(v.input)].bands) +
                                                   " bands beside an input of " + std::to_string(bands) +
                                                   "; index its bands (" + v.name +
                                                   "[1]) or give inputs of one band count");
        const std::string fmt = p.string("format");
        info_ = in[0];
        info_.bands = bands;
        info_.format = *parse_format(fmt);  // one of the spec's choices
        info_.interpretation = default_interpretation(bands, info_.format);
        has_nodata_ = p.has("nodata");
        nodata_ = has_nodata_ ? p.number("nodata") : 0.0;
        if (info_.geo) {
            info_.geo->nodata.clear();
            info_.geo->alpha_band = -1;
            if (has_nodata_) info_.geo->nodata.assign(std::size_t(bands), nodata_);
        }
        // Each used variable's input nodata value (per band read).
        inputs_.resize(in.size());
        for (std::size_t i = 0; i < in.size(); ++i) {
            inputs_[i].bands = in[i].bands;
            inputs_[i].read = arith::row_reader(in[i].format);
            if (in[i].geo) inputs_[i].nodata = in[i].geo->nodata;
        }
        for (const Var& v : vars_) inputs_[std::size_t(v.input)].used = true;
        write_ = dispatch_format(info_.format, [](auto z) -> RowWriter { return &store_row<decltype(z)>; });
    }

    // Case analysis for an output rect r: one case, the same rect of every
    // input the expression names (an input it never names is not pulled),
    // evaluated per pixel and output band; halo none.
    void demand(const Rect& r, Demand& need) const override {
        for (std::size_t i = 0; i < inputs_.size(); ++i)
            if (inputs_[i].used) need.push_back({int(i), r, std::nullopt});
    }

    void compute(const Tile& out, std::span<const Pulled> in) const override {
        std::unique_ptr<Worker> w = acquire();
        const int width = out.rect.w, bands = out.bands;
        std::vector<const ConstTile*> tiles(inputs_.size(), nullptr);
        for (const Pulled& pl : in) tiles[std::size_t(pl.input)] = &pl.tile;
        std::vector<std::vector<double>> rows(inputs_.size());
        for (std::size_t i = 0; i < inputs_.size(); ++i)
            if (inputs_[i].used) rows[i].resize(std::size_t(width) * std::size_t(inputs_[i].bands));
        std::vector<double> result(std::size_t(width) * std::size_t(bands));
        for (int y = out.rect.y; y < out.rect.bottom(); ++y) {
            for (std::size_t i = 0; i < inputs_.size(); ++i)
                if (inputs_[i].used) inputs_[i].read(*tiles[i], out.rect.x, y, width, rows[i].data());
            for (int x = 0; x < width; ++x)
                for (int b = 0; b < bands; ++b) {
                    bool missing = false;
                    for (std::size_t v = 0; v < vars_.size(); ++v) {
                        const Var& var = vars_[v];
                        const Input& src = inputs_[std::size_t(var.input)];
                        const int band = var.band >= 0 ? var.band : src.bands == 1 ? 0 : b;
                        const double s =
                            rows[std::size_t(var.input)][std::size_t(x) * std::size_t(src.bands) + std::size_t(band)];
                        if (has_nodata_ && std::size_t(band) < src.nodata.size() && src.nodata[std::size_t(band)] &&
                            s == *src.nodata[std::size_t(band)])
                            missing = true;
                        w->slots[v] = s;
                    }
                    result[std::size_t(x) * std::size_t(bands) + std::size_t(b)] = missing ? nodata_ : w->parser.Eval();
                }
            write_(result.data(), result.size(), out.at(out.rect.x, y));
        }
        release(std::move(w));
    }

private:
    struct Input {
        int bands = 1;
        bool used = false;
        arith::RowReader read = nullptr;
        std::vector<std::optional<double>> nodata;
    };
    // One thread's parser, its variables bound to its own slots.
    struct Worker {
        mu::Parser parser;
        std::vector<double> slots;
    };

    std::unique_ptr<Worker> acquire() const {
        {
            std::lock_guard<std::mutex> lock(pool_mutex_);
            if (!pool_.empty()) {
                std::unique_ptr<Worker> w = std::move(pool_.back());
                pool_.pop_back();
                return w;
            }
        }
        auto w = std::make_unique<Worker>();
        w->slots.assign(vars_.size(), 1.0);
        w->parser.DefineNameChars(kNameChars);
        for (std::size_t v = 0; v < vars_.size(); ++v) w->parser.DefineVar(vars_[v].name, &w->slots[v]);
        w->parser.SetExpr(expression_);  // parsed once at build: cannot fail
        w->parser.Eval();                // compiles to bytecode, once per worker
        return w;
    }
    void release(std::unique_ptr<Worker> w) const {
        std::lock_guard<std::mutex> lock(pool_mutex_);
        pool_.push_back(std::move(w));
    }

    std::string expression_;
    std::vector<Var> vars_;
    std::vector<Input> inputs_;
    bool has_nodata_ = false;
    double nodata_ = 0.0;
    RowWriter write_ = nullptr;
    mutable std::mutex pool_mutex_;
    mutable std::vector<std::unique_ptr<Worker>> pool_;
};

}  // namespace

OpSpec calc_op_spec() {
    return {"calc",
            "a muparser expression over named inputs and bands, e.g. (B08 - B04) / (B08 + B04) (gdal raster calc); "
            "halo: none",
            1,
            -1,
            {{.name = "expression",
              .type = ParamType::string,
              .required = true,
              .doc =
                  "muparser expression: NAME[k] is band k (from 1) of an input, a bare NAME its band per output band"},
             {.name = "names",
              .type = ParamType::string,
              .default_text = "A B C ...",
              .doc = "the inputs' names in order, separated by spaces or commas",
              .default_value = std::string("")},
             {.name = "format",
              .type = ParamType::string,
              .doc = "output format; integers rounded to nearest and clipped (GDAL's rule)",
              .default_value = std::string("float"),
              .choices = format_spellings()},
             {.name = "nodata",
              .type = ParamType::number,
              .default_text = "none",
              .doc = "output value where a sample read equals its input's nodata (gdal_calc.py --NoDataValue)"}},
            false,
            &make_op<CalcOp>,
            false,
            "arithmetic",
            "0"};
}

}  // namespace tessera
