#include "data/coco_eval.h"

#include <omp.h>

#include <algorithm>
#include <cfloat>
#include <cstdio>
#include <numeric>

namespace gndet::data {
namespace {

constexpr int kNumAreas = 4;
constexpr int kNumMaxDets = 3;

// A detection after loadRes: what evaluation reads of it.
// `rle` (segm only) points into the caller's data when that already holds an RLE, else at `owned`.
struct LoadedDet {
  int64_t id = 0;  // 1..N in list order
  double score = 0;
  double area = 0;
  BoxXywh box{};
  const Rle* rle = nullptr;
  Rle owned;
};

struct LoadedGt {
  int64_t id = 0;
  double area = 0;
  bool crowd = false;
  BoxXywh box{};
  const Rle* rle = nullptr;
  Rle owned;
};

// Sets `rle` to the mask of `seg` at the image size, converting only when it is not an RLE yet.
template <class Loaded>
void load_mask(Loaded& l, const Segmentation& seg, const CocoImage& img) {
  if (seg.kind == Segmentation::Kind::Rle) {
    l.rle = &seg.rle;
  } else {
    l.owned = segmentation_to_rle(seg, img.height, img.width);
    l.rle = &l.owned;
  }
}

// The outcome of evaluateImg() for one (image, category) and every area range.
struct PairResult {
  std::vector<double> scores;                  // kept detections, highest score first
  std::array<int64_t, kNumAreas> valid_gts{};  // non-ignored gts per area range
  std::vector<uint8_t> matched;                // (A, T, D): matched to a gt whose id is nonzero
  std::vector<uint8_t> ignored;                // (A, T, D)
};

// A group of (image, category) inputs: indices into the loaded gts and dts, in file order.
struct PairInput {
  int64_t category = 0;  // label
  std::vector<int64_t> gts, dts;
};

std::vector<int64_t> stable_order_by_score(const std::vector<int64_t>& idx, const std::vector<LoadedDet>& dets) {
  std::vector<int64_t> order = idx;
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return dets[a].score > dets[b].score; });
  return order;
}

PairResult evaluate_pair(const PairInput& in, const std::vector<LoadedGt>& gts, const std::vector<LoadedDet>& dets,
                         const EvalParams& p, IouType iou_type) {
  std::vector<int64_t> dt = stable_order_by_score(in.dts, dets);
  if (static_cast<int64_t>(dt.size()) > p.max_dets.back()) dt.resize(static_cast<size_t>(p.max_dets.back()));
  const size_t D = dt.size(), G = in.gts.size(), T = p.iou_thresholds.size();

  PairResult r;
  r.scores.resize(D);
  for (size_t d = 0; d < D; ++d) r.scores[d] = dets[dt[d]].score;
  r.matched.assign(kNumAreas * T * D, 0);
  r.ignored.assign(kNumAreas * T * D, 0);

  // IoU (d, g) with gts in file order; empty when either side is empty, as maskUtils.iou.
  std::vector<double> ious;
  std::vector<uint8_t> crowd(G);
  for (size_t g = 0; g < G; ++g) crowd[g] = gts[in.gts[g]].crowd;
  if (D > 0 && G > 0) {
    if (iou_type == IouType::Bbox) {
      std::vector<BoxXywh> db(D), gb(G);
      for (size_t d = 0; d < D; ++d) db[d] = dets[dt[d]].box;
      for (size_t g = 0; g < G; ++g) gb[g] = gts[in.gts[g]].box;
      ious = box_iou(db, gb, crowd);
    } else {
      std::vector<const Rle*> dm(D), gm(G);
      for (size_t d = 0; d < D; ++d) dm[d] = dets[dt[d]].rle;
      for (size_t g = 0; g < G; ++g) gm[g] = gts[in.gts[g]].rle;
      ious = rle_iou(std::span<const Rle* const>(dm), std::span<const Rle* const>(gm), crowd);
    }
  }

  std::vector<uint8_t> gt_ignore(G);
  std::vector<size_t> gt_order(G);
  std::vector<uint8_t> gt_taken(T * G);
  for (int a = 0; a < kNumAreas; ++a) {
    const double lo = p.area_ranges[a][0], hi = p.area_ranges[a][1];
    for (size_t g = 0; g < G; ++g) {
      const LoadedGt& gt = gts[in.gts[g]];
      gt_ignore[g] = gt.crowd || gt.area < lo || gt.area > hi;
      if (!gt_ignore[g]) ++r.valid_gts[a];
    }
    std::iota(gt_order.begin(), gt_order.end(), size_t{0});
    std::stable_sort(gt_order.begin(), gt_order.end(), [&](size_t x, size_t y) { return gt_ignore[x] < gt_ignore[y]; });

    uint8_t* matched = r.matched.data() + a * T * D;
    uint8_t* ignored = r.ignored.data() + a * T * D;
    std::fill(gt_taken.begin(), gt_taken.end(), 0);
    if (!ious.empty()) {
      for (size_t t = 0; t < T; ++t) {
        for (size_t d = 0; d < D; ++d) {
          double best = std::min(p.iou_thresholds[t], 1 - 1e-10);
          int64_t m = -1;  // position in gt_order of the best match so far
          for (size_t gi = 0; gi < G; ++gi) {
            const size_t g = gt_order[gi];
            if (gt_taken[t * G + gi] && !crowd[g]) continue;
            // Once matched to a regular gt, ignored gts (sorted last) cannot take the detection.
            if (m > -1 && !gt_ignore[gt_order[m]] && gt_ignore[g]) break;
            const double iou = ious[d * G + g];
            if (iou < best) continue;
            best = iou;
            m = static_cast<int64_t>(gi);
          }
          if (m == -1) continue;
          const size_t g = gt_order[static_cast<size_t>(m)];
          ignored[t * D + d] = gt_ignore[g];
          // pycocotools stores the gt's id and later tests it for truth: a gt with id 0 counts as
          // no match.
          matched[t * D + d] = gts[in.gts[g]].id != 0;
          gt_taken[t * G + static_cast<size_t>(m)] = 1;
        }
      }
    }
    for (size_t d = 0; d < D; ++d) {
      const double area = dets[dt[d]].area;
      if (area < lo || area > hi) {
        for (size_t t = 0; t < T; ++t) {
          if (!matched[t * D + d]) ignored[t * D + d] = 1;
        }
      }
    }
  }
  return r;
}

// One (category, area, maxDets) cell of accumulate(): writes precision[t, :, k, a, m] and
// recall[t, k, a, m] unless no gt is valid there.
void accumulate_cell(const std::vector<const PairResult*>& pairs, int a, int64_t max_det, const EvalParams& p,
                     double* precision_tr, size_t precision_stride_t, size_t precision_stride_r, double* recall_t,
                     size_t recall_stride_t) {
  const size_t T = p.iou_thresholds.size(), R = p.recall_thresholds.size();
  int64_t npig = 0;
  size_t total = 0;
  for (const PairResult* pr : pairs) {
    npig += pr->valid_gts[a];
    total += std::min(pr->scores.size(), static_cast<size_t>(max_det));
  }
  if (npig == 0) return;

  std::vector<double> scores(total);
  std::vector<const uint8_t*> matched_rows, ignored_rows;  // per concatenated position: the pair's row base
  std::vector<size_t> col(total), stride(total);
  matched_rows.resize(total);
  ignored_rows.resize(total);
  size_t pos = 0;
  for (const PairResult* pr : pairs) {
    const size_t D = pr->scores.size(), n = std::min(D, static_cast<size_t>(max_det));
    const uint8_t* mbase = pr->matched.data() + a * T * D;
    const uint8_t* ibase = pr->ignored.data() + a * T * D;
    for (size_t d = 0; d < n; ++d, ++pos) {
      scores[pos] = pr->scores[d];
      matched_rows[pos] = mbase;
      ignored_rows[pos] = ibase;
      col[pos] = d;
      stride[pos] = D;
    }
  }
  std::vector<size_t> order(total);
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) { return scores[x] > scores[y]; });

  std::vector<double> rc(total), pr(total);
  for (size_t t = 0; t < T; ++t) {
    double tp = 0, fp = 0;
    for (size_t i = 0; i < total; ++i) {
      const size_t j = order[i];
      const size_t at = t * stride[j] + col[j];
      if (!ignored_rows[j][at]) {
        if (matched_rows[j][at]) {
          tp += 1;
        } else {
          fp += 1;
        }
      }
      rc[i] = tp / static_cast<double>(npig);
      pr[i] = tp / (fp + tp + DBL_EPSILON);  // np.spacing(1)
    }
    recall_t[t * recall_stride_t] = total ? rc[total - 1] : 0;
    for (size_t i = total; i-- > 1;) {
      if (pr[i] > pr[i - 1]) pr[i - 1] = pr[i];
    }
    double* q = precision_tr + t * precision_stride_t;
    for (size_t ri = 0; ri < R; ++ri) q[ri * precision_stride_r] = 0;
    for (size_t ri = 0; ri < R; ++ri) {
      const size_t i =
          static_cast<size_t>(std::lower_bound(rc.begin(), rc.end(), p.recall_thresholds[ri]) - rc.begin());
      if (i >= total) break;
      q[ri * precision_stride_r] = pr[i];
    }
  }
}

double mean_defined(const std::vector<double>& values) {
  double sum = 0;
  int64_t n = 0;
  for (double v : values) {
    if (v > -1) {
      sum += v;
      ++n;
    }
  }
  return n == 0 ? -1.0 : sum / static_cast<double>(n);
}

}  // namespace

const char* iou_type_name(IouType type) { return type == IouType::Bbox ? "bbox" : "segm"; }

IouType parse_iou_type(const std::string& name) {
  if (name == "bbox") return IouType::Bbox;
  if (name == "segm") return IouType::Segm;
  GNDET_FAIL("unknown IoU type '", name, "': expected bbox or segm (keypoints are not supported)");
}

std::vector<double> numpy_linspace(double start, double stop, int64_t num) {
  std::vector<double> out(static_cast<size_t>(num));
  const double step = (stop - start) / static_cast<double>(num - 1);
  for (int64_t i = 0; i < num; ++i) out[static_cast<size_t>(i)] = static_cast<double>(i) * step + start;
  if (num > 1) out.back() = stop;
  return out;
}

const EvalParams& coco_eval_params() {
  static const EvalParams params = [] {
    EvalParams p;
    // Params.setDetParams: np.linspace(.5, 0.95, int(np.round((0.95 - .5) / .05)) + 1)
    p.iou_thresholds = numpy_linspace(.5, 0.95, 10);
    p.recall_thresholds = numpy_linspace(.0, 1.00, 101);
    return p;
  }();
  return params;
}

std::string format_summary(const std::array<double, 12>& stats) {
  struct Line {
    bool ap;
    const char* iou;
    const char* area;
    int max_dets;
  };
  static const Line lines[12] = {
      {true, "0.50:0.95", "all", 100},    {true, "0.50", "all", 100},          {true, "0.75", "all", 100},
      {true, "0.50:0.95", "small", 100},  {true, "0.50:0.95", "medium", 100},  {true, "0.50:0.95", "large", 100},
      {false, "0.50:0.95", "all", 1},     {false, "0.50:0.95", "all", 10},     {false, "0.50:0.95", "all", 100},
      {false, "0.50:0.95", "small", 100}, {false, "0.50:0.95", "medium", 100}, {false, "0.50:0.95", "large", 100},
  };
  std::string out;
  char buf[160];
  for (int i = 0; i < 12; ++i) {
    const Line& l = lines[i];
    // ' {:<18} {} @[ IoU={:<9} | area={:>6s} | maxDets={:>3d} ] = {:0.3f}'
    std::snprintf(buf, sizeof buf, " %-18s %s @[ IoU=%-9s | area=%6s | maxDets=%3d ] = %0.3f\n",
                  l.ap ? "Average Precision" : "Average Recall", l.ap ? "(AP)" : "(AR)", l.iou, l.area, l.max_dets,
                  stats[static_cast<size_t>(i)]);
    out += buf;
  }
  return out;
}

namespace {

// Runs body(i) for i in [0, n) on `threads` OpenMP threads; the first exception thrown by any
// iteration is rethrown afterwards as gndet::Error (an exception must not leave an OpenMP region).
template <class Body>
void parallel_for(int64_t n, int threads, int chunk, const char* what, Body body) {
  std::string error;
#pragma omp parallel for schedule(dynamic, chunk) num_threads(threads)
  for (int64_t i = 0; i < n; ++i) {
    try {
      body(i);
    } catch (const std::exception& e) {
#pragma omp critical(gndet_coco_eval_error)
      if (error.empty()) error = e.what();
    }
  }
  if (!error.empty()) throw Error(std::string(what) + error);
}

// pycocotools' loadRes: what evaluation reads of every detection.
std::vector<LoadedDet> load_results(const CocoInstances& coco, std::span<const Detection> detections,
                                    const EvalOptions& options, int threads) {
  const bool segm = options.iou_type == IouType::Segm;
  const int64_t n = static_cast<int64_t>(detections.size());
  for (int64_t i = 0; i < n; ++i) {
    const Detection& d = detections[static_cast<size_t>(i)];
    GNDET_CHECK(coco.image_index(d.image_id) >= 0, options.results_name, ": [", i, "].image_id: image ", d.image_id,
                " is not in the ground truth '", coco.source(),
                "' (pycocotools: \"Results do not correspond to current coco set\")");
  }
  const bool drop_boxes = segm && options.mmdet_segm_area;
  // pycocotools looks at the first result only to decide whether results carry boxes.
  const bool boxes_branch = n > 0 && detections[0].bbox.has_value() && !drop_boxes;
  std::vector<LoadedDet> dets(static_cast<size_t>(n));
  parallel_for(n, threads, 256, "", [&](int64_t i) {
    const Detection& d = detections[static_cast<size_t>(i)];
    LoadedDet& ld = dets[static_cast<size_t>(i)];
    ld.id = i + 1;
    ld.score = d.score;
    const CocoImage& img = coco.images()[static_cast<size_t>(coco.image_index(d.image_id))];
    if (boxes_branch) {
      GNDET_CHECK(d.bbox.has_value(), options.results_name, ": [", i,
                  "].bbox: missing, but the first result has a bbox (pycocotools then reads boxes from every result)");
      ld.box = *d.bbox;
      ld.area = ld.box[2] * ld.box[3];
      if (segm) {
        if (d.segmentation) {
          load_mask(ld, *d.segmentation, img);
        } else {  // pycocotools gives box-only results their box as segmentation
          ld.owned = rle_from_box(ld.box, img.height, img.width);
          ld.rle = &ld.owned;
        }
      }
    } else {
      GNDET_CHECK(d.segmentation.has_value(), options.results_name, ": [", i, "].segmentation: missing (",
                  drop_boxes ? "segm evaluation needs a mask in every result"
                             : "the first result has no bbox, so every result needs a mask",
                  ")");
      load_mask(ld, *d.segmentation, img);
      ld.area = rle_area(*ld.rle);
      ld.box = (d.bbox && !drop_boxes) ? *d.bbox : rle_to_box(*ld.rle);
    }
  });
  return dets;
}

std::vector<LoadedGt> load_ground_truth(const CocoInstances& coco, IouType iou_type, int threads) {
  std::vector<LoadedGt> gts(coco.annotations().size());
  parallel_for(static_cast<int64_t>(gts.size()), threads, 256, "", [&](int64_t i) {
    const CocoAnnotation& a = coco.annotations()[static_cast<size_t>(i)];
    LoadedGt& g = gts[static_cast<size_t>(i)];
    g.id = a.id;
    g.area = a.area;
    g.crowd = a.iscrowd;  // pycocotools sets gt['ignore'] = iscrowd, overriding any "ignore" field
    g.box = a.bbox;
    if (iou_type == IouType::Segm && coco.label_of(a.category_id) >= 0) {
      GNDET_CHECK(a.segmentation.has_value(), coco.source(), ": annotations[", i,
                  "].segmentation: missing, but segm evaluation needs every ground-truth mask");
      load_mask(g, *a.segmentation, coco.images()[static_cast<size_t>(coco.image_index(a.image_id))]);
    }
  });
  return gts;
}

// The (category, image) groups that have a gt or a detection, ordered by category, then image id
// (pycocotools' evalImgs order), each listing its gts and detections in file order.
std::vector<PairInput> group_by_image_and_category(const CocoInstances& coco, std::span<const Detection> detections) {
  const int64_t N = static_cast<int64_t>(coco.images().size());
  std::vector<int64_t> by_id(static_cast<size_t>(N)), image_rank(static_cast<size_t>(N));
  std::iota(by_id.begin(), by_id.end(), int64_t{0});
  std::sort(by_id.begin(), by_id.end(), [&](int64_t x, int64_t y) { return coco.images()[x].id < coco.images()[y].id; });
  for (int64_t r = 0; r < N; ++r) image_rank[static_cast<size_t>(by_id[static_cast<size_t>(r)])] = r;

  struct Entry {
    int64_t key;    // category * N + image rank
    int64_t index;  // >= 0: gt annotation index; < 0: -(detection index) - 1
  };
  std::vector<Entry> entries;
  entries.reserve(coco.annotations().size() + detections.size());
  for (size_t i = 0; i < coco.annotations().size(); ++i) {
    const CocoAnnotation& a = coco.annotations()[i];
    const int64_t k = coco.label_of(a.category_id);
    if (k < 0) continue;  // pycocotools loads only annotations of listed categories
    entries.push_back({k * N + image_rank[static_cast<size_t>(coco.image_index(a.image_id))], static_cast<int64_t>(i)});
  }
  for (size_t i = 0; i < detections.size(); ++i) {
    const int64_t k = coco.label_of(detections[i].category_id);
    if (k < 0) continue;
    entries.push_back({k * N + image_rank[static_cast<size_t>(coco.image_index(detections[i].image_id))],
                       -static_cast<int64_t>(i) - 1});
  }
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& x, const Entry& y) { return x.key < y.key; });
  std::vector<PairInput> pairs;
  for (size_t i = 0; i < entries.size();) {
    PairInput in;
    in.category = entries[i].key / N;
    for (const int64_t key = entries[i].key; i < entries.size() && entries[i].key == key; ++i) {
      if (entries[i].index >= 0) {
        in.gts.push_back(entries[i].index);
      } else {
        in.dts.push_back(-entries[i].index - 1);
      }
    }
    pairs.push_back(std::move(in));
  }
  return pairs;
}

// accumulate(): fills out.precision (T, R, K, A, M) and out.recall (T, K, A, M).
void accumulate(const std::vector<PairInput>& pairs, const std::vector<PairResult>& results, const EvalParams& p,
                int threads, EvalResult& out) {
  const size_t T = p.iou_thresholds.size(), R = p.recall_thresholds.size(), K = static_cast<size_t>(out.num_categories);
  out.precision.assign(T * R * K * kNumAreas * kNumMaxDets, -1.0);
  out.recall.assign(T * K * kNumAreas * kNumMaxDets, -1.0);
  std::vector<std::vector<const PairResult*>> by_category(K);
  for (size_t i = 0; i < pairs.size(); ++i) by_category[static_cast<size_t>(pairs[i].category)].push_back(&results[i]);
  const size_t cell_stride = K * kNumAreas * kNumMaxDets;  // stride of r in precision and of t in recall
  parallel_for(static_cast<int64_t>(K) * kNumAreas * kNumMaxDets, threads, 1, "COCO evaluation: ", [&](int64_t c) {
    const size_t k = static_cast<size_t>(c) / (kNumAreas * kNumMaxDets);
    const int a = static_cast<int>(c / kNumMaxDets % kNumAreas), m = static_cast<int>(c % kNumMaxDets);
    if (by_category[k].empty()) return;
    const size_t offset = (k * kNumAreas + static_cast<size_t>(a)) * kNumMaxDets + static_cast<size_t>(m);
    accumulate_cell(by_category[k], a, p.max_dets[static_cast<size_t>(m)], p, out.precision.data() + offset,
                    R * cell_stride, cell_stride, out.recall.data() + offset, cell_stride);
  });
}

// summarize(): the 12 numbers.
std::array<double, 12> summarize(const EvalResult& r, const EvalParams& p) {
  const size_t T = p.iou_thresholds.size(), R = p.recall_thresholds.size(), K = static_cast<size_t>(r.num_categories);
  // Mean over the entries > -1 at area range a and maxDets index m, over all thresholds or one.
  auto mean_of = [&](bool ap, int t_only, int a, int m) {
    if (t_only == -2) return -1.0;
    std::vector<double> values;
    for (size_t t = 0; t < T; ++t) {
      if (t_only >= 0 && static_cast<int>(t) != t_only) continue;
      if (ap) {
        for (size_t ri = 0; ri < R; ++ri) {
          for (size_t k = 0; k < K; ++k) {
            values.push_back(r.precision[(((t * R + ri) * K + k) * kNumAreas + a) * kNumMaxDets + m]);
          }
        }
      } else {
        for (size_t k = 0; k < K; ++k) values.push_back(r.recall[((t * K + k) * kNumAreas + a) * kNumMaxDets + m]);
      }
    }
    return mean_defined(values);
  };
  // summarize() picks thresholds by exact float comparison; no match leaves nothing to average.
  auto threshold_index = [&](double v) {
    for (size_t t = 0; t < T; ++t) {
      if (p.iou_thresholds[t] == v) return static_cast<int>(t);
    }
    return -2;
  };
  const int all = -1, t50 = threshold_index(.5), t75 = threshold_index(.75);
  return {mean_of(true, all, 0, 2),  mean_of(true, t50, 0, 2),  mean_of(true, t75, 0, 2),  mean_of(true, all, 1, 2),
          mean_of(true, all, 2, 2),  mean_of(true, all, 3, 2),  mean_of(false, all, 0, 0), mean_of(false, all, 0, 1),
          mean_of(false, all, 0, 2), mean_of(false, all, 1, 2), mean_of(false, all, 2, 2), mean_of(false, all, 3, 2)};
}

}  // namespace

EvalResult evaluate(const CocoInstances& coco, std::span<const Detection> detections, const EvalOptions& options) {
  const EvalParams& p = coco_eval_params();
  const int threads = options.num_threads > 0 ? options.num_threads : omp_get_max_threads();
  const std::vector<LoadedDet> dets = load_results(coco, detections, options, threads);
  const std::vector<LoadedGt> gts = load_ground_truth(coco, options.iou_type, threads);
  const std::vector<PairInput> pairs = group_by_image_and_category(coco, detections);
  std::vector<PairResult> results(pairs.size());
  parallel_for(static_cast<int64_t>(pairs.size()), threads, 16, "COCO evaluation: ", [&](int64_t i) {
    results[static_cast<size_t>(i)] = evaluate_pair(pairs[static_cast<size_t>(i)], gts, dets, p, options.iou_type);
  });
  EvalResult out;
  out.num_categories = coco.num_classes();
  accumulate(pairs, results, p, threads, out);
  out.stats = summarize(out, p);
  out.summary = format_summary(out.stats);
  return out;
}

}  // namespace gndet::data
