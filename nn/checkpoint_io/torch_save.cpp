#include "nn/checkpoint_io/torch_save.h"

#include "nn/checkpoint_io/zip.h"
#include "tensor/safetensors.h"

namespace gndet::nn::ckpt {
namespace {

// Emits the few pickle opcodes the checkpoint needs (protocol 2, no memo: the reader needs none).
class PickleWriter {
 public:
  PickleWriter() { out_ += "\x80\x02"; }
  void op(char c) { out_.push_back(c); }
  void text(const std::string& s) {  // BINUNICODE
    op('X');
    u32(static_cast<uint32_t>(s.size()));
    out_ += s;
  }
  void integer(int64_t v) {
    if (v >= INT32_MIN && v <= INT32_MAX) {  // BININT
      op('J');
      u32(static_cast<uint32_t>(static_cast<int32_t>(v)));
    } else {  // LONG1, 8 bytes two's complement
      op('\x8a');
      out_.push_back(8);
      for (int k = 0; k < 8; ++k) out_.push_back(static_cast<char>((static_cast<uint64_t>(v) >> (8 * k)) & 0xff));
    }
  }
  void global(const char* module, const char* name) {
    op('c');
    out_ += module;
    out_ += '\n';
    out_ += name;
    out_ += '\n';
  }
  void int_tuple(const Shape& v) {
    op('(');
    for (int64_t x : v) integer(x);
    op('t');
  }
  std::string finish() {
    op('.');
    return std::move(out_);
  }

 private:
  void u32(uint32_t v) {
    for (int k = 0; k < 4; ++k) out_.push_back(static_cast<char>((v >> (8 * k)) & 0xff));
  }
  std::string out_;
};

const char* storage_class(DType t) {
  switch (t) {
    case kFloat32: return "FloatStorage";
    case kFloat64: return "DoubleStorage";
    case kInt64: return "LongStorage";
    case kInt32: return "IntStorage";
    case kUInt8: return "ByteStorage";
    case kBool: return "BoolStorage";
    case kBFloat16: return "BFloat16Storage";
    case kFloat16: return "HalfStorage";
  }
  return "?";
}

}  // namespace

std::string torch_checkpoint_bytes(const StateDict& state, const std::map<std::string, std::string>& meta) {
  PickleWriter p;
  std::vector<std::pair<std::string, Tensor>> storages;
  p.op('}');
  p.op('(');
  p.text("meta");
  p.op('}');
  p.op('(');
  for (const auto& [k, v] : meta) {
    p.text(k);
    p.text(v);
  }
  p.op('u');
  p.text("state_dict");
  p.global("collections", "OrderedDict");
  p.op(')');
  p.op('R');
  p.op('(');
  for (const auto& [name, tensor] : state) {
    GNDET_CHECK(tensor.defined(), "writing a .pth: tensor '", name, "' is undefined");
    Tensor t = tensor.detach().cpu().contiguous();
    const std::string key = std::to_string(storages.size());
    p.text(name);
    // torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, backward_hooks)
    p.global("torch._utils", "_rebuild_tensor_v2");
    p.op('(');
    p.op('(');  // persistent id ('storage', torch.FloatStorage, key, 'cpu', numel)
    p.text("storage");
    p.global("torch", storage_class(t.dtype()));
    p.text(key);
    p.text("cpu");
    p.integer(t.numel());
    p.op('t');
    p.op('Q');  // BINPERSID
    p.integer(0);
    p.int_tuple(t.shape());
    Shape strides(t.dim());
    int64_t s = 1;
    for (int64_t d = t.dim(); d-- > 0;) strides[d] = s, s *= t.size(d);
    p.int_tuple(strides);
    p.op('\x89');  // requires_grad False
    p.global("collections", "OrderedDict");
    p.op(')');
    p.op('R');
    p.op('t');
    p.op('R');
    storages.emplace_back(key, std::move(t));
  }
  p.op('u');  // the state_dict's items
  p.op('u');  // the top dict's items
  const std::string pickle = p.finish();

  ZipWriter zip;
  zip.add("archive/data.pkl", pickle);
  zip.add("archive/byteorder", "little");
  for (const auto& [key, t] : storages) {
    zip.add("archive/data/" + key,
            std::string_view(static_cast<const char*>(t.raw_data()), static_cast<size_t>(t.numel()) * t.element_size()));
  }
  zip.add("archive/version", "3\n");
  return zip.finish();
}

void save_torch_checkpoint(const std::string& path, const StateDict& state,
                           const std::map<std::string, std::string>& meta) {
  write_file_atomic(path, torch_checkpoint_bytes(state, meta));
}

}  // namespace gndet::nn::ckpt
