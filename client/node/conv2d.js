// ConvServe from Node.js: TensorFlow's tf.nn.conv2d(x, w, strides=2, padding="SAME")
// over gRPC, checked against a direct loop, then one invalid request.
// Usage: node conv2d.js [host:port]   (default localhost:50051)
// TLS: CONVSERVE_TLS_CA=ca.pem (the CA that verifies the server); a bearer
// token for a server run with --auth-tokens-file: CONVSERVE_TOKEN_FILE=file
// (sent only over TLS).
'use strict';
const { connect, tensor, floats, conv: call, expectInvalid, run } = require('./convserve');

const address = process.argv[2] || 'localhost:50051';
const client = connect(address);
const conv = (request) => call(client, request);

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
  return (await expectInvalid(client, request([2, 1, 1, 1]), message)) && ok;
}

run(client, main);
