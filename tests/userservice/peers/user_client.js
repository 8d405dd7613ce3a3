// The source document's Node.js UserClient (grpc-best-practices.md, "JavaScript Client"), made
// correct, driven by tests/userservice/test_peers.py against the real server process.
//
// usage: node user_client.js ADDRESS CA_CERT_PEM REPO_ROOT
//   stdin:  one JSON command a line, e.g. {"op": "getUser", "id": "..."} (the ops: see run())
//   stdout: one JSON result a line, in the order of the commands:
//           {"ok": true, ...} or {"ok": false, "code": 5, "status": "NOT_FOUND", "details": "..."}
// Needs NODE_PATH to hold @grpc/grpc-js and @grpc/proto-loader.
const fs = require('fs');
const path = require('path');
const readline = require('readline');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

// The document's keepalive settings. grpc-js reads the first three; the grpc.http2.* names are
// C-core options that grpc-js does not know, kept because the document sets them. The
// document's `permit_without_calls: true` is 1 here: grpc-js turns it on only for `=== 1`, so
// with `true` an idle client sends no pings (it holds them back until its next call).
const KEEPALIVE_OPTIONS = {
  'grpc.keepalive_time_ms': 30000,
  'grpc.keepalive_timeout_ms': 5000,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.http2.max_pings_without_data': 0,
  'grpc.http2.min_time_between_pings_ms': 10000,
  'grpc.http2.min_ping_interval_without_data_ms': 300000,
};

class UserClient {
  constructor(address, rootCert, repoRoot) {
    const definition = protoLoader.loadSync(path.join(repoRoot, 'proto/user/v1/user.proto'), {
      // keepCase: messages keep the proto's snake_case field names. Every field below is
      // therefore spelt as in the proto (page_size, next_page_token, user_ids): a camelCase
      // key such as pageSize is not a field of the message and proto-loader drops it without
      // a word, and response.nextPageToken is undefined.
      keepCase: true,
      longs: String,
      enums: String,
      defaults: true,
      oneofs: true,
      // user.proto imports validate/validate.proto and pyservice/options.proto as well.
      includeDirs: [
        path.join(repoRoot, 'proto'),
        path.join(repoRoot, 'protoc_gen_pyservice/proto'),
        path.join(repoRoot, '.pyservice/include'),
      ],
    });
    const userProto = grpc.loadPackageDefinition(definition).user.v1;
    // Trust only the given CA, as a client of a private service does.
    const credentials = grpc.credentials.createSsl(rootCert);
    this.client = new userProto.UserService(address, credentials, KEEPALIVE_OPTIONS);
  }

  // One unary call with a deadline: the promise rejects with the grpc-js ServiceError.
  unary(method, request, seconds) {
    return new Promise((resolve, reject) => {
      const deadline = Date.now() + seconds * 1000;
      this.client[method](request, { deadline }, (error, response) =>
        error ? reject(error) : resolve(response));
    });
  }

  async getUser(userId) {
    return (await this.unary('getUser', { id: userId }, 5)).user;
  }

  async listUsers(pageSize = 10, pageToken = '', filter = '', orderBy = '') {
    const response = await this.unary('listUsers', {
      page_size: pageSize,
      page_token: pageToken,
      filter,
      order_by: orderBy,
    }, 10);
    return {
      users: response.users,
      nextPageToken: response.next_page_token,
      totalCount: response.total_count,
    };
  }

  async createUser(userData) {
    return (await this.unary('createUser', userData, 5)).user;
  }

  streamUserUpdates(userIds) {
    const stream = this.client.streamUserUpdates({ user_ids: userIds });
    return {
      on: (event, callback) => stream.on(event, callback),
      cancel: () => stream.cancel(),
      destroy: () => stream.destroy(),
    };
  }

  // Every connectivity state the channel enters from now on, for the keepalive test: a
  // GOAWAY or a dropped connection takes a READY channel to IDLE (and back through
  // CONNECTING), so an unbroken connection records nothing.
  recordConnectivity() {
    const channel = this.client.getChannel();
    const transitions = [];
    const watch = (state) => {
      channel.watchConnectivityState(state, Infinity, () => {
        const next = channel.getConnectivityState(false);
        transitions.push(grpc.connectivityState[next]);
        if (next !== grpc.connectivityState.SHUTDOWN) watch(next);
      });
    };
    watch(channel.getConnectivityState(false));
    return {
      state: () => grpc.connectivityState[channel.getConnectivityState(false)],
      transitions,
    };
  }

  close() {
    this.client.close();
  }
}

// The driver: commands from stdin, one at a time.

function failure(error) {
  return { ok: false, code: error.code, status: grpc.status[error.code], details: error.details };
}

// An open StreamUserUpdates: the updates received and not yet asked for, and how it ended.
class Watch {
  constructor(stream) {
    this.updates = [];
    this.ended = null;
    this.waiter = null;
    stream.on('data', (update) => { this.updates.push(update); this.wake(); });
    stream.on('error', (error) => { this.ended = failure(error); this.wake(); });
    stream.on('end', () => { this.ended = this.ended || { ok: true, ended: true }; this.wake(); });
    this.stream = stream;
  }

  wake() {
    if (this.waiter) this.waiter();
  }

  // The next update, or how the stream ended, or {timeout: true} after timeoutMs.
  next(timeoutMs) {
    return new Promise((resolve) => {
      const answer = () => {
        if (this.updates.length) return { ok: true, update: this.updates.shift() };
        if (this.ended) return this.ended;
        return null;
      };
      const now = answer();
      if (now) { resolve(now); return; }
      const timer = setTimeout(() => { this.waiter = null; resolve({ ok: true, timeout: true }); }, timeoutMs);
      this.waiter = () => {
        const result = answer();
        if (result) { clearTimeout(timer); this.waiter = null; resolve(result); }
      };
    });
  }
}

async function run(client, connectivity, watches, command) {
  switch (command.op) {
    case 'getUser':
      return { ok: true, user: await client.getUser(command.id) };
    case 'createUser':
      return { ok: true, user: await client.createUser(command.user) };
    case 'listUsers':
      return { ok: true, ...await client.listUsers(command.page_size, command.page_token, command.filter, command.order_by) };
    case 'raw': // a unary call with a request object as given, e.g. the document's camelCase one
      return { ok: true, response: await client.unary(command.method, command.request, 10) };
    case 'watch': // command.request: a request object as given instead of user_ids
      watches[command.name] = new Watch(command.request
        ? client.client.streamUserUpdates(command.request)
        : client.streamUserUpdates(command.user_ids));
      return { ok: true };
    case 'next':
      return watches[command.name].next(command.timeout_ms);
    case 'cancel': {
      const watch = watches[command.name];
      watch.stream.cancel();
      let result; // how the stream ended, past the updates nobody asked for
      do result = await watch.next(5000); while (result.update);
      delete watches[command.name];
      return result;
    }
    case 'connectivity':
      return { ok: true, state: connectivity.state(), transitions: connectivity.transitions };
    default:
      throw new Error(`unknown op ${command.op}`);
  }
}

function main() {
  const [, , address, caFile, repoRoot] = process.argv;
  const client = new UserClient(address, fs.readFileSync(caFile), repoRoot);
  const connectivity = client.recordConnectivity();
  const watches = {};
  let queue = Promise.resolve();
  const lines = readline.createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    queue = queue.then(async () => {
      let result;
      try {
        result = await run(client, connectivity, watches, JSON.parse(line));
      } catch (error) {
        result = error.code !== undefined ? failure(error) : { ok: false, error: String(error) };
      }
      process.stdout.write(`${JSON.stringify(result)}\n`);
    });
  });
  lines.on('close', () => queue.then(() => {
    for (const watch of Object.values(watches)) watch.stream.cancel();
    client.close();
  }));
}

main();
