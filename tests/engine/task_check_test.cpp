#include "engine/task_check.h"
#include "synthetic.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace den::engine {
namespace {

std::string rejection(const at::Tensor& x) {
  try {
    check_input(1, 1, x.size(1), x, at::kCPU);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

TEST(CheckInput, NamesTheFirstRowWithANonFiniteValue) {
  at::Tensor x = at::randn({3000, 5});
  x[2500][1] = std::numeric_limits<float>::infinity();  // a later chunk of rows
  x[2700][0] = std::nanf("");
  EXPECT_NE(rejection(x).find("row 2500 "), std::string::npos) << rejection(x);
  x[1200][4] = -std::numeric_limits<float>::infinity();  // with +inf, the sum is NaN
  EXPECT_NE(rejection(x).find("row 1200 "), std::string::npos) << rejection(x);
}

TEST(CheckInput, AcceptsFiniteValuesWhoseSumOverflows) {
  at::Tensor x = at::zeros({4, 3});
  x.select(1, 0).fill_(3e38f);  // finite, but their float sum is +inf
  EXPECT_EQ(rejection(x), "");
}

TEST(CheckTask, RejectsANonFiniteTrainingFeatureNamingTheSample) {
  Task task = testing::synthetic_task(1);
  task.train_x[17][3] = std::nanf("");
  try {
    check_task(task, task.train_x.size(1), at::kCPU);
    FAIL() << "a NaN feature was accepted";
  } catch (const TaskDataError& e) {  // a data error (den exit 3), not a usage error
    EXPECT_NE(std::string(e.what()).find("training set: sample 17 "), std::string::npos) << e.what();
  }
}

TEST(CheckTask, DataProblemsAreTaskDataErrorsAndAnUnknownTaskIdIsNot) {
  Task task = testing::synthetic_task(1);
  task.val_y = task.val_y.clone().fill_(task.num_classes);  // labels out of range
  EXPECT_THROW(check_task(task, task.train_x.size(1), at::kCPU), TaskDataError);
  const at::Tensor x = at::zeros({2, 3});
  EXPECT_THROW(check_input(1, 1, 4, x, at::kCPU), TaskDataError);  // wrong width
  try {
    check_input(2, 1, 3, x, at::kCPU);
    FAIL() << "an unknown task id was accepted";
  } catch (const TaskDataError&) {
    FAIL() << "an unknown task id is a usage error, not a data error";
  } catch (const std::invalid_argument&) {
  }
}

}  // namespace
}  // namespace den::engine
