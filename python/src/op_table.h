// gndet.ops: the table of gndet's public ops as Python sees them. One row per C++ overload:
//
//   X(name, return type, (parameter types), (Python parameters), "docstring")
//
// ops_py.cpp turns every row into a binding of that exact C++ function (the parameter types pick
// the overload), so gndet.ops.NAME runs the same code as C++ callers, autograd included. Python
// parameters are nanobind argument declarations: arg("x"), arg("eps") = 1e-5, and opt("bias") for
// a tensor that may be None (an undefined Tensor in C++). A few ops whose C++ parameters are
// structs or enums are reached through adapters at the end of ops_py.cpp (namespace adapt).
// Adding an op to gndet.ops is adding its row here; tests/test_ops.py checks that every
// differentiable op the library registers is either here or a Tensor method.
#pragma once

#define GNDET_TENSOR_BINARY_OPS(X)                                                                          \
  X(add, Tensor, (const Tensor&, const Tensor&), (arg("a"), arg("b")), "a + b, broadcast")                   \
  X(add, Tensor, (const Tensor&, double), (arg("a"), arg("b")), "a + b for a number b")                      \
  X(sub, Tensor, (const Tensor&, const Tensor&), (arg("a"), arg("b")), "a - b, broadcast")                   \
  X(mul, Tensor, (const Tensor&, const Tensor&), (arg("a"), arg("b")), "a * b, broadcast")                   \
  X(mul, Tensor, (const Tensor&, double), (arg("a"), arg("b")), "a * b for a number b")                      \
  X(div, Tensor, (const Tensor&, const Tensor&), (arg("a"), arg("b")), "a / b, broadcast")                   \
  X(div, Tensor, (const Tensor&, double), (arg("a"), arg("b")), "a / b for a number b")                      \
  X(pow, Tensor, (const Tensor&, const Tensor&), (arg("a"), arg("b")), "a ** b, broadcast")                  \
  X(pow, Tensor, (const Tensor&, double), (arg("a"), arg("exponent")), "a ** exponent")                     \
  X(maximum, Tensor, (const Tensor&, const Tensor&), (arg("a"), arg("b")), "elementwise max; ties split the gradient") \
  X(minimum, Tensor, (const Tensor&, const Tensor&), (arg("a"), arg("b")), "elementwise min; ties split the gradient") \
  X(eq, Tensor, (const Tensor&, const Tensor&), (arg("a"), arg("b")), "a == b (bool)")                       \
  X(eq, Tensor, (const Tensor&, double), (arg("a"), arg("b")), "a == b (bool)")                              \
  X(ne, Tensor, (const Tensor&, const Tensor&), (arg("a"), arg("b")), "a != b (bool)")                       \
  X(lt, Tensor, (const Tensor&, const Tensor&), (arg("a"), arg("b")), "a < b (bool)")                        \
  X(lt, Tensor, (const Tensor&, double), (arg("a"), arg("b")), "a < b (bool)")                               \
  X(le, Tensor, (const Tensor&, const Tensor&), (arg("a"), arg("b")), "a <= b (bool)")                       \
  X(gt, Tensor, (const Tensor&, const Tensor&), (arg("a"), arg("b")), "a > b (bool)")                        \
  X(gt, Tensor, (const Tensor&, double), (arg("a"), arg("b")), "a > b (bool)")                               \
  X(ge, Tensor, (const Tensor&, const Tensor&), (arg("a"), arg("b")), "a >= b (bool)")                       \
  X(logical_and, Tensor, (const Tensor&, const Tensor&), (arg("a"), arg("b")), "a and b (bool tensors)")     \
  X(logical_or, Tensor, (const Tensor&, const Tensor&), (arg("a"), arg("b")), "a or b (bool tensors)")       \
  X(where, Tensor, (const Tensor&, const Tensor&, const Tensor&), (arg("cond"), arg("a"), arg("b")),         \
    "a where cond, else b")                                                                                  \
  X(where, Tensor, (const Tensor&, const Tensor&, double), (arg("cond"), arg("a"), arg("b")),                \
    "a where cond, else the number b")

#define GNDET_TENSOR_UNARY_OPS(X)                                                                         \
  X(neg, Tensor, (const Tensor&), (arg("x")), "-x")                                                       \
  X(exp, Tensor, (const Tensor&), (arg("x")), "e ** x")                                                   \
  X(log, Tensor, (const Tensor&), (arg("x")), "natural logarithm")                                        \
  X(sqrt, Tensor, (const Tensor&), (arg("x")), "square root")                                             \
  X(rsqrt, Tensor, (const Tensor&), (arg("x")), "1 / sqrt(x)")                                            \
  X(abs, Tensor, (const Tensor&), (arg("x")), "|x|; gradient sign(x), 0 at 0")                            \
  X(relu, Tensor, (const Tensor&), (arg("x")), "max(x, 0); gradient 0 at 0")                              \
  X(add_relu, Tensor, (const Tensor&, const Tensor&), (arg("a"), arg("b")), "relu(a + b) in one pass, broadcast") \
  X(sigmoid, Tensor, (const Tensor&), (arg("x")), "1 / (1 + e ** -x)")                                    \
  X(tanh, Tensor, (const Tensor&), (arg("x")), "hyperbolic tangent")                                      \
  X(clamp, Tensor, (const Tensor&, double, double), (arg("x"), arg("min"), arg("max")), "x limited to [min, max]") \
  X(clamp_min, Tensor, (const Tensor&, double), (arg("x"), arg("min")), "max(x, min)")                    \
  X(clamp_max, Tensor, (const Tensor&, double), (arg("x"), arg("max")), "min(x, max)")                    \
  X(sign, Tensor, (const Tensor&), (arg("x")), "-1, 0 or 1")                                              \
  X(floor, Tensor, (const Tensor&), (arg("x")), "rounded down")                                           \
  X(ceil, Tensor, (const Tensor&), (arg("x")), "rounded up")                                              \
  X(logical_not, Tensor, (const Tensor&), (arg("x")), "not x (bool tensors)")

#define GNDET_TENSOR_SHAPE_OPS(X)                                                                             \
  X(cat, Tensor, (const Tensors&, int64_t), (arg("tensors"), arg("dim") = 0), "concatenation along dim")      \
  X(stack, Tensor, (const Tensors&, int64_t), (arg("tensors"), arg("dim") = 0), "stacked along a new dim")    \
  X(split, Tensors, (const Tensor&, int64_t, int64_t), (arg("x"), arg("size"), arg("dim") = 0),                \
    "pieces of `size` along dim (the last may be smaller)")                                                   \
  X(split, Tensors, (const Tensor&, const std::vector<int64_t>&, int64_t), (arg("x"), arg("sizes"), arg("dim") = 0), \
    "pieces of the given sizes along dim")                                                                    \
  X(index_select, Tensor, (const Tensor&, int64_t, const Tensor&), (arg("x"), arg("dim"), arg("index")),       \
    "the entries of x at the int64 `index` along dim")                                                       \
  X(index_add, Tensor, (const Tensor&, int64_t, const Tensor&, const Tensor&),                                \
    (arg("x"), arg("dim"), arg("index"), arg("source")), "x with source added at `index` along dim")         \
  X(gather, Tensor, (const Tensor&, int64_t, const Tensor&), (arg("x"), arg("dim"), arg("index")),             \
    "out[i][j] = x[index[i][j]][j] (dim 0), as torch.gather")                                                \
  X(scatter_add, Tensor, (const Tensor&, int64_t, const Tensor&, const Tensor&),                              \
    (arg("x"), arg("dim"), arg("index"), arg("source")), "the inverse of gather, summing collisions")        \
  X(masked_fill, Tensor, (const Tensor&, const Tensor&, double), (arg("x"), arg("mask"), arg("value")),        \
    "x with `value` where the bool mask is true")                                                             \
  X(nonzero, Tensor, (const Tensor&), (arg("x")), "(K, ndim) int64 coordinates of the nonzero entries")

#define GNDET_TENSOR_REDUCE_OPS(X)                                                                           \
  X(sum, Tensor, (const Tensor&), (arg("x")), "sum of all elements (0-d)")                                   \
  X(sum, Tensor, (const Tensor&, const std::vector<int64_t>&, bool), (arg("x"), arg("dim"), arg("keepdim") = false), \
    "sum over the dims")                                                                                     \
  X(mean, Tensor, (const Tensor&), (arg("x")), "mean of all elements (0-d)")                                 \
  X(mean, Tensor, (const Tensor&, const std::vector<int64_t>&, bool), (arg("x"), arg("dim"), arg("keepdim") = false), \
    "mean over the dims")                                                                                    \
  X(var, Tensor, (const Tensor&), (arg("x")), "unbiased variance of all elements")                           \
  X(var, Tensor, (const Tensor&, const std::vector<int64_t>&, bool, bool),                                   \
    (arg("x"), arg("dim"), arg("unbiased") = true, arg("keepdim") = false), "variance over the dims")         \
  X(max, Tensor, (const Tensor&), (arg("x")), "the largest element (0-d)")                                    \
  X(max, ValuesIndices, (const Tensor&, int64_t, bool), (arg("x"), arg("dim"), arg("keepdim") = false),       \
    "(values, indices) of the largest along dim")                                                            \
  X(min, Tensor, (const Tensor&), (arg("x")), "the smallest element (0-d)")                                   \
  X(min, ValuesIndices, (const Tensor&, int64_t, bool), (arg("x"), arg("dim"), arg("keepdim") = false),       \
    "(values, indices) of the smallest along dim")                                                           \
  X(argmax, Tensor, (const Tensor&, int64_t, bool), (arg("x"), arg("dim"), arg("keepdim") = false), "index of the largest") \
  X(argmin, Tensor, (const Tensor&, int64_t, bool), (arg("x"), arg("dim"), arg("keepdim") = false), "index of the smallest") \
  X(sort, ValuesIndices, (const Tensor&, int64_t, bool), (arg("x"), arg("dim") = -1, arg("descending") = false), \
    "(values, indices), stable")                                                                              \
  X(topk, ValuesIndices, (const Tensor&, int64_t, int64_t, bool),                                             \
    (arg("x"), arg("k"), arg("dim") = -1, arg("largest") = true), "(values, indices) of the k largest (or smallest)") \
  X(argsort, Tensor, (const Tensor&, int64_t, bool), (arg("x"), arg("dim") = -1, arg("descending") = false),  \
    "the indices that sort x, stable")                                                                        \
  X(softmax, Tensor, (const Tensor&, int64_t), (arg("x"), arg("dim") = -1), "softmax along dim")              \
  X(log_softmax, Tensor, (const Tensor&, int64_t), (arg("x"), arg("dim") = -1), "log of the softmax along dim")

#define GNDET_NN_OPS(X)                                                                                        \
  X(matmul, Tensor, (const Tensor&, const Tensor&), (arg("a"), arg("b")), "matrix product (batched, broadcast)") \
  X(bmm, Tensor, (const Tensor&, const Tensor&), (arg("a"), arg("b")), "(B, n, k) x (B, k, m) -> (B, n, m)")   \
  X(linear, Tensor, (const Tensor&, const Tensor&, const Tensor&), (arg("x"), arg("weight"), opt("bias")),     \
    "x @ weight.T + bias")                                                                                     \
  X(conv2d, Tensor, (const Tensor&, const Tensor&, const Tensor&, Pair, Pair, Pair, int64_t),                  \
    (arg("x"), arg("weight"), opt("bias"), arg("stride") = 1, arg("padding") = 0,              \
     arg("dilation") = 1, arg("groups") = 1),                                                          \
    "2-D convolution, NCHW; weight (out, in / groups, kh, kw)")                                                \
  X(conv_transpose2d, Tensor, (const Tensor&, const Tensor&, const Tensor&, Pair, Pair, Pair, Pair, int64_t),  \
    (arg("x"), arg("weight"), opt("bias"), arg("stride") = 1, arg("padding") = 0,              \
     arg("output_padding") = 0, arg("dilation") = 1, arg("groups") = 1),                      \
    "transposed 2-D convolution; weight (in, out / groups, kh, kw)")                                          \
  X(weight_standardization, Tensor, (const Tensor&, double), (arg("weight"), arg("eps") = 1e-5),               \
    "each output filter standardised to mean 0, std 1 (Qiao et al.; mmcv's ConvWS2d)")                        \
  X(group_norm, Tensor, (const Tensor&, int64_t, const Tensor&, const Tensor&, double),                        \
    (arg("x"), arg("num_groups"), opt("weight"), opt("bias"), arg("eps") = 1e-5),                               \
    "GroupNorm (Wu & He): per sample, per group of channels, normalised; then weight and bias per channel")  \
  X(group_norm_relu, Tensor, (const Tensor&, int64_t, const Tensor&, const Tensor&, double),                   \
    (arg("x"), arg("num_groups"), opt("weight"), opt("bias"), arg("eps") = 1e-5),                               \
    "relu(group_norm(...)) in one op: on the CPU the ReLU is applied as GroupNorm writes its output")        \
  X(frozen_batch_norm, Tensor, (const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, double), \
    (arg("x"), arg("weight"), arg("bias"), arg("running_mean"), arg("running_var"), arg("eps") = 1e-5),        \
    "batch norm with fixed statistics (Detectron's frozen BN)")                                               \
  X(max_pool2d, Tensor, (const Tensor&, Pair, Pair, Pair, bool),                                              \
    (arg("x"), arg("kernel"), arg("stride"), arg("padding") = 0, arg("ceil_mode") = false), "2-D max pooling") \
  X(upsample_nearest, Tensor, (const Tensor&, int64_t, int64_t), (arg("x"), arg("out_h"), arg("out_w")),       \
    "nearest-neighbour resize to (out_h, out_w)")                                                             \
  X(upsample_nearest, Tensor, (const Tensor&, int64_t), (arg("x"), arg("scale")), "nearest-neighbour, integer factor") \
  X(interpolate_bilinear, Tensor, (const Tensor&, int64_t, int64_t, bool),                                      \
    (arg("x"), arg("out_h"), arg("out_w"), arg("align_corners") = false), "bilinear resize")                  \
  X(nms, Tensor, (const Tensor&, const Tensor&, double), (arg("boxes"), arg("scores"), arg("iou_threshold")),   \
    "indices of the boxes kept by non-maximum suppression, by decreasing score")                              \
  X(batched_nms, Tensor, (const Tensor&, const Tensor&, const Tensor&, double),                                \
    (arg("boxes"), arg("scores"), arg("idxs"), arg("iou_threshold")), "nms within each class of idxs")       \
  X(paste_masks, Tensor, (const Tensor&, const Tensor&, int64_t, int64_t, double),                             \
    (arg("probs"), arg("boxes"), arg("height"), arg("width"), arg("threshold") = 0.5),                         \
    "(N, h, w) mask probabilities pasted into their boxes of a (height, width) image, thresholded (uint8)")

// Rows whose C++ function is an adapter (ops_py.cpp, namespace adapt): struct or enum parameters.
#define GNDET_ADAPTED_OPS(X)                                                                                    \
  X(conv_ws2d, Tensor, (const Tensor&, const Tensor&, const Tensor&, Pair, Pair, Pair, int64_t, double),       \
    (arg("x"), arg("weight"), opt("bias"), arg("stride") = 1, arg("padding") = 0,              \
     arg("dilation") = 1, arg("groups") = 1, arg("eps") = 1e-5),                                       \
    "conv2d with a weight-standardised weight (mmcv's ConvWS2d)")                                             \
  X(roi_align, Tensor, (const Tensor&, const Tensor&, int64_t, int64_t, double, int64_t, bool),                \
    (arg("x"), arg("rois"), arg("out_h") = 7, arg("out_w") = 7, arg("spatial_scale") = 1.0,                      \
     arg("sampling_ratio") = 0, arg("aligned") = true),                                                         \
    "RoIAlign of (K, 5) rois (batch index, x1, y1, x2, y2) into (K, C, out_h, out_w), as mmcv's")            \
  X(box_iou, Tensor, (const Tensor&, const Tensor&, const std::string&), (arg("a"), arg("b"), arg("mode") = "iou"), \
    "(N, M) overlaps of x1y1x2y2 boxes: 'iou' or 'iof' (over the first box's area)")                          \
  X(cross_entropy, Tensor, (const Tensor&, const Tensor&, const Tensor&, int64_t, const std::string&),          \
    (arg("logits"), arg("target"), opt("class_weight"), arg("ignore_index") = -100, arg("reduction") = "mean"), \
    "softmax cross-entropy of (N, C) logits and int64 targets")                                              \
  X(binary_cross_entropy_with_logits, Tensor, (const Tensor&, const Tensor&, const Tensor&, const std::string&), \
    (arg("logits"), arg("target"), opt("weight"), arg("reduction") = "mean"), "sigmoid cross-entropy")       \
  X(l1_loss, Tensor, (const Tensor&, const Tensor&, const std::string&),                                       \
    (arg("pred"), arg("target"), arg("reduction") = "mean"), "|pred - target|")                              \
  X(smooth_l1_loss, Tensor, (const Tensor&, const Tensor&, double, const std::string&),                        \
    (arg("pred"), arg("target"), arg("beta") = 1.0, arg("reduction") = "mean"), "Huber-like loss with knee beta")
