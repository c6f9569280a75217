// The viewer page of a tile pyramid (Deep Zoom, google, IIIF; in a folder
// or zipped): what `tessera view NAME.dzi` writes, callable from C++. NAME.html (beside the .dzi, or elsewhere)
// shows the pyramid with OpenSeadragon, which is copied beside the page
// (never loaded from a CDN). The .dzi's fields are written into the page,
// so it also works opened as a file (browsers refuse to fetch a .dzi from
// file://; the tile images load anyway).
//
// The .dzi is read as the XML it is (Microsoft's Deep Zoom schema, as
// libvips's dzsave and tessera's save write it: an <Image> root in the
// deepzoom/2008 or 2009 namespace with Format, Overlap and TileSize, and a
// <Size Width Height> child), by a strict parser of the XML subset a
// descriptor needs (declaration, comments, elements, attributes in either
// quote, the five entities and character references; no DOCTYPE, no text):
// anything else is refused naming the file and line, never guessed at.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace tessera {

struct DeepZoomImage {
    std::string xmlns;   // the schema's namespace
    std::string format;  // of the tiles: jpeg, png, webp (lower-case letters)
    std::int64_t overlap = 0, tile_size = 0;
    std::int64_t width = 0, height = 0;
};

// The fields of the descriptor at `path`. Errors (IoError naming the file):
// unreadable; not XML, or not a Deep Zoom <Image> ("is not a Deep Zoom
// descriptor: line N: ..."); a missing attribute ("it has no TileSize
// attribute"); a size or tile field that is not a whole number; a format
// that is not a word of lower-case letters.
DeepZoomImage read_dzi(const std::string& path);

struct ViewOptions {
    std::string output;         // the page; empty: NAME.html beside NAME.dzi
    std::string openseadragon;  // the folder holding openseadragon.min.js and images/; empty: find_openseadragon()
};

// Writes the page for the pyramid `input`, in any layout a Deep Zoom save
// writes: NAME.dzi (its tiles in NAME_files/ beside it, which must exist);
// a google folder NAME/ (Z/Y/X tiles and blank.png); a IIIF folder NAME/
// (or its info.json), whose id is pointed at the folder (info.json names
// the server the tiles were meant for); NAME.zip or NAME.szi, unpacked
// first into NAME_unzipped/ beside the page (a browser reads no archive).
// Tiles a save skipped as blank are simply absent: the viewer shows the
// page's background there. Copies OpenSeadragon into openseadragon/ beside
// the page; the page is written under a temporary name and renamed when
// complete. Returns the page's path (default NAME.html beside the input).
std::string write_view_page(const std::string& input, const ViewOptions& options = {});

// Where the OpenSeadragon the build vendored is: $TESSERA_OPENSEADRAGON_DIR,
// else the build tree, else the install tree beside the running program.
// Error (saying why the build has none, and how to give one) when none has
// openseadragon.min.js.
std::filesystem::path find_openseadragon();

}  // namespace tessera
