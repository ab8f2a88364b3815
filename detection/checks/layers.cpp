// Composite gradcheck cases of whole layers (`gndet gradcheck --modules`): a conv block with GN
// and ReLU, a WS conv with GN, a GN bottleneck with its downsampling shortcut, the ResNet stem and
// the FPN. Each is checked at a generic point (composite_util.h) in float64, with respect to its
// parameters and its input.
#include "detection/checks/composite_util.h"
#include "detection/fpn.h"
#include "detection/resnet.h"
#include "nn/conv_module.h"

namespace gndet::checks {
namespace {

using autograd::CompositeCase;
using autograd::CompositeRegistrar;
using autograd::GradcheckOptions;

// Small cases: at most 64 elements of each tensor, plus one random direction through all of them.
GradcheckOptions sampled(int64_t per_input) {
  GradcheckOptions o;
  o.max_elements_per_input = per_input;
  o.directional = true;
  return o;
}

CompositeProblem conv_block(bool ws, int64_t groups, bool relu, DType dtype, Device device) {
  CompositeProblem p;
  nn::ConvModuleOptions o;
  o.conv = {.in_channels = 4, .out_channels = 8, .kernel = {3, 3}, .padding = {1, 1}, .weight_standardization = ws};
  o.norm = {.type = nn::NormType::GroupNorm, .num_groups = groups};
  o.relu = relu;
  Generator gen(ws ? 11 : 10);
  auto m = std::make_shared<nn::ConvModule>(o, gen);
  generic_point(*m, gen);
  add_parameters(p, *m, dtype, device);
  const Tensor x = add_input(p, "input", {2, 4, 5, 5}, ws ? 21 : 20, dtype, device);
  p.forward = [m, x] { return Tensors{m->forward(x)}; };
  p.owner = m;
  return p;
}

CompositeProblem conv_gn_relu(DType dtype, Device device) { return conv_block(false, 4, true, dtype, device); }
CompositeProblem convws_gn(DType dtype, Device device) { return conv_block(true, 2, false, dtype, device); }

ResNetOptions tiny_resnet50() {
  ResNetOptions o;
  o.depth = 50;
  o.stem_channels = 8;
  o.base_channels = 4;  // stages of 16, 32, 64, 128 channels
  o.frozen_stages = -1;
  o.norm.type = nn::NormType::GroupNorm;
  o.norm.num_groups = 4;
  return o;
}

CompositeProblem gn_bottleneck(DType dtype, Device device) {
  CompositeProblem p;
  Generator gen(30);
  auto net = std::make_shared<ResNet>(tiny_resnet50(), gen);
  // layer2.0: 16 -> 32 channels (width 8), stride 2 on its 3x3 conv, a 1x1/2 conv + GN shortcut.
  std::shared_ptr<nn::UnaryModule> block;
  for (const auto& [name, child] : net->named_children()) {
    if (name == "layer2") block = (*std::dynamic_pointer_cast<nn::Sequential>(child))[0];
  }
  GNDET_CHECK(block != nullptr, "gn_bottleneck: the ResNet has no layer2");
  generic_point(*block, gen);
  add_parameters(p, *block, dtype, device, "layer2.0.");
  const Tensor x = add_input(p, "input", {1, 16, 6, 6}, 31, dtype, device);
  p.forward = [block, x] { return Tensors{block->forward(x)}; };
  p.owner = net;
  return p;
}

CompositeProblem resnet_stem(DType dtype, Device device) {
  CompositeProblem p;
  Generator gen(40);
  auto net = std::make_shared<ResNet>(tiny_resnet50(), gen);
  for (const auto& [name, child] : net->named_children()) {
    if (name == "conv1" || name == "gn1") {
      generic_point(*child, gen);
      add_parameters(p, *child, dtype, device, name + ".");
    }
  }
  net->to(dtype);
  net->to(device);
  const Tensor x = add_input(p, "input", {1, 3, 16, 16}, 41, dtype, device);
  p.forward = [net, x] { return Tensors{net->stem(x)}; };
  p.owner = net;
  return p;
}

CompositeProblem fpn(DType dtype, Device device) {
  CompositeProblem p;
  FPNOptions o;
  o.in_channels = {8, 16, 32};
  o.out_channels = 8;
  o.num_outs = 4;  // the fourth by max-pooling the third, as P6 is made
  o.norm.type = nn::NormType::GroupNorm;
  o.norm.num_groups = 4;
  Generator gen(50);
  auto m = std::make_shared<FPN>(o, gen);
  generic_point(*m, gen);
  add_parameters(p, *m, dtype, device);
  const std::vector<Tensor> inputs = {add_input(p, "inputs.0", {1, 8, 8, 8}, 51, dtype, device),
                                      add_input(p, "inputs.1", {1, 16, 4, 4}, 52, dtype, device),
                                      add_input(p, "inputs.2", {1, 32, 2, 2}, 53, dtype, device)};
  p.forward = [m, inputs] {
    const std::vector<Tensor> outs = m->forward(inputs);
    return Tensors(outs.begin(), outs.end());
  };
  p.owner = m;
  return p;
}

const CompositeRegistrar reg_conv_gn_relu({"conv_gn_relu",
                                           "ConvModule 3x3 4->8 + GN(4 groups) + ReLU, input (2, 4, 5, 5)", "",
                                           sampled(64), &conv_gn_relu});
const CompositeRegistrar reg_convws_gn({"convws_gn", "ConvModule 3x3 4->8 with WS + GN(2 groups), input (2, 4, 5, 5)",
                                        "", sampled(64), &convws_gn});
const CompositeRegistrar reg_bottleneck({"gn_bottleneck",
                                         "ResNet-50 layer2.0 at 1/16 width: 1x1, 3x3/2, 1x1 convs with GN, 1x1/2 "
                                         "conv + GN downsample, input (1, 16, 6, 6)",
                                         "", sampled(48), &gn_bottleneck});
const CompositeRegistrar reg_stem({"resnet_stem", "conv 7x7/2 3->8 + GN(4) + ReLU + max-pool 3x3/2, input (1, 3, 16, 16)",
                                   "", sampled(64), &resnet_stem});
const CompositeRegistrar reg_fpn({"fpn",
                                  "FPN 8/16/32 -> 8 channels, GN(4): laterals, top-down nearest upsampling, 3x3 "
                                  "outputs, a 4th level by max-pool",
                                  "", sampled(48), &fpn});

}  // namespace
}  // namespace gndet::checks
