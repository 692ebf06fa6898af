#pragma once

#include "engine/config.h"
#include "engine/method.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace den::engine {

/// Hyperparameters of the baselines that DEN's own config does not have. Every baseline also
/// uses EngineConfig's hidden sizes, max_iter (one phase of at most max_iter iterations per task),
/// batch size, Adam lr and decay, l2, loss, early stopping, seed and device, so that a comparison
/// differs in the method alone.
struct BaselineOptions {
  double l2_transfer = 0.5;      ///< `l2`: lambda of lambda * ||W - W^{t-1}||^2 (DEN's drift default)
  double ewc_lambda = 1000.0;    ///< `ewc`: lambda of (lambda / 2) * sum F (W - W*)^2
  int64_t fisher_samples = 1000; ///< `ewc`: training samples the diagonal Fisher is estimated on
  /// Samples kept from earlier tasks by the methods that keep samples (icarl, der++; DEN and the
  /// per-task-head baselines spend it on task-agnostic calibration, engine/evaluation/run.h). 0: none.
  int64_t memory = 0;
  double temperature = 2.0;       ///< `lwf`: distillation temperature T (Li and Hoiem 2016)
  double lwf_lambda = 1.0;        ///< `lwf`: weight of the distillation loss (lambda_o)
  double derpp_alpha = 0.1;       ///< `der++`: weight of the logit replay loss
  double derpp_beta = 0.5;        ///< `der++`: weight of the label replay loss
  int64_t ranpac_dim = 2048;      ///< `ranpac`: width M of the random projection

  /// Throws std::invalid_argument naming the first bad setting.
  void validate() const;
};

/// The methods of the DEN paper's comparison, in the order of its tables (den, stl, mtl, finetune,
/// l2, ewc, progressive), then the class-incremental ones (lwf, icarl, der++, ncm, ranpac).
const std::vector<std::string>& method_names();
/// Whether method `name` learns from a memory of old samples (icarl, der++): it needs memory > 0.
bool needs_memory(const std::string& name);
/// method_names() as one line for messages: "den, stl, mtl, ...".
std::string method_names_text();

/// A method by name (see method_names()): "den" is the Engine, the others are the baselines.
/// Throws std::invalid_argument for an unknown name (listing the known ones) or bad settings.
std::unique_ptr<Method> make_method(const std::string& name, const EngineConfig& config,
                                    const BaselineOptions& options, int64_t input_dim);

/// Parameters of one network per task (STL) for tasks with these class counts: what a method's
/// size is compared with. `layers` and `input_shape` as in EngineConfig.
int64_t stl_params(int64_t input_dim, const Layers& layers, const std::vector<int64_t>& classes,
                   const std::vector<int64_t>& input_shape = {});
/// Parameters of one shared network with one head per task (MTL, fine-tuning, L2, EWC).
int64_t shared_params(int64_t input_dim, const Layers& layers, const std::vector<int64_t>& classes,
                      const std::vector<int64_t>& input_shape = {});

/// EWC (Kirkpatrick et al. 2017), the true Fisher: one label per row of `x` drawn from the model's
/// predictive distribution for task `task_id` (softmax scores, or for the sigmoid loss the sigmoid
/// scores normalized to sum to 1), with the CPU `generator`. int64 `[N]` on x's device.
at::Tensor sample_predicted_labels(const Network& network, int64_t task_id, const at::Tensor& x, LossKind loss,
                                   at::Generator& generator);

/// EWC's diagonal Fisher of the hidden layers of `network` for task `task_id`:
///   F_l = (1/N) sum_n (d loss_n / d W_l)^2,
/// loss_n being sample n's data loss (the one training minimizes; for softmax -log p(labels_n | x_n))
/// at the given labels (sample_predicted_labels for the true Fisher). One tensor per hidden layer,
/// in the augmented layout of the layer (NOTE: [augmented rows]). Exact and without a per-sample
/// loop: see NOTE: [Fisher from outer products] in engine/ewc.cpp.
std::vector<at::Tensor> diagonal_fisher(const Network& network, int64_t task_id, const at::Tensor& x,
                                        const at::Tensor& labels, LossKind loss);

}  // namespace den::engine
