#include "apps/visualize.h"

#include <cmath>
#include <cstdio>

#include "apps/canvas.h"

namespace gndet::app {

Tensor draw_detections(const Tensor& image, const Detections& dets, const std::vector<std::string>& class_names,
                       double score_thr) {
  Canvas c(image.cpu().contiguous());
  const std::vector<float> scores = dets.scores.to_vector<float>();
  const std::vector<float> boxes = dets.boxes.to_vector<float>();
  const std::vector<int64_t> labels = dets.labels.to_vector<int64_t>();
  const Tensor masks = dets.masks.defined() ? dets.masks.cpu() : Tensor();
  // Lines and text scale with the picture so that labels stay readable on large images.
  const int scale = static_cast<int>(std::max<int64_t>(1, std::min(c.width(), c.height()) / 400));
  // Lowest scores first, so that the best detections end up on top.
  for (size_t k = scores.size(); k-- > 0;) {
    if (scores[k] < score_thr) continue;
    const Rgb color = palette(labels[k]);
    if (masks.defined()) c.blend_mask(masks.select(0, static_cast<int64_t>(k)), color, 0.45);
    const float* b = &boxes[4 * k];
    c.rect(b[0], b[1], b[2], b[3], color, 1 + scale);
  }
  for (size_t k = scores.size(); k-- > 0;) {
    if (scores[k] < score_thr) continue;
    const float* b = &boxes[4 * k];
    const std::string name = labels[k] < static_cast<int64_t>(class_names.size()) ? class_names[labels[k]]
                                                                                   : "class " + std::to_string(labels[k]);
    char text[128];
    std::snprintf(text, sizeof(text), "%s %.2f", name.c_str(), scores[k]);
    const int64_t w = Canvas::text_width(text, scale) + 4, h = Canvas::text_height(scale) + 2;
    int64_t x = static_cast<int64_t>(std::lround(b[0])), y = static_cast<int64_t>(std::lround(b[1])) - h;
    if (y < 0) y = static_cast<int64_t>(std::lround(b[1]));  // no room above: inside the box
    x = std::clamp<int64_t>(x, 0, std::max<int64_t>(0, c.width() - w));
    c.fill_rect(x, y, x + w, y + h, palette(labels[k]));
    c.text(x + 2, y + 1, text, {255, 255, 255}, scale);
  }
  return c.to_image();
}

}  // namespace gndet::app
