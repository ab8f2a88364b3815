// Training logs in mmdetection's shape:
//   text   "11/21 23:59:59 - Epoch(train) [1][ 50/733]  lr: 2.0000e-02  eta: 0:10:00  time: 0.5000
//           data_time: 0.0100  memory: 1234  loss: 2.6009  loss_rpn_cls: 0.5219 ..."
//   JSON   one object per line in <work_dir>/scalars.json (start, train and val records), appended
//          across resumed runs, which is what the plot reads
//   TensorBoard  the same scalars (train/..., val/...) and pictures, in <work_dir>/tf_logs/
// plus a one-line progress bar with ETA when stdout is a terminal.
#pragma once

#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "apps/tensorboard.h"

namespace gndet::app {

struct TrainRecord {
  int64_t epoch = 0;            // 1-based, as mmdetection prints it
  int64_t iter_in_epoch = 0;    // 1-based
  int64_t iters_per_epoch = 0;
  int64_t iteration = 0;        // global, 1-based
  double lr = 0;
  double eta_seconds = 0;
  double time = 0;              // seconds per iteration, averaged over the logging window
  double data_time = 0;
  double memory_mb = 0;
  double grad_norm = -1;        // -1: not clipped, not measured
  std::vector<std::pair<std::string, double>> values;  // losses and "acc", window averages
  double loss = 0;
};

class TrainLogger {
 public:
  // Appends to <work_dir>/<run_name>.log and <work_dir>/scalars.json. A disabled logger (ranks
  // other than 0 of a data-parallel run) writes nothing anywhere.
  TrainLogger(const std::string& work_dir, const std::string& run_name, bool enabled = true);
  ~TrainLogger();

  void info(const std::string& line);  // timestamped, to stdout and the log file
  // Marks where this run starts in scalars.json (0 from scratch, the checkpoint's iteration and
  // finished epochs on resume): the plot drops what an earlier run logged after that point.
  void start(int64_t iteration, int64_t epochs_done);
  void train(const TrainRecord& r);
  // Validation metrics after an epoch (or iteration, for iteration-based runs).
  void val(int64_t epoch, int64_t iteration, const std::vector<std::pair<std::string, double>>& metrics);
  // A picture for TensorBoard only: (H, W, 3) uint8.
  void image(const std::string& tag, const Tensor& picture, int64_t iteration);
  // Redraws the progress line (terminal only).
  void progress(int64_t done, int64_t total, double eta_seconds, const std::string& label);
  void end_progress();

  const std::string& scalars_path() const { return scalars_path_; }

 private:
  void write_json(const nlohmann::json& j);
  void emit(const std::string& line);

  std::FILE* text_ = nullptr;
  std::FILE* json_ = nullptr;
  std::string scalars_path_;
  std::unique_ptr<TensorBoardWriter> tensorboard_;
  bool tty_ = false;
  bool progress_shown_ = false;
  bool enabled_ = true;
};

// "1 day, 3:08:54" / "0:10:00" like Python's timedelta, as mmdetection prints ETAs.
std::string format_eta(double seconds);

}  // namespace gndet::app
