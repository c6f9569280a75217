// libFuzzer target: `gdal_load` on the fuzz input as a /vsimem/ file (GDAL
// reads it straight from memory), built through the Graph (header, bands,
// georeference at build) and rendered through the evaluator, with and
// without GDAL's mask band. Only drivers for plain raster files are kept:
// VRT and network drivers would let an input name other files or URLs.
#include <cpl_conv.h>
#include <cpl_vsi.h>
#include <gdal.h>

#include <set>

#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    tessera_fuzz::init();
    CPLSetConfigOption("GDAL_PAM_ENABLED", "NO");                // no .aux.xml side-cars
    CPLSetConfigOption("GDAL_DISABLE_READDIR_ON_OPEN", "TRUE");  // no directory listings
    CPLSetConfigOption("GDAL_CACHEMAX", "16");                   // MB of block cache
    CPLSetConfigOption("CPL_VSIL_CURL_ALLOWED_EXTENSIONS", ".none");
    // GDAL_SKIP names every registered driver but the allowed ones; each
    // GDALAllRegister (tessera's included) ends by dropping those.
    GDALAllRegister();
    const std::set<std::string> keep = {"GTiff", "PNG", "JPEG", "WEBP", "GIF", "BMP", "PNM", "AAIGrid", "ENVI", "MEM"};
    std::string skip;
    for (int i = 0; i < GDALGetDriverCount(); ++i) {
        std::string name = GDALGetDriverShortName(GDALGetDriver(i));
        if (!keep.count(name)) skip += name + " ";
    }
    CPLSetConfigOption("GDAL_SKIP", skip.c_str());
    GDALAllRegister();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace tessera;
    static unsigned long counter = 0;
    const std::string path = "/vsimem/fuzz" + std::to_string(counter++) + ".tif";
    // GDAL takes the buffer as it is (no copy, not owned)
    VSIFCloseL(VSIFileFromMemBuffer(path.c_str(), const_cast<GByte*>(data), vsi_l_offset(size), FALSE));
    for (bool mask : {false, true}) {
        try {
            Graph g(standard_registry());
            Params p{{"path", path}};
            if (mask) p.set("mask", true);
            NodeId n = g.add("gdal_load", {}, p, "in");
            tessera_fuzz::render_bounded(g, n);
        } catch (const Error& e) {
            tessera_fuzz::expected(e);
            // a clear error is the expected outcome of a broken file
        }
    }
    VSIUnlink(path.c_str());
    return 0;
}
