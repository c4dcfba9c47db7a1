// The registry's option tables: defaults valid, every bad value rejected naming its option.
#include "nn/options.h"

#include <gtest/gtest.h>

#include "nn/registry.h"
#include "septa/error.h"

namespace septa::nn {
namespace {

std::string option_error(const MethodInfo& info, const OptionValues& given) {
  try {
    Options options(info, given);
  } catch (const OptionError& e) {
    return e.what();
  }
  return "";
}

TEST(RegistryTest, EveryMethodIsRegisteredOnceWithValidDefaults) {
  std::vector<std::string> names;
  for (const auto& info : methods()) {
    names.push_back(info.name);
    EXPECT_NO_THROW(Options(info, {})) << info.name;
    EXPECT_FALSE(info.options.empty());
    EXPECT_EQ(&find_method(info.name).info, &registry()[names.size() - 1].info);
  }
  EXPECT_EQ(names, (std::vector<std::string>{"ff", "uff-ae", "uff-dae", "uff-conv", "backprop",
                                              "vba", "scala", "usnet", "vit-separate"}));
  EXPECT_THROW(method("gan"), OptionError);
}

TEST(RegistryTest, EveryOptionRejectsMalformedAndOutOfRangeValuesNamingIt) {
  for (const auto& info : methods()) {
    for (const auto& spec : info.options) {
      const std::string flag = "--" + spec.name;
      for (const std::string bad : {"abc", "", "1x", "-1e30", "1e30"}) {
        const std::string message = option_error(info, {{spec.name, bad}});
        EXPECT_EQ(message.rfind(flag + " of method " + info.name, 0), 0u)
            << info.name << " " << flag << "='" << bad << "': " << message;
        EXPECT_NE(message.find(spec.range()), std::string::npos) << message;
      }
      // The boundary values themselves are accepted unless the interval is open there.
      if (spec.type != OptionType::kReal) continue;
      const std::string low = std::to_string(spec.min);
      EXPECT_EQ(option_error(info, {{spec.name, low}}).empty(), !spec.min_open) << flag;
    }
  }
}

TEST(RegistryTest, UnknownOptionsAndOtherMethodsOptionsAreRejected) {
  EXPECT_NE(option_error(method("uff-ae"), {{"theta", "2"}}).find("--theta is not an option of method uff-ae"),
            std::string::npos);
  EXPECT_NE(option_error(method("uff-ae"), {{"noise", "0.1"}}).find("--noise"), std::string::npos);
  EXPECT_EQ(option_error(method("uff-dae"), {{"noise", "0.1"}}), "");
  EXPECT_NE(option_error(method("uff-dae"), {{"noise", "1"}}).find("[0, 1)"), std::string::npos);
  EXPECT_NE(option_error(method("ff"), {{"hidden", "10,,3"}}).find("--hidden"), std::string::npos);
  EXPECT_NE(option_error(method("ff"), {{"hidden", "10,"}}).find("--hidden"), std::string::npos);
  EXPECT_NE(option_error(method("ff"), {{"lr", "0"}}).find("(0, 10]"), std::string::npos);
}

TEST(RegistryTest, CanonicalTextRoundTrips) {
  const Options options(method("uff-dae"), {{"widths", "7,3"}, {"noise", "0.25"}, {"seed", "9"}});
  EXPECT_EQ(options.sizes("widths"), (std::vector<int64_t>{7, 3}));
  EXPECT_EQ(options.real("noise"), 0.25);
  EXPECT_EQ(options.seed(), 9u);
  const Options again(method("uff-dae"), Options::parse_canonical(options.canonical()));
  EXPECT_EQ(again.canonical(), options.canonical());
  EXPECT_NE(options.canonical().find("widths=7,3"), std::string::npos);
}

}  // namespace
}  // namespace septa::nn
