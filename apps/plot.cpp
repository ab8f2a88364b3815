#include "apps/plot.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <vector>

#include "apps/canvas.h"

namespace gndet::app {
namespace {

std::string tick_label(double v, double step) {
  char buf[32];
  const int decimals = step >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(step) - 1e-9));
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
  return buf;
}

// A round tick step (1, 2 or 5 times a power of ten) giving about `target` intervals over span.
double nice_step(double span, int target) {
  if (!(span > 0) || !std::isfinite(span)) return 1;
  const double raw = span / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (m * mag >= raw) return m * mag;
  }
  return 10 * mag;
}

// One panel: axes, 5 ticks per axis, the series, a legend.
void draw_panel(Canvas& c, int64_t x0, int64_t y0, int64_t w, int64_t h, const std::string& title,
                const std::string& xlabel, const std::vector<Series>& series, bool integer_x) {
  double xmin = 1e300, xmax = -1e300, ymin = 0, ymax = -1e300;
  for (const Series& s : series) {
    for (auto [x, y] : s.points) {
      if (!std::isfinite(x) || !std::isfinite(y)) continue;  // a diverged loss is not drawn
      xmin = std::min(xmin, x);
      xmax = std::max(xmax, x);
      ymax = std::max(ymax, y);
    }
  }
  if (xmin > xmax) return;  // no finite point: the tick loops below need a finite range
  if (xmax <= xmin) xmax = xmin + 1;
  if (ymax <= ymin) ymax = ymin + 1;
  const double ystep = nice_step(ymax - ymin, 5);
  ymax = std::ceil(ymax / ystep) * ystep;
  double xstep = nice_step(xmax - xmin, 5);
  if (integer_x) xstep = std::max(1.0, std::round(xstep));
  xmin = std::floor(xmin / xstep) * xstep;
  xmax = std::ceil(xmax / xstep) * xstep;
  const int64_t left = x0 + 60, right = x0 + w - 24, top = y0 + 30, bottom = y0 + h - 40;
  const Rgb black{0, 0, 0}, grey{200, 200, 200};
  c.text(left, y0 + 8, title, black, 2);
  auto px = [&](double x) { return left + (x - xmin) / (xmax - xmin) * static_cast<double>(right - left); };
  auto py = [&](double y) { return bottom - (y - ymin) / (ymax - ymin) * static_cast<double>(bottom - top); };
  for (double yv = ymin; yv <= ymax + ystep * 1e-6; yv += ystep) {
    c.line(left, py(yv), right, py(yv), grey);
    const std::string yl = tick_label(yv, ystep);
    c.text(left - 6 - Canvas::text_width(yl), static_cast<int64_t>(py(yv)) - 4, yl, black);
  }
  for (double xv = xmin; xv <= xmax + xstep * 1e-6; xv += xstep) {
    const std::string xl = tick_label(xv, xstep);
    c.text(static_cast<int64_t>(px(xv)) - Canvas::text_width(xl) / 2, bottom + 6, xl, black);
  }
  c.line(left, bottom, right, bottom, black);
  c.line(left, top, left, bottom, black);
  c.text((left + right) / 2 - Canvas::text_width(xlabel) / 2, bottom + 22, xlabel, black);
  int64_t legend_y = top + 4;
  for (size_t i = 0; i < series.size(); ++i) {
    const Rgb color = palette(static_cast<int64_t>(i));
    const auto& pts = series[i].points;
    for (size_t k = 1; k < pts.size(); ++k) {
      c.line(px(pts[k - 1].first), py(pts[k - 1].second), px(pts[k].first), py(pts[k].second), color, 2);
    }
    if (pts.size() == 1) c.fill_rect(static_cast<int64_t>(px(pts[0].first)) - 2, static_cast<int64_t>(py(pts[0].second)) - 2,
                                     static_cast<int64_t>(px(pts[0].first)) + 3, static_cast<int64_t>(py(pts[0].second)) + 3, color);
    const int64_t lx = right - 150;
    c.fill_rect(lx, legend_y + 3, lx + 14, legend_y + 6, color);
    c.text(lx + 20, legend_y, series[i].name, black);
    legend_y += 12;
  }
}

}  // namespace

TrainingCurves read_training_curves(const std::string& scalars_json) {
  TrainingCurves out;
  std::ifstream in(scalars_json);
  std::string line;
  while (std::getline(in, line)) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception&) {
      continue;  // a line cut short by a crash: skip it
    }
    if (!j.is_object() || !j.contains("mode")) continue;
    if (j["mode"] == "start") {
      auto truncate = [](std::map<std::string, Series>& all, double after) {
        for (auto it = all.begin(); it != all.end();) {
          auto& pts = it->second.points;
          while (!pts.empty() && pts.back().first > after) pts.pop_back();
          it = pts.empty() ? all.erase(it) : std::next(it);
        }
      };
      truncate(out.losses, j.value("step", 0.0));
      truncate(out.aps, j.value("epoch", 0.0));
      continue;
    }
    const bool train = j["mode"] == "train";
    const double x = train ? j.value("step", 0.0) : j.value("epoch", 0.0);
    auto add = [x](Series& s, const std::string& name, double y) {
      s.name = name;
      while (!s.points.empty() && s.points.back().first >= x) s.points.pop_back();
      s.points.emplace_back(x, y);
    };
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (!it.value().is_number()) continue;
      const std::string& k = it.key();
      if (train && k.rfind("loss", 0) == 0) {
        add(out.losses[k], k, it.value().get<double>());
      } else if (!train && (k == "coco/bbox_mAP" || k == "coco/segm_mAP")) {
        add(out.aps[k.substr(5)], k.substr(5), it.value().get<double>());
      }
    }
  }
  return out;
}

void write_training_plot(const std::string& scalars_json, const std::string& png_path) {
  const TrainingCurves curves = read_training_curves(scalars_json);
  const auto& losses = curves.losses;
  const auto& aps = curves.aps;
  if (losses.empty()) return;
  std::vector<Series> ls, as;
  for (const auto& [k, s] : losses) ls.push_back(s);
  for (const auto& [k, s] : aps) as.push_back(s);
  Canvas c(1100, 440);
  draw_panel(c, 0, 0, 640, 440, "training losses", "iteration", ls, true);
  if (!as.empty()) draw_panel(c, 640, 0, 460, 440, "val AP (COCO, IoU .50:.95)", "epoch", as, true);
  c.save_png(png_path);
}

}  // namespace gndet::app
