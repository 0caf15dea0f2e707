/**
 * Guest DNS queries: the message parser, the responder, and behind it the resolver the
 * sandbox uses in intercept mode (canonical names, synthetic addresses). Oracles: nothing
 * throws or rejects; a reply, when there is one, is a well-formed response to the query (same
 * id, QR set, the question echoed byte for byte, counts matching the body); names handed to
 * the resolver are canonical (lower-case, valid labels); answers are synthetic addresses.
 */
import { parseIpv4 } from "../../src/net/addresses.js";
import {
  DNS_TYPE_A,
  DNS_TYPE_AAAA,
  buildDnsQuery,
  parseDnsQuery,
} from "../../src/net/dns-message.js";
import { DnsResponder } from "../../src/net/dns-responder.js";
import { InterceptUpstream, PASS_THROUGH_POLICY } from "../../src/net/intercept/index.js";
import { EgressPolicy, canonicalHost } from "../../src/net/policy/index.js";
import { createCa } from "../../src/net/tls/index.js";
import { check, type FuzzTarget } from "../target.js";

const SYNTHETIC_BASE = parseIpv4("198.18.0.0") ?? 0;
let upstream: InterceptUpstream | undefined;

function checkReply(query: Buffer, reply: Buffer): void {
  check(reply.length >= 12, "reply shorter than a header");
  check(reply.readUInt16BE(0) === query.readUInt16BE(0), "reply id differs from the query's");
  const flags = reply.readUInt16BE(2);
  check((flags & 0x8000) !== 0, "reply without the QR bit");
  const qd = reply.readUInt16BE(4);
  const an = reply.readUInt16BE(6);
  const parsed = parseDnsQuery(query);
  const question = parsed.ok ? parsed.question.questionBytes : Buffer.alloc(0);
  check(qd === (question.length > 0 ? 1 : 0), `QDCOUNT ${qd}`);
  check(reply.subarray(12, 12 + question.length).equals(question), "question not echoed");
  check(reply.length === 12 + question.length + an * 16, "answer count does not match the body");
  check(an <= 16, `${an} answers`);
  for (let at = 12 + question.length; at < reply.length; at += 16) {
    const ip = reply.readUInt32BE(at + 12);
    const synthetic = ip - SYNTHETIC_BASE >= 0 && ip - SYNTHETIC_BASE < 1 << 17;
    const literal = parsed.ok && parseIpv4(parsed.question.name) === ip;
    check(
      synthetic || literal,
      `answer ${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255} is neither synthetic nor the literal asked for`,
    );
  }
}

export const dnsTarget: FuzzTarget = {
  name: "dns",
  description: "DNS queries through the responder and the intercept resolver (src/net)",
  maxInputBytes: 1024,
  timeLimitMs: 1000,
  dictionary: [
    Buffer.from([0xc0, 0x0c]),
    Buffer.from([0, 1, 0, 1]),
    Buffer.from([0, 28, 0, 1]),
    Buffer.from([63]),
    Buffer.from("xn--"),
  ],
  seeds: () => [
    buildDnsQuery(1, "example.com", DNS_TYPE_A),
    buildDnsQuery(2, "Api.Example.COM", DNS_TYPE_A),
    buildDnsQuery(3, "example.com", DNS_TYPE_AAAA),
    buildDnsQuery(4, "10.0.0.1", DNS_TYPE_A),
    buildDnsQuery(5, "", DNS_TYPE_A),
    buildDnsQuery(
      6,
      `${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(61)}`,
      DNS_TYPE_A,
    ),
  ],
  async setup() {
    upstream = new InterceptUpstream({
      policy: new EgressPolicy({ allowedHosts: ["example.com"] }),
      httpPolicy: PASS_THROUGH_POLICY,
      ca: createCa(),
    });
  },
  async teardown() {
    upstream?.close();
  },
  async run(input) {
    const up = upstream;
    if (!up) throw new Error("dns target used without setup");
    const responder = new DnsResponder({
      resolveIpv4: async (name) => {
        // Names reach the resolver in one form: lower-case LDH labels, which canonicalHost
        // leaves unchanged (it may still refuse numeric ones).
        check(/^[a-z0-9_.-]{1,253}$/.test(name), `resolver asked for ${JSON.stringify(name)}`);
        const canonical = canonicalHost(name);
        check(!canonical.ok || canonical.host === name, `canonical form of ${name} differs`);
        return up.resolveIpv4(name);
      },
      toGuestAddress: (ip) => ip,
    });
    const reply = await responder.answer(input);
    if (reply !== undefined) checkReply(input, reply);
  },
};
