// Registration on pixels: phase correlation with sub-pixel refinement on
// generated microscope acquisitions with their ground truth
// (../shared/bench/make_acquisition), pair planning, the permutation
// threshold and the global solve with its stage model.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "support.hpp"
#include "tessera/mosaic.hpp"
#include "tessera/positions.hpp"
#include "tessera/ops/registration.hpp"

using namespace tessera;
namespace fs = std::filesystem;
namespace reg = tessera::registration;

namespace {

// truth.csv of an acquisition: file -> true position (read by the
// project's own positions reader, which takes fractions).
std::map<std::string, reg::Vec2> read_truth(const fs::path& csv) {
    std::map<std::string, reg::Vec2> out;
    for (const Placement& p : read_positions_csv(csv.string())) out[p.file] = {p.at[0], p.at[1]};
    return out;
}

// RMS and largest error of solved positions against the truth, up to the
// common shift (as ../shared/bench/score_positions.py scores them).
struct Error2 {
    double rms = 0, max = 0;
};
Error2 score(const std::vector<Placement>& tiles, const RegisterReport& rep,
             const std::map<std::string, reg::Vec2>& truth) {
    std::vector<reg::Vec2> d;
    reg::Vec2 mean;
    for (std::size_t i = 0; i < tiles.size(); ++i) {
        const reg::Vec2 t = truth.at(tiles[i].file);
        d.push_back({rep.positions[i][0] - t.x, rep.positions[i][1] - t.y});
        mean.x += d.back().x / double(tiles.size());
        mean.y += d.back().y / double(tiles.size());
    }
    Error2 e;
    for (const reg::Vec2& v : d) {
        const double r = std::hypot(v.x - mean.x, v.y - mean.y);
        e.rms += r * r / double(d.size());
        e.max = std::max(e.max, r);
    }
    e.rms = std::sqrt(e.rms);
    return e;
}

}  // namespace

TEST_CASE("registration: low-overlap acquisitions register to a tenth of a pixel at 3 - 6 and 10 % overlap") {
    // tile sizes that give overlaps of 8 px and more at 3 %; 16-bit and
    // 8-bit, fractional stage error and drift, vignetting, dark offset,
    // gain and noise, snake order
    struct Case {
        const char* args;
    } cases[] = {
        {"cols=5 rows=4 tile=320x288 overlap=3 bits=16 error=2.5 seed=11"},
        {"cols=5 rows=4 tile=256x192 overlap=6 bits=16 seed=3"},
        {"cols=5 rows=4 tile=256x192 overlap=6 bits=8 seed=4"},
        {"cols=4 rows=4 tile=256x256 overlap=10 bits=8 bands=3 seed=5"},
        {"cols=4 rows=3 tile=300x240 overlap=10 bits=16 error=4 drift=0.8 seed=6"},
    };
    for (const Case& c : cases) {
        const std::string args = c.args;
        CAPTURE(args);
        tt::TempDir tmp;
        tt::make_acquisition(tmp.path, c.args);
        const std::vector<Placement> tiles = read_positions_csv((tmp / "nominal.csv").string());
        RegisterOptions o;
        o.threads = 2;
        RegisterReport rep = register_positions(tiles, o, standard_registry());
        const Error2 e = score(tiles, rep, read_truth(tmp / "truth.csv"));
        CAPTURE(e.rms);
        CAPTURE(e.max);
        CHECK(rep.by_pairs == tiles.size());
        CHECK(e.rms <= 0.1);
        CHECK(e.max <= 0.25);
        // the threshold was learned from pairs that cannot overlap, and it
        // lies between what they score and what the true pairs score
        CHECK(rep.null_scored >= 8);
        for (const PairResult& p : rep.pairs) CHECK(p.score > rep.threshold);
    }
}

TEST_CASE("registration: the thread count and the band choice of a grey set change no position") {
    tt::TempDir tmp;
    tt::make_acquisition(tmp.path, "cols=4 rows=3 tile=256x192 overlap=8 bits=16 bands=3 seed=7");
    const std::vector<Placement> tiles = read_positions_csv((tmp / "nominal.csv").string());
    RegisterOptions o;
    o.threads = 1;
    RegisterReport one = register_positions(tiles, o, standard_registry());
    o.threads = 2;
    RegisterReport two = register_positions(tiles, o, standard_registry());
    CHECK(one.positions == two.positions);
    CHECK(one.threshold == two.threshold);
    o.band = 1;
    RegisterReport band = register_positions(tiles, o, standard_registry());
    const Error2 e = score(tiles, band, read_truth(tmp / "truth.csv"));
    CHECK(e.rms <= 0.1);
    o.band = 3;
    CHECK(tt::error_of([&] { register_positions(tiles, o, standard_registry()); }).find("register-band") !=
          std::string::npos);
}

TEST_CASE("registration: a tile that shows something else is not trusted and is placed by the stage model") {
    // tile 6 of a 4 x 3 acquisition (row 2, column 3 in snake order)
    // replaced by tile 1 (the top-left corner of the specimen): its strips
    // show nothing its neighbours show
    tt::TempDir tmp;
    tt::make_acquisition(tmp.path, "cols=4 rows=3 tile=256x192 overlap=8 bits=16 seed=8");
    fs::copy_file(tmp / "tiles/tile_0001.tif", tmp / "tiles/tile_0006.tif", fs::copy_options::overwrite_existing);
    const std::vector<Placement> tiles = read_positions_csv((tmp / "nominal.csv").string());
    RegisterOptions o;
    RegisterReport rep = register_positions(tiles, o, standard_registry());
    std::size_t six = 0;
    while (!tiles[six].file.ends_with("tile_0006.tif")) ++six;
    for (const PairResult& p : rep.pairs)
        if (p.a == six || p.b == six) {
            CHECK_FALSE(p.used);
        } else {
            CHECK(p.used);
        }
    CHECK(rep.placement[six] == TilePlacement::stage_model);
    CHECK(rep.by_model == 1);
    CHECK(rep.by_pairs == tiles.size() - 1);
    // the model puts it within the stage's error of its true place, the
    // others stay exact
    const auto truth = read_truth(tmp / "truth.csv");
    std::vector<Placement> rest;
    RegisterReport rest_rep;
    for (std::size_t i = 0; i < tiles.size(); ++i)
        if (i != six) {
            rest.push_back(tiles[i]);
            rest_rep.positions.push_back(rep.positions[i]);
        }
    CHECK(score(rest, rest_rep, truth).max <= 0.25);
}

TEST_CASE("registration: overlaps thinner than 8 px are reported and the rest register") {
    // 2 % of 256 x 192: 5 px side by side, 4 px stacked: nothing to register
    tt::TempDir tmp;
    tt::make_acquisition(tmp.path, "cols=3 rows=2 tile=256x192 overlap=2 bits=16 seed=9");
    const std::vector<Placement> tiles = read_positions_csv((tmp / "nominal.csv").string());
    RegisterOptions o;
    const std::string err = tt::error_of([&] { register_positions(tiles, o, standard_registry()); });
    CHECK(err.find("no two tiles overlap enough") != std::string::npos);
    CHECK(err.find("7 neighbours overlap less") != std::string::npos);
    // stacked 4 % (7 px) thin, side by side 4 % of 400 (16 px) registers
    tt::TempDir tmp2;
    tt::make_acquisition(tmp2.path, "cols=3 rows=2 tile=400x180 overlap=4 bits=16 seed=9");
    const std::vector<Placement> t2 = read_positions_csv((tmp2 / "nominal.csv").string());
    RegisterReport rep = register_positions(t2, o, standard_registry());
    CHECK(rep.thin.size() == 3);
    CHECK(rep.registered == 4);
    CHECK(rep.by_pairs == 3);
    CHECK(rep.by_group == 3);
}

TEST_CASE(
    "registration: plan_pairs cuts a window of the overlap from b - and from a the window grown by the stage error") {
    // 4 x 3 grid of 300 x 200 images stepping 220 x 150: overlaps of 80
    // side by side, 50 stacked, 80 x 50 diagonal corners
    std::vector<Rect> nominal;
    for (int j = 0; j < 3; ++j)
        for (int i = 0; i < 4; ++i) nominal.push_back({i * 220, j * 150, 300, 200});
    reg::PlanOptions o;
    o.error_x = 10;
    o.error_y = 6;
    o.max_area = 1 << 14;
    o.deep_share = 1;
    // the corners are not pairs unless asked for
    CHECK(reg::plan_pairs(nominal, o).size() == 9 + 8);
    o.corners = true;
    auto pairs = reg::plan_pairs(nominal, o);
    CHECK(pairs.size() == 9 + 8 + 12);
    for (const auto& p : pairs) {
        const Rect& A = nominal[std::size_t(p.a)];
        const Rect& B = nominal[std::size_t(p.b)];
        CHECK(p.a < p.b);
        CHECK(A.translate(-A.x, -A.y).contains(p.crop_a));
        CHECK(B.translate(-B.x, -B.y).contains(p.crop_b));
        CHECK(p.nominal == Point{B.x - A.x, B.y - A.y});
        CHECK(p.error == Point{10, 6});
        // b's crop is a window of the overlap; a's crop is that window
        // grown by the error, clipped to a: it holds b's window at every
        // reading inside the error that stays on a
        const Rect ca = p.crop_a.translate(A.x, A.y), cb = p.crop_b.translate(B.x, B.y);
        const Rect ov = A.intersect(B);
        CHECK(ov.contains(cb));
        CHECK(Rect{cb.x - 10, cb.y - 6, cb.w + 20, cb.h + 12}.intersect(A) == ca);
        // under the area budget: the window, and a's crop grown by the error
        CHECK(cb.area() <= (1 << 14));
        CHECK(ca.area() <= 4 * (1 << 14));
    }
    // the other places along an overlap (a window of half its length):
    // distinct, inside, then none
    const reg::PlanOptions whole = o;
    o.max_area = 80 * 100;
    std::vector<Rect> seen;
    for (int attempt = 0;; ++attempt) {
        auto p = reg::plan_window(nominal, 0, 1, o, attempt);
        if (!p) {
            CHECK(attempt == 3);  // top, middle, bottom
            break;
        }
        CHECK(std::find(seen.begin(), seen.end(), p->crop_a) == seen.end());
        seen.push_back(p->crop_a);
    }
    CHECK(seen[0] == reg::plan_pairs(nominal, o)[0].crop_a);
    CHECK(seen[0].y == 0);  // side by side: the top first
    // with the budget of 2^14, the window is the whole overlap: one place
    CHECK(reg::plan_window(nominal, 0, 1, whole, 0)->crop_b.h == 200);
    CHECK_FALSE(reg::plan_window(nominal, 0, 1, whole, 1));
    o = whole;

    // the permutation test's strip of b: the same size, on b's far side,
    // and read at the same shift
    auto n = reg::plan_null(nominal, pairs[0]);
    REQUIRE(n);
    CHECK(n->crop_a == pairs[0].crop_a);
    CHECK(n->crop_b.w == pairs[0].crop_b.w);
    CHECK(n->crop_b.right() == 300);
    CHECK(n->nominal.x + n->crop_b.x == pairs[0].nominal.x + pairs[0].crop_b.x);
    // a's far side instead, and both
    auto n1 = reg::plan_null(nominal, pairs[0], 1), n2 = reg::plan_null(nominal, pairs[0], 2);
    REQUIRE(n1);
    REQUIRE(n2);
    CHECK(n1->crop_b == pairs[0].crop_b);
    CHECK(n1->crop_a.x == 0);
    CHECK(n2->crop_a == n1->crop_a);
    CHECK(n2->crop_b == n->crop_b);
    CHECK_FALSE(reg::plan_null(nominal, pairs[0], 3));

    // thin overlaps are reported, not planned
    o.min_overlap = 60;
    CHECK(reg::plan_pairs(nominal, o).size() == 9);
    CHECK(reg::too_thin(nominal, o).size() == 8 + 12);
}

TEST_CASE("registration: plan_pairs reads a share of the images deep and still links every row") {
    // 12 x 4 grid: side-by-side pairs read the top of both images (shallow);
    // above/below pairs need the bottom of the upper one (deep)
    std::vector<Rect> nominal;
    for (int j = 0; j < 4; ++j)
        for (int i = 0; i < 12; ++i) nominal.push_back({i * 220, j * 150, 300, 200});
    reg::PlanOptions o;
    o.error_x = o.error_y = 10;
    o.max_area = 1 << 12;
    o.min_along = 16;
    o.corners = true;
    o.deep_share = 0.25;
    auto pairs = reg::plan_pairs(nominal, o);
    int shallow = 0;
    std::vector<int> deep_links(3, 0);
    std::set<int> deep_images;
    for (const auto& p : pairs) {
        if (!p.deep) {
            ++shallow;
            CHECK(p.a / 12 == p.b / 12);  // same row
            continue;
        }
        ++deep_links[std::size_t(p.a / 12)];
        deep_images.insert(p.a);
    }
    CHECK(shallow == 11 * 4);
    // each of the 3 row gaps: 3 of its 12 upper images read deep, each with
    // its link below and its diagonals
    for (int n : deep_links) CHECK(n >= 3);
    CHECK(deep_images.size() == 9);
    o.deep_share = 1;
    CHECK(reg::plan_pairs(nominal, o).size() == 11 * 4 + 12 * 3 + 11 * 3 * 2);
}

TEST_CASE("registration: plan_pairs leaves no pair out for images not decoded top to bottom") {
    // the same 4 rows of 12 as above; half the images are TIFFs (any strip
    // reads alone): only pairs with a deep side in a JPEG can be left out
    std::vector<Rect> nominal;
    for (int r = 0; r < 4; ++r)
        for (int c = 0; c < 12; ++c) nominal.push_back({c * 220, r * 150, 300, 200});
    reg::PlanOptions o;
    o.error_x = o.error_y = 10;
    o.max_area = 1 << 12;
    o.min_along = 16;
    o.corners = true;
    o.deep_share = 0.1;
    const std::size_t all = reg::plan_pairs(nominal, [&] { reg::PlanOptions e = o; e.deep_share = 1; return e; }()).size();
    const std::size_t jpeg = reg::plan_pairs(nominal, o).size();
    CHECK(jpeg < all);
    o.top_down.assign(nominal.size(), false);
    CHECK(reg::plan_pairs(nominal, o).size() == all);
    for (std::size_t i = 0; i < nominal.size(); i += 2) o.top_down[i] = true;
    for (const reg::PairPlan& p : reg::plan_pairs(nominal, o))
        if (p.deep) CHECK((reg::deep_read(nominal, o, p.a, p.crop_a) || reg::deep_read(nominal, o, p.b, p.crop_b)));
    CHECK(!reg::deep_read(nominal, o, 1, Rect{0, 150, 10, 50}));  // a TIFF read at its bottom
    CHECK(reg::deep_read(nominal, o, 0, Rect{0, 150, 10, 50}));   // a JPEG read at its bottom
}

TEST_CASE("registration: solve_positions recovers fractional positions - drops an outlier - models the stage") {
    // 5 x 4 grid, jitter summing to zero per axis (the gauge: mean correction 0)
    std::vector<reg::Vec2> nominal, truth;
    std::mt19937 rng(4);
    std::vector<double> jx, jy;
    for (int k = 0; k < 10; ++k) {
        double a = double(int(rng() % 3301) - 1650) / 100, b = double(int(rng() % 3301) - 1650) / 100;
        jx.insert(jx.end(), {a, -a});
        jy.insert(jy.end(), {b, -b});
    }
    std::shuffle(jx.begin(), jx.end(), rng);
    std::shuffle(jy.begin(), jy.end(), rng);
    for (int j = 0; j < 4; ++j)
        for (int i = 0; i < 5; ++i) {
            nominal.push_back({i * 200.0, j * 150.0});
            truth.push_back({i * 200 + jx[std::size_t(j * 5 + i)], j * 150 + jy[std::size_t(j * 5 + i)]});
        }
    std::vector<reg::Link> links;
    auto link = [&](int a, int b) {
        links.push_back(
            {a,
             b,
             {truth[std::size_t(b)].x - truth[std::size_t(a)].x, truth[std::size_t(b)].y - truth[std::size_t(a)].y},
             0.9});
    };
    for (int j = 0; j < 4; ++j)
        for (int i = 0; i < 5; ++i) {
            if (i + 1 < 5) link(j * 5 + i, j * 5 + i + 1);
            if (j + 1 < 4) link(j * 5 + i, (j + 1) * 5 + i);
        }
    auto near = [](const std::vector<reg::Vec2>& a, const std::vector<reg::Vec2>& b, double tol) {
        for (std::size_t i = 0; i < a.size(); ++i)
            if (std::abs(a[i].x - b[i].x) > tol || std::abs(a[i].y - b[i].y) > tol) return false;
        return true;
    };
    reg::Solution s = reg::solve_positions(nominal, links);
    CHECK(near(s.positions, truth, 1e-6));
    CHECK(s.rejected == 0);

    // a wrong pair (off by 9 px) is outvoted by the loops around it
    links[3].offset.x += 9;
    s = reg::solve_positions(nominal, links);
    CHECK(near(s.positions, truth, 1e-6));
    CHECK(s.rejected == 1);
    CHECK_FALSE(s.used[3]);

    // The stage model: a stage whose steps are 202 x 149 instead of 200 x
    // 150, drifting 0.5 px down per column. The links of image 7 are gone;
    // the model fitted to the rest puts it where that stage would.
    std::vector<reg::Vec2> stage;
    for (int j = 0; j < 4; ++j)
        for (int i = 0; i < 5; ++i) stage.push_back({i * 202.0, j * 149.0 + 0.5 * i});
    links.clear();
    auto slink = [&](int a, int b) {
        if (a == 7 || b == 7) return;
        links.push_back(
            {a,
             b,
             {stage[std::size_t(b)].x - stage[std::size_t(a)].x, stage[std::size_t(b)].y - stage[std::size_t(a)].y},
             1});
    };
    for (int j = 0; j < 4; ++j)
        for (int i = 0; i < 5; ++i) {
            if (i + 1 < 5) slink(j * 5 + i, j * 5 + i + 1);
            if (j + 1 < 4) slink(j * 5 + i, (j + 1) * 5 + i);
        }
    // image 18 and 19 only linked to each other: a group of two
    std::erase_if(links, [](const reg::Link& l) {
        return (l.a == 18) != (l.b == 18) && (l.a == 19 || l.b == 19 || l.a == 13 || l.a == 17);
    });
    s = reg::solve_positions(nominal, links);
    CHECK(s.placed[7] == reg::Placed::stage_model);
    CHECK(s.placed[0] == reg::Placed::registered);
    // up to the common shift: compare differences to image 0
    auto rel = [&](std::size_t i) {
        return reg::Vec2{s.positions[i].x - s.positions[0].x, s.positions[i].y - s.positions[0].y};
    };
    CHECK(std::abs(rel(7).x - stage[7].x) < 1e-6);
    CHECK(std::abs(rel(7).y - stage[7].y) < 1e-6);
    if (s.placed[18] == reg::Placed::group) {
        CHECK(std::abs(rel(18).x - stage[18].x) < 1e-6);
        CHECK(std::abs(rel(19).y - stage[19].y) < 1e-6);
    }

    // no links at all: every image where the (identity) model puts it
    s = reg::solve_positions(nominal, {});
    CHECK(near(s.positions, nominal, 0));
    CHECK(s.placed[3] == reg::Placed::stage_model);
}

TEST_CASE("registration: learned_threshold is the high quantile of the null scores - never below the floor") {
    std::vector<double> null;
    for (int k = 0; k < 100; ++k) null.push_back(k / 100.0);
    CHECK(reg::learned_threshold(null, 0.1) == doctest::Approx(0.9801));
    CHECK(reg::learned_threshold({0.01, 0.02, 0.03, 0.04}, 0.1) == 0.1);
    CHECK(reg::learned_threshold({0.5, 0.6}, 0.1) == 0.1);  // too few to say anything
}

namespace {

// The normalised correlation of two tiles' detail (band 0 less its
// Gaussian blur of sigma 3, so that shading does not count) over their
// overlap when placed at pa and pb (rounded): what a seam shows.
double overlap_ncc(const std::string& fa, std::array<double, 2> pa, const std::string& fb, std::array<double, 2> pb) {
    auto detail = [](const std::string& f) {
        vips::VImage im = vips::VImage::new_from_file(f.c_str())[0].cast(VIPS_FORMAT_DOUBLE);
        return (im - im.gaussblur(3)).copy_memory();
    };
    vips::VImage a = detail(fa), b = detail(fb);
    const Rect ra{int(std::lround(pa[0])), int(std::lround(pa[1])), a.width(), a.height()};
    const Rect rb{int(std::lround(pb[0])), int(std::lround(pb[1])), b.width(), b.height()};
    // less a margin of 8 px: the blur's own edges
    Rect ov = ra.intersect(rb);
    ov = {ov.x + 8, ov.y + 8, ov.w - 16, ov.h - 16};
    if (ov.w < 2 || ov.h < 2) return -2;
    vips::VImage ca = a.extract_area(ov.x - ra.x, ov.y - ra.y, ov.w, ov.h);
    vips::VImage cb = b.extract_area(ov.x - rb.x, ov.y - rb.y, ov.w, ov.h);
    const double ma = ca.avg(), mb = cb.avg();
    return ((ca - ma) * (cb - mb)).avg() / (ca.deviate() * cb.deviate());
}

// Registers tiles with the defaults and checks what a user would: every
// tile placed by its pairs, every pair trusted and consistent with the
// others, and every overlap after placement showing the same detail in both
// tiles (its correlation above `bound`, and well above the same overlap's
// with one tile 3 px off: it is the placement, not the texture, that agrees).
void check_real_set(const std::vector<Placement>& tiles, double bound) {
    RegisterOptions o;
    RegisterReport rep = register_positions(tiles, o, standard_registry());
    CHECK(rep.by_pairs == tiles.size());
    CHECK(rep.null_scored >= 8);
    for (const PairResult& p : rep.pairs) {
        CAPTURE(tiles[p.a].file);
        CAPTURE(tiles[p.b].file);
        CHECK(p.used);
        CHECK(p.residual < 1.0);
        const std::array<double, 2> off{rep.positions[p.b][0] + 3, rep.positions[p.b][1] + 3};
        const double after = overlap_ncc(tiles[p.a].file, rep.positions[p.a], tiles[p.b].file, rep.positions[p.b]);
        const double wrong = overlap_ncc(tiles[p.a].file, rep.positions[p.a], tiles[p.b].file, off);
        CAPTURE(wrong);
        CHECK(after > bound);
        CHECK(after > wrong + 0.15);
    }
}

}  // namespace

TEST_CASE("registration: the real confocal set registers from its TileConfiguration with the defaults") {
    // 4 x 3 tiles of 1024^2 at 10 % overlap, snake order, a metal surface
    // with few features and lens distortion (the set comes from a distortion
    // correction project: side and corner offsets disagree by 1.7 px)
    const fs::path dir = tt::shared_dir() / "data/real/lscm_3x4_10pct";
    check_real_set(read_positions((dir / "TileConfiguration.txt").string()), 0.2);
}

TEST_CASE("registration: the real electron-microscope set registers by its grid pattern with the defaults") {
    // 2 x 3 grey JPEG tiles of 512 x 442 named by their grid place; "about
    // 20 %" overlap is all that is known (side by side it is 26 %, stacked
    // 10 %: 42 px off the nominal step)
    GridOptions g;
    g.cols = 2, g.rows = 3, g.overlap = 20;
    const fs::path dir = tt::shared_dir() / "data/real/sem_2x3";
    check_real_set(grid_positions((dir / "stitch2d_ex[Grid@{c} {r}].jpg").string(), g, standard_registry()), 0.3);
}
