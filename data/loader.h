// Datasets and the batch loader: sampling order (mmdetection's GroupSampler), worker threads with
// a bounded prefetch queue, collation into padded (B, 3, H, W) batches, and a per-batch hook that
// runs in the worker thread (where a CUDA backend pins memory or starts an asynchronous copy).
//
// Reproducibility: the epoch's order depends only on (seed, epoch), and every sample gets its own
// Generator seeded from (seed, epoch, position in the epoch), so random transforms give the same
// batches whatever the number of workers and however the threads interleave.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "data/image.h"
#include "data/transforms.h"

namespace gndet::data {

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  // Must be safe to call from several threads at once. `rng` drives the random transforms.
  virtual Sample get(int64_t index, Generator& rng) const = 0;
  // The sample with a generator seeded by its index (derived classes: `using Dataset::get;`).
  Sample get(int64_t index) const;
  // The original (h, w) of sample `index`, known without decoding (aspect-ratio grouping).
  virtual ImageSize image_size(int64_t index) const = 0;
};

struct Batch {
  Tensor images;                  // (B, 3, H, W) float32, channels first, zero-padded to the largest image of the batch
  std::vector<Tensor> gt_boxes;   // per image: (K, 4) float32 x1, y1, x2, y2
  std::vector<Tensor> gt_labels;  // per image: (K) int64
  std::vector<Tensor> gt_masks;   // per image: (K, h, w) uint8 at that image's pad_shape; undefined if not loaded
  std::vector<Tensor> gt_boxes_ignore;  // per image: (M, 4) float32
  std::vector<ImageMeta> metas;
  std::vector<int64_t> indices;  // dataset indices
  int64_t epoch = 0;
  int64_t position = 0;        // index of the batch within its epoch
  std::shared_ptr<void> user;  // free for the hook (e.g. device tensors, CUDA events)
};

// Stacks samples into a batch: images (H, W, 3) uint8 or float32 -> (B, 3, Hmax, Wmax) float32,
// with Hmax, Wmax rounded up to pad_size_divisor.
Batch collate(std::vector<Sample> samples, int64_t pad_size_divisor = 1);

struct LoaderOptions {
  int64_t batch_size = 2;
  bool shuffle = true;
  // With shuffle: mmdetection's GroupSampler. Images with w > h and the others are shuffled
  // separately, each group is topped up to a multiple of batch_size with random repeats, and
  // the batches are shuffled, so every batch holds one aspect group.
  bool group_by_aspect = true;
  bool drop_last = false;        // without grouping: drop a last, incomplete batch
  int num_workers = 2;           // 0: batches are made in the consumer thread, on demand
  int prefetch_batches = 4;      // at most this many finished or in-progress batches ahead of the consumer
  int64_t pad_size_divisor = 1;  // for the batch tensor
  uint64_t seed = 0;
  // Data parallelism. Training (world_size > 1): mmengine's DefaultSampler, then batching per
  // rank: every rank shuffles all indices with the same (seed, epoch), pads the order to a multiple
  // of world_size by repeating its start, and takes every world_size-th index from `rank` on;
  // with group_by_aspect its share is batched as mmdetection 3's AspectRatioBatchSampler does
  // (a batch when one aspect group fills, leftovers mixed at the end), else in order. Every rank
  // then has the same number of batches. shard_whole_batches (evaluation): rank r takes batches
  // r, r + N, ... of the one-process plan, so every image is batched and padded exactly as in a
  // one-process run (GroupNorm statistics depend on the padding).
  int rank = 0;
  int world_size = 1;
  bool shard_whole_batches = false;
  // Called on each finished batch in the thread that made it (a worker, or the consumer when
  // num_workers = 0), before the consumer can see it. Exceptions are reported like loading errors.
  std::function<void(Batch&)> on_batch;
};

class DataLoader {
 public:
  DataLoader(std::shared_ptr<const Dataset> dataset, LoaderOptions options);
  ~DataLoader();  // stops and joins the workers, also in the middle of an epoch
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  // The dataset indices of every batch of an epoch.
  std::vector<std::vector<int64_t>> plan(int64_t epoch) const;
  int64_t batches_per_epoch() const;

  // Starts (or restarts) an epoch; an unfinished previous epoch is abandoned.
  void start_epoch(int64_t epoch);
  // The next batch of the started epoch in order, or nullopt after the last one. A failure while making the batch
  // (in a worker or in the hook) is rethrown here as gndet::Error naming the batch and its
  // dataset indices; the following next() continues with the next batch.
  std::optional<Batch> next();

 private:
  std::vector<std::vector<int64_t>> single_rank_plan(int64_t epoch) const;
  std::vector<std::vector<int64_t>> rank_plan(int64_t epoch) const;
  Batch make_batch(int64_t position) const;
  void worker_loop();
  void stop_workers();

  std::shared_ptr<const Dataset> dataset_;
  LoaderOptions options_;
  int64_t epoch_ = 0;
  bool started_ = false;
  std::vector<std::vector<int64_t>> plan_;

  std::mutex mutex_;
  std::condition_variable changed_;
  bool stopping_ = false;
  int64_t next_to_claim_ = 0;
  int64_t next_to_return_ = 0;
  struct Finished {
    std::optional<Batch> batch;
    std::exception_ptr error;
  };
  std::map<int64_t, Finished> finished_;
  std::vector<std::thread> workers_;
};

}  // namespace gndet::data
