#include "client/conv_client.h"

#include <condition_variable>
#include <mutex>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace convserve::client {
namespace {

absl::Status FromGrpc(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

// Retries UNAVAILABLE with exponential backoff: every ConvService call is idempotent.
std::string RetryServiceConfig(int max_attempts) {
  return absl::StrCat(R"({"methodConfig":[{"name":[{"service":"convserve.v1.ConvService"}],)",
                      R"("retryPolicy":{"maxAttempts":)", std::max(2, std::min(max_attempts, 5)),
                      R"(,"initialBackoff":"0.05s","maxBackoff":"1s","backoffMultiplier":2,)",
                      R"("retryableStatusCodes":["UNAVAILABLE"]}}]})");
}

// The output of a successful reply.
absl::StatusOr<Tensor> Output(absl::StatusOr<v1::ConvResponse> response) {
  if (!response.ok()) return response.status();
  Tensor out;
  out.dtype = response->output().dtype();
  out.shape.assign(response->output().shape().begin(), response->output().shape().end());
  out.data = std::move(*response->mutable_output()->mutable_data());
  return out;
}

}  // namespace

ConvClient::ConvClient(const std::string& address, ClientOptions options)
    : options_(std::move(options)) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(options_.max_message_bytes);
  args.SetMaxSendMessageSize(options_.max_message_bytes);
  args.SetServiceConfigJSON(RetryServiceConfig(options_.max_attempts));
  if (options_.keepalive.count() > 0) {
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, static_cast<int>(options_.keepalive.count()));
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  }
  std::shared_ptr<grpc::ChannelCredentials> credentials =
      options_.credentials ? options_.credentials : grpc::InsecureChannelCredentials();
  channel_ = grpc::CreateCustomChannel(address, credentials, args);
  stub_ = v1::ConvService::NewStub(channel_);
}

void ConvClient::SetDeadline(grpc::ClientContext* context) const {
  if (options_.timeout.count() > 0) {
    context->set_deadline(std::chrono::system_clock::now() + options_.timeout);
  }
}

absl::StatusOr<v1::ConvResponse> ConvClient::Conv(const v1::ConvRequest& request) {
  grpc::ClientContext context;
  SetDeadline(&context);
  v1::ConvResponse response;
  grpc::Status status = stub_->Conv(&context, request, &response);
  if (!status.ok()) return FromGrpc(status);
  return response;
}

absl::StatusOr<Tensor> ConvClient::Call(absl::string_view op, const OpArgs& args,
                                        RequestTensors tensors) {
  absl::StatusOr<v1::ConvRequest> request =
      BuildRequest(op, args, std::move(tensors), options_.request);
  if (!request.ok()) return request.status();
  return Output(Conv(*request));
}

absl::StatusOr<Tensor> ConvClient::Convolution(const Tensor& input, const FilterRef& filters,
                                               std::vector<int64_t> strides,
                                               const PaddingArg& padding,
                                               const std::string& data_format,
                                               std::vector<int64_t> dilations,
                                               const Epilogue& epilogue) {
  return Call("convolution",
              {.strides = std::move(strides),
               .padding = padding,
               .data_format = data_format,
               .dilations = std::move(dilations)},
              {input, filters, std::nullopt, epilogue});
}

absl::StatusOr<Tensor> ConvClient::Conv1D(const Tensor& input, const FilterRef& filters,
                                          std::vector<int64_t> stride, const std::string& padding,
                                          const std::string& data_format,
                                          std::vector<int64_t> dilations,
                                          const Epilogue& epilogue) {
  return Call("conv1d",
              {.strides = std::move(stride),
               .padding = padding,
               .data_format = data_format,
               .dilations = std::move(dilations)},
              {input, filters, std::nullopt, epilogue});
}

absl::StatusOr<Tensor> ConvClient::Conv2D(const Tensor& input, const FilterRef& filters,
                                          std::vector<int64_t> strides, const PaddingArg& padding,
                                          const std::string& data_format,
                                          std::vector<int64_t> dilations,
                                          const Epilogue& epilogue) {
  return Call("conv2d",
              {.strides = std::move(strides),
               .padding = padding,
               .data_format = data_format,
               .dilations = std::move(dilations)},
              {input, filters, std::nullopt, epilogue});
}

absl::StatusOr<Tensor> ConvClient::Conv3D(const Tensor& input, const FilterRef& filters,
                                          std::vector<int64_t> strides, const std::string& padding,
                                          const std::string& data_format,
                                          std::vector<int64_t> dilations,
                                          const Epilogue& epilogue) {
  return Call("conv3d",
              {.strides = std::move(strides),
               .padding = padding,
               .data_format = data_format,
               .dilations = std::move(dilations)},
              {input, filters, std::nullopt, epilogue});
}

absl::StatusOr<Tensor> ConvClient::DepthwiseConv2D(const Tensor& input, const FilterRef& filter,
                                                   std::vector<int64_t> strides,
                                                   const PaddingArg& padding,
                                                   const std::string& data_format,
                                                   std::vector<int64_t> dilations,
                                                   const Epilogue& epilogue) {
  return Call("depthwise_conv2d",
              {.strides = std::move(strides),
               .padding = padding,
               .data_format = data_format,
               .dilations = std::move(dilations)},
              {input, filter, std::nullopt, epilogue});
}

absl::StatusOr<Tensor> ConvClient::SeparableConv2D(
    const Tensor& input, const FilterRef& depthwise_filter, const FilterRef& pointwise_filter,
    std::vector<int64_t> strides, const std::string& padding, const std::string& data_format,
    std::vector<int64_t> dilations, const Epilogue& epilogue) {
  return Call("separable_conv2d",
              {.strides = std::move(strides),
               .padding = padding,
               .data_format = data_format,
               .dilations = std::move(dilations)},
              {input, depthwise_filter, pointwise_filter, epilogue});
}

absl::StatusOr<Tensor> ConvClient::AtrousConv2D(const Tensor& value, const FilterRef& filters,
                                                int64_t rate, const std::string& padding,
                                                const Epilogue& epilogue) {
  return Call("atrous_conv2d", {.padding = padding, .rate = rate},
              {value, filters, std::nullopt, epilogue});
}

absl::StatusOr<Tensor> ConvClient::Conv1DTranspose(
    const Tensor& input, const FilterRef& filters, std::vector<int64_t> output_shape,
    std::vector<int64_t> strides, const std::string& padding, const std::string& data_format,
    std::vector<int64_t> dilations, const Epilogue& epilogue) {
  return Call("conv1d_transpose",
              {.strides = std::move(strides),
               .padding = padding,
               .data_format = data_format,
               .dilations = std::move(dilations),
               .output_shape = std::move(output_shape)},
              {input, filters, std::nullopt, epilogue});
}

absl::StatusOr<Tensor> ConvClient::Conv2DTranspose(
    const Tensor& input, const FilterRef& filters, std::vector<int64_t> output_shape,
    std::vector<int64_t> strides, const PaddingArg& padding, const std::string& data_format,
    std::vector<int64_t> dilations, const Epilogue& epilogue) {
  return Call("conv2d_transpose",
              {.strides = std::move(strides),
               .padding = padding,
               .data_format = data_format,
               .dilations = std::move(dilations),
               .output_shape = std::move(output_shape)},
              {input, filters, std::nullopt, epilogue});
}

absl::StatusOr<Tensor> ConvClient::Conv3DTranspose(
    const Tensor& input, const FilterRef& filters, std::vector<int64_t> output_shape,
    std::vector<int64_t> strides, const std::string& padding, const std::string& data_format,
    std::vector<int64_t> dilations, const Epilogue& epilogue) {
  return Call("conv3d_transpose",
              {.strides = std::move(strides),
               .padding = padding,
               .data_format = data_format,
               .dilations = std::move(dilations),
               .output_shape = std::move(output_shape)},
              {input, filters, std::nullopt, epilogue});
}

absl::StatusOr<Tensor> ConvClient::ConvTranspose(
    const Tensor& input, const FilterRef& filters, std::vector<int64_t> output_shape,
    std::vector<int64_t> strides, const PaddingArg& padding, const std::string& data_format,
    std::vector<int64_t> dilations, const Epilogue& epilogue) {
  return Call("conv_transpose",
              {.strides = std::move(strides),
               .padding = padding,
               .data_format = data_format,
               .dilations = std::move(dilations),
               .output_shape = std::move(output_shape)},
              {input, filters, std::nullopt, epilogue});
}

absl::StatusOr<std::string> ConvClient::RegisterFilter(const Tensor& filter) {
  grpc::ClientContext context;
  SetDeadline(&context);
  v1::RegisterFilterRequest request;
  *request.mutable_filter() = ToWire(filter);
  v1::RegisterFilterResponse response;
  grpc::Status status = stub_->RegisterFilter(&context, request, &response);
  if (!status.ok()) return FromGrpc(status);
  return response.filter_id();
}

absl::StatusOr<v1::ServerInfo> ConvClient::GetServerInfo() {
  grpc::ClientContext context;
  SetDeadline(&context);
  v1::ServerInfo info;
  grpc::Status status = stub_->GetServerInfo(&context, v1::GetServerInfoRequest(), &info);
  if (!status.ok()) return FromGrpc(status);
  return info;
}

absl::StatusOr<std::vector<v1::ConvResponse>> ConvClient::ConvMany(
    std::vector<v1::ConvRequest> requests, int in_flight) {
  grpc::ClientContext context;
  SetDeadline(&context);
  auto stream = stub_->ConvStream(&context);
  std::mutex mutex;
  std::condition_variable slot_free;
  int outstanding = 0;
  bool reading = true;
  std::thread writer([&] {
    for (size_t i = 0; i < requests.size(); ++i) {
      {
        std::unique_lock<std::mutex> lock(mutex);
        slot_free.wait(lock, [&] { return outstanding < std::max(1, in_flight) || !reading; });
        if (!reading) break;
        ++outstanding;
      }
      requests[i].set_id(absl::StrCat(i));
      if (!stream->Write(requests[i])) break;
    }
    stream->WritesDone();
  });
  std::vector<v1::ConvResponse> replies(requests.size());
  std::vector<bool> answered(requests.size(), false);
  size_t count = 0;
  v1::ConvResponse response;
  while (stream->Read(&response)) {
    size_t index = 0;
    if (absl::SimpleAtoi(response.id(), &index) && index < replies.size() && !answered[index]) {
      answered[index] = true;
      replies[index] = std::move(response);
      ++count;
    }
    {
      std::lock_guard<std::mutex> lock(mutex);
      --outstanding;
    }
    slot_free.notify_one();
  }
  {
    std::lock_guard<std::mutex> lock(mutex);
    reading = false;
  }
  slot_free.notify_one();
  writer.join();
  grpc::Status status = stream->Finish();
  if (!status.ok()) return FromGrpc(status);
  if (count != requests.size()) {
    return absl::DataLossError(
        absl::StrCat("the stream answered ", count, " of ", requests.size(), " requests"));
  }
  return replies;
}

}  // namespace convserve::client
