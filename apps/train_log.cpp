#include "apps/train_log.h"

#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <unistd.h>

#include "tensor/error.h"

namespace gndet::app {

namespace {
std::string timestamp() {
  const std::time_t now = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%m/%d %H:%M:%S", std::localtime(&now));
  return buf;
}
std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), f, v);
  return buf;
}
}  // namespace

std::string format_eta(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  int64_t s = static_cast<int64_t>(seconds + 0.5);
  const int64_t days = s / 86400;
  s %= 86400;
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%d:%02d:%02d", static_cast<int>(s / 3600), static_cast<int>(s / 60 % 60),
                static_cast<int>(s % 60));
  if (days == 0) return buf;
  return std::to_string(days) + (days == 1 ? " day, " : " days, ") + buf;
}

TrainLogger::TrainLogger(const std::string& work_dir, const std::string& run_name, bool enabled) : enabled_(enabled) {
  scalars_path_ = work_dir + "/scalars.json";
  if (!enabled_) return;
  std::filesystem::create_directories(work_dir);
  const std::string text_path = work_dir + "/" + run_name + ".log";
  text_ = std::fopen(text_path.c_str(), "a");
  json_ = std::fopen(scalars_path_.c_str(), "a");
  GNDET_CHECK(text_ && json_, "cannot write the logs in '", work_dir, "'");
  tensorboard_ = std::make_unique<TensorBoardWriter>(work_dir + "/tf_logs");
  tty_ = ::isatty(::fileno(stdout)) != 0;
}

TrainLogger::~TrainLogger() {
  end_progress();
  if (text_) std::fclose(text_);
  if (json_) std::fclose(json_);
}

void TrainLogger::emit(const std::string& line) {
  if (!enabled_) return;
  end_progress();
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
  std::fprintf(text_, "%s\n", line.c_str());
  std::fflush(text_);
}

void TrainLogger::info(const std::string& line) { emit(timestamp() + " - " + line); }

void TrainLogger::write_json(const nlohmann::json& j) {
  if (!enabled_) return;
  std::fprintf(json_, "%s\n", j.dump().c_str());
  std::fflush(json_);
}

void TrainLogger::train(const TrainRecord& r) {
  if (!enabled_) return;  // ranks other than 0 write nothing (and have no TensorBoard writer)
  const int width = static_cast<int>(std::to_string(r.iters_per_epoch).size());
  char head[96];
  std::snprintf(head, sizeof(head), "Epoch(train) [%lld][%*lld/%lld]", static_cast<long long>(r.epoch), width,
                static_cast<long long>(r.iter_in_epoch), static_cast<long long>(r.iters_per_epoch));
  std::string line = timestamp() + " - " + head + "  lr: " + fmt("%.4e", r.lr) + "  eta: " + format_eta(r.eta_seconds) +
                     "  time: " + fmt("%.4f", r.time) + "  data_time: " + fmt("%.4f", r.data_time) +
                     "  memory: " + fmt("%.0f", r.memory_mb);
  if (r.grad_norm >= 0) line += "  grad_norm: " + fmt("%.4f", r.grad_norm);
  line += "  loss: " + fmt("%.4f", r.loss);
  nlohmann::json j = {{"mode", "train"}, {"epoch", r.epoch},  {"iter", r.iter_in_epoch}, {"step", r.iteration},
                      {"lr", r.lr},      {"time", r.time},    {"data_time", r.data_time}, {"memory", r.memory_mb},
                      {"loss", r.loss}};
  for (const auto& [name, v] : r.values) {
    line += "  " + name + ": " + fmt("%.4f", v);
    j[name] = v;
  }
  if (r.grad_norm >= 0) j["grad_norm"] = r.grad_norm;
  emit(line);
  write_json(j);
  tensorboard_->scalar("train/loss", r.loss, r.iteration);
  for (const auto& [name, v] : r.values) tensorboard_->scalar("train/" + name, v, r.iteration);
  tensorboard_->scalar("train/lr", r.lr, r.iteration);
  if (r.grad_norm >= 0) tensorboard_->scalar("train/grad_norm", r.grad_norm, r.iteration);
  tensorboard_->scalar("train/time", r.time, r.iteration);
}

void TrainLogger::start(int64_t iteration, int64_t epochs_done) {
  write_json({{"mode", "start"}, {"step", iteration}, {"epoch", epochs_done}});
}

void TrainLogger::val(int64_t epoch, int64_t iteration, const std::vector<std::pair<std::string, double>>& metrics) {
  if (!enabled_) return;  // ranks other than 0 write nothing (and have no TensorBoard writer)
  std::string line = timestamp() + " - Epoch(val) [" + std::to_string(epoch) + "]";
  nlohmann::json j = {{"mode", "val"}, {"epoch", epoch}, {"step", iteration}};
  for (const auto& [name, v] : metrics) {
    line += "  " + name + ": " + fmt("%.4f", v);
    j[name] = v;
    tensorboard_->scalar("val/" + name, v, iteration);
  }
  emit(line);
  write_json(j);
}

void TrainLogger::image(const std::string& tag, const Tensor& picture, int64_t iteration) {
  if (!enabled_) return;  // ranks other than 0 write nothing (and have no TensorBoard writer)
  tensorboard_->image(tag, picture, iteration);
}

void TrainLogger::progress(int64_t done, int64_t total, double eta_seconds, const std::string& label) {
  if (!enabled_ || !tty_ || total <= 0) return;
  constexpr int kWidth = 30;
  const int filled = static_cast<int>(kWidth * done / total);
  std::printf("\r%s [%s%s] %lld/%lld  eta %s   ", label.c_str(), std::string(filled, '#').c_str(),
              std::string(kWidth - filled, '.').c_str(), static_cast<long long>(done), static_cast<long long>(total),
              format_eta(eta_seconds).c_str());
  std::fflush(stdout);
  progress_shown_ = true;
}

void TrainLogger::end_progress() {
  if (!progress_shown_) return;
  std::printf("\r%*s\r", 100, "");
  std::fflush(stdout);
  progress_shown_ = false;
}

}  // namespace gndet::app
