// The typed C++ API in one include: images as values (tessera::Image), a
// builder for every op (tessera/ops_api.hpp, generated from the op specs),
// the position readers and the jobs.
//
//   #include <tessera/api.hpp>
//   using namespace tessera;
//   std::vector<Image> tiles;
//   std::vector<IntPair> at;
//   for (const Placement& t : read_positions("positions.csv")) {
//       tiles.push_back(load(t.file));
//       at.push_back(placed_at(t.at));
//   }
//   const Image m = insert(black(1000, 700, {.bands = 3}), tiles, at);
//   Buffer corner = m.region({0, 0, 256, 256});  // only that window, in parallel
//   save(m, "out.tif", {.compression = op::SaveCompression::deflate, .tile = true});
//
//   StitchOptions o;  // the whole job, as `tessera stitch` runs it
//   o.positions = "positions.csv";
//   o.output = "slide.tif";
//   stitch(o);
//
// The untyped Graph::add (tessera/tessera.hpp) stays for tools that build
// from op names.
#pragma once

#include "tessera/image.hpp"
#include "tessera/jobs.hpp"
#include "tessera/merge.hpp"
#include "tessera/ops_api.hpp"
#include "tessera/positions.hpp"
#include "tessera/stitch.hpp"
#include "tessera/tessera.hpp"

namespace tessera {

// The jobs with the standard registry: stitch and mosaic as jobs.hpp's
// (the tiles of options.positions, planned, run), merge as `tessera merge`
// (merge_graph, run with the context's threads, cancel flag and cluster).
RunStats stitch(const StitchOptions& options, const JobContext& context = {});
RunStats mosaic(const MosaicOptions& options, const JobContext& context = {});
RunStats merge(const MergeOptions& options, const JobContext& context = {});

// The image a planned job (plan_stitch, plan_mosaic) or a job's graph
// (merge_graph) saves, the input of its last sink: to read windows of
// (region) or build on instead of running the job's own save. Throws Error
// for a graph without a sink.
Image job_image(Graph graph);
inline Image job_image(PlannedJob job) { return job_image(std::move(job.graph)); }

}  // namespace tessera
