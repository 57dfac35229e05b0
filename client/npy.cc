#include "client/npy.h"

#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace convserve::client {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicSize = 6;

absl::Status Malformed(absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("malformed .npy: ", why));
}

// The text after `'key':` in the header dict, up to the end of the header.
absl::StatusOr<absl::string_view> ValueOf(absl::string_view header, absl::string_view key) {
  const std::string quoted = absl::StrCat("'", key, "':");
  const size_t at = header.find(quoted);
  if (at == absl::string_view::npos) return Malformed(absl::StrCat("no ", key, " in header"));
  return absl::StripLeadingAsciiWhitespace(header.substr(at + quoted.size()));
}

int64_t ItemSizeOf(absl::string_view descr) {
  int64_t size = 0;
  if (descr.size() < 3 || !absl::SimpleAtoi(descr.substr(2), &size)) return 0;
  return size;
}

}  // namespace

absl::StatusOr<NpyArray> ParseNpy(const std::string& bytes) {
  if (bytes.size() < kMagicSize + 4 || bytes.compare(0, kMagicSize, kMagic) != 0) {
    return Malformed("bad magic");
  }
  const int major = static_cast<unsigned char>(bytes[kMagicSize]);
  size_t header_len = 0, offset = 0;
  auto byte = [&bytes](size_t i) {
    return static_cast<size_t>(static_cast<unsigned char>(bytes[i]));
  };
  if (major == 1) {
    header_len = byte(8) | byte(9) << 8;
    offset = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) return Malformed("truncated header");
    header_len = byte(8) | byte(9) << 8 | byte(10) << 16 | byte(11) << 24;
    offset = 12;
  } else {
    return Malformed(absl::StrCat("unknown version ", major));
  }
  if (bytes.size() < offset + header_len) return Malformed("truncated header");
  const absl::string_view header(bytes.data() + offset, header_len);

  NpyArray array;
  absl::StatusOr<absl::string_view> descr = ValueOf(header, "descr");
  if (!descr.ok()) return descr.status();
  if (descr->size() < 2 || descr->front() != '\'') return Malformed("descr is not a string");
  const size_t descr_end = descr->find('\'', 1);
  if (descr_end == absl::string_view::npos) return Malformed("descr is not a string");
  array.descr = std::string(descr->substr(1, descr_end - 1));

  absl::StatusOr<absl::string_view> fortran = ValueOf(header, "fortran_order");
  if (!fortran.ok()) return fortran.status();
  if (!absl::StartsWith(*fortran, "False")) {
    return absl::InvalidArgumentError(".npy arrays in Fortran order are not supported");
  }

  absl::StatusOr<absl::string_view> shape = ValueOf(header, "shape");
  if (!shape.ok()) return shape.status();
  const size_t close = shape->find(')');
  if (shape->empty() || shape->front() != '(' || close == absl::string_view::npos) {
    return Malformed("shape is not a tuple");
  }
  int64_t elements = 1;
  for (absl::string_view dim :
       absl::StrSplit(shape->substr(1, close - 1), ',', absl::SkipWhitespace())) {
    int64_t value = 0;
    if (!absl::SimpleAtoi(dim, &value) || value < 0) return Malformed("bad shape entry");
    if (__builtin_mul_overflow(elements, value, &elements)) return Malformed("shape too large");
    array.shape.push_back(value);
  }
  const int64_t item_size = ItemSizeOf(array.descr);
  const size_t data_offset = offset + header_len;
  int64_t expected = 0;
  if (item_size == 0 || __builtin_mul_overflow(elements, item_size, &expected) ||
      static_cast<uint64_t>(expected) != bytes.size() - data_offset) {
    return Malformed(absl::StrCat("data has ", bytes.size() - data_offset, " bytes, header says ",
                                  elements, " elements of ", array.descr));
  }
  array.data = bytes.substr(data_offset);
  return array;
}

std::string SerializeNpy(const NpyArray& array) {
  std::string shape = absl::StrJoin(array.shape, ", ");
  if (array.shape.size() == 1) shape += ",";
  std::string header = absl::StrCat("{'descr': '", array.descr,
                                    "', 'fortran_order': False, 'shape': (", shape, "), }");
  // Magic (6) + version (2) + length (2, or 4 from version 2.0) + header +
  // '\n', padded to 64 bytes. Version 1.0's length is 16 bits: a longer header
  // (tens of thousands of dimensions) needs version 2.0, as NumPy writes it.
  auto padding = [&header](size_t length_size) {
    return (64 - (kMagicSize + 2 + length_size + header.size() + 1) % 64) % 64;
  };
  const size_t length_size = header.size() + padding(2) + 1 <= 0xffff ? 2 : 4;
  header.append(padding(length_size), ' ');
  header.push_back('\n');
  std::string out(kMagic, kMagicSize);
  out.push_back(length_size == 2 ? '\x01' : '\x02');
  out.push_back('\x00');
  for (size_t i = 0; i < length_size; ++i) {
    out.push_back(static_cast<char>((header.size() >> (8 * i)) & 0xff));
  }
  out += header;
  out += array.data;
  return out;
}

absl::StatusOr<NpyArray> ReadNpyFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::ostringstream contents;
  contents << file.rdbuf();
  absl::StatusOr<NpyArray> array = ParseNpy(contents.str());
  if (!array.ok()) {
    return absl::Status(array.status().code(), absl::StrCat(path, ": ", array.status().message()));
  }
  return array;
}

absl::Status WriteNpyFile(const std::string& path, const NpyArray& array) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  const std::string bytes = SerializeNpy(array);
  file.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!file) return absl::UnavailableError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

}  // namespace convserve::client
