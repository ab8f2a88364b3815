// The training curves: losses against iterations (left) and COCO AP against epochs (right),
// read from a run's scalars.json and drawn to a PNG.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace gndet::app {

struct Series {
  std::string name;
  std::vector<std::pair<double, double>> points;  // (x, y), x increasing
};

struct TrainingCurves {
  std::map<std::string, Series> losses;  // "loss", "loss_cls", ... against the iteration
  std::map<std::string, Series> aps;     // "bbox_mAP", "segm_mAP" against the epoch
};

// The curves of the latest run in a work dir. scalars.json is appended to by every run there;
// each run's "start" record (its first iteration and finished epochs) drops what earlier runs
// logged after that point, and so does a point at or before the last one read (logs written
// before start records existed). Lines that do not parse (cut short by a crash) are skipped;
// a missing file gives empty curves.
TrainingCurves read_training_curves(const std::string& scalars_json);

// Quietly does nothing when there is nothing to plot yet; errors writing the PNG throw.
void write_training_plot(const std::string& scalars_json, const std::string& png_path);

}  // namespace gndet::app
