#!/usr/bin/env node
// Independent OCPP charger used as a test peer: ocpp-rpc in strictMode, so every
// message in both directions is checked against the official OCPP JSON schemas.
//
//   node charger.mjs --url ws://127.0.0.1:PORT/ocpp --id CP-1 --password PW \
//        --protocol ocpp1.6|ocpp2.0.1 [--scenario FILE.json] \
//        [--call-timeout-s 10] [--ping-interval-s 30]
//
// The scenario (a JSON list of steps) is read from FILE or, without --scenario
// (or with "-"), from stdin. One JSON document is written to stdout; see
// tests/peers/README.md for the formats. Exit codes: 0 the scenario ran (even if
// calls failed), 2 bad usage or scenario, 3 could not connect.
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import rpc from 'ocpp-rpc';

const { RPCClient, RPCError, TimeoutError, UnexpectedHttpResponse, createRPCError, NOREPLY } = rpc;

// ocpp-rpc 2.2.1 ships ocpp2.1 schemas under ids ("urn:XRequest") that its
// strict mode never looks up ("urn:X.req"), so ocpp2.1 cannot run strict.
const PROTOCOLS = ['ocpp1.6', 'ocpp2.0.1'];

// Write the output document, then exit once it is flushed (pipes may be async).
function finish(output, code) {
  process.stdout.write(JSON.stringify(output) + '\n', () => process.exit(code));
}

function usage(message) {
  process.stderr.write(`charger.mjs: ${message}\n`);
  process.exit(2);
}

function parseCli() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        url: { type: 'string' },
        id: { type: 'string' },
        password: { type: 'string' },
        protocol: { type: 'string', default: 'ocpp1.6' },
        scenario: { type: 'string' },
        'call-timeout-s': { type: 'string', default: '10' },
        'ping-interval-s': { type: 'string', default: '30' },
      },
    }));
  } catch (err) {
    usage(err.message);
  }
  if (!values.url || !values.id) usage('--url and --id are required');
  if (!PROTOCOLS.includes(values.protocol)) usage(`--protocol must be one of ${PROTOCOLS.join(', ')}`);
  for (const opt of ['call-timeout-s', 'ping-interval-s']) {
    const n = Number(values[opt]);
    if (!Number.isFinite(n) || n < 0) usage(`--${opt} must be a number >= 0`);
    values[opt] = n;
  }
  const src = !values.scenario || values.scenario === '-' ? 0 : values.scenario; // 0 = stdin
  let steps;
  try {
    steps = JSON.parse(readFileSync(src, 'utf8'));
  } catch (err) {
    usage(`cannot read scenario: ${err.message}`);
  }
  if (!Array.isArray(steps)) usage('scenario must be a JSON list of steps');
  steps.forEach((s, i) => {
    const ok = s && typeof s === 'object' && (typeof s.call === 'string'
      || typeof s.expect_call === 'string' || typeof s.sleep_s === 'number' || s.close === true);
    if (!ok) usage(`step ${i} is not a call, expect_call, sleep_s or close step: ${JSON.stringify(s)}`);
  });
  return { ...values, steps };
}

// Answers for server calls that no expect_call step claims. Strict mode checks
// these too, so they must be schema-valid for the protocol in use.
const accepted = () => ({ status: 'Accepted' });
const DEFAULTS = {
  'ocpp1.6': {
    RemoteStartTransaction: accepted,
    RemoteStopTransaction: accepted,
    Reset: accepted,
    ChangeAvailability: accepted,
    ChangeConfiguration: accepted,
    GetConfiguration: (p) => ({ configurationKey: [], unknownKey: p.key ?? [] }),
    TriggerMessage: accepted,
    UnlockConnector: () => ({ status: 'Unlocked' }),
    ClearCache: accepted,
    DataTransfer: () => ({ status: 'UnknownVendorId' }),
    SetChargingProfile: accepted,
    ClearChargingProfile: accepted,
    GetLocalListVersion: () => ({ listVersion: 0 }),
    SendLocalList: accepted,
    ReserveNow: accepted,
    CancelReservation: accepted,
  },
  'ocpp2.0.1': {
    RequestStartTransaction: accepted,
    RequestStopTransaction: accepted,
    Reset: accepted,
    ChangeAvailability: accepted,
    SetVariables: (p) => ({
      setVariableResult: p.setVariableData.map((d) => ({
        attributeStatus: 'Accepted', component: d.component, variable: d.variable,
      })),
    }),
    GetVariables: (p) => ({
      getVariableResult: p.getVariableData.map((d) => ({
        attributeStatus: 'UnknownVariable', component: d.component, variable: d.variable,
      })),
    }),
    TriggerMessage: accepted,
    UnlockConnector: () => ({ status: 'Unlocked' }),
    ClearCache: accepted,
    DataTransfer: () => ({ status: 'UnknownVendorId' }),
    SetChargingProfile: accepted,
    ClearChargingProfile: accepted,
    GetLocalListVersion: () => ({ versionNumber: 0 }),
    SendLocalList: accepted,
    ReserveNow: accepted,
    CancelReservation: accepted,
    GetTransactionStatus: () => ({ messagesInQueue: false }),
    GetBaseReport: accepted,
  },
};

// "$now" -> ISO timestamp, one per step (a charger stamps a message and the
// samples it carries with the same clock reading); "$<step>.<dotted.path>" ->
// a value recorded by an earlier step (the result of a call, the params
// received by an expect_call).
const REF = /^\$(\d+)(?:\.(.+))?$/;

class TemplateError extends Error {}

function resolve(value, records, now = new Date().toISOString()) {
  if (typeof value === 'string') {
    if (value === '$now') return now;
    const m = REF.exec(value);
    if (!m) return value;
    const rec = records[Number(m[1])];
    let cur = rec && ('result' in rec ? rec.result : rec.received);
    for (const key of m[2] ? m[2].split('.') : []) {
      cur = cur != null && typeof cur === 'object' ? cur[key] : undefined;
    }
    if (cur === undefined) throw new TemplateError(`cannot resolve ${value}`);
    return cur;
  }
  if (Array.isArray(value)) return value.map((v) => resolve(v, records, now));
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, resolve(v, records, now)]),
    );
  }
  return value;
}

function describeError(err, source) {
  const out = {
    code: err.rpcErrorCode ?? (err instanceof TimeoutError ? 'Timeout' : err.name ?? 'Error'),
    message: err.message,
    source,
  };
  if (err.details && Object.keys(err.details).length) out.details = err.details;
  return out;
}

async function main() {
  const opts = parseCli();
  const { steps } = opts;
  const output = {
    connected: false,
    protocol: null,
    steps: [],
    server_calls: [],
    schema_violations: [], // every server message that broke the schema
    bad_messages: [],
    disconnect: null,
  };

  const client = new RPCClient({
    endpoint: opts.url.replace(/\/+$/, ''),
    identity: opts.id,
    password: opts.password ?? null,
    protocols: [opts.protocol],
    strictMode: true,
    reconnect: false,
    callTimeoutMs: opts['call-timeout-s'] * 1000, // 0 = no timeout
    pingIntervalMs: opts['ping-interval-s'] * 1000, // 0 = no pings
  });

  // Server calls: each expect_call step claims the next call of its action, even
  // one that arrives before the step is reached (it is held until then).
  const unclaimed = new Map(); // action -> number of expect_call steps not yet matched
  for (const s of steps) {
    if (s && typeof s.expect_call === 'string') {
      unclaimed.set(s.expect_call, (unclaimed.get(s.expect_call) ?? 0) + 1);
    }
  }
  const inbox = new Map(); // action -> [{entry, respond(payload)}] held calls
  const waiters = new Map(); // action -> resolve(held) of the active expect_call step
  const byMessageId = new Map();
  let lastStrictFailure = null;

  client.on('strictValidationFailure', (ev) => {
    lastStrictFailure = ev;
    const error = describeError(ev.error, ev.outbound ? 'schema_local' : 'schema_remote');
    if (!ev.outbound) {
      output.schema_violations.push({
        kind: ev.isCall ? 'call' : 'result', action: ev.method, message_id: ev.messageId,
        code: error.code, message: error.message, data: ev.isCall ? ev.params : ev.result,
      });
    }
    if (ev.isCall && !ev.outbound) {
      // The server's CALL broke the schema: ocpp-rpc answers with a CALLERROR.
      output.server_calls.push({ action: ev.method, message_id: ev.messageId, params: ev.params, rejected: error });
    } else if (!ev.isCall && ev.outbound) {
      // Our answer broke the schema: ocpp-rpc sends InternalError instead.
      const entry = byMessageId.get(ev.messageId);
      if (entry) entry.response_rejected = error;
    }
  });
  client.on('badMessage', ({ buffer, error }) => {
    output.bad_messages.push({ message: buffer.toString('utf8'), error: describeError(error, 'framing') });
  });
  // Resolvers waiting for our CALLRESULT/CALLERROR to a server call to be sent.
  const replySent = new Map(); // messageId -> resolve()
  client.on('message', ({ message, outbound }) => {
    if (!outbound) return;
    const [type, id] = JSON.parse(message);
    if (type === 3 || type === 4) replySent.get(id)?.();
  });
  client.on('disconnect', ({ code, reason }) => {
    output.disconnect = { code, reason };
    for (const w of waiters.values()) w(null);
    for (const r of replySent.values()) r();
  });

  client.handle(async ({ method, params, messageId, signal }) => {
    const entry = { action: method, message_id: messageId, params };
    output.server_calls.push(entry);
    byMessageId.set(messageId, entry);
    const left = unclaimed.get(method) ?? 0;
    if (left > 0) {
      unclaimed.set(method, left - 1);
      entry.handled_by = 'expect_call';
      const held = { entry };
      const answered = new Promise((respond) => { held.respond = respond; });
      const waiter = waiters.get(method);
      if (waiter) waiter(held);
      else inbox.set(method, [...(inbox.get(method) ?? []), held]);
      // Closing or losing the socket aborts the signal: then send nothing.
      const aborted = new Promise((res) => signal.addEventListener('abort', () => res(NOREPLY)));
      const response = await Promise.race([answered, aborted]);
      if (response === NOREPLY) { // aborted, or the step said "no_reply": true
        inbox.set(method, (inbox.get(method) ?? []).filter((h) => h !== held));
        entry.unanswered = true;
        return NOREPLY;
      }
      entry.response = response;
      return response;
    }
    entry.handled_by = 'default';
    const make = DEFAULTS[client.protocol]?.[method];
    if (!make) {
      entry.response_error = 'NotImplemented';
      throw createRPCError('NotImplemented', `no default answer for ${method}`);
    }
    entry.response = make(params);
    return entry.response;
  });

  try {
    await client.connect();
  } catch (err) {
    const status = err instanceof UnexpectedHttpResponse ? err.code : null;
    output.connect_error = { http_status: status, message: err.message };
    process.stderr.write(
      `charger.mjs: could not connect to ${opts.url}/${opts.id}` +
        (status ? `: HTTP ${status} ${err.message}` : `: ${err.message}`) + '\n',
    );
    return finish(output, 3);
  }
  output.connected = true;
  output.protocol = client.protocol;

  const records = output.steps;
  for (const [i, raw] of steps.entries()) {
    let step;
    try {
      step = resolve(raw, records);
    } catch (err) {
      if (!(err instanceof TemplateError)) throw err;
      if (raw && typeof raw.expect_call === 'string') {
        unclaimed.set(raw.expect_call, unclaimed.get(raw.expect_call) - 1);
      }
      const kind = raw.call ? { call: raw.call } : raw.expect_call ? { expect_call: raw.expect_call } : {};
      records.push({ ...kind, ok: false, error: { code: 'Template', message: err.message, source: 'scenario' } });
      continue;
    }

    if (typeof step.call === 'string') {
      const rec = { call: step.call };
      lastStrictFailure = null;
      try {
        const callOpts = step.timeout_s ? { callTimeoutMs: step.timeout_s * 1000 } : {};
        rec.result = await client.call(step.call, step.payload ?? {}, callOpts);
        rec.ok = true;
      } catch (err) {
        let source = 'client'; // e.g. socket closed
        const sf = lastStrictFailure?.method === step.call ? lastStrictFailure : null;
        if (sf && !sf.isCall && !sf.outbound) {
          source = 'schema_remote'; // the server's CALLRESULT broke the schema
        } else if (sf && sf.isCall && sf.outbound) {
          source = 'schema_local'; // our own payload broke the schema: nothing was sent
        } else if (err instanceof TimeoutError) {
          source = 'timeout';
        } else if (err instanceof RPCError) {
          source = 'callerror'; // the server answered with a CALLERROR
        }
        rec.ok = false;
        rec.error = describeError(err, source);
      }
      records.push(rec);
    } else if (typeof step.expect_call === 'string') {
      const action = step.expect_call;
      const rec = { expect_call: action };
      const queued = inbox.get(action);
      let held = queued?.length ? queued.shift() : null;
      if (!held && client.state === RPCClient.OPEN) {
        let timer;
        held = await Promise.race([
          new Promise((res) => waiters.set(action, res)),
          new Promise((res) => { timer = setTimeout(res, (step.timeout_s ?? 10) * 1000, null); }),
        ]);
        clearTimeout(timer);
        waiters.delete(action);
      }
      if (held) {
        rec.ok = true;
        rec.received = held.entry.params;
        held.entry.step = i;
        // Let the reply reach the socket before the next step sends anything,
        // as a real charger answers a remote start before starting.
        const mid = held.entry.message_id;
        const sent = new Promise((res) => replySent.set(mid, res));
        held.respond(step.no_reply ? NOREPLY : step.respond ?? {});
        if (!step.no_reply) await Promise.race([sent, sleep(2000)]);
        replySent.delete(mid);
        if (held.entry.response_rejected) {
          rec.ok = false; // our own "respond" broke the schema; InternalError was sent
          rec.error = held.entry.response_rejected;
        }
      } else {
        unclaimed.set(action, unclaimed.get(action) - 1);
        rec.ok = false;
        rec.error = output.disconnect
          ? { code: 'Disconnected', message: `connection closed before ${action} arrived`, source: 'client' }
          : { code: 'Timeout', message: `no ${action} call within ${step.timeout_s ?? 10} s`, source: 'timeout' };
      }
      records.push(rec);
    } else if (typeof step.sleep_s === 'number') {
      await sleep(step.sleep_s * 1000);
      records.push({ ok: true, slept_s: step.sleep_s });
    } else {
      const closed = await client.close({ code: step.code ?? 1000, reason: step.reason, force: !!step.force });
      records.push({ ok: true, closed: closed ?? null });
    }
  }

  if (client.state === RPCClient.OPEN) await client.close({ code: 1000 });
  finish(output, 0);
}

main().catch((err) => {
  process.stderr.write(`charger.mjs: ${err.stack ?? err}\n`);
  process.exit(1);
});
