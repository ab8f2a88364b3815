// gndet_dist_worker: the rank-side half of the data-parallel tests (tests/dist/test_dist.cpp),
// started under mpirun, or alone as the one-process reference.
//
//   gndet_dist_worker step CONFIG OUT STEPS [--reference N] [--device cuda] [KEY=VALUE...]
//       STEPS training steps of CONFIG's model on its train set (the config's SGD and clip_grad, at
//       the config's base lr). Under mpirun each rank takes its DefaultSampler share and the
//       gradients are averaged by dist::GradientAverager (over MPI, or with --device cuda over
//       NCCL, as gndet train does). With --reference N one process plays the N ranks itself: it
//       runs every rank's batch forward and backward (gradients add up), then scales by 1/N. Rank 0
//       (or the reference) writes OUT/step_K.safetensors with "weight.<name>" after step K and, for
//       K = 1, "grad.<name>" (the averaged gradients).
//   gndet_dist_worker die     rank 1 exits at once; rank 0 then waits in an all-reduce
//   gndet_dist_worker hang    rank 1 sleeps for 10 minutes; rank 0 waits in an all-reduce
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <thread>

#include "apps/experiment.h"
#include "tensor/grad_mode.h"
#include "dist/grad_sync.h"
#include "nn/optim.h"
#include "ops/elementwise.h"
#include "tensor/factory.h"
#include "tensor/safetensors.h"

using namespace gndet;

namespace {

int run_step(const std::vector<std::string>& args) {
  GNDET_CHECK(args.size() >= 3, "usage: gndet_dist_worker step CONFIG OUT STEPS [--reference N] [KEY=VALUE...]");
  const std::string config = args[0], out = args[1];
  const int steps = std::stoi(args[2]);
  int reference = 0;
  Device device = kCPU;
  std::vector<std::string> overrides;
  for (size_t i = 3; i < args.size(); ++i) {
    if (args[i] == "--reference" && i + 1 < args.size()) {
      reference = std::stoi(args[++i]);
    } else if (args[i] == "--device" && i + 1 < args.size()) {
      device = app::choose_device(args[++i]);
    } else {
      overrides.push_back(args[i]);
    }
  }
  const auto comm = reference > 0 ? dist::single_process() : dist::init_communicator("mpi");
  const int world = reference > 0 ? reference : comm->world_size();
  const Json cfg = app::load_run_config(config, overrides);
  const auto dataset = app::build_dataset(cfg, "train_dataloader");
  // Rank 1 starts from other weights (seed 1): the broadcast from rank 0 must make them equal.
  auto model = app::build_model(cfg, static_cast<uint64_t>(comm->rank()), device, nullptr);
  model->train();
  const ConfigNode optim(cfg.at("optim_wrapper"), "optim_wrapper");
  nn::SGDOptions sgd;
  sgd.lr = optim["optimizer"]["lr"].as_double();
  sgd.momentum = optim["optimizer"].get_double("momentum", 0.0);
  sgd.weight_decay = optim["optimizer"].get_double("weight_decay", 0.0);
  nn::SGD optimizer(nn::make_param_groups(*model, {}), sgd);
  const double clip = optim.has("clip_grad") ? optim["clip_grad"]["max_norm"].as_double() : -1;

  // One loader and one sampling generator per rank played here (all of them for the reference).
  std::vector<int> ranks;
  for (int r = 0; r < world; ++r) {
    if (reference > 0 || r == comm->rank()) ranks.push_back(r);
  }
  std::vector<std::unique_ptr<data::DataLoader>> loaders;
  std::vector<Generator> gens;
  for (int r : ranks) {
    data::LoaderOptions o = app::loader_options(cfg, "train_dataloader", 0);
    o.num_workers = 0;
    o.rank = r;
    o.world_size = world;
    loaders.push_back(std::make_unique<data::DataLoader>(dataset, o));
    loaders.back()->start_epoch(0);
    gens.emplace_back(0x5eed5eedull);  // the trainer's sampler stream: the same seed on every rank
  }

  dist::broadcast_module(*comm, *model);
  // Gradients of GPU ranks go over NCCL, as in gndet train (apps/trainer.cpp).
  const auto grad_comm = reference == 0 && device.is_cuda() ? dist::nccl_communicator(comm, device.index) : comm;
  if (comm->is_main()) std::printf("gradients by %s\n", grad_comm->backend().c_str());
  Tensors trainable;
  for (const Tensor& p : model->parameters()) {
    if (p.requires_grad()) trainable.push_back(p);
  }
  // Small buckets, so that the test crosses bucket boundaries.
  dist::GradientAverager averager(grad_comm, trainable, /*bucket_bytes=*/64 << 10);
  std::filesystem::create_directories(out);
  for (int step = 1; step <= steps; ++step) {
    optimizer.zero_grad();
    for (size_t k = 0; k < ranks.size(); ++k) {
      std::optional<data::Batch> batch = loaders[k]->next();
      GNDET_CHECK(batch.has_value(), "the epoch ended before step ", step);
      const app::ModelInputs in = app::to_model_inputs(*batch, device, true);
      total_loss(model->loss(in.images, in.targets, in.infos, gens[k])).backward();  // gradients add up
    }
    if (reference > 0) {
      autograd::NoGradGuard no_grad;
      for (Tensor& p : trainable) {
        Tensor g = p.grad();
        if (g.defined()) mul_(g, 1.0 / world);
      }
    } else {
      averager.average();
      std::printf("rank %d step %d: %lld of %lld buckets reduced during backward\n", comm->rank(), step,
                  static_cast<long long>(averager.buckets_started_in_backward()),
                  static_cast<long long>(averager.num_buckets()));
    }
    std::map<std::string, Tensor> saved;
    if (step == 1) {
      for (const auto& [name, p] : model->named_parameters()) {
        if (p.grad().defined()) saved["grad." + name] = p.grad().cpu().clone();
      }
    }
    if (clip > 0) nn::clip_grad_norm(trainable, clip);
    optimizer.step();
    for (const auto& [name, p] : model->named_parameters()) saved["weight." + name] = p.detach().cpu().clone();
    if (comm->is_main()) save_safetensors(out + "/step_" + std::to_string(step) + ".safetensors", saved);
  }
  comm->barrier();
  return 0;
}

int run_fault(const std::string& mode) {
  const auto comm = dist::init_communicator("mpi");
  Tensor x = full({4}, 1.0, kFloat32);
  comm->all_reduce_sum(x);  // everyone is up
  if (comm->rank() == 1) {
    if (mode == "die") std::_Exit(5);
    std::this_thread::sleep_for(std::chrono::minutes(10));
  }
  comm->all_reduce_sum(x);  // rank 1 never comes
  std::printf("rank %d: the all-reduce returned although rank 1 is gone\n", comm->rank());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::vector<std::string> args(argv + 1, argv + argc);
    if (!args.empty() && args[0] == "step") return run_step({args.begin() + 1, args.end()});
    if (!args.empty() && (args[0] == "die" || args[0] == "hang")) return run_fault(args[0]);
    std::cerr << "usage: gndet_dist_worker step|die|hang ...\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "gndet_dist_worker: " << e.what() << "\n";
    return 1;
  }
}
