// A gRPC peer nobody here wrote: grpc-js calls the example server and prints what it saw,
// as JSON, for tests/behaviour/test_node_peer.py to judge.
// usage: node node_peer.js PORT REPO_ROOT
const grpc = require('@grpc/grpc-js');
const loader = require('@grpc/proto-loader');

const [, , port, root] = process.argv;
const definition = loader.loadSync('user/v1/user.proto', {
  includeDirs: [`${root}/proto`, `${root}/protoc_gen_pyservice/proto`, `${root}/.pyservice/include`],
  keepCase: true,
  defaults: true,
});
const users = new (grpc.loadPackageDefinition(definition).user.v1.UserService)(
  `127.0.0.1:${port}`, grpc.credentials.createInsecure());

function outcome(error, response) {
  if (!error) return { code: 'OK', response };
  return { code: grpc.status[error.code], details: error.details, trailers: Object.keys(error.metadata.getMap()) };
}

function unary(method, request) {
  return new Promise((resolve) => {
    users[method](request, { deadline: Date.now() + 10000 }, (error, response) => resolve(outcome(error, response)));
  });
}

function raw(path, bytes) {
  return new Promise((resolve) => {
    users.makeUnaryRequest(path, (x) => x, (x) => x, bytes, new grpc.Metadata(),
      { deadline: Date.now() + 10000 }, (error) => resolve(outcome(error)));
  });
}

function firstUpdateThenCancel(publish) {
  return new Promise((resolve) => {
    const stream = users.StreamUserUpdates({ user_ids: [] });
    let email = null;
    stream.on('data', (update) => { email = update.user.email; stream.cancel(); });
    stream.on('error', (error) => resolve({ email, code: grpc.status[error.code] }));
    stream.on('end', () => resolve({ email, code: 'OK' }));
    setTimeout(publish, 300);
  });
}

const valid = (email) => ({ email, first_name: 'Ada', last_name: 'Lovelace', password: 'correct horse' });

(async () => {
  const seen = {};
  seen.missing = await unary('GetUser', { id: 'missing' });
  seen.created = await unary('CreateUser', valid('ada@example.com'));
  seen.invalid = await unary('CreateUser', { email: 'nope', first_name: '', last_name: '', password: 'x' });
  seen.garbage = await raw('/user.v1.UserService/GetUser', Buffer.from([0xff, 0xfe, 0x00, 0x01]));
  seen.bad_utf8 = await raw('/user.v1.UserService/GetUser', Buffer.from([0x0a, 0x02, 0xff, 0xfe]));
  // Under the server's 100-stream limit: grpc-js does not always resend streams refused above it.
  const burst = await Promise.all(Array.from({ length: 90 }, () => unary('GetUser', { id: 'missing' })));
  seen.burst = {};
  for (const { code } of burst) seen.burst[code] = (seen.burst[code] || 0) + 1;
  seen.stream = await firstUpdateThenCancel(() => unary('CreateUser', valid('grace@example.com')));
  seen.after = await unary('GetUser', { id: 'missing' });
  process.stdout.write(JSON.stringify(seen));
  users.close();
})();
