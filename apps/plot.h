// The training curves: losses against iterations (left) and COCO AP against epochs (right),
// read from a run's scalars.json and drawn to a PNG.
#pragma once

#include <string>

namespace gndet::app {

// Quietly does nothing when there is nothing to plot yet; errors writing the PNG throw.
void write_training_plot(const std::string& scalars_json, const std::string& png_path);

}  // namespace gndet::app
