// operator<< for tensors: nested brackets like numpy, long dimensions elided with "...".
#include <iomanip>
#include <ostream>

#include "tensor/tensor.h"

namespace gndet {
namespace {

constexpr int64_t kEdgeItems = 3;  // shown at each end of a dimension longer than 2*kEdgeItems

void print_rec(std::ostream& os, const Tensor& t, const std::vector<double>& v, int64_t dim, int64_t base,
               int indent) {
  const int64_t n = t.shape()[dim];
  const int64_t inner = t.numel() / std::max<int64_t>(1, shape_numel(Shape(t.shape().begin(), t.shape().begin() + dim + 1)));
  os << '[';
  for (int64_t i = 0; i < n; ++i) {
    if (n > 2 * kEdgeItems && i == kEdgeItems) {
      os << "...";
      i = n - kEdgeItems - 1;
      if (dim + 1 < t.dim()) os << ",\n" << std::string(indent + 1, ' ');
      else os << ", ";
      continue;
    }
    if (dim + 1 == t.dim()) {
      const double x = v[base + i];
      if (is_floating(t.dtype())) os << std::setprecision(6) << x;
      else os << static_cast<int64_t>(x);
    } else {
      print_rec(os, t, v, dim + 1, (base + i * inner), indent + 1);
    }
    if (i + 1 < n) {
      if (dim + 1 < t.dim()) os << ",\n" << std::string(indent + 1, ' ');
      else os << ", ";
    }
  }
  os << ']';
}

}  // namespace

std::ostream& operator<<(std::ostream& os, const Tensor& t) {
  if (!t.defined()) return os << "tensor(undefined)";
  const std::vector<double> v = t.to_vector<double>();
  os << "tensor(";
  if (t.dim() == 0) {
    os << v[0];
  } else if (t.numel() == 0) {
    os << "[]";
  } else {
    print_rec(os, t, v, 0, 0, 7);
  }
  os << ", shape=" << shape_str(t.shape()) << ", dtype=" << dtype_name(t.dtype());
  if (!t.device().is_cpu()) os << ", device=" << t.device().str();
  if (t.requires_grad()) os << ", requires_grad";
  return os << ')';
}

}  // namespace gndet
