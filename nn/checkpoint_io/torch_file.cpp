#include "nn/checkpoint_io/torch_file.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "nn/checkpoint_io/zip.h"
#include "tensor/error.h"

namespace gndet::nn::ckpt {
namespace {

using Kind = Value::Kind;

// The legacy format's first pickle: the long 0x1950a86a20f9469cfc6c, little-endian.
const std::string kLegacyMagic("\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 10);
constexpr int64_t kLegacyProtocol = 1001;

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Storages named by persistent ids, shared by every tensor that views them.
class StorageTable {
 public:
  explicit StorageTable(const std::string& what) : what_(what) {}

  // pid = ('storage', storage_type, key, location, numel[, view_metadata])
  std::shared_ptr<StorageRef> declare(const ValuePtr& pid) {
    GNDET_CHECK(pid->kind == Kind::Tuple && pid->items.size() >= 5 && pid->items[0]->is_text() &&
                    pid->items[0]->s == "storage",
                what_, ": persistent id is not ('storage', type, key, location, numel)");
    const auto& it = pid->items;
    Elem elem;
    GNDET_CHECK(it[1]->kind == Kind::Global && storage_type_elem(it[1]->s, &elem), what_,
                ": persistent id names no storage type");
    GNDET_CHECK(it[2]->is_text() && it[4]->kind == Kind::Int && it[4]->i >= 0, what_,
                ": persistent id with a bad key or element count");
    GNDET_CHECK(it.size() < 6 || it[5]->kind == Kind::None, what_,
                ": storage views (files of torch < 0.4) are not supported");
    auto [pos, fresh] = storages_.try_emplace(it[2]->s);
    if (fresh) {
      pos->second = std::make_shared<StorageRef>();
      pos->second->key = it[2]->s;
      pos->second->elem = elem;
      pos->second->numel = it[4]->i;
      order_.push_back(pos->second);
    } else {
      GNDET_CHECK(pos->second->elem == elem, what_, ": storage '", it[2]->s, "' is declared as ",
                  elem_name(pos->second->elem), " and as ", elem_name(elem));
    }
    return pos->second;
  }

  std::shared_ptr<StorageRef> find(const std::string& key) const {
    auto it = storages_.find(key);
    return it == storages_.end() ? nullptr : it->second;
  }

  // Sets the bytes, which must hold the declared elements.
  void fill(StorageRef& s, std::string bytes) const {
    const uint64_t es = elem_size(s.elem);
    GNDET_CHECK(static_cast<uint64_t>(s.numel) <= bytes.size() / es, what_, ": storage '", s.key, "' declares ",
                s.numel, " ", elem_name(s.elem), " elements but holds ", bytes.size(), " bytes (truncated?)");
    s.bytes = std::make_shared<const std::string>(std::move(bytes));
  }

  const std::vector<std::shared_ptr<StorageRef>>& all() const { return order_; }

 private:
  const std::string& what_;
  std::map<std::string, std::shared_ptr<StorageRef>> storages_;
  std::vector<std::shared_ptr<StorageRef>> order_;
};

ValuePtr storage_value(std::shared_ptr<StorageRef> s) {
  auto v = std::make_shared<Value>();
  v->kind = Kind::Storage;
  v->storage = std::move(s);
  return v;
}

PickledCheckpoint parse_zip(std::string_view bytes, const std::string& what) {
  ZipReader zip(bytes, what);
  const ZipEntry* pkl = nullptr;
  for (const ZipEntry& e : zip.entries()) {
    if (ends_with(e.name, "/data.pkl") && e.name.find('/') == e.name.size() - 9) {
      pkl = &e;
      break;
    }
  }
  GNDET_CHECK(pkl != nullptr, what, ": a ZIP archive without '<name>/data.pkl' is not a PyTorch checkpoint");
  const std::string prefix = pkl->name.substr(0, pkl->name.size() - 8);  // "archive/"
  if (const ZipEntry* order = zip.find(prefix + "byteorder")) {
    const std::string o = zip.read(*order);
    GNDET_CHECK(o == "little", what, ": byteorder '", o, "': only little-endian checkpoints are supported");
  }
  const std::string pickle = zip.read(*pkl);
  StorageTable table(what);
  UnpickleOptions options;
  options.persistent_load = [&](const ValuePtr& pid) {
    std::shared_ptr<StorageRef> s = table.declare(pid);
    if (!s->bytes) table.fill(*s, zip.read(prefix + "data/" + s->key));
    return storage_value(s);
  };
  size_t pos = 0;
  PickledCheckpoint out{"pytorch zip", unpickle(pickle, &pos, what + " (data.pkl)", options)};
  return out;
}

PickledCheckpoint parse_legacy(std::string_view bytes, size_t pos, const std::string& what) {
  const ValuePtr protocol = unpickle(bytes, &pos, what);
  GNDET_CHECK(protocol->kind == Kind::Int && protocol->i == kLegacyProtocol, what,
              ": legacy PyTorch file with protocol version ", protocol->kind == Kind::Int ? protocol->i : -1,
              " (expected ", kLegacyProtocol, ")");
  const ValuePtr sys_info = unpickle(bytes, &pos, what);
  if (const ValuePtr* le = sys_info->get("little_endian")) {
    GNDET_CHECK((*le)->kind == Kind::Bool && (*le)->b, what, ": saved on a big-endian machine, not supported");
  }
  StorageTable table(what);
  UnpickleOptions options;
  options.persistent_load = [&](const ValuePtr& pid) { return storage_value(table.declare(pid)); };
  PickledCheckpoint out{"pytorch legacy", unpickle(bytes, &pos, what, options)};
  const ValuePtr keys = unpickle(bytes, &pos, what);
  GNDET_CHECK(keys->kind == Kind::List, what, ": legacy storage key list missing");
  for (const ValuePtr& k : keys->items) {
    GNDET_CHECK(k->is_text(), what, ": a storage key is not a string");
    std::shared_ptr<StorageRef> s = table.find(k->s);
    GNDET_CHECK(s != nullptr, what, ": storage '", k->s, "' is listed but no tensor uses it");
    GNDET_CHECK(bytes.size() - pos >= 8, what, ": truncated before storage '", k->s, "'");
    uint64_t count = 0;
    for (int b = 0; b < 8; ++b) count |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[pos + b])) << (8 * b);
    pos += 8;
    const uint64_t es = elem_size(s->elem);
    GNDET_CHECK(count <= (bytes.size() - pos) / es, what, ": storage '", k->s, "' of ", count, " elements runs past the "
                "end of the file (truncated)");
    table.fill(*s, std::string(bytes.substr(pos, count * es)));
    pos += count * es;
  }
  return out;
}

bool is_weight(const ValuePtr& v) { return v->kind == Kind::Tensor || v->kind == Kind::Array; }

void take_weights(const Value& dict, const std::string& what, const std::string& prefix_for_skips, bool drop_momentum,
                  ForeignWeights* out) {
  for (const auto& [k, v] : dict.dict) {
    if (!k->is_text()) {
      out->skipped.push_back(prefix_for_skips + "<" + k->kind_name() + " key>");
      continue;
    }
    if (drop_momentum && ends_with(k->s, "_momentum")) {
      out->skipped.push_back(prefix_for_skips + k->s);
      continue;
    }
    if (!is_weight(v)) {
      out->skipped.push_back(prefix_for_skips + k->s);
      continue;
    }
    out->tensors.emplace_back(k->s, materialize(*v, what + ", tensor '" + k->s + "'"));
  }
}

}  // namespace

PickledCheckpoint parse_pickled_checkpoint(std::string_view bytes, const std::string& what) {
  if (looks_like_zip(bytes)) return parse_zip(bytes, what);
  // Binary pickles start with PROTO (0x80); Python 2's protocol 0/1 ones with an opcode like these.
  const std::string_view starts("\x80(}]c", 5);
  GNDET_CHECK(bytes.size() >= 2 && starts.find(bytes[0]) != std::string_view::npos, what,
              ": not a PyTorch checkpoint (zip or legacy) nor a binary pickle (", bytes.size(), " bytes; first byte ",
              bytes.empty() ? -1 : static_cast<int>(static_cast<uint8_t>(bytes[0])), ")");
  size_t pos = 0;
  ValuePtr first = unpickle(bytes, &pos, what);
  if (first->kind == Kind::BigInt && first->s == kLegacyMagic) return parse_legacy(bytes, pos, what);
  // A legacy file's first pickle is its magic number; any other number there is a corrupt one.
  GNDET_CHECK(first->kind != Kind::BigInt && first->kind != Kind::Int, what,
              ": wrong magic number (not a legacy PyTorch file, or a corrupt one)");
  return PickledCheckpoint{"pickle", first};
}

ForeignWeights extract_weights(const PickledCheckpoint& c, const std::string& what) {
  ForeignWeights out;
  out.container = c.container;
  const Value& root = *c.root;
  GNDET_CHECK(root.kind == Kind::Dict, what, ": the checkpoint holds a ", root.kind_name(),
              ", not a dict of weights");
  auto skip_others = [&](const char* kept) {
    for (const auto& [k, v] : root.dict) {
      if (!k->is_text() || k->s != kept) out.skipped.push_back(k->is_text() ? k->s : std::string("<key>"));
    }
  };
  const ValuePtr* inner = nullptr;
  if ((inner = root.get("state_dict")) && (*inner)->kind == Kind::Dict) {
    out.layout = "mmengine";
    skip_others("state_dict");
    take_weights(**inner, what, "state_dict.", false, &out);
  } else if ((inner = root.get("model")) && (*inner)->kind == Kind::Dict) {
    out.layout = "detectron2";
    skip_others("model");
    take_weights(**inner, what, "model.", false, &out);
  } else if ((inner = root.get("blobs")) && (*inner)->kind == Kind::Dict) {
    out.layout = "detectron";
    skip_others("blobs");
    take_weights(**inner, what, "blobs.", true, &out);
  } else {
    bool arrays = false;
    for (const auto& [k, v] : root.dict) arrays = arrays || v->kind == Kind::Array;
    out.layout = arrays ? "detectron" : "state_dict";
    take_weights(root, what, "", arrays, &out);
  }
  GNDET_CHECK(!out.tensors.empty(), what, ": no tensors found (", out.layout, " layout; entries: ",
              out.skipped.size(), ")");
  return out;
}

ForeignWeights parse_checkpoint_buffer(std::string_view bytes, const std::string& what) {
  return extract_weights(parse_pickled_checkpoint(bytes, what), what);
}

std::string read_whole_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  GNDET_CHECK(in.good(), "cannot open checkpoint '", path, "': ", std::strerror(errno));
  std::ostringstream os;
  os << in.rdbuf();
  GNDET_CHECK(!in.bad(), "error reading checkpoint '", path, "'");
  return std::move(os).str();
}

ForeignWeights read_foreign_checkpoint(const std::string& path) {
  const std::string bytes = read_whole_file(path);
  return parse_checkpoint_buffer(bytes, "'" + path + "'");
}

bool looks_like_pickled_checkpoint(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in.good()) return false;
  const uint64_t size = static_cast<uint64_t>(in.tellg());
  in.seekg(0);
  unsigned char head[9] = {0};
  in.read(reinterpret_cast<char*>(head), 9);
  const auto got = static_cast<size_t>(in.gcount());
  // A safetensors file starts with its header length (any bytes, 0x80 or "PK" included), then '{';
  // in a ZIP local header byte 8 is the compression method (0 or 8), never '{'.
  uint64_t header_len = 0;
  for (int b = 0; b < 8; ++b) header_len |= static_cast<uint64_t>(head[b]) << (8 * b);
  if (got == 9 && head[8] == '{' && header_len <= size - 8) return false;
  if (got >= 4 && looks_like_zip(std::string_view(reinterpret_cast<const char*>(head), 4))) return true;
  return got >= 2 && head[0] == 0x80 && head[1] >= 2 && head[1] <= 5;
}

}  // namespace gndet::nn::ckpt
