// Registration math on synthetic pixels: matching, pair planning and the
// global solve (ops/registration), no files involved.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>

#include "support.hpp"
#include "tessera/ops/registration.hpp"

using namespace tessera;
namespace reg = tessera::registration;

namespace {

// A smooth random texture (blurred noise at two scales), one band, w x h,
// in a Buffer so that crops of it are ConstTiles like evaluator output.
Buffer texture(int w, int h, unsigned seed = 1) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(0, 1);
    std::vector<float> a(std::size_t(w) * h);
    for (float& v : a) v = u(rng);
    // a few box blurs of radius 2 (ish Gaussian), plus the fine noise
    std::vector<float> b = a, t(a.size());
    for (int pass = 0; pass < 3; ++pass) {
        for (int y = 0; y < h; ++y)
            for (int x = 0; x < w; ++x) {
                float s = 0;
                int n = 0;
                for (int d = -2; d <= 2; ++d)
                    if (x + d >= 0 && x + d < w) s += b[std::size_t(y) * w + x + d], ++n;
                t[std::size_t(y) * w + x] = s / n;
            }
        for (int y = 0; y < h; ++y)
            for (int x = 0; x < w; ++x) {
                float s = 0;
                int n = 0;
                for (int d = -2; d <= 2; ++d)
                    if (y + d >= 0 && y + d < h) s += t[std::size_t(y + d) * w + x], ++n;
                b[std::size_t(y) * w + x] = s / n;
            }
    }
    Buffer out(nullptr, {0, 0, w, h}, 1, Format::u8);
    Tile o = out.tile();
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            float v = 40 + 300 * (b[std::size_t(y) * w + x] - 0.5f) + 30 * a[std::size_t(y) * w + x];
            o.row<std::uint8_t>(y)[x] = std::uint8_t(std::clamp(v, 0.0f, 255.0f));
        }
    return out;
}

// The pixels of `im` at r (image frame), as grey, with their rect moved to
// `frame_origin` (the frame of the tile they are said to come from).
reg::GreyImage cut(const Buffer& im, const Rect& r, Point tile_origin) {
    reg::GreyImage g = reg::to_grey(im.view().sub(r));
    g.rect = r.translate(-tile_origin.x, -tile_origin.y);
    return g;
}

}  // namespace

TEST_CASE("registration: to_grey sums small integer bands exactly and scales others") {
    Buffer b(nullptr, {5, 7, 2, 1}, 3, Format::u8);
    std::uint8_t* p = b.tile().row<std::uint8_t>(7);
    std::uint8_t px[] = {10, 20, 30, 200, 100, 50};
    std::copy(px, px + 6, p);
    reg::GreyImage g = reg::to_grey(b.view());
    CHECK(g.rect == Rect{5, 7, 2, 1});
    CHECK(g.px[0] == 0);           // 60 - 60
    CHECK(g.px[1] == 350 - 60);    // 350 - 60: fits 0..1023 unscaled
    Buffer f(nullptr, {0, 0, 3, 1}, 1, Format::f32);
    float fv[] = {-1.0f, 0.0f, 1.0f};
    std::copy(fv, fv + 3, f.tile().row<float>(0));
    reg::GreyImage gf = reg::to_grey(f.view());
    CHECK(gf.px[0] == 0);
    CHECK(gf.px[1] == 512);
    CHECK(gf.px[2] == 1023);
}

TEST_CASE("registration: match finds the true offset for shifts across the search radius") {
    Buffer slide = texture(700, 500, 3);
    const int R = 24;
    // image a at (100, 100), b nominally at (300, 120) but really elsewhere
    const Point a{100, 100};
    const Rect win_slide{340, 150, 128, 96};  // a window inside both, slide frame
    for (Point err : {Point{0, 0}, Point{7, -3}, Point{-23, 23}, Point{19, -21}, Point{-1, 1}}) {
        CAPTURE(err.x);
        CAPTURE(err.y);
        const Point b_nominal{300, 120};
        const Point b_true{b_nominal.x + err.x, b_nominal.y + err.y};
        reg::GreyImage w = cut(slide, win_slide, a);
        // the region: the window at the nominal offset, grown by R, read from b's true pixels
        Rect reg_b = win_slide.translate(-b_nominal.x, -b_nominal.y);
        reg_b = {reg_b.x - R, reg_b.y - R, reg_b.w + 2 * R, reg_b.h + 2 * R};
        reg::GreyImage r = cut(slide, reg_b.translate(b_true.x, b_true.y), b_true);
        r.rect = reg_b;
        reg::Match m = reg::match(w, r);
        CHECK(m.found);
        CHECK(m.offset == Point{b_true.x - a.x, b_true.y - a.y});
        CHECK(m.score > 0.9);
    }
}

TEST_CASE("registration: match refuses a flat window - a match on the search border - a poor one") {
    Buffer slide = texture(400, 300, 5);
    reg::GreyImage w = cut(slide, {100, 100, 64, 64}, {0, 0});
    // border: the true placement is 12 px off but the region allows 8
    reg::GreyImage r = cut(slide, {100 + 12 - 8, 100 - 8, 80, 80}, {0, 0});
    reg::Match m = reg::match(w, r);
    CHECK_FALSE(m.found);
    CHECK(m.why.find("edge of the search") != std::string::npos);

    reg::GreyImage flat = w;
    std::fill(flat.px.begin(), flat.px.end(), 7);
    m = reg::match(flat, cut(slide, {92, 92, 80, 80}, {0, 0}));
    CHECK_FALSE(m.found);
    CHECK(m.why.find("flat") != std::string::npos);

    // unrelated texture
    Buffer other = texture(400, 300, 99);
    m = reg::match(w, cut(other, {92, 92, 80, 80}, {0, 0}), 0.5);
    CHECK_FALSE(m.found);
}

TEST_CASE("registration: plan_pairs keeps windows inside both images under any error up to the radius") {
    // 4 x 3 grid of 300 x 200 images stepping 220 x 150
    std::vector<Rect> nominal;
    for (int j = 0; j < 3; ++j)
        for (int i = 0; i < 4; ++i) nominal.push_back({i * 220, j * 150, 300, 200});
    reg::PlanOptions o;
    o.search = 10;
    o.window_w = 64;
    o.window_h = 32;
    o.min_window = 16;
    o.deep_share = 1;
    auto pairs = reg::plan_pairs(nominal, o);
    // 3 x 3 side by side, 4 x 2 above/below, 2 x 3 x 2 diagonal (80 x 50 corners)
    CHECK(pairs.size() == 9 + 8 + 12);
    for (const auto& p : pairs) {
        const Rect& A = nominal[std::size_t(p.a)];
        const Rect& B = nominal[std::size_t(p.b)];
        CHECK(p.a < p.b);
        CHECK(A.translate(-A.x, -A.y).contains(p.window));
        CHECK(B.translate(-B.x, -B.y).contains(p.region));
        // the region is the window at the nominal offset grown by the radius
        Rect w = p.window.translate(A.x - B.x, A.y - B.y);
        CHECK(p.region == Rect{w.x - 10, w.y - 10, w.w + 20, w.h + 20});
    }
    // the other places along an overlap: distinct, inside, then none
    std::vector<Rect> seen;
    for (int attempt = 0;; ++attempt) {
        auto p = reg::plan_window(nominal, 0, 1, o, attempt);
        if (!p) {
            CHECK(attempt == 3);  // top, middle, bottom (the window is as wide as the overlap)
            break;
        }
        CHECK(std::find(seen.begin(), seen.end(), p->window) == seen.end());
        CHECK(nominal[0].translate(-nominal[0].x, -nominal[0].y).contains(p->window));
        CHECK(nominal[1].translate(-nominal[1].x, -nominal[1].y).contains(p->region));
        seen.push_back(p->window);
    }
    CHECK(seen[0] == reg::plan_pairs(nominal, o)[0].window);

    // a larger radius leaves no room in the 50-row overlaps, then none at all
    o.search = 25;
    CHECK(reg::plan_pairs(nominal, o).size() == 9);
    o.search = 100;
    CHECK(reg::plan_pairs(nominal, o).empty());
}

TEST_CASE("registration: plan_pairs reads a share of the images deep and still links every row") {
    // 12 x 4 grid: side-by-side pairs read the top of both images (shallow);
    // above/below pairs need the bottom of the upper one (deep)
    std::vector<Rect> nominal;
    for (int j = 0; j < 4; ++j)
        for (int i = 0; i < 12; ++i) nominal.push_back({i * 220, j * 150, 300, 200});
    reg::PlanOptions o;
    o.search = 10;
    o.window_w = 64;
    o.window_h = 32;
    o.min_window = 16;
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

TEST_CASE("registration: solve_positions recovers jittered positions and drops an outlier") {
    // 5 x 4 grid, jitter summing to zero per axis (the gauge: mean correction 0)
    std::vector<Point> nominal, truth;
    std::mt19937 rng(4);
    std::vector<int> jx, jy;
    for (int k = 0; k < 10; ++k) {
        int a = int(rng() % 33) - 16, b = int(rng() % 33) - 16;
        jx.insert(jx.end(), {a, -a});
        jy.insert(jy.end(), {b, -b});
    }
    std::shuffle(jx.begin(), jx.end(), rng);
    std::shuffle(jy.begin(), jy.end(), rng);
    for (int j = 0; j < 4; ++j)
        for (int i = 0; i < 5; ++i) {
            nominal.push_back({i * 200, j * 150});
            truth.push_back({i * 200 + jx[std::size_t(j * 5 + i)], j * 150 + jy[std::size_t(j * 5 + i)]});
        }
    std::vector<reg::Link> links;
    auto link = [&](int a, int b) {
        links.push_back({a, b, {truth[std::size_t(b)].x - truth[std::size_t(a)].x, truth[std::size_t(b)].y - truth[std::size_t(a)].y}, 0.9});
    };
    for (int j = 0; j < 4; ++j)
        for (int i = 0; i < 5; ++i) {
            if (i + 1 < 5) link(j * 5 + i, j * 5 + i + 1);
            if (j + 1 < 4) link(j * 5 + i, (j + 1) * 5 + i);
        }
    reg::Solution s = reg::solve_positions(nominal, links);
    CHECK(s.positions == truth);
    CHECK(s.rejected == 0);

    // a wrong pair (off by 9 px) is outvoted by the loops around it
    links[3].offset.x += 9;
    s = reg::solve_positions(nominal, links);
    CHECK(s.positions == truth);
    CHECK(s.rejected == 1);
    CHECK_FALSE(s.used[3]);

    // an image without links keeps its nominal position; a separate group
    // of two is placed with its own mean correction at zero
    std::vector<Point> nom2 = {{0, 0}, {100, 0}, {500, 500}, {900, 900}, {1000, 900}};
    std::vector<reg::Link> l2 = {{0, 1, {104, 2}, 1}, {3, 4, {90, -6}, 1}};
    s = reg::solve_positions(nom2, l2);
    CHECK(s.positions[0] == Point{-2, -1});
    CHECK(s.positions[1] == Point{102, 1});
    CHECK(s.positions[2] == Point{500, 500});
    CHECK(s.positions[3] == Point{905, 903});
    CHECK(s.positions[4] == Point{995, 897});
}
