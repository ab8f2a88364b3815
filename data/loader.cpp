#include "data/loader.h"

#include <algorithm>
#include <cstring>
#include <sstream>

#include <omp.h>

#include "tensor/factory.h"

namespace gndet::data {
namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

uint64_t mix_seed(uint64_t seed, uint64_t a, uint64_t b) {
  return splitmix64(splitmix64(splitmix64(seed) ^ a) ^ (b * 0xD1B54A32D192ED03ull));
}

void shuffle(std::vector<int64_t>& v, Generator& gen) {  // Fisher-Yates, as numpy's shuffle
  for (int64_t i = static_cast<int64_t>(v.size()) - 1; i > 0; --i) {
    std::swap(v[static_cast<size_t>(i)], v[static_cast<size_t>(gen.randint(0, i + 1))]);
  }
}

std::string describe_indices(const std::vector<int64_t>& idx) {
  std::ostringstream os;
  for (size_t i = 0; i < idx.size(); ++i) os << (i ? ", " : "") << idx[i];
  return os.str();
}

}  // namespace

Sample Dataset::get(int64_t index) const {
  Generator rng(splitmix64(static_cast<uint64_t>(index)));
  return get(index, rng);
}

Batch collate(std::vector<Sample> samples, int64_t pad_size_divisor) {
  GNDET_CHECK(!samples.empty(), "collate: no samples");
  GNDET_CHECK(pad_size_divisor > 0, "collate: pad_size_divisor must be positive, got ", pad_size_divisor);
  int64_t H = 0, W = 0;
  for (const Sample& s : samples) {
    GNDET_CHECK(s.image.defined() && s.image.dim() == 3 && s.image.size(2) == 3 &&
                    (s.image.dtype() == kUInt8 || s.image.dtype() == kFloat32),
                "collate: expected (H, W, 3) uint8 or float32 images, got ",
                s.image.defined() ? dtype_name(s.image.dtype()) : "none", " ",
                s.image.defined() ? shape_str(s.image.shape()) : "");
    H = std::max(H, s.image.size(0));
    W = std::max(W, s.image.size(1));
  }
  H = (H + pad_size_divisor - 1) / pad_size_divisor * pad_size_divisor;
  W = (W + pad_size_divisor - 1) / pad_size_divisor * pad_size_divisor;
  const int64_t B = static_cast<int64_t>(samples.size());
  Batch batch;
  batch.images = zeros({B, 3, H, W}, kFloat32);
  float* out = batch.images.data<float>();
  for (int64_t b = 0; b < B; ++b) {
    Sample& s = samples[static_cast<size_t>(b)];
    const Tensor img = s.image.contiguous();
    const int64_t h = img.size(0), w = img.size(1);
    for (int64_t c = 0; c < 3; ++c) {
      float* plane = out + (b * 3 + c) * H * W;
      if (img.dtype() == kFloat32) {
        const float* in = img.data<float>();
        for (int64_t y = 0; y < h; ++y) {
          for (int64_t x = 0; x < w; ++x) plane[y * W + x] = in[(y * w + x) * 3 + c];
        }
      } else {
        const uint8_t* in = img.data<uint8_t>();
        for (int64_t y = 0; y < h; ++y) {
          for (int64_t x = 0; x < w; ++x) plane[y * W + x] = static_cast<float>(in[(y * w + x) * 3 + c]);
        }
      }
    }
    batch.gt_boxes.push_back(s.gt_boxes);
    batch.gt_labels.push_back(s.gt_labels);
    batch.gt_masks.push_back(s.gt_masks);
    batch.gt_boxes_ignore.push_back(s.gt_boxes_ignore);
    batch.metas.push_back(std::move(s.meta));
  }
  return batch;
}

DataLoader::DataLoader(std::shared_ptr<const Dataset> dataset, LoaderOptions options)
    : dataset_(std::move(dataset)), options_(std::move(options)) {
  GNDET_CHECK(dataset_ != nullptr, "DataLoader: no dataset");
  GNDET_CHECK(options_.batch_size > 0, "DataLoader: batch_size must be positive, got ", options_.batch_size);
  GNDET_CHECK(options_.num_workers >= 0, "DataLoader: num_workers must be >= 0, got ", options_.num_workers);
  GNDET_CHECK(options_.world_size > 0 && options_.rank >= 0 && options_.rank < options_.world_size,
              "DataLoader: rank ", options_.rank, " out of range for world size ", options_.world_size);
  GNDET_CHECK(options_.prefetch_batches > 0, "DataLoader: prefetch_batches must be positive, got ",
              options_.prefetch_batches);
}

DataLoader::~DataLoader() { stop_workers(); }

std::vector<std::vector<int64_t>> DataLoader::plan(int64_t epoch) const {
  if (options_.world_size > 1 && options_.shard_whole_batches) {
    const std::vector<std::vector<int64_t>> all = single_rank_plan(epoch);
    std::vector<std::vector<int64_t>> mine;
    for (size_t b = static_cast<size_t>(options_.rank); b < all.size(); b += static_cast<size_t>(options_.world_size)) {
      mine.push_back(all[b]);
    }
    return mine;
  }
  if (options_.world_size > 1) return rank_plan(epoch);
  return single_rank_plan(epoch);
}

std::vector<std::vector<int64_t>> DataLoader::rank_plan(int64_t epoch) const {
  const int64_t n = dataset_->size(), bs = options_.batch_size, world = options_.world_size;
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
  if (options_.shuffle) {
    Generator gen(mix_seed(options_.seed, static_cast<uint64_t>(epoch), 0));
    shuffle(order, gen);
  }
  std::vector<int64_t> mine;
  const int64_t total = n == 0 ? 0 : (n + world - 1) / world * world;
  for (int64_t k = options_.rank; k < total; k += world) mine.push_back(order[static_cast<size_t>(k % n)]);
  std::vector<std::vector<int64_t>> batches;
  if (options_.shuffle && options_.group_by_aspect) {
    std::vector<int64_t> groups[2];
    for (int64_t i : mine) {
      const ImageSize sz = dataset_->image_size(i);
      auto& g = groups[sz.width > sz.height ? 1 : 0];
      g.push_back(i);
      if (static_cast<int64_t>(g.size()) == bs) {
        batches.push_back(g);
        g.clear();
      }
    }
    mine = groups[0];
    mine.insert(mine.end(), groups[1].begin(), groups[1].end());
  } else {
    std::vector<int64_t> rest;
    for (int64_t i : mine) {
      rest.push_back(i);
      if (static_cast<int64_t>(rest.size()) == bs) {
        batches.push_back(rest);
        rest.clear();
      }
    }
    mine = rest;
  }
  for (size_t start = 0; start < mine.size(); start += static_cast<size_t>(bs)) {  // leftovers
    const size_t end = std::min(mine.size(), start + static_cast<size_t>(bs));
    if (static_cast<int64_t>(end - start) < bs && options_.drop_last) break;
    batches.emplace_back(mine.begin() + static_cast<std::ptrdiff_t>(start), mine.begin() + static_cast<std::ptrdiff_t>(end));
  }
  return batches;
}

std::vector<std::vector<int64_t>> DataLoader::single_rank_plan(int64_t epoch) const {
  const int64_t n = dataset_->size(), bs = options_.batch_size;
  std::vector<int64_t> order;
  std::vector<std::vector<int64_t>> batches;
  if (!options_.shuffle) {
    for (int64_t i = 0; i < n; ++i) order.push_back(i);
  } else if (!options_.group_by_aspect) {
    Generator gen(mix_seed(options_.seed, static_cast<uint64_t>(epoch), 0));
    for (int64_t i = 0; i < n; ++i) order.push_back(i);
    shuffle(order, gen);
  } else {
    // GroupSampler: per group shuffle and top up with random repeats, then shuffle whole batches.
    Generator gen(mix_seed(options_.seed, static_cast<uint64_t>(epoch), 0));
    std::vector<int64_t> groups[2];
    for (int64_t i = 0; i < n; ++i) {
      const ImageSize sz = dataset_->image_size(i);
      groups[sz.width > sz.height ? 1 : 0].push_back(i);
    }
    std::vector<int64_t> all;
    for (auto& g : groups) {
      if (g.empty()) continue;
      shuffle(g, gen);
      const int64_t size = static_cast<int64_t>(g.size());
      const int64_t extra = (size + bs - 1) / bs * bs - size;
      std::vector<int64_t> picked = g;
      for (int64_t e = 0; e < extra; ++e) picked.push_back(g[static_cast<size_t>(gen.randint(0, size))]);
      all.insert(all.end(), picked.begin(), picked.end());
    }
    std::vector<int64_t> batch_order(all.size() / static_cast<size_t>(bs));
    for (size_t b = 0; b < batch_order.size(); ++b) batch_order[b] = static_cast<int64_t>(b);
    shuffle(batch_order, gen);
    for (int64_t b : batch_order) batches.emplace_back(all.begin() + b * bs, all.begin() + (b + 1) * bs);
    return batches;
  }
  for (int64_t start = 0; start < n; start += bs) {
    const int64_t end = std::min(n, start + bs);
    if (end - start < bs && options_.drop_last) break;
    batches.emplace_back(order.begin() + start, order.begin() + end);
  }
  return batches;
}

int64_t DataLoader::batches_per_epoch() const { return static_cast<int64_t>(plan(0).size()); }

Batch DataLoader::make_batch(int64_t position) const {
  const std::vector<int64_t>& idx = plan_[static_cast<size_t>(position)];
  std::vector<Sample> samples;
  samples.reserve(idx.size());
  for (size_t j = 0; j < idx.size(); ++j) {
    // Ranks draw from disjoint slots, so that two ranks never flip their k-th images alike.
    const int64_t global = options_.world_size > 1 ? position * options_.world_size + options_.rank : position;
    const uint64_t slot = static_cast<uint64_t>(global * options_.batch_size) + j;
    Generator rng(mix_seed(options_.seed, static_cast<uint64_t>(epoch_) + 1, slot + 1));
    samples.push_back(dataset_->get(idx[j], rng));
  }
  Batch batch = collate(std::move(samples), options_.pad_size_divisor);
  batch.indices = idx;
  batch.epoch = epoch_;
  batch.position = position;
  if (options_.on_batch) options_.on_batch(batch);
  return batch;
}

void DataLoader::worker_loop() {
  // A worker runs its ops on its own thread only, as PyTorch's DataLoader workers do
  // (torch.set_num_threads(1)): an OpenMP team of its own would fight the training step's team for
  // the same cores, and every parallel region of the step then waits for a preempted thread. On
  // the 2-core machine the demo's iterations took 0.19-0.26 s with teams in the worker and
  // 0.15 s without any worker (bench/results/demo_training.md).
  omp_set_num_threads(1);
  for (;;) {
    int64_t position;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [&] {
        return stopping_ || next_to_claim_ >= static_cast<int64_t>(plan_.size()) ||
               next_to_claim_ < next_to_return_ + options_.prefetch_batches;
      });
      if (stopping_ || next_to_claim_ >= static_cast<int64_t>(plan_.size())) return;
      position = next_to_claim_++;
    }
    Finished done;
    try {
      done.batch = make_batch(position);
    } catch (...) {
      done.error = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      finished_[position] = std::move(done);
    }
    changed_.notify_all();
  }
}

void DataLoader::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  for (std::thread& t : workers_) t.join();
  workers_.clear();
  std::lock_guard<std::mutex> lock(mutex_);
  stopping_ = false;
  finished_.clear();
}

void DataLoader::start_epoch(int64_t epoch) {
  stop_workers();
  epoch_ = epoch;
  started_ = true;
  plan_ = plan(epoch);
  next_to_claim_ = next_to_return_ = 0;
  for (int i = 0; i < options_.num_workers; ++i) workers_.emplace_back([this] { worker_loop(); });
}

std::optional<Batch> DataLoader::next() {
  GNDET_CHECK(started_, "DataLoader::next: no epoch started (call start_epoch(epoch) first)");
  Finished done;
  int64_t position;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    position = next_to_return_;
    if (position >= static_cast<int64_t>(plan_.size())) return std::nullopt;
    if (options_.num_workers > 0) {
      changed_.wait(lock, [&] { return finished_.count(position) > 0; });
      done = std::move(finished_[position]);
      finished_.erase(position);
    }
    ++next_to_return_;
  }
  changed_.notify_all();  // a prefetch slot is free
  if (options_.num_workers == 0) {
    try {
      done.batch = make_batch(position);
    } catch (...) {
      done.error = std::current_exception();
    }
  }
  if (done.error) {
    const std::string where = "data loader: epoch " + std::to_string(epoch_) + ", batch " + std::to_string(position) +
                              " (dataset indices " + describe_indices(plan_[static_cast<size_t>(position)]) + "): ";
    try {
      std::rethrow_exception(done.error);
    } catch (const std::exception& e) {
      throw Error(where + e.what());
    } catch (...) {
      throw Error(where + "unknown exception");
    }
  }
  return std::move(done.batch);
}

}  // namespace gndet::data
