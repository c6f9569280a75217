// End to end in a browser: a pyramid written by `tessera run`, the page
// `tessera view` writes, served on 127.0.0.1 and loaded by headless
// Chromium; the server must see tile requests and the screenshot must show
// the image's colours where OpenSeadragon puts them.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <csignal>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "support.hpp"

namespace fs = std::filesystem;

namespace {

using tt::slurp;

std::string find_chromium() {
    for (const char* name : {"chromium", "chromium-browser", "google-chrome"}) {
        std::string out;
        if (tt::run_command(std::string("command -v ") + name, &out) == 0 && !out.empty()) return name;
    }
    return "";
}

// A port nobody listens on now (the kernel's pick).
int free_port() {
    int s = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t n = sizeof a;
    int port = 0;
    if (::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &n) == 0)
        port = ntohs(a.sin_port);
    ::close(s);
    return port;
}

bool accepts(int port) {
    int s = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(std::uint16_t(port));
    bool ok = ::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(s);
    return ok;
}

// python3 -m http.server on dir, stopped (by its pid) when this dies.
struct Server {
    Server(const fs::path& dir, int port, const fs::path& log) {
        std::string out;
        tt::run_command("cd '" + dir.string() + "' && (python3 -m http.server " + std::to_string(port) +
                            " --bind 127.0.0.1 >'" + log.string() + "' 2>&1 & echo $!)",
                        &out);
        pid = std::atoi(out.c_str());
        for (int i = 0; i < 100 && !accepts(port); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ~Server() {
        if (pid > 0) ::kill(pid, SIGTERM);
    }
    int pid = 0;
};

// The pyramid `save_path` (with `keys`, JSON) written by `tessera run` of
// a 2000x1000 image (left half red, right half blue), `tessera view VIEW`
// (page `page`), served on 127.0.0.1 and shot by headless Chromium: the
// server must see requests for `tiles` and the shot the image's colours
// where OpenSeadragon puts them.
void view_in_chromium(const std::string& save_path, const std::string& keys, const std::string& view,
                      const std::string& page, const std::string& tiles) {
    const std::string chromium = find_chromium();
    if (chromium.empty()) {
        MESSAGE("skipped: chromium is not installed (tools/deps.sh installs it: apt-get install chromium)");
        return;
    }
    tt::TempDir tmp;
    std::ofstream(tmp / "p.json") << R"({"version": 1, "nodes": [
        {"id": "red", "op": "black", "width": 2000, "height": 1000, "bands": 3, "value": [200, 30, 30]},
        {"id": "blue", "op": "black", "width": 1000, "height": 1000, "bands": 3, "value": [30, 30, 200]},
        {"id": "both", "op": "insert", "inputs": ["red", "blue"], "at": [[1000, 0]]},
        {"id": "out", "op": "save", "inputs": ["both"], "path": ")" +
                                         save_path + "\"" + keys + "}]}";
    std::string out;
    REQUIRE(tt::run_command(tt::tessera_binary() + " run -q " + (tmp / "p.json").string(), &out) == 0);
    int rc = tt::run_command(tt::tessera_binary() + " view " + (tmp / view).string(), &out);
    if (rc != 0 && out.find("OpenSeadragon") != std::string::npos) {
        MESSAGE("skipped: this build has no OpenSeadragon: " << out);
        return;
    }
    CAPTURE(out);
    REQUIRE(rc == 0);
    REQUIRE(fs::exists(tmp / page));
    REQUIRE(fs::exists(tmp / "openseadragon" / "openseadragon.min.js"));
    // no CDN: the script loads from beside the page
    const std::string html = slurp(tmp / page);
    CHECK(html.find("<script src=\"openseadragon/openseadragon.min.js\">") != std::string::npos);
    CHECK(html.find("src=\"http") == std::string::npos);

    const int port = free_port();
    REQUIRE(port > 0);
    Server server(tmp.path, port, tmp / "http.log");
    REQUIRE(accepts(port));
    const fs::path profile = tmp / "profile", shot = tmp / "shot.png";
    fs::create_directories(profile);
    // one browser at a time (ctest -j runs the viewer tests side by side,
    // and two Chromiums on a busy 2-core machine outlast the timeout)
    rc = tt::run_command("flock /tmp/tessera-viewer-test.lock timeout 120 " + chromium +
                             " --headless --no-sandbox --disable-gpu --disable-background-networking"
                             " --no-first-run --user-data-dir='" +
                             profile.string() +
                             "' --window-size=800,600"
                             " --virtual-time-budget=2000 --screenshot='" +
                             shot.string() + "' http://127.0.0.1:" + std::to_string(port) + "/" + page,
                         &out);
    CAPTURE(out);
    REQUIRE(rc == 0);
    REQUIRE(fs::exists(shot));

    const std::string log = slurp(tmp / "http.log");
    CAPTURE(log);
    CHECK(log.find("GET /" + page) != std::string::npos);
    CHECK(log.find("GET /openseadragon/openseadragon.min.js") != std::string::npos);
    CHECK(log.find("GET /" + tiles) != std::string::npos);
    // every tile asked for is there (the browser's favicon.ico is not)
    std::istringstream lines(log);
    for (std::string l; std::getline(lines, l);) {
        CAPTURE(l);
        CHECK((l.find("\" 404 ") == std::string::npos || l.find("favicon.ico") != std::string::npos));
    }

    // The 2:1 image fits the 800x600 window's width: 800x400, centred.
    vips::VImage im = vips::VImage::new_from_file(shot.c_str());
    REQUIRE(im.width() == 800);
    CHECK(im.max() - im.min() > 100);  // not blank
    auto left = im.getpoint(200, 300), right = im.getpoint(600, 300), above = im.getpoint(400, 40);
    CAPTURE(left[0]);
    CAPTURE(right[2]);
    CHECK(left[0] > 150);
    CHECK(left[2] < 80);
    CHECK(right[2] > 150);
    CHECK(right[0] < 80);
    CHECK(above[0] < 80);  // the page's dark background, outside the image
}

}  // namespace

TEST_CASE("viewer: tessera view in headless Chromium requests tiles and shows the image") {
    view_in_chromium("slide.dzi", "", "slide.dzi", "slide.html", "slide_files/");
}

// IIIF 2 level 0: the page points info.json's id (vips's example.com
// default) at the folder, so OpenSeadragon asks for the regions there.
TEST_CASE("viewer: a IIIF pyramid in headless Chromium - regions requested beside the page") {
    view_in_chromium("slide.dzi", R"(, "layout": "iiif", "tile_size": 256)", "slide", "slide.html",
                     "slide/0,0,1024,1000/256,/0/default.jpg");
}

// A zip is unpacked beside the page (slide_unzipped/), then served as files
// by the plain server: the browser never reads the archive.
TEST_CASE("viewer: a zipped Deep Zoom pyramid in headless Chromium - unpacked beside the page") {
    view_in_chromium("slide.zip", "", "slide.zip", "slide.html", "slide_unzipped/slide/slide_files/");
}
