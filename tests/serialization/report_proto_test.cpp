// The report tables (NOTE: [report fields] in engine/task_report.h) against den.proto: every
// checkpointed field has its proto field, and a report round-trips through its record.

#include "serialization/internal/report_proto.h"

#include <gtest/gtest.h>

#include <string>
#include <type_traits>

namespace den::io {
namespace {

TEST(ReportProto, EveryCheckpointedFieldHasAProtoFieldOfItsType) {
  for (const std::string& p : internal::report_field_problems<engine::TaskReport>(*pb::TaskRecord::descriptor())) {
    ADD_FAILURE() << p;
  }
  for (const std::string& p : internal::report_field_problems<engine::PhaseResult>(*pb::Phase::descriptor())) {
    ADD_FAILURE() << p;
  }
  for (const std::string& p : internal::report_field_problems<engine::SplitPair>(*pb::SplitPair::descriptor())) {
    ADD_FAILURE() << p;
  }
}

// The check can fail: a message without the fields is refused, field by field, by name.
TEST(ReportProto, AMessageWithoutTheFieldsIsRefusedByName) {
  const std::vector<std::string> problems = internal::report_field_problems<engine::PhaseResult>(*pb::Head::descriptor());
  int checkpointed = 0;
  engine::visit_report_fields(static_cast<const engine::PhaseResult*>(nullptr),
                              [&](const auto& f) { checkpointed += f.checkpointed ? 1 : 0; });
  ASSERT_EQ(static_cast<int>(problems.size()), checkpointed);
  EXPECT_NE(problems[0].find("'name': no field of that name in message den.io.pb.Head"), std::string::npos)
      << problems[0];
  // Only what a message lacks is refused: Unit.layer is an int64, as the pair's layer; Unit has no drift.
  const std::vector<std::string> split = internal::report_field_problems<engine::SplitPair>(*pb::Unit::descriptor());
  for (const std::string& p : split) EXPECT_EQ(p.find("'layer'"), std::string::npos) << p;
  EXPECT_FALSE(split.empty());
}

TEST(ReportProto, AReportRoundTripsAndDiagnosticsStayOut) {
  engine::TaskReport r;
  r.task = 3;
  r.name = "split-3";
  r.num_classes = 2;
  engine::PhaseResult phase;
  phase.name = "refit";
  phase.iterations = 40;
  phase.train_loss = 0.25;
  phase.val_loss = 0.5;
  phase.seconds = 1.5;
  phase.optimizer_seconds = 0.125;
  phase.early_stopped = true;
  phase.best_iteration = 30;
  phase.frozen_first_rows = 7;  // a diagnostic: not kept
  r.phases = {phase, phase};
  r.selected_units = {3, 2};
  r.subnetwork.inputs = {0, 4};
  r.subnetwork.hidden = {{1, 2, 5}, {0}};
  r.added = {1, 1};
  r.pruned = {0, 2};
  r.split = {1, 0};
  r.split_pairs = {engine::SplitPair{0, 4, 9, 0.75}};
  r.hidden_units = {9, 6};
  r.expanded = true;
  r.expansion_undone = true;
  r.val_loss_after_expansion = 0.375;
  r.val_loss_after_selective = 0.625;
  r.val_loss = 0.3;
  r.params = 100;
  r.nonzero_params = 80;
  r.seconds = 2.5;
  pb::TaskRecord record;
  internal::report_to_pb(r, record);
  const engine::TaskReport back = internal::report_from_pb(record);
  EXPECT_EQ(back.phases.size(), 2u);
  EXPECT_EQ(back.phases[1].frozen_first_rows, 0);
  r.phases[0].frozen_first_rows = r.phases[1].frozen_first_rows = 0;
  engine::visit_report_fields(static_cast<const engine::TaskReport*>(nullptr), [&](const auto& f) {
    using T = typename std::decay_t<decltype(f)>::Value;
    if constexpr (std::is_same_v<T, graph::Subnetwork>) {
      EXPECT_EQ((back.*f.member).inputs, (r.*f.member).inputs);
      EXPECT_EQ((back.*f.member).hidden, (r.*f.member).hidden);
    } else if constexpr (std::is_same_v<T, std::vector<engine::PhaseResult>>) {
      for (size_t i = 0; i < r.phases.size(); ++i) {
        engine::visit_report_fields(static_cast<const engine::PhaseResult*>(nullptr), [&](const auto& g) {
          EXPECT_TRUE(back.phases[i].*g.member == r.phases[i].*g.member) << g.name;
        });
      }
    } else if constexpr (std::is_same_v<T, std::vector<engine::SplitPair>>) {
      ASSERT_EQ(back.split_pairs.size(), 1u);
      EXPECT_EQ(back.split_pairs[0].copy_id, 9);
      EXPECT_EQ(back.split_pairs[0].drift, 0.75);
    } else {
      EXPECT_TRUE(back.*f.member == r.*f.member) << f.name;
    }
  });
}

}  // namespace
}  // namespace den::io
