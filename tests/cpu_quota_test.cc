// CoresAvailable, the cgroup CPU quota parsers, and CgroupCpuQuota over a
// fake cgroup tree (server/cpu_quota.h).
#include "server/cpu_quota.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace convserve::server {
namespace {

using ::testing::Optional;

TEST(CoresAvailableTest, BetweenOneAndTheHardware) {
  const int cores = CoresAvailable();
  EXPECT_GE(cores, 1);
  if (std::thread::hardware_concurrency() > 0) {
    EXPECT_LE(cores, static_cast<int>(std::thread::hardware_concurrency()));
  }
}

TEST(CgroupTest, V2CpuMax) {
  EXPECT_EQ(ParseCgroupV2CpuMax("max 100000\n"), std::nullopt);
  EXPECT_EQ(ParseCgroupV2CpuMax("max"), std::nullopt);
  EXPECT_THAT(ParseCgroupV2CpuMax("150000 100000\n"), Optional(1.5));
  EXPECT_THAT(ParseCgroupV2CpuMax("200000 100000"), Optional(2.0));
  EXPECT_THAT(ParseCgroupV2CpuMax("50000"), Optional(0.5));  // default period
  EXPECT_EQ(ParseCgroupV2CpuMax(""), std::nullopt);
  EXPECT_EQ(ParseCgroupV2CpuMax("lots 100000"), std::nullopt);
  EXPECT_EQ(ParseCgroupV2CpuMax("100000 0"), std::nullopt);
}

TEST(CgroupTest, V1Quota) {
  EXPECT_EQ(ParseCgroupV1CpuQuota("-1\n", "100000\n"), std::nullopt);
  EXPECT_THAT(ParseCgroupV1CpuQuota("250000\n", "100000\n"), Optional(2.5));
  EXPECT_THAT(ParseCgroupV1CpuQuota("50000", "100000"), Optional(0.5));
  EXPECT_EQ(ParseCgroupV1CpuQuota("", "100000"), std::nullopt);
  EXPECT_EQ(ParseCgroupV1CpuQuota("100000", "0"), std::nullopt);
}

// A scratch directory standing in for /sys/fs/cgroup.
class FakeCgroupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::temp_directory_path() /
            ("convserve_cgroup_" + std::to_string(getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(root_);
    std::filesystem::create_directories(root_);
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  void Write(const std::string& path, const std::string& contents) {
    const std::filesystem::path file = root_ / path;
    std::filesystem::create_directories(file.parent_path());
    std::ofstream(file) << contents;
  }
  std::optional<double> Quota(const std::string& proc_self_cgroup) {
    return CgroupCpuQuota(root_.string(), proc_self_cgroup);
  }

  std::filesystem::path root_;
};

TEST_F(FakeCgroupTest, MissingFilesMeanNoQuota) {
  EXPECT_EQ(Quota("0::/\n"), std::nullopt);
  EXPECT_EQ(Quota(""), std::nullopt);
  EXPECT_EQ(CgroupCpuQuota((root_ / "absent").string(), "0::/a/b\n"), std::nullopt);
}

TEST_F(FakeCgroupTest, V2Unlimited) {
  Write("cpu.max", "max 100000\n");
  EXPECT_EQ(Quota("0::/\n"), std::nullopt);
}

TEST_F(FakeCgroupTest, V2QuotaInNamespace) {
  Write("cpu.max", "150000 100000\n");
  EXPECT_THAT(Quota("0::/\n"), Optional(1.5));
}

TEST_F(FakeCgroupTest, V2TightestAncestorWins) {
  Write("kubepods/cpu.max", "300000 100000\n");
  Write("kubepods/pod1/cpu.max", "max 100000\n");
  Write("kubepods/pod1/ctr/cpu.max", "max 100000\n");
  EXPECT_THAT(Quota("0::/kubepods/pod1/ctr\n"), Optional(3.0));
  Write("kubepods/pod1/ctr/cpu.max", "120000 100000\n");
  EXPECT_THAT(Quota("0::/kubepods/pod1/ctr\n"), Optional(1.2));
}

TEST_F(FakeCgroupTest, V2PathOutsideNamespaceFallsBackToRoot) {
  Write("cpu.max", "200000 100000\n");
  EXPECT_THAT(Quota("0::/../../elsewhere\n"), Optional(2.0));
}

TEST_F(FakeCgroupTest, V1Quota) {
  Write("cpu/cpu.cfs_quota_us", "50000\n");
  Write("cpu/cpu.cfs_period_us", "100000\n");
  EXPECT_THAT(Quota("4:cpu,cpuacct:/\n0::/\n"), Optional(0.5));
}

TEST_F(FakeCgroupTest, V1CombinedMountAndNestedPath) {
  Write("cpu,cpuacct/cpu.cfs_quota_us", "-1\n");
  Write("cpu,cpuacct/cpu.cfs_period_us", "100000\n");
  Write("cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "400000\n");
  Write("cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n");
  EXPECT_THAT(Quota("4:cpu,cpuacct:/docker/abc\n"), Optional(4.0));
}

TEST_F(FakeCgroupTest, V1Unlimited) {
  Write("cpu/cpu.cfs_quota_us", "-1\n");
  Write("cpu/cpu.cfs_period_us", "100000\n");
  EXPECT_EQ(Quota("1:cpu:/\n"), std::nullopt);
}

TEST_F(FakeCgroupTest, V1HalfMissing) {
  Write("cpu/cpu.cfs_quota_us", "50000\n");
  EXPECT_EQ(Quota("1:cpu:/\n"), std::nullopt);
}

TEST_F(FakeCgroupTest, V2FileMeansV1IsIgnored) {
  Write("cpu.max", "max 100000\n");
  Write("cpu/cpu.cfs_quota_us", "50000\n");
  Write("cpu/cpu.cfs_period_us", "100000\n");
  EXPECT_EQ(Quota("0::/\n"), std::nullopt);
}

}  // namespace
}  // namespace convserve::server
