// The jobs with the standard registry, and the image a job saves
// (tessera/api.hpp).
#include "tessera/api.hpp"

namespace tessera {

RunStats stitch(const StitchOptions& options, const JobContext& context) {
    return stitch(options, standard_registry(), context);
}

RunStats mosaic(const MosaicOptions& options, const JobContext& context) {
    return mosaic(options, standard_registry(), context);
}

RunStats merge(const MergeOptions& options, const JobContext& context) {
    Graph g = merge_graph(options, standard_registry());
    return run_job(g, context);
}

Image job_image(Graph graph) {
    const std::vector<NodeId> sinks = graph.sinks();
    if (sinks.empty()) throw Error("job_image: the graph has no sink (save) whose image to take");
    const NodeId in = graph.node(sinks.back()).inputs.at(0);
    return Image(std::make_shared<const Graph>(std::move(graph)), in);
}

}  // namespace tessera
