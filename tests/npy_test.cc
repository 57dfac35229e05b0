#include "client/npy.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace convserve::client {
namespace {

using ::testing::ElementsAre;

// The bytes numpy 1.24 writes for np.save(f, np.array([[1, 2, 3]], dtype='<i4')).
std::string NumpyBytes() {
  std::string header = "{'descr': '<i4', 'fortran_order': False, 'shape': (1, 3), }";
  header.append((64 - (10 + header.size() + 1) % 64) % 64, ' ');
  header.push_back('\n');
  std::string bytes("\x93NUMPY\x01\x00", 8);
  bytes.push_back(static_cast<char>(header.size()));
  bytes.push_back('\0');
  bytes += header;
  const int32_t values[] = {1, 2, 3};
  bytes.append(reinterpret_cast<const char*>(values), sizeof(values));
  return bytes;
}

TEST(Npy, ParsesWhatNumpyWrites) {
  absl::StatusOr<NpyArray> array = ParseNpy(NumpyBytes());
  ASSERT_TRUE(array.ok()) << array.status();
  EXPECT_EQ(array->descr, "<i4");
  EXPECT_THAT(array->shape, ElementsAre(1, 3));
  ASSERT_EQ(array->data.size(), 12u);
  int32_t values[3];
  memcpy(values, array->data.data(), 12);
  EXPECT_THAT(values, ElementsAre(1, 2, 3));
}

TEST(Npy, SerializesExactlyAsNumpyDoes) {
  EXPECT_EQ(SerializeNpy(*ParseNpy(NumpyBytes())), NumpyBytes());
}

TEST(Npy, RoundTripsScalarsOneDimAndEmptyArrays) {
  for (const std::vector<int64_t>& shape :
       std::vector<std::vector<int64_t>>{{}, {5}, {0, 3}, {2, 1, 2}}) {
    int64_t count = 1;
    for (int64_t d : shape) count *= d;
    NpyArray array{"<f2", shape, std::string(count * 2, '\x3c')};
    const std::string bytes = SerializeNpy(array);
    EXPECT_EQ((bytes.size() - array.data.size()) % 64, 0u) << "header is 64-byte aligned";
    absl::StatusOr<NpyArray> parsed = ParseNpy(bytes);
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(parsed->shape, shape);
    EXPECT_EQ(parsed->data, array.data);
    EXPECT_EQ(parsed->descr, "<f2");
  }
}

TEST(Npy, ReadsVersionTwoHeaders) {
  std::string v1 = NumpyBytes();
  std::string v2 = "\x93NUMPY\x02";
  v2.push_back('\0');
  v2.push_back(v1[8]);
  v2.append(3, '\0');
  v2 += v1.substr(10);
  absl::StatusOr<NpyArray> array = ParseNpy(v2);
  ASSERT_TRUE(array.ok()) << array.status();
  EXPECT_THAT(array->shape, ElementsAre(1, 3));
}

// Found by fuzz_npy: a header over 65,535 bytes (tens of thousands of
// dimensions) was written as version 1.0 with its 16-bit length truncated, so
// the file could not be read back. It is written as version 2.0 now, as NumPy
// writes it; shorter headers stay version 1.0.
TEST(Npy, LongHeadersAreWrittenAsVersionTwo) {
  NpyArray array{"<f4", std::vector<int64_t>(30000, 1), std::string(4, '\x01')};
  const std::string bytes = SerializeNpy(array);
  EXPECT_EQ(bytes[6], '\x02');
  EXPECT_EQ((bytes.size() - array.data.size()) % 64, 0u) << "header is 64-byte aligned";
  absl::StatusOr<NpyArray> parsed = ParseNpy(bytes);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->shape, array.shape);
  EXPECT_EQ(parsed->data, array.data);
  EXPECT_EQ(SerializeNpy(*parsed), bytes);
  // A header that fits version 1.0 (21,000 dimensions, 63 KB) stays there.
  array.shape.resize(21000);
  EXPECT_EQ(SerializeNpy(array)[6], '\x01');
  EXPECT_TRUE(ParseNpy(SerializeNpy(array)).ok());
}

TEST(Npy, RejectsMalformedFiles) {
  EXPECT_FALSE(ParseNpy("not an npy file").ok());
  std::string truncated = NumpyBytes();
  truncated.pop_back();
  EXPECT_THAT(std::string(ParseNpy(truncated).status().message()),
              ::testing::HasSubstr("data has 11 bytes"));
  std::string fortran = NumpyBytes();
  fortran.replace(fortran.find("False"), 5, "True ");
  EXPECT_THAT(std::string(ParseNpy(fortran).status().message()),
              ::testing::HasSubstr("Fortran order"));
  std::string negative = NumpyBytes();
  negative.replace(negative.find("(1, 3)"), 6, "(-1, 3");
  EXPECT_FALSE(ParseNpy(negative).ok());
}

}  // namespace
}  // namespace convserve::client
