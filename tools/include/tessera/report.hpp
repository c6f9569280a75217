// A picture of a registration: what a user checks before trusting a
// mosaic of 2000 tiles.
#pragma once

#include <string>
#include <vector>

#include "tessera/mosaic.hpp"

namespace tessera {

// Writes an SVG of `report` (register_positions' for `tiles`): every tile's
// outline at its solved place, labelled with its file's name (shortened
// to its end, the full path as a tooltip), filled when no trusted pair
// placed it (orange: the stage model's place; red: left at its given
// place); every registered pair as a line between the two tiles' centres,
// solid and coloured by its score for a used pair (red 0.5 or less,
// yellow 0.75, green 1: the ColorBrewer RdYlGn scale), dashed in its score's
// colour for an outlier the solve dropped, dotted grey for a pair that
// found no trustworthy match; a legend and the counts below. Reads the
// tiles' headers for their sizes. Atomic (written beside, renamed).
void write_registration_svg(const std::string& path, const std::vector<Placement>& tiles, const RegisterReport& report);

}  // namespace tessera
