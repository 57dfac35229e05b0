// ConvClient: the C++ client library. One method per op, mirroring the
// TensorFlow Python signature (strides, padding, data_format, dilations,
// output_shape), over one gRPC channel. The requests come from BuildRequest
// (client/request_builder.h), which also defines Tensor, FilterRef,
// PaddingArg and Epilogue.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/request_builder.h"
#include "convserve/v1/convserve.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace convserve::client {

namespace v1 = ::convserve::v1;

struct ClientOptions {
  // Largest request or reply; match the server's --max-message-mb.
  int max_message_bytes = 256 << 20;
  // Deadline of each call; zero means none.
  std::chrono::milliseconds timeout{0};
  // Attempts per call when the server answers UNAVAILABLE (every ConvService
  // call is idempotent), with exponential backoff.
  int max_attempts = 4;
  // HTTP/2 keepalive ping interval while calls are active; zero disables.
  std::chrono::milliseconds keepalive{20000};
  // Channel credentials; null means plaintext (e.g. grpc::SslCredentials for TLS).
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  // How the server may compute the requests the per-op methods build (see
  // RequestOptions: e.g. TF32 for float32 on a GPU).
  RequestOptions request;
};

// Thread-safe: methods may be called from any number of threads at once.
class ConvClient {
 public:
  explicit ConvClient(const std::string& address, ClientOptions options = {});

  absl::StatusOr<Tensor> Convolution(const Tensor& input, const FilterRef& filters,
                                     std::vector<int64_t> strides = {},
                                     const PaddingArg& padding = "VALID",
                                     const std::string& data_format = "",
                                     std::vector<int64_t> dilations = {},
                                     const Epilogue& epilogue = {});
  absl::StatusOr<Tensor> Conv1D(const Tensor& input, const FilterRef& filters,
                                std::vector<int64_t> stride, const std::string& padding,
                                const std::string& data_format = "NWC",
                                std::vector<int64_t> dilations = {}, const Epilogue& epilogue = {});
  absl::StatusOr<Tensor> Conv2D(const Tensor& input, const FilterRef& filters,
                                std::vector<int64_t> strides, const PaddingArg& padding,
                                const std::string& data_format = "NHWC",
                                std::vector<int64_t> dilations = {}, const Epilogue& epilogue = {});
  absl::StatusOr<Tensor> Conv3D(const Tensor& input, const FilterRef& filters,
                                std::vector<int64_t> strides, const std::string& padding,
                                const std::string& data_format = "NDHWC",
                                std::vector<int64_t> dilations = {}, const Epilogue& epilogue = {});
  absl::StatusOr<Tensor> DepthwiseConv2D(const Tensor& input, const FilterRef& filter,
                                         std::vector<int64_t> strides, const PaddingArg& padding,
                                         const std::string& data_format = "NHWC",
                                         std::vector<int64_t> dilations = {},
                                         const Epilogue& epilogue = {});
  absl::StatusOr<Tensor> SeparableConv2D(const Tensor& input, const FilterRef& depthwise_filter,
                                         const FilterRef& pointwise_filter,
                                         std::vector<int64_t> strides, const std::string& padding,
                                         const std::string& data_format = "NHWC",
                                         std::vector<int64_t> dilations = {},
                                         const Epilogue& epilogue = {});
  absl::StatusOr<Tensor> AtrousConv2D(const Tensor& value, const FilterRef& filters, int64_t rate,
                                      const std::string& padding, const Epilogue& epilogue = {});
  // output_shape: 3 values in data_format order (TF inserts the dummy height
  // into a width-only one, which then fits a width of 1 only).
  absl::StatusOr<Tensor> Conv1DTranspose(const Tensor& input, const FilterRef& filters,
                                         std::vector<int64_t> output_shape,
                                         std::vector<int64_t> strides,
                                         const std::string& padding = "SAME",
                                         const std::string& data_format = "NWC",
                                         std::vector<int64_t> dilations = {},
                                         const Epilogue& epilogue = {});
  // output_shape: 4 values in data_format order, or the spatial (H, W) alone
  // (batch from `input`, channels from the filter's dimension 2).
  absl::StatusOr<Tensor> Conv2DTranspose(const Tensor& input, const FilterRef& filters,
                                         std::vector<int64_t> output_shape,
                                         std::vector<int64_t> strides,
                                         const PaddingArg& padding = "SAME",
                                         const std::string& data_format = "NHWC",
                                         std::vector<int64_t> dilations = {},
                                         const Epilogue& epilogue = {});
  absl::StatusOr<Tensor> Conv3DTranspose(const Tensor& input, const FilterRef& filters,
                                         std::vector<int64_t> output_shape,
                                         std::vector<int64_t> strides,
                                         const std::string& padding = "SAME",
                                         const std::string& data_format = "NDHWC",
                                         std::vector<int64_t> dilations = {},
                                         const Epilogue& epilogue = {});
  // The op by len(output_shape) (3, 4 or 5); explicit padding pairs when 2-D only.
  absl::StatusOr<Tensor> ConvTranspose(const Tensor& input, const FilterRef& filters,
                                       std::vector<int64_t> output_shape,
                                       std::vector<int64_t> strides,
                                       const PaddingArg& padding = "SAME",
                                       const std::string& data_format = "",
                                       std::vector<int64_t> dilations = {},
                                       const Epilogue& epilogue = {});

  // Stores `filter` on the server; later calls pass the returned id.
  absl::StatusOr<std::string> RegisterFilter(const Tensor& filter);
  absl::StatusOr<v1::ServerInfo> GetServerInfo();

  // Any request (e.g. from BuildRequest); the status is the call's.
  absl::StatusOr<v1::ConvResponse> Conv(const v1::ConvRequest& request);
  // Sends `requests` on one ConvStream with at most `in_flight` unanswered,
  // and returns the replies in request order (matched by id; ids are set to
  // the index). A request that failed has its reply's `error` set.
  absl::StatusOr<std::vector<v1::ConvResponse>> ConvMany(std::vector<v1::ConvRequest> requests,
                                                         int in_flight = 16);

 private:
  void SetDeadline(grpc::ClientContext* context) const;
  // Builds the request for `op`, sends it, and returns its output.
  absl::StatusOr<Tensor> Call(absl::string_view op, const OpArgs& args, RequestTensors tensors);

  ClientOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::ConvService::Stub> stub_;
};

}  // namespace convserve::client
