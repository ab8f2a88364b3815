// The PyTorch / pickle checkpoint reader against fixtures written by
// tools/reference/make_checkpoint_fixtures.py (torch 2.1.2, numpy 1.26, mmengine 0.10.7), with the
// values they must give stored alongside in expected.safetensors. No Python runs here.
#include <catch2/catch.hpp>
#include <random>

#include "nn/checkpoint_io/torch_file.h"
#include "nn/checkpoint_io/zip.h"
#include "gndet_config.h"
#include "tensor/safetensors.h"
#include "tests/support.h"

using namespace gndet;
using namespace gndet::nn::ckpt;

namespace {

std::string fixture(const std::string& name) {
  return std::string(GNDET_SOURCE_DIR) + "/tests/nn/fixtures/checkpoints/" + name;
}

const std::map<std::string, Tensor>& expected() {
  static const std::map<std::string, Tensor> e = load_safetensors(fixture("expected.safetensors")).tensors;
  return e;
}

// Every expected "<group>/<name>" is in `w` under <name> with the same shape and exactly the same
// values (exact: half -> float and the reader's copies are exact conversions), and nothing else is.
void check_against_expected(const ForeignWeights& w, const std::string& group) {
  size_t n = 0;
  for (const auto& [key, want] : expected()) {
    if (key.rfind(group + "/", 0) != 0) continue;
    ++n;
    const std::string name = key.substr(group.size() + 1);
    INFO(group << " / " << name);
    auto it = std::find_if(w.tensors.begin(), w.tensors.end(), [&](const auto& p) { return p.first == name; });
    REQUIRE(it != w.tensors.end());
    const Tensor& got = it->second;
    REQUIRE(got.shape() == want.shape());
    REQUIRE(got.is_contiguous());
    if (want.numel() > 0) CHECK(test::max_abs_diff(got.to(want.dtype()), want) == 0.0);
  }
  CHECK(n > 0);
  CHECK(w.tensors.size() == n);
}

DType dtype_of_entry(const ForeignWeights& w, const std::string& name) {
  for (const auto& [k, t] : w.tensors) {
    if (k == name) return t.dtype();
  }
  FAIL("no tensor " << name);
  return kFloat32;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

}  // namespace

TEST_CASE("checkpoint_io: zip and legacy .pth, every dtype", "[checkpoint_io]") {
  for (const char* file : {"zip_dtypes.pth", "legacy_dtypes.pth", "zip_deflated.pth"}) {
    INFO(file);
    const ForeignWeights w = read_foreign_checkpoint(fixture(file));
    CHECK(w.container == (std::string(file).rfind("legacy", 0) == 0 ? "pytorch legacy" : "pytorch zip"));
    CHECK(w.layout == "state_dict");
    check_against_expected(w, "dtypes");
    // half types widen to float32, narrower ints keep their own
    CHECK(dtype_of_entry(w, "f16") == kFloat32);
    CHECK(dtype_of_entry(w, "bf16") == kFloat32);
    CHECK(dtype_of_entry(w, "f64") == kFloat64);
    CHECK(dtype_of_entry(w, "i64") == kInt64);
    CHECK(dtype_of_entry(w, "i32") == kInt32);
    CHECK(dtype_of_entry(w, "u8") == kUInt8);
    CHECK(dtype_of_entry(w, "bool") == kBool);
  }
}

TEST_CASE("checkpoint_io: views with offsets and strides over one shared storage", "[checkpoint_io]") {
  for (const char* file : {"zip_views.pth", "legacy_views.pth"}) {
    INFO(file);
    check_against_expected(read_foreign_checkpoint(fixture(file)), "views");
  }
}

TEST_CASE("checkpoint_io: an mmengine checkpoint gives its state_dict and skips the rest", "[checkpoint_io]") {
  const ForeignWeights w = read_foreign_checkpoint(fixture("mmengine.pth"));
  CHECK(w.layout == "mmengine");
  check_against_expected(w, "mmengine");
  for (const char* k : {"meta", "optimizer", "message_hub"}) {
    CHECK(std::find(w.skipped.begin(), w.skipped.end(), k) != w.skipped.end());
  }
}

TEST_CASE("checkpoint_io: detectron2 and Detectron pickles (Python 3 and Python 2)", "[checkpoint_io]") {
  const ForeignWeights d2 = read_foreign_checkpoint(fixture("detectron2.pkl"));
  CHECK(d2.container == "pickle");
  CHECK(d2.layout == "detectron2");
  check_against_expected(d2, "detectron2");
  const ForeignWeights d2p5 = read_foreign_checkpoint(fixture("detectron2_p5.pkl"));
  CHECK(d2p5.layout == "detectron2");
  check_against_expected(d2p5, "detectron2");

  const ForeignWeights py3 = read_foreign_checkpoint(fixture("detectron_py3.pkl"));
  CHECK(py3.layout == "detectron");
  check_against_expected(py3, "detectron_py3");
  CHECK(py3.skipped == std::vector<std::string>{"conv1_w_momentum"});

  // Python 2: BINSTRING raw bytes, a big-endian and a Fortran-order array, {"blobs": ...}
  const ForeignWeights py2 = read_foreign_checkpoint(fixture("detectron_py2.pkl"));
  CHECK(py2.layout == "detectron");
  check_against_expected(py2, "detectron_py2");
  CHECK(py2.skipped == std::vector<std::string>{"blobs.conv1_w_momentum"});
}

TEST_CASE("checkpoint_io: a pickle asking for os.system is refused by name, nothing runs", "[checkpoint_io]") {
  const std::string e1 = error_of([] { read_foreign_checkpoint(fixture("malicious_os_system.pkl")); });
  CHECK_THAT(e1, Catch::Contains("'os.system'") && Catch::Contains("whitelist") &&
                     Catch::Contains("malicious_os_system.pkl"));
  const std::string e2 = error_of([] { read_foreign_checkpoint(fixture("malicious_in_zip.pth")); });
  CHECK_THAT(e2, Catch::Contains("'posix.system'") && Catch::Contains("nothing was executed"));
  // getattr is read only on inert data classes, so it cannot reach a callable through another one.
  const std::string getattr_pickle("\x80\x02" "c__builtin__\ngetattr\n" "cnumpy\nndarray\n" "X\x04\x00\x00\x00tofi" "\x86R.", 50);
  CHECK_THAT(error_of([&] { parse_checkpoint_buffer(getattr_pickle, "g.pkl"); }),
             Catch::Contains("getattr is only read on the inert classes"));
  CHECK_FALSE(is_whitelisted_global("builtins.eval"));
  CHECK(is_whitelisted_global("torch._utils._rebuild_tensor_v2"));
}

TEST_CASE("checkpoint_io: bad input gets one clear error each", "[checkpoint_io]") {
  const std::string zip = read_whole_file(fixture("zip_views.pth"));
  const std::string legacy = read_whole_file(fixture("legacy_views.pth"));
  auto parse = [](const std::string& bytes) { return [bytes] { parse_checkpoint_buffer(bytes, "test.pth"); }; };

  CHECK_THAT(error_of(parse(zip.substr(0, zip.size() / 2))), Catch::Contains("test.pth") &&
                                                               Catch::Contains("end-of-central-directory"));
  std::string bad_magic = legacy;
  bad_magic[5] ^= 0x10;  // inside the magic number's bytes
  CHECK_THAT(error_of(parse(bad_magic)), Catch::Contains("wrong magic number"));
  CHECK_THAT(error_of(parse(std::string("\x80\x02\xff", 3))), Catch::Contains("unknown or unsupported pickle opcode 0xff"));
  CHECK_THAT(error_of(parse("hello world")), Catch::Contains("not a PyTorch checkpoint"));
  CHECK_THAT(error_of(parse(legacy.substr(0, legacy.size() - 9))), Catch::Contains("runs past the end"));

  ZipReader reader(zip, "z");
  const ZipEntry* storage = nullptr;
  for (const ZipEntry& e : reader.entries()) {
    if (e.name.find("/data/") != std::string::npos) storage = &e;
  }
  REQUIRE(storage != nullptr);
  // Rebuild the archive with a storage shorter than what its tensors need.
  ZipWriter w;
  for (const ZipEntry& e : reader.entries()) {
    std::string data = reader.read(e);
    if (&e == storage) data.resize(data.size() / 2);
    w.add(e.name, data);
  }
  CHECK_THAT(error_of(parse(w.finish())), Catch::Contains("declares") && Catch::Contains("truncated"));

  // A view reaching past its storage, built directly.
  Value v;
  v.kind = Value::Kind::Tensor;
  v.tensor = std::make_shared<TensorRef>();
  v.tensor->storage = std::make_shared<StorageRef>();
  v.tensor->storage->elem = Elem::F32;
  v.tensor->storage->bytes = std::make_shared<const std::string>(16, '\0');  // 4 floats
  v.tensor->offset = 1;
  v.tensor->sizes = {2, 2};
  v.tensor->strides = {2, 1};
  CHECK_THAT(error_of([&] { materialize(v, "t"); }), Catch::Contains("storage shorter than its tensor"));
  v.tensor->offset = 0;
  CHECK(materialize(v, "t").shape() == Shape{2, 2});
}

TEST_CASE("checkpoint_io: deep nesting and cycles end cleanly", "[checkpoint_io]") {
  // A million nested 1-tuples in a megabyte: the values are released without recursion.
  std::string deep = std::string("\x80\x02K\x00", 4) + std::string(1000000, '\x85') + ".";
  CHECK_THAT(error_of([&] { parse_checkpoint_buffer(deep, "deep.pkl"); }), Catch::Contains("holds a tuple"));
  // A list appended to itself (through the memo): a cycle, refused (a shared_ptr cycle would leak;
  // the checkpoint fuzz target's LeakSanitizer found it), no hang.
  const std::string cycle("\x80\x02]q\x00" "h\x00" "a.", 9);
  CHECK_THAT(error_of([&] { parse_checkpoint_buffer(cycle, "cycle.pkl"); }),
             Catch::Contains("cycle.pkl") && Catch::Contains("contains itself"));
}

TEST_CASE("checkpoint_io: zip CRC and deflate checks", "[checkpoint_io]") {
  CHECK(crc32("123456789") == 0xCBF43926u);  // the standard check value
  ZipWriter w;
  w.add("a/data.pkl", "xyz");
  w.add("a/data/0", std::string(100, 'q'));
  std::string bytes = w.finish();
  ZipReader r(bytes, "mem");
  REQUIRE(r.entries().size() == 2);
  CHECK(r.read("a/data/0") == std::string(100, 'q'));
  const size_t at = bytes.find(std::string(100, 'q'));
  REQUIRE(at % 64 == 0);  // data aligned as torch aligns it
  bytes[at + 50] = 'r';
  ZipReader r2(bytes, "mem");
  CHECK_THAT(error_of([&] { r2.read("a/data/0"); }), Catch::Contains("CRC-32 mismatch"));
  CHECK_THAT(error_of([] { inflate_raw(std::string("\xff\xff\xff", 3), 10, "x"); }), Catch::Contains("x"));
  // A directory claiming more than deflate's 1032:1 expansion is refused before any allocation
  // (the checkpoint fuzz target's finding: 2 KB asking for 1 GiB).
  CHECK_THAT(error_of([] { inflate_raw(std::string(100, '\0'), 1u << 30, "big"); }),
             Catch::Contains("big: the directory says 1073741824 bytes inflate from only 100"));
}

TEST_CASE("checkpoint_io: fuzzed .pth and .pkl files end in a clean error or a load", "[checkpoint_io]") {
  std::mt19937_64 rng(20261203);
  int loads = 0, errors = 0;
  for (const char* file : {"zip_views.pth", "legacy_dtypes.pth", "detectron_py2.pkl", "mmengine.pth"}) {
    const std::string good = read_whole_file(fixture(file));
    for (int trial = 0; trial < 100; ++trial) {
      std::string bytes = good;
      const int kind = trial % 3;
      if (kind == 0) {
        bytes.resize(rng() % bytes.size());  // truncation
      } else {
        const int flips = 1 + static_cast<int>(rng() % (kind == 1 ? 1 : 8));
        for (int k = 0; k < flips; ++k) bytes[rng() % bytes.size()] ^= static_cast<char>(1u << (rng() % 8));
      }
      try {
        const ForeignWeights w = parse_checkpoint_buffer(bytes, file);
        ++loads;
        for (const auto& [name, t] : w.tensors) CHECK(t.defined());
      } catch (const Error&) {
        ++errors;
      }
    }
  }
  INFO("loads " << loads << ", errors " << errors);
  CHECK(loads + errors == 400);
  CHECK(errors > 0);
}
