// The checkpoint's Config message is generated from the hyperparameter table
// (serialization/internal/config_proto.h): every entry must have a proto field of its name and type.

#include "serialization/internal/config_proto.h"

#include "engine/engine.h"
#include "serialization/checkpoint.h"
#include "serialization/den.pb.h"
#include "tests/engine/hyperparameter_values.h"

#include <gtest/gtest.h>

#include <filesystem>

#include <unistd.h>

namespace den::io {
namespace {

TEST(ConfigProto, EveryCheckpointedHyperparameterHasAProtoFieldOfItsType) {
  const std::vector<std::string> problems = internal::config_field_problems(*pb::Config::descriptor());
  for (const std::string& p : problems) ADD_FAILURE() << p;
}

// The check can fail: a message without the table's fields (here den.proto's Unit) is refused,
// entry by entry, naming the entry and the message.
TEST(ConfigProto, AMessageWithoutTheFieldsIsRefusedByName) {
  const std::vector<std::string> problems = internal::config_field_problems(*pb::Unit::descriptor());
  int checkpointed = 0;
  engine::visit_hyperparameters([&](const auto& h) { checkpointed += h.checkpointed ? 1 : 0; });
  ASSERT_EQ(static_cast<int>(problems.size()), checkpointed);
  EXPECT_NE(problems[0].find("'layers': no field of that name in message den.io.pb.Unit"), std::string::npos)
      << problems[0];
  // A field of the entry's name and type passes: RunInfo.seed is a uint64, as EngineConfig::seed.
  const std::vector<std::string> run = internal::config_field_problems(*pb::RunInfo::descriptor());
  for (const std::string& p : run) EXPECT_EQ(p.find("'seed'"), std::string::npos) << p;
  // One of the wrong type is refused: RunInfo.num_tasks is an int64, EngineConfig::input_shape a list.
  bool found = false;
  for (const std::string& p : run) found |= p.find("'input_shape'") != std::string::npos;
  EXPECT_TRUE(found);
}

// Every checkpointed field, set to a value other than its default, survives save and load;
// fields the checkpoint does not store come back as their defaults.
TEST(ConfigProto, EveryHyperparameterRoundTripsThroughACheckpoint) {
  engine::EngineConfig config = testing::non_default_config();
  config.device = "cpu";  // an Engine needs a usable device; the device is not stored anyway
  const engine::Engine engine(config, testing::kNonDefaultInputDim);
  const auto path = std::filesystem::temp_directory_path() / ("den_config_proto_" + std::to_string(::getpid()) + ".den");
  save_checkpoint(engine, path.string());
  const engine::EngineConfig loaded = load_checkpoint(path.string()).engine.config();
  std::filesystem::remove(path);
  const engine::EngineConfig defaults;
  engine::visit_hyperparameters([&](const auto& h) {
    const auto& expected = h.checkpointed ? h.value(config) : h.value(defaults);
    EXPECT_TRUE(h.value(loaded) == expected) << h.name << ": " << engine::to_text(h.value(loaded)) << ", expected "
                                             << engine::to_text(expected);
  });
}

}  // namespace
}  // namespace den::io
