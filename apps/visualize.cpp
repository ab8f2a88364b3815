#include "apps/visualize.h"

#include <cmath>
#include <cstdio>

#include "apps/canvas.h"
#include "tensor/grad_mode.h"
#include "data/image.h"
#include "ops/elementwise.h"
#include "ops/join.h"
#include "tensor/factory.h"

namespace gndet::app {

namespace {
// (H, W[, 3]) uint8 -> (H * f, W * f[, 3]) by repeating pixels.
Tensor enlarge(const Tensor& t, int f) {
  const Tensor s = t.unsqueeze(1).unsqueeze(3);  // (H, 1, W, 1[, 3])
  Shape big = s.shape();
  big[1] = f;
  big[3] = f;
  Shape out = t.shape();
  out[0] *= f;
  out[1] *= f;
  return s.expand(big).contiguous().reshape(out);
}
}  // namespace

Tensor tile_pictures(const std::vector<Tensor>& pictures, int64_t columns) {
  GNDET_CHECK(!pictures.empty() && columns > 0, "tile_pictures: nothing to tile");
  // Cells as large as the largest picture; smaller ones sit in their cell's top-left corner.
  int64_t h = 0, w = 0;
  for (const Tensor& p : pictures) {
    h = std::max(h, p.size(0));
    w = std::max(w, p.size(1));
  }
  const int64_t margin = 4, n = static_cast<int64_t>(pictures.size());
  const int64_t cols = std::min(columns, n), rows = (n + cols - 1) / cols;
  Canvas sheet(cols * (w + margin) + margin, rows * (h + margin) + margin, {255, 255, 255});
  for (int64_t i = 0; i < n; ++i) {
    const int64_t ph = pictures[i].size(0), pw = pictures[i].size(1);
    const std::vector<uint8_t> px = pictures[i].to_vector<uint8_t>();
    const int64_t x0 = margin + (i % cols) * (w + margin), y0 = margin + (i / cols) * (h + margin);
    for (int64_t y = 0; y < ph; ++y) {
      for (int64_t x = 0; x < pw; ++x) {
        const uint8_t* p = &px[(y * pw + x) * 3];
        sheet.fill_rect(x0 + x, y0 + y, x0 + x + 1, y0 + y + 1, {p[0], p[1], p[2]});
      }
    }
  }
  return sheet.to_image();
}

Tensor draw_detections(const Tensor& image_in, const Detections& dets_in, const std::vector<std::string>& class_names,
                       double score_thr, int scale_up) {
  Tensor image = image_in.cpu().contiguous();
  Detections dets = dets_in;
  if (scale_up > 1) {
    image = enlarge(image, scale_up);
    dets.boxes = dets.boxes.cpu() * static_cast<double>(scale_up);
    if (dets.masks.defined() && dets.masks.size(0) > 0) {
      Tensors big;
      for (int64_t k = 0; k < dets.masks.size(0); ++k) big.push_back(enlarge(dets.masks.select(0, k).cpu(), scale_up));
      dets.masks = stack(big, 0);
    } else if (dets.masks.defined()) {
      dets.masks = zeros({0, image.size(0), image.size(1)}, kUInt8);
    }
  }
  Canvas c(image);
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

Tensor prediction_grid(TwoStageDetector& model, const data::CocoDataset& dataset, int64_t pad_size_divisor,
                       Device device, const std::vector<std::string>& class_names, int64_t count, double score_thr) {
  autograd::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  std::vector<Tensor> pictures;
  for (int64_t i = 0; i < std::min<int64_t>(count, dataset.size()); ++i) {
    Generator rng(0);
    data::Sample s = dataset.get(i, rng);
    const Tensor original = data::read_image(s.meta.filename);
    std::vector<data::Sample> one;
    one.push_back(std::move(s));
    const ModelInputs in = to_model_inputs(data::collate(std::move(one), pad_size_divisor), device, false);
    const int scale = original.size(0) < 256 ? 2 : 1;
    pictures.push_back(draw_detections(original, model.predict(in.images, in.infos).at(0), class_names, score_thr, scale));
  }
  model.train(was_training);
  GNDET_CHECK(!pictures.empty(), "prediction_grid: the dataset is empty");
  return tile_pictures(pictures, static_cast<int64_t>(pictures.size()));
}

}  // namespace gndet::app
