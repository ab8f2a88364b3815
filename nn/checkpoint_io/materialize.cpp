// Tensor and array descriptions -> contiguous gndet tensors, checking every size against the bytes.
#include <algorithm>
#include <bit>
#include <cstring>

#include "nn/checkpoint_io/pickle.h"
#include "tensor/factory.h"

namespace gndet::nn::ckpt {
namespace {

constexpr size_t kMaxDims = 32;

DType gndet_dtype(Elem e) {
  switch (e) {
    case Elem::F32:
    case Elem::F16:
    case Elem::BF16: return kFloat32;
    case Elem::F64: return kFloat64;
    case Elem::I64: return kInt64;
    case Elem::I32:
    case Elem::I16:
    case Elem::I8: return kInt32;
    case Elem::U8: return kUInt8;
    case Elem::Bool: return kBool;
  }
  return kFloat32;
}

float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  if (exp == 0x1f) return std::bit_cast<float>(sign | 0x7f800000u | (mant << 13));  // inf / nan
  if (exp != 0) return std::bit_cast<float>(sign | ((exp + 112) << 23) | (mant << 13));
  // subnormal: mant * 2^-24
  const float v = static_cast<float>(mant) * 5.9604644775390625e-8f;
  return sign ? -v : v;
}

// Reads element `src` (elem_size(e) bytes) into the gndet element at `dst`.
void convert_one(Elem e, bool swap, const char* src, char* dst) {
  char buf[8];
  const size_t n = std::min(elem_size(e), sizeof buf);
  std::memcpy(buf, src, n);
  if (swap) std::reverse(buf, buf + n);
  switch (e) {
    case Elem::F16: {
      uint16_t h;
      std::memcpy(&h, buf, 2);
      const float f = half_to_float(h);
      std::memcpy(dst, &f, 4);
      return;
    }
    case Elem::BF16: {
      uint16_t h;
      std::memcpy(&h, buf, 2);
      const float f = std::bit_cast<float>(static_cast<uint32_t>(h) << 16);
      std::memcpy(dst, &f, 4);
      return;
    }
    case Elem::I16: {
      int16_t x;
      std::memcpy(&x, buf, 2);
      const int32_t y = x;
      std::memcpy(dst, &y, 4);
      return;
    }
    case Elem::I8: {
      const int32_t y = static_cast<int8_t>(buf[0]);
      std::memcpy(dst, &y, 4);
      return;
    }
    case Elem::Bool: *dst = buf[0] != 0; return;
    default: std::memcpy(dst, buf, n); return;
  }
}

int64_t checked_mul(int64_t a, int64_t b, const std::string& what) {
  int64_t r;
  GNDET_CHECK(!__builtin_mul_overflow(a, b, &r), what, ": tensor sizes overflow");
  return r;
}
int64_t checked_add(int64_t a, int64_t b, const std::string& what) {
  int64_t r;
  GNDET_CHECK(!__builtin_add_overflow(a, b, &r), what, ": tensor sizes overflow");
  return r;
}

// Copies the strided view (element offsets) of `src` into a new contiguous tensor.
Tensor copy_view(const char* src, uint64_t src_elems, Elem e, bool big_endian, int64_t offset, const Shape& sizes,
                 const Shape& strides, const std::string& what) {
  GNDET_CHECK(sizes.size() <= kMaxDims, what, ": ", sizes.size(), " dimensions");
  GNDET_CHECK(offset >= 0, what, ": negative storage offset ", offset);
  int64_t numel = 1, last = offset;  // last = the highest element offset the view touches
  for (size_t d = 0; d < sizes.size(); ++d) {
    GNDET_CHECK(sizes[d] >= 0 && strides[d] >= 0, what, ": bad size ", shape_str(sizes), " / stride ",
                shape_str(strides));
    numel = checked_mul(numel, sizes[d], what);
  }
  if (numel > 0) {
    for (size_t d = 0; d < sizes.size(); ++d) last = checked_add(last, checked_mul(sizes[d] - 1, strides[d], what), what);
    GNDET_CHECK(static_cast<uint64_t>(last) < src_elems, what, ": the view (offset ", offset, ", size ",
                shape_str(sizes), ", stride ", shape_str(strides), ") reaches element ", last, " but its storage holds ",
                src_elems, " (storage shorter than its tensor)");
  }
  // A view that does not overlap itself has at most as many elements as its storage; zero or
  // overlapping strides repeat elements, bounded so that a corrupt file cannot ask for terabytes.
  GNDET_CHECK(static_cast<uint64_t>(numel) <= src_elems || numel <= (int64_t{1} << 28), what, ": a view of ", numel,
              " elements over a storage of ", src_elems);
  Tensor out = empty(sizes, gndet_dtype(e));
  char* dst = static_cast<char*>(out.raw_data());
  if (numel == 0) return out;
  const size_t in_size = elem_size(e), out_size = itemsize(out.dtype());
  const bool same = !big_endian && in_size == out_size && e != Elem::F16 && e != Elem::BF16 && e != Elem::Bool;
  // contiguous check
  bool contiguous = true;
  int64_t expect = 1;
  for (size_t d = sizes.size(); d-- > 0;) {
    if (sizes[d] != 1 && strides[d] != expect) contiguous = false;
    expect *= sizes[d];
  }
  if (same && contiguous) {
    std::memcpy(dst, src + offset * in_size, static_cast<size_t>(numel) * in_size);
    return out;
  }
  std::vector<int64_t> idx(sizes.size(), 0);
  int64_t at = offset;
  for (int64_t k = 0; k < numel; ++k) {
    convert_one(e, big_endian && in_size > 1, src + at * in_size, dst + k * out_size);
    for (size_t d = sizes.size(); d-- > 0;) {  // odometer over the dims, last fastest
      if (++idx[d] < sizes[d]) {
        at += strides[d];
        break;
      }
      at -= (sizes[d] - 1) * strides[d];
      idx[d] = 0;
    }
  }
  return out;
}

}  // namespace

Tensor materialize(const Value& v, const std::string& what) {
  if (v.kind == Value::Kind::Tensor && v.tensor) {
    const TensorRef& t = *v.tensor;
    GNDET_CHECK(t.storage && t.storage->bytes, what, ": the tensor's storage '",
                t.storage ? t.storage->key : std::string("?"), "' was never read (truncated file?)");
    const size_t es = elem_size(t.storage->elem);
    return copy_view(t.storage->bytes->data(), t.storage->bytes->size() / es, t.storage->elem, false, t.offset, t.sizes,
                     t.strides, what);
  }
  if (v.kind == Value::Kind::Array && v.array) {
    const ArrayRef& a = *v.array;
    GNDET_CHECK(a.built, what, ": numpy array without data");
    GNDET_CHECK(a.unsupported.empty(), what, ": ", a.unsupported, " is not supported (float16/32/64, int8/16/32/64, "
                "uint8, bool are)");
    GNDET_CHECK(a.shape.size() <= kMaxDims, what, ": ", a.shape.size(), " dimensions");
    int64_t numel = 1;
    for (int64_t s : a.shape) {
      GNDET_CHECK(s >= 0, what, ": negative size in ", shape_str(a.shape));
      numel = checked_mul(numel, s, what);
    }
    const size_t es = elem_size(a.elem);
    GNDET_CHECK(static_cast<uint64_t>(numel) <= a.bytes.size() / es && static_cast<uint64_t>(numel) * es == a.bytes.size(),
                what, ": numpy array of shape ", shape_str(a.shape), " and type ", elem_name(a.elem), " needs ",
                static_cast<uint64_t>(numel) * es, " bytes, the file holds ", a.bytes.size());
    Shape strides(a.shape.size());
    int64_t s = 1;
    if (a.fortran) {
      for (size_t d = 0; d < a.shape.size(); ++d) strides[d] = s, s *= a.shape[d];
    } else {
      for (size_t d = a.shape.size(); d-- > 0;) strides[d] = s, s *= a.shape[d];
    }
    return copy_view(a.bytes.data(), a.bytes.size() / es, a.elem, a.big_endian, 0, a.shape, strides, what);
  }
  GNDET_FAIL(what, ": a ", v.kind_name(), " is not a tensor");
}

}  // namespace gndet::nn::ckpt
