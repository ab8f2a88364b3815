#include "detection/box_coder.h"

#include "tensor/grad_mode.h"
#include "ops/elementwise.h"
#include "ops/join.h"
#include "tensor/factory.h"

namespace gndet {

DeltaXYWHCoder DeltaXYWHCoder::from_config(const ConfigNode& cfg) {
  cfg.type({"DeltaXYWHBBoxCoder"});
  cfg.check_keys({"type", "target_means", "target_stds"});
  DeltaXYWHCoder c;
  const std::vector<double> m = cfg.has("target_means") ? cfg["target_means"].as_double_list() : std::vector<double>{0, 0, 0, 0};
  const std::vector<double> s = cfg.has("target_stds") ? cfg["target_stds"].as_double_list() : std::vector<double>{1, 1, 1, 1};
  GNDET_CHECK(m.size() == 4 && s.size() == 4, "config ", cfg.path(), ": target_means and target_stds need 4 values");
  for (int i = 0; i < 4; ++i) {
    c.means[i] = m[i];
    c.stds[i] = s[i];
  }
  return c;
}

namespace {
Tensor col(const Tensor& t, int64_t i) { return t.select(-1, i); }
Tensor as_row(const std::array<double, 4>& v, const TensorOptions& o) {
  return from_data<double>({v[0], v[1], v[2], v[3]}).to(o);
}
}  // namespace

Tensor DeltaXYWHCoder::encode(const Tensor& proposals, const Tensor& targets) const {
  GNDET_CHECK(proposals.shape() == targets.shape() && proposals.dim() == 2 && proposals.size(1) == 4,
              "DeltaXYWHCoder::encode: proposals ", shape_str(proposals.shape()), " and targets ",
              shape_str(targets.shape()), " must both be (K, 4)");
  autograd::NoGradGuard no_grad;
  const Tensor p = proposals.detach(), g = targets.detach();
  const Tensor pw = col(p, 2) - col(p, 0), ph = col(p, 3) - col(p, 1);
  const Tensor px = (col(p, 0) + col(p, 2)) * 0.5, py = (col(p, 1) + col(p, 3)) * 0.5;
  const Tensor gw = col(g, 2) - col(g, 0), gh = col(g, 3) - col(g, 1);
  const Tensor gx = (col(g, 0) + col(g, 2)) * 0.5, gy = (col(g, 1) + col(g, 3)) * 0.5;
  const Tensor d = stack({(gx - px) / pw, (gy - py) / ph, log(gw / pw), log(gh / ph)}, 1);
  return (d - as_row(means, d.options())) / as_row(stds, d.options());
}

Tensor DeltaXYWHCoder::decode(const Tensor& rois, const Tensor& deltas, std::array<int64_t, 2> image_hw) const {
  GNDET_CHECK(rois.dim() == 2 && rois.size(1) == 4 && deltas.dim() == 2 && deltas.size(0) == rois.size(0) &&
                  deltas.size(1) % 4 == 0,
              "DeltaXYWHCoder::decode: rois ", shape_str(rois.shape()), " and deltas ", shape_str(deltas.shape()),
              " must be (K, 4) and (K, 4 * C)");
  autograd::NoGradGuard no_grad;
  const int64_t K = rois.size(0), C = deltas.size(1) / 4;
  const Tensor d = deltas.detach().reshape({K, C, 4}) * as_row(stds, deltas.options()) + as_row(means, deltas.options());
  const Tensor r = rois.detach().unsqueeze(1);  // (K, 1, 4), broadcast over classes
  const Tensor pw = col(r, 2) - col(r, 0), ph = col(r, 3) - col(r, 1);
  const Tensor px = (col(r, 0) + col(r, 2)) * 0.5, py = (col(r, 1) + col(r, 3)) * 0.5;
  const Tensor dw = clamp(col(d, 2), -max_ratio, max_ratio), dh = clamp(col(d, 3), -max_ratio, max_ratio);
  const Tensor gx = px + pw * col(d, 0), gy = py + ph * col(d, 1);
  const Tensor gw = pw * exp(dw), gh = ph * exp(dh);
  Tensor x1 = gx - gw * 0.5, y1 = gy - gh * 0.5, x2 = gx + gw * 0.5, y2 = gy + gh * 0.5;
  if (image_hw[0] > 0 && image_hw[1] > 0) {
    const double H = static_cast<double>(image_hw[0]), W = static_cast<double>(image_hw[1]);
    x1 = clamp(x1, 0, W);
    x2 = clamp(x2, 0, W);
    y1 = clamp(y1, 0, H);
    y2 = clamp(y2, 0, H);
  }
  return stack({x1, y1, x2, y2}, 2).reshape({K, 4 * C});
}

}  // namespace gndet
