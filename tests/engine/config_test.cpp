#include "engine/config.h"

#include <gtest/gtest.h>

#include <stdexcept>

namespace den::engine {

TEST(EngineConfig, DefaultsAreTheReleasedCodes) {
  const EngineConfig c;
  EXPECT_EQ(c.layers, (Layers{312, 128}));
  EXPECT_EQ(c.max_iter, 4300);
  EXPECT_EQ(c.batch_size, 256);
  EXPECT_DOUBLE_EQ(c.lr, 1e-3);
  EXPECT_DOUBLE_EQ(c.lr_decay, 0.95);
  EXPECT_DOUBLE_EQ(c.mu, 1e-5);
  EXPECT_DOUBLE_EQ(c.l2, 1e-4);
  EXPECT_DOUBLE_EQ(c.gamma, 1e-3);
  EXPECT_DOUBLE_EQ(c.lambda, 0.5);
  EXPECT_EQ(c.k, 10);
  EXPECT_DOUBLE_EQ(c.tau, 0.01);
  EXPECT_DOUBLE_EQ(c.sigma, 0.05);
  EXPECT_EQ(c.resolved_head_iters(), 430);
  EXPECT_EQ(c.resolved_max_splits(), 10);
  EXPECT_EQ(c.split_policy, SplitPolicy::Always);
  EXPECT_NO_THROW(c.validate());
}

TEST(EngineConfig, RejectsInvalidSettingsNamingThem) {
  auto message_of = [](const EngineConfig& c) {
    try {
      c.validate();
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(message_of(EngineConfig().set_hidden({312, 0})).find("layers"), std::string::npos);
  EXPECT_NE(message_of(EngineConfig().set_hidden({312, 0})).find("layer 2 'fc:0' has no units"), std::string::npos);
  EXPECT_NE(message_of(EngineConfig().set_hidden({})).find("layers"), std::string::npos);
  EXPECT_NE(message_of(EngineConfig().set_lr(-1)).find("lr = -1"), std::string::npos);
  EXPECT_NE(message_of(EngineConfig().set_batch_size(0)).find("batch_size"), std::string::npos);
  EXPECT_NE(message_of(EngineConfig().set_k(-2)).find("k = -2"), std::string::npos);
  EXPECT_NE(message_of(EngineConfig().set_sigma(std::nan(""))).find("sigma"), std::string::npos);
  EXPECT_NE(message_of(EngineConfig().set_lr_decay(1.5)).find("lr_decay"), std::string::npos);
}

TEST(EngineConfig, ParsesNames) {
  EXPECT_EQ(parse_loss("sigmoid"), LossKind::Sigmoid);
  EXPECT_EQ(parse_split_policy("after-expansion"), SplitPolicy::AfterExpansion);
  EXPECT_THROW(parse_loss("hinge"), std::invalid_argument);
  EXPECT_THROW(parse_split_policy("never"), std::invalid_argument);
}

}  // namespace den::engine
