// libFuzzer target: the JSON pipeline loader (parse_pipeline with the
// standard registry). When the text parses, a bounded part of each image
// node is rendered through the evaluator; sinks (save) are never run, and
// relative paths resolve in a scratch folder holding two small images
// (a.pgm, geo.tif), so a pipeline can load something without reaching
// outside it.
#include <gdal.h>

#include <fstream>

#include "fuzz_common.hpp"
#include "tessera/graphs/pipeline.hpp"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    tessera_fuzz::init();
    // a 4x3 grey PGM (libvips reads it), for pipelines that load "a.pgm"
    std::ofstream(tessera_fuzz::scratch_dir() + "/a.pgm", std::ios::binary)
        << "P5 4 3 255\n"
        << std::string("\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c", 12);
    // a 20x10 georeferenced GeoTIFF (EPSG:4326, 0.1 degree pixels, nodata
    // 0), for merge and gdal_load of "geo.tif"
    GDALAllRegister();
    const std::string geo = tessera_fuzz::scratch_dir() + "/geo.tif";
    GDALDatasetH ds = GDALCreate(GDALGetDriverByName("GTiff"), geo.c_str(), 20, 10, 1, GDT_Byte, nullptr);
    double t[6] = {2.0, 0.1, 0.0, 49.0, 0.0, -0.1};
    GDALSetGeoTransform(ds, t);
    GDALSetProjection(ds, "EPSG:4326");
    GDALRasterBandH b = GDALGetRasterBand(ds, 1);
    GDALSetRasterNoDataValue(b, 0);
    unsigned char px[200];
    for (int i = 0; i < 200; ++i) px[i] = (unsigned char)(i % 7);
    if (GDALRasterIO(b, GF_Write, 0, 0, 20, 10, px, 20, 10, GDT_Byte, 0, 0) != CE_None) std::abort();
    GDALClose(ds);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace tessera;
    std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        Graph g = parse_pipeline(text, standard_registry(), "fuzz.json", tessera_fuzz::scratch_dir());
        const std::size_t nodes = g.size();
        // at most the last 4 nodes that are images (not sinks)
        int rendered = 0;
        for (std::size_t i = nodes; i-- > 0 && rendered < 4;) {
            if (g.node(i).spec && g.node(i).spec->sink) continue;
            tessera_fuzz::render_bounded(g, i);
            ++rendered;
        }
    } catch (const Error& e) {
        tessera_fuzz::expected(e);
        // a clear error (naming the node and key) is the expected outcome
    }
    return 0;
}
