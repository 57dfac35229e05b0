#include "core/op_attrs.h"

#include "absl/strings/str_cat.h"

namespace convserve {
namespace {

constexpr absl::string_view kLastFormats[] = {"NWC", "NHWC", "NDHWC"};
constexpr absl::string_view kFirstFormats[] = {"NCW", "NCHW", "NCDHW"};

// Index in the full (N+2)-element list of spatial dimension i.
int SpatialIndex(int i, bool channels_last) { return channels_last ? i + 1 : i + 2; }
int ChannelIndex(int n, bool channels_last) { return channels_last ? n + 1 : 1; }

// The shared 1 / N / N+2 expansion; `batch_depth_message` names the TF error
// for a non-1 value at the batch or channel position.
absl::StatusOr<std::vector<int64_t>> Expand(const AttrContext& ctx, absl::string_view field,
                                            const std::vector<int64_t>& values, bool channels_last,
                                            absl::string_view batch_depth_message) {
  const int n = ctx.spatial_rank;
  const int count = static_cast<int>(values.size());
  if (count == 0) return std::vector<int64_t>(n, 1);
  if (count == 1) return std::vector<int64_t>(n, values[0]);
  if (count == n) return values;
  if (count == n + 2) {
    if (values[0] != 1 || values[ChannelIndex(n, channels_last)] != 1) {
      return FieldError(ctx.op, field, batch_depth_message);
    }
    std::vector<int64_t> spatial(n);
    for (int i = 0; i < n; ++i) spatial[i] = values[SpatialIndex(i, channels_last)];
    return spatial;
  }
  return FieldError(
      ctx.op, field,
      absl::StrCat(field, " should be of length 1, ", n, " or ", n + 2, " but was ", count));
}

}  // namespace

absl::Status FieldError(absl::string_view op, absl::string_view field, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat(message, " (field: ", op, ".", field, ")"));
}

absl::StatusOr<bool> ParseDataFormat(const AttrContext& ctx, absl::string_view data_format,
                                     bool accept_2d_names_for_1d) {
  const int i = ctx.spatial_rank - 1;
  if (data_format.empty() || data_format == kLastFormats[i]) return true;
  if (data_format == kFirstFormats[i]) return false;
  if (accept_2d_names_for_1d && i == 0) {
    if (data_format == kLastFormats[1]) return true;
    if (data_format == kFirstFormats[1]) return false;
  }
  return FieldError(
      ctx.op, "data_format",
      absl::StrCat("data_format must be \"", kLastFormats[i], "\" or \"", kFirstFormats[i], "\"."));
}

absl::StatusOr<std::vector<int64_t>> ExpandStrides(const AttrContext& ctx, absl::string_view field,
                                                   const std::vector<int64_t>& values,
                                                   bool channels_last) {
  absl::StatusOr<std::vector<int64_t>> strides =
      Expand(ctx, field, values, channels_last,
             "Current implementation does not yet support strides in the batch and depth "
             "dimensions.");
  if (!strides.ok()) return strides;
  for (int64_t s : *strides) {
    if (s < 1) {
      return FieldError(ctx.op, field,
                        ctx.spatial_rank == 3 ? "Spatial strides should be larger than 0."
                                              : "Row and column strides should be larger than 0.");
    }
  }
  return strides;
}

absl::StatusOr<std::vector<int64_t>> ExpandDilations(const AttrContext& ctx,
                                                     const std::vector<int64_t>& values,
                                                     bool channels_last) {
  absl::StatusOr<std::vector<int64_t>> dilations =
      Expand(ctx, "dilations", values, channels_last,
             "Current implementation does not yet support dilations in the batch and depth "
             "dimensions.");
  if (!dilations.ok()) return dilations;
  for (int64_t d : *dilations) {
    if (d < 1) return FieldError(ctx.op, "dilations", "Dilated rates should be larger than 0.");
  }
  return dilations;
}

absl::Status CheckPadding(const AttrContext& ctx, Padding padding, bool explicit_allowed) {
  if (padding == Padding::kSame || padding == Padding::kValid) return absl::OkStatus();
  if (padding == Padding::kExplicit && explicit_allowed) return absl::OkStatus();
  return FieldError(ctx.op, "padding",
                    explicit_allowed
                        ? "padding must be \"SAME\", \"VALID\" or \"EXPLICIT\"."
                        : "Value for attr 'padding' must be one of \"SAME\", \"VALID\".");
}

absl::StatusOr<SpatialPads> ParseExplicitPaddings(const AttrContext& ctx, Padding padding,
                                                  const std::vector<int64_t>& paddings,
                                                  bool channels_last) {
  const int n = ctx.spatial_rank;
  SpatialPads pads{std::vector<int64_t>(n, 0), std::vector<int64_t>(n, 0)};
  if (padding != Padding::kExplicit) {
    if (!paddings.empty()) {
      return FieldError(ctx.op, "explicit_paddings",
                        "explicit_paddings attribute must be empty if the padding attribute "
                        "is not EXPLICIT");
    }
    return pads;
  }
  const int expected = 2 * (n + 2);
  if (static_cast<int>(paddings.size()) != expected) {
    return FieldError(ctx.op, "explicit_paddings",
                      absl::StrCat("explicit_paddings attribute must contain ", expected,
                                   " values, but got: ", paddings.size()));
  }
  for (int64_t p : paddings) {
    if (p < 0) {
      return FieldError(ctx.op, "explicit_paddings",
                        "All elements of explicit_paddings must be nonnegative");
    }
  }
  const int channel = ChannelIndex(n, channels_last);
  if (paddings[0] != 0 || paddings[1] != 0 || paddings[2 * channel] != 0 ||
      paddings[2 * channel + 1] != 0) {
    return FieldError(ctx.op, "explicit_paddings",
                      "Nonzero explicit padding in the batch or depth dimensions is not "
                      "supported");
  }
  for (int i = 0; i < n; ++i) {
    const int dim = SpatialIndex(i, channels_last);
    pads.before[i] = paddings[2 * dim];
    pads.after[i] = paddings[2 * dim + 1];
  }
  return pads;
}

}  // namespace convserve
