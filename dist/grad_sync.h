// What data parallelism does to a model: the same weights on every rank at the start, and after
// every backward the mean of the ranks' gradients (PyTorch DistributedDataParallel's semantics:
// each rank's loss is its own batch's loss; gradients are averaged).
//
// Only what requires a gradient is reduced: frozen layers have nothing to synchronise, and
// GroupNorm has no batch statistics to synchronise (no SyncBN is needed).
#pragma once

#include "dist/communicator.h"
#include "nn/module.h"

namespace gndet::dist {

// Every parameter and buffer of `model` takes root's values.
void broadcast_module(Communicator& comm, const nn::Module& model, int root = 0);

class GradientAverager {
 public:
  // `params`: the trainable parameters, all on one device. Buckets of about bucket_bytes each
  // (DDP's 25 MB) are filled in reverse registration order, about the order backward produces
  // gradients in. With overlap (the default), a bucket is reduced as soon as backward has finished
  // every gradient in it (post-accumulate hooks on the parameters), while backward goes on: a GPU
  // communicator reduces it on its side stream next to the remaining backward kernels; MPI on CPU
  // ranks reduces it there and then. Buckets start in bucket order on every rank, so every rank
  // issues the same collectives in the same order.
  GradientAverager(std::shared_ptr<Communicator> comm, Tensors params, int64_t bucket_bytes = 25ll << 20,
                   bool overlap = true);
  ~GradientAverager();  // removes the hooks
  GradientAverager(const GradientAverager&) = delete;
  GradientAverager& operator=(const GradientAverager&) = delete;

  // After backward: reduces the buckets backward has not started, waits for all, and makes every
  // gradient its mean over the ranks. A parameter whose gradient no rank produced keeps no
  // gradient (the optimizer then skips it, as in one process); one that only some ranks produced
  // counts as zero on the others (DDP with find_unused_parameters). With one rank this does
  // nothing. The averaged gradients are views of this object's buckets, valid until the next
  // average(): the training loop's zero_grad + backward replace them first (a caller that keeps a
  // gradient across steps must clone it). Two backward passes before one average() (gradient
  // accumulation) are correct too: the buckets started early are then reduced again, at the end.
  void average();

  int64_t num_buckets() const { return static_cast<int64_t>(buckets_.size()); }
  int64_t num_floats() const { return num_floats_; }
  // How many buckets the last average() found already started during backward.
  int64_t buckets_started_in_backward() const { return started_in_backward_; }

 private:
  struct Bucket {
    std::vector<size_t> params;  // indices into params_
    int64_t floats = 0;          // gradient elements, followed by one "produced" count per parameter
    Tensor flat;
    size_t waiting = 0;  // parameters whose gradient this backward has not finished yet
    bool started = false;
  };
  void gradient_ready(size_t param);  // the hook of params_[param]
  void start(Bucket& b);              // pack and queue the sum
  void reset_round();

  std::shared_ptr<Communicator> comm_;
  Tensors params_;
  std::vector<Bucket> buckets_;
  int64_t num_floats_ = 0;
  std::vector<size_t> bucket_of_;   // parameter index -> bucket index
  std::vector<bool> ready_;         // this round: the parameter's gradient is final
  std::vector<uint64_t> hook_ids_;  // parallel to params_ (overlap only)
  size_t next_to_start_ = 0;        // buckets start in index order
  bool accumulated_twice_ = false;  // a second backward before average(): redo the started buckets
  int64_t started_in_backward_ = 0;
};

}  // namespace gndet::dist
