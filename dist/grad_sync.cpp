#include "dist/grad_sync.h"

#include "autograd/node.h"
#include "ops/elementwise.h"
#include "tensor/factory.h"
#include "tensor/grad_mode.h"

namespace gndet::dist {

void broadcast_module(Communicator& comm, const nn::Module& model, int root) {
  if (comm.world_size() == 1) return;
  autograd::NoGradGuard no_grad;
  for (const auto& [name, t] : model.state_dict()) {
    GNDET_CHECK(t.is_contiguous(), "broadcast_module: ", name, " is not contiguous");
    Tensor data = t.detach();  // same storage: written in place, the module keeps its handle
    comm.broadcast(data, root);
  }
}

GradientAverager::GradientAverager(std::shared_ptr<Communicator> comm, Tensors params, int64_t bucket_bytes,
                                   bool overlap)
    : comm_(std::move(comm)), params_(std::move(params)) {
  GNDET_CHECK(comm_ != nullptr, "GradientAverager: no communicator");
  GNDET_CHECK(bucket_bytes > 0, "GradientAverager: bucket_bytes must be positive, got ", bucket_bytes);
  const int64_t bucket_floats = std::max<int64_t>(1, bucket_bytes / static_cast<int64_t>(sizeof(float)));
  bucket_of_.resize(params_.size());
  for (size_t k = params_.size(); k-- > 0;) {
    const Tensor& p = params_[k];
    GNDET_CHECK(p.dtype() == kFloat32, "GradientAverager: parameters must be float32, parameter ", k, " is ",
                dtype_name(p.dtype()));
    GNDET_CHECK(p.device() == params_.front().device(), "GradientAverager: parameters on several devices (",
                p.device().str(), " and ", params_.front().device().str(), ")");
    if (buckets_.empty() || (buckets_.back().floats + p.numel() > bucket_floats && !buckets_.back().params.empty())) {
      buckets_.emplace_back();
    }
    buckets_.back().params.push_back(k);
    buckets_.back().floats += p.numel();
    bucket_of_[k] = buckets_.size() - 1;
    num_floats_ += p.numel();
  }
  if (comm_->world_size() == 1) return;  // nothing to reduce: no buffers, no hooks
  for (Bucket& b : buckets_) {
    b.flat = zeros({b.floats + static_cast<int64_t>(b.params.size())}, TensorOptions{kFloat32, params_.front().device()});
  }
  reset_round();
  if (!overlap) return;
  for (size_t k = 0; k < params_.size(); ++k) {
    GNDET_CHECK(params_[k].requires_grad() && !params_[k].grad_fn(), "GradientAverager: parameter ", k,
                " is not a leaf that requires grad");
    hook_ids_.push_back(autograd::add_post_accumulate_hook(params_[k], [this, k] { gradient_ready(k); }));
  }
}

GradientAverager::~GradientAverager() {
  for (size_t k = 0; k < hook_ids_.size(); ++k) autograd::remove_post_accumulate_hook(params_[k], hook_ids_[k]);
}

void GradientAverager::reset_round() {
  ready_.assign(params_.size(), false);
  for (Bucket& b : buckets_) b.waiting = b.params.size(), b.started = false;
  next_to_start_ = 0;
  accumulated_twice_ = false;
}

void GradientAverager::gradient_ready(size_t param) {
  if (accumulated_twice_) return;  // everything is redone in average()
  if (ready_[param]) {
    accumulated_twice_ = true;  // a second backward adds to gradients some buckets already sent
    return;
  }
  ready_[param] = true;
  --buckets_[bucket_of_[param]].waiting;
  while (next_to_start_ < buckets_.size() && buckets_[next_to_start_].waiting == 0) start(buckets_[next_to_start_++]);
}

void GradientAverager::start(Bucket& b) {
  autograd::NoGradGuard no_grad;
  int64_t at = 0;
  std::vector<float> produced(b.params.size(), 0.0f);
  for (size_t j = 0; j < b.params.size(); ++j) {
    const Tensor& p = params_[b.params[j]];
    Tensor slot = b.flat.narrow(0, at, p.numel());
    const Tensor g = p.grad();
    if (g.defined()) {
      slot.copy_(g.reshape({-1}));
      produced[j] = 1.0f;
    } else {
      slot.zero_();
    }
    at += p.numel();
  }
  Tensor flag_slots = b.flat.narrow(0, b.floats, static_cast<int64_t>(b.params.size()));
  flag_slots.copy_(from_data(produced, {static_cast<int64_t>(produced.size())}));
  comm_->all_reduce_sum(b.flat, /*queued=*/true);
  b.started = true;
}

void GradientAverager::average() {
  if (comm_->world_size() == 1) return;
  autograd::NoGradGuard no_grad;
  started_in_backward_ = static_cast<int64_t>(next_to_start_);
  if (accumulated_twice_) {
    comm_->wait_queued();  // the early sums are stale: the gradients grew after they were packed
    for (Bucket& b : buckets_) b.started = false;
    started_in_backward_ = 0;
  }
  // The buckets backward did not start (all of them without overlap, or those holding a gradient
  // this rank did not produce), in bucket order; a GPU communicator reduces bucket k while k + 1
  // is packed.
  for (Bucket& b : buckets_) {
    if (!b.started) start(b);
  }
  comm_->wait_queued();
  const double inv_world = 1.0 / comm_->world_size();
  for (Bucket& b : buckets_) {
    // Counts of small integers: exact in float32.
    const std::vector<float> produced =
        b.flat.narrow(0, b.floats, static_cast<int64_t>(b.params.size())).to_vector<float>();
    Tensor sums = b.flat.narrow(0, 0, b.floats);
    mul_(sums, inv_world);  // DDP divides the sum by the world size
    // The gradients become views of the bucket (DDP's gradient_as_bucket_view): no copy back.
    // The next average() overwrites the bucket only after zero_grad and backward have replaced
    // these gradients with new tensors.
    int64_t at = 0;
    for (size_t j = 0; j < b.params.size(); ++j) {
      Tensor p = params_[b.params[j]];
      const int64_t n = p.numel();
      if (produced[j] > 0.0f) p.set_grad(b.flat.narrow(0, at, n).view(p.shape()));
      at += n;
    }
  }
  reset_round();
}

}  // namespace gndet::dist
