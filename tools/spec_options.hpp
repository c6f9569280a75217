// Command-line options that set an op parameter take what they allow from
// the op's ParamSpec (range, choices), so `--quality 0` fails on the command
// line exactly where `"quality": 0` fails in a pipeline, with the same
// message, and a range can never differ between the two.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "tessera/core/op.hpp"

namespace tessera {

// The spec of parameter `key` of op `op`; throws Error naming both if either
// is unknown (a wiring mistake, found by any test that starts the CLI).
const ParamSpec& param_spec(const OpRegistry& registry, const std::string& op, const std::string& key);

// A CLI11 check for an option that sets `op`'s `key`: the text must parse as
// the parameter's type (integer, number or string) and be allowed by its
// spec. Its description (shown by --help) is what is allowed.
CLI::Validator spec_validator(const OpRegistry& registry, const std::string& op, const std::string& key);

// The same from a spec of parameters that are not an op's (e.g.
// register_params()): the one named `key`; Error naming it if none is.
const ParamSpec& param_spec(const std::vector<ParamSpec>& params, const std::string& key);
CLI::Validator spec_validator(const ParamSpec& spec);

// The same check after parsing, for an option that feeds one of several
// parameters (--tile-size: a TIFF's tile_width or a .dzi's tile_size):
// throws CLI::ValidationError naming `option` when the value is not allowed.
void check_option_value(const OpRegistry& registry, const std::string& op, const std::string& key,
                        const std::string& option, const ParamValue& value);

}  // namespace tessera
