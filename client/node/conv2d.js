// ConvServe from Node.js: TensorFlow's tf.nn.conv2d(x, w, strides=2, padding="SAME")
// over gRPC, checked against a direct loop, then one invalid request.
// Usage: node conv2d.js [host:port]   (default localhost:50051)
// TLS: CONVSERVE_TLS_CA=ca.pem (the CA that verifies the server); a bearer
// token for a server run with --auth-tokens-file: CONVSERVE_TOKEN_FILE=file
// (sent only over TLS).
'use strict';
const fs = require('fs');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const address = process.argv[2] || 'localhost:50051';
const definition = protoLoader.loadSync(
  path.join(__dirname, '..', '..', 'proto', 'convserve', 'v1', 'convserve.proto'),
  { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true });
const { ConvService } = grpc.loadPackageDefinition(definition).convserve.v1;
const maxBytes = 256 * 1024 * 1024; // the server's default --max-message-mb
function credentials() {
  const caFile = process.env.CONVSERVE_TLS_CA, tokenFile = process.env.CONVSERVE_TOKEN_FILE;
  if (!caFile) {
    if (tokenFile) throw new Error('CONVSERVE_TOKEN_FILE needs CONVSERVE_TLS_CA: a token is never sent in plaintext');
    return grpc.credentials.createInsecure();
  }
  const tls = grpc.credentials.createSsl(fs.readFileSync(caFile));
  if (!tokenFile) return tls;
  const token = fs.readFileSync(tokenFile, 'utf8').trim();
  const bearer = grpc.credentials.createFromMetadataGenerator((_, callback) => {
    const metadata = new grpc.Metadata();
    metadata.add('authorization', `Bearer ${token}`);
    callback(null, metadata);
  });
  return grpc.credentials.combineChannelCredentials(tls, bearer);
}
const client = new ConvService(address, credentials(), {
  'grpc.max_send_message_length': maxBytes,
  'grpc.max_receive_message_length': maxBytes,
});

// A float32 tensor: the wire format is little-endian, row-major bytes.
function tensor(shape, values) {
  const data = Buffer.alloc(4 * values.length);
  values.forEach((v, i) => data.writeFloatLE(v, 4 * i));
  return { dtype: 'DATA_TYPE_FLOAT32', shape, data };
}
function floats(t) {
  const out = [];
  for (let i = 0; i < t.data.length; i += 4) out.push(t.data.readFloatLE(i));
  return out;
}
function conv(request) {
  return new Promise((resolve, reject) =>
    client.Conv(request, { deadline: Date.now() + 30000 },
      (err, reply) => (err ? reject(err) : resolve(reply))));
}

// x: 1x5x5x1 holding 1..25; w: 3x3x1x1 of ones (NHWC input, HWIO filter).
const [H, W, K, S] = [5, 5, 3, 2];
const x = Array.from({ length: H * W }, (_, i) => i + 1);
const w = new Array(K * K).fill(1);

// TensorFlow's SAME: output ceil(in / stride), padding split with the odd
// pixel at the end (so the top/left pad is floor(total / 2)).
const outH = Math.ceil(H / S), outW = Math.ceil(W / S);
const padTop = Math.floor(Math.max((outH - 1) * S + K - H, 0) / 2);
const padLeft = Math.floor(Math.max((outW - 1) * S + K - W, 0) / 2);
const expected = [];
for (let i = 0; i < outH; i++) {
  for (let j = 0; j < outW; j++) {
    let sum = 0;
    for (let a = 0; a < K; a++) {
      for (let b = 0; b < K; b++) {
        const r = i * S + a - padTop, c = j * S + b - padLeft;
        if (r >= 0 && r < H && c >= 0 && c < W) sum += x[r * W + c] * w[a * K + b];
      }
    }
    expected.push(sum);
  }
}

function request(strides) {
  return {
    conv2d: { strides, padding: 'PADDING_SAME' },
    input: tensor([1, H, W, 1], x),
    filter: { tensor: tensor([K, K, 1, 1], w) },
  };
}

async function main() {
  let ok = true;

  const reply = await conv(request([S]));
  const got = floats(reply.output);
  console.log(`conv2d output shape [${reply.output.shape}] (${reply.timing.backend} backend):`);
  for (let i = 0; i < outH; i++) console.log('  ' + JSON.stringify(got.slice(i * outW, (i + 1) * outW)));
  const sameShape = JSON.stringify(reply.output.shape) === JSON.stringify([1, outH, outW, 1]);
  if (sameShape && JSON.stringify(got) === JSON.stringify(expected)) {
    console.log('matches the direct loop');
  } else {
    console.log('MISMATCH: expected', JSON.stringify(expected));
    ok = false;
  }

  // Strides on the batch dimension: TensorFlow refuses them, and so does ConvServe.
  const message = 'Current implementation does not yet support strides in the batch and depth dimensions.';
  try {
    await conv(request([2, 1, 1, 1]));
    console.log('MISMATCH: the invalid request succeeded');
    ok = false;
  } catch (err) {
    console.log(`invalid request: ${grpc.status[err.code]}: ${err.details}`);
    if (err.code !== grpc.status.INVALID_ARGUMENT || !err.details.includes(message)) {
      console.log(`MISMATCH: expected INVALID_ARGUMENT: ${message}`);
      ok = false;
    }
  }
  return ok;
}

main()
  .then((ok) => { client.close(); process.exitCode = ok ? 0 : 1; })
  .catch((err) => {
    console.error(`gRPC error ${grpc.status[err.code] || err.code}: ${err.details || err.message}`);
    client.close();
    process.exitCode = 1;
  });
