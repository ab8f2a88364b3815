#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "ops/elementwise.h"
#include "tensor/factory.h"
#include "tensor/random.h"
#include "tensor/safetensors.h"
#include "tests/support.h"

using namespace gndet;

TEST_CASE("factories give the documented shapes, dtypes and values", "[tensor]") {
  const Tensor z = zeros({2, 3});
  CHECK(z.shape() == Shape{2, 3});
  CHECK(z.dtype() == kFloat32);
  CHECK(z.is_contiguous());
  CHECK(z.strides() == Shape{3, 1});
  CHECK(full({2}, 7.5, kFloat64).to_vector<double>() == std::vector<double>{7.5, 7.5});
  CHECK(ones({3}, kInt32).to_vector<int32_t>() == std::vector<int32_t>{1, 1, 1});
  CHECK(arange(5).to_vector<int64_t>() == std::vector<int64_t>{0, 1, 2, 3, 4});
  CHECK(arange(1.0, 2.0, 0.25, kFloat64).to_vector<double>() == std::vector<double>{1.0, 1.25, 1.5, 1.75});
  CHECK(scalar_tensor(3.0).dim() == 0);
  CHECK(scalar_tensor(3.0).item<float>() == 3.0f);
  CHECK(from_data<int64_t>({1, 2, 3, 4, 5, 6}, {2, 3}).to_vector<int64_t>() == std::vector<int64_t>{1, 2, 3, 4, 5, 6});
  CHECK_THROWS_WITH(from_data<float>({1, 2, 3}, {2, 2}), Catch::Contains("3 values for shape (2, 2)"));
  CHECK_THROWS_WITH(empty({2, -1}), Catch::Contains("negative size"));
}

TEST_CASE("seeded random tensors repeat and have the right moments", "[tensor]") {
  Generator a(42), b(42);
  CHECK(randn({100}, a).to_vector<float>() == randn({100}, b).to_vector<float>());
  Generator g(7);
  const std::vector<double> u = rand({20000}, g, kFloat64).to_vector<double>();
  double mean = 0;
  for (double x : u) {
    REQUIRE(x >= 0.0);
    REQUIRE(x < 1.0);
    mean += x;
  }
  mean /= static_cast<double>(u.size());
  CHECK(std::abs(mean - 0.5) < 0.01);  // std of the mean: 0.29 / sqrt(20000) = 0.002
  const std::vector<double> n = randn({20000}, g, kFloat64).to_vector<double>();
  double m2 = 0, m1 = 0;
  for (double x : n) {
    m1 += x;
    m2 += x * x;
  }
  m1 /= static_cast<double>(n.size());
  m2 /= static_cast<double>(n.size());
  CHECK(std::abs(m1) < 0.03);         // 4 standard errors (1 / sqrt(20000) = 0.007)
  CHECK(std::abs(m2 - 1.0) < 0.06);   // var of x^2 is 2: standard error 0.01
  const std::vector<int64_t> r = randint(3, 6, {1000}, g).to_vector<int64_t>();
  for (int64_t x : r) REQUIRE((x >= 3 && x < 6));
  std::vector<int64_t> perm = randperm(10, g).to_vector<int64_t>();
  std::sort(perm.begin(), perm.end());
  CHECK(perm == arange(10).to_vector<int64_t>());
}

TEST_CASE("generator state round-trips", "[tensor]") {
  Generator g(3);
  g.normal();  // leaves a spare normal cached
  const std::string s = g.state();
  const double expect = g.normal();
  const uint64_t expect_u = g.next_u64();
  Generator h(99);
  h.set_state(s);
  CHECK(h.normal() == expect);
  CHECK(h.next_u64() == expect_u);
  CHECK_THROWS_WITH(h.set_state("nonsense"), Catch::Contains("malformed"));
}

TEST_CASE("bulk draws equal sequential draws, whatever the thread count", "[tensor]") {
  // 100003 values: past the parallel threshold, and odd so the last normal pair is split.
  Generator bulk(21), seq(21);
  const std::vector<double> u = rand({100003}, bulk, kFloat64).to_vector<double>();
  for (size_t i = 0; i < u.size(); i += 997) {
    Generator at(21);
    for (size_t k = 0; k < i; ++k) at.next_u64();
    CHECK(u[i] == at.uniform());
  }
  CHECK(bulk.offset() == 100003);
  // SplitMix64 reference values for seed 0 (Steele, Lea and Flood; e.g. Java's SplittableRandom).
  CHECK(Generator::number(0, 0) == 0xe220a8397b1dcdafull);
  CHECK(Generator::number(0, 1) == 0x6e789e6aa1b965f4ull);
  const std::vector<double> z = randn({11}, seq, kFloat64).to_vector<double>();
  Generator pairs(21);
  for (int j = 0; j < 5; ++j) {
    const double u1 = pairs.uniform(), u2 = pairs.uniform();
    CHECK(z[2 * j] == std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2));
  }
  CHECK(seq.offset() == 12);
}

TEST_CASE("views share storage: a write through a view is seen by its base", "[tensor]") {
  Tensor base = arange(0.0, 12.0, 1.0, kFloat32).reshape({3, 4});
  Tensor row = base.select(0, 1);
  CHECK(row.shares_storage(base));
  row.fill_(-1.0);
  CHECK(base.to_vector<float>() == std::vector<float>{0, 1, 2, 3, -1, -1, -1, -1, 8, 9, 10, 11});

  Tensor col = base.narrow(1, 2, 1);  // (3, 1), strided
  CHECK(!col.is_contiguous());
  col.copy_(full({3, 1}, 5.0));
  CHECK(base.to_vector<float>() == std::vector<float>{0, 1, 5, 3, -1, -1, 5, -1, 8, 9, 5, 11});

  Tensor tr = base.t();
  CHECK(tr.shape() == Shape{4, 3});
  CHECK(tr.strides() == Shape{1, 4});
  tr.select(0, 0).fill_(100.0);  // first column of base
  CHECK(base.to_vector<float>()[4] == 100.0f);
}

TEST_CASE("view geometry: permute, slice with step, expand, squeeze, unsqueeze, flatten", "[tensor]") {
  const Tensor x = arange(0.0, 24.0, 1.0, kFloat32).reshape({2, 3, 4});
  const Tensor p = x.permute({2, 0, 1});
  CHECK(p.shape() == Shape{4, 2, 3});
  CHECK(p.contiguous().to_vector<float>()[1] == 4.0f);  // p[0,0,1] = x[0,1,0]
  const Tensor s = x.slice(2, 1, 4, 2);  // columns 1 and 3
  CHECK(s.shape() == Shape{2, 3, 2});
  CHECK(s.contiguous().to_vector<float>()[0] == 1.0f);
  CHECK(s.contiguous().to_vector<float>()[1] == 3.0f);
  CHECK(x.slice(0, -1, 100).shape() == Shape{1, 3, 4});  // python-like clamping
  const Tensor e = from_data<float>({1, 2, 3}, {3, 1}).expand({2, 3, 4});
  CHECK(e.shape() == Shape{2, 3, 4});
  CHECK(e.strides() == Shape{0, 1, 0});
  CHECK(e.contiguous().to_vector<float>()[4] == 2.0f);
  CHECK(zeros({1, 3, 1}).squeeze().shape() == Shape{3});
  CHECK(zeros({1, 3, 1}).squeeze(0).shape() == Shape{3, 1});
  CHECK(zeros({3}).unsqueeze(0).shape() == Shape{1, 3});
  CHECK(zeros({3}).unsqueeze(-1).shape() == Shape{3, 1});
  CHECK(x.flatten(1).shape() == Shape{2, 12});
  CHECK(x.reshape({-1, 6}).shape() == Shape{4, 6});
}

TEST_CASE("view refuses incompatible strides; reshape copies instead", "[tensor]") {
  const Tensor x = arange(0.0, 6.0, 1.0, kFloat32).reshape({2, 3});
  CHECK_THROWS_WITH(x.t().view({6}), Catch::Contains("not compatible with the strides"));
  const Tensor r = x.t().reshape({6});
  CHECK(r.to_vector<float>() == std::vector<float>{0, 3, 1, 4, 2, 5});
  CHECK(!r.shares_storage(x));
  // A view that splits a contiguous run of a non-contiguous tensor needs no copy.
  const Tensor y = arange(0.0, 24.0, 1.0, kFloat32).reshape({4, 6}).narrow(1, 0, 4);  // rows of 4, stride 6
  const Tensor v = y.view({4, 2, 2});
  CHECK(v.shares_storage(y));
  CHECK(v.strides() == Shape{6, 2, 1});
}

TEST_CASE("bad shapes, dims and indices name the op and the shapes", "[tensor][errors]") {
  const Tensor x = zeros({2, 3});
  CHECK_THROWS_WITH(x.reshape({4, 2}), Catch::Contains("reshape") && Catch::Contains("(4, 2)"));
  CHECK_THROWS_WITH(x.permute({0, 0}), Catch::Contains("permute: dimension 0 repeated"));
  CHECK_THROWS_WITH(x.select(1, 3), Catch::Contains("select: index 3 out of range"));
  CHECK_THROWS_WITH(x.narrow(0, 1, 5), Catch::Contains("narrow"));
  CHECK_THROWS_WITH(x.size(2), Catch::Contains("dimension 2 out of range"));
  CHECK_THROWS_WITH(x.expand({3, 3}), Catch::Contains("cannot expand (2, 3) to (3, 3)"));
  CHECK_THROWS_WITH(x.data<double>(), Catch::Contains("tensor is float32, asked for float64"));
  CHECK_THROWS_WITH(zeros({2}).item<float>(), Catch::Contains("one element"));
  CHECK_THROWS_WITH(Tensor().shape(), Catch::Contains("undefined"));
}

TEST_CASE("dtype conversion and clone", "[tensor]") {
  const Tensor x = from_data<float>({1.5f, -2.5f, 0.0f});
  CHECK(x.to(kInt64).to_vector<int64_t>() == std::vector<int64_t>{1, -2, 0});
  CHECK(x.to(kBool).to_vector<bool>() == std::vector<bool>{true, true, false});
  CHECK(x.to(kFloat64).dtype() == kFloat64);
  CHECK(x.to(kFloat32).is_same(x));
  Tensor c = x.clone();
  c.fill_(9.0);
  CHECK(x.to_vector<float>()[0] == 1.5f);
}

TEST_CASE("device errors are clear without a GPU", "[tensor][errors]") {
  if (cuda::is_available()) {
    test::skip("a GPU is present; this test covers machines without one");
    return;
  }
  CHECK_THROWS_WITH(zeros({2}, Device::cuda()), Catch::Contains("cuda:0") &&
                                                    (Catch::Contains("built without CUDA") || Catch::Contains("no CUDA GPU")));
  // The cause is kept for the error (a CUDA build: no driver, or no GPU), not printed on its own.
  const std::string why = cuda::unavailable_reason();
  CHECK(!why.empty());
  if (cuda::is_built()) {
    CHECK_THROWS_WITH(zeros({2}, Device::cuda()), Catch::Contains("no CUDA GPU is present (" + why + ")"));
  } else {
    CHECK(why == "gndet was built without CUDA");
  }
  CHECK_THROWS_WITH(zeros({2}).to(Device::cuda(0)), Catch::Contains("cuda:0"));
  CHECK_THROWS_WITH(Device::parse("gpu"), Catch::Contains("unknown device 'gpu'"));
  CHECK(Device::parse("cuda:1") == Device::cuda(1));
}

TEST_CASE("printing shows values, shape and dtype", "[tensor]") {
  std::ostringstream os;
  os << from_data<int64_t>({1, 2, 3, 4}, {2, 2});
  CHECK(os.str() == "tensor([[1, 2],\n        [3, 4]], shape=(2, 2), dtype=int64)");
  std::ostringstream big;
  big << arange(100);
  CHECK(big.str().find("...") != std::string::npos);
}

namespace {
std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("gndet_test_" + name)).string();
}
}  // namespace

TEST_CASE("safetensors round trip of every dtype and the metadata", "[tensor][io]") {
  const std::string path = temp_path("roundtrip.safetensors");
  std::map<std::string, Tensor> in = {
      {"f32", from_data<float>({1.5f, -2.f, 3.25f}, {3, 1})},
      {"f64", from_data<double>({1e-300, 2.0}, {2})},
      {"i64", from_data<int64_t>({-(1ll << 40), 7}, {1, 2})},
      {"i32", from_data<int32_t>({5}, {1})},
      {"u8", from_data<uint8_t>({0, 255}, {2})},
      {"b", from_data<bool>({true, false, true}, {3})},
      {"strided", arange(0.0, 6.0, 1.0, kFloat32).reshape({2, 3}).t()},
      {"empty", zeros({0, 4})},
  };
  save_safetensors(path, in, {{"iteration", "12"}});
  const SafetensorsFile out = load_safetensors(path);
  CHECK(out.metadata.at("iteration") == "12");
  REQUIRE(out.tensors.size() == in.size());
  for (const auto& [name, t] : in) {
    const Tensor& u = out.tensors.at(name);
    CHECK(u.dtype() == t.dtype());
    CHECK(u.shape() == t.shape());
    CHECK(u.to_vector<double>() == t.to_vector<double>());
  }
  // The header is standard: 8-byte little-endian length, then JSON starting with '{'.
  std::ifstream f(path, std::ios::binary);
  uint64_t n = 0;
  f.read(reinterpret_cast<char*>(&n), 8);
  CHECK(n % 8 == 0);
  CHECK(f.get() == '{');
  std::filesystem::remove(path);
}

TEST_CASE("truncated or malformed safetensors files give clear errors", "[tensor][io][errors]") {
  const std::string good = temp_path("good.safetensors");
  save_safetensors(good, {{"w", ones({4, 4})}});
  std::string bytes;
  {
    std::ifstream f(good, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(f), {});
  }
  auto write = [](const std::string& p, const std::string& b) {
    std::ofstream f(p, std::ios::binary);
    f << b;
  };
  const std::string bad = temp_path("bad.safetensors");

  write(bad, bytes.substr(0, bytes.size() - 10));
  CHECK_THROWS_WITH(load_safetensors(bad), Catch::Contains("bad.safetensors") && Catch::Contains("truncated"));

  write(bad, bytes.substr(0, 5));
  CHECK_THROWS_WITH(load_safetensors(bad), Catch::Contains("not a safetensors file"));

  std::string huge = bytes;
  const uint64_t n = 1ull << 40;
  std::memcpy(huge.data(), &n, 8);
  write(bad, huge);
  CHECK_THROWS_WITH(load_safetensors(bad), Catch::Contains("header length"));

  std::string garbled = bytes;
  garbled[9] = '#';
  write(bad, garbled);
  CHECK_THROWS_WITH(load_safetensors(bad), Catch::Contains("safetensors JSON header is not valid JSON"));

  CHECK_THROWS_WITH(load_safetensors(temp_path("missing.safetensors")), Catch::Contains("cannot open"));
  std::filesystem::remove(good);
  std::filesystem::remove(bad);
}

TEST_CASE("atomic writes leave no temporary file behind", "[tensor][io]") {
  const std::string dir = temp_path("atomic_dir");
  std::filesystem::create_directories(dir);
  write_file_atomic(dir + "/a.txt", "hello");
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    (void)e;
    ++files;
  }
  CHECK(files == 1);
  CHECK_THROWS_WITH(write_file_atomic(dir + "/no/such/dir/x", "y"), Catch::Contains("cannot open"));
  std::filesystem::remove_all(dir);
}
