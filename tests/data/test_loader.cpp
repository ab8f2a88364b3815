#include <atomic>
#include <chrono>
#include <set>
#include <thread>

#include "data/loader.h"
#include "tensor/factory.h"
#include "tests/support.h"

using namespace gndet;
using namespace gndet::data;

namespace {

// Sample i: an (h, w) image filled with i; landscape for even i, portrait for odd i. A random
// flip makes the rng's use visible in the output. Can be told to fail on one index or to be slow.
class FakeDataset : public Dataset {
 public:
  explicit FakeDataset(int64_t n, int64_t fail_at = -1, int sleep_ms = 0)
      : n_(n), fail_at_(fail_at), sleep_ms_(sleep_ms) {}
  using Dataset::get;
  int64_t size() const override { return n_; }
  mutable std::atomic<int64_t> loads{0};  // samples begun, from every worker
  ImageSize image_size(int64_t i) const override {
    return i % 2 == 0 ? ImageSize{8, 12 + i % 5} : ImageSize{12 + i % 3, 8};
  }
  Sample get(int64_t i, Generator& rng) const override {
    ++loads;
    if (sleep_ms_ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms_));
    if (i == fail_at_) throw std::runtime_error("sample " + std::to_string(i) + " is broken");
    const ImageSize sz = image_size(i);
    Tensor img = full({sz.height, sz.width, 3}, static_cast<double>(i % 200), kUInt8);
    img.data<uint8_t>()[0] = 255;  // top-left marker: where it lands shows the flip
    Sample s = make_sample(img, false);
    s.gt_boxes = from_data<float>({0, 0, 2, 2}, {1, 4});
    s.gt_labels = from_data<int64_t>({i}, {1});
    RandomFlip(0.5).apply(s, rng);
    return s;
  }

 private:
  int64_t n_, fail_at_;
  int sleep_ms_;
};

std::vector<Batch> run_epoch(DataLoader& loader, int64_t epoch) {
  loader.start_epoch(epoch);
  std::vector<Batch> out;
  while (auto b = loader.next()) out.push_back(std::move(*b));
  return out;
}

}  // namespace

TEST_CASE("collate pads images to the largest, channels first", "[data]") {
  std::vector<Sample> samples;
  Tensor a = empty({2, 3, 3}, kUInt8), b = full({4, 1, 3}, 9.0, kFloat32);
  for (int64_t i = 0; i < a.numel(); ++i) a.data<uint8_t>()[i] = static_cast<uint8_t>(i);  // (y, x, c) -> 9 y + 3 x + c
  samples.push_back(make_sample(a, false));
  samples.push_back(make_sample(b, false));
  const Batch batch = collate(std::move(samples), 4);
  REQUIRE(batch.images.shape() == Shape{2, 3, 4, 4});  // max (4, 3) rounded up to multiples of 4
  const std::vector<float> v = batch.images.to_vector<float>();
  auto at = [&](int64_t n, int64_t c, int64_t y, int64_t x) {
    return v[static_cast<size_t>(((n * 3 + c) * 4 + y) * 4 + x)];
  };
  CHECK(at(0, 2, 1, 2) == 9 * 1 + 3 * 2 + 2);
  CHECK(at(0, 0, 0, 3) == 0);  // padding
  CHECK(at(0, 1, 2, 0) == 0);
  CHECK(at(1, 1, 3, 0) == 9);
  CHECK(at(1, 1, 3, 1) == 0);
  CHECK(batch.metas.size() == 2);
}

TEST_CASE("the sampling plan: reproducible per (seed, epoch), aspect groups as GroupSampler", "[data]") {
  auto ds = std::make_shared<FakeDataset>(23);
  LoaderOptions o;
  o.batch_size = 4;
  o.seed = 7;
  DataLoader loader(ds, o);
  const auto p0 = loader.plan(0), p0again = loader.plan(0), p1 = loader.plan(1);
  CHECK(p0 == p0again);
  CHECK(p0 != p1);
  CHECK(DataLoader(ds, o).plan(0) == p0);  // a new loader with the same seed
  // 12 landscape (even) and 11 portrait (odd) images: each group topped up to 12 -> 6 batches
  REQUIRE(p0.size() == 6);
  std::set<int64_t> seen;
  for (const auto& batch : p0) {
    REQUIRE(batch.size() == 4);
    for (int64_t i : batch) {
      CHECK(i % 2 == batch[0] % 2);  // one aspect group per batch
      seen.insert(i);
    }
  }
  CHECK(seen.size() == 23);  // every image, plus one repeat in the portrait group
  o.shuffle = false;
  const auto seq = DataLoader(ds, o).plan(3);
  REQUIRE(seq.size() == 6);
  CHECK(seq[0] == std::vector<int64_t>{0, 1, 2, 3});
  CHECK(seq[5] == std::vector<int64_t>{20, 21, 22});
  o.drop_last = true;
  CHECK(DataLoader(ds, o).plan(0).size() == 5);
}

TEST_CASE("worker threads give the same batches as loading in the caller's thread", "[data]") {
  auto ds = std::make_shared<FakeDataset>(30);
  LoaderOptions o;
  o.batch_size = 3;
  o.seed = 11;
  o.num_workers = 0;
  DataLoader serial(ds, o);
  o.num_workers = 3;
  o.prefetch_batches = 2;
  DataLoader threaded(ds, o);
  const std::vector<Batch> a = run_epoch(serial, 2), b = run_epoch(threaded, 2);
  REQUIRE(a.size() == b.size());
  REQUIRE(a.size() == static_cast<size_t>(serial.batches_per_epoch()));
  int flips = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].indices == b[i].indices);
    CHECK(a[i].position == static_cast<int64_t>(i));
    CHECK(a[i].images.to_vector<float>() == b[i].images.to_vector<float>());
    for (size_t j = 0; j < a[i].metas.size(); ++j) {
      CHECK(a[i].metas[j].flip == b[i].metas[j].flip);
      flips += a[i].metas[j].flip;
    }
  }
  CHECK(flips > 0);  // the flips are random (about half) yet repeat exactly
  CHECK(flips < 30);
  // a different epoch reshuffles
  CHECK(run_epoch(threaded, 3)[0].indices != b[0].indices);
}

TEST_CASE("a failing sample surfaces as gndet::Error in the consumer and loading goes on", "[data]") {
  for (int workers : {0, 2}) {
    INFO("workers " << workers);
    auto ds = std::make_shared<FakeDataset>(12, /*fail_at=*/5);
    LoaderOptions o;
    o.batch_size = 2;
    o.shuffle = false;
    o.num_workers = workers;
    DataLoader loader(ds, o);
    loader.start_epoch(0);
    CHECK(loader.next()->indices == std::vector<int64_t>{0, 1});
    CHECK(loader.next()->indices == std::vector<int64_t>{2, 3});
    CHECK_THROWS_MATCHES(
        loader.next(), Error,
        Catch::Matchers::Message("data loader: epoch 0, batch 2 (dataset indices 4, 5): sample 5 is broken"));
    CHECK(loader.next()->indices == std::vector<int64_t>{6, 7});
  }
}

TEST_CASE("the batch hook runs in the worker thread, its errors are reported like loading errors", "[data]") {
  auto ds = std::make_shared<FakeDataset>(8);
  LoaderOptions o;
  o.batch_size = 2;
  o.num_workers = 2;
  const std::thread::id consumer = std::this_thread::get_id();
  std::atomic<int> calls{0}, in_consumer{0};
  o.on_batch = [&](Batch& b) {
    ++calls;
    if (std::this_thread::get_id() == consumer) ++in_consumer;
    b.user = std::make_shared<int>(static_cast<int>(b.position));
    if (b.position == 2) throw Error("pinning failed");
  };
  DataLoader loader(ds, o);
  loader.start_epoch(0);
  int64_t seen = 0;
  int errors = 0;
  for (;;) {
    try {
      auto b = loader.next();
      if (!b) break;
      CHECK(*std::static_pointer_cast<int>(b->user) == b->position);
      ++seen;
    } catch (const Error& e) {
      CHECK_THAT(std::string(e.what()), Catch::Contains("batch 2") && Catch::Contains("pinning failed"));
      ++errors;
    }
  }
  CHECK(seen == 3);
  CHECK(errors == 1);
  CHECK(calls == 4);
  CHECK(in_consumer == 0);
}

TEST_CASE("destroying a loader in the middle of an epoch stops its workers cleanly", "[data]") {
  auto ds = std::make_shared<FakeDataset>(200, -1, /*sleep_ms=*/5);
  LoaderOptions o;
  o.batch_size = 2;
  o.num_workers = 3;
  {
    DataLoader loader(ds, o);
    loader.start_epoch(0);
    REQUIRE(loader.next().has_value());
    loader.start_epoch(1);  // abandons epoch 0 mid-way
    REQUIRE(loader.next().has_value());
  }
  // Counted, not timed: per epoch the workers may have begun the batch taken plus
  // prefetch_batches ahead (plus, loosely, one per worker racing the stop), so two epochs load
  // at most 2 * (1 + 4 + 3) * 2 = 32 of the 400 samples; a loader that ran on to the end of the
  // abandoned epoch would load 200 or more.
  const int64_t bound = 2 * (1 + o.prefetch_batches + o.num_workers) * o.batch_size;
  CHECK(ds->loads.load() <= bound);
  // the destructor joined the workers: nothing loads afterwards
  const int64_t after = ds->loads.load();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK(ds->loads.load() == after);
}
